"""The SIRTDosimetry MRML layer on a real vtkMRMLScene (slicer-core 5.12 wheel).

The heavy checks live in ``SIRTDosimetryLib.testing.scenarios`` so that the module's self-test in
Slicer runs the very same code; here each scenario runs in a fresh scene with the volumes,
segmentations and colour logics set up, and a few extra properties are checked on what it returns.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the slicer-core wheel is not installed (the PyPI package 'slicer' is unrelated)", allow_module_level=True)

from SIRTDosimetryLib.errors import SIRTInputError  # noqa: E402
from SIRTDosimetryLib.io.segmentations import read_segmentation  # noqa: E402
from SIRTDosimetryLib.io.volumes import read_activity_image  # noqa: E402
from SIRTDosimetryLib.io.writers import STAGING_PREFIX  # noqa: E402
from SIRTDosimetryLib.mrml import convert, outputs  # noqa: E402
from SIRTDosimetryLib.testing import scenarios  # noqa: E402
from SIRTDosimetryLib.io.rtdose import read_rtdose  # noqa: E402
from SIRTDosimetryLib.mrml.export import dicom_series_folder, rtdose_nodes_of, save_dose_scene, write_rtdose_nodes  # noqa: E402
from SIRTDosimetryLib.mrml.logic import DoseSettings  # noqa: E402
from SIRTDosimetryLib.mrml.scene import new_scene, read_scene, save_scene  # noqa: E402


@pytest.fixture(scope="module")
def patient1(tmp_path_factory):
    context = new_scene()
    result = scenarios.scenario_patient1_dose_and_scene_round_trip(context.scene, tmp_path_factory.mktemp("p1"))
    result["context"] = context
    return result


# --- patient 1: dose through MRML, outputs, round trip -------------------------------------------


def test_patient1_scenario_dose_equals_engine_on_files(patient1):
    assert patient1["error"] <= scenarios.FLOAT32_RELATIVE


def test_patient1_outputs_are_new_nodes_with_dose_display(patient1):
    out, volume = patient1["outputs"], patient1["volume"]
    ids = {n.GetID() for n in out.nodes()}
    assert volume.GetID() not in ids and patient1["segmentation"].GetID() not in ids
    assert out.dose_node.GetName() == "patient 1 PET dose (Gy)"
    display = out.dose_node.GetDisplayNode()
    assert display.GetColorNode().GetName() == outputs.DOSE_COLOR_TABLE_NAME
    assert not display.GetAutoWindowLevel() and display.GetWindowLevelMin() == 0.0
    assert out.dose_node.GetVoxelValueUnits().GetCodeValue() == "Gy"
    assert out.dose_node.GetNodeReference("SIRT.activity").GetID() == volume.GetID()
    assert out.dose_node.GetNodeReference("SIRT.summaryTable").GetID() == out.table_node.GetID()
    for node in (out.dose_node, out.bed_node, out.eqd2_node):  # SlicerRT's DVH, Isodose and RT export see doses
        assert node.GetAttribute(outputs.SLICERRT_DOSE_VOLUME_ATTRIBUTE) == "1"


def test_patient1_dose_nodes_export_as_rt_dose(patient1, tmp_path):
    out = patient1["outputs"]
    written = write_rtdose_nodes({"dose_gy": out.dose_node, "eqd2_gy": out.eqd2_node}, tmp_path)
    assert [p.name for p in written] == ["dose_gy.dcm", "eqd2_gy.dcm"]
    node_dose = convert.image_from_volume_node(out.dose_node)
    exported = sitk.Resample(read_rtdose(tmp_path / "dose_gy.dcm"), node_dose, sitk.Transform(), sitk.sitkNearestNeighbor)
    expected = sitk.GetArrayFromImage(node_dose)
    np.testing.assert_allclose(sitk.GetArrayFromImage(exported), expected, rtol=1e-3, atol=1e-9 * expected.max())


def test_the_export_button_writes_the_dose_bed_and_eqd2_of_a_dose_node(patient1, tmp_path):
    out = patient1["outputs"]
    nodes = rtdose_nodes_of(out.dose_node)
    assert nodes == {"dose_gy": out.dose_node, "bed_gy": out.bed_node, "eqd2_gy": out.eqd2_node}
    written = write_rtdose_nodes(nodes, tmp_path, dicom_series_folder(out.dose_node.GetNodeReference("SIRT.activity"), lambda uid: ""))
    assert sorted(p.name for p in written) == ["bed_gy.dcm", "dose_gy.dcm", "eqd2_gy.dcm"]
    with pytest.raises(SIRTInputError, match="not a dose map computed by this module"):
        rtdose_nodes_of(out.bed_node)


def test_a_volume_from_the_dicom_database_exports_into_its_series(patient1, tmp_path):
    activity = patient1["outputs"].dose_node.GetNodeReference("SIRT.activity")
    activity.SetAttribute("DICOM.instanceUIDs", "1.2.3 1.2.4")
    try:
        files = {"1.2.3": str(tmp_path / "db" / "series" / "1.2.3.dcm")}
        assert dicom_series_folder(activity, lambda uid: files.get(uid, "")) == tmp_path / "db" / "series"
    finally:
        activity.RemoveAttribute("DICOM.instanceUIDs")


def test_patient1_table_has_one_row_per_segment_with_bed(patient1):
    rows = outputs.table_rows(patient1["outputs"].table_node)
    names = [r["name"] for r in rows]
    assert names == ["Liver", *scenarios.PATIENT_1_TUMOURS, "Normal Tissue"]
    assert all(np.isfinite(r["bed_mean_gy"]) and r["bed_mean_gy"] >= r["dose_mean_gy"] for r in rows)
    table = patient1["outputs"].table_node
    assert table.GetColumnProperty("dose_mean_gy", "unitLabel") == "Gy"


def test_patient1_provenance_is_json_with_hashes(patient1):
    data = json.loads(patient1["outputs"].provenance_node.GetText())
    assert data["schema"].startswith("slicer-sirt/dose-summary")
    assert len(data["inputs"]["activity"]["voxels_sha256"]) == 64
    assert data["inputs"]["activity"]["file"].endswith("patient_1_Y90_PET.nrrd")
    assert [s["name"] for s in data["segments"]] == [s.name for s in patient1["reference"].segments]


def test_patient1_dvh_chart_when_the_analysis_package_is_there(patient1):
    out = patient1["outputs"]
    if out.dvh_chart_node is None:
        pytest.skip("analysis.dvh not available")
    assert out.dvh_chart_node.GetNumberOfPlotSeriesNodes() == len(patient1["reference"].segments)
    series = out.dvh_series_nodes[0]
    volume_pct = convert.numpy_support.vtk_to_numpy(out.dvh_table_node.GetTable().GetColumnByName(series.GetYColumnName()))
    assert volume_pct[0] == pytest.approx(100.0) and volume_pct[-1] == pytest.approx(0.0)


def test_patient1_reopened_scene_keeps_dose_segments_and_overlay_tables(patient1):
    reopened = patient1["reopened"].scene
    out = patient1["outputs"]
    names = [reopened.GetNthNode(i).GetName() for i in range(reopened.GetNumberOfNodes())]
    for node in (out.bed_node, out.eqd2_node, out.table_node, out.provenance_node):
        assert node.GetName() in names
    dose = reopened.GetFirstNodeByName(out.dose_node.GetName())
    assert dose.GetDisplayNode().GetColorNode().GetName() == outputs.DOSE_COLOR_TABLE_NAME
    text = reopened.GetFirstNodeByName(out.provenance_node.GetName())
    assert json.loads(text.GetText())["inputs"] == out.summary["inputs"]


# --- other scenarios ------------------------------------------------------------------------------


def test_patient2_negative_z_dose_lines_up_with_spect(scene):
    result = scenarios.scenario_patient2_negative_z_geometry(scene)
    assert result["file_z"] < 0 < result["node_z"]  # Slicer reorders the slices: geometry must come from the node
    assert result["error"] <= scenarios.FLOAT32_RELATIVE


def test_cancel_and_bad_input_leave_no_nodes(scene):
    outcomes = scenarios.scenario_cancel_and_bad_input(scene)
    assert "cancelled" in outcomes["cancelled"]
    assert "Create new" in outcomes["output_is_input"]
    assert "units" in outcomes["no_units"]


def test_transformed_segmentation(scene):
    scenarios.scenario_transformed_segmentation(scene)


def test_ct_density_halves_the_dose_at_twice_the_density(scene, tmp_path):
    assert scenarios.scenario_ct_density(scene, tmp_path)["ratio"] == pytest.approx(0.5)


def test_rt_dose_unit_is_set_on_the_study_of_a_placed_dose(scene):
    dose = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "dose")
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    patient = hierarchy.CreateSubjectItem(hierarchy.GetSceneItemID(), "patient")
    study = hierarchy.CreateStudyItem(patient, "study")
    hierarchy.CreateItem(study, dose)
    outputs.mark_rt_dose(dose)
    assert dose.GetAttribute("DicomRtImport.DoseVolume") == "1"
    assert hierarchy.GetItemAttribute(study, "DicomRtImport.DoseUnitName") == "GY"
    assert hierarchy.GetItemAttribute(patient, "DicomRtImport.DoseUnitName") == ""


def test_dvh_plot_nodes_from_synthetic_curves(scene):
    scenarios.scenario_dvh_plot_nodes(scene)


def test_recomputing_into_the_same_dose_node_replaces_its_companions(scene):
    from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration
    from SIRTDosimetryLib.dose.engine import DoseParameters
    from SIRTDosimetryLib.dose.radiobiology import TUMOUR_CHIESA_2015
    from SIRTDosimetryLib.io.segmentations import Segment, Segmentation
    from SIRTDosimetryLib.mrml.logic import compute_dose_from_nodes

    activity = np.zeros((12, 12, 12))
    activity[4:8, 4:8, 4:8] = 800.0
    image = sitk.GetImageFromArray(activity)
    image.SetSpacing((4.0, 4.0, 4.0))
    label = sitk.GetImageFromArray((activity > 0).astype(np.uint16))
    label.CopyInformation(image)
    volume = convert.add_volume_node(scene, image, "activity")
    seg = convert.add_segmentation_node(scene, Segmentation((label,), (Segment("target", 0, 1),), "synthetic"), "seg")
    params = DoseParameters(calibration=AbsoluteCalibration(units="bq_per_ml"), radiobiology={"target": TUMOUR_CHIESA_2015})
    first = compute_dose_from_nodes(volume, seg, params)
    count = scene.GetNumberOfNodes()
    second = compute_dose_from_nodes(volume, seg, params, dose_node=first.dose_node, table_node=first.table_node)
    assert scene.GetNumberOfNodes() == count  # companions replaced, not accumulated
    assert second.dose_node is first.dose_node and second.bed_node.GetID() == first.bed_node.GetID()
    assert second.dose_node.GetNodeReference("SIRT.provenance").GetID() == second.provenance_node.GetID()
    assert first.provenance_node.GetScene() is None  # the old provenance is gone


# --- conversions ----------------------------------------------------------------------------------


def test_volume_round_trip_keeps_lps_geometry_with_oblique_direction(scene):
    array = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.5, 2.0, 3.0))
    image.SetOrigin((-10.0, 20.0, 30.0))
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, -1.0]])
    image.SetDirection(rotation.flatten().tolist())
    node = convert.add_volume_node(scene, image, "oblique")
    back = convert.image_from_volume_node(node, np.float32)
    assert np.array_equal(sitk.GetArrayViewFromImage(back), array)
    assert np.allclose(back.GetOrigin(), image.GetOrigin()) and np.allclose(back.GetSpacing(), image.GetSpacing())
    assert np.allclose(back.GetDirection(), image.GetDirection())
    # RAS of voxel (1, 2, 3) is the LPS point with x and y negated.
    matrix = convert.vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ras = np.array(matrix.MultiplyPoint((1, 2, 3, 1)))[:3]
    lps = np.array(image.TransformIndexToPhysicalPoint((1, 2, 3)))
    assert np.allclose(ras, lps * [-1, -1, 1])


def test_segmentation_node_export_matches_file_reader(scene, patient1_paths):
    from SIRTDosimetryLib.mrml.scene import load_segmentation

    node = load_segmentation(scene, patient1_paths[1])
    count = scene.GetNumberOfNodes()
    mine = convert.segmentation_from_node(node)
    assert scene.GetNumberOfNodes() == count  # the export's temporary nodes are gone
    theirs = read_segmentation(patient1_paths[1])
    assert mine.names == theirs.names
    for name in mine.names:
        a, b = mine.segment(name), theirs.segment(name)
        mask = sitk.GetImageFromArray((sitk.GetArrayViewFromImage(mine.layers[a.layer]) == a.label_value).astype(np.uint8))
        mask.CopyInformation(mine.layers[a.layer])
        on_file_grid = sitk.Resample(mask, theirs.layers[b.layer], sitk.Transform(), sitk.sitkNearestNeighbor, 0)
        assert np.array_equal(sitk.GetArrayViewFromImage(on_file_grid).astype(bool), theirs.mask(name)), name


def test_segmentation_with_repeated_names_is_refused(scene):
    from SIRTDosimetryLib.io.segmentations import Segment, Segmentation

    layer = sitk.GetImageFromArray(np.pad(np.ones((2, 2, 2), dtype=np.uint16), 1))
    layer2 = sitk.GetImageFromArray(np.pad(np.ones((2, 2, 2), dtype=np.uint16), 1))
    node = convert.add_segmentation_node(scene, Segmentation((layer, layer2), (Segment("a", 0, 1), Segment("b", 1, 1)), "x"), "dup")
    node.GetSegmentation().GetNthSegment(1).SetName("a")
    with pytest.raises(SIRTInputError, match="repeated"):
        convert.segmentation_from_node(node)


# --- GUI helpers with stand-in widgets -------------------------------------------------------------


class FakeSegmentSelector:
    def __init__(self):
        self.node, self.ids, self.connections = None, [], []

    def connect(self, signal, slot):
        self.connections.append((signal, slot))

    def setCurrentNode(self, node):
        self.node = node

    def setSelectedSegmentIDs(self, ids):
        self.ids = list(ids)

    def selectedSegmentIDs(self):
        return list(self.ids)


def test_segment_list_sync_stores_names_and_shows_ids(scene, patient1_paths):
    from types import SimpleNamespace

    from SIRTDosimetryLib.mrml.scene import load_segmentation
    from SIRTDosimetryLib.mrml.widgets import SegmentListSync

    segmentation = load_segmentation(scene, patient1_paths[1])
    node = SimpleNamespace(segmentation=segmentation, tumourSegments=["Tumor 2", "Spleen"], calibrationVoi=[])
    widgets = {"tumourSegments": FakeSegmentSelector(), "calibrationVoi": FakeSegmentSelector()}
    sync = SegmentListSync(widgets, lambda: node)
    sync.connect()
    assert all(w.connections[0][0] == "segmentSelectionChanged(QStringList)" for w in widgets.values())
    sync.to_widgets()
    ids = segmentation.GetSegmentation()
    assert [ids.GetSegment(i).GetName() for i in widgets["tumourSegments"].ids] == ["Tumor 2"]  # unknown names skipped
    assert widgets["calibrationVoi"].node is segmentation
    widgets["calibrationVoi"].ids = [ids.GetSegmentIdBySegmentName("Liver")]
    sync.from_widgets()
    assert node.calibrationVoi == ["Liver"] and node.tumourSegments == ["Tumor 2"]


def test_path_sync_and_progress_reporter():
    from types import SimpleNamespace

    from SIRTDosimetryLib.mrml.widgets import PathSync, ProgressReporter

    node = SimpleNamespace(presetPath="/a.yaml")
    widget = SimpleNamespace(currentPath="", connect=lambda signal, slot: None)
    sync = PathSync(widget, "presetPath", lambda: node)
    sync.to_widget()
    assert widget.currentPath == "/a.yaml"
    sync.from_widget("/b.yaml")
    assert node.presetPath == "/b.yaml"

    events = []
    bar = SimpleNamespace(value=5, show=lambda: events.append("show"), hide=lambda: events.append("hide"))
    label = SimpleNamespace(text="")
    progress = ProgressReporter(bar, label, lambda: events.append("events"))
    progress.start()
    progress(0.25, "Computing the dose")
    assert bar.value == 25 and label.text == "Computing the dose" and events == ["show", "events"]
    assert not progress.cancelled()
    progress.request_cancel()
    assert progress.cancelled()
    progress.finish()
    assert progress.start()
    assert not progress.cancelled()


# --- settings and dependencies ------------------------------------------------------------------------


def test_settings_from_camel_case_parameter_object():
    class Wrapper:
        pass

    wrapper = Wrapper()
    for name in DoseSettings.field_names():
        setattr(wrapper, DoseSettings.camel_case(name), getattr(scenarios.patient1_settings(), name))
    settings = DoseSettings.from_object(wrapper)
    assert settings == scenarios.patient1_settings()
    assert settings.to_parameters() == scenarios.patient1_parameters()
    assert DoseSettings.camel_case("administered_activity_gbq") == "administeredActivityGbq"


def test_relative_settings_need_activity_and_check_fractions():
    with pytest.raises(SIRTInputError, match="administered"):
        DoseSettings(calibration_mode="relative").to_parameters()
    params = DoseSettings(calibration_mode="relative", administered_activity_gbq=1.5, lung_shunt_fraction=0.05).to_parameters()
    assert params.calibration.administered_activity_bq == pytest.approx(1.5e9)
    with pytest.raises(SIRTInputError, match="scan time"):
        DoseSettings(units="bq_per_ml", administration_time="2024-05-02T10:00", scan_time="yesterday").to_parameters()


# --- the documented console example ----------------------------------------------------------------


def test_docs_batch_example_runs_as_written(monkeypatch, capsys):
    """docs/slicer.md's "Batch from Slicer's Python console" block, on a slicer-core scene."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "slicer.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n# doc-example: batch\n(.*?)```", text, re.S).group(1)
    context = new_scene()
    monkeypatch.setattr(slicer, "mrmlScene", context.scene, raising=False)
    namespace: dict = {}
    exec(compile(block, "docs/slicer.md", "exec"), namespace)
    results = namespace["results"]
    assert set(results) == {"patient 1", "patient 2 (MAA)"}
    assert results["patient 1"]["Tumor 2"] > results["patient 1"]["Normal Tissue"] > 0
    assert sorted(p.name for p in namespace["output_dir"].iterdir()) == ["patient_1.mrb", "patient_2_(MAA).mrb"]
    assert "100 % Done" in capsys.readouterr().out


# --- sirt dose --scene ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mrb", ".mrml"])
def test_save_dose_scene_reopens_with_dose_overlay_and_segments(tmp_path, patient2_paths, suffix):
    activity = read_activity_image(patient2_paths[0])
    segmentation = read_segmentation(patient2_paths[1])
    params = scenarios.patient2_parameters()
    from SIRTDosimetryLib.dose.engine import compute_dose

    result = compute_dose(activity, segmentation, params)
    path = save_dose_scene(result, activity, segmentation, tmp_path / f"scene{suffix}", params=params, summary={"schema": "test"})
    with pytest.raises(SIRTInputError, match="already exists"):
        save_dose_scene(result, activity, segmentation, path, params=params)
    reopened = read_scene(path).scene
    dose = reopened.GetFirstNodeByName("patient_2_SPECT dose (Gy)")
    assert np.array_equal(scenarios.dose_on_node_grid(result.dose_gy, dose), convert.volume_array(dose))
    spect = reopened.GetFirstNodeByName("patient_2_SPECT")
    assert convert.same_geometry(dose, spect)
    seg = reopened.GetFirstNodeByClass("vtkMRMLSegmentationNode")
    assert convert.segment_names(seg) == segmentation.names
    # segments keep their contours: the engine gives the same numbers from the reopened scene
    again = convert.segmentation_from_node(seg)
    for name in segmentation.names:
        assert int(np.count_nonzero(again.mask(name))) == int(np.count_nonzero(segmentation.mask(name))), name
    composite = reopened.GetFirstNodeByClass("vtkMRMLSliceCompositeNode")
    assert composite.GetForegroundVolumeID() == dose.GetID() and composite.GetBackgroundVolumeID() == spect.GetID()
    assert composite.GetSingletonTag() == "Red" and composite.GetForegroundOpacity() == 0.5
    layout = reopened.GetFirstNodeByClass("vtkMRMLLayoutNode")
    assert layout.GetViewArrangement() == slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpPlotTableView
    table_view = reopened.GetFirstNodeByClass("vtkMRMLTableViewNode")
    assert reopened.GetNodeByID(table_view.GetTableNodeID()).GetName() == "patient_2_SPECT dose summary"
    plot_view = reopened.GetFirstNodeByClass("vtkMRMLPlotViewNode")
    if plot_view.GetPlotChartNodeID():
        assert reopened.GetNodeByID(plot_view.GetPlotChartNodeID()).IsA("vtkMRMLPlotChartNode")
    table = reopened.GetFirstNodeByName("patient_2_SPECT dose summary")
    assert [r["name"] for r in outputs.table_rows(table)] == segmentation.names
    assert json.loads(reopened.GetFirstNodeByClass("vtkMRMLTextNode").GetText())["schema"] == "test"


def test_save_dose_scene_from_paths_as_the_command_line_calls_it(tmp_path, patient1_paths):
    """What ``sirt dose ... --scene`` does after ``run_dose``: paths, units and the summary it wrote."""
    from SIRTDosimetryLib.cli.dose_command import run_dose

    params = scenarios.patient1_parameters()
    result, summary = run_dose(patient1_paths[0], patient1_paths[1], params, tmp_path / "out", units="bq_per_ml")
    ct = read_activity_image(patient1_paths[0]).image * 0 - 100.0  # stands in for a registered CT
    path = save_dose_scene(
        result, patient1_paths[0], patient1_paths[1], tmp_path / "out" / "scene.mrb",
        params=params, summary=summary, units="bq_per_ml", ct=ct,
    )
    reopened = read_scene(path).scene
    text = json.loads(reopened.GetFirstNodeByClass("vtkMRMLTextNode").GetText())
    assert text["segments"] == summary["segments"] and "scene_nodes" in text
    composite = reopened.GetFirstNodeByClass("vtkMRMLSliceCompositeNode")
    assert reopened.GetNodeByID(composite.GetBackgroundVolumeID()).GetName() == "CT"
    for name in text["scene_nodes"].values():  # every output named in the provenance is in the scene
        assert reopened.GetFirstNodeByName(name) is not None, name


@pytest.mark.parametrize("suffix", [".mrb", ".mrml"])
def test_saving_a_copy_leaves_the_scene_and_its_storage_nodes_as_they_were(tmp_path, scene, patient2_paths, suffix):
    from SIRTDosimetryLib.mrml.scene import load_volume

    volume = load_volume(scene, patient2_paths[0])
    convert.add_volume_node(scene, read_activity_image(patient2_paths[0]).image, "no storage node yet")
    scene.SetRootDirectory(str(tmp_path))
    ids = [scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())]
    save_scene(scene, tmp_path / f"copy{suffix}")
    assert [scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())] == ids
    assert volume.GetStorageNode().GetFileName() == str(patient2_paths[0])
    assert scene.GetFirstNodeByName("no storage node yet").GetStorageNode() is None
    assert scene.GetRootDirectory() == str(tmp_path) and scene.GetURL() == ""
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(STAGING_PREFIX)]  # no staging left


def test_save_scene_refuses_other_suffix_and_input_paths(tmp_path, scene, patient2_paths):
    with pytest.raises(SIRTInputError, match=".mrb or .mrml"):
        save_scene(scene, tmp_path / "scene.zip")
    with pytest.raises(SIRTInputError, match=".mrb or .mrml"):
        save_dose_scene(None, read_activity_image(patient2_paths[0]), read_segmentation(patient2_paths[1]), patient2_paths[0])
    from SIRTDosimetryLib.mrml.scene import check_scene_path

    odd_input = tmp_path / "input.mrb"
    odd_input.write_bytes(b"")
    with pytest.raises(SIRTInputError, match="input"):
        check_scene_path(odd_input, overwrite=True, inputs=[odd_input])
    assert check_scene_path(tmp_path / "new.mrml") == tmp_path / "new.mrml"
