"""Dosiomic features of MRML nodes: image volume nodes + a segmentation node → a new feature table node.

This is what the SIRTDosiomics module's logic calls, and what a Slicer Python console script calls
for batch work::

    from SIRTDosiomicsLib.mrml import extract_features_from_nodes
    table = extract_features_from_nodes(
        {"dose": doseNode, "bed": bedNode, "spect": spectNode, "ct": ctNode},
        segNode,
        {"tumour": ["Tumor 1", "Tumor 2"], "npl": ["normal perfused liver"], "wnl": ["whole normal liver"]},
        "y90",
    )

The table
---------
**One row** (the patient) and one column per value, named exactly as the cohort table of
``sirt features`` names them (``SIRTDosiomicsLib.naming``): ``<source>_<image>_<structure>_<class>_<feature>``,
e.g. ``y90_dose_tumour_glcm_JointEnergy``. The structure is part of every column name, so a single
wide row holds every structure and image, joins the cohort table column for column, and is the row
the SIRT Response module predicts from. Each feature set (source, image, structure) also has
``<prefix>_diagnostics_VoxelNum|ClipLow|ClipHigh`` (numbers) and ``<prefix>_error`` (why its features
are NaN) and ``<prefix>_warning`` (e.g. a flat region) as text, empty when there is nothing to say.
Feature and diagnostics columns are ``vtkDoubleArray`` (NaN when missing), the others
``vtkStringArray``. ``patient_id`` comes first when one is given. Column order: images dose, bed,
spect, pet, ct; structures tumour, npl, wnl, then others in the order given; within a feature set,
pyradiomics' classes and features in ``extract.expected_columns`` order.

Values are those of ``extract.extract_image_features`` on the same image and segmentation read from
files, bitwise: the same code maps the segments onto each image's grid, plans and runs pyradiomics
(``masks.structure_masks``, ``plan_image_features``, ``run_task``, ``assemble``). When Slicer holds
the voxels in another order than the file (it reverses the slices of a negative-z SPECT), the masks
are the same voxels, but first-order and texture sums run in another order (equal to ~1e-15) and
pyradiomics' marching cubes meshes the reversed mask differently (mesh-based shape features such
as SurfaceArea differ by up to ~2e-3). Slicer saves table nodes with 6 significant digits (VTK's
default for .tsv), so a reopened scene has the values to that precision.

Provenance is stored on the table node (and saved with the scene): attributes ``SIRT.Table`` =
``dosiomics_features`` and ``SIRT.Dosiomics.*`` (preset name, preset file and full settings,
pyradiomics and other software versions, source, structures and their segments, the input nodes'
names, IDs, files and content hashes, creation time), and node references ``SIRT.<kind>`` and
``SIRT.segmentation`` to the input nodes.

Errors
------
Input that cannot be used (no image, an unknown image kind or source, a node of the wrong type, a
segment name the segmentation does not have, a preset that does not load) raises ``SIRTInputError``
before anything is computed. What concerns one structure on one image (an empty segment, a segment
outside the image or smaller than a voxel, NaN voxels such as those of a BED map outside the segments
that had LQ parameters, values spanning more than ``MAX_GREY_LEVELS`` bins, a flat region) stays in
the table as that feature set's ``_error``/``_warning`` columns, as the library does for files (the
bin limit is this module's own); when not one feature set could be
computed, ``SIRTInputError`` says why for each. On error or cancellation the scene is as it was: no
table node is added, and a ``table_node`` to refill keeps its content. No input node is modified,
except that a segmentation whose source representation is not a binary labelmap (e.g. RTSTRUCT
closed surfaces) gets a binary labelmap representation, as Slicer's own export would give it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.segmentations import Segment, Segmentation
from SIRTDosimetryLib.io.volumes import CONCENTRATION_UNITS_TO_BQ_PER_ML
from SIRTDosimetryLib.mrml import convert, outputs
from SIRTDosimetryLib.mrml._vtk import numpy_support, slicer_module
from SIRTDosimetryLib.mrml.logic import CancelCheck, OperationCancelled, ProgressCallback, volume_units

from .. import extract, naming
from ..masks import grid_key, structure_masks
from ..sparse_mcc import enable_sparse_mcc
from ..presets import Preset, load_preset
from ..radiomics_engine import ENGINE_ATTRIBUTE, radiomics_engine

__all__ = ["extract_features_from_nodes", "OperationCancelled", "FEATURE_TABLE_KIND", "ATTRIBUTE_PREFIX", "IMAGE_ORDER"]

FEATURE_TABLE_KIND = "dosiomics_features"
"""Value of the table node's ``SIRT.Table`` attribute."""
ATTRIBUTE_PREFIX = "SIRT.Dosiomics."
"""Provenance attributes of the table node start with this."""
TABLE_SCHEMA = "slicer-sirt/dosiomics-table/1"
IMAGE_ORDER: tuple[str, ...] = ("dose", "bed", "spect", "pet", "ct")
"""Image kinds accepted (``naming.IMAGE_KINDS``), in column order; the module offers all but ``pet``."""
TEXT_COLUMN_KINDS = ("error", "warning", "id", "patient_error")
MAX_GREY_LEVELS = 2048
"""Texture classes are not computed for a feature set whose values span more bins than this: pyradiomics
allocates Ng × Ng × 13 matrices (GLCM, and the MCC's Q) and takes eigenvalues of them, so a PET in
Bq/mL given as a SPECT (bin width 50; sample patient 1's PET spans ~71 000 such bins) would need
gigabytes and freeze Slicer. The published protocol stays below it (651 bins for dose, 1 618 for
a BED with ``bed_upper_gy: lq``). That feature set gets an error column; shape features are kept."""


class _Steps:
    """Progress (never backwards) and the cancel check, between steps."""

    def __init__(self, progress: ProgressCallback | None, cancel: CancelCheck | None):
        self.progress, self.cancel, self.last = progress, cancel, 0.0

    def __call__(self, fraction: float, message: str, cancellable: bool = True) -> None:
        if cancellable and self.cancel is not None and self.cancel():
            raise OperationCancelled("feature extraction cancelled; nothing was added to the scene")
        self.last = max(self.last, min(1.0, float(fraction)))
        if self.progress is not None:
            self.progress(self.last, message)


# ---------------------------------------------------------------------------------------------
# checking the inputs


def _is_node(node, class_name: str) -> bool:
    return node is not None and hasattr(node, "IsA") and bool(node.IsA(class_name))


def _check_images(images) -> dict[str, Any]:
    """``{kind token: volume node}`` in column order; None values are left out."""
    if not isinstance(images, Mapping):
        raise SIRTInputError("images must map an image kind (dose, bed, spect, pet, ct) to a volume node")
    checked: dict[str, Any] = {}
    for kind, node in images.items():
        if node is None:
            continue
        try:
            token = naming.image_token(kind)
        except naming.NamingError as exc:
            raise SIRTInputError(str(exc)) from None
        if token in checked:
            raise SIRTInputError(f"two {token} images given; give one node per image kind")
        if not _is_node(node, "vtkMRMLScalarVolumeNode") or node.IsA("vtkMRMLLabelMapVolumeNode"):
            what = node.GetName() if hasattr(node, "GetName") else repr(node)
            raise SIRTInputError(f"the {token} image must be a scalar volume node; {what!r} is not one")
        data = node.GetImageData()
        if data is None or data.GetNumberOfPoints() == 0:
            raise SIRTInputError(f"volume {node.GetName()!r} ({token}) has no voxel data")
        checked[token] = node
    if not checked:
        raise SIRTInputError("choose at least one image: dose, BED, SPECT/PET or CT")
    return {kind: checked[kind] for kind in IMAGE_ORDER if kind in checked}


def _segment_ids(segmentation_node) -> list[tuple[str, str]]:
    segmentation = segmentation_node.GetSegmentation()
    return [(segmentation.GetNthSegmentID(i), segmentation.GetNthSegment(i).GetName()) for i in range(segmentation.GetNumberOfSegments())]


def _resolve_segment(pairs: list[tuple[str, str]], wanted: str, segmentation_node) -> tuple[str, str]:
    """(segment ID, name) of a segment name: exact, else the one case-insensitive match (as ``Segmentation.segment``)."""
    matches = [p for p in pairs if p[1] == wanted] or [p for p in pairs if p[1].lower() == str(wanted).lower()]
    if len(matches) != 1:
        problem = "is repeated" if matches else "not found"
        listed = ", ".join(repr(name) for _, name in pairs) or "none"
        raise SIRTInputError(f"segment {wanted!r} {problem} in segmentation {segmentation_node.GetName()!r}; segments are: {listed}")
    return matches[0]


def _check_structures(structures, segmentation_node) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Structure token → the segments' names as the node spells them (tumour, npl, wnl first), and name → segment ID."""
    if not isinstance(structures, Mapping) or not structures:
        raise SIRTInputError("choose the segments of at least one structure (tumour, normal perfused liver, whole normal liver)")
    pairs = _segment_ids(segmentation_node)
    roles: dict[str, tuple[str, ...]] = {}
    ids: dict[str, str] = {}
    for role, names in structures.items():
        try:
            token = naming.structure_token(role)
        except naming.NamingError as exc:
            raise SIRTInputError(f"structure name: {exc}") from None
        if token in roles:
            raise SIRTInputError(f"structure {token!r} is given twice")
        names = (names,) if isinstance(names, str) else tuple(names or ())
        if not names:
            raise SIRTInputError(f"structure {role!r} has no segments; choose at least one")
        resolved = []
        for name in names:
            segment_id, actual = _resolve_segment(pairs, name, segmentation_node)
            ids[actual] = segment_id
            resolved.append(actual)
        roles[token] = tuple(dict.fromkeys(resolved))
    order = [s for s in naming.STANDARD_STRUCTURES if s in roles] + [s for s in roles if s not in naming.STANDARD_STRUCTURES]
    return {s: roles[s] for s in order}, ids


def _load_preset(spec) -> tuple[Preset, str]:
    """The preset and where it came from (a file path, a preset name, or "" for the default)."""
    if isinstance(spec, str) and not spec.strip():
        spec = None
    try:
        preset = load_preset(spec)
    except ImportError as exc:  # PyYAML is not bundled with every Slicer
        raise SIRTInputError(f"preset {str(spec)!r}: reading it needs a missing package ({exc}); use a JSON preset file") from None
    except Exception as exc:  # ValueError (unknown keys, bad values), OSError, yaml.YAMLError (malformed file)
        message = str(exc)
        raise SIRTInputError(message if str(spec) in message else f"preset {str(spec)!r}: {message}") from None
    origin = "" if spec is None else str(spec) if isinstance(spec, (str, Path)) else "(given as an object)"
    return preset, origin


# ---------------------------------------------------------------------------------------------
# segments on each image's grid


def _empty_segments(segmentation_node, names: list[str], ids: dict[str, str]) -> set[str]:
    """Segments of ``names`` whose binary labelmap has no voxel (known only when that is a stored representation)."""
    slicer = slicer_module()
    segmentation = segmentation_node.GetSegmentation()
    labelmap = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    if not segmentation.ContainsRepresentation(labelmap):
        return set()  # converted by the export, which reports a segment that turns out empty
    empty = set()
    for name in names:
        segment = segmentation.GetSegment(ids[name])
        image = segment.GetRepresentation(labelmap) if segment is not None else None
        scalars = image.GetPointData().GetScalars() if image is not None and image.GetPointData() is not None else None
        if scalars is None or image.GetNumberOfPoints() == 0:
            empty.add(name)
        elif not np.any(numpy_support.vtk_to_numpy(scalars) == segment.GetLabelValue()):
            empty.add(name)
    return empty


def _export(segmentation_node, reference_node, names: list[str], empty: set[str]) -> Segmentation:
    """The named segments as a ``Segmentation`` in ``reference_node``'s frame (``convert.segmentation_from_node``).

    An empty segment is kept, on a blank one-voxel layer: mapping it onto the image then fails with the
    library's own "segment ... is empty", which becomes its structure's ``_error`` column exactly as for
    an empty segment in a file, while the other structures are computed.
    """
    present = [n for n in names if n not in empty]
    if present:
        exported = convert.segmentation_from_node(segmentation_node, reference_node, present)
        layers, segments, source = list(exported.layers), list(exported.segments), exported.source_path
    else:
        layers, segments = [], []
        source = f"segmentation {segmentation_node.GetName()!r} ({segmentation_node.GetID()})"
    if empty:
        layers.append(sitk.Image([1, 1, 1], sitk.sitkUInt16))
        segments += [Segment(name, len(layers) - 1, 1) for name in names if name in empty]
    return Segmentation(tuple(layers), tuple(segments), source)


def _image(node, kind: str) -> tuple[sitk.Image, str | None]:
    """The node's voxels as float64 (PET converted to Bq/mL when the node declares kBq/mL or MBq/mL)."""
    image = convert.image_from_volume_node(node, np.float64)
    units = None
    if kind == "pet":
        units = volume_units(node)
        factor = CONCENTRATION_UNITS_TO_BQ_PER_ML.get(units) if units else None
        if factor is not None and factor != 1.0:
            image = image * factor
    return image, units


# ---------------------------------------------------------------------------------------------
# provenance and the table


def _node_record(node) -> dict:
    storage = node.GetStorageNode() if hasattr(node, "GetStorageNode") else None
    return {"node_id": node.GetID(), "name": node.GetName(), "file": storage.GetFileName() if storage is not None else None}


def _pyradiomics_version() -> str:
    import radiomics

    return str(getattr(radiomics, "__version__", "unknown"))


def _software() -> dict[str, str]:
    from SIRTDosimetryLib.provenance import software_versions

    return software_versions()


def _feature_failed(row: dict, prefix: str, columns: list[tuple[str, str]]) -> bool:
    return all(isinstance(v, float) and math.isnan(v) for v in (row.get(f"{prefix}_{c}_{n}", math.nan) for c, n in columns))


def _text_column(column: str) -> bool:
    try:
        return naming.parse_column(column).kind in TEXT_COLUMN_KINDS
    except naming.NamingError:
        return False


def _one_line(value) -> str:
    """Text for a table cell: Slicer saves tables as .tsv, where a tab or line break would split the cell."""
    return " ".join(("" if value is None else str(value)).split("\t")).replace("\r", " ").replace("\n", " ")


def _fill_table(table_node, row: dict[str, Any]) -> None:
    """One row; text columns are vtkStringArray, the others vtkDoubleArray. The first column is a
    number or a non-empty ``patient_id``: Slicer's .tsv reader drops an empty first field."""
    modified = table_node.StartModify()
    try:
        table_node.RemoveAllColumns()
        for column, value in row.items():
            text = _text_column(column)
            outputs.add_column(table_node, column, [_one_line(value) if text else value], text=text)
    finally:
        table_node.EndModify(modified)


def _set_provenance(table_node, attributes: dict[str, str], references: dict[str, str]) -> None:
    for name in list(table_node.GetAttributeNames() or ()):
        if name.startswith(ATTRIBUTE_PREFIX):
            table_node.RemoveAttribute(name)
    for kind in IMAGE_ORDER:
        table_node.RemoveNodeReferenceIDs(f"SIRT.{kind}")
    table_node.RemoveNodeReferenceIDs("SIRT.segmentation")
    for name, value in attributes.items():
        table_node.SetAttribute(name, value)
    for role, node_id in references.items():
        table_node.SetNodeReferenceID(role, node_id)


# ---------------------------------------------------------------------------------------------
# the computation


def extract_features_from_nodes(
    images: Mapping[str, Any],
    segmentation_node,
    structures: Mapping[str, str | list[str] | tuple[str, ...]],
    source: str = "y90",
    preset: str | Path | dict | Preset | None = None,
    table_node=None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    *,
    patient_id: str | None = None,
    name: str | None = None,
    sparse_mcc: bool = True,
    max_grey_levels: int | None = MAX_GREY_LEVELS,
):
    """Radiomic features of each image node for each structure, as a feature table node (see the module docstring).

    ``images``: ``{"dose" | "bed" | "spect" | "pet" | "ct": scalar volume node}`` (None values are
    skipped; a BED image is used as it is). ``segmentation_node``: the segments, registered to the
    images (a linear parent transform between them is applied; a warping one is refused).
    ``structures``: ``{"tumour" | "npl" | "wnl" | own name: [segment names]}``, several segments of
    one structure are united. ``source``: ``"maa"`` or ``"y90"`` (or ``"99mTc-MAA"``, ``"90Y"``).
    ``preset``: None (the published protocol), a preset name, a YAML/JSON file of overrides, a dict of
    overrides or a ``Preset``. ``table_node``: an earlier feature table to refill instead of adding a new
    one (named ``name``, by default after the segmentation and the source). ``progress(fraction,
    message)`` is called between steps and ``cancel()`` checked before each pyradiomics call (one
    feature class group of one feature set); ``OperationCancelled`` then leaves the scene as it was.
    ``patient_id`` adds the cohort table's ``patient_id`` column. ``sparse_mcc=False`` uses pyradiomics'
    own (slower, bitwise identical) GLCM MCC. ``max_grey_levels`` (see ``MAX_GREY_LEVELS``; None: no
    limit) is the one place where this refuses what ``extract_image_features`` would attempt.

    Runs in this process, one pyradiomics call at a time (see the comment in the loop), with BLAS
    limited to one thread meanwhile (``extract.one_blas_thread``).
    """
    steps = _Steps(progress, cancel)
    steps(0.0, "Checking the inputs")
    images = _check_images(images)
    if not _is_node(segmentation_node, "vtkMRMLSegmentationNode"):
        raise SIRTInputError("choose a segmentation node with the segments of the structures")
    scene = segmentation_node.GetScene()
    if scene is None:
        raise SIRTInputError(f"segmentation {segmentation_node.GetName()!r} is not in a scene")
    for kind, node in images.items():
        if node.GetScene() is not scene:
            raise SIRTInputError(f"volume {node.GetName()!r} ({kind}) is not in the segmentation's scene")
    try:
        source = naming.source_token(source)
    except naming.NamingError as exc:
        raise SIRTInputError(str(exc)) from None
    roles, segment_ids = _check_structures(structures, segmentation_node)
    preset, preset_origin = _load_preset(preset)
    for kind in images:
        try:
            preset.image(kind)
        except ValueError as exc:
            raise SIRTInputError(str(exc)) from None
    if table_node is not None and not _is_node(table_node, "vtkMRMLTableNode"):
        raise SIRTInputError("the output must be a table node (or None for a new one)")
    if table_node is not None and table_node.GetScene() is not scene:
        raise SIRTInputError(f"table {table_node.GetName()!r} is not in the segmentation's scene")
    held = table_node.GetAttribute("SIRT.Table") if table_node is not None else None
    if held and held != FEATURE_TABLE_KIND:  # e.g. a dose summary table that a dose node refers to
        raise SIRTInputError(f"table {table_node.GetName()!r} holds SlicerSIRT {held} results; choose a new table for the features")
    if patient_id is not None and not str(patient_id).strip():
        raise SIRTInputError("patient_id must not be empty (leave it out for no patient_id column)")

    sparse_before = _sparse_mcc_active()
    try:
        with convert.NewNodesRemoved(scene, on_error_only=True):
            row, inputs = _compute(images, segmentation_node, roles, segment_ids, source, preset, steps, sparse_mcc, max_grey_levels)
            steps(0.97, "Filling the feature table")
            if patient_id is not None:
                row = {naming.ID_COLUMN: str(patient_id), **row}
            attributes = {
                "SIRT.Table": FEATURE_TABLE_KIND,
                ATTRIBUTE_PREFIX + "Schema": TABLE_SCHEMA,
                ATTRIBUTE_PREFIX + "Source": source,
                ATTRIBUTE_PREFIX + "Preset": preset.name,
                ATTRIBUTE_PREFIX + "PresetFile": preset_origin,
                ATTRIBUTE_PREFIX + "PresetSettings": json.dumps(preset.to_dict(), sort_keys=True),
                ATTRIBUTE_PREFIX + "FeaturesPerStructure": str(len(extract.expected_columns(preset))),
                ATTRIBUTE_PREFIX + "PyradiomicsVersion": _pyradiomics_version(),
                ENGINE_ATTRIBUTE: json.dumps(radiomics_engine(), sort_keys=True),
                ATTRIBUTE_PREFIX + "Software": json.dumps(_software(), sort_keys=True),
                ATTRIBUTE_PREFIX + "Structures": json.dumps({s: list(n) for s, n in roles.items()}),
                ATTRIBUTE_PREFIX + "Inputs": json.dumps(inputs),
                ATTRIBUTE_PREFIX + "Execution": json.dumps({"processes": 1, "sparse_mcc": bool(sparse_mcc)}),
                ATTRIBUTE_PREFIX + "Created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            if patient_id is not None:
                attributes[ATTRIBUTE_PREFIX + "PatientId"] = str(patient_id)
            references = {f"SIRT.{kind}": node.GetID() for kind, node in images.items()}
            references["SIRT.segmentation"] = segmentation_node.GetID()
            if table_node is None:
                table_node = scene.AddNewNodeByClass(
                    "vtkMRMLTableNode", scene.GenerateUniqueName(name or f"{segmentation_node.GetName()} features ({source})")
                )
            elif name:
                table_node.SetName(name)
            _fill_table(table_node, row)
            _set_provenance(table_node, attributes, references)
    finally:
        if not sparse_before:
            enable_sparse_mcc(False)  # leave pyradiomics in Slicer's process as it was found
    steps(1.0, f"Done: {table_node.GetNumberOfColumns()} columns", cancellable=False)
    return table_node


def _too_many_grey_levels(task, limit: int | None) -> str | None:
    """Why a texture task is not run (see ``MAX_GREY_LEVELS``), or None."""
    if limit is None or task.part == "shape" or task.crop.image is None:
        return None
    inside = task.crop.image[task.crop.mask > 0]
    width = float(task.settings.get("binWidth") or 0)
    if inside.size == 0 or width <= 0 or not np.isfinite(inside).all():
        return None
    span = int(np.floor(inside.max() / width) - np.floor(inside.min() / width)) + 1
    if span <= limit:
        return None
    return (
        f"{task.part}: not computed, the values span {span} bins of {width:g} (at most {limit} in Slicer); "
        "is the image of another kind (a PET in Bq/mL given as SPECT?), or does the preset need a larger bin_width?"
    )


def _sparse_mcc_active() -> bool:
    from radiomics import glcm

    return bool(getattr(glcm.RadiomicsGLCM.getMCCFeatureValue, "_sirt_sparse", False))


def _compute(images, segmentation_node, roles, segment_ids, source, preset, steps, sparse_mcc, max_grey_levels) -> tuple[dict, dict]:
    """The feature row (``extract.assemble``) and the inputs' provenance record."""
    names = list(dict.fromkeys(n for segment_names in roles.values() for n in segment_names))
    empty = _empty_segments(segmentation_node, names, segment_ids)
    what = f"segmentation {segmentation_node.GetName()!r}"
    planner = extract.Planner(preset, sparse_mcc=sparse_mcc)
    exports: dict[bytes, Segmentation] = {}
    masks: dict[tuple, dict] = {}
    inputs: dict[str, dict] = {}
    for index, (kind, node) in enumerate(images.items()):
        steps(0.02 + 0.18 * index / len(images), f"Mapping the structures onto {node.GetName()!r} ({kind})")
        to_image = convert.transform_between(segmentation_node, node, what)
        frame = np.round(to_image, 9).tobytes()
        if frame not in exports:  # images sharing a frame (e.g. dose and BED) share the export
            exports[frame] = _export(segmentation_node, node, names, empty)
        image, units = _image(node, kind)
        key = (frame, grid_key(image))
        if key not in masks:  # ... and images on one grid share the (supersampled) masks
            masks[key] = structure_masks(image, exports[frame], roles, preset)
        extract.plan_image_features(planner, image, masks[key], kind, source)
        inputs[kind] = {**_node_record(node), "voxels_sha256": convert.voxels_sha256(node), **({"units": units} if kind == "pet" else {})}
    inputs["segmentation"] = {**_node_record(segmentation_node), "segments_sha256": convert.segmentation_sha256(segmentation_node)}

    # In this process, one task after the other. Inside Slicer, sys.executable is the Slicer
    # application, which multiprocessing cannot start as a worker without set_executable (and a
    # PythonSlicer that matches the running build), so no worker processes are started here: the
    # cohort's process pools (cohort.py) are for the command line. Running serially also lets the
    # cancel flag be honoured between tasks.
    tasks = planner.tasks
    total = sum(t.cost for t in tasks) or 1.0
    done = 0.0
    results = {}
    with extract.one_blas_thread():
        for number, task in enumerate(tasks, start=1):
            steps(0.2 + 0.75 * done / total, f"{', '.join(task.targets)}: {task.part} features ({number}/{len(tasks)})")
            refused = _too_many_grey_levels(task, max_grey_levels)
            results[task.task_id] = extract.TaskResult(task.task_id, {}, refused, 0.0) if refused else extract.run_task(task)
            done += task.cost
    row = extract.assemble(preset, planner.feature_sets, results)

    columns = extract.expected_columns(preset)
    failed = {p: row[f"{p}_error"] for p in planner.feature_sets if _feature_failed(row, p, columns)}
    if failed and len(failed) == len(planner.feature_sets):
        raise SIRTInputError(
            "no features could be computed:\n" + "\n".join(f"- {p}: {m or 'no values'}" for p, m in failed.items())
        )
    return row, inputs
