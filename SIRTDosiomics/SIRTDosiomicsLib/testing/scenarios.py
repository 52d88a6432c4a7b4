"""Scenarios shared by the pytest suite (slicer-core wheel) and the SIRTDosiomics self-test in Slicer.

Each scenario takes a set-up scene (``slicer.mrmlScene`` in Slicer, ``scene.new_scene().scene``
elsewhere), does what a user does (load the sample patients, compute a dose, extract features,
save and reopen the scene) and checks the outcome, raising ``AssertionError`` with a message on the
first failure. They return what they made, for callers that want to look further.

The reference is always ``extract.extract_image_features`` run on files: the sample patients' own
files, and for the dose and BED maps the files those nodes are written to.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration
from SIRTDosimetryLib.dose.engine import DoseParameters
from SIRTDosimetryLib.dose.radiobiology import TUMOUR_CHIESA_2015
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.segmentations import Segment, Segmentation, read_segmentation
from SIRTDosimetryLib.io.volumes import read_image
from SIRTDosimetryLib.mrml import convert, outputs
from SIRTDosimetryLib.mrml.logic import compute_dose_from_nodes
from SIRTDosimetryLib.testing.scenarios import PATIENT_1, PATIENT_2, check
from SIRTDosimetryLib.mrml.scene import load_segmentation, load_volume, read_scene, save_scene

from .. import extract, naming
from ..extract import expected_columns, extract_image_features
from ..presets import DEFAULT_PRESET_NAME, load_preset
from ..radiomics_engine import ENGINE_ATTRIBUTE, radiomics_engine
from ..mrml.logic import (
    ATTRIBUTE_PREFIX,
    FEATURE_TABLE_KIND,
    IMAGE_ORDER,
    OperationCancelled,
    extract_features_from_nodes,
)

PATIENT_1_STRUCTURES = {"tumour": ["Tumor 1", "Tumor 2"], "wnl": ["Normal Tissue"]}
"""Small structures of sample patient 1 (tumour: two segments united; the normal tissue, ~80 000 PET voxels)."""
PATIENT_2_STRUCTURES = {"tumour": ["Tumor 1", "Tumor 2"], "npl": ["perfused normal"], "wnl": ["whole liver normal"]}
"""The three structures of the published protocol, from sample patient 2's segmentation."""
SHAPE_RTOL_REORDERED = 5e-3
"""pyradiomics' marching cubes resolves ambiguous voxel configurations depending on the voxel order, so
the mesh-based shape features of a volume whose slices Slicer stores reversed differ from the file's
(up to 2e-3 measured on patient 2, e.g. SurfaceVolumeRatio of the normal perfused liver), although
the masks are the same voxels."""
RTOL_REORDERED = 1e-12
"""Other features of reversed slices: the same numbers summed in another order (3e-15 measured)."""
SAVED_TABLE_RTOL = 1e-5
"""Slicer writes table nodes to ``.tsv`` with VTK's default 6 significant digits (vtkMRMLTableStorageNode
does not set vtkDelimitedTextWriter's precision), so values read back from a saved scene agree to
5e-6 relative; column names, types, text, NaN and attributes are kept exactly."""


# ---------------------------------------------------------------------------------------------
# helpers


def table_row(table_node) -> dict:
    """The feature table's single row as ``{column: float | str}``."""
    check(table_node.GetNumberOfRows() == 1, f"the feature table has {table_node.GetNumberOfRows()} rows, not one")
    return outputs.table_rows(table_node)[0]


def reference_row(files: dict[str, Path], segmentation_path: Path, structures: dict, source: str, preset=None) -> dict:
    """``extract_image_features`` on each image file (``{kind: path}``), columns in the table's order."""
    segmentation = read_segmentation(segmentation_path)
    row: dict = {}
    with extract.one_blas_thread():
        for kind in IMAGE_ORDER:
            if kind in files:
                row.update(extract_image_features(read_image(files[kind]), segmentation, structures, kind, source, preset))
    return row


def _same(a, b, rtol: float) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= rtol * max(abs(a), abs(b))


def check_rows_match(actual: dict, expected: dict, what: str, rtol: float = 0.0, shape_rtol: float | None = None) -> float:
    """Same columns in the same order, same text, numbers equal (NaN where NaN) within ``rtol``
    (``shape_rtol`` for shape features); returns the largest relative difference."""
    check(list(actual) == list(expected), f"{what}: columns differ from extract_image_features on the files: "
          f"missing {sorted(set(expected) - set(actual))[:5]}, extra {sorted(set(actual) - set(expected))[:5]}")
    worst = 0.0
    for column, value in expected.items():
        tolerance = rtol
        if shape_rtol is not None and "_shape_" in column:
            tolerance = shape_rtol
        check(_same(actual[column], value, tolerance), f"{what}: {column} is {actual[column]!r}, the files give {value!r}")
        if not isinstance(value, str) and not math.isnan(float(value)) and float(value) != 0:
            worst = max(worst, abs(float(actual[column]) - float(value)) / abs(float(value)))
    return worst


class NodesSnapshot:
    """Content hashes, geometry and attributes of input nodes, and the scene's node count."""

    def __init__(self, scene, nodes):
        self.scene, self.nodes = scene, list(nodes)
        self.state = [self._state(n) for n in self.nodes]
        self.count = scene.GetNumberOfNodes()

    @staticmethod
    def _state(node):
        attributes = {name: node.GetAttribute(name) for name in (node.GetAttributeNames() or ())}
        if node.IsA("vtkMRMLSegmentationNode"):
            segmentation = node.GetSegmentation()
            return (convert.segmentation_sha256(node), convert.segment_names(node), segmentation.GetSourceRepresentationName(),
                    node.GetParentTransformNode() and node.GetParentTransformNode().GetID(), attributes)
        return (convert.voxels_sha256(node), node.GetImageData().GetScalarType(),
                node.GetParentTransformNode() and node.GetParentTransformNode().GetID(), attributes)

    def check_unchanged(self, what: str) -> None:
        for node, state in zip(self.nodes, self.state):
            check(self._state(node) == state, f"{what}: input node {node.GetName()!r} was modified")

    def added(self) -> int:
        return self.scene.GetNumberOfNodes() - self.count


def _column_types(table_node) -> dict[str, str]:
    """Column name → "text" (vtkStringArray), "number" (vtkDoubleArray; read back as vtkTypeFloat64Array) or its class."""
    table = table_node.GetTable()
    types = {}
    for c in range(table.GetNumberOfColumns()):
        column = table.GetColumn(c)
        kind = "text" if column.IsA("vtkStringArray") else "number" if column.IsA("vtkDoubleArray") else column.GetClassName()
        types[column.GetName()] = kind
    return types


def check_table_layout(table_node, what: str) -> None:
    """Every column a SIRTDosiomics name; text in string columns, numbers in double columns."""
    for column, kind in _column_types(table_node).items():
        expected = "text" if naming.parse_column(column).kind in ("error", "warning", "id") else "number"
        check(kind == expected, f"{what}: column {column} holds {kind}, expected {expected}")


def _attributes(node) -> dict[str, str]:
    return {name: node.GetAttribute(name) for name in (node.GetAttributeNames() or ())}


def _write_volume(node, path: Path) -> Path:
    """Write a volume node as the file a user would save (voxels and geometry as the node holds them)."""
    sitk.WriteImage(convert.image_from_volume_node(node, np.float32), str(path), useCompression=True)
    return path


def _progress_recorder():
    calls: list[tuple[float, str]] = []
    return calls, lambda fraction, message: calls.append((fraction, message))


def _check_progress(calls, what: str) -> None:
    check(calls and calls[0][0] == 0.0 and calls[-1][0] == 1.0, f"{what}: progress did not run from 0 to 100 %")
    check(all(a[0] <= b[0] for a, b in zip(calls, calls[1:])), f"{what}: progress went backwards")
    check(any("features" in m for _, m in calls), f"{what}: no progress message per feature set")


# ---------------------------------------------------------------------------------------------


def scenario_patient1_features_match_files(scene, work_dir: str | Path | None = None) -> dict:
    """Patient 1 (90Y PET): dose and BED through SIRTDosimetry (LQ parameters for the tumours only),
    then features of the dose, BED and PET nodes for the tumour (two segments) and the normal tissue
    with the published preset: one new table node, values equal to ``extract_image_features`` on the
    files, the BED of the normal tissue (NaN, no LQ parameters) an error column, inputs unchanged,
    provenance attributes, and the same table after saving and reopening the scene."""
    import radiomics

    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="sirt-dosiomics-"))
    pet = load_volume(scene, PATIENT_1[0], "patient 1 PET")
    segmentation = load_segmentation(scene, PATIENT_1[1], "patient 1 segmentation")
    params = DoseParameters(
        calibration=AbsoluteCalibration(units="bq_per_ml"), method="ldm", segments=("Tumor 1", "Tumor 2", "Normal Tissue"),
        radiobiology={"Tumor 1": TUMOUR_CHIESA_2015, "Tumor 2": TUMOUR_CHIESA_2015},
    )
    dose = compute_dose_from_nodes(pet, segmentation, params, with_dvh=False)
    images = {"dose": dose.dose_node, "bed": dose.bed_node, "pet": pet}
    files = {"dose": _write_volume(dose.dose_node, work_dir / "dose.nrrd"), "bed": _write_volume(dose.bed_node, work_dir / "bed.nrrd"),
             "pet": PATIENT_1[0]}
    expected = reference_row(files, PATIENT_1[1], PATIENT_1_STRUCTURES, "y90")

    before = NodesSnapshot(scene, [*images.values(), segmentation])
    calls, progress = _progress_recorder()
    table = extract_features_from_nodes(images, segmentation, PATIENT_1_STRUCTURES, "y90", progress=progress)
    before.check_unchanged("patient 1")
    check(before.added() == 1 and table.IsA("vtkMRMLTableNode"), f"expected one new table node, {before.added()} nodes were added")
    _check_progress(calls, "patient 1")

    row = table_row(table)
    check_rows_match(row, expected, "patient 1")
    check_table_layout(table, "patient 1")
    per_set = len(expected_columns(load_preset(None)))
    check(per_set == 107, f"the published preset gives {per_set} features per structure, not 107")
    check(len(row) == 6 * (per_set + 5), f"{len(row)} columns for 3 images × 2 structures")
    check(row["y90_dose_tumour_error"] == "" and row["y90_pet_wnl_error"] == "", "unexpected errors")
    check("not finite" in row["y90_bed_wnl_error"] and math.isnan(row["y90_bed_wnl_firstorder_Mean"]),
          f"the normal tissue's BED (NaN without LQ parameters) should be an error column: {row['y90_bed_wnl_error']!r}")
    check(np.isfinite(row["y90_bed_tumour_glcm_JointEnergy"]), "the tumour's BED features are missing")

    attributes = _attributes(table)
    check(attributes.get("SIRT.Table") == FEATURE_TABLE_KIND, "the table does not say what it holds")
    check(attributes[ATTRIBUTE_PREFIX + "Preset"] == DEFAULT_PRESET_NAME, "preset name not recorded")
    check(attributes[ATTRIBUTE_PREFIX + "PyradiomicsVersion"] == radiomics.__version__, "pyradiomics version not recorded")
    check(json.loads(attributes[ENGINE_ATTRIBUTE]) == radiomics_engine(), "pyradiomics build (version, source) not recorded")
    check(attributes[ATTRIBUTE_PREFIX + "Source"] == "y90", "source not recorded")
    check(json.loads(attributes[ATTRIBUTE_PREFIX + "PresetSettings"])["name"] == DEFAULT_PRESET_NAME, "preset settings not recorded")
    inputs = json.loads(attributes[ATTRIBUTE_PREFIX + "Inputs"])
    for kind, node in [*images.items(), ("segmentation", segmentation)]:
        check(inputs[kind]["node_id"] == node.GetID() and inputs[kind]["name"] == node.GetName(), f"input {kind} not recorded")
        check(table.GetNodeReference(f"SIRT.{kind}").GetID() == node.GetID(), f"no reference to the {kind} node")
    check(inputs["pet"]["file"].endswith(PATIENT_1[0].name), "the PET file is not recorded")
    check(json.loads(attributes[ATTRIBUTE_PREFIX + "Structures"]) == PATIENT_1_STRUCTURES, "structures not recorded")

    # save and reopen
    path = save_scene(scene, work_dir / "patient1_features.mrb", overwrite=True)
    reopened = read_scene(path)
    again = reopened.scene.GetFirstNodeByName(table.GetName())
    check(again is not None and again.IsA("vtkMRMLTableNode"), "the feature table is missing from the reopened scene")
    check_rows_match(table_row(again), row, "patient 1 after saving and reopening", rtol=SAVED_TABLE_RTOL)
    check(_column_types(again) == _column_types(table), "column types changed through the scene round trip")
    check(_attributes(again) == attributes, "provenance attributes changed through the scene round trip")
    check(again.GetNodeReference("SIRT.segmentation").GetName() == segmentation.GetName(), "reference to the segmentation lost")
    return {"table": table, "row": row, "expected": expected, "images": images, "segmentation": segmentation,
            "progress": calls, "scene_path": path, "reopened": reopened, "dose": dose}


def scenario_patient2_reversed_slices(scene) -> dict:
    """Patient 2 (99mTc-MAA SPECT, tumour / normal perfused liver / whole normal liver): Slicer stores the
    negative-z SPECT with its slices reversed; the masks are the same voxels, firstorder and texture
    features agree with the file to rounding and shape features to the marching cubes' ~1e-3."""
    spect = load_volume(scene, PATIENT_2[0], "patient 2 SPECT")
    segmentation = load_segmentation(scene, PATIENT_2[1], "patient 2 segmentation")
    file_z = np.asarray(read_image(PATIENT_2[0]).GetDirection()).reshape(3, 3)[2, 2]
    node_z = convert.node_ijk_to_ras(spect)[2, 2]
    check(file_z < 0 < node_z, "this scenario expects Slicer to reverse the SPECT's slices")
    expected = reference_row({"spect": PATIENT_2[0]}, PATIENT_2[1], PATIENT_2_STRUCTURES, "maa")
    before = NodesSnapshot(scene, [spect, segmentation])
    table = extract_features_from_nodes({"spect": spect}, segmentation, PATIENT_2_STRUCTURES, "99mTc-MAA")
    before.check_unchanged("patient 2")
    row = table_row(table)
    worst = check_rows_match(row, expected, "patient 2", rtol=RTOL_REORDERED, shape_rtol=SHAPE_RTOL_REORDERED)
    for structure in PATIENT_2_STRUCTURES:
        check(row[f"maa_spect_{structure}_error"] == "", f"{structure}: {row[f'maa_spect_{structure}_error']}")
        check(row[f"maa_spect_{structure}_diagnostics_VoxelNum"] == expected[f"maa_spect_{structure}_diagnostics_VoxelNum"],
              f"{structure}: the mask has another number of voxels than on the file's grid")
    return {"table": table, "row": row, "expected": expected, "worst": worst}


def scenario_errors_cancel_and_refill(scene, work_dir: str | Path | None = None) -> dict:
    """Refused input (unknown segment, image kind, source, preset; no image or structure) and
    cancellation between two pyradiomics calls leave the scene and an output table as they were; an
    empty segment is an error column while the other structure is computed; a PET given as a SPECT
    gets no texture features instead of exhausting the memory; a table is refilled in place. Mostly
    first-order features, from a JSON preset file (the module passes a preset path)."""
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="sirt-dosiomics-"))
    preset_path = work_dir / "firstorder.json"
    preset_path.write_text(json.dumps({"name": "firstorder-only", "classes": ["firstorder"]}), encoding="utf-8")
    pet = load_volume(scene, PATIENT_1[0], "patient 1 PET (errors)")
    segmentation = load_segmentation(scene, PATIENT_1[1], "patient 1 segmentation (errors)")
    segmentation.GetSegmentation().AddEmptySegment("", "Empty")
    images = {"pet": pet}
    before = NodesSnapshot(scene, [pet, segmentation])
    outcomes: dict[str, str] = {}

    def refused(key: str, *args, expect: str = "", **kwargs) -> None:
        try:
            extract_features_from_nodes(*args, **kwargs)
        except SIRTInputError as exc:
            outcomes[key] = str(exc)
            check(expect.lower() in str(exc).lower(), f"{key}: unclear message: {exc}")
        else:
            raise AssertionError(f"{key}: accepted")
        check(before.added() == 0, f"{key}: {before.added()} nodes were left in the scene")

    structures = {"tumour": ["Tumor 1"], "npl": ["Empty"]}
    refused("unknown segment", images, segmentation, {"tumour": ["Tumor 1", "Spleen"]}, "y90", str(preset_path), expect="Spleen")
    refused("unknown kind", {"mri": pet}, segmentation, structures, "y90", str(preset_path), expect="mri")
    refused("no image", {"dose": None}, segmentation, structures, "y90", expect="at least one image")
    refused("unknown source", images, segmentation, structures, "ho166", expect="ho166")
    refused("no structure", images, segmentation, {}, "y90", expect="structure")
    refused("structure without segments", images, segmentation, {"tumour": []}, "y90", expect="tumour")
    refused("missing preset", images, segmentation, structures, "y90", str(work_dir / "missing.yaml"), expect="missing.yaml")
    refused("not a volume", {"dose": segmentation}, segmentation, structures, "y90", expect="scalar volume")
    refused("all structures empty", images, segmentation, {"npl": ["Empty"]}, "y90", str(preset_path), expect="empty")

    def cancel_after(checks: int):
        calls = []
        return lambda: calls.append(1) or len(calls) > checks  # let some steps run, then stop

    # Cancel checks: inputs, mapping, task 1 of 2 (first-order, then shape), task 2: stops between the two.
    messages, progress = _progress_recorder()
    try:
        extract_features_from_nodes(images, segmentation, {"tumour": ["Tumor 1"]}, "y90", {"classes": ["firstorder", "shape"]},
                                    progress=progress, cancel=cancel_after(3))
        raise AssertionError("cancellation was ignored")
    except OperationCancelled as exc:
        outcomes["cancelled"] = str(exc)
    tasks = [m for _, m in messages if "features (" in m]
    check(len(tasks) == 1 and tasks[0].endswith("(1/2)"), f"cancellation was not between the tasks: {tasks}")
    check(before.added() == 0, f"cancelling left {before.added()} nodes in the scene")

    # An empty segment: its structure's error column says so, the tumour is computed (case-insensitive names).
    table = extract_features_from_nodes(images, segmentation, {"Tumor": ["tumor 1"], "npl": ["Empty"]}, "90Y", str(preset_path),
                                        patient_id="P1")
    row = table_row(table)
    check(list(row)[0] == naming.ID_COLUMN and row[naming.ID_COLUMN] == "P1", "no patient_id column first")
    check(row["y90_pet_tumour_error"] == "" and np.isfinite(row["y90_pet_tumour_firstorder_Mean"]), "tumour features missing")
    check("'Empty'" in row["y90_pet_npl_error"] and "empty" in row["y90_pet_npl_error"], f"empty segment: {row['y90_pet_npl_error']!r}")
    check(all(math.isnan(v) for k, v in row.items() if k.startswith("y90_pet_npl_firstorder_")), "an empty segment got features")
    check(len(row) == 1 + 2 * (18 + 5), f"{len(row)} columns with first-order features only")
    check(table.GetAttribute(ATTRIBUTE_PREFIX + "Preset") == "firstorder-only", "preset name not recorded")
    check(table.GetAttribute(ATTRIBUTE_PREFIX + "PresetFile") == str(preset_path), "preset file not recorded")
    added_by_table = before.added()
    check(added_by_table == 1, f"{added_by_table} nodes added for one table")

    # The PET (Bq/mL) given as a SPECT: with SPECT settings (bin width 50) Tumor 2 spans ~70 000 bins; its
    # texture classes are refused (they would need tens of gigabytes) and its shape features kept.
    pet_as_spect = extract_features_from_nodes({"spect": pet}, segmentation, {"tumour": ["Tumor 2"]}, "y90",
                                               {"name": "firstorder-shape", "classes": ["firstorder", "shape"]})
    spect_row = table_row(pet_as_spect)
    check("bins" in spect_row["y90_spect_tumour_error"] and math.isnan(spect_row["y90_spect_tumour_firstorder_Mean"]),
          f"a PET given as SPECT was not refused: {spect_row['y90_spect_tumour_error']!r}")
    check(spect_row["y90_spect_tumour_shape_VoxelVolume"] > 0, "the shape features were not kept")
    scene.RemoveNode(pet_as_spect)

    # An output table keeps its content when a run fails or is cancelled, and is refilled when it succeeds.
    columns = list(row)
    refused_with_table = [("unknown segment", {"tumour": ["Spleen"]}), ("all structures empty", {"npl": ["Empty"]})]
    for key, bad in refused_with_table:
        try:
            extract_features_from_nodes(images, segmentation, bad, "y90", str(preset_path), table_node=table)
            raise AssertionError(f"{key}: accepted")
        except SIRTInputError:
            pass
        check(list(table_row(table)) == columns and table.GetAttribute(ATTRIBUTE_PREFIX + "PatientId") == "P1",
              f"{key}: the output table was changed")
    try:
        extract_features_from_nodes(images, segmentation, structures, "y90", str(preset_path), table_node=table, cancel=cancel_after(3))
        raise AssertionError("cancellation was ignored")
    except OperationCancelled:
        pass
    check(list(table_row(table)) == columns, "cancelling changed the output table")
    refilled = extract_features_from_nodes(images, segmentation, {"tumour": ["Tumor 2"]}, "y90", str(preset_path), table_node=table)
    check(refilled.GetID() == table.GetID() and before.added() == added_by_table, "refilling added a node")
    row2 = table_row(table)
    check(list(row2) == [c for c in columns if c.startswith("y90_pet_tumour_")], "the refilled table kept old columns")
    check(row2["y90_pet_tumour_firstorder_Mean"] != row["y90_pet_tumour_firstorder_Mean"], "the refilled table has the old values")
    check(table.GetAttribute(ATTRIBUTE_PREFIX + "PatientId") is None, "an old provenance attribute was kept")
    check(json.loads(table.GetAttribute(ATTRIBUTE_PREFIX + "Structures")) == {"tumour": ["Tumor 2"]}, "structures not updated")
    before.check_unchanged("errors")
    return {"outcomes": outcomes, "table": table, "row": row, "refilled_row": row2}


def scenario_transformed_segmentation(scene) -> dict:
    """A segmentation under a linear transform is used where the transform puts it (synthetic images)."""
    spacing = 4.0
    values = np.full((16, 16, 24), 5.0)
    values[4:10, 4:10, 4:10] = 100.0 + np.arange(216).reshape(6, 6, 6) % 7  # cube A: 100..106 Gy
    values[4:10, 4:10, 14:20] = 300.0 + np.arange(216).reshape(6, 6, 6) % 5  # cube B beside it (+x): 300..304 Gy
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((spacing,) * 3)
    image.SetOrigin((10.0, -20.0, 5.0))
    label = np.zeros(values.shape, dtype=np.uint16)
    label[4:10, 4:10, 4:10] = 1
    layer = sitk.GetImageFromArray(label)
    layer.CopyInformation(image)
    volume = convert.add_volume_node(scene, image, "synthetic dose")
    seg_node = convert.add_segmentation_node(
        scene, Segmentation((layer,), (Segment("target", 0, 1),), "synthetic"), "synthetic segmentation (transformed)"
    )
    preset = {"name": "firstorder-only", "classes": ["firstorder"]}

    def mean() -> float:
        table = extract_features_from_nodes({"dose": volume}, seg_node, {"tumour": "target"}, "y90", preset)
        value = table_row(table)["y90_dose_tumour_firstorder_Mean"]
        scene.RemoveNode(table)
        return value

    plain = mean()
    check(abs(plain - values[4:10, 4:10, 4:10].mean()) < 1e-9, f"mean of cube A {plain}")
    shift = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    matrix = np.eye(4)
    matrix[0, 3] = -10 * spacing  # LPS +x is RAS -x: onto cube B
    shift.SetMatrixTransformToParent(convert.numpy_to_vtk_matrix(matrix))
    seg_node.SetAndObserveTransformNodeID(shift.GetID())
    moved = mean()
    check(abs(moved - values[4:10, 4:10, 14:20].mean()) < 1e-9, f"the transformed segment did not move onto cube B (mean {moved})")
    volume.SetAndObserveTransformNodeID(shift.GetID())
    both = mean()
    check(abs(both - plain) < 1e-9, f"the same transform on image and segmentation changed the features ({both} vs {plain})")
    return {"plain": plain, "moved": moved, "both": both}


ALL_SCENARIOS = (
    scenario_patient1_features_match_files,
    scenario_patient2_reversed_slices,
    scenario_errors_cancel_and_refill,
    scenario_transformed_segmentation,
)
