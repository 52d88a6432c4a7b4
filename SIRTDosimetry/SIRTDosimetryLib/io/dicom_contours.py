"""Contours from DICOM: find the RTSTRUCT or DICOM-SEG in a file or folder and read it as a ``Segmentation``."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from ..errors import SIRTInputError
from .segment_types import Segmentation

CONTOUR_MODALITIES = ("RTSTRUCT", "SEG")


def is_dicom_file(path: Path) -> bool:
    """``path`` is a file with the DICOM preamble ("DICM" at byte 128) or a ``.dcm`` name."""
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return False


def read_dicom_contours(path: str | Path) -> Segmentation:
    """Read an RTSTRUCT or DICOM-SEG file, or the only one in a folder (other DICOM files there are ignored)."""
    path = Path(path)
    file = _contour_file(path) if path.is_dir() else path
    try:
        dataset = pydicom.dcmread(str(file))
    except (InvalidDicomError, OSError, ValueError, EOFError) as error:
        raise SIRTInputError(f"cannot read DICOM file {file}: {error}") from error
    modality = str(dataset.get("Modality", ""))
    if modality == "RTSTRUCT":
        from .rtstruct import read_rtstruct

        return read_rtstruct(dataset, file)
    if modality == "SEG":
        from .dicom_seg import read_dicom_seg  # highdicom (slow to import) only for DICOM-SEG input

        return read_dicom_seg(dataset, file)
    raise SIRTInputError(f"DICOM file {file} is a {modality or 'DICOM object without modality'}, not an RTSTRUCT or DICOM-SEG")


def _contour_file(folder: Path) -> Path:
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"])
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        if str(header.get("Modality", "")) in CONTOUR_MODALITIES:
            found.append(path)
    if len(found) != 1:
        what = "no RTSTRUCT or DICOM-SEG file" if not found else f"{len(found)} RTSTRUCT/DICOM-SEG files ({', '.join(p.name for p in found)})"
        raise SIRTInputError(f"folder {folder} holds {what}; give the file itself")
    return found[0]
