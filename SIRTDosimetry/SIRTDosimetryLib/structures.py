"""Mapping segments drawn on another grid (CT, MRI) onto the activity grid.

Each structure becomes a *weight* per activity voxel in [0, 1]. How partial voxels count is a
parameter (``PartialVoxelMode``):

- ``"fraction"`` (default): the fraction of the activity voxel covered by the segment. When the
  two grids are axis-aligned (their direction cosines differ by a permutation and signs, the usual
  case of a PET/SPECT and its CT or MRI), it is exact: every segmentation voxel is a box whose
  overlap with each activity voxel is the product of three interval overlaps, so the weights are
  the segment mask contracted with three sparse one-dimensional overlap matrices, and the mapped
  volume equals the contoured volume inside the image to rounding. On oblique grids it is
  estimated by sampling the segment at ``s³`` points spread regularly inside the voxel (s = 3);
  each point takes the label of the segmentation voxel it falls in.
  Volumes, masses and means are weighted by this fraction, which keeps structure volumes equal to
  the contoured ones on coarse SPECT/PET grids, sub-mL lesions included.
- ``"center"``: a voxel belongs to the structure when its centre lies in it (weight 0 or 1).
- ``"majority"``: weight 1 where the covered fraction is at least one half, else 0.

Sampling uses SimpleITK's resampler in physical space, so direction cosines, negative axis
directions and differing origins are honoured. Only the bounding box of each segment (or layer,
when sampling) is ever processed, never the whole activity grid at a finer resolution.
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


def _axis_permutation(layer: sitk.Image, reference: sitk.Image, tolerance: float = 1e-6) -> np.ndarray | None:
    """``M = D_ref^T · D_layer`` when it is a signed permutation (the grids are axis-aligned), else None."""
    d_ref = np.reshape(reference.GetDirection(), (3, 3))
    d_layer = np.reshape(layer.GetDirection(), (3, 3))
    m = d_ref.T @ d_layer
    rounded = np.round(m)
    if np.max(np.abs(m - rounded)) > tolerance or not np.array_equal(np.abs(rounded).sum(axis=0), np.ones(3)):
        return None
    return rounded


def _overlap_matrix(n_ref: int, first: int, count: int, offset: float, step: float):
    """Sparse (reference voxels × segmentation voxels) overlap lengths along one axis, in reference voxels.

    Segmentation voxel ``first + i`` spans the reference continuous indices ``offset + step·(first + i ∓ ½)``;
    reference voxel ``a`` spans [a − ½, a + ½]. Returns (start, matrix) with rows for reference voxels
    ``start, start + 1, ...`` inside the grid, or None when the segment misses the grid on this axis.
    """
    from scipy.sparse import csr_matrix  # only here: scipy is slow to import

    index = np.arange(first, first + count, dtype=np.float64)
    ends = np.stack([offset + step * (index - 0.5), offset + step * (index + 0.5)])
    low, high = ends.min(axis=0), ends.max(axis=0)
    start = max(int(np.floor(low.min() + 0.5)), 0)
    stop = min(int(np.ceil(high.max() + 0.5)), n_ref)
    if stop <= start:
        return None
    lowest = np.floor(low + 0.5).astype(np.int64)
    rows, cols, values = [], [], []
    for k in range(int(np.ceil(abs(step))) + 2):  # reference voxels one segmentation voxel can touch
        a = lowest + k
        overlap = np.minimum(high, a + 0.5) - np.maximum(low, a - 0.5)
        keep = (overlap > 0) & (a >= start) & (a < stop)
        rows.append(a[keep] - start)
        cols.append(np.flatnonzero(keep))
        values.append(overlap[keep])
    matrix = csr_matrix(
        (np.concatenate(values).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))), shape=(stop - start, count)
    )
    return start, matrix


def exact_fractions(mask: np.ndarray, layer: sitk.Image, reference: sitk.Image, permutation: np.ndarray) -> np.ndarray:
    """Exact covered fraction of every ``reference`` voxel by the boolean ``mask`` (z, y, x) on ``layer``'s grid.

    The grids must be axis-aligned (``permutation`` from ``_axis_permutation``). A box voxel's
    overlap with another box is the product of its three interval overlaps, so the fractions are
    ``mask`` contracted along each axis with a sparse matrix of interval overlaps, exact to rounding.
    """
    weights = np.zeros(reference.GetSize()[::-1], dtype=np.float32)
    axes = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    if any(len(a) == 0 for a in axes):
        return weights
    first = [int(axes[2 - m][0]) for m in range(3)]  # per layer axis m (x, y, z)
    count = [int(axes[2 - m][-1]) - first[m] + 1 for m in range(3)]
    block = mask[first[2] : first[2] + count[2], first[1] : first[1] + count[1], first[0] : first[0] + count[0]].astype(np.float32)
    # Continuous reference index of layer index i: c = t + (S_ref^-1 · M · S_layer) · i
    origin_index = np.asarray(reference.TransformPhysicalPointToContinuousIndex(layer.GetOrigin()))
    scale = permutation * np.asarray(layer.GetSpacing())[None, :] / np.asarray(reference.GetSpacing())[:, None]
    target_axis = [int(np.flatnonzero(permutation[:, m])[0]) for m in range(3)]  # reference axis of layer axis m
    size = reference.GetSize()
    start = [0, 0, 0]
    for m in range(3):
        p = target_axis[m]
        found = _overlap_matrix(size[p], first[m], count[m], origin_index[p], scale[p, m])
        if found is None:
            return weights
        start[p], matrix = found
        numpy_axis = 2 - m
        moved = np.moveaxis(block, numpy_axis, 0)
        contracted = matrix @ moved.reshape(moved.shape[0], -1)
        block = np.moveaxis(np.asarray(contracted).reshape((matrix.shape[0], *moved.shape[1:])), 0, numpy_axis)
    # Numpy axis q of block now indexes reference axis target_axis[2 - q]; put them in (z, y, x) order.
    order = [[target_axis[2 - q] for q in range(3)].index(p) for p in (2, 1, 0)]
    block = np.clip(np.transpose(block, order), 0.0, 1.0)
    nz, ny, nx = block.shape
    weights[start[2] : start[2] + nz, start[1] : start[1] + ny, start[0] : start[0] + nx] = block
    return weights


def map_segments(
    segmentation: Segmentation,
    reference: sitk.Image,
    names: list[str] | None = None,
    mode: PartialVoxelMode = "fraction",
    supersampling: int = 3,
) -> dict[str, Structure]:
    """Map segments onto the grid of ``reference`` (the activity image).

    ``fraction`` and ``majority`` are exact on axis-aligned grids; ``supersampling`` is used on
    oblique grids and by ``center`` (one sample). Raises ``SIRTInputError`` for an unknown segment,
    an empty segment, and for a segment that lies (mostly) outside the reference grid.
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
        permutation = _axis_permutation(layer, reference) if mode != "center" else None
        samples = bbox = None
        if permutation is None:
            bbox = _index_bbox(layer, reference)
            samples = sample_in_voxels(layer, reference, *bbox, s) if bbox is not None else None
        for seg in (w for w in wanted if w.layer == layer_index):
            mask = layer_array == seg.label_value
            contoured_ml = float(np.count_nonzero(mask)) * layer_voxel_ml
            if contoured_ml == 0:
                raise SIRTInputError(f"segment {seg.name!r} in {segmentation.source_path} is empty")
            if permutation is not None:
                weights = exact_fractions(mask, layer, reference, permutation)
            else:
                weights = np.zeros(shape, dtype=np.float32)
                if samples is not None:
                    start, stop = bbox
                    weights[start[2] : stop[2], start[1] : stop[1], start[0] : stop[0]] = (samples == seg.label_value).mean(axis=-1, dtype=np.float32)
            if mode == "majority":
                weights = (weights >= 0.5).astype(np.float32)
            structure = Structure(seg.name, weights, contoured_ml, float(weights.sum(dtype=np.float64)) * voxel_ml)
            if structure.coverage < MIN_COVERAGE:
                raise SIRTInputError(
                    f"segment {seg.name!r} lies outside the activity image: only {100 * structure.coverage:.0f} % of its "
                    f"{contoured_ml:.1f} mL maps onto the activity grid (check that image and segmentation are registered)"
                )
            result[seg.name] = structure
    return result
