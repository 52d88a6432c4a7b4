"""Reading segmentations and mapping them onto the activity grid with correct physical geometry."""

from __future__ import annotations

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import make_image

from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.segmentations import read_segmentation
from SIRTDosimetryLib.structures import map_segments


def write_seg_nrrd(path, layers: np.ndarray, segments: list[tuple[str, int, int]], directions, origin, space="left-posterior-superior"):
    """Write a Slicer-style .seg.nrrd. ``layers`` is (layer, x, y, z) in file (Fortran) order."""
    header = {
        "space": space,
        "kinds": ["list", "domain", "domain", "domain"] if layers.ndim == 4 else ["domain"] * 3,
        "space directions": ([[np.nan] * 3] if layers.ndim == 4 else []) + [list(map(float, d)) for d in directions],
        "space origin": list(map(float, origin)),
    }
    for i, (name, layer, label) in enumerate(segments):
        header[f"Segment{i}_Name"] = name
        header[f"Segment{i}_Layer"] = str(layer)
        header[f"Segment{i}_LabelValue"] = str(label)
        header[f"Segment{i}_ID"] = f"Segment_{i}"
    nrrd.write(str(path), layers.astype(np.uint8), header)


def ball(shape, center, radius):
    idx = np.indices(shape).astype(float)
    return sum((idx[a] - center[a]) ** 2 for a in range(3)) <= radius**2


def test_multilayer_overlapping_segments(tmp_path):
    """Two layers: a big ball (layer 0) and a small ball inside it (layer 1), overlapping as in Slicer."""
    shape = (20, 22, 24)  # x, y, z in file order
    big = ball(shape, (10, 11, 12), 8)
    small = ball(shape, (10, 11, 12), 3)
    layers = np.stack([big.astype(np.uint8) * 3, small.astype(np.uint8) * 1])
    path = tmp_path / "s.seg.nrrd"
    write_seg_nrrd(path, layers, [("liver", 0, 3), ("tumour", 1, 1)], np.diag([1.0, 1.5, 2.0]), (10, 20, 30))
    seg = read_segmentation(path)
    assert seg.names == ["liver", "tumour"]
    # (z, y, x) masks equal the (x, y, z) file arrays transposed
    np.testing.assert_array_equal(seg.mask("liver"), big.transpose(2, 1, 0))
    np.testing.assert_array_equal(seg.mask("tumour"), small.transpose(2, 1, 0))
    assert seg.layers[0].GetSpacing() == (1.0, 1.5, 2.0)
    assert seg.layers[0].GetOrigin() == (10.0, 20.0, 30.0)
    with pytest.raises(SIRTInputError, match="'liver', 'tumour'"):
        seg.segment("lungs")


def test_ras_space_is_converted_to_lps(tmp_path):
    shape = (4, 4, 4)
    layers = np.ones(shape, dtype=np.uint8)
    path = tmp_path / "ras.seg.nrrd"
    write_seg_nrrd(path, layers, [("a", 0, 1)], np.diag([1.0, 1.0, 1.0]), (5, 6, 7), space="right-anterior-superior")
    image = read_segmentation(path).layers[0]
    assert image.GetOrigin() == (-5.0, -6.0, 7.0)
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), np.diag([-1.0, -1.0, 1.0]))


def test_mapping_on_identical_grid_is_exact(tmp_path):
    shape = (16, 16, 16)
    mask = ball(shape, (7, 8, 9), 5)
    path = tmp_path / "s.seg.nrrd"
    write_seg_nrrd(path, mask.astype(np.uint8), [("a", 0, 1)], np.diag([2.0, 2.0, 2.0]), (0, 0, 0))
    reference = make_image(np.zeros(shape[::-1]), spacing=(2.0, 2.0, 2.0))
    for mode in ("fraction", "center", "majority"):
        weights = map_segments(read_segmentation(path), reference, mode=mode)["a"].weights
        np.testing.assert_array_equal(weights, mask.transpose(2, 1, 0).astype(np.float32))


def test_mapping_fine_ball_onto_coarse_flipped_grid(tmp_path):
    """A 1 mm ball mapped onto a 4 mm grid whose z axis runs the other way and whose origin differs.

    The fractional volume equals the contoured volume within 1 %, and the weighted centroid lands on the
    ball's physical centre within a fraction of a voxel.
    """
    shape = (80, 80, 80)
    centre_index = (41.3, 38.7, 40.2)
    mask = ball(shape, centre_index, 20)
    origin = (-40.0, -40.0, -40.0)
    path = tmp_path / "fine.seg.nrrd"
    write_seg_nrrd(path, mask.astype(np.uint8), [("ball", 0, 1)], np.diag([1.0, 1.0, 1.0]), origin)
    centre_physical = np.add(origin, centre_index)

    ref_shape_zyx = (25, 24, 26)
    reference = make_image(
        np.zeros(ref_shape_zyx), spacing=(4.0, 4.0, 4.0), origin=(-51.0, -47.0, 49.0),
        direction=(1, 0, 0, 0, 1, 0, 0, 0, -1),
    )
    structure = map_segments(read_segmentation(path), reference, mode="fraction")["ball"]
    assert structure.mapped_volume_ml == pytest.approx(structure.contoured_volume_ml, rel=0.01)
    w = structure.weights.astype(float)
    z, y, x = np.indices(w.shape)
    centroid_index = [np.sum(w * c) / w.sum() for c in (x, y, z)]
    centroid = np.array(reference.TransformContinuousIndexToPhysicalPoint(centroid_index))
    np.testing.assert_allclose(centroid, centre_physical, atol=0.5)
    # center and majority modes are binary and close in volume
    for mode in ("center", "majority"):
        s = map_segments(read_segmentation(path), reference, mode=mode)["ball"]
        assert set(np.unique(s.weights)) <= {0.0, 1.0}
        assert s.mapped_volume_ml == pytest.approx(structure.contoured_volume_ml, rel=0.06)


def test_mapping_with_oblique_segmentation(tmp_path):
    """A segmentation grid rotated 30 degrees about z: the mapped volume is still conserved."""
    angle = np.radians(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    shape = (60, 60, 60)
    mask = ball(shape, (30, 30, 30), 15)
    path = tmp_path / "oblique.seg.nrrd"
    write_seg_nrrd(path, mask.astype(np.uint8), [("ball", 0, 1)], (rotation * 1.0).T, (0.0, 0.0, -30.0))
    reference = make_image(np.zeros((20, 40, 40)), spacing=(3.0, 3.0, 3.0), origin=(-60.0, -10.0, -30.0))
    structure = map_segments(read_segmentation(path), reference)["ball"]
    assert structure.mapped_volume_ml == pytest.approx(structure.contoured_volume_ml, rel=0.01)


def test_segment_outside_activity_grid_is_an_error(tmp_path):
    mask = ball((10, 10, 10), (5, 5, 5), 3)
    path = tmp_path / "s.seg.nrrd"
    write_seg_nrrd(path, mask.astype(np.uint8), [("far", 0, 1)], np.eye(3), (500.0, 500.0, 500.0))
    reference = make_image(np.zeros((10, 10, 10)))
    with pytest.raises(SIRTInputError, match="'far' lies outside the activity image"):
        map_segments(read_segmentation(path), reference)


def test_empty_segment_is_an_error(tmp_path):
    layers = np.zeros((4, 4, 4), dtype=np.uint8)
    layers[0, 0, 0] = 1
    path = tmp_path / "s.seg.nrrd"
    write_seg_nrrd(path, layers, [("full", 0, 1), ("empty", 0, 2)], np.eye(3), (0, 0, 0))
    with pytest.raises(SIRTInputError, match="'empty'.*is empty"):
        map_segments(read_segmentation(path), make_image(np.zeros((4, 4, 4)), spacing=(1.0, 1.0, 1.0)))


def test_labelmap_with_names(tmp_path):
    labels = np.zeros((6, 6, 6), dtype=np.uint8)
    labels[1:3] = 1
    labels[4:] = 5
    path = tmp_path / "labels.nii.gz"
    sitk.WriteImage(make_image(labels), str(path))
    seg = read_segmentation(path, {5: "tumour"})
    assert seg.names == ["label_1", "tumour"]
    assert seg.mask("tumour").sum() == 2 * 36
    with pytest.raises(SIRTInputError, match=r"labels \[7\] named but absent"):
        read_segmentation(path, {7: "x"})


def test_corrupt_segmentation_file(tmp_path):
    path = tmp_path / "bad.seg.nrrd"
    path.write_bytes(b"NRRD0004\nthis is not a header\n")
    with pytest.raises(SIRTInputError, match="cannot read"):
        read_segmentation(path)


def test_sample_patient_1_overlapping_segments(patient1_paths):
    """Tumours drawn on MRI map onto the PET grid inside the liver, with volumes conserved."""
    pet_path, seg_path = patient1_paths
    seg = read_segmentation(seg_path)
    assert {"Liver", "Tumor 1", "Tumor 2", "Normal Tissue"} <= set(seg.names)
    assert len(seg.layers) >= 2  # overlapping segments need layers
    pet = sitk.ReadImage(str(pet_path))
    structures = map_segments(seg, pet, ["Liver", "Tumor 2"])
    liver, tumour = structures["Liver"], structures["Tumor 2"]
    for s in (liver, tumour):
        assert s.mapped_volume_ml == pytest.approx(s.contoured_volume_ml, rel=0.01)
    inside = np.sum(np.minimum(tumour.weights, liver.weights)) / tumour.weights.sum()
    assert inside > 0.95


def test_sample_patient_2_negative_z_direction(patient2_paths):
    """The SPECT z axis points down, the CT segmentation's up: volumes still agree."""
    spect_path, seg_path = patient2_paths
    spect = sitk.ReadImage(str(spect_path))
    assert spect.GetDirection()[8] == -1.0
    structures = map_segments(read_segmentation(seg_path), spect, ["perfused volume", "Tumor 1"])
    for s in structures.values():
        assert s.mapped_volume_ml == pytest.approx(s.contoured_volume_ml, rel=0.01)


@pytest.mark.parametrize("mode", ["fraction", "center", "majority"])
def test_structures_are_stored_in_their_bounding_box(tmp_path, mode):
    """Weights live in the segment's box; the full-grid map is zero outside it and the same inside, on an
    axis-aligned finer grid (exact fractions) and on an oblique one (sampling)."""
    shape = (20, 22, 24)
    layers = np.stack([ball(shape, (6, 8, 10), 4).astype(np.uint8), ball(shape, (13, 13, 14), 3.5).astype(np.uint8)])
    path = tmp_path / "s.seg.nrrd"
    write_seg_nrrd(path, layers, [("a", 0, 1), ("b", 1, 1)], np.diag([1.0, 1.0, 1.0]), (0, 0, 0))
    seg = read_segmentation(path)
    for direction in (None, (0.96, -0.28, 0.0, 0.28, 0.96, 0.0, 0.0, 0.0, 1.0)):
        grid = make_image(np.zeros((12, 12, 12), np.float32), spacing=(2.0, 2.0, 2.0), origin=(-0.5, -0.5, -0.5), direction=direction)
        for s in map_segments(seg, grid, mode=mode).values():
            full = s.weights
            assert full.shape == s.grid_shape == (12, 12, 12)
            assert s.box.size < full.size / 4  # the box, not the grid
            np.testing.assert_array_equal(full[s.slices], s.box)
            outside = full.copy()
            outside[s.slices] = 0
            assert not outside.any()
            # the box is tight: every face has a voxel with weight
            assert all(np.moveaxis(s.box > 0, a, 0)[i].any() for a in range(3) for i in (0, -1))
            np.testing.assert_array_equal(s.mask, full > 0)
            assert s.mapped_volume_ml == pytest.approx(float(full.sum(dtype=np.float64)) * 8e-3)
