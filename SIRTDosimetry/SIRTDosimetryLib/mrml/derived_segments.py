"""Derived segments on the activity grid, added to a new segmentation node.

What is derived, and how, is ``analysis/segment_derivation.py`` (no MRML); this adapter maps the
operand segments from their node onto the activity grid and makes the output node.

Output node (decided: a separate node, never a copy)
----------------------------------------------------
A **new** ``vtkMRMLSegmentationNode`` named ``<activity> derived segments`` (not made unique: running
twice gives two nodes of that name, like the dose outputs; ``compute_dose_from_nodes`` recomputing into
the same dose node replaces the one it made before) holding only the derived
segments; the user's segmentation node is read, never modified (its contours stay in their node, on
their own grid, instead of being duplicated). The derived segments are binary labelmaps on the
activity volume's voxel lattice (same IJK-to-RAS matrix, cropped extents), the node lies under the
activity volume's parent transform and takes the activity volume as its reference image geometry,
so the Segment Editor edits them at the resolution they were computed at. The node carries:

- node references ``SIRT.activity``, ``SIRT.segmentation`` (the operands' node) and, when a
  threshold target was made, ``SIRT.thresholdImage`` (the volume thresholded); made together with a
  dose map it is also ``SIRT.derivedSegmentation`` of the dose node, which it refers to as ``SIRT.dose``;
- attribute ``SIRT.DerivedSegments``: JSON (schema ``slicer-sirt/derived-segments/1``) recording the
  rule, the grid, the source segmentation (node, name, SHA-256 of its segments) and, per derived
  segment, its kind, definition, operands (base segments, tumours subtracted; VOI and fraction and
  the image thresholded, with its node, name and voxel SHA-256, the VOI maximum and the threshold
  value) and its volume on the grid (voxels) and weighted;
- attribute ``SIRT.Quantity`` = ``derived_segments``.

Colours are fixed per kind and distinct (green, blue, then a series for threshold targets).
Errors (``SIRTInputError``: a fraction outside (0, 1), an unknown segment, no tumour, an empty
result, a dose image not on the activity grid) are raised before any node is added; a failure while
adding removes what was added.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..analysis.segment_derivation import (
    MIN_WEIGHT,
    DerivedSegmentsSpec,
    DerivedStructure,
    compute_derived,
    needed_segments,
    resolve_operands,
)
from ..errors import SIRTInputError
from ..io.segmentations import Segment, Segmentation
from ..io.volumes import voxel_volume_ml
from ..structures import PARTIAL_VOXEL_MODES, map_segments
from . import convert

SCHEMA = "slicer-sirt/derived-segments/1"
ATTRIBUTE = "SIRT.DerivedSegments"


@dataclass
class DerivedComputation:
    """Derived structures computed, no node made yet (see ``add_derived_segmentation_node``)."""

    structures: list[DerivedStructure]
    operands: dict[str, list[str]]
    partial_voxels: str
    grid: sitk.Image = field(repr=False)


@dataclass
class DerivedSegmentsOutput:
    node: object
    structures: list[DerivedStructure]
    record: dict


# ---------------------------------------------------------------------------------------------
# computation (no node is added)


def segment_weights(
    segmentation_node,
    activity_node,
    activity_image: sitk.Image,
    names: Sequence[str],
    partial_voxels: str = "fraction",
    known: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Weights on the activity grid of the named segments; those in ``known`` (e.g. the dose
    computation's, same grid and partial-voxel mode) are reused, the others exported and mapped."""
    known = known or {}
    weights = {n: known[n] for n in names if n in known}
    missing = [n for n in names if n not in weights]
    if missing:
        segmentation = convert.segmentation_from_node(segmentation_node, activity_node, missing)
        weights |= {name: s.weights for name, s in map_segments(segmentation, activity_image, missing, partial_voxels).items()}
    return {n: weights[n] for n in names}


def compute_derived_segments(
    activity_node,
    segmentation_node,
    spec: DerivedSegmentsSpec,
    *,
    activity_image: sitk.Image | None = None,
    dose_values: np.ndarray | None = None,
    partial_voxels: str = "fraction",
    known_weights: Mapping[str, np.ndarray] | None = None,
) -> DerivedComputation:
    """Map the operands onto the activity grid and derive the structures; adds no node (temporary
    export nodes are removed). ``dose_values``: the dose on the activity grid, for a threshold on the dose."""
    if not spec.requested:
        raise SIRTInputError("no derived segment asked for: choose the perfused volume, the liver or a threshold VOI")
    if partial_voxels not in PARTIAL_VOXEL_MODES:
        raise SIRTInputError(f"unknown partial-voxel mode {partial_voxels!r}; choose one of {', '.join(PARTIAL_VOXEL_MODES)}")
    if activity_node is None or not activity_node.IsA("vtkMRMLScalarVolumeNode") or activity_node.GetImageData() is None:
        raise SIRTInputError("choose the activity volume whose grid the derived segments are made on")
    if segmentation_node is None or not segmentation_node.IsA("vtkMRMLSegmentationNode"):
        raise SIRTInputError("choose the segmentation with the liver, perfused volume and tumour segments")
    if spec.threshold_vois and spec.threshold_image == "dose" and dose_values is None:
        raise SIRTInputError("a threshold on the dose needs a dose map on the activity grid: compute the dose, or threshold the activity")
    operands = resolve_operands(spec, convert.segment_names(segmentation_node))
    image = activity_image if activity_image is not None else convert.image_from_volume_node(activity_node)
    weights = segment_weights(segmentation_node, activity_node, image, needed_segments(operands), partial_voxels, known_weights)
    images = {"activity": convert.volume_array(activity_node), "dose": dose_values}
    structures = compute_derived(spec, operands, weights, images, voxel_volume_ml(image.GetSpacing()))
    return DerivedComputation(structures, operands, partial_voxels, image)


# ---------------------------------------------------------------------------------------------
# the output node


def _image_description(node) -> dict:
    storage = node.GetStorageNode() if hasattr(node, "GetStorageNode") else None
    return {
        "node_id": node.GetID(), "name": node.GetName(), "file": storage.GetFileName() if storage else None,
        "voxels_sha256": convert.voxels_sha256(node),
    }


def derivation_record(computation: DerivedComputation, activity_node, segmentation_node, image_nodes: Mapping[str, object]) -> dict:
    """The JSON stored as the node attribute ``SIRT.DerivedSegments``."""
    described = {role: _image_description(node) for role, node in image_nodes.items() if node is not None}
    segments = []
    for structure in computation.structures:
        record = json.loads(json.dumps(structure.record))
        if structure.image_role is not None:
            record["operands"]["image"] |= described.get(structure.image_role, {})
        segments.append(record)
    grid = computation.grid
    return {
        "schema": SCHEMA,
        "rule": (
            f"segment = activity-grid voxels whose derived weight is >= {MIN_WEIGHT:g}; weights are the fraction of each voxel "
            "inside a segment; union = min(1, a + b), difference = max(0, a - union(b)); "
            "threshold = VOI voxels with value >= fraction x the VOI maximum (SIRTDosimetryLib.analysis.derived)"
        ),
        "partial_voxels": computation.partial_voxels,
        "grid": {
            "node_id": activity_node.GetID(), "name": activity_node.GetName(), "dimensions_xyz": list(grid.GetSize()),
            "voxel_volume_ml": voxel_volume_ml(grid.GetSpacing()),
        },
        "segmentation": {
            "node_id": segmentation_node.GetID(), "name": segmentation_node.GetName(),
            "segments_sha256": convert.segmentation_sha256(segmentation_node),
        },
        "segments": segments,
    }


def add_derived_segmentation_node(
    computation: DerivedComputation,
    activity_node,
    segmentation_node,
    *,
    name: str | None = None,
    dose_node=None,
):
    """A new segmentation node with the derived segments on the activity grid (see the module docstring)."""
    scene = activity_node.GetScene()
    grid = computation.grid
    layers, segments = [], []
    for index, structure in enumerate(computation.structures):
        layer = sitk.GetImageFromArray(structure.mask.astype(np.uint16))
        layer.CopyInformation(grid)
        layers.append(layer)
        segments.append(Segment(structure.name, index, 1))
    name = name or f"{activity_node.GetName()} derived segments"
    colors = {s.name: s.color for s in computation.structures}
    record = derivation_record(computation, activity_node, segmentation_node, {"activity": activity_node, "dose": dose_node})
    node = convert.add_segmentation_node(scene, Segmentation(tuple(layers), tuple(segments), name), name, colors)
    node.SetAndObserveTransformNodeID(activity_node.GetTransformNodeID())
    node.SetReferenceImageGeometryParameterFromVolumeNode(activity_node)
    node.SetNodeReferenceID("SIRT.activity", activity_node.GetID())
    node.SetNodeReferenceID("SIRT.segmentation", segmentation_node.GetID())
    roles = {s.image_role for s in computation.structures if s.image_role}
    if roles:
        image_node = dose_node if "dose" in roles else activity_node
        node.SetNodeReferenceID("SIRT.thresholdImage", image_node.GetID() if image_node is not None else None)
    node.SetAttribute("SIRT.Quantity", "derived_segments")
    node.SetAttribute(ATTRIBUTE, json.dumps(record, allow_nan=False))
    return node, record


def remove_segmentation_node(node) -> None:
    """Remove a segmentation node with its display and storage nodes (``RemoveNode`` alone leaves them)."""
    scene = node.GetScene() if node is not None else None
    if scene is None:
        return
    companions = [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())]
    companions += [node.GetNthStorageNode(i) for i in range(node.GetNumberOfStorageNodes())]
    scene.RemoveNode(node)
    for companion in companions:
        if companion is not None and companion.GetScene() is not None:
            scene.RemoveNode(companion)


def derived_record(node) -> dict | None:
    """The ``SIRT.DerivedSegments`` JSON of a node made here (None for other nodes)."""
    text = node.GetAttribute(ATTRIBUTE) if node is not None else None
    return json.loads(text) if text else None


def add_derived_segments(
    activity_node,
    segmentation_node,
    spec: DerivedSegmentsSpec,
    *,
    dose_node=None,
    partial_voxels: str = "fraction",
    name: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> DerivedSegmentsOutput:
    """Derive the segments of ``spec`` from ``segmentation_node`` on the grid of ``activity_node`` and
    add them to a new segmentation node (the inputs are not modified).

    ``dose_node``: a dose map on the activity grid (e.g. ``DoseOutputs.dose_node``), needed for a
    threshold on the dose. On any error no node is left in the scene.
    """
    progress = progress or (lambda fraction, message: None)
    dose_values = None
    if dose_node is not None:
        if not convert.same_geometry(dose_node, activity_node) or not np.allclose(
            convert.transform_between(dose_node, activity_node, "dose"), np.eye(4), atol=1e-6
        ):
            raise SIRTInputError(f"the dose {dose_node.GetName()!r} is not on the grid of {activity_node.GetName()!r}")
        dose_values = convert.volume_array(dose_node)
    scene = activity_node.GetScene() if activity_node is not None else None
    if scene is None:
        raise SIRTInputError("choose an activity volume in the scene")
    with convert.NewNodesRemoved(scene, on_error_only=True):
        progress(0.0, "Deriving segments")
        computation = compute_derived_segments(
            activity_node, segmentation_node, spec, dose_values=dose_values, partial_voxels=partial_voxels
        )
        progress(0.8, "Adding the derived segmentation")
        node, record = add_derived_segmentation_node(computation, activity_node, segmentation_node, name=name, dose_node=dose_node)
        progress(1.0, "Done")
    return DerivedSegmentsOutput(node, computation.structures, record)
