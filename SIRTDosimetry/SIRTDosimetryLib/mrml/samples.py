"""The bundled sample patients as Slicer loads them from the Sample Data module.

``load_sample_patient`` reads a patient's activity image and segmentation into new nodes, records what
the files themselves do not say (the activity units, as the volume's voxel value units), and places both
under a patient and a study in the subject hierarchy, as a DICOM import would. The SIRT Dosimetry module
registers each patient with Sample Data (``SAMPLE_PATIENTS``); the files ship with the extension
(``SIRTDosimetryLib/data/samples``, MIT licence, see its ``SOURCE.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..data import SAMPLES_DIR
from ._vtk import slicer_module
from .outputs import set_quantity

SAMPLE_CATEGORY = "SIRT dosimetry"


@dataclass(frozen=True)
class SamplePatient:
    key: str  # Sample Data name, without spaces
    title: str  # shown under the thumbnail
    activity_file: str
    segmentation_file: str
    activity_name: str
    segmentation_name: str
    units: str  # activity units (SIRTDosimetryLib.io.volumes.KNOWN_UNITS)
    unit_label: str  # UCUM code of the units
    quantity: str
    study: str

    @property
    def files(self):
        return SAMPLES_DIR / self.activity_file, SAMPLES_DIR / self.segmentation_file


SAMPLE_PATIENTS = (
    SamplePatient(
        "SIRTPatient1Y90PET", "SIRT patient 1\n90Y PET", "patient_1_Y90_PET.nrrd", "patient_1_Segmentation.seg.nrrd",
        "patient 1 Y90 PET", "patient 1 segmentation", "bq_per_ml", "Bq/mL", "Activity concentration", "90Y PET after SIRT",
    ),
    SamplePatient(
        "SIRTPatient2MAASPECT", "SIRT patient 2\nMAA SPECT", "patient_2_SPECT.nrrd", "patient_2_Segmentation.seg.nrrd",
        "patient 2 MAA SPECT", "patient 2 segmentation", "counts", "{counts}", "Counts", "99mTc-MAA SPECT before SIRT",
    ),
)


def sample_patient(key: str) -> SamplePatient:
    for patient in SAMPLE_PATIENTS:
        if patient.key == key:
            return patient
    raise KeyError(f"no sample patient {key!r}; known: {', '.join(p.key for p in SAMPLE_PATIENTS)}")


def load_sample_patient(scene, key: str):
    """New activity volume and segmentation nodes of sample patient ``key``, under a subject-hierarchy
    patient and study; returns ``(volume_node, segmentation_node)``."""
    from .scene import load_segmentation, load_volume

    patient = sample_patient(key)
    activity_file, segmentation_file = patient.files
    volume = load_volume(scene, activity_file, patient.activity_name)
    set_quantity(volume, patient.quantity, patient.unit_label)
    segmentation = load_segmentation(scene, segmentation_file, patient.segmentation_name)
    hierarchy = slicer_module().vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    subject = hierarchy.CreateSubjectItem(hierarchy.GetSceneItemID(), patient.title.split("\n")[0])
    study = hierarchy.CreateStudyItem(subject, patient.study)
    for node in (volume, segmentation):
        item = hierarchy.GetItemByDataNode(node) or hierarchy.CreateItem(study, node)
        hierarchy.SetItemParent(item, study)
    return volume, segmentation


def register_with_sample_data(icons_dir: str | Path, scene: Callable[[], object]) -> None:
    """Register every sample patient with Slicer's Sample Data module; loading one calls
    ``load_sample_patient(scene(), key)`` (thumbnails ``<icons_dir>/<key>.png``)."""
    import SampleData  # Slicer's module

    for patient in SAMPLE_PATIENTS:
        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category=SAMPLE_CATEGORY, sampleName=patient.key, uris=[], fileNames=[], nodeNames=[patient.activity_name],
            thumbnailFileName=str(Path(icons_dir) / f"{patient.key}.png"),
            customDownloader=lambda source, key=patient.key: list(load_sample_patient(scene(), key)),
        )
