"""Reading activity and CT volumes (NRRD, NIfTI, MHA, DICOM series) with SimpleITK.

Images are kept as ``SimpleITK.Image`` so that their geometry (origin, spacing, direction
cosines) travels with the voxels; numpy arrays taken from them are indexed (z, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk

from ..errors import SIRTInputError
from .dicom_identity import tag_frame_of_reference

CONCENTRATION_UNITS_TO_BQ_PER_ML: dict[str, float] = {"bq_per_ml": 1.0, "kbq_per_ml": 1e3, "mbq_per_ml": 1e6}
"""Activity-concentration units accepted for quantitative images, with their factor to Bq/mL."""
COUNT_UNITS = ("counts",)
KNOWN_UNITS = (*CONCENTRATION_UNITS_TO_BQ_PER_ML, *COUNT_UNITS)


@dataclass(frozen=True)
class ActivityImage:
    """An activity (PET) or count (SPECT) image with what is known of its units and timing."""

    image: sitk.Image
    units: str | None
    source_path: str
    dicom: object | None = None  # io.dicom.DicomActivityInfo when read from DICOM


def check_units(units: str | None) -> str | None:
    if units is None:
        return None
    key = units.strip().lower().replace("/", "_per_").replace(" ", "")
    if key not in KNOWN_UNITS:
        raise SIRTInputError(f"unknown image units {units!r}; known: {', '.join(KNOWN_UNITS)}")
    return key


def read_image(path: str | Path, pixel_type: int = sitk.sitkFloat64) -> sitk.Image:
    """Read one 3D scalar image file with SimpleITK, as ``pixel_type`` (float64 unless asked)."""
    path = Path(path)
    if not path.exists():
        raise SIRTInputError(f"image file not found: {path}")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise SIRTInputError(f"cannot read image {path}: {first_line}") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise SIRTInputError(
            f"image {path} must be a 3D scalar volume, got {image.GetDimension()}D with "
            f"{image.GetNumberOfComponentsPerPixel()} component(s)"
        )
    return sitk.Cast(image, pixel_type)


def read_activity_image(path: str | Path, units: str | None = None) -> ActivityImage:
    """Read an activity image from a file or a DICOM folder.

    For DICOM the units come from the Units tag (PET BQML → Bq/mL, counts for NM); a ``units``
    argument that contradicts the file is an error. Other formats carry no standard unit, so the
    caller states them (or leaves them ``None`` for relative calibration, where they do not matter).
    Voxels are float32: 7 significant digits are far beyond any activity measurement, and half the
    memory of float64 matters for whole-body PET grids (sums are taken in float64).
    """
    path = Path(path)
    units = check_units(units)
    if path.is_dir():
        from .dicom import read_dicom_series

        image, info = read_dicom_series(path)
        if units is not None and units != info.units:
            raise SIRTInputError(f"units given as {units!r} but the DICOM series {path} says {info.units!r}")
        image = sitk.Cast(image, sitk.sitkFloat32)
        tag_frame_of_reference(image, info.identity.frame_of_reference_uid)
        return ActivityImage(image, info.units, str(path), info)
    return ActivityImage(read_image(path, sitk.sitkFloat32), units, str(path))


def voxel_volume_ml(spacing_mm: tuple[float, float, float]) -> float:
    """Volume of one voxel in mL: a_x·a_y·a_z with the spacing in mm."""
    return spacing_mm[0] * spacing_mm[1] * spacing_mm[2] * 1e-3
