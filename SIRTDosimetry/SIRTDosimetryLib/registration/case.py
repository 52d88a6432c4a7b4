"""One registration case: read, register on elastix, carry image and contours onto the fixed grid, check, write.

Conventions (see docs/registration.md): images and transforms are in ITK's LPS patient coordinates
(mm). The transform maps a point of the fixed image to the corresponding point of the moving image
(a *resampling* transform, ITK's and elastix's convention); Slicer reads such a file as a transform
whose "from parent" direction is this mapping and converts LPS to RAS itself, so placing the moving
image under the loaded transform node shows it aligned on the fixed image.

When both hybrid scans carry a CT (``fixed_ct``, ``moving_ct``), the CTs are registered and the
transform is applied to the moving emission image: the CTs share each scan's coordinates with their
emission image, and CT-to-CT registration is far better conditioned than emission-to-emission.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import SIRTInputError
from ..io.segmentations import Segmentation, read_segmentation, write_segmentation
from ..io.volumes import read_activity_image, read_image
from ..io.writers import commit_outputs, write_image, write_json
from ..provenance import provenance, to_jsonable
from .elastix import run_elastix
from .overlay import write_checkerboard_png
from .presets import RegistrationSettings, parameter_maps
from .qa import ContourAgreement, GateVerdict, JacobianRange, QAGate, contour_agreement, jacobian_range, judge

MASK_MARGIN_MM = 10.0
"""Margin around a mask segment, so that its edges (the liver surface) are inside the metric's region."""
FIELD_MIN_SPACING_MM = 2.0
"""The displacement field is stored no finer than this: a B-spline with ≥ 10 mm control points is smooth on it."""

OUTPUT_LINEAR_TRANSFORM = "transform.tfm"
OUTPUT_DISPLACEMENT_FIELD = "displacement_field.nrrd"
OUTPUT_RESAMPLED = "moving_resampled.nrrd"
OUTPUT_SEGMENTATION = "segmentation_on_fixed.seg.nrrd"
OUTPUT_QA = "registration_qa.json"
OUTPUT_OVERLAY = "registration_overlay.png"


@dataclass(frozen=True)
class RegistrationResult:
    """What :func:`register_case` produced; ``qa`` is the record written as JSON."""

    transform: sitk.Transform  # fixed (LPS mm) -> moving, as written
    moving_resampled: sitk.Image
    segmentation_on_fixed: Segmentation | None
    agreement: ContourAgreement | None
    jacobian: JacobianRange | None
    verdict: GateVerdict
    elapsed_s: float
    outputs: dict[str, Path] = field(default_factory=dict)
    qa: dict = field(default_factory=dict)

    def table_row(self) -> dict[str, object]:
        """The QA numbers as flat columns of a cohort table (one row per patient)."""
        a, j = self.agreement, self.jacobian
        return {
            "registration_qa": self.verdict.status,
            "registration_dice": a.dice if a else None,
            "registration_mean_surface_distance_mm": a.mean_surface_distance_mm if a else None,
            "registration_jacobian_min": j.minimum if j else None,
            "registration_jacobian_max": j.maximum if j else None,
            "registration_folding_ml": j.folding_volume_ml if j else None,
            "registration_elapsed_s": self.elapsed_s,
        }


def _physical_box(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned LPS box (mm) around the image's voxels, edges included."""
    size = image.GetSize()
    corners = np.array([
        image.TransformContinuousIndexToPhysicalPoint([c - 0.5 for c in corner])
        for corner in itertools.product(*[(0, n) for n in size])
    ])
    return corners.min(axis=0), corners.max(axis=0)


def check_overlap(fixed: sitk.Image, moving: sitk.Image) -> None:
    """Refuse images whose physical extents do not overlap: no registration can start from there."""
    (f_lo, f_hi), (m_lo, m_hi) = _physical_box(fixed), _physical_box(moving)
    overlap = np.minimum(f_hi, m_hi) - np.maximum(f_lo, m_lo)
    if np.any(overlap <= 0):
        raise SIRTInputError(
            "fixed and moving images do not overlap in patient coordinates (fixed spans "
            f"{np.round(f_lo).tolist()} to {np.round(f_hi).tolist()} mm, moving {np.round(m_lo).tolist()} to "
            f"{np.round(m_hi).tolist()} mm): check that both come from the same patient position or align them roughly first"
        )


def _segment_on_grid(segmentation: Segmentation, name: str, grid: sitk.Image, transform: sitk.Transform | None = None) -> sitk.Image:
    """A segment as a 0/1 image on ``grid`` (nearest neighbour), through ``transform`` if given."""
    segment = segmentation.segment(name)
    binary = sitk.Cast(segmentation.layers[segment.layer] == segment.label_value, sitk.sitkUInt8)
    return sitk.Resample(binary, grid, transform or sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)


def _mask(segmentation: Segmentation, name: str, grid: sitk.Image, what: str) -> sitk.Image:
    mask = _segment_on_grid(segmentation, name, grid)
    if not sitk.GetArrayViewFromImage(mask).any():
        raise SIRTInputError(
            f"mask segment {name!r} of {segmentation.source_path} is empty on the {what} image: it cannot restrict the registration"
        )
    radius = [max(1, int(round(MASK_MARGIN_MM / s))) for s in grid.GetSpacing()]
    return sitk.BinaryDilate(mask, radius, sitk.sitkBall)


def carry_segmentation(segmentation: Segmentation, grid: sitk.Image, transform: sitk.Transform) -> Segmentation:
    """Every layer resampled onto ``grid`` through ``transform`` (nearest neighbour keeps the label values)."""
    layers = tuple(
        sitk.Resample(layer, grid, transform, sitk.sitkNearestNeighbor, 0, layer.GetPixelID()) for layer in segmentation.layers
    )
    return Segmentation(layers, segmentation.segments, segmentation.source_path)


def linear_transform(transform: sitk.Transform) -> sitk.AffineTransform:
    """One affine transform equal to a (composite of) linear transform(s): A x + b from the images of 0 and e_j."""
    b = np.asarray(transform.TransformPoint((0.0, 0.0, 0.0)))
    columns = [np.asarray(transform.TransformPoint(tuple(np.eye(3)[j]))) - b for j in range(3)]
    return sitk.AffineTransform(np.column_stack(columns).flatten().tolist(), b.tolist(), (0.0, 0.0, 0.0))


def field_grid(fixed: sitk.Image) -> sitk.Image:
    """The fixed grid's extent and orientation, with spacing no finer than ``FIELD_MIN_SPACING_MM``."""
    spacing = np.maximum(fixed.GetSpacing(), FIELD_MIN_SPACING_MM)
    extent = (np.asarray(fixed.GetSize()) - 1) * np.asarray(fixed.GetSpacing())
    grid = sitk.Image([int(n) for n in np.ceil(extent / spacing - 1e-6) + 1], sitk.sitkUInt8)
    grid.SetSpacing(spacing.tolist())
    grid.SetOrigin(fixed.GetOrigin())
    grid.SetDirection(fixed.GetDirection())
    return grid


def displacement_field(transform: sitk.Transform, grid: sitk.Image) -> sitk.Image:
    """Displacement u(x) = T(x) - x (LPS mm) on ``grid``, float64 vectors."""
    return sitk.TransformToDisplacementField(
        transform, sitk.sitkVectorFloat64, grid.GetSize(), grid.GetOrigin(), grid.GetSpacing(), grid.GetDirection()
    )


def register_case(
    fixed: str | Path,
    moving: str | Path,
    output: str | Path,
    *,
    moving_segmentation: str | Path | None = None,
    reference_segmentation: str | Path | None = None,
    fixed_ct: str | Path | None = None,
    moving_ct: str | Path | None = None,
    settings: RegistrationSettings = RegistrationSettings(),
    gate: QAGate = QAGate(),
    qa_segment: str = "liver",
    mask_segment: str | None = None,
    overwrite: bool = False,
) -> RegistrationResult:
    """Register ``moving`` (or ``moving_ct``) onto ``fixed`` (or ``fixed_ct``) and write the results into ``output``.

    - ``moving_segmentation``: contours on the moving side, carried onto the fixed grid.
    - ``reference_segmentation``: contours drawn on the fixed side; its ``qa_segment`` is the
      reference the carried one is checked against (Dice, mean surface distance).
    - ``mask_segment``: restrict the metric to this segment (with a 10 mm margin) of the moving
      segmentation and, when given, of the reference segmentation.

    The carried segmentation lies on the registration's fixed grid (the fixed CT when CTs are
    registered, else the fixed image); the resampled moving image on the fixed image's grid.
    Writes nothing unless everything succeeded; a failed gate is recorded, not raised.
    """
    started = time.perf_counter()
    if (fixed_ct is None) != (moving_ct is None):
        raise SIRTInputError("CT-to-CT registration needs both CTs (fixed_ct and moving_ct)")
    fixed_image = read_activity_image(fixed).image
    moving_image = read_activity_image(moving).image
    pair_fixed = read_image(fixed_ct) if fixed_ct is not None else fixed_image
    pair_moving = read_image(moving_ct) if moving_ct is not None else moving_image
    if fixed_ct is not None:
        check_overlap(fixed_image, pair_fixed)
        check_overlap(moving_image, pair_moving)
    check_overlap(pair_fixed, pair_moving)
    moving_seg = read_segmentation(moving_segmentation) if moving_segmentation is not None else None
    reference_seg = read_segmentation(reference_segmentation) if reference_segmentation is not None else None
    if reference_seg is not None and moving_seg is None:
        raise SIRTInputError("a reference contour needs a moving segmentation to compare the carried contour with")
    if reference_seg is not None:  # fail before registering when the QA segment is missing on either side
        for segmentation in (reference_seg, moving_seg):
            segmentation.segment(qa_segment)
    masks = {}
    if mask_segment is not None:
        if moving_seg is None:
            raise SIRTInputError("a mask segment needs a moving segmentation")
        masks["moving_mask"] = _mask(moving_seg, mask_segment, pair_moving, "moving")
        if reference_seg is not None:
            masks["fixed_mask"] = _mask(reference_seg, mask_segment, pair_fixed, "fixed")

    elastix_transform = run_elastix(pair_fixed, pair_moving, parameter_maps(settings), threads=settings.threads, **masks)

    field_image = jacobian = None
    if settings.transform == "deformable":
        field_image = displacement_field(elastix_transform, field_grid(pair_fixed))
        jacobian = jacobian_range(field_image)
        transform = sitk.DisplacementFieldTransform(sitk.Image(field_image))  # the constructor takes the image over
    else:
        transform = linear_transform(elastix_transform)
    moving_resampled = sitk.Resample(moving_image, fixed_image, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    carried = carry_segmentation(moving_seg, pair_fixed, transform) if moving_seg is not None else None
    agreement = carried_mask = reference_mask = None
    if carried is not None and _has_segment(carried, qa_segment):
        carried_mask = _segment_on_grid(carried, qa_segment, pair_fixed)
    if reference_seg is not None:
        reference_mask = _segment_on_grid(reference_seg, qa_segment, pair_fixed)
        agreement = contour_agreement(carried_mask, reference_mask, reference_seg.segment(qa_segment).name)
    verdict = judge(gate, agreement, jacobian)
    pair_moving_resampled = (
        sitk.Resample(pair_moving, pair_fixed, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32) if fixed_ct is not None else moving_resampled
    )
    elapsed = time.perf_counter() - started

    inputs = {"fixed": fixed, "moving": moving, "moving_segmentation": moving_segmentation,
              "reference_segmentation": reference_segmentation, "fixed_ct": fixed_ct, "moving_ct": moving_ct}
    transform_name = OUTPUT_DISPLACEMENT_FIELD if field_image is not None else OUTPUT_LINEAR_TRANSFORM
    writers = {
        transform_name: (partial(write_image, sitk.Cast(field_image, sitk.sitkVectorFloat32)) if field_image is not None
                         else partial(_write_transform, transform)),
        OUTPUT_RESAMPLED: partial(write_image, moving_resampled),
        OUTPUT_OVERLAY: partial(write_checkerboard_png, pair_fixed, pair_moving_resampled,
                                title=f"{Path(moving_ct or moving).name} onto {Path(fixed_ct or fixed).name} ({settings.transform})",
                                carried=carried_mask, reference=reference_mask),
    }
    if carried is not None:
        writers[OUTPUT_SEGMENTATION] = partial(write_segmentation, carried)
    qa = {
        "verdict": {"status": verdict.status, "reasons": verdict.reasons},
        "gate": to_jsonable(gate),
        "contour_agreement": to_jsonable(agreement) if agreement is not None else None,
        "jacobian_determinant": to_jsonable(jacobian) | {"folds": jacobian.folds} if jacobian is not None else None,
        "registered_pair": "ct_to_ct" if fixed_ct is not None else "images",
        "transform": {
            "file": transform_name,
            "kind": settings.transform,
            "convention": "ITK resampling transform in LPS mm: maps a fixed-image point to the moving-image point; "
                          "Slicer reads it as the transform from parent and converts to RAS",
        },
        "elapsed_s": round(elapsed, 2),
        "outputs": sorted(writers) + [OUTPUT_QA],
        "elastix_parameter_maps": parameter_maps(settings),
        "provenance": provenance(inputs, {"settings": settings, "qa_segment": qa_segment, "mask_segment": mask_segment,
                                          "mask_margin_mm": MASK_MARGIN_MM}),
    }
    writers[OUTPUT_QA] = partial(write_json, qa)
    written = commit_outputs(Path(output), writers, inputs=[p for p in inputs.values() if p is not None], overwrite=overwrite)
    return RegistrationResult(transform, moving_resampled, carried, agreement, jacobian, verdict, elapsed,
                              {p.name: p for p in written}, qa)


def _has_segment(segmentation: Segmentation, name: str) -> bool:
    try:
        segmentation.segment(name)
    except SIRTInputError:
        return False
    return True


def _write_transform(transform: sitk.Transform, path: Path) -> None:
    sitk.WriteTransform(transform, str(path))
