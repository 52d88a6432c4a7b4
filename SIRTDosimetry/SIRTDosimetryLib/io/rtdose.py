"""DICOM RT Dose: writing dose, BED and EQD2 maps for planning and review systems, and reading them back.

The file is one multi-frame RT Dose instance (PS3.3 A.18, RT Dose module C.8.8.3) written with
pydicom; highdicom has no RT Dose class. Geometry is exact:

- ImageOrientationPatient holds the image's first two axes (direction cosines, LPS);
  PixelSpacing is (row spacing, column spacing) = (y, x) spacing;
- the frames are stacked along the normal row × column of the orientation, with
  GridFrameOffsetVector relative to ImagePositionPatient (first value 0, increasing). An image
  whose third axis points against that normal (a "flipped" grid, as SPECT often is) is written in
  reversed slice order, which places every voxel at the same point in the patient;
- voxels are unsigned 32-bit integers times DoseGridScaling, chosen so that the largest value uses
  the full range: the rounding error is at most 1.2e-10 of the maximum.

When the dose was computed from a DICOM series, Study Instance UID, Frame of Reference UID and the
patient attributes are copied from it, so that the dose overlays the source images; otherwise new
Study and Frame of Reference UIDs are made and the patient attributes are left empty, never invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from .. import __version__
from ..errors import SIRTInputError
from .dicom_identity import DicomIdentity, tag_frame_of_reference

RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
"""SOP Class UID of RT Dose Storage."""

MAX_PIXEL_VALUE = 2**32 - 1
GRID_TOLERANCE_MM = 1e-3
"""A map and its source series share a grid when origins and spacings agree to this."""
GEOMETRY_TOLERANCE = 1e-4
"""Largest departure from orthonormal direction cosines accepted (DICOM writes them to ~6 digits)."""


@dataclass(frozen=True)
class DoseQuantity:
    """What a map holds, as the RT Dose module names it."""

    dose_type: str  # DoseType (3004,0004): PHYSICAL, or EFFECTIVE for a biologically weighted dose
    description: str  # SeriesDescription (at most 64 characters)
    undefined_note: str | None = None  # a map with NaN where undefined: written as 0, said so in the description


DOSE_QUANTITIES: dict[str, DoseQuantity] = {
    "dose_gy": DoseQuantity("PHYSICAL", "SIRT absorbed dose (Gy)"),
    "bed_gy": DoseQuantity("EFFECTIVE", "SIRT BED, LQ model (Gy)", "; 0 where no LQ parameters"),
    "eqd2_gy": DoseQuantity("EFFECTIVE", "SIRT EQD2, LQ model (Gy)", "; 0 where no LQ parameters"),
}
"""The maps SlicerSIRT writes, by their output name. BED and EQD2 are NaN outside the structures
given LQ parameters; RT Dose has no NaN, so those voxels are written as 0 and the description says so."""


def rtdose_dataset(image: sitk.Image, quantity: str, identity: DicomIdentity | None = None) -> FileDataset:
    """An RT Dose dataset holding ``image`` (values in Gy) as the map ``quantity`` (a DOSE_QUANTITIES key)."""
    if quantity not in DOSE_QUANTITIES:
        raise SIRTInputError(f"unknown dose map {quantity!r}; expected one of {', '.join(DOSE_QUANTITIES)}")
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise SIRTInputError("an RT Dose holds one 3D scalar map")
    values, origin, direction, spacing = right_handed_stack(image)
    kind = DOSE_QUANTITIES[quantity]
    description = kind.description
    if kind.undefined_note is not None and np.isnan(values).any():
        values = np.nan_to_num(values, nan=0.0, posinf=np.inf, neginf=-np.inf)
        description += kind.undefined_note
    scaling = _dose_grid_scaling(values, quantity)
    now = datetime.now()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RT_DOSE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = RT_DOSE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.InstanceCreationDate, ds.InstanceCreationTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    (identity or DicomIdentity((), None, None, None)).copy_to(ds)
    if not ds.StudyInstanceUID:
        ds.StudyInstanceUID = generate_uid()
    ds.Modality = "RTDOSE"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 1
    ds.SeriesDescription = description
    ds.OperatorsName = ""
    ds.FrameOfReferenceUID = (identity.frame_of_reference_uid if identity else None) or generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "SlicerSIRT"
    ds.SoftwareVersions = __version__
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = ds.InstanceCreationDate, ds.InstanceCreationTime
    ds.ImagePositionPatient = [f"{v:.6f}" for v in origin]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*direction[:, 0], *direction[:, 1])]
    ds.PixelSpacing = [f"{spacing[1]:.8g}", f"{spacing[0]:.8g}"]
    ds.SliceThickness = f"{spacing[2]:.8g}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames, ds.Rows, ds.Columns = values.shape
    ds.FrameIncrementPointer = pydicom.tag.Tag("GridFrameOffsetVector")
    ds.BitsAllocated = ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.DoseUnits = "GY"
    ds.DoseType = kind.dose_type
    # No RT Plan exists for a microsphere implant, so no Referenced RT Plan Sequence; PLAN says the
    # map is the dose of the whole treatment, which is what SlicerSIRT computes.
    ds.DoseSummationType = "PLAN"
    ds.GridFrameOffsetVector = [f"{k * spacing[2]:.6f}" for k in range(values.shape[0])]
    ds.DoseGridScaling = scaling
    ds.PixelData = np.round(values / float(scaling)).astype("<u4").tobytes()
    return ds


def write_rtdose(image: sitk.Image, path: str | Path, quantity: str, identity: DicomIdentity | None = None) -> None:
    """Write ``image`` (Gy) as an RT Dose file; see :func:`rtdose_dataset`."""
    rtdose_dataset(image, quantity, identity).save_as(str(path), enforce_file_format=True)


def read_rtdose(path: str | Path) -> sitk.Image:
    """An RT Dose file as a float64 image in Gy on its own grid, Frame of Reference UID recorded.

    Raises ``SIRTInputError`` for a file that is not an RT Dose, lacks Dose Grid Scaling, holds
    other units than Gy, or whose frame offsets are not evenly spaced (missing frames).
    """
    try:
        ds = pydicom.dcmread(str(path))
    except (InvalidDicomError, OSError, ValueError, EOFError) as error:
        raise SIRTInputError(f"cannot read DICOM file {path}: {error}") from error
    if ds.get("Modality") != "RTDOSE":
        raise SIRTInputError(f"{path} is not an RT Dose (Modality {ds.get('Modality')!r})")
    if ds.get("DoseGridScaling") in (None, ""):
        raise SIRTInputError(f"RT Dose {path} has no Dose Grid Scaling (3004,000E): its voxel values have no unit")
    if str(ds.get("DoseUnits", "")).upper() != "GY":
        raise SIRTInputError(f"RT Dose {path} is in {ds.get('DoseUnits')!r}, not GY")
    frames = ds.pixel_array.reshape(int(ds.get("NumberOfFrames", 1)), ds.Rows, ds.Columns)
    orientation = np.asarray(ds.ImageOrientationPatient, dtype=float)
    row, column = orientation[:3], orientation[3:]
    offsets = np.asarray(ds.GridFrameOffsetVector, dtype=float)
    if offsets.size != frames.shape[0]:
        raise SIRTInputError(f"RT Dose {path} has {frames.shape[0]} frames but {offsets.size} Grid Frame Offsets")
    position = np.asarray(ds.ImagePositionPatient, dtype=float)
    if offsets.size > 1 and offsets[0] != 0:  # absolute form: offsets are coordinates along the normal
        offsets = offsets - offsets[0]
    steps = np.diff(offsets)
    slice_spacing = float(steps.mean()) if steps.size else float(ds.get("SliceThickness") or 1.0)
    if steps.size and (slice_spacing <= 0 or np.ptp(steps) > GEOMETRY_TOLERANCE * abs(slice_spacing) + 1e-6):
        raise SIRTInputError(f"RT Dose {path} has unevenly spaced frames (missing frames?): offsets {offsets.tolist()}")
    image = sitk.GetImageFromArray(frames.astype(np.float64) * float(ds.DoseGridScaling))
    image.SetOrigin(position.tolist())
    image.SetSpacing((float(ds.PixelSpacing[1]), float(ds.PixelSpacing[0]), slice_spacing))
    image.SetDirection(np.column_stack([row, column, np.cross(row, column)]).flatten().tolist())
    tag_frame_of_reference(image, str(ds.get("FrameOfReferenceUID", "")) or None)
    return image


def source_identity(reference: str | Path, maps: dict[str, sitk.Image]) -> DicomIdentity:
    """Patient, study and frame of reference of the DICOM activity series ``reference`` the ``maps`` were computed from.

    Every map must lie on the grid of that series (doses are computed on the activity grid), so
    that a map is never filed with a series it was not computed from.
    """
    from .volumes import read_activity_image

    activity = read_activity_image(reference)
    if activity.dicom is None or activity.dicom.identity is None:
        raise SIRTInputError(f"reference {reference} is not a DICOM series folder")
    grid = activity.image
    for name, image in maps.items():
        same = (
            image.GetSize() == grid.GetSize()
            and np.allclose(image.GetOrigin(), grid.GetOrigin(), atol=GRID_TOLERANCE_MM)
            and np.allclose(image.GetSpacing(), grid.GetSpacing(), atol=GRID_TOLERANCE_MM)
            and np.allclose(image.GetDirection(), grid.GetDirection(), atol=GEOMETRY_TOLERANCE)
        )
        if not same:
            raise SIRTInputError(f"the {name} map is not on the grid of the DICOM series {reference}; was it computed from another series?")
    return activity.dicom.identity


def read_dose_map(path: str | Path) -> sitk.Image:
    """A dose map in Gy from a DICOM RT Dose file or an image file (NRRD, NIfTI, MHA), as float64."""
    from .dicom_contours import is_dicom_file
    from .volumes import read_image

    path = Path(path)
    return read_rtdose(path) if path.is_file() and is_dicom_file(path) else read_image(path)


def right_handed_stack(image: sitk.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Voxels (z, y, x, float64), origin, direction (columns = axes) and spacing, the slices stacked along row × column.

    DICOM places the frames of a multi-frame image along the normal of its orientation; an image
    whose third axis points the other way is given in reversed slice order from its last slice.
    """
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    if np.abs(direction.T @ direction - np.eye(3)).max() > GEOMETRY_TOLERANCE:
        raise SIRTInputError("the dose grid is sheared (its axes are not orthogonal); RT Dose cannot hold it")
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    origin = np.asarray(image.GetOrigin(), dtype=float)
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    if np.dot(np.cross(direction[:, 0], direction[:, 1]), direction[:, 2]) < 0:
        origin = origin + (values.shape[0] - 1) * spacing[2] * direction[:, 2]
        direction = direction.copy()
        direction[:, 2] = -direction[:, 2]
        values = values[::-1]
    return values, origin, direction, spacing


def _dose_grid_scaling(values: np.ndarray, quantity: str) -> str:
    """Dose Grid Scaling (a DS string of at most 16 characters) that maps the maximum near MAX_PIXEL_VALUE."""
    if not np.all(np.isfinite(values)):
        raise SIRTInputError(f"the {quantity} map has NaN or infinite voxels; RT Dose cannot hold them")
    if values.min() < 0:
        raise SIRTInputError(f"the {quantity} map has negative voxels (minimum {values.min():.3g} Gy); RT Dose cannot hold them")
    top = float(values.max())
    if top == 0:
        return "1"
    # One below the top of the range, so that rounding the scaling to 10 digits cannot overflow it.
    return f"{top / (MAX_PIXEL_VALUE - 1):.9e}"
