"""Reading DICOM RT Structure Sets (RTSTRUCT) as a ``Segmentation``.

Each ROI with closed planar contours becomes one layer (label 1) on its own grid: axes along the
contour planes, a fine in-plane pixel (``PIXEL_MM``) and one slice per contour plane, the slices
being as thick as the distance between neighbouring planes. Mapping onto the activity grid then
follows the same partial-voxel rules as a ``.seg.nrrd`` (``structures.map_segments``).

The rasteriser is written here rather than taken from rt-utils, because rt-utils rasterises only
onto the pixel grid of the image series the structure set references (the planning CT, which the
dosimetry often does not have) and fills each polygon on its own, so that inner contours
(holes) are filled instead of cut out. Here all polygons of a plane are filled together with the
even-odd rule, as DICOM (PS3.3 C.8.8.6) and treatment-planning systems treat nested contours.

ROIs without closed planar contours (points, open lines, empty ROIs) hold no volume and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag

from ..errors import SIRTInputError
from .dicom_identity import tag_frame_of_reference
from .segment_types import Segment, Segmentation

PIXEL_MM = 0.5
"""Largest in-plane pixel of the rasterised contours: fine against PET/SPECT voxels (2-5 mm), so
that the sub-voxel samples of the partial-voxel rules see each polygon to within a quarter millimetre.

Where all vertices of an ROI lie on a regular lattice along an axis (contours traced along the
pixel edges of an image, as labelmap-based tools export them), the pixel divides that lattice step
and its edges fall on the lattice, so that the raster reproduces the polygons exactly."""

LATTICE_TOLERANCE_MM = 1e-3
"""Vertices this close to a lattice point count as on it (coordinates are written to ~4 decimals)."""

MAX_RASTER_VOXELS = 2**25
"""Largest raster of one ROI (32 MiB as uint8): larger ROIs (a body outline) get coarser pixels."""

MIN_LATTICE_STEP_MM = 0.25
"""A finer vertex lattice is not followed (the raster would grow by its square)."""

MAX_LATTICE_DIVISOR = 8
"""The lattice step is looked for among the smallest gap between vertex coordinates divided by 1 to this."""

PLANE_TOLERANCE_MM = 0.05
"""Contours whose heights differ by less than this lie on the same plane; a contour spread more than
this out of its plane, or a plane further than this from the slice lattice, is refused."""


CONTOUR_DATA = Tag(0x3006, 0x0050)


@dataclass(frozen=True)
class _Frame:
    """Orthonormal axes of the contour planes (u, v in the plane, n = u × v) and the slice lattice."""

    u: np.ndarray
    v: np.ndarray
    n: np.ndarray
    slice_mm: float
    first_plane_mm: float


def read_rtstruct(dataset: Dataset, source: str | Path) -> Segmentation:
    """The ROIs of an RTSTRUCT dataset as a ``Segmentation``; ``source`` names it in messages."""
    names = {int(item.ROINumber): str(item.ROIName) for item in dataset.get("StructureSetROISequence", [])}
    frames = {
        int(item.ROINumber): str(item.get("ReferencedFrameOfReferenceUID", "")) or None
        for item in dataset.get("StructureSetROISequence", [])
    }
    contours: dict[int, list[np.ndarray]] = {}
    for roi in dataset.get("ROIContourSequence", []):
        number = int(roi.ReferencedROINumber)
        polygons = [
            points
            for item in roi.get("ContourSequence", [])
            if str(item.get("ContourGeometricType", "")).upper() == "CLOSED_PLANAR"
            and len(points := _contour_points(item, source)) >= 3
        ]
        if polygons:
            contours[number] = polygons
    unnamed = sorted(set(contours) - set(names))
    if unnamed:
        raise SIRTInputError(f"RTSTRUCT {source}: ROI number(s) {unnamed} have contours but no Structure Set ROI entry")
    if not contours:
        raise SIRTInputError(f"RTSTRUCT {source} holds no closed planar contours")
    frame = _contour_frame([p for polygons in contours.values() for p in polygons], source)
    layers, segments = [], []
    for number, polygons in contours.items():
        layer = _rasterise(polygons, frame)
        tag_frame_of_reference(layer, frames.get(number) or _structure_set_frame(dataset))
        segments.append(Segment(names[number], len(layers), 1))
        layers.append(layer)
    repeated = sorted({s.name for s in segments if [t.name for t in segments].count(s.name) > 1})
    if repeated:
        raise SIRTInputError(f"RTSTRUCT {source}: ROI names must be unique, repeated: {', '.join(repeated)}")
    return Segmentation(tuple(layers), tuple(segments), str(source))


def _contour_points(item: Dataset, source: str | Path) -> np.ndarray:
    """Contour Data (3006,0050) as an (n, 3) array.

    Parsed from the raw bytes where the element has not been decoded yet: pydicom makes one
    validated decimal-string object per coordinate, which takes seconds for a clinical structure set.
    """
    element = item.get_item(CONTOUR_DATA)
    if element is None:
        return np.zeros((0, 3))
    raw = element.value
    try:
        if isinstance(raw, bytes):
            values = np.array(raw.replace(b"\\", b" ").split(), dtype=float)
        else:
            values = np.asarray(raw if isinstance(raw, (list, tuple, MultiValue)) else [raw], dtype=float)
    except ValueError as error:
        raise SIRTInputError(f"RTSTRUCT {source}: Contour Data holds a value that is not a number") from error
    if values.size % 3:
        raise SIRTInputError(f"RTSTRUCT {source}: Contour Data holds {values.size} values, not x, y, z triplets")
    return values.reshape(-1, 3)


def _structure_set_frame(dataset: Dataset) -> str | None:
    """The Frame of Reference UID of the structure set, for ROIs that do not name their own."""
    items = dataset.get("ReferencedFrameOfReferenceSequence") or []
    uid = str(items[0].get("FrameOfReferenceUID", "")) if items else ""
    return uid or None


def _contour_frame(polygons: list[np.ndarray], source: str | Path) -> _Frame:
    """Axes of the contour planes and the slice lattice they lie on; all polygons must be parallel."""
    normals = []
    for polygon in polygons:
        normal = _newell_normal(polygon)
        if np.linalg.norm(normal) > 0:
            normals.append(normal / np.linalg.norm(normal))
            _check_planar(polygon, normals[-1], source)
    if not normals:
        raise SIRTInputError(f"RTSTRUCT {source}: every contour is degenerate (no area)")
    n = normals[0] * np.sign(normals[0][np.argmax(np.abs(normals[0]))])
    if min(abs(float(np.dot(n, other))) for other in normals) < 1 - 1e-4:
        raise SIRTInputError(f"RTSTRUCT {source}: contours lie on non-parallel planes; only parallel planes can be stacked")
    axis = np.eye(3)[int(np.argmin(np.abs(n)))] if abs(n[0]) > 0.9 else np.array([1.0, 0.0, 0.0])
    u = axis - np.dot(axis, n) * n
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    heights = []
    for polygon in polygons:
        _check_planar(polygon, n, source)
        heights.append(float((polygon @ n).mean()))
    ordered = np.sort(heights)
    groups = np.split(ordered, np.flatnonzero(np.diff(ordered) > PLANE_TOLERANCE_MM) + 1)
    planes = np.array([group.mean() for group in groups])
    if planes.size < 2:
        raise SIRTInputError(f"RTSTRUCT {source}: all contours lie on one plane, so their slice thickness is unknown")
    step = float(np.diff(planes).min())
    steps = (planes - planes[0]) / step
    if np.abs(steps - np.round(steps)).max() * step > PLANE_TOLERANCE_MM:
        raise SIRTInputError(
            f"RTSTRUCT {source}: contour planes are not evenly spaced (closest {step:.3f} mm apart); "
            "they must lie on the slices of one image series"
        )
    return _Frame(u, v, n, step, float(planes[0]))


def _check_planar(polygon: np.ndarray, normal: np.ndarray, source: str | Path) -> None:
    spread = float(np.ptp(polygon @ normal))
    if spread > PLANE_TOLERANCE_MM:
        raise SIRTInputError(f"RTSTRUCT {source}: a contour is not planar ({spread:.2f} mm out of its plane)")


def _newell_normal(polygon: np.ndarray) -> np.ndarray:
    """Area-weighted normal of a closed polygon (Newell's method), robust to collinear vertices."""
    following = np.roll(polygon, -1, axis=0)
    return np.cross(polygon, following).sum(axis=0)


def _rasterise(polygons: list[np.ndarray], frame: _Frame) -> sitk.Image:
    """The polygons of one ROI filled (even-odd per plane) on a grid of PIXEL_MM × PIXEL_MM × slice."""
    in_plane = [np.column_stack([p @ frame.u, p @ frame.v]) for p in polygons]
    points = np.vstack(in_plane)
    slices = [int(round((float((p @ frame.n).mean()) - frame.first_plane_mm) / frame.slice_mm)) for p in polygons]
    first, last = min(slices), max(slices)
    extent = points.max(axis=0) - points.min(axis=0)
    coarsest = float(np.sqrt(np.prod(extent + 2 * PIXEL_MM) * (last - first + 1) / MAX_RASTER_VOXELS))
    pixel, start = np.empty(2), np.empty(2)
    for axis in range(2):
        pixel[axis], start[axis] = _pixel_lattice(points[:, axis], coarsest)
    size = np.ceil((points.max(axis=0) - start) / pixel - LATTICE_TOLERANCE_MM).astype(int) + 1
    # uint8 counts wrap around at 256, which keeps their parity: all the even-odd rule needs.
    toggles = np.zeros((last - first + 1, size[1], size[0] + 1), dtype=np.uint8)
    for polygon, k in zip(in_plane, slices):
        _add_crossings(toggles[k - first], polygon, start, pixel)
    mask = np.cumsum(toggles, axis=2, dtype=np.uint8)[..., :-1] & 1
    image = sitk.GetImageFromArray(mask)
    image.SetSpacing((pixel[0], pixel[1], frame.slice_mm))
    image.SetDirection(np.column_stack([frame.u, frame.v, frame.n]).flatten().tolist())
    centre = start + pixel / 2
    origin = centre[0] * frame.u + centre[1] * frame.v + (frame.first_plane_mm + first * frame.slice_mm) * frame.n
    image.SetOrigin(origin.tolist())
    return image


def _pixel_lattice(values: np.ndarray, coarsest: float) -> tuple[float, float]:
    """Pixel size and first pixel edge along one in-plane axis for vertex coordinates ``values`` (mm).

    Pixels below ``coarsest`` are not used (a large ROI such as the body outline would not fit in memory).
    """
    if coarsest > PIXEL_MM:
        return coarsest, float(values.min())
    unique = np.unique(values)
    steps = np.diff(unique)
    steps = steps[steps > LATTICE_TOLERANCE_MM]
    span = float(unique[-1] - unique[0])
    for divisor in range(1, MAX_LATTICE_DIVISOR + 1) if steps.size else ():
        # the lattice step divides the smallest gap; refined over the whole span (coordinates are rounded)
        step = span / np.round(span / (float(steps.min()) / divisor))
        if step < MIN_LATTICE_STEP_MM:
            break
        multiples = (unique - unique[0]) / step
        if np.abs(multiples - np.round(multiples)).max() * step <= LATTICE_TOLERANCE_MM:
            return step / np.ceil(step / PIXEL_MM), float(unique[0])
    return PIXEL_MM, float(np.floor(unique[0] / PIXEL_MM) * PIXEL_MM)


def _add_crossings(toggles: np.ndarray, polygon: np.ndarray, start: np.ndarray, pixel: np.ndarray) -> None:
    """Mark where each row of pixel centres crosses an edge of ``polygon`` (even-odd scanline fill).

    Row j has its centres at v = start_v + (j + ½)·pixel_v; an edge crossing it at u toggles the
    inside state from the first centre at or right of u onwards (``toggles[j, i]``). The half-open
    rule (edge spans [v0, v1)) counts a vertex on a row once.
    """
    u0, v0 = polygon[:, 0], polygon[:, 1]
    u1, v1 = np.roll(u0, -1), np.roll(v0, -1)
    rows = (np.arange(toggles.shape[0]) + 0.5) * pixel[1] + start[1]
    low, high = np.minimum(v0, v1), np.maximum(v0, v1)
    first = np.searchsorted(rows, low, side="left")
    stop = np.searchsorted(rows, high, side="left")
    counts = stop - first
    edge = np.repeat(np.arange(len(u0)), counts)
    row = np.repeat(first, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    t = (rows[row] - v0[edge]) / (v1[edge] - v0[edge])
    u = u0[edge] + t * (u1[edge] - u0[edge])
    column = np.clip(np.ceil((u - start[0]) / pixel[0] - 0.5).astype(int), 0, toggles.shape[1] - 1)
    np.add.at(toggles, (row, column), 1)
