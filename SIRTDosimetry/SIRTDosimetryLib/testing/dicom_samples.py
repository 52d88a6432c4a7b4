"""DICOM test data made from the bundled sample patients: activity series, RTSTRUCT and DICOM-SEG.

Nothing here is committed as a file: tests (and a module's self-test) write the series into a
temporary folder. The writers keep the geometry exact so that dose from the DICOM copy can be
compared with dose from the NRRD original:

- PET: one file per slice, int16 with a Rescale Slope per slice (as scanners write them), Units
  BQML, Decay Correction START with the Series time, and the radiopharmaceutical tags (90Y, total
  dose, half-life, administration datetime);
- SPECT: one multi-frame NM file in counts (RECON TOMO), placed by its Detector Information Sequence;
- RTSTRUCT: every voxel boundary of each segment traced exactly (pixel-edge polygons, holes as
  inner contours under the even-odd rule) on the planes of the segmentation's slices;
- DICOM-SEG: the segments written with highdicom on the segmentation's own grid, referring to
  header-only images of that grid (``grid_headers``).

The patient identity written is a test identity, clearly named as such.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ..io.rtdose import right_handed_stack
from ..io.rtstruct import CONTOUR_DATA
from ..io.segmentations import Segmentation

PET_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
NM_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
Y90_HALF_LIFE_S = 64.1 * 3600.0  # written into the test PET's Radionuclide Half Life


@dataclass(frozen=True)
class SeriesTimes:
    """Administration and acquisition start written into a test activity series."""

    administration: datetime
    acquisition: datetime


DEFAULT_TIMES = SeriesTimes(datetime(2024, 5, 2, 10, 30), datetime(2024, 5, 3, 9, 0))


def _base_dataset(sop_class: str, modality: str, study: Dataset | None, frame_of_reference_uid: str, patient: str) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    if study is None:
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = f"TEST^{patient}", f"SIRT-TEST-{patient}", "19600101", "O"
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = generate_uid(), "20240503", "090000"
        ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "", ""
    else:
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                        "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName"):
            setattr(ds, keyword, study.get(keyword, ""))
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 1
    ds.Manufacturer = "SlicerSIRT test data"
    return ds


def _radiopharmaceutical(times: SeriesTimes, total_dose_bq: float) -> Sequence:
    item = Dataset()
    item.Radiopharmaceutical = "Y-90 microspheres"
    item.RadiopharmaceuticalStartDateTime = times.administration.strftime("%Y%m%d%H%M%S")
    item.RadionuclideTotalDose = f"{total_dose_bq:.6g}"
    item.RadionuclideHalfLife = f"{Y90_HALF_LIFE_S:.1f}"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "C-131A3", "SRT", "^90^Yttrium"
    item.RadionuclideCodeSequence = Sequence([code])
    return Sequence([item])


def write_pet_series(
    image: sitk.Image, folder: str | Path, patient: str = "1", times: SeriesTimes = DEFAULT_TIMES,
    total_dose_bq: float = 1.4e9, frame_of_reference_uid: str | None = None,
) -> list[Dataset]:
    """Write ``image`` (Bq/mL) as a PET series of single-frame files in ``folder``; returns the datasets."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    values, origin, direction, spacing = right_handed_stack(image)
    frame = frame_of_reference_uid or generate_uid()
    first = _base_dataset(PET_STORAGE, "PT", None, frame, patient)
    datasets = []
    for k, plane in enumerate(values):
        ds = _base_dataset(PET_STORAGE, "PT", first, frame, patient)
        ds.SeriesInstanceUID, ds.SeriesDescription = first.SeriesInstanceUID, "test 90Y PET"
        ds.SeriesDate, ds.SeriesTime = times.acquisition.strftime("%Y%m%d"), times.acquisition.strftime("%H%M%S")
        ds.AcquisitionDate, ds.AcquisitionTime = ds.SeriesDate, ds.SeriesTime
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.Units, ds.DecayCorrection, ds.CorrectedImage = "BQML", "START", ["DECY", "ATTN"]
        ds.RadiopharmaceuticalInformationSequence = _radiopharmaceutical(times, total_dose_bq)
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [f"{v:.6f}" for v in origin + k * spacing[2] * direction[:, 2]]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*direction[:, 0], *direction[:, 1])]
        ds.PixelSpacing = [f"{spacing[1]:.8g}", f"{spacing[0]:.8g}"]
        ds.SliceThickness = f"{spacing[2]:.8g}"
        top = float(np.abs(plane).max())
        slope = top / 32767.0 if top > 0 else 1.0
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}", "0"
        _pixels(ds, np.round(plane / float(ds.RescaleSlope)).astype(np.int16))
        ds.save_as(folder / f"pet_{k:04d}.dcm", enforce_file_format=True)
        datasets.append(ds)
    return datasets


def write_spect_series(image: sitk.Image, path: str | Path, patient: str = "2", times: SeriesTimes = DEFAULT_TIMES) -> Dataset:
    """Write ``image`` (integer counts) as one multi-frame NM reconstruction; returns the dataset."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    values, origin, direction, spacing = right_handed_stack(image)
    ds = _base_dataset(NM_STORAGE, "NM", None, generate_uid(), patient)
    ds.SeriesDescription = "test 99mTc-MAA SPECT"
    ds.SeriesDate, ds.SeriesTime = times.acquisition.strftime("%Y%m%d"), times.acquisition.strftime("%H%M%S")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    detector = Dataset()
    detector.ImagePositionPatient = [f"{v:.6f}" for v in origin]
    detector.ImageOrientationPatient = [f"{v:.8f}" for v in (*direction[:, 0], *direction[:, 1])]
    ds.DetectorInformationSequence = Sequence([detector])
    ds.NumberOfFrames = values.shape[0]
    ds.PixelSpacing = [f"{spacing[1]:.8g}", f"{spacing[0]:.8g}"]
    ds.SliceThickness = ds.SpacingBetweenSlices = f"{spacing[2]:.8g}"
    ds.InstanceNumber = 1
    _pixels(ds, np.round(values).astype(np.int16))
    ds.save_as(path, enforce_file_format=True)
    return ds


def _pixels(ds: Dataset, values: np.ndarray) -> None:
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = values.shape[-2:]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = np.ascontiguousarray(values, dtype="<i2").tobytes()


# ---------------------------------------------------------------------------------------------
# contours


def write_rtstruct(segmentation: Segmentation, path: str | Path, reference: Dataset, names: list[str] | None = None) -> Dataset:
    """Write the segments of ``segmentation`` as an RTSTRUCT in the frame of reference of ``reference``.

    Each slice of each segment becomes the exact outline of its voxels (polygons along voxel edges)
    on the plane through the slice centres.
    """
    ds = _base_dataset(RTSTRUCT_STORAGE, "RTSTRUCT", reference, str(reference.FrameOfReferenceUID), "")
    ds.StructureSetLabel = "SIRT test"
    ds.StructureSetDate, ds.StructureSetTime = reference.StudyDate, reference.StudyTime
    frame = Dataset()
    frame.FrameOfReferenceUID = reference.FrameOfReferenceUID
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
    rois, contours, observations = [], [], []
    for number, name in enumerate(names or segmentation.names, start=1):
        segment = segmentation.segment(name)
        layer = segmentation.layers[segment.layer]
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID, roi.ROIName = number, reference.FrameOfReferenceUID, name
        roi.ROIGenerationAlgorithm = "MANUAL"
        rois.append(roi)
        items = []
        mask = sitk.GetArrayViewFromImage(layer) == segment.label_value
        for k in np.flatnonzero(mask.any(axis=(1, 2))):
            for loop in _pixel_edge_loops(mask[k]):
                points = _to_physical(layer, loop, int(k))
                item = Dataset()
                item.ContourGeometricType = "CLOSED_PLANAR"
                item.NumberOfContourPoints = len(points)
                item[CONTOUR_DATA] = _raw_decimal_strings(CONTOUR_DATA, points.ravel())
                item.set_original_encoding(False, True, None)  # so that pydicom writes the raw value as it is
                items.append(item)
        contour = Dataset()
        contour.ReferencedROINumber = number
        contour.ROIDisplayColor = [255, 128, 0]
        contour.ContourSequence = Sequence(items)
        contours.append(contour)
        observation = Dataset()
        observation.ObservationNumber, observation.ReferencedROINumber = number, number
        observation.RTROIInterpretedType, observation.ROIInterpreter = "ORGAN", ""
        observations.append(observation)
    ds.StructureSetROISequence = Sequence(rois)
    ds.ROIContourSequence = Sequence(contours)
    ds.RTROIObservationsSequence = Sequence(observations)
    ds.save_as(path, enforce_file_format=True)
    return ds


def _raw_decimal_strings(tag: Tag, values: np.ndarray) -> RawDataElement:
    """A DS element written as given: pydicom would build one validated object per value (seconds per file)."""
    text = "\\".join(f"{v:.4f}" for v in values).encode()
    text += b" " * (len(text) % 2)
    return RawDataElement(tag, "DS", len(text), text, 0, False, True)


def _to_physical(layer: sitk.Image, index_xy: np.ndarray, k: int) -> np.ndarray:
    """Continuous (column, row) indices on slice ``k`` of ``layer`` as LPS points."""
    direction = np.asarray(layer.GetDirection(), dtype=float).reshape(3, 3)
    spacing = np.asarray(layer.GetSpacing(), dtype=float)
    index = np.column_stack([index_xy, np.full(len(index_xy), float(k))])
    return np.asarray(layer.GetOrigin()) + (index * spacing) @ direction.T


def _pixel_edge_loops(mask: np.ndarray) -> list[np.ndarray]:
    """Closed loops along the pixel edges between ``mask`` (row, column) and its outside.

    Returned as continuous (column, row) indices. Corners are numbered on a lattice where corner
    (X, Y) is the top-left corner of pixel (row Y, column X) of the mask padded by one pixel. Every
    boundary edge is directed so that the inside lies on the same side; linking edges at their
    corners then closes every loop whatever the choice at a corner shared by two loops, and the
    even-odd fill of all loops together is exactly ``mask``. Straight runs become one edge.
    """
    padded = np.pad(mask, 1)
    edges: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    rows, columns = np.nonzero(padded[1:, :] != padded[:-1, :])  # between padded rows r and r + 1
    for r, c in zip(rows.tolist(), columns.tolist()):
        y = r + 1
        start, end = ((c + 1, y), (c, y)) if padded[r + 1, c] else ((c, y), (c + 1, y))
        edges[start].append(end)
    rows, columns = np.nonzero(padded[:, 1:] != padded[:, :-1])  # between padded columns c and c + 1
    for r, c in zip(rows.tolist(), columns.tolist()):
        x = c + 1
        start, end = ((x, r), (x, r + 1)) if padded[r, c + 1] else ((x, r + 1), (x, r))
        edges[start].append(end)
    loops = []
    while edges:
        start = next(iter(edges))
        loop, point = [start], start
        while True:
            following = edges[point].pop()
            if not edges[point]:
                del edges[point]
            if following == start:
                break
            loop.append(following)
            point = following
        loops.append(_without_collinear(np.asarray(loop, dtype=float)) - 1.5)
    return loops


def _without_collinear(loop: np.ndarray) -> np.ndarray:
    incoming, outgoing = loop - np.roll(loop, 1, axis=0), np.roll(loop, -1, axis=0) - loop
    turn = incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0]
    return loop[turn != 0]


def write_dicom_seg(segmentation: Segmentation, path: str | Path, source_images: list[Dataset], names: list[str] | None = None) -> None:
    """Write the segments of ``segmentation`` (all layers on one grid) as a BINARY DICOM-SEG with highdicom."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    names = names or segmentation.names
    grid = segmentation.layers[0]
    union = np.zeros(grid.GetSize()[::-1], dtype=bool)
    for name in names:
        union |= segmentation.mask(name)
    nonzero = [np.flatnonzero(union.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    (k0, k1), (j0, j1), (i0, i1) = [(int(n[0]), int(n[-1]) + 1) for n in nonzero]
    masks = np.stack([segmentation.mask(name)[k0:k1, j0:j1, i0:i1] for name in names], axis=-1)
    direction = np.asarray(grid.GetDirection(), dtype=float).reshape(3, 3)
    spacing = np.asarray(grid.GetSpacing(), dtype=float)
    affine = np.eye(4)
    affine[:3, :3] = np.column_stack([direction[:, 2] * spacing[2], direction[:, 1] * spacing[1], direction[:, 0] * spacing[0]])
    affine[:3, 3] = grid.TransformIndexToPhysicalPoint((i0, j0, k0))
    volume = hd.Volume(
        masks.astype(np.uint8), affine, "PATIENT",
        frame_of_reference_uid=str(source_images[0].FrameOfReferenceUID),
        channels={"SegmentNumber": list(range(1, len(names) + 1))},
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number, segment_label=name, segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for number, name in enumerate(names, start=1)
    ]
    seg = hd.seg.Segmentation(
        source_images=source_images, pixel_array=volume, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=2, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="SlicerSIRT test data", manufacturer_model_name="dicom_samples",
        software_versions="test", device_serial_number="0",
    )
    seg.save_as(path)


def grid_headers(segmentation: Segmentation, reference: Dataset, modality: str = "CT") -> list[Dataset]:
    """Header-only single-frame images on the segmentation's grid, in the study and frame of reference of ``reference``.

    They stand for the CT (or MRI) the contours were drawn on, which shares the frame of reference of
    the SPECT/CT or PET/CT acquisition and which the samples do not include; highdicom needs source
    images to place a segmentation, and cannot take them from a multi-frame NM file.
    """
    grid = segmentation.layers[0]
    direction = np.asarray(grid.GetDirection(), dtype=float).reshape(3, 3)
    spacing = np.asarray(grid.GetSpacing(), dtype=float)
    sop_class = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}[modality]
    series = generate_uid()
    headers = []
    for k in range(grid.GetSize()[2]):
        ds = _base_dataset(sop_class, modality, reference, str(reference.FrameOfReferenceUID), "")
        ds.SeriesInstanceUID, ds.InstanceNumber = series, k + 1
        ds.ImagePositionPatient = [f"{v:.6f}" for v in grid.TransformIndexToPhysicalPoint((0, 0, k))]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*direction[:, 0], *direction[:, 1])]
        ds.PixelSpacing = [f"{spacing[1]:.8g}", f"{spacing[0]:.8g}"]
        ds.SliceThickness = f"{spacing[2]:.8g}"
        ds.Rows, ds.Columns = grid.GetSize()[1], grid.GetSize()[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        headers.append(ds)
    return headers
