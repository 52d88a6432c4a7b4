"""The SIRTDosiomics MRML layer on a real vtkMRMLScene (slicer-core 5.12 wheel).

The heavy checks live in ``SIRTDosiomicsLib.testing.scenarios`` so that the module's self-test in Slicer
runs the very same code; here each scenario runs in a fresh scene, and a few extra properties are
checked on what it returns, plus small synthetic cases (units, naming, the state left in the process).
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the slicer-core wheel is not installed (the PyPI package 'slicer' is unrelated)", allow_module_level=True)

from SIRTDosimetryLib.errors import SIRTInputError  # noqa: E402
from SIRTDosimetryLib.io.segmentations import Segment, Segmentation  # noqa: E402
from SIRTDosimetryLib.mrml import convert  # noqa: E402
from SIRTDosimetryLib.mrml.scene import new_scene  # noqa: E402
from SIRTDosiomicsLib import extract, naming, sparse_mcc  # noqa: E402
from SIRTDosiomicsLib.mrml import logic  # noqa: E402
from SIRTDosiomicsLib.testing import scenarios  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
FIRSTORDER = {"name": "firstorder-only", "classes": ["firstorder"]}


@pytest.fixture(scope="module")
def patient1(tmp_path_factory):
    context = new_scene()
    result = scenarios.scenario_patient1_features_match_files(context.scene, tmp_path_factory.mktemp("p1"))
    result["context"] = context
    return result


def _synthetic(scene, values: np.ndarray | None = None, name: str = "synthetic"):
    """A 4 mm image with a 6-voxel cube segment "target" (values 100..106) and a node for each."""
    if values is None:
        values = np.full((12, 12, 12), 5.0)
        values[3:9, 3:9, 3:9] = 100.0 + np.arange(216).reshape(6, 6, 6) % 7
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((4.0, 4.0, 4.0))
    label = np.zeros(values.shape, dtype=np.uint16)
    label[3:9, 3:9, 3:9] = 1
    layer = sitk.GetImageFromArray(label)
    layer.CopyInformation(image)
    volume = convert.add_volume_node(scene, image, f"{name} image")
    segmentation = convert.add_segmentation_node(scene, Segmentation((layer,), (Segment("target", 0, 1),), name), f"{name} segmentation")
    return volume, segmentation


# --- the scenarios (also the module's self-test) ----------------------------------------------------


def test_patient1_node_features_equal_the_files_and_survive_the_scene(patient1):
    row, expected = patient1["row"], patient1["expected"]
    assert list(row) == list(expected)  # the very same column names, in the same order
    numbers = [c for c, v in expected.items() if not isinstance(v, str)]
    assert all((math.isnan(row[c]) and math.isnan(expected[c])) or row[c] == expected[c] for c in numbers)  # bitwise


def test_patient1_table_is_one_wide_row_named_by_naming(patient1):
    table, row = patient1["table"], patient1["row"]
    assert table.GetNumberOfRows() == 1 and table.GetNumberOfColumns() == len(row) == 672
    assert table.GetName() == "patient 1 segmentation features (y90)"
    parsed = [naming.parse_column(c) for c in row]
    assert {(p.source, p.image, p.structure) for p in parsed} == {("y90", k, s) for k in ("dose", "bed", "pet") for s in ("tumour", "wnl")}
    assert [c for c in row if c.endswith("_error")] == [f"y90_{k}_{s}_error" for k in ("dose", "bed", "pet") for s in ("tumour", "wnl")]
    assert row["y90_dose_tumour_diagnostics_ClipHigh"] == 416.25 and row["y90_dose_wnl_diagnostics_ClipHigh"] == 123.08
    assert row["y90_pet_tumour_diagnostics_VoxelNum"] == row["y90_dose_tumour_diagnostics_VoxelNum"] > 1000  # one mask per grid
    assert "LQ parameters" in row["y90_bed_wnl_error"]


def test_patient1_progress_reports_each_task(patient1):
    messages = [m for _, m in patient1["progress"]]
    assert messages[0] == "Checking the inputs" and messages[-1].startswith("Done")
    assert sum("Mapping the structures" in m for m in messages) == 3
    assert any(m.startswith("y90_dose_tumour: glcm features") for m in messages)


def test_patient1_provenance_attributes(patient1):
    table = patient1["table"]
    software = json.loads(table.GetAttribute("SIRT.Dosiomics.Software"))
    assert software["pyradiomics-bhklab"] and software["slicer-sirt"]
    inputs = json.loads(table.GetAttribute("SIRT.Dosiomics.Inputs"))
    assert len(inputs["dose"]["voxels_sha256"]) == 64 and len(inputs["segmentation"]["segments_sha256"]) == 64
    assert json.loads(table.GetAttribute("SIRT.Dosiomics.Execution")) == {"processes": 1, "sparse_mcc": True}
    assert table.GetAttribute("SIRT.Dosiomics.FeaturesPerStructure") == "107"
    assert table.GetAttribute("SIRT.Dosiomics.PresetFile") == ""


def test_patient2_reversed_slices_agree_with_the_file(scene):
    result = scenarios.scenario_patient2_reversed_slices(scene)
    assert 0 < result["worst"] <= scenarios.SHAPE_RTOL_REORDERED  # only the mesh-based shape features differ
    assert all(result["row"][c] == v for c, v in result["expected"].items() if c.endswith("_diagnostics_VoxelNum"))


def test_errors_cancel_and_refill(tmp_path):
    context = new_scene()
    outcomes = scenarios.scenario_errors_cancel_and_refill(context.scene, tmp_path)["outcomes"]
    assert "segments are: 'Liver'" in outcomes["unknown segment"]
    assert "is empty" in outcomes["all structures empty"]
    assert "nothing was added" in outcomes["cancelled"]


def test_transformed_segmentation(scene):
    result = scenarios.scenario_transformed_segmentation(scene)
    assert result["moved"] > 2.5 * result["plain"]


def test_all_scenarios_are_run_by_the_self_test():
    assert {s.__name__ for s in scenarios.ALL_SCENARIOS} == {
        n for n, f in vars(scenarios).items() if n.startswith("scenario_") and inspect.isfunction(f)
    }


# --- the contract with the module file --------------------------------------------------------------


def test_module_calls_match_the_library_signature():
    """SIRTDosiomics.py (parsed, it needs Qt) calls extract_features_from_nodes with arguments the library accepts."""
    tree = ast.parse((ROOT / "SIRTDosiomics" / "SIRTDosiomics.py").read_text(encoding="utf-8"))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "extract_features_from_nodes"]
    assert calls
    signature = inspect.signature(logic.extract_features_from_nodes)
    for call in calls:
        signature.bind(*[None] * len(call.args), **{k.arg: None for k in call.keywords})
    from SIRTDosiomicsLib import mrml

    assert mrml.extract_features_from_nodes is logic.extract_features_from_nodes
    assert mrml.OperationCancelled.__name__ == "OperationCancelled"  # what the widget recognises


def test_importing_the_package_imports_nothing_heavy():
    code = (
        "import sys, SIRTDosiomicsLib.mrml as m; "
        "heavy = [n for n in ('radiomics', 'vtk', 'SIRTDosiomicsLib.mrml.logic', 'SimpleITK') if n in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- synthetic cases ---------------------------------------------------------------------------------


def test_pet_in_kbq_per_ml_is_converted_like_the_command_line(scene):
    volume, segmentation = _synthetic(scene)
    volume.SetAttribute("SIRT.Units", "kBq/mL")
    table = logic.extract_features_from_nodes({"pet": volume}, segmentation, {"tumour": "target"}, "y90", FIRSTORDER)
    row = scenarios.table_row(table)
    image = convert.image_from_volume_node(volume) * 1000.0  # what sirt features --kind pet --units kbq_per_ml does
    expected = extract.extract_image_features(image, convert.segmentation_from_node(segmentation, volume), {"tumour": "target"},
                                              "pet", "y90", logic.load_preset(FIRSTORDER))
    scenarios.check_rows_match(row, expected, "kBq/mL PET")
    inside = convert.volume_array(volume)[3:9, 3:9, 3:9]
    assert abs(row["y90_pet_tumour_firstorder_Mean"] - 1000 * inside.mean()) < 1e-6
    assert json.loads(table.GetAttribute("SIRT.Dosiomics.Inputs"))["pet"]["units"] == "kbq_per_ml"


def test_new_tables_get_unique_names_and_patient_id(scene):
    volume, segmentation = _synthetic(scene)
    first = logic.extract_features_from_nodes({"dose": volume}, segmentation, {"tumour": ["target"]}, "maa", FIRSTORDER)
    second = logic.extract_features_from_nodes({"dose": volume}, segmentation, {"tumour": ["target"]}, "maa", FIRSTORDER,
                                               patient_id="SIRT-007", name="my features")
    assert first.GetName() != "my features" and second.GetName() == "my features"
    assert first.GetID() != second.GetID()
    row = scenarios.table_row(second)
    assert list(row)[0] == "patient_id" and row["patient_id"] == "SIRT-007"
    assert second.GetAttribute("SIRT.Dosiomics.PatientId") == "SIRT-007"
    assert row["maa_dose_tumour_diagnostics_ClipHigh"] == 650.34  # the MAA clip value
    with pytest.raises(SIRTInputError, match="patient_id"):
        logic.extract_features_from_nodes({"dose": volume}, segmentation, {"tumour": ["target"]}, "maa", FIRSTORDER, patient_id=" ")


def test_another_sirt_table_is_not_overwritten(scene):
    volume, segmentation = _synthetic(scene)
    summary = scene.AddNewNodeByClass("vtkMRMLTableNode", "dose summary")
    summary.SetAttribute("SIRT.Table", "dose_summary")
    with pytest.raises(SIRTInputError, match="dose_summary"):
        logic.extract_features_from_nodes({"dose": volume}, segmentation, {"tumour": "target"}, "y90", FIRSTORDER, table_node=summary)
    empty = scene.AddNewNodeByClass("vtkMRMLTableNode", "new table")  # what the selector's "Create new table" adds
    assert logic.extract_features_from_nodes({"dose": volume}, segmentation, {"tumour": "target"}, "y90", FIRSTORDER,
                                             table_node=empty) is empty
    assert empty.GetAttribute("SIRT.Table") == logic.FEATURE_TABLE_KIND and empty.GetNumberOfColumns() == 23


def test_text_cells_stay_on_one_line():
    assert logic._one_line("a\tb\nc\r") == "a b c "


def test_the_process_is_left_as_found(scene):
    """The sparse MCC is removed again when it was not installed before, and BLAS runs with one thread
    only while features are computed."""
    volume, segmentation = _synthetic(scene)
    was = logic._sparse_mcc_active()
    sparse_mcc.enable_sparse_mcc(False)
    try:
        logic.extract_features_from_nodes({"dose": volume}, segmentation, {"tumour": ["target"]}, "y90", {"classes": ["glcm"]})
        assert not logic._sparse_mcc_active()
    finally:
        sparse_mcc.enable_sparse_mcc(was)
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with extract.one_blas_thread():
        inside = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    assert inside and set(inside) == {1}


def test_non_finite_voxels_are_an_error_column_in_the_library():
    values = 50 + np.arange(1000, dtype=float).reshape(10, 10, 10) % 13
    mask = np.zeros(values.shape, bool)
    mask[2:8, 2:8, 2:8] = True
    values[4, 4, 4] = np.nan
    row = extract.extract_image_features(sitk.GetImageFromArray(values), {"tumour": mask}, {"tumour": "x"}, "bed", "y90",
                                         logic.load_preset(FIRSTORDER))
    assert row["y90_bed_tumour_error"].startswith("1 of the structure's 216 voxels are not finite")
    assert "LQ parameters" in row["y90_bed_tumour_error"] and math.isnan(row["y90_bed_tumour_firstorder_Mean"])
