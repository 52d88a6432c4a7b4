"""Mapping segments drawn on another grid (CT, MRI) onto the activity grid.

Each structure becomes a *weight* per activity voxel in [0, 1]. How partial voxels count is a
parameter (``PartialVoxelMode``):

- ``"fraction"`` (default): the fraction of the activity voxel covered by the segment, estimated
  by sampling the segment at ``s³`` points spread regularly inside the voxel (s = 3 by default;
  each point takes the label of the segmentation voxel it falls in). Volumes, masses and means are
  weighted by this fraction, which keeps structure volumes close to the contoured ones on coarse
  SPECT/PET grids.
- ``"center"``: a voxel belongs to the structure when its centre lies in it (weight 0 or 1).
- ``"majority"``: weight 1 where the covered fraction is at least one half, else 0.

The sampling uses SimpleITK's resampler in physical space, so direction cosines, negative axis
directions and differing origins are honoured. The whole activity grid is never supersampled:
only the bounding box of each layer's labelled voxels.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import SimpleITK as sitk

from .errors import SIRTInputError
from .io.dicom_identity import check_same_frame_of_reference
from .io.segmentations import Segmentation
from .io.volumes import voxel_volume_ml

PartialVoxelMode = Literal["fraction", "center", "majority"]
PARTIAL_VOXEL_MODES: tuple[str, ...] = ("fraction", "center", "majority")

MIN_COVERAGE = 0.5
"""A segment with less than this fraction of its volume inside the activity grid is an error."""


@dataclass(frozen=True)
class Structure:
    """A segment on the activity grid."""

    name: str
    weights: np.ndarray  # float32 (z, y, x), in [0, 1]
    contoured_volume_ml: float  # volume on the segmentation's own grid
    mapped_volume_ml: float  # sum(weights) * activity voxel volume

    @property
    def coverage(self) -> float:
        """Mapped over contoured volume: ~1 when the segment lies inside the activity image."""
        return self.mapped_volume_ml / self.contoured_volume_ml if self.contoured_volume_ml > 0 else 0.0

    @property
    def mask(self) -> np.ndarray:
        """Voxels with any weight."""
        return self.weights > 0


def _index_bbox(layer: sitk.Image, reference: sitk.Image) -> tuple[np.ndarray, np.ndarray] | None:
    """Bounding box (inclusive lo, exclusive hi; x, y, z) on ``reference`` of the labelled voxels of ``layer``."""
    array = sitk.GetArrayViewFromImage(layer)
    nonzero_axes = [np.flatnonzero(array.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    if any(len(n) == 0 for n in nonzero_axes):
        return None
    # (z, y, x) array axes -> (x, y, z) image index; corners at +-0.5 voxel.
    lo = [nonzero_axes[2][0] - 0.5, nonzero_axes[1][0] - 0.5, nonzero_axes[0][0] - 0.5]
    hi = [nonzero_axes[2][-1] + 0.5, nonzero_axes[1][-1] + 0.5, nonzero_axes[0][-1] + 0.5]
    corners = [
        reference.TransformPhysicalPointToContinuousIndex(layer.TransformContinuousIndexToPhysicalPoint(c))
        for c in itertools.product(*zip(lo, hi))
    ]
    corners = np.asarray(corners)
    size = np.asarray(reference.GetSize())
    start = np.clip(np.floor(corners.min(axis=0) + 0.5).astype(int), 0, size)
    stop = np.clip(np.ceil(corners.max(axis=0) + 0.5).astype(int), 0, size)
    if np.any(stop <= start):
        return None
    return start, stop


def sample_in_voxels(
    image: sitk.Image,
    reference: sitk.Image,
    start: np.ndarray,
    stop: np.ndarray,
    s: int,
    interpolator: int = sitk.sitkNearestNeighbor,
    default_value: float = 0.0,
) -> np.ndarray:
    """Values of ``image`` at s³ points spread regularly inside each ``reference`` voxel in [start, stop).

    Returns an array (z, y, x, s³) in the pixel type of ``image``; points outside ``image`` get
    ``default_value``. Sampling is done by SimpleITK in physical space.
    """
    spacing = np.asarray(reference.GetSpacing())
    offset = (1.0 - s) / (2.0 * s)  # continuous index of the first sub-point in voxel `start`
    grid = sitk.Image([int(n) * s for n in stop - start], sitk.sitkUInt8)
    grid.SetSpacing((spacing / s).tolist())
    grid.SetDirection(reference.GetDirection())
    grid.SetOrigin(reference.TransformContinuousIndexToPhysicalPoint((start + offset).tolist()))
    sampled = sitk.Resample(image, grid, sitk.Transform(), interpolator, default_value, image.GetPixelID())
    nz, ny, nx = (stop - start)[::-1]
    blocks = sitk.GetArrayFromImage(sampled).reshape(nz, s, ny, s, nx, s)
    return blocks.transpose(0, 2, 4, 1, 3, 5).reshape(nz, ny, nx, s**3)


def map_segments(
    segmentation: Segmentation,
    reference: sitk.Image,
    names: list[str] | None = None,
    mode: PartialVoxelMode = "fraction",
    supersampling: int = 3,
) -> dict[str, Structure]:
    """Map segments onto the grid of ``reference`` (the activity image).

    Raises ``SIRTInputError`` for an unknown segment, an empty segment, and for a segment that lies
    (mostly) outside the reference grid.
    """
    if mode not in PARTIAL_VOXEL_MODES:
        raise SIRTInputError(f"unknown partial-voxel mode {mode!r}; choose one of {', '.join(PARTIAL_VOXEL_MODES)}")
    if supersampling < 1:
        raise SIRTInputError(f"supersampling must be at least 1, got {supersampling}")
    wanted = [segmentation.segment(n) for n in (names if names is not None else segmentation.names)]
    s = 1 if mode == "center" else supersampling
    shape = reference.GetSize()[::-1]
    voxel_ml = voxel_volume_ml(reference.GetSpacing())
    result: dict[str, Structure] = {}
    for layer_index in sorted({seg.layer for seg in wanted}):
        layer = segmentation.layers[layer_index]
        check_same_frame_of_reference(layer, reference, f"segmentation {segmentation.source_path}")
        layer_voxel_ml = voxel_volume_ml(layer.GetSpacing())
        layer_array = sitk.GetArrayViewFromImage(layer)
        bbox = _index_bbox(layer, reference)
        samples = sample_in_voxels(layer, reference, *bbox, s) if bbox is not None else None
        for seg in (w for w in wanted if w.layer == layer_index):
            contoured_ml = float(np.count_nonzero(layer_array == seg.label_value)) * layer_voxel_ml
            if contoured_ml == 0:
                raise SIRTInputError(f"segment {seg.name!r} in {segmentation.source_path} is empty")
            weights = np.zeros(shape, dtype=np.float32)
            if samples is not None:
                start, stop = bbox
                fraction = (samples == seg.label_value).mean(axis=-1, dtype=np.float32)
                if mode == "majority":
                    fraction = (fraction >= 0.5).astype(np.float32)
                weights[start[2] : stop[2], start[1] : stop[1], start[0] : stop[0]] = fraction
            structure = Structure(seg.name, weights, contoured_ml, float(weights.sum(dtype=np.float64)) * voxel_ml)
            if structure.coverage < MIN_COVERAGE:
                raise SIRTInputError(
                    f"segment {seg.name!r} lies outside the activity image: only {100 * structure.coverage:.0f} % of its "
                    f"{contoured_ml:.1f} mL maps onto the activity grid (check that image and segmentation are registered)"
                )
            result[seg.name] = structure
    return result
