"""MRML nodes ↔ SimpleITK images and ``Segmentation`` objects.

Coordinate conventions
----------------------
MRML stores a volume's geometry as an IJK-to-RAS matrix on the *node* (the ``vtkImageData`` keeps
origin 0 and spacing 1); SimpleITK (like DICOM and ITK) works in LPS. The two differ by a sign flip
of the first two physical axes, F = diag(-1, -1, 1):

    IJK-to-LPS = F · IJK-to-RAS,   spacing_j = |column j|,   direction[:, j] = column j / spacing_j

and the origin (physical position of voxel (0, 0, 0)) is the last column, flipped the same way.
Voxel arrays are shared in the same (z, y, x) order on both sides (VTK scalars run x fastest).

Slicer may order the voxels of a file differently from the file itself (for example it reads the
negative-z SPECT of sample patient 2 with a positive z axis and the slices reversed), so geometry
always comes from the node, never from the file it was read from; an output created here gets the
input node's IJK-to-RAS matrix and parent transform exactly.

Transforms
----------
Images are handed to the engine in the activity node's *local* frame. A segmentation under a
different parent transform is brought into that frame with the linear transform between the two
nodes; a non-linear (warping) transform between them is refused: harden it first.
"""

from __future__ import annotations

import hashlib

import numpy as np
import SimpleITK as sitk

from ..errors import SIRTInputError
from ..io.segmentations import Segment, Segmentation
from ._vtk import numpy_support, slicer_module, vtk

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
"""Multiplying a homogeneous RAS point (or a 4×4 matrix into RAS) by this gives LPS; it is its own inverse."""


# ---------------------------------------------------------------------------------------------
# matrices


def vtk_matrix_to_numpy(matrix) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)], dtype=float)


def numpy_to_vtk_matrix(array: np.ndarray):
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def ijk_to_ras_from_image(image: sitk.Image) -> np.ndarray:
    """4×4 IJK-to-RAS matrix of a SimpleITK (LPS) image."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=float)[None, :]
    ijk_to_lps[:3, 3] = image.GetOrigin()
    return LPS_FROM_RAS @ ijk_to_lps


def set_image_geometry(image: sitk.Image, ijk_to_ras: np.ndarray, what: str) -> None:
    """Give ``image`` the geometry of an IJK-to-RAS matrix (converted to LPS)."""
    ijk_to_lps = LPS_FROM_RAS @ ijk_to_ras
    axes = ijk_to_lps[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    if not np.all(spacing > 0) or abs(np.linalg.det(axes)) < 1e-12 * float(np.prod(spacing)):
        raise SIRTInputError(f"{what} has a degenerate IJK-to-RAS matrix: {ijk_to_ras[:3].tolist()}")
    image.SetSpacing(spacing.tolist())
    image.SetDirection((axes / spacing[None, :]).flatten().tolist())
    image.SetOrigin(ijk_to_lps[:3, 3].tolist())


def node_ijk_to_ras(node) -> np.ndarray:
    """4×4 IJK-to-RAS matrix of a volume node (its local frame)."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return vtk_matrix_to_numpy(matrix)


def transform_between(source_node, target_node, what: str) -> np.ndarray:
    """Matrix from the local frame of ``source_node`` to that of ``target_node`` (both MRML transformable nodes)."""
    source, target = source_node.GetParentTransformNode(), target_node.GetParentTransformNode()
    if source is None and target is None:
        return np.eye(4)
    if source is not None and target is not None and source.GetID() == target.GetID():
        return np.eye(4)
    matrix = vtk.vtkMatrix4x4()
    if not slicer_module().vtkMRMLTransformNode.GetMatrixTransformBetweenNodes(source, target, matrix):
        raise SIRTInputError(
            f"{what}: the transform between {source_node.GetName()!r} and {target_node.GetName()!r} is not linear; "
            "harden the transforms (Data module, right-click, Harden transform) and try again"
        )
    return vtk_matrix_to_numpy(matrix)


# ---------------------------------------------------------------------------------------------
# volumes


def _scalars_array(image_data, what: str) -> np.ndarray:
    if image_data is None or image_data.GetPointData() is None or image_data.GetPointData().GetScalars() is None:
        raise SIRTInputError(f"{what} has no voxel data")
    scalars = image_data.GetPointData().GetScalars()
    if scalars.GetNumberOfComponents() != 1:
        raise SIRTInputError(f"{what} must be a scalar volume, it has {scalars.GetNumberOfComponents()} components per voxel")
    nx, ny, nz = image_data.GetDimensions()
    return numpy_support.vtk_to_numpy(scalars).reshape(nz, ny, nx)


def volume_array(node) -> np.ndarray:
    """The node's voxels as a read-only (z, y, x) view (no copy)."""
    array = _scalars_array(node.GetImageData(), f"volume {node.GetName()!r}")
    array = array.view()
    array.flags.writeable = False
    return array


def image_from_volume_node(node, dtype=np.float64, ijk_to_ras: np.ndarray | None = None) -> sitk.Image:
    """A SimpleITK image (LPS) with the voxels and geometry of a scalar volume node.

    The voxels are copied (the node is never modified). ``ijk_to_ras`` replaces the node's matrix,
    e.g. to express it in another node's frame. A vtkImageData extent that does not start at 0 is
    honoured by moving the origin.
    """
    what = f"volume {node.GetName()!r}"
    image_data = node.GetImageData()
    array = _scalars_array(image_data, what)
    matrix = node_ijk_to_ras(node) if ijk_to_ras is None else np.asarray(ijk_to_ras, dtype=float)
    extent = image_data.GetExtent()
    start = np.array([extent[0], extent[2], extent[4], 1.0])
    if np.any(start[:3] != 0):
        matrix = matrix.copy()
        matrix[:, 3] = matrix @ start
    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=dtype))
    set_image_geometry(image, matrix, what)
    return image


def voxels_sha256(node) -> str:
    """SHA-256 of a volume node's voxel bytes, shape, type and IJK-to-RAS matrix: identifies its content."""
    array = np.ascontiguousarray(volume_array(node))
    digest = hashlib.sha256()
    digest.update(str((array.shape, array.dtype.str)).encode())
    digest.update(array.tobytes())
    digest.update(np.ascontiguousarray(node_ijk_to_ras(node)).tobytes())
    return digest.hexdigest()


def _vtk_image_data(array: np.ndarray):
    array = np.ascontiguousarray(array)
    nz, ny, nx = array.shape
    image_data = vtk.vtkImageData()
    image_data.SetDimensions(nx, ny, nz)
    vtk_array = numpy_support.numpy_to_vtk(array.ravel(), deep=True)
    vtk_array.SetName("ImageScalars")
    image_data.GetPointData().SetScalars(vtk_array)
    return image_data


def set_volume_from_image(node, image: sitk.Image, dtype=None) -> None:
    """Replace a volume node's voxels and IJK-to-RAS matrix with those of a SimpleITK image."""
    array = sitk.GetArrayViewFromImage(image)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    node.SetIJKToRASMatrix(numpy_to_vtk_matrix(ijk_to_ras_from_image(image)))
    node.SetAndObserveImageData(_vtk_image_data(array))


def add_volume_node(scene, image: sitk.Image, name: str, class_name: str = "vtkMRMLScalarVolumeNode", dtype=None):
    """A new volume node in ``scene`` holding ``image`` (voxels copied, geometry converted LPS → RAS)."""
    node = scene.AddNewNodeByClass(class_name, name)
    set_volume_from_image(node, image, dtype)
    return node


def same_geometry(node_a, node_b, tolerance: float = 1e-6) -> bool:
    """Same dimensions and IJK-to-RAS matrix (to ``tolerance`` mm)."""
    dims_a, dims_b = node_a.GetImageData().GetDimensions(), node_b.GetImageData().GetDimensions()
    return dims_a == dims_b and np.allclose(node_ijk_to_ras(node_a), node_ijk_to_ras(node_b), atol=tolerance, rtol=0)


# ---------------------------------------------------------------------------------------------
# segmentations


def segment_names(segmentation_node) -> list[str]:
    segmentation = segmentation_node.GetSegmentation()
    return [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]


def _segment_ids_by_name(segmentation_node, names: list[str] | None) -> list[tuple[str, str]]:
    """(segment ID, name) pairs in the segmentation's order; names matched as ``Segmentation.segment`` does."""
    segmentation = segmentation_node.GetSegmentation()
    pairs = [(segmentation.GetNthSegmentID(i), segmentation.GetNthSegment(i).GetName()) for i in range(segmentation.GetNumberOfSegments())]
    if not pairs:
        raise SIRTInputError(f"segmentation {segmentation_node.GetName()!r} has no segments")
    all_names = [n for _, n in pairs]
    duplicated = sorted({n for n in all_names if all_names.count(n) > 1})
    if names is None:
        if duplicated:
            raise SIRTInputError(
                f"segmentation {segmentation_node.GetName()!r}: segment names must be unique, repeated: {', '.join(duplicated)}"
            )
        return pairs
    chosen = []
    for wanted in dict.fromkeys(names):
        matches = [p for p in pairs if p[1] == wanted] or [p for p in pairs if p[1].lower() == wanted.lower()]
        if len(matches) != 1:
            problem = "is repeated" if matches else "not found"
            raise SIRTInputError(
                f"segment {wanted!r} {problem} in segmentation {segmentation_node.GetName()!r}; "
                f"segments are: {', '.join(map(repr, all_names))}"
            )
        chosen.append(matches[0])
    order = {segment_id: i for i, (segment_id, _) in enumerate(pairs)}
    return sorted(chosen, key=lambda p: order[p[0]])


def segmentation_from_node(segmentation_node, reference_node=None, names: list[str] | None = None) -> Segmentation:
    """The segments of a segmentation node as a ``Segmentation`` on their own (contouring) grid.

    Each shared labelmap layer of the node becomes one layer (segments in a layer never overlap),
    exported with ``ExportSegmentsToLabelmapNode`` over the union of its segments' extent, without
    resampling, so that partial-voxel weights are computed from the original contours. Geometry is
    expressed in the local frame of ``reference_node`` (the activity volume) when given.

    The segmentation node is not modified, except that a segmentation whose source representation is
    not a binary labelmap (e.g. closed surfaces from RTSTRUCT) gets a binary labelmap representation,
    as Slicer's own export would.
    """
    slicer = slicer_module()
    what = f"segmentation {segmentation_node.GetName()!r}"
    pairs = _segment_ids_by_name(segmentation_node, names)
    segmentation = segmentation_node.GetSegmentation()
    labelmap_name = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    if not segmentation.ContainsRepresentation(labelmap_name):
        if not segmentation_node.CreateBinaryLabelmapRepresentation():
            raise SIRTInputError(f"{what}: cannot convert its segments to binary labelmaps")
    to_reference = transform_between(segmentation_node, reference_node, what) if reference_node is not None else np.eye(4)

    layers_of_ids: dict[int, list[tuple[str, str]]] = {}
    for segment_id, name in pairs:
        layers_of_ids.setdefault(segmentation.GetLayerIndex(segment_id), []).append((segment_id, name))

    scene = segmentation_node.GetScene()
    if scene is None:
        raise SIRTInputError(f"{what} is not in a scene")
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    layers: list[sitk.Image] = []
    segments: list[Segment] = []
    for group in layers_of_ids.values():
        ids = vtk.vtkStringArray()
        for segment_id, _ in group:
            ids.InsertNextValue(segment_id)
        with NewNodesRemoved(scene):
            labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "SIRT temporary export")
            labelmap.SetHideFromEditors(True)
            labelmap.SetSaveWithScene(False)
            ok = logic.ExportSegmentsToLabelmapNode(
                segmentation_node, ids, labelmap, None, slicer.vtkSegmentation.EXTENT_UNION_OF_EFFECTIVE_SEGMENTS
            )
            image_data = labelmap.GetImageData()
            if not ok or image_data is None or image_data.GetNumberOfPoints() == 0:
                empty = ", ".join(repr(name) for _, name in group)
                raise SIRTInputError(f"{what}: segment(s) {empty} are empty")
            layer = image_from_volume_node(labelmap, dtype=np.uint16, ijk_to_ras=to_reference @ node_ijk_to_ras(labelmap))
            labels = _label_values(labelmap, [name for _, name in group])
        layer_index = len(layers)
        layers.append(layer)
        segments.extend(Segment(name, layer_index, labels[name]) for _, name in group)
    order = {name: i for i, (_, name) in enumerate(pairs)}
    segments.sort(key=lambda s: order[s.name])
    return Segmentation(tuple(layers), tuple(segments), f"{what} ({segmentation_node.GetID()})")


class NewNodesRemoved:
    """Remove every node added to ``scene`` inside the ``with`` block: always (temporary nodes, such as
    the labelmap, display node and colour table a segment export adds), or only when the block raises
    (``on_error_only``: a computation that fails or is cancelled leaves the scene as it was)."""

    def __init__(self, scene, on_error_only: bool = False):
        self.scene, self.on_error_only = scene, on_error_only

    def __enter__(self):
        self.before = {self.scene.GetNthNode(i).GetID() for i in range(self.scene.GetNumberOfNodes())}
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and self.on_error_only:
            return False
        added = [self.scene.GetNthNode(i) for i in range(self.scene.GetNumberOfNodes())]
        for node in added:
            if node is not None and node.GetID() not in self.before and node.GetScene() is not None:
                self.scene.RemoveNode(node)
        return False


def _label_values(labelmap, names: list[str]) -> dict[str, int]:
    """Label value of each exported segment, from the colour table the export names them in.

    ``ExportSegmentsToLabelmapNode`` numbers segments 1, 2, ... in the order given and names the
    colour-table entries after them; the table is read to be sure, the order is the fallback.
    """
    labels = {name: i + 1 for i, name in enumerate(names)}
    display = labelmap.GetDisplayNode()
    table = display.GetColorNode() if display is not None else None
    if table is not None:
        found = {table.GetColorName(v): v for v in range(1, table.GetNumberOfColors())}
        if all(name in found for name in names) and len({found[n] for n in names}) == len(names):
            labels = {name: found[name] for name in names}
    return labels


def segmentation_sha256(segmentation_node) -> str:
    """SHA-256 of a segmentation's segment names, binary labelmaps and geometry (source representation)."""
    slicer = slicer_module()
    segmentation = segmentation_node.GetSegmentation()
    digest = hashlib.sha256()
    for i in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(i)
        digest.update(segment.GetName().encode())
        representation = segment.GetRepresentation(segmentation.GetSourceRepresentationName())
        if representation is None:
            continue
        if isinstance(representation, slicer.vtkOrientedImageData):
            matrix = vtk.vtkMatrix4x4()
            representation.GetImageToWorldMatrix(matrix)
            digest.update(str(representation.GetExtent()).encode())
            digest.update(vtk_matrix_to_numpy(matrix).tobytes())
            scalars = representation.GetPointData().GetScalars()
            if scalars is not None:
                digest.update(numpy_support.vtk_to_numpy(scalars).tobytes())
                digest.update(str(segment.GetLabelValue()).encode())
        else:
            digest.update(str(representation.GetMTime()).encode())
    return digest.hexdigest()


def add_segmentation_node(scene, segmentation: Segmentation, name: str, colors: dict[str, tuple[float, float, float]] | None = None):
    """A new segmentation node in ``scene`` holding the segments of a ``Segmentation`` (file order kept).

    Each segment is imported as a binary labelmap cropped to its bounding box on its layer's grid,
    so the segments keep the original contouring geometry and may overlap.
    """
    slicer = slicer_module()
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.CreateDefaultDisplayNodes()
    target = node.GetSegmentation()
    palette = _segment_palette(len(segmentation.segments))
    for index, segment in enumerate(segmentation.segments):
        layer = segmentation.layers[segment.layer]
        mask = sitk.GetArrayViewFromImage(layer) == segment.label_value
        if not mask.any():
            raise SIRTInputError(f"segment {segment.name!r} in {segmentation.source_path} is empty")
        nonzero = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
        (z0, z1), (y0, y1), (x0, x1) = [(n[0], n[-1] + 1) for n in nonzero]
        cropped = sitk.GetImageFromArray(mask[z0:z1, y0:y1, x0:x1].astype(np.uint8))
        cropped.SetSpacing(layer.GetSpacing())
        cropped.SetDirection(layer.GetDirection())
        cropped.SetOrigin(layer.TransformIndexToPhysicalPoint((int(x0), int(y0), int(z0))))
        oriented = slicer.vtkOrientedImageData()
        oriented.ShallowCopy(_vtk_image_data(sitk.GetArrayViewFromImage(cropped)))
        oriented.SetImageToWorldMatrix(numpy_to_vtk_matrix(ijk_to_ras_from_image(cropped)))
        vtk_segment = slicer.vtkSegment()
        vtk_segment.SetName(segment.name)
        vtk_segment.SetColor(*(colors or {}).get(segment.name, palette[index]))
        vtk_segment.AddRepresentation(slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName(), oriented)
        target.AddSegment(vtk_segment)
    target.CollapseBinaryLabelmaps(False)  # share layers between non-overlapping segments, as Slicer stores them
    return node


def _segment_palette(n: int) -> list[tuple[float, float, float]]:
    """Distinct colours (Slicer-like pastel hues) for ``n`` segments."""
    import colorsys

    return [colorsys.hsv_to_rgb((0.08 + i * 0.618034) % 1.0, 0.6, 0.9) for i in range(n)]
