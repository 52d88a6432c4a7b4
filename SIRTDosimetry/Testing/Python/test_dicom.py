"""Tests of reading DICOM PET and SPECT (NM) series, on real DICOM files written with pydicom."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from datetime import datetime, time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.dicom import DicomActivityInfo, activity_info, read_dicom_series

PET_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
NM_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
Y90_HALF_LIFE_S = 230760.0
IDENTITY = np.eye(3)

# Stored values of a 5-slice, 12-row, 16-column PET, and the per-slice rescale as the scanner writes
# it (DS strings); the first slice has slope 1 so that the reader cannot take its type from it.
PET_STORED = np.random.default_rng(7).integers(-2000, 32000, size=(5, 12, 16)).astype(np.int16)
PET_SLOPES = ("1", "0.123456789", "2.25", "3.1e-3", "17.5")
PET_INTERCEPTS = ("0", "-3.5", "0", "0", "12")


def rotation(axis: tuple[float, float, float], degrees: float) -> np.ndarray:
    """Rotation matrix about ``axis``, rounded as a scanner writes Image Orientation (Patient)."""
    u = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    a = math.radians(degrees)
    cross = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    matrix = math.cos(a) * np.eye(3) + math.sin(a) * cross + (1 - math.cos(a)) * np.outer(u, u)
    return np.round(matrix, 10)


def new_dataset(sop_class: str, modality: str, series_uid: str, description: str) -> Dataset:
    """A dataset with the identifying attributes every image file needs."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.Modality = modality
    ds.SeriesDescription = description
    ds.PatientName = "SIRT^Test"
    ds.PatientID = "SIRT-1"
    ds.SeriesDate = "20240312"
    ds.SeriesTime = "101500"
    return ds


def y90_radiopharmaceutical() -> Dataset:
    item = Dataset()
    item.Radiopharmaceutical = "Y-90 microspheres"
    item.RadiopharmaceuticalStartDateTime = "20240311143000"
    item.RadionuclideTotalDose = "2400000000"
    item.RadionuclideHalfLife = str(Y90_HALF_LIFE_S)
    code = Dataset()
    code.CodeValue = "C-162A3"
    code.CodingSchemeDesignator = "SRT"
    code.CodeMeaning = "^90^Yttrium"
    item.RadionuclideCodeSequence = [code]
    return item


def set_pixels(ds: Dataset, stored: np.ndarray, signed: bool) -> None:
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = int(signed)
    ds.PixelData = stored.astype("<i2" if signed else "<u2").tobytes()


def write_pet_series(
    folder: Path,
    *,
    series_uid: str = "1.2.826.0.1.3680043.8.498.101",  # odd length: padded in the file
    description: str = "PET AC Y90",
    orientation: np.ndarray = IDENTITY,
    origin: tuple[float, float, float] = (-100.0, -80.0, 40.0),
    slice_spacing: float = 4.0,
    reverse_names: bool = False,
    units: str = "BQML",
    decay_correction: str = "START",
    acquisition_times: tuple[str, ...] = ("102000", "101900", "102100", "102200", "102300"),
) -> list[Path]:
    """Write ``PET_STORED`` as one file per slice; slice k sits at origin + k * spacing * normal.

    The rows run along the first column of ``orientation``, the columns down its second one.
    """
    folder.mkdir(parents=True, exist_ok=True)
    normal = np.cross(orientation[:, 0], orientation[:, 1])
    count = len(PET_STORED)
    paths = []
    for k in range(count):
        ds = new_dataset(PET_STORAGE, "PT", series_uid, description)
        ds.Units = units
        ds.DecayCorrection = decay_correction
        ds.CorrectedImage = ["DECY", "ATTN", "SCAT"]
        ds.AcquisitionDate = "20240312"
        ds.AcquisitionTime = acquisition_times[k]
        ds.ActualFrameDuration = 900000
        ds.RadiopharmaceuticalInformationSequence = [y90_radiopharmaceutical()]
        ds.ImagePositionPatient = [round(float(v), 6) for v in np.asarray(origin) + k * slice_spacing * normal]
        ds.ImageOrientationPatient = [float(v) for v in np.concatenate([orientation[:, 0], orientation[:, 1]])]
        ds.PixelSpacing = [2.0, 3.0]  # between rows, between columns
        ds.SliceThickness = slice_spacing
        ds.InstanceNumber = count - k if reverse_names else k + 1
        ds.RescaleSlope = PET_SLOPES[k]
        ds.RescaleIntercept = PET_INTERCEPTS[k]
        set_pixels(ds, PET_STORED[k], signed=True)
        path = folder / f"IM{ds.InstanceNumber:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def expected_pet_values() -> np.ndarray:
    """Stored x slope + intercept of every slice, in the (slice, row, column) order of ``PET_STORED``."""
    return np.stack(
        [PET_STORED[k] * float(PET_SLOPES[k]) + float(PET_INTERCEPTS[k]) for k in range(len(PET_STORED))]
    )


def write_nm_file(
    folder: Path,
    *,
    orientation: np.ndarray = IDENTITY,
    spacing_between_slices: str | None = "4.5",
    detector_geometry: bool = True,
    image_type: str = "RECON TOMO",
) -> tuple[Path, np.ndarray]:
    """Write a reconstructed SPECT as one multi-frame NM file (6 slices of 7 rows x 9 columns)."""
    folder.mkdir(parents=True, exist_ok=True)
    stored = np.arange(6 * 7 * 9, dtype=np.uint16).reshape(6, 7, 9) * 3
    ds = new_dataset(NM_STORAGE, "NM", "1.2.826.0.1.3680043.8.498.20", "SPECT Y90 bremsstrahlung")
    ds.ImageType = ["ORIGINAL", "PRIMARY", image_type, "EMISSION"]
    ds.NumberOfFrames = len(stored)
    ds.FrameIncrementPointer = Tag("SliceVector")
    ds.SliceVector = list(range(1, len(stored) + 1))
    ds.NumberOfSlices = len(stored)
    if detector_geometry:
        detector = Dataset()
        detector.ImagePositionPatient = [-20.0, 35.5, 110.0]
        detector.ImageOrientationPatient = [float(v) for v in np.concatenate([orientation[:, 0], orientation[:, 1]])]
        ds.DetectorInformationSequence = [detector]
    rotation_info = Dataset()
    rotation_info.ActualFrameDuration = 30000
    rotation_info.NumberOfFramesInRotation = 64
    ds.RotationInformationSequence = [rotation_info]
    item = y90_radiopharmaceutical()
    del item.RadiopharmaceuticalStartDateTime
    item.RadiopharmaceuticalStartTime = "091000"
    ds.RadiopharmaceuticalInformationSequence = [item]
    ds.PixelSpacing = [4.0, 5.0]
    ds.SliceThickness = "4.0"
    if spacing_between_slices is not None:
        ds.SpacingBetweenSlices = spacing_between_slices
    set_pixels(ds, stored, signed=False)
    path = folder / "spect.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, stored.astype(float)


def voxels(image: sitk.Image) -> np.ndarray:
    """The voxels as (slice, row, column), the layout of ``PET_STORED``."""
    return sitk.GetArrayFromImage(image)


def direction(image: sitk.Image) -> np.ndarray:
    return np.asarray(image.GetDirection()).reshape(3, 3)


def digest(paths: list[Path]) -> dict[Path, str]:
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}


# --- PET voxels and geometry -------------------------------------------------------------------


def test_pet_voxels_are_stored_values_times_the_slope_of_their_own_slice(tmp_path: Path) -> None:
    write_pet_series(tmp_path)
    image, _ = read_dicom_series(tmp_path)
    values = voxels(image)
    assert values.dtype == np.float64
    np.testing.assert_allclose(values, expected_pet_values(), rtol=1e-12, atol=0)
    # Reading as the stored integer type would have lost the fractional slopes.
    assert not np.allclose(values[1], PET_STORED[1])


def test_pet_geometry_with_identity_orientation_and_files_named_in_reverse(tmp_path: Path) -> None:
    paths = write_pet_series(tmp_path, reverse_names=True)
    before = digest(paths)
    image, _ = read_dicom_series(tmp_path)
    assert image.GetSize() == (16, 12, 5)
    assert image.GetSpacing() == pytest.approx((3.0, 2.0, 4.0))
    assert image.GetOrigin() == pytest.approx((-100.0, -80.0, 40.0))
    np.testing.assert_allclose(direction(image), IDENTITY, atol=1e-12)
    np.testing.assert_allclose(voxels(image), expected_pet_values(), rtol=1e-12)
    assert digest(paths) == before


def test_pet_geometry_with_oblique_orientation(tmp_path: Path) -> None:
    matrix = rotation((1.0, 2.0, 3.0), 30.0)
    write_pet_series(tmp_path, orientation=matrix, origin=(10.0, -20.0, 30.0), reverse_names=True)
    image, _ = read_dicom_series(tmp_path)
    np.testing.assert_allclose(direction(image), matrix, atol=1e-6)
    assert image.GetSpacing() == pytest.approx((3.0, 2.0, 4.0), abs=1e-6)
    assert image.GetOrigin() == pytest.approx((10.0, -20.0, 30.0), abs=1e-6)
    # The last voxel sits where the geometry of the last slice puts it.
    corner = np.array([10.0, -20.0, 30.0]) + matrix @ np.array([15 * 3.0, 11 * 2.0, 4 * 4.0])
    assert image.TransformIndexToPhysicalPoint((15, 11, 4)) == pytest.approx(tuple(corner), abs=1e-4)
    np.testing.assert_allclose(voxels(image), expected_pet_values(), rtol=1e-12)


# --- PET metadata ------------------------------------------------------------------------------


def test_pet_metadata(tmp_path: Path) -> None:
    write_pet_series(tmp_path)
    _, info = read_dicom_series(tmp_path)
    assert info.identity.series_instance_uid == "1.2.826.0.1.3680043.8.498.101"
    assert info.identity.modality == "PT"
    assert replace(info, identity=None) == DicomActivityInfo(
        modality="PT",
        units="bq_per_ml",
        decay_correction="START",
        decay_correction_datetime=datetime(2024, 3, 12, 10, 15, 0),
        administration_datetime=datetime(2024, 3, 11, 14, 30, 0),
        injected_activity_bq=2.4e9,
        half_life_s=Y90_HALF_LIFE_S,
        radionuclide="^90^Yttrium",
        acquisition_duration_s=900.0,
        series_description="PET AC Y90",
        administration_time_of_day=time(14, 30, 0),
    )


def test_a_series_with_a_missing_slice_is_refused(tmp_path: Path) -> None:
    paths = write_pet_series(tmp_path)
    paths[2].unlink()
    with pytest.raises(SIRTInputError, match="missing or duplicated slices: slices are 4.00 mm apart"):
        read_dicom_series(tmp_path)


def test_decay_correction_admin_refers_to_the_administration(tmp_path: Path) -> None:
    write_pet_series(tmp_path, decay_correction="ADMIN")
    _, info = read_dicom_series(tmp_path)
    assert info.decay_correction == "ADMIN"
    assert info.decay_correction_datetime == datetime(2024, 3, 11, 14, 30, 0)


def test_decay_correction_none_refers_to_the_earliest_acquisition(tmp_path: Path) -> None:
    write_pet_series(tmp_path, decay_correction="NONE")
    _, info = read_dicom_series(tmp_path)
    assert info.decay_correction == "NONE"
    assert info.decay_correction_datetime == datetime(2024, 3, 12, 10, 19, 0)


def test_cnts_units_are_counts(tmp_path: Path) -> None:
    write_pet_series(tmp_path, units="CNTS")
    assert read_dicom_series(tmp_path)[1].units == "counts"


def test_unknown_units_are_refused_by_name(tmp_path: Path) -> None:
    write_pet_series(tmp_path, units="GML")
    with pytest.raises(SIRTInputError, match="GML"):
        read_dicom_series(tmp_path)


def test_unknown_decay_correction_is_refused(tmp_path: Path) -> None:
    write_pet_series(tmp_path, decay_correction="DAYS")
    with pytest.raises(SIRTInputError, match="DAYS"):
        read_dicom_series(tmp_path)


def header_only(modality: str, **attributes: object) -> Dataset:
    ds = new_dataset(PET_STORAGE if modality == "PT" else NM_STORAGE, modality, "1.2.3", "header only")
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def test_utc_offset_of_a_datetime_is_dropped() -> None:
    item = y90_radiopharmaceutical()
    item.RadiopharmaceuticalStartDateTime = "20240311143000.25+0100"
    info = activity_info(header_only("PT", Units="BQML", RadiopharmaceuticalInformationSequence=[item]), [])
    assert info.administration_datetime == datetime(2024, 3, 11, 14, 30, 0, 250000)
    assert type(info.administration_datetime) is datetime


def test_quantitative_nm_keeps_its_bq_per_ml_units() -> None:
    assert activity_info(header_only("NM", Units="BQML"), []).units == "bq_per_ml"


def test_pet_without_units_and_bad_times_are_refused() -> None:
    with pytest.raises(SIRTInputError, match="Units .* None"):
        activity_info(header_only("PT"), [])
    with pytest.warns(UserWarning, match="Invalid value for VR DA"):
        bad_date = header_only("PT", Units="BQML", DecayCorrection="START", SeriesDate="2024-03-12")
    with pytest.raises(SIRTInputError, match="SeriesDate \\+ SeriesTime '2024-03-12'"):
        activity_info(bad_date, [])


# --- choosing the series, bad folders and files --------------------------------------------------


def test_two_series_need_a_series_uid(tmp_path: Path) -> None:
    write_pet_series(tmp_path, series_uid="1.2.826.0.1.3680043.8.498.311", description="PET AC")
    write_pet_series(tmp_path / "x", series_uid="1.2.826.0.1.3680043.8.498.32", description="PET NAC")
    for path in (tmp_path / "x").iterdir():
        path.rename(tmp_path / f"nac_{path.name}")
    with pytest.raises(SIRTInputError) as raised:
        read_dicom_series(tmp_path)
    message = str(raised.value)
    for text in ("1.2.826.0.1.3680043.8.498.311", "'PET AC'", "1.2.826.0.1.3680043.8.498.32", "'PET NAC'"):
        assert text in message
    image, info = read_dicom_series(tmp_path, series_uid="1.2.826.0.1.3680043.8.498.32")
    assert info.series_description == "PET NAC"
    assert image.GetSize() == (16, 12, 5)
    with pytest.raises(SIRTInputError, match="1.2.826.0.1.3680043.8.498.99 is not in folder"):
        read_dicom_series(tmp_path, series_uid="1.2.826.0.1.3680043.8.498.99")


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(SIRTInputError, match="does not exist"):
        read_dicom_series(tmp_path / "absent")
    with pytest.raises(SIRTInputError, match="no readable DICOM image series"):
        read_dicom_series(tmp_path)
    (tmp_path / "notes.txt").write_text("not DICOM")
    (tmp_path / "noise.dcm").write_bytes(np.random.default_rng(1).bytes(2000))
    with pytest.raises(SIRTInputError, match="no readable DICOM image series"):
        read_dicom_series(tmp_path)


def test_truncated_slice_is_reported_not_skipped(tmp_path: Path) -> None:
    paths = write_pet_series(tmp_path)
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[: len(data) - 100])
    with pytest.raises(SIRTInputError, match=f"cannot be read.*{paths[2].name}"):
        read_dicom_series(tmp_path)


def test_slice_of_another_size_gives_a_clear_error(tmp_path: Path) -> None:
    paths = write_pet_series(tmp_path)
    ds = pydicom.dcmread(paths[3])
    set_pixels(ds, PET_STORED[3][:10], signed=True)
    ds.save_as(paths[3])
    with pytest.raises(SIRTInputError, match="cannot read the voxels of DICOM series .*: ImageIO returns IO region"):
        read_dicom_series(tmp_path)


def test_truncated_single_file_is_named(tmp_path: Path) -> None:
    path, _ = write_nm_file(tmp_path)
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(SIRTInputError, match="hold no readable image: spect.dcm"):
        read_dicom_series(tmp_path)


def test_other_modalities_are_refused(tmp_path: Path) -> None:
    write_pet_series(tmp_path)
    for path in tmp_path.iterdir():
        ds = pydicom.dcmread(path)
        ds.Modality = "CT"
        ds.save_as(path)
    with pytest.raises(SIRTInputError, match="'CT'"):
        read_dicom_series(tmp_path)


# --- multi-frame SPECT ---------------------------------------------------------------------------


def test_multiframe_nm_volume_geometry_and_metadata(tmp_path: Path) -> None:
    matrix = rotation((0.0, 1.0, 1.0), 20.0)
    path, stored = write_nm_file(tmp_path, orientation=matrix)
    before = digest([path])
    image, info = read_dicom_series(tmp_path)
    assert image.GetSize() == (9, 7, 6)
    assert image.GetSpacing() == pytest.approx((5.0, 4.0, 4.5))
    assert image.GetOrigin() == pytest.approx((-20.0, 35.5, 110.0))
    np.testing.assert_allclose(direction(image), matrix, atol=1e-6)
    np.testing.assert_array_equal(voxels(image), stored)
    assert info.modality == "NM"
    assert info.units == "counts"
    assert info.decay_correction is None and info.decay_correction_datetime is None
    assert info.administration_datetime is None  # a Start Time without a date: the day is not known
    assert info.administration_time_of_day == time(9, 10, 0)
    assert info.injected_activity_bq == 2.4e9
    assert info.half_life_s == Y90_HALF_LIFE_S
    assert info.acquisition_duration_s == pytest.approx(64 * 30.0)
    assert digest([path]) == before


def test_multiframe_nm_without_spacing_between_slices_uses_slice_thickness(tmp_path: Path) -> None:
    # GDCM alone would put 1 mm here.
    write_nm_file(tmp_path, spacing_between_slices=None)
    image, _ = read_dicom_series(tmp_path)
    assert image.GetSpacing() == pytest.approx((5.0, 4.0, 4.0))


def test_multiframe_nm_without_detector_geometry_is_refused(tmp_path: Path) -> None:
    write_nm_file(tmp_path, detector_geometry=False)
    with pytest.raises(SIRTInputError, match="Detector Information Sequence"):
        read_dicom_series(tmp_path)


def test_nm_projections_are_refused(tmp_path: Path) -> None:
    write_nm_file(tmp_path, image_type="TOMO")
    with pytest.raises(SIRTInputError, match="'TOMO' is not a reconstructed"):
        read_dicom_series(tmp_path)
