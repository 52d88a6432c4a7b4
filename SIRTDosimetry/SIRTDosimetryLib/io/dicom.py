"""Read a DICOM PET or SPECT (NM) series into a SimpleITK image with its activity metadata.

Voxels and geometry come from SimpleITK/GDCM, read as float64 so that the Rescale Slope and
Intercept of every file are applied (PET scanners write a different slope for each slice).
The metadata a dosimetrist needs (units, decay correction, administered activity, times) comes
from the first file of the series, read with pydicom without its pixel data.

Only the files directly inside the folder are considered; nothing is written to them.

All datetimes are naive and in the local wall-clock time written in the files: DICOM DA/TM
values carry no time zone, and a UTC offset written in a DT value is dropped so that every
returned datetime can be compared with every other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.valuerep import DA, DT, TM

from ..errors import SIRTInputError
from .dicom_identity import DicomIdentity

MODALITIES = ("PT", "NM")
"""Modalities this reader accepts: PET and nuclear medicine (SPECT)."""

UNITS = {"BQML": "bq_per_ml", "CNTS": "counts"}
"""DICOM Units (0054,1001) values that can be used, and their normalised names."""

DECAY_CORRECTIONS = ("START", "ADMIN", "NONE")
"""Enumerated values of DICOM Decay Correction (0054,1102)."""

SLICE_GAP_TOLERANCE = 0.05
"""Largest relative departure of a gap between neighbouring slices from the median gap; a larger one
means missing (or duplicated) slices."""


@dataclass(frozen=True)
class DicomActivityInfo:
    """Activity metadata of a PET or NM series.

    ``decay_correction_datetime`` is the time the voxel values are decay-corrected to:

    - ``START``: Series Date/Time (0008,0021/0031). The DICOM PET Series module makes them the
      reference time of all temporally related PET attributes, and defines START as the
      acquisition start. Some consoles rewrite the Series Time of derived series, so it can differ
      from the Acquisition Time of the slices.
    - ``ADMIN``: the radiopharmaceutical administration datetime.
    - ``NONE``: the values are not decay-corrected; the earliest acquisition datetime of the files
      of the series is given, the start of the acquisition.

    ``administration_datetime`` is known only from a full Radiopharmaceutical Start DateTime. Files
    that hold only the Radiopharmaceutical Start Time give ``administration_time_of_day``: the date
    is then unknown (a 90Y PET is often acquired the day after the implant), and the dose engine
    asks for the administration date-time instead of assuming the scan day.

    ``timing_notes`` say which choices were made (e.g. a Series Time later than the acquisition).
    ``None`` wherever the files do not hold the value.
    """

    modality: str
    units: str
    decay_correction: str | None
    decay_correction_datetime: datetime | None
    administration_datetime: datetime | None
    injected_activity_bq: float | None
    half_life_s: float | None
    radionuclide: str | None
    acquisition_duration_s: float | None
    series_description: str | None
    administration_time_of_day: time | None = None
    timing_notes: tuple[str, ...] = ()
    identity: DicomIdentity | None = None


def read_dicom_series(folder: str | Path, series_uid: str | None = None) -> tuple[sitk.Image, DicomActivityInfo]:
    """Read one PET or NM series from ``folder`` as a float64 3D image with its activity metadata.

    ``series_uid`` picks the series where the folder holds several; it may be left out where it
    holds one. A series stored as a single multi-frame file (as SPECT often is) is read as a 3D
    volume. Raises ``SIRTInputError`` for a missing or empty folder, an ambiguous or unknown
    series, a file of the series that cannot be read, a modality other than PT/NM, NM
    projections instead of a reconstruction, and units other than Bq/ml or counts.
    """
    directory = _existing_folder(folder)
    uid = _choose_series(directory, series_uid)
    files = _series_files(directory, uid)
    _check_no_file_left_out(directory, uid, files)
    header = _read_header(files[0])
    info = activity_info(header, files)
    return _read_voxels(files, header), info


def activity_info(header: Dataset, files: Sequence[str]) -> DicomActivityInfo:
    """The activity metadata of a series, from the header of its first file.

    ``files`` are all the files of the series; they are read (headers only) only where the
    decay correction is ``NONE``, to find the earliest acquisition time.
    """
    modality = _text(header, "Modality")
    if modality not in MODALITIES:
        raise SIRTInputError(f"DICOM modality {modality!r} is not an activity image; expected PET (PT) or SPECT (NM)")
    _check_reconstructed(header, modality)
    radiopharmaceutical = _radiopharmaceutical(header)
    administration = _datetime(radiopharmaceutical, "RadiopharmaceuticalStartDateTime")
    time_of_day = administration.time() if administration is not None else _time(radiopharmaceutical, "RadiopharmaceuticalStartTime")
    correction = _decay_correction(header)
    reference, notes = _decay_correction_datetime(correction, header, administration, files)
    return DicomActivityInfo(
        modality=modality,
        units=_units(header, modality),
        decay_correction=correction,
        decay_correction_datetime=reference,
        administration_datetime=administration,
        administration_time_of_day=time_of_day,
        timing_notes=notes,
        injected_activity_bq=_number(radiopharmaceutical, "RadionuclideTotalDose"),
        half_life_s=_number(radiopharmaceutical, "RadionuclideHalfLife"),
        radionuclide=_radionuclide(radiopharmaceutical),
        acquisition_duration_s=_acquisition_duration_s(header, modality),
        series_description=_text(header, "SeriesDescription"),
        identity=DicomIdentity.from_dataset(header),
    )


def file_units(path: str | Path) -> str | None:
    """Normalised activity units of one PET or NM DICOM file (``bq_per_ml`` for BQML, ``counts``), None
    for another modality or units that cannot be used; ``SIRTInputError`` if it is not DICOM."""
    header = _read_header(path)
    modality = _text(header, "Modality")
    if modality not in ("PT", "NM"):
        return None
    try:
        return _units(header, modality)
    except SIRTInputError:
        return None


def _read_header(path: str | Path) -> Dataset:
    """The DICOM header of ``path`` without its pixel data; ``SIRTInputError`` if it is not DICOM."""
    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as error:
        raise SIRTInputError(f"cannot read DICOM file {path}: {error}") from error


def _existing_folder(folder: str | Path) -> Path:
    directory = Path(folder)
    if not directory.is_dir():
        raise SIRTInputError(f"DICOM folder {directory} does not exist or is not a folder")
    return directory


def _choose_series(directory: Path, series_uid: str | None) -> str:
    """The series to read: ``series_uid`` if the folder holds it, else the only series there."""
    uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(directory))
    if not uids:
        unreadable = _unlisted_dicom_files(directory, set(), None)
        detail = f"; these DICOM files hold no readable image: {_names(unreadable)}" if unreadable else ""
        raise SIRTInputError(f"no readable DICOM image series in folder {directory}{detail}")
    if series_uid is not None and series_uid not in uids:
        raise SIRTInputError(
            f"series {series_uid} is not in folder {directory}; it holds:\n{_describe_series(directory, uids)}"
        )
    if series_uid is None and len(uids) > 1:
        # a clinical export folder often holds the contours (DICOM-SEG is an image too) or the CT beside the activity
        activity = [uid for uid in uids if _text(_read_header(_series_files(directory, uid)[0]), "Modality") in MODALITIES]
        if len(activity) == 1:
            return activity[0]
        raise SIRTInputError(
            f"folder {directory} holds {len(uids)} DICOM series; choose one with series_uid:\n"
            f"{_describe_series(directory, uids)}"
        )
    return series_uid if series_uid is not None else uids[0]


def _describe_series(directory: Path, uids: Sequence[str]) -> str:
    """One line per series: UID, modality, description and number of files."""
    lines = []
    for uid in uids:
        files = _series_files(directory, uid)
        header = _read_header(files[0])
        lines.append(
            f"  {uid} ({_text(header, 'Modality')}, {_text(header, 'SeriesDescription')!r}, {len(files)} files)"
        )
    return "\n".join(lines)


def _series_files(directory: Path, uid: str) -> tuple[str, ...]:
    """The files of series ``uid``, sorted by GDCM along the slice normal."""
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(directory), uid)
    if not files:
        raise SIRTInputError(f"series {uid} in folder {directory} has no readable image files")
    return files


def _check_no_file_left_out(directory: Path, uid: str, files: Sequence[str]) -> None:
    """Refuse a series of which GDCM skipped a file (GDCM leaves out truncated files silently)."""
    left_out = _unlisted_dicom_files(directory, {Path(path).name for path in files}, uid)
    if left_out:
        raise SIRTInputError(
            f"{len(left_out)} file(s) of DICOM series {uid} in folder {directory} cannot be read "
            f"(truncated or corrupt?): {_names(left_out)}"
        )


def _unlisted_dicom_files(directory: Path, listed: set[str], uid: str | None) -> list[Path]:
    """Files of ``directory`` not in ``listed`` whose header pydicom reads, of series ``uid`` if given.

    A file truncated inside its header before the Series Instance UID cannot be attributed to a
    series, and is counted only where ``uid`` is ``None``.
    """
    found = []
    for path in sorted(directory.iterdir()):
        if path.name in listed or not path.is_file():
            continue
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        if uid is None or _text(header, "SeriesInstanceUID") == uid:
            found.append(path)
    return found


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(path.name for path in paths)


def _check_reconstructed(header: Dataset, modality: str) -> None:
    """Refuse NM projections or planar images: Image Type (0008,0008) value 3 must be RECON ...."""
    value = header.get("ImageType")
    image_type = [value] if isinstance(value, str) else [str(item) for item in value or []]
    if modality == "NM" and len(image_type) > 2 and not image_type[2].startswith("RECON"):
        raise SIRTInputError(
            f"NM image type {image_type[2]!r} is not a reconstructed SPECT volume "
            "(expected RECON TOMO or RECON GATED TOMO)"
        )


def _read_voxels(files: Sequence[str], header: Dataset) -> sitk.Image:
    """The float64 3D volume of ``files``, from one multi-frame file or one file per slice."""
    multiframe = int(header.get("NumberOfFrames") or 1) > 1
    if multiframe and len(files) > 1:
        raise SIRTInputError(
            f"series {_text(header, 'SeriesInstanceUID')} has {len(files)} multi-frame files; expected one"
        )
    if multiframe and _text(header, "Modality") == "NM":
        _check_nm_detector_geometry(header)
    if not multiframe:
        _check_evenly_spaced(files, header)
    image = _read_image(files, header)
    if image.GetDimension() != 3:
        raise SIRTInputError(
            f"series {_text(header, 'SeriesInstanceUID')} is a single 2D image ({files[0]}); expected a volume"
        )
    if multiframe:
        image.SetSpacing(image.GetSpacing()[:2] + (_multiframe_slice_spacing(header),))
    return image


def _check_evenly_spaced(files: Sequence[str], header: Dataset) -> None:
    """Refuse a single-frame series with missing or duplicated slices.

    GDCM only logs a warning and stacks the slices as if they were evenly spaced, which would
    shift every slice after a gap.
    """
    orientation = header.get("ImageOrientationPatient")
    if len(files) < 3 or orientation is None:
        return
    row, column = np.asarray(orientation[:3], dtype=float), np.asarray(orientation[3:], dtype=float)
    normal = np.cross(row, column)
    positions = []
    for path in files:
        position = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["ImagePositionPatient"]).get(
            "ImagePositionPatient"
        )
        if position is None:
            return
        positions.append(float(np.dot(normal, np.asarray(position, dtype=float))))
    positions = np.sort(positions)
    gaps = np.diff(positions)
    typical = float(np.median(gaps))
    bad = np.flatnonzero(np.abs(gaps - typical) > SLICE_GAP_TOLERANCE * typical)
    if typical <= 0 or bad.size:
        where = ", ".join(f"{positions[i]:.2f} to {positions[i + 1]:.2f} mm" for i in bad[:3])
        raise SIRTInputError(
            f"DICOM series {_text(header, 'SeriesInstanceUID')} has missing or duplicated slices: slices are "
            f"{typical:.2f} mm apart but not from {where} along the slice normal ({len(files)} files)"
        )


def _check_nm_detector_geometry(header: Dataset) -> None:
    """A multi-frame NM file must place itself in the patient through its Detector Information Sequence.

    GDCM takes the origin and orientation of NM images from there only, and silently puts the
    origin at 0 and the identity orientation where they are missing.
    """
    detectors = header.get("DetectorInformationSequence")
    detector = detectors[0] if detectors else Dataset()
    missing = [
        keyword for keyword in ("ImagePositionPatient", "ImageOrientationPatient") if _text(detector, keyword) is None
    ]
    if missing:
        raise SIRTInputError(
            f"NM series {_text(header, 'SeriesInstanceUID')} has no {' or '.join(missing)} in its Detector "
            "Information Sequence (0054,0022); its position in the patient is unknown"
        )


def _multiframe_slice_spacing(header: Dataset) -> float:
    """Slice spacing of a multi-frame file: Spacing Between Slices, else Slice Thickness.

    GDCM reads Spacing Between Slices (0018,0088) and silently puts 1 mm where it is absent;
    reconstructed SPECT slices are contiguous, so Slice Thickness is the spacing there.
    """
    spacing = _number(header, "SpacingBetweenSlices")
    if spacing is None:
        spacing = _number(header, "SliceThickness")
    if spacing is None or not spacing > 0:
        raise SIRTInputError(
            f"multi-frame DICOM series {_text(header, 'SeriesInstanceUID')} has no positive Spacing Between "
            f"Slices (0018,0088) or Slice Thickness (0018,0050), got {spacing!r}"
        )
    return spacing


def _read_image(files: Sequence[str], header: Dataset) -> sitk.Image:
    """The voxels of ``files`` as float64, Rescale Slope/Intercept of every file applied."""
    try:
        if len(files) == 1:
            return sitk.ReadImage(files[0], sitk.sitkFloat64)
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(list(files))
        reader.SetOutputPixelType(sitk.sitkFloat64)
        return reader.Execute()
    except RuntimeError as error:
        raise SIRTInputError(
            f"cannot read the voxels of DICOM series {_text(header, 'SeriesInstanceUID')} "
            f"({len(files)} files, first {files[0]}): {_itk_reason(str(error))}"
        ) from error


def _itk_reason(message: str) -> str:
    """The reason in an ITK exception message, without the line naming the C++ source."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith("Exception thrown in SimpleITK")]
    return (reasons or lines or [message])[0]


def _units(header: Dataset, modality: str) -> str:
    """Normalised units: Units (0054,1001) where written; NM without Units holds counts."""
    unit = _text(header, "Units")
    if unit is None and modality == "NM":
        return "counts"
    if unit not in UNITS:
        raise SIRTInputError(
            f"DICOM {modality} Units (0054,1001) {unit!r} cannot be used; expected one of {sorted(UNITS)}"
        )
    return UNITS[unit]


def _decay_correction(header: Dataset) -> str | None:
    correction = _text(header, "DecayCorrection")
    if correction is not None and correction not in DECAY_CORRECTIONS:
        raise SIRTInputError(
            f"DICOM Decay Correction (0054,1102) {correction!r} is not one of {list(DECAY_CORRECTIONS)}"
        )
    return correction


def _decay_correction_datetime(
    correction: str | None, header: Dataset, administration: datetime | None, files: Sequence[str]
) -> tuple[datetime | None, tuple[str, ...]]:
    """The time the voxel values refer to (see ``DicomActivityInfo``), and notes on the choice.

    Follows the QIBA vendor-neutral rules for decay times: full date-times are preferred to a date
    plus a time; for START, a Series Date/Time later than the earliest Acquisition Date/Time means
    the series was re-created (post-processing rewrites it), and the acquisition start is used.
    """
    if correction == "START":
        series = _date_time(header, "SeriesDate", "SeriesTime")
        start = _acquisition_start(files)
        if series is not None and start is not None and series > start:
            return start, (
                f"DICOM Series Date/Time {series.isoformat()} is after the acquisition start {start.isoformat()} "
                "(the series was re-created): the acquisition start is taken as the decay-correction reference",
            )
        return (series or start), ()
    if correction == "ADMIN":
        return administration, ()
    if correction == "NONE":
        return _acquisition_start(files), ()
    return None, ()


def _acquisition_start(files: Sequence[str]) -> datetime | None:
    """The earliest acquisition datetime of ``files`` (AcquisitionDateTime or Date + Time)."""
    starts = [_acquisition_datetime(_read_header(path)) for path in files]
    known = [start for start in starts if start is not None]
    return min(known) if known else None


def _acquisition_datetime(header: Dataset) -> datetime | None:
    return _datetime(header, "AcquisitionDateTime") or _date_time(header, "AcquisitionDate", "AcquisitionTime")


def _radiopharmaceutical(header: Dataset) -> Dataset:
    """The first item of the Radiopharmaceutical Information Sequence (0054,0016), or an empty one."""
    items = header.get("RadiopharmaceuticalInformationSequence")
    return items[0] if items else Dataset()


def _radionuclide(radiopharmaceutical: Dataset) -> str | None:
    """Code meaning of the Radionuclide Code Sequence, else the Radiopharmaceutical text."""
    codes = radiopharmaceutical.get("RadionuclideCodeSequence")
    meaning = _text(codes[0], "CodeMeaning") if codes else None
    return meaning if meaning is not None else _text(radiopharmaceutical, "Radiopharmaceutical")


def _acquisition_duration_s(header: Dataset, modality: str) -> float | None:
    """Acquisition duration in seconds from Actual Frame Duration (0018,1242, ms).

    For tomographic NM the standard puts the duration of each view in the Rotation Information
    Sequence; there the duration is the sum over rotations of view duration x Number of Frames
    in Rotation (the detectors acquire at the same time). Otherwise the top-level value is used.
    """
    rotations = header.get("RotationInformationSequence") if modality == "NM" else None
    if rotations:
        per_rotation = [
            (_number(item, "ActualFrameDuration"), _number(item, "NumberOfFramesInRotation")) for item in rotations
        ]
        if all(duration is not None and views is not None for duration, views in per_rotation):
            return sum(duration * views for duration, views in per_rotation) / 1000.0
    duration_ms = _number(header, "ActualFrameDuration")
    return None if duration_ms is None else duration_ms / 1000.0


def _text(dataset: Dataset, keyword: str) -> str | None:
    """The stripped string value of ``keyword``, or ``None`` where absent or empty."""
    value = dataset.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(dataset: Dataset, keyword: str) -> float | None:
    """The numeric value of ``keyword`` as float, or ``None`` where absent or empty."""
    text = _text(dataset, keyword)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError as error:
        raise SIRTInputError(f"DICOM {keyword} {text!r} is not a number") from error


def _datetime(dataset: Dataset, keyword: str) -> datetime | None:
    """A DT attribute as a naive datetime (a UTC offset is dropped), or ``None``."""
    text = _text(dataset, keyword)
    if text is None:
        return None
    try:
        parsed = DT(text)
    except ValueError as error:
        raise SIRTInputError(f"DICOM {keyword} {text!r} is not a DICOM datetime (YYYYMMDDHHMMSS)") from error
    return datetime.combine(parsed.date(), parsed.time())


def _date_time(dataset: Dataset, date_keyword: str, time_keyword: str) -> datetime | None:
    """A DA and a TM attribute combined, or ``None`` where either is absent."""
    date = _text(dataset, date_keyword)
    time = _text(dataset, time_keyword)
    if date is None or time is None:
        return None
    return _combine(date, time, f"{date_keyword} + {time_keyword}")


def _time(dataset: Dataset, keyword: str) -> time | None:
    """A TM attribute as a time of day, or ``None``."""
    text = _text(dataset, keyword)
    if text is None:
        return None
    try:
        parsed = TM(text)
    except ValueError as error:
        raise SIRTInputError(f"DICOM {keyword} {text!r} is not a DICOM time (HHMMSS)") from error
    return time(parsed.hour, parsed.minute, parsed.second, parsed.microsecond)


def _combine(date: str, time: str, what: str) -> datetime:
    try:
        return datetime.combine(DA(date), TM(time))
    except (ValueError, TypeError) as error:
        raise SIRTInputError(f"DICOM {what} {date!r} {time!r} is not a DICOM date and time") from error
