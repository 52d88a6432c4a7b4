"""Reading Slicer segmentations (``.seg.nrrd``, multi-layer with overlapping segments) and labelmaps.

A Slicer ``.seg.nrrd`` stores one 3D labelmap per *layer* (a 4D NRRD whose first axis is the
layer list when segments overlap); each segment is a label value in one layer, described by
``SegmentN_Name``, ``SegmentN_Layer`` and ``SegmentN_LabelValue`` header fields. pynrrd reads the
file (SimpleITK cannot read a 4D list-kind NRRD); the geometry is rebuilt as SimpleITK images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nrrd
import numpy as np
import SimpleITK as sitk

from ..errors import SIRTInputError


@dataclass(frozen=True)
class Segment:
    name: str
    layer: int
    label_value: int


@dataclass(frozen=True)
class Segmentation:
    """Labelmap layers on one grid, and the segments they hold."""

    layers: tuple[sitk.Image, ...]
    segments: tuple[Segment, ...]
    source_path: str

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.segments]

    def segment(self, name: str) -> Segment:
        for s in self.segments:
            if s.name == name:
                return s
        matches = [s for s in self.segments if s.name.lower() == name.lower()]
        if len(matches) == 1:
            return matches[0]
        raise SIRTInputError(
            f"segment {name!r} not found in {self.source_path}; segments are: {', '.join(map(repr, self.names))}"
        )

    def mask(self, name: str) -> np.ndarray:
        """Boolean mask of a segment on the segmentation's own grid, indexed (z, y, x)."""
        s = self.segment(name)
        return sitk.GetArrayViewFromImage(self.layers[s.layer]) == s.label_value


def _label_array(array: np.ndarray, path: Path) -> np.ndarray:
    """Label values as the smallest unsigned type that holds them all (uint16, or uint32 above 65535):
    a narrowing cast would wrap labels around and merge segments silently."""
    if array.size == 0:
        raise SIRTInputError(f"{path} holds no voxels")
    low, high = array.min(), array.max()
    if low < 0:
        raise SIRTInputError(f"{path} has negative label values (down to {low}); labels must be 0 (background) or positive integers")
    if high > np.iinfo(np.uint32).max:
        raise SIRTInputError(f"{path} has label value {high}, above the largest supported ({np.iinfo(np.uint32).max})")
    dtype = np.uint16 if high <= np.iinfo(np.uint16).max else np.uint32
    return array.astype(dtype, copy=False)


def read_segmentation(path: str | Path, label_names: dict[int, str] | None = None) -> Segmentation:
    """Read a Slicer ``.seg.nrrd`` or a labelmap image (NRRD, NIfTI, MHA, ...).

    For a labelmap, ``label_names`` maps label values to names; unnamed labels are called
    ``label_<value>``.
    """
    path = Path(path)
    if not path.exists():
        raise SIRTInputError(f"segmentation file not found: {path}")
    if not path.is_file():
        raise SIRTInputError(f"segmentation {path} is a folder; give the .seg.nrrd or labelmap file")
    if path.stat().st_size == 0:
        raise SIRTInputError(f"segmentation file {path} is empty (0 bytes): the file was not saved or copied completely")
    if path.name.lower().endswith(".nrrd"):
        try:
            header = nrrd.read_header(str(path))
        except Exception as exc:  # pynrrd raises several exception types for a bad header
            raise SIRTInputError(f"cannot read segmentation {path}: {exc}") from None
        if any(key.startswith("Segment") and key.endswith("_Name") for key in header):
            return _read_seg_nrrd(path)
    return _read_labelmap(path, label_names or {})


def _read_seg_nrrd(path: Path) -> Segmentation:
    try:
        data, header = nrrd.read(str(path), index_order="C")
    except Exception as exc:
        raise SIRTInputError(f"cannot read segmentation {path}: {exc}") from None
    kinds = header.get("kinds", [])
    directions = np.asarray(header["space directions"], dtype=float)
    if data.ndim == 4:
        if kinds[0] != "list":
            raise SIRTInputError(f"{path}: a 4D segmentation needs the layer axis first (kinds {kinds})")
        layers_data = [data[..., layer] for layer in range(data.shape[-1])]  # C order: (z, y, x, layer)
        directions = directions[1:]
    elif data.ndim == 3:
        layers_data = [data]
    else:
        raise SIRTInputError(f"{path}: expected a 3D or 4D segmentation, got {data.ndim}D")
    origin = np.asarray(header.get("space origin", [0.0, 0.0, 0.0]), dtype=float)
    space = header.get("space", "left-posterior-superior")
    if space in ("right-anterior-superior", "RAS"):
        # SimpleITK works in LPS: flip the x and y components.
        flip = np.array([-1.0, -1.0, 1.0])
        directions = directions * flip
        origin = origin * flip
    elif space not in ("left-posterior-superior", "LPS"):
        raise SIRTInputError(f"{path}: unsupported NRRD space {space!r}")
    spacing = np.linalg.norm(directions, axis=1)
    if not np.all(spacing > 0):
        raise SIRTInputError(f"{path}: degenerate space directions {directions.tolist()}")
    direction_matrix = (directions / spacing[:, None]).T  # column j = unit vector of axis j
    layers = []
    for layer_data in layers_data:
        image = sitk.GetImageFromArray(_label_array(np.ascontiguousarray(layer_data), path))
        image.SetSpacing(spacing.tolist())
        image.SetOrigin(origin.tolist())
        image.SetDirection(direction_matrix.flatten().tolist())
        layers.append(image)
    segments = []
    index = 0
    while f"Segment{index}_Name" in header:
        layer = int(header.get(f"Segment{index}_Layer", 0))
        if layer >= len(layers):
            raise SIRTInputError(f"{path}: segment {index} names layer {layer} but the file has {len(layers)}")
        segments.append(Segment(header[f"Segment{index}_Name"], layer, int(header[f"Segment{index}_LabelValue"])))
        index += 1
    names = [s.name for s in segments]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise SIRTInputError(f"{path}: segment names must be unique, repeated: {', '.join(duplicated)}")
    return Segmentation(tuple(layers), tuple(segments), str(path))


def _read_labelmap(path: Path, label_names: dict[int, str]) -> Segmentation:
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise SIRTInputError(f"cannot read labelmap {path}: {str(exc).strip().splitlines()[-1]}") from None
    if image.GetDimension() != 3:
        raise SIRTInputError(f"labelmap {path} must be 3D, got {image.GetDimension()}D")
    array = sitk.GetArrayViewFromImage(image)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.mod(array, 1) == 0):
            raise SIRTInputError(f"labelmap {path} has non-integer voxel values: is it an image rather than labels?")
    values = [int(v) for v in np.unique(array) if v > 0]
    if not values:
        raise SIRTInputError(f"labelmap {path} has no labelled voxels")
    unknown = sorted(set(label_names) - set(values))
    if unknown:
        raise SIRTInputError(f"labels {unknown} named but absent from {path}; labels present: {values}")
    layer = sitk.GetImageFromArray(_label_array(array, path))
    layer.CopyInformation(image)
    segments = tuple(Segment(label_names.get(v, f"label_{v}"), 0, v) for v in values)
    return Segmentation((layer,), segments, str(path))
