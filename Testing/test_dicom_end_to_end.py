"""The whole chain from DICOM: both sample patients written as DICOM series with RTSTRUCT and DICOM-SEG
contours, then dose, RT Dose export, DVH, report and features from them, and clear errors for bad DICOM."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from sirt.main import main
from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration, RelativeCalibration
from SIRTDosimetryLib.dose.engine import DoseParameters, DoseResult, compute_dose
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.rtdose import read_rtdose
from SIRTDosimetryLib.io.segmentations import read_segmentation
from SIRTDosimetryLib.io.volumes import read_activity_image
from SIRTDosimetryLib.testing import dicom_samples

P1_ABSOLUTE = ["--mode", "absolute"]  # units and times come from the DICOM tags
P2_RELATIVE = ["--mode", "relative", "--administered-activity-gbq", "1.5", "--clamp-negative"]  # a few negative counts


@dataclass(frozen=True)
class DicomPatient:
    nrrd_activity: Path
    nrrd_segmentation: Path
    activity: Path  # DICOM series folder
    rtstruct: Path
    seg: Path
    series: list  # the written activity datasets
    params: DoseParameters
    nrrd_params: DoseParameters  # the same calibration for the NRRD original
    cli_calibration: list[str]
    reference: DoseResult  # dose from the DICOM activity with the .seg.nrrd


def _write(folder: Path, activity: Path, pet: bool) -> tuple[Path, list]:
    image = sitk.ReadImage(str(activity))
    if pet:
        series = dicom_samples.write_pet_series(image, folder / "pet")
        return folder / "pet", series
    return folder / "spect", [dicom_samples.write_spect_series(image, folder / "spect" / "nm.dcm")]


@pytest.fixture(scope="module", params=["patient1", "patient2"])
def patient(request, tmp_path_factory, patient1_paths, patient2_paths) -> DicomPatient:
    pet = request.param == "patient1"
    activity, segmentation_path = patient1_paths if pet else patient2_paths
    folder = tmp_path_factory.mktemp(request.param)
    series_folder, series = _write(folder, activity, pet)
    segmentation = read_segmentation(segmentation_path)
    dicom_samples.write_rtstruct(segmentation, folder / "rtstruct.dcm", series[0])
    dicom_samples.write_dicom_seg(segmentation, folder / "seg.dcm", dicom_samples.grid_headers(segmentation, series[0]))
    if pet:
        params = DoseParameters(calibration=AbsoluteCalibration(units=None))
        times = dicom_samples.DEFAULT_TIMES
        nrrd = DoseParameters(calibration=AbsoluteCalibration(
            units="bq_per_ml", administration_time=times.administration, scan_time=times.acquisition))
        cli = P1_ABSOLUTE
    else:
        params = nrrd = DoseParameters(
            calibration=RelativeCalibration(administered_activity_bq=1.5e9, calibration_voi=("liver",)), clamp_invalid=True)
        cli = P2_RELATIVE
    reference = compute_dose(read_activity_image(series_folder), segmentation, params)
    return DicomPatient(activity, segmentation_path, series_folder, folder / "rtstruct.dcm", folder / "seg.dcm",
                        series, params, nrrd, cli, reference)


def test_dicom_activity_gives_the_dose_of_the_nrrd_original(patient: DicomPatient) -> None:
    from_dicom = patient.reference
    from_nrrd = compute_dose(read_activity_image(patient.nrrd_activity), read_segmentation(patient.nrrd_segmentation), patient.nrrd_params)
    on_nrrd_grid = sitk.Resample(from_dicom.dose_gy, from_nrrd.dose_gy, sitk.Transform(), sitk.sitkNearestNeighbor, -1.0)
    expected = sitk.GetArrayFromImage(from_nrrd.dose_gy)
    # PET values are stored as int16 with a slope per slice: 1/32767 of the slice maximum at worst
    np.testing.assert_allclose(sitk.GetArrayFromImage(on_nrrd_grid), expected, rtol=1e-3, atol=1e-4 * expected.max())


@pytest.mark.parametrize("contours", ["rtstruct", "seg"])
def test_dose_from_dicom_contours_equals_dose_from_seg_nrrd(patient: DicomPatient, contours: str) -> None:
    reference = {s.name: s.dose_mean_gy for s in patient.reference.segments}
    result = compute_dose(read_activity_image(patient.activity), read_segmentation(getattr(patient, contours)), patient.params)
    got = {s.name: s.dose_mean_gy for s in result.segments}
    assert list(got) == list(reference)
    for name, mean_gy in reference.items():
        assert got[name] == pytest.approx(mean_gy, rel=0.01), name


def test_whole_chain_from_dicom_on_the_command_line(patient: DicomPatient, tmp_path: Path) -> None:
    out = tmp_path / "dose"
    tumour = next(s.name for s in patient.reference.segments if s.name.lower().startswith("tumor"))
    assert main(["dose", "--activity", str(patient.activity), "--segmentation", str(patient.rtstruct),
                 *patient.cli_calibration, "--bed-params", f"{tumour}=tumour", "--rtdose", "--output", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [summary["outputs"][f"{name}_rtdose"] for name in ("dose_gy", "bed_gy", "eqd2_gy")] == [
        "dose_gy.dcm", "bed_gy.dcm", "eqd2_gy.dcm"]
    assert pydicom.dcmread(out / "bed_gy.dcm").DoseType == "EFFECTIVE"

    rtdose = pydicom.dcmread(out / "dose_gy.dcm")
    source = patient.series[0]
    assert rtdose.StudyInstanceUID == source.StudyInstanceUID
    assert rtdose.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert (rtdose.PatientName, rtdose.PatientID) == (source.PatientName, source.PatientID)
    dose = sitk.ReadImage(str(out / "dose_gy.nrrd"))
    np.testing.assert_allclose(
        sitk.GetArrayFromImage(sitk.Resample(read_rtdose(out / "dose_gy.dcm"), dose, sitk.Transform(), sitk.sitkNearestNeighbor)),
        sitk.GetArrayFromImage(dose), rtol=1e-3, atol=1e-9 * float(sitk.GetArrayViewFromImage(dose).max()),
    )

    # sirt export finds the DICOM series in summary.json and places the dose with it
    assert main(["export", str(out), "--output", str(tmp_path / "export")]) == 0
    exported = pydicom.dcmread(tmp_path / "export" / "dose_gy.dcm")
    assert (exported.StudyInstanceUID, exported.FrameOfReferenceUID) == (source.StudyInstanceUID, source.FrameOfReferenceUID)

    # DVH of the RT Dose with DICOM-SEG contours
    assert main(["dvh", "--dose", str(out / "dose_gy.dcm"), "--segmentation", str(patient.seg),
                 "--output", str(tmp_path / "dvh")]) == 0
    assert any((tmp_path / "dvh").iterdir())

    # the patient report (once: it draws pictures)
    if patient.activity.name == "pet":
        assert main(["report", str(out), "--patient-id", "SIRT-TEST-1", "--output", str(tmp_path / "report")]) == 0
        assert "SIRT-TEST-1" in (tmp_path / "report" / "report.html").read_text(encoding="utf-8")

    # features of the dose with the RTSTRUCT
    features = tmp_path / "features.csv"
    assert main(["features", "--image", str(out / "dose_gy.nrrd"), "--segmentation", str(patient.rtstruct),
                 "--kind", "dose", "--structure", f"tumour={tumour}", "--output", str(features)]) == 0
    assert features.stat().st_size > 0


def test_contours_in_another_frame_of_reference_are_one_clear_error(patient: DicomPatient, tmp_path: Path, capsys) -> None:
    other = pydicom.dcmread(patient.rtstruct)
    other.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID = "1.2.3.999"
    for roi in other.StructureSetROISequence:
        roi.ReferencedFrameOfReferenceUID = "1.2.3.999"
    other.save_as(tmp_path / "other.dcm")
    code = main(["dose", "--activity", str(patient.activity), "--segmentation", str(tmp_path / "other.dcm"),
                 *patient.cli_calibration, "--output", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "frame of reference 1.2.3.999" in error[0]
    assert not (tmp_path / "out").exists()


def test_contours_outside_the_image_are_one_clear_error(patient: DicomPatient, tmp_path: Path, capsys) -> None:
    moved = pydicom.dcmread(patient.rtstruct)
    for roi in moved.ROIContourSequence:
        for contour in roi.ContourSequence:
            points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3) + [0.0, 0.0, 2000.0]
            contour.ContourData = [f"{v:.4f}" for v in points.ravel()]
    moved.save_as(tmp_path / "moved.dcm")
    code = main(["dose", "--activity", str(patient.activity), "--segmentation", str(tmp_path / "moved.dcm"),
                 *patient.cli_calibration, "--segments", patient.reference.segments[0].name, "--output", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "lies outside the activity image" in error[0]


def test_a_series_with_a_missing_slice_is_one_clear_error(patient1_paths, tmp_path: Path, capsys) -> None:
    image = sitk.ReadImage(str(patient1_paths[0]))[:, :, 40:46]  # six slices are enough
    dicom_samples.write_pet_series(image, tmp_path / "pet")
    (tmp_path / "pet" / "pet_0003.dcm").unlink()
    code = main(["dose", "--activity", str(tmp_path / "pet"), "--segmentation", str(patient1_paths[1]),
                 *P1_ABSOLUTE, "--output", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "missing or duplicated slices" in error[0]


def test_a_folder_without_contours_is_one_clear_error(patient: DicomPatient, tmp_path: Path, capsys) -> None:
    shutil.copytree(patient.activity, tmp_path / "images")
    code = main(["dose", "--activity", str(patient.activity), "--segmentation", str(tmp_path / "images"),
                 *patient.cli_calibration, "--output", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "holds no RTSTRUCT or DICOM-SEG file" in error[0]


def test_one_export_folder_with_images_and_contours(patient: DicomPatient, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    shutil.copytree(patient.activity, folder)
    shutil.copy(patient.rtstruct, folder)
    shutil.copy(patient.seg, folder)  # a DICOM-SEG is an image series too
    assert read_activity_image(folder).image.GetSize() == read_activity_image(patient.activity).image.GetSize()
    with pytest.raises(SIRTInputError, match="2 RTSTRUCT/DICOM-SEG files"):
        read_segmentation(folder)
    (folder / patient.seg.name).unlink()
    assert read_segmentation(folder).names == [s.name for s in patient.reference.segments]
