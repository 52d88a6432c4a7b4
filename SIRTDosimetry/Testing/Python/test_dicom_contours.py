"""RTSTRUCT and DICOM-SEG input: rasterisation against analytic shapes, geometry, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset

from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.dicom_identity import tag_frame_of_reference
from SIRTDosimetryLib.io import rtstruct
from SIRTDosimetryLib.io.rtstruct import read_rtstruct
from SIRTDosimetryLib.io.segmentations import Segment, Segmentation, read_segmentation
from SIRTDosimetryLib.structures import map_segments
from SIRTDosimetryLib.testing import dicom_samples

FRAME = "1.2.826.0.1.3680043.8.498.4242"


def structure_set(rois: dict[str, list[np.ndarray]], frame: str = FRAME) -> Dataset:
    """An in-memory RTSTRUCT with one ROI per entry, each a list of closed planar polygons (n x 3, mm)."""
    ds = Dataset()
    ds.Modality = "RTSTRUCT"
    reference = Dataset()
    reference.FrameOfReferenceUID = frame
    ds.ReferencedFrameOfReferenceSequence = [reference]
    ds.StructureSetROISequence, ds.ROIContourSequence = [], []
    for number, (name, polygons) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = number, name, frame
        ds.StructureSetROISequence.append(roi)
        contour = Dataset()
        contour.ReferencedROINumber = number
        contour.ContourSequence = []
        for polygon in polygons:
            item = Dataset()
            item.ContourGeometricType = "CLOSED_PLANAR"
            item.NumberOfContourPoints = len(polygon)
            item.ContourData = [round(float(v), 4) for v in np.asarray(polygon).ravel()]
            contour.ContourSequence.append(item)
        ds.ROIContourSequence.append(contour)
    return ds


def circle(radius: float, z: float, centre=(3.3, -7.1), points: int = 360) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, points, endpoint=False)
    return np.column_stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles), np.full(points, z)])


def square(half: float, z: float) -> np.ndarray:
    return np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])


def volume_ml(segmentation: Segmentation, name: str) -> float:
    layer = segmentation.layers[segmentation.segment(name).layer]
    return float(segmentation.mask(name).sum()) * np.prod(layer.GetSpacing()) / 1000.0


def test_arbitrary_polygons_are_filled_to_their_area() -> None:
    planes = [10.0 + 2.5 * k for k in range(8)]
    segmentation = read_rtstruct(structure_set({"disc": [circle(20.0, z) for z in planes]}), "memory")
    # A 360-gon of radius 20 mm has area 360/2 r² sin(1°); each plane is a 2.5 mm slab.
    expected_ml = 180 * 20.0**2 * np.sin(np.radians(1.0)) * 2.5 * len(planes) / 1000.0
    assert volume_ml(segmentation, "disc") == pytest.approx(expected_ml, rel=0.01)


def test_inner_contours_are_holes_and_lattice_contours_are_exact() -> None:
    planes = [0.0, 3.0, 6.0]
    polygons = [p for z in planes for p in (square(10.0, z), square(4.0, z))]
    segmentation = read_rtstruct(structure_set({"ring": polygons}), "memory")
    # vertices on a 2 mm lattice: the raster follows it, and the ring is exact
    assert volume_ml(segmentation, "ring") == pytest.approx((20.0**2 - 8.0**2) * 3.0 * len(planes) / 1000.0, rel=1e-9)
    layer = segmentation.layers[0]
    assert layer.GetSpacing()[2] == pytest.approx(3.0)
    centre = layer.TransformPhysicalPointToIndex((0.0, 0.0, 3.0))
    off_centre = layer.TransformPhysicalPointToIndex((7.0, 0.0, 3.0))
    assert layer[centre] == 0 and layer[off_centre] == 1


def test_pixel_edge_outlines_reproduce_a_labelmap_exactly() -> None:
    mask = np.random.default_rng(5).random((4, 12, 15)) > 0.45
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    image.SetSpacing((0.8, 0.9, 2.0))
    image.SetOrigin((-20.0, 14.0, 100.0))
    original = Segmentation((image,), (Segment("blob", 0, 1),), "memory")
    reference = Dataset()
    reference.FrameOfReferenceUID, reference.StudyDate, reference.StudyTime = FRAME, "20240101", "120000"
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID"):
        setattr(reference, keyword, "")
    ds = dicom_samples.write_rtstruct(original, "/dev/null", reference)
    traced = read_rtstruct(ds, "memory")
    activity = sitk.Image(10, 9, 5, sitk.sitkFloat64)
    activity.SetSpacing((2.3, 2.1, 2.6))
    activity.SetOrigin((-21.03, 13.01, 99.37))  # no sub-voxel sample exactly on a slab boundary
    tag_frame_of_reference(activity, FRAME)
    a, b = map_segments(traced, activity)["blob"].weights, map_segments(original, activity)["blob"].weights
    # the traced raster lies on a finer lattice (half the pixel size): exact box overlaps of the same
    # region agree to the rounding of the float32 weights
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert np.array_equal(a > 0, b > 0)


def test_contours_in_another_frame_of_reference_are_refused() -> None:
    segmentation = read_rtstruct(structure_set({"disc": [circle(20.0, z) for z in (0.0, 2.0)]}, frame="1.2.3"), "memory")
    activity = sitk.Image(30, 30, 5, sitk.sitkFloat64)
    activity.SetOrigin((-30.0, -37.0, -4.0))
    activity.SetSpacing((2.0, 2.0, 2.0))
    tag_frame_of_reference(activity, FRAME)
    with pytest.raises(SIRTInputError, match=f"frame of reference 1.2.3 but the image is in {FRAME}"):
        map_segments(segmentation, activity)


@pytest.mark.parametrize(
    ("polygons", "message"),
    [
        ([circle(5.0, 0.0), circle(5.0, 2.0), circle(5.0, 5.0)], "not evenly spaced"),
        ([circle(5.0, 0.0)], "one plane"),
        ([circle(5.0, 0.0), circle(5.0, 2.0)[:, [2, 0, 1]]], "non-parallel"),
        ([np.column_stack([circle(5.0, 0.0)[:, :2], np.linspace(0, 3, 360)]), circle(5.0, 4.0)], "not planar"),
    ],
    ids=["uneven", "single-plane", "non-parallel", "non-planar"],
)
def test_unusable_contour_planes_are_refused(polygons: list[np.ndarray], message: str) -> None:
    with pytest.raises(SIRTInputError, match=message):
        read_rtstruct(structure_set({"roi": polygons}), "memory")


def test_folder_dispatch(tmp_path: Path) -> None:
    ds = structure_set({"disc": [circle(20.0, z) for z in (0.0, 2.0)]})
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = dicom_samples.RTSTRUCT_STORAGE, pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    (tmp_path / "notes.txt").write_text("not DICOM")
    ds.save_as(tmp_path / "RS1", enforce_file_format=True)  # no .dcm suffix: recognised by its preamble
    assert read_segmentation(tmp_path).names == ["disc"]
    assert read_segmentation(tmp_path / "RS1").names == ["disc"]
    ds.save_as(tmp_path / "RS2.dcm", enforce_file_format=True)
    with pytest.raises(SIRTInputError, match="2 RTSTRUCT/DICOM-SEG files"):
        read_segmentation(tmp_path)


def test_dicom_seg_keeps_geometry_and_overlapping_segments(tmp_path: Path) -> None:
    shape = (6, 20, 24)
    first = np.zeros(shape, dtype=np.uint8)
    first[1:5, 3:15, 4:20] = 1
    second = np.zeros(shape, dtype=np.uint8)
    second[2:4, 8:18, 10:22] = 1  # overlaps the first
    direction = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # oblique to nothing, flipped
    layers = []
    for array in (first, second):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing((0.7, 0.8, 3.0))
        image.SetOrigin((11.0, -3.0, 40.0))
        image.SetDirection(direction.flatten().tolist())
        layers.append(image)
    original = Segmentation(tuple(layers), (Segment("organ", 0, 1), Segment("lesion", 1, 1)), "memory")
    reference = Dataset()
    reference.FrameOfReferenceUID = FRAME
    reference.StudyInstanceUID = pydicom.uid.generate_uid()
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime"):
        setattr(reference, keyword, "")
    dicom_samples.write_dicom_seg(original, tmp_path / "seg.dcm", dicom_samples.grid_headers(original, reference))
    read = read_segmentation(tmp_path / "seg.dcm")
    assert read.names == ["organ", "lesion"]
    activity = sitk.Image(14, 14, 14, sitk.sitkFloat64)
    activity.SetSpacing((2.0, 2.0, 2.0))
    activity.SetOrigin((6.1, -8.1, 20.1))
    tag_frame_of_reference(activity, FRAME)
    for name in read.names:
        np.testing.assert_array_equal(map_segments(read, activity)[name].weights, map_segments(original, activity)[name].weights)


def test_a_body_sized_roi_gets_coarser_pixels_within_the_memory_bound() -> None:
    planes = [2.5 * k for k in range(40)]  # 40 planes of 1000 x 1000 pixels of 0.5 mm would exceed the bound
    segmentation = read_rtstruct(structure_set({"body": [circle(250.0, z) for z in planes]}), "memory")
    layer = segmentation.layers[0]
    assert layer.GetSpacing()[0] > rtstruct.PIXEL_MM
    assert np.prod(layer.GetSize()) <= rtstruct.MAX_RASTER_VOXELS * 1.05
    expected_ml = 180 * 250.0**2 * np.sin(np.radians(1.0)) * 2.5 * len(planes) / 1000.0
    assert volume_ml(segmentation, "body") == pytest.approx(expected_ml, rel=0.005)
