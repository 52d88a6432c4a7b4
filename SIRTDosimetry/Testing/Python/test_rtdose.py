"""RT Dose export: exact geometry and values read back by pydicom and by SimpleITK (GDCM), and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset

from sirt.main import main
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.dicom_identity import DicomIdentity, frame_of_reference
from SIRTDosimetryLib.io.rtdose import read_dose_map, read_rtdose, write_rtdose
from SIRTDosimetryLib.provenance import sha256_of
from SIRTDosimetryLib.testing import dicom_samples

AXIAL = np.eye(3)


def oblique_flipped() -> np.ndarray:
    """Axes rotated about all three patient axes, with the third axis against row × column (left-handed)."""
    def rotation(axis: int, degrees: float) -> np.ndarray:
        c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
        i, j = [a for a in range(3) if a != axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        return r

    direction = rotation(0, 20) @ rotation(1, -10) @ rotation(2, 35)
    direction[:, 2] *= -1
    return direction


def dose_image(direction: np.ndarray) -> sitk.Image:
    """A skewed dose map (0-80 Gy, values spanning 5 decades) on a 9 x 7 x 6 grid of 2 x 3 x 4 mm."""
    values = np.random.default_rng(3).gamma(0.6, 12.0, size=(6, 7, 9))
    values[0, 0, 0] = 0.0
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((2.0, 3.0, 4.0))
    image.SetOrigin((12.5, -40.0, 310.0))
    image.SetDirection(direction.flatten().tolist())
    return image


def on_grid_of(image: sitk.Image, reference: sitk.Image) -> np.ndarray:
    """Voxels of ``image`` at the voxel centres of ``reference`` (nearest neighbour: grids must coincide)."""
    return sitk.GetArrayFromImage(sitk.Resample(image, reference, sitk.Transform(), sitk.sitkNearestNeighbor, -1.0))


def assert_same_map(read: sitk.Image, written: sitk.Image) -> None:
    expected = sitk.GetArrayFromImage(written)
    got = on_grid_of(read, written)
    assert np.all(got >= 0), "a voxel of the written grid fell outside the grid read back"
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-9 * expected.max())
    corners = [(0, 0, 0), (8, 6, 5), (8, 0, 5)]
    written_points = [written.TransformIndexToPhysicalPoint(c) for c in corners]
    read_indices = [read.TransformPhysicalPointToContinuousIndex(p) for p in written_points]
    assert np.allclose(np.round(read_indices), read_indices, atol=1e-4)  # voxel centres coincide


@pytest.mark.parametrize("direction", [AXIAL, oblique_flipped()], ids=["axial", "oblique-flipped"])
def test_round_trip_through_pydicom_and_simpleitk(tmp_path: Path, direction: np.ndarray) -> None:
    image = dose_image(direction)
    path = tmp_path / "dose.dcm"
    write_rtdose(image, path, "dose_gy")

    assert_same_map(read_rtdose(path), image)

    # Independent reader: GDCM places the frames (origin, direction, spacing from the offsets);
    # it returns the stored integers, which are scaled by the Dose Grid Scaling it parsed.
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    stored = reader.Execute()
    scaled = sitk.Cast(stored, sitk.sitkFloat64) * float(reader.GetMetaData("3004|000e"))
    scaled.CopyInformation(stored)
    assert_same_map(scaled, image)


def test_flipped_grid_is_written_with_increasing_frame_offsets(tmp_path: Path) -> None:
    image = dose_image(oblique_flipped())
    write_rtdose(image, tmp_path / "dose.dcm", "dose_gy")
    ds = pydicom.dcmread(tmp_path / "dose.dcm")
    offsets = np.asarray(ds.GridFrameOffsetVector, dtype=float)
    np.testing.assert_allclose(offsets, 4.0 * np.arange(6))
    orientation = np.asarray(ds.ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    last_slice = image.TransformIndexToPhysicalPoint((0, 0, 5))  # the flipped grid starts from its last slice
    np.testing.assert_allclose(np.asarray(ds.ImagePositionPatient, dtype=float), last_slice, atol=1e-5)
    np.testing.assert_allclose(normal, -np.asarray(image.GetDirection()).reshape(3, 3)[:, 2], atol=1e-7)


def test_rt_dose_attributes_and_identity_copied_from_the_source(tmp_path: Path) -> None:
    source = Dataset()
    source.PatientName, source.PatientID, source.PatientBirthDate, source.PatientSex = "Doe^Jane", "P-17", "19580312", "F"
    source.StudyInstanceUID, source.StudyDate, source.StudyTime = "1.2.3.4", "20240503", "091500"
    source.AccessionNumber = "A55"
    source.FrameOfReferenceUID, source.SeriesInstanceUID, source.Modality = "1.2.3.5", "1.2.3.6", "PT"
    write_rtdose(dose_image(AXIAL), tmp_path / "bed.dcm", "bed_gy", DicomIdentity.from_dataset(source))
    ds = pydicom.dcmread(tmp_path / "bed.dcm")
    assert (ds.Modality, ds.SOPClassUID) == ("RTDOSE", "1.2.840.10008.5.1.4.1.1.481.2")
    assert (ds.DoseUnits, ds.DoseType, ds.DoseSummationType) == ("GY", "EFFECTIVE", "PLAN")
    assert "BED" in ds.SeriesDescription
    assert (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate, ds.PatientSex) == ("Doe^Jane", "P-17", "19580312", "F")
    assert (ds.StudyInstanceUID, ds.FrameOfReferenceUID, ds.AccessionNumber) == ("1.2.3.4", "1.2.3.5", "A55")
    assert ds.SeriesInstanceUID != "1.2.3.6"
    assert len(str(ds.DoseGridScaling)) <= 16  # a DS value
    assert int(ds.pixel_array.max()) >= 2**32 - 2  # the full 32-bit range is used
    assert frame_of_reference(read_rtdose(tmp_path / "bed.dcm")) == "1.2.3.5"


def test_without_a_dicom_source_nothing_is_invented(tmp_path: Path) -> None:
    write_rtdose(dose_image(AXIAL), tmp_path / "dose.dcm", "dose_gy")
    ds = pydicom.dcmread(tmp_path / "dose.dcm")
    assert ds.DoseType == "PHYSICAL"
    assert (str(ds.PatientName), ds.PatientID, ds.PatientBirthDate, ds.PatientSex) == ("", "", "", "")
    assert ds.StudyInstanceUID and ds.FrameOfReferenceUID  # new UIDs, required by the standard


@pytest.mark.parametrize(
    ("value", "message"), [(np.nan, "NaN or infinite"), (-0.5, "negative voxels")], ids=["nan", "negative"]
)
def test_maps_rt_dose_cannot_hold_are_refused(tmp_path: Path, value: float, message: str) -> None:
    values = sitk.GetArrayFromImage(dose_image(AXIAL))
    values[2, 3, 4] = value
    with pytest.raises(SIRTInputError, match=message):
        write_rtdose(sitk.GetImageFromArray(values), tmp_path / "dose.dcm", "dose_gy")


def test_bed_undefined_outside_lq_structures_is_written_as_zero_and_said(tmp_path: Path) -> None:
    image = dose_image(AXIAL)
    values = sitk.GetArrayFromImage(image)
    values[:, :, :3] = np.nan  # no LQ parameters there
    bed = sitk.GetImageFromArray(values)
    bed.CopyInformation(image)
    write_rtdose(bed, tmp_path / "bed.dcm", "bed_gy")
    ds = pydicom.dcmread(tmp_path / "bed.dcm")
    assert ds.SeriesDescription.endswith("; 0 where no LQ parameters") and len(ds.SeriesDescription) <= 64
    read = sitk.GetArrayFromImage(read_rtdose(tmp_path / "bed.dcm"))
    assert np.all(read[:, :, :3] == 0)
    np.testing.assert_allclose(read[:, :, 3:], values[:, :, 3:], rtol=1e-3, atol=1e-9 * np.nanmax(values))


def test_rt_dose_without_dose_grid_scaling_is_one_clear_error(tmp_path: Path, capsys) -> None:
    write_rtdose(dose_image(AXIAL), tmp_path / "dose.dcm", "dose_gy")
    ds = pydicom.dcmread(tmp_path / "dose.dcm")
    del ds.DoseGridScaling
    ds.save_as(tmp_path / "unscaled.dcm")
    with pytest.raises(SIRTInputError, match="no Dose Grid Scaling"):
        read_dose_map(tmp_path / "unscaled.dcm")
    labels = sitk.Image(dose_image(AXIAL).GetSize(), sitk.sitkUInt8)
    labels.CopyInformation(dose_image(AXIAL))
    labels[2:5, 2:5, 1:4] = 1
    sitk.WriteImage(labels, str(tmp_path / "labels.nrrd"))
    command = ["dvh", "--dose", str(tmp_path / "unscaled.dcm"), "--segmentation", str(tmp_path / "labels.nrrd")]
    assert main([*command, "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "no Dose Grid Scaling" in error[0]


def test_export_of_a_map_file(tmp_path: Path, capsys) -> None:
    image = dose_image(AXIAL)
    sitk.WriteImage(image, str(tmp_path / "eqd2.nrrd"))
    assert main(["export", str(tmp_path / "eqd2.nrrd"), "--quantity", "eqd2_gy", "--output", str(tmp_path / "out")]) == 0
    assert "no patient identity" in capsys.readouterr().out
    ds = pydicom.dcmread(tmp_path / "out" / "eqd2_gy.dcm")
    assert (ds.DoseType, "EQD2" in ds.SeriesDescription) == ("EFFECTIVE", True)
    assert_same_map(read_rtdose(tmp_path / "out" / "eqd2_gy.dcm"), image)
    record = json.loads((tmp_path / "out" / "export.json").read_text())
    assert record["inputs"]["eqd2_gy"]["sha256"] == sha256_of(tmp_path / "eqd2.nrrd")
    # a DICOM series on another grid is not taken as the source of the map
    other = dose_image(AXIAL)[:, :, :5]
    dicom_samples.write_pet_series(other, tmp_path / "pet")
    capsys.readouterr()
    command = ["export", str(tmp_path / "eqd2.nrrd"), "--quantity", "eqd2_gy", "--reference", str(tmp_path / "pet")]
    assert main([*command, "--output", str(tmp_path / "out2")]) == 2
    assert "not on the grid of the DICOM series" in capsys.readouterr().err
    # an existing output is never overwritten without --overwrite
    assert main(["export", str(tmp_path / "eqd2.nrrd"), "--quantity", "eqd2_gy", "--output", str(tmp_path / "out")]) == 2


def test_dose_from_a_nrrd_activity_with_rtdose(tmp_path: Path, capsys) -> None:
    activity = dose_image(oblique_flipped()) * 1e4  # Bq/mL
    sitk.WriteImage(activity, str(tmp_path / "activity.nrrd"))
    labels = sitk.Image(activity.GetSize(), sitk.sitkUInt8)
    labels.CopyInformation(activity)
    labels[1:8, 1:6, 1:5] = 1
    sitk.WriteImage(labels, str(tmp_path / "labels.nrrd"))
    command = ["dose", "--activity", str(tmp_path / "activity.nrrd"), "--segmentation", str(tmp_path / "labels.nrrd"),
               "--mode", "absolute", "--units", "bq_per_ml", "--rtdose", "--output", str(tmp_path / "out")]
    assert main(command) == 0
    assert "no patient identity" in capsys.readouterr().out
    assert pydicom.dcmread(tmp_path / "out" / "dose_gy.dcm").PatientID == ""
    assert_same_map(read_rtdose(tmp_path / "out" / "dose_gy.dcm"), sitk.ReadImage(str(tmp_path / "out" / "dose_gy.nrrd")))
