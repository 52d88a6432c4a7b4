"""Who and where a DICOM series belongs to: patient, study and frame of reference.

Results written back as DICOM (RT-Dose) copy these attributes from the series they were computed
from, so that a planning or review system files them under the same patient and study and places
them in the same frame of reference. Nothing is ever invented: an attribute the source lacks stays
empty.

Images read from DICOM carry their Frame of Reference UID in their SimpleITK metadata under the
DICOM tag key (``0020|0052``), so that contours drawn in another frame of reference are refused
wherever segments are mapped onto an image.
"""

from __future__ import annotations

from dataclasses import dataclass

import SimpleITK as sitk
from pydicom.dataset import Dataset

from ..errors import SIRTInputError

PATIENT_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")
"""Patient module attributes (all type 2) copied to derived objects."""

STUDY_KEYWORDS = (
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
    "StudyDescription",
)
"""General Study module attributes copied to derived objects."""

FRAME_OF_REFERENCE_KEY = "0020|0052"
"""SimpleITK metadata key (the DICOM tag) holding an image's Frame of Reference UID."""


@dataclass(frozen=True)
class DicomIdentity:
    """Patient, study and frame of reference of a DICOM series, as written in its files.

    ``attributes`` holds the patient and study attributes present in the source, keyword → value
    as pydicom reads it (PN, DA, TM values kept as written).
    """

    attributes: tuple[tuple[str, object], ...]
    frame_of_reference_uid: str | None
    series_instance_uid: str | None
    modality: str | None

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> DicomIdentity:
        present = tuple(
            (keyword, dataset.get(keyword))
            for keyword in (*PATIENT_KEYWORDS, *STUDY_KEYWORDS)
            if dataset.get(keyword) not in (None, "")
        )
        return cls(
            attributes=present,
            frame_of_reference_uid=_uid(dataset, "FrameOfReferenceUID"),
            series_instance_uid=_uid(dataset, "SeriesInstanceUID"),
            modality=_uid(dataset, "Modality"),
        )

    @property
    def study_instance_uid(self) -> str | None:
        return dict(self.attributes).get("StudyInstanceUID")

    def copy_to(self, dataset: Dataset) -> None:
        """Write the patient and study attributes into ``dataset``; absent ones stay empty (type 2)."""
        for keyword in (*PATIENT_KEYWORDS, *STUDY_KEYWORDS):
            setattr(dataset, keyword, "")
        for keyword, value in self.attributes:
            setattr(dataset, keyword, value)


def _uid(dataset: Dataset, keyword: str) -> str | None:
    value = dataset.get(keyword)
    text = "" if value is None else str(value).strip()
    return text or None


def tag_frame_of_reference(image: sitk.Image, uid: str | None) -> None:
    """Record the Frame of Reference UID of ``image`` in its metadata (nothing when unknown)."""
    if uid:
        image.SetMetaData(FRAME_OF_REFERENCE_KEY, uid)


def frame_of_reference(image: sitk.Image) -> str | None:
    """The Frame of Reference UID recorded in ``image``'s metadata, or ``None``."""
    if not image.HasMetaDataKey(FRAME_OF_REFERENCE_KEY):
        return None
    return image.GetMetaData(FRAME_OF_REFERENCE_KEY).strip() or None


def check_same_frame_of_reference(image: sitk.Image, reference: sitk.Image, what: str) -> None:
    """Refuse ``image`` (contours) in another DICOM frame of reference than ``reference``.

    Only where both record one: images from NRRD or NIfTI files carry none, and their registration
    is the user's to check.
    """
    own, target = frame_of_reference(image), frame_of_reference(reference)
    if own is not None and target is not None and own != target:
        raise SIRTInputError(
            f"{what} is in DICOM frame of reference {own} but the image is in {target}: "
            "register them first (contours from another scan do not line up)"
        )
