"""A new user's first Apply on real MRML (slicer-core): the sample patients as Sample Data loads them,
units from the volume or its DICOM header, the liver found whatever its capitalisation, messages in the
GUI's words, results in one subject-hierarchy folder under the study, the results layout and a dose
colour window at clinical levels."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the slicer-core wheel is not installed", allow_module_level=True)

from SIRTDosimetryLib.errors import SIRTInputError  # noqa: E402
from SIRTDosimetryLib.mrml import view  # noqa: E402
from SIRTDosimetryLib.mrml.defaults import first_apply_settings, liver_segment  # noqa: E402
from SIRTDosimetryLib.mrml.logic import DoseSettings, compute_dose_from_nodes, volume_units  # noqa: E402
from SIRTDosimetryLib.mrml.outputs import table_rows  # noqa: E402
from SIRTDosimetryLib.mrml.samples import SAMPLE_PATIENTS, load_sample_patient  # noqa: E402


@pytest.fixture(scope="module")
def samples():
    """Both sample patients loaded once, as Sample Data loads them, into one scene shared by this file."""
    from SIRTDosimetryLib.mrml.scene import new_scene

    context = new_scene()
    patients = {p.key: load_sample_patient(context.scene, p.key) for p in SAMPLE_PATIENTS}
    yield context.scene, patients
    context.scene.Clear(1)


def first_apply(volume, segmentation, **user) -> DoseSettings:
    """The settings after picking the nodes (the module's suggestions) and what the user typed."""
    suggested = first_apply_settings(volume, segmentation, volume_units(volume))
    return DoseSettings(**{**suggested, **user})


def test_sample_patients_load_with_units_and_a_study(samples):
    scene, patients = samples
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    for patient, units, liver in zip(SAMPLE_PATIENTS, ("bq_per_ml", "counts"), ("Liver", "liver")):
        volume, segmentation = patients[patient.key]
        assert volume_units(volume) == units and liver_segment(segmentation) == liver
        study = hierarchy.GetItemParent(hierarchy.GetItemByDataNode(volume))
        assert hierarchy.GetItemLevel(study) == "Study" and hierarchy.GetItemParent(hierarchy.GetItemByDataNode(segmentation)) == study
        assert hierarchy.GetItemLevel(hierarchy.GetItemParent(study)) == "Patient"


def test_first_apply_on_patient_1_computes_with_no_setting_touched(samples):
    scene, patients = samples
    volume, segmentation = patients["SIRTPatient1Y90PET"]
    settings = first_apply(volume, segmentation)
    assert (settings.units, settings.calibration_mode, settings.calibration_voi) == ("bq_per_ml", "absolute", ["Liver"])
    out = compute_dose_from_nodes(volume, segmentation, settings.to_parameters(), with_dvh=False)
    rows = {r["name"]: r for r in table_rows(out.table_node)}
    assert 30 < rows["Liver"]["dose_mean_gy"] < 70 and rows["Tumor 4"]["dose_mean_gy"] > rows["Liver"]["dose_mean_gy"]


def test_first_apply_on_patient_2_asks_in_gui_words_then_computes(samples):
    scene, patients = samples
    volume, segmentation = patients["SIRTPatient2MAASPECT"]
    settings = first_apply(volume, segmentation)
    assert (settings.units, settings.calibration_mode, settings.calibration_voi) == ("counts", "relative", ["liver"])
    with pytest.raises(SIRTInputError, match=r"^relative calibration needs the administered activity \('Administered activity', GBq\)$"):
        settings.to_parameters()
    before = scene.GetNumberOfNodes()
    with pytest.raises(SIRTInputError) as negative:
        compute_dose_from_nodes(volume, segmentation, first_apply(volume, segmentation, administered_activity_gbq=1.5).to_parameters())
    assert "'Negative voxels to zero' in Slicer" in str(negative.value) and "pass --clamp-negative" not in str(negative.value)
    assert scene.GetNumberOfNodes() == before
    settings = first_apply(volume, segmentation, administered_activity_gbq=1.5, clamp_negative=True)
    out = compute_dose_from_nodes(volume, segmentation, settings.to_parameters(), with_dvh=False)
    assert {r["name"] for r in table_rows(out.table_node)} >= {"liver", "Tumor 1"}


def test_calibration_voi_is_matched_case_insensitively_with_report_segments(scene):
    """'liver' (the default VOI) on patient 1, whose segment is 'Liver', with only Tumor 1 reported."""
    volume, segmentation = load_sample_patient(scene, "SIRTPatient1Y90PET")
    settings = DoseSettings(calibration_mode="relative", administered_activity_gbq=1.4, calibration_voi=["liver"], segments=["tumor 1"])
    out = compute_dose_from_nodes(volume, segmentation, settings.to_parameters(), with_dvh=False)
    assert [r["name"] for r in table_rows(out.table_node)] == ["Tumor 1"]
    assert np.isfinite(table_rows(out.table_node)[0]["dose_mean_gy"])


@pytest.mark.parametrize(("modality", "units", "expected"), [("PT", "BQML", "bq_per_ml"), ("NM", None, "counts"), ("NM", "CNTS", "counts"), ("CT", "HU", None)])
def test_units_come_from_the_dicom_header_slicer_loaded(scene, tmp_path, monkeypatch, modality, units, expected):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(tmp_path / "slice.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.Modality, dataset.SOPInstanceUID = modality, "1.2.3.4"
    if units:
        dataset.Units = units
    dataset.save_as(tmp_path / "slice.dcm", enforce_file_format=True)

    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "dicom volume")
    assert volume_units(volume) is None
    volume.SetAttribute("DICOM.instanceUIDs", "1.2.3.4 1.2.3.5")
    # Slicer's DICOM database is a CTK object; its one call used here is stood in for.
    monkeypatch.setattr(slicer, "dicomDatabase", SimpleNamespace(fileForInstance={"1.2.3.4": str(tmp_path / "slice.dcm")}.get), raising=False)
    assert volume_units(volume) == expected


def test_each_run_lands_in_its_own_folder_under_the_study(samples):
    scene, patients = samples
    volume, segmentation = patients["SIRTPatient1Y90PET"]
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    study = hierarchy.GetItemParent(hierarchy.GetItemByDataNode(volume))
    params = DoseSettings(units="bq_per_ml", segments=["Liver", "Tumor 1"]).to_parameters()
    first = compute_dose_from_nodes(volume, segmentation, params)
    folder = hierarchy.GetItemParent(hierarchy.GetItemByDataNode(first.dose_node))
    assert hierarchy.GetItemLevel(folder) == "Folder" and hierarchy.GetItemParent(folder) == study
    assert {hierarchy.GetItemParent(hierarchy.GetItemByDataNode(n)) for n in first.nodes()} == {folder}
    second = compute_dose_from_nodes(volume, segmentation, params)
    assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(second.dose_node)) not in (folder, study)
    refill = compute_dose_from_nodes(volume, segmentation, params, dose_node=first.dose_node, table_node=first.table_node)
    assert hierarchy.GetItemByDataNode(refill.dose_node) and not hierarchy.GetItemLevel(folder)  # emptied folder removed


def test_results_layout_has_3d_slices_plot_and_table(scene):
    layout_logic = slicer.vtkMRMLLayoutLogic()
    layout_logic.SetMRMLScene(scene)
    layout = layout_logic.GetLayoutNode()
    view.use_results_layout(layout)
    assert layout.GetViewArrangement() == view.LAYOUT_ID
    view.use_results_layout(layout)  # registered once
    classes = [v.get("class") for v in ET.fromstring(layout.GetCurrentLayoutDescription()).iter("view")]
    assert sorted(classes) == sorted(["vtkMRMLViewNode", "vtkMRMLSliceNode", "vtkMRMLSliceNode", "vtkMRMLSliceNode",
                                      "vtkMRMLPlotViewNode", "vtkMRMLTableViewNode"])
    layout_logic.SetMRMLScene(None)


def test_dose_window_is_twice_the_tumour_dose_or_the_reference(samples):
    scene, patients = samples
    volume, segmentation = patients["SIRTPatient1Y90PET"]
    settings = DoseSettings(units="bq_per_ml", tumour_segments=[f"Tumor {i}" for i in range(1, 7)])
    out = compute_dose_from_nodes(volume, segmentation, settings.to_parameters(), with_dvh=False)
    rows = {r["name"]: r for r in table_rows(out.table_node)}
    tumour_mean = sum(rows[f"Tumor {i}"]["dose_mean_gy"] * rows[f"Tumor {i}"]["volume_ml"] for i in range(1, 7)) / sum(
        rows[f"Tumor {i}"]["volume_ml"] for i in range(1, 7))
    top = out.dose_node.GetDisplayNode().GetWindowLevelMax()
    assert 2 * tumour_mean <= top < 2 * tumour_mean + 10 and top % 10 == 0
    assert top < 0.9 * rows["Tumor 4"]["dose_max_gy"]  # not the hottest voxel
    out = compute_dose_from_nodes(volume, segmentation, settings.to_parameters(), with_dvh=False, display_reference_gy=60)
    assert out.dose_node.GetDisplayNode().GetWindowLevelMax() == 120
    assert view.clinical_window_max_gy(np.zeros((2, 2, 2)), []) == 10
