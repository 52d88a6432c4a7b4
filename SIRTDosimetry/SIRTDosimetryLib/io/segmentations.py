"""Reading Slicer segmentations (``.seg.nrrd``, multi-layer with overlapping segments) and labelmaps.

A Slicer ``.seg.nrrd`` stores one 3D labelmap per *layer* (a 4D NRRD whose first axis is the
layer list when segments overlap); each segment is a label value in one layer, described by
``SegmentN_Name``, ``SegmentN_Layer`` and ``SegmentN_LabelValue`` header fields. pynrrd reads the
file (SimpleITK cannot read a 4D list-kind NRRD); the geometry is rebuilt as SimpleITK images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import SIRTInputError
from .segment_types import Segment, Segmentation

__all__ = ["Segment", "Segmentation", "read_segmentation", "write_segmentation"]


def _label_array(array: np.ndarray, path: Path) -> np.ndarray:
    """Label values as the smallest unsigned type that holds them all (uint8, uint16 above 255, uint32 above
    65535: a quarter of a float32 grid in the usual case): a narrowing cast would wrap labels around and merge
    segments silently."""
    if array.size == 0:
        raise SIRTInputError(f"{path} holds no voxels")
    low, high = array.min(), array.max()
    if low < 0:
        raise SIRTInputError(f"{path} has negative label values (down to {low}); labels must be 0 (background) or positive integers")
    if high > np.iinfo(np.uint32).max:
        raise SIRTInputError(f"{path} has label value {high}, above the largest supported ({np.iinfo(np.uint32).max})")
    dtype = next(t for t in (np.uint8, np.uint16, np.uint32) if high <= np.iinfo(t).max)
    return array.astype(dtype, copy=False)


def read_segmentation(path: str | Path, label_names: dict[int, str] | None = None) -> Segmentation:
    """Read a Slicer ``.seg.nrrd``, a labelmap image (NRRD, NIfTI, MHA, ...), or DICOM contours.

    DICOM contours are an RTSTRUCT or DICOM-SEG file, or a folder holding one (``io.dicom_contours``).
    For a labelmap, ``label_names`` maps label values to names; unnamed labels are called
    ``label_<value>``.
    """
    path = Path(path)
    if not path.exists():
        raise SIRTInputError(f"segmentation file not found: {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise SIRTInputError(f"segmentation file {path} is empty (0 bytes): the file was not saved or copied completely")
    from .dicom_contours import is_dicom_file, read_dicom_contours  # on demand: pydicom only when DICOM is read

    if path.is_dir() or is_dicom_file(path):
        return read_dicom_contours(path)
    if path.name.lower().endswith(".nrrd"):
        import nrrd  # here, not at import: the Slicer module works on segmentation nodes without pynrrd

        try:
            header = nrrd.read_header(str(path))
        except Exception as exc:  # pynrrd raises several exception types for a bad header
            raise SIRTInputError(f"cannot read segmentation {path}: {exc}") from None
        if any(key.startswith("Segment") and key.endswith("_Name") for key in header):
            return _read_seg_nrrd(path)
    return _read_labelmap(path, label_names or {})


def _read_seg_nrrd(path: Path) -> Segmentation:
    import nrrd

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


def write_segmentation(segmentation: Segmentation, path: str | Path) -> None:
    """Write a Slicer ``.seg.nrrd`` (LPS; one layer per labelmap, the layer axis first when there are several).

    The header carries the fields Slicer's segmentation reader uses (ID, name, colour, extent,
    layer, label value), so the file opens in Slicer and in :func:`read_segmentation` alike.
    All layers must share one grid.
    """
    import nrrd  # here, not at import, as in read_segmentation

    first = segmentation.layers[0]
    for layer in segmentation.layers[1:]:
        if (layer.GetSize(), layer.GetSpacing(), layer.GetOrigin(), layer.GetDirection()) != (
            first.GetSize(), first.GetSpacing(), first.GetOrigin(), first.GetDirection()
        ):
            raise SIRTInputError("the layers of a segmentation to write must share one grid")
    arrays = [sitk.GetArrayFromImage(layer) for layer in segmentation.layers]  # (z, y, x)
    max_label = max(int(a.max()) for a in arrays)
    dtype = np.uint8 if max_label < 256 else np.uint16
    direction = np.asarray(first.GetDirection(), dtype=float).reshape(3, 3)
    axes = [list(map(float, direction[:, j] * first.GetSpacing()[j])) for j in range(3)]  # file axis j = image x, y, z
    several = len(arrays) > 1
    header = {
        "space": "left-posterior-superior",
        "kinds": (["list"] if several else []) + ["domain"] * 3,
        "space directions": ([[np.nan] * 3] if several else []) + axes,
        "space origin": list(map(float, first.GetOrigin())),
        "encoding": "gzip",
        "Segmentation_MasterRepresentation": "Binary labelmap",
        "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
        "Segmentation_ReferenceImageExtentOffset": "0 0 0",
    }
    for index, segment in enumerate(segmentation.segments):
        voxels = np.argwhere(arrays[segment.layer] == segment.label_value)  # (z, y, x) indices
        if len(voxels):
            lo, hi = voxels.min(axis=0)[::-1], voxels.max(axis=0)[::-1]
            extent = " ".join(f"{lo[a]} {hi[a]}" for a in range(3))
        else:  # Slicer's notation for an empty extent
            extent = "0 -1 0 -1 0 -1"
        color = _DEFAULT_COLORS[index % len(_DEFAULT_COLORS)]
        header |= {
            f"Segment{index}_ID": f"Segment_{index + 1}",
            f"Segment{index}_Name": segment.name,
            f"Segment{index}_NameAutoGenerated": "0",
            f"Segment{index}_Color": " ".join(f"{c:.6g}" for c in color),
            f"Segment{index}_ColorAutoGenerated": "1",
            f"Segment{index}_Extent": extent,
            f"Segment{index}_Layer": str(segment.layer),
            f"Segment{index}_LabelValue": str(segment.label_value),
            f"Segment{index}_Tags": "|",
        }
    data = np.stack(arrays, axis=-1) if several else arrays[0]  # C order (z, y, x[, layer]) = file order ([layer,] x, y, z)
    nrrd.write(str(path), data.astype(dtype, copy=False), header, index_order="C")


# Colours of the written segments (Slicer marks them auto-generated); the names carry the meaning.
_DEFAULT_COLORS = ((0.5, 0.68, 0.5), (0.95, 0.84, 0.57), (0.69, 0.48, 0.39), (0.44, 0.71, 0.84), (0.85, 0.4, 0.4))
