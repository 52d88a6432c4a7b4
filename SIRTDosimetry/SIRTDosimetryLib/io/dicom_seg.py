"""Reading DICOM Segmentation objects (DICOM-SEG) as a ``Segmentation``, with highdicom.

highdicom assembles the frames into a regular volume (``get_volume``), which checks the frame
positions and fills frames a writer left out because they were empty. Each segment becomes one
layer (label 1) cropped to its bounding box, so that overlapping segments stay separate and a
large image grid costs little memory. A FRACTIONAL segment counts where its value is at least one
half, as the ``majority`` partial-voxel rule does.
"""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset

from ..errors import SIRTInputError
from .dicom_identity import tag_frame_of_reference
from .segment_types import Segment, Segmentation

FRACTION_INSIDE = 0.5
"""A voxel of a FRACTIONAL segment belongs to it from this fraction up."""


def read_dicom_seg(dataset: Dataset, source: str | Path) -> Segmentation:
    """The segments of a DICOM-SEG dataset as a ``Segmentation``; ``source`` names it in messages."""
    try:
        seg = hd.seg.Segmentation.from_dataset(dataset, copy=False)
    except (AttributeError, ValueError, KeyError, TypeError) as error:
        raise SIRTInputError(f"cannot read DICOM-SEG {source}: {error}") from error
    fractional = str(seg.SegmentationType) == "FRACTIONAL"
    layers, segments = [], []
    for description in seg.SegmentSequence:
        number, name = int(description.SegmentNumber), str(description.SegmentLabel)
        try:
            volume = seg.get_volume(
                segment_numbers=[number], combine_segments=False, dtype=np.float32 if fractional else np.uint8
            )
        except (RuntimeError, ValueError) as error:
            raise SIRTInputError(
                f"DICOM-SEG {source}: segment {name!r} does not form a regular volume (missing or uneven frames?): {error}"
            ) from error
        mask = volume.array[..., 0] >= FRACTION_INSIDE if fractional else volume.array[..., 0] > 0
        if not mask.any():
            continue  # an empty segment holds no volume: left out like an empty RTSTRUCT ROI
        layer = _cropped_layer(mask, volume.affine)
        tag_frame_of_reference(layer, str(seg.FrameOfReferenceUID))
        segments.append(Segment(name, len(layers), 1))
        layers.append(layer)
    if not layers:
        raise SIRTInputError(f"DICOM-SEG {source} holds no segmented voxels")
    names = [s.name for s in segments]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SIRTInputError(f"DICOM-SEG {source}: segment labels must be unique, repeated: {', '.join(repeated)}")
    return Segmentation(tuple(layers), tuple(segments), str(source))


def _cropped_layer(mask: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """``mask`` (slice, row, column) cropped to its bounding box, placed by the highdicom ``affine``.

    The affine maps (slice, row, column) indices to LPS millimetres; SimpleITK's x, y, z axes are
    column, row, slice.
    """
    nonzero = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    (k0, k1), (j0, j1), (i0, i1) = [(int(n[0]), int(n[-1]) + 1) for n in nonzero]
    steps = affine[:3, :3]
    spacing = np.linalg.norm(steps, axis=0)
    image = sitk.GetImageFromArray(mask[k0:k1, j0:j1, i0:i1].astype(np.uint8))
    image.SetSpacing((spacing[2], spacing[1], spacing[0]))
    image.SetDirection(np.column_stack([steps[:, 2] / spacing[2], steps[:, 1] / spacing[1], steps[:, 0] / spacing[0]]).flatten().tolist())
    image.SetOrigin((affine[:3, 3] + steps @ np.array([k0, j0, i0], dtype=float)).tolist())
    return image
