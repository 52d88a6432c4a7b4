"""Registration cases with a known answer, for the tests and ``bench/bench_registration.py``.

The bundled MAA SPECT of patient 2 and its liver contour (drawn on the CT grid) are moved by a
known transform: the moved pair is the "moving" scan, the original the "fixed" one, and the
original contour is the reference the carried contour must match. Two motions, as in the
acceptance criteria of ``sirt register``:

- rigid: 10 mm translation and a 5° rotation about the cranio-caudal axis through the liver centre;
- deformable: a smooth Gaussian displacement (10 mm peak, σ 60 mm) centred near the liver, whose
  largest displacement gradient (≈ 0.1) is far from folding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..data import SAMPLES_DIR
from ..io.segmentations import Segment, Segmentation, read_segmentation, write_segmentation

SPECT = SAMPLES_DIR / "patient_2_SPECT.nrrd"
CT_SEGMENTATION = SAMPLES_DIR / "patient_2_Segmentation.seg.nrrd"
CASE_SEGMENTS = ("liver", "Tumor 1")
RIGID_TRANSLATION_MM = (6.0, 8.0, 0.0)  # 10 mm
RIGID_ROTATION_DEG = 5.0
BUMP_PEAK_MM = 10.0
BUMP_SIGMA_MM = 60.0


@dataclass(frozen=True)
class MovedCase:
    fixed: Path
    moving: Path
    moving_segmentation: Path
    reference_segmentation: Path
    motion: sitk.Transform  # maps a moving-scan point to the fixed-scan point it came from


def _reduced_segmentation(shrink: int) -> Segmentation:
    """The case segments of the sample contour, in one layer, with the in-plane grid coarsened ``shrink`` times."""
    source = read_segmentation(CT_SEGMENTATION)
    labels = np.zeros(source.layers[0].GetSize()[::-1], dtype=np.uint8)
    for value, name in enumerate(CASE_SEGMENTS, start=1):  # later segments win where they overlap (tumour in liver)
        labels[source.mask(name)] = value
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(source.layers[0])
    image = sitk.Shrink(image, [shrink, shrink, 1]) if shrink > 1 else image
    segments = tuple(Segment(name, 0, value) for value, name in enumerate(CASE_SEGMENTS, start=1))
    return Segmentation((image,), segments, str(CT_SEGMENTATION))


def _liver_centre(segmentation: Segmentation) -> tuple[float, float, float]:
    layer = segmentation.layers[0]
    index = np.argwhere(sitk.GetArrayViewFromImage(layer) == 1).mean(axis=0)[::-1]
    return layer.TransformContinuousIndexToPhysicalPoint(index.tolist())


def rigid_motion(centre) -> sitk.Transform:
    motion = sitk.Euler3DTransform()
    motion.SetCenter(centre)
    motion.SetRotation(0.0, 0.0, np.deg2rad(RIGID_ROTATION_DEG))
    motion.SetTranslation(RIGID_TRANSLATION_MM)
    return motion


def bump_motion(reference: sitk.Image, centre) -> sitk.Transform:
    """x -> x + u(x), u a Gaussian bump pointing (1, 1, 0.5)/1.5 with peak ``BUMP_PEAK_MM``, sampled on ``reference``'s grid."""
    points = np.stack(np.meshgrid(*[np.arange(n) for n in reference.GetSize()], indexing="ij"), axis=-1).reshape(-1, 3)
    direction = np.asarray(reference.GetDirection()).reshape(3, 3)
    physical = np.asarray(reference.GetOrigin()) + (points * reference.GetSpacing()) @ direction.T
    r2 = np.sum((physical - np.asarray(centre)) ** 2, axis=1)
    u = BUMP_PEAK_MM * np.exp(-r2 / (2 * BUMP_SIGMA_MM**2))[:, None] * (np.array([1.0, 1.0, 0.5]) / 1.5)
    field = sitk.GetImageFromArray(u.reshape(*reference.GetSize(), 3).transpose(2, 1, 0, 3), isVector=True)
    field.CopyInformation(reference)
    return sitk.DisplacementFieldTransform(field)


def make_moved_case(
    folder: Path, motion_kind: str, image_shrink: int = 1, segmentation_shrink: int = 2, inverted_contrast: bool = False
) -> MovedCase:
    """Write the fixed and the moved SPECT and contours into ``folder``; ``motion_kind`` is "rigid" or "deformable".

    ``inverted_contrast`` maps the moving image's values v to max - v: a different "modality" with
    the same anatomy, which only a multi-modal metric (mutual information) can register.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fixed = sitk.Cast(sitk.ReadImage(str(SPECT)), sitk.sitkFloat32)
    if image_shrink > 1:
        fixed = sitk.Shrink(fixed, [image_shrink] * 3)
    reference = _reduced_segmentation(segmentation_shrink)
    centre = _liver_centre(reference)
    if motion_kind == "rigid":
        motion = rigid_motion(centre)
    elif motion_kind == "deformable":
        coarse = sitk.Shrink(fixed, [2, 2, 4])  # the bump is smooth: a coarse field grid suffices
        motion = bump_motion(coarse, np.asarray(centre) + np.array([30.0, 0.0, 20.0]))
    else:
        raise ValueError(f"unknown motion {motion_kind!r}")
    moving = sitk.Resample(fixed, fixed, motion, sitk.sitkLinear, 0.0)
    if inverted_contrast:
        moving = float(np.max(sitk.GetArrayViewFromImage(moving))) - moving
    moved_layer = sitk.Resample(reference.layers[0], reference.layers[0], motion, sitk.sitkNearestNeighbor, 0)
    case = MovedCase(folder / "fixed_spect.nrrd", folder / f"moving_spect_{motion_kind}{'_inverted' if inverted_contrast else ''}.nrrd",
                     folder / f"moving_{motion_kind}.seg.nrrd", folder / "reference.seg.nrrd", motion)
    sitk.WriteImage(fixed, str(case.fixed), useCompression=True)
    sitk.WriteImage(moving, str(case.moving), useCompression=True)
    write_segmentation(reference, case.reference_segmentation)
    write_segmentation(Segmentation((moved_layer,), reference.segments, str(case.moving_segmentation)), case.moving_segmentation)
    return case
