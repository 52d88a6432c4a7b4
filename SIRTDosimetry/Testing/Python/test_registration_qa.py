"""Registration without elastix: QA measures on analytic cases, outputs Slicer reads, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import make_image

from sirt.main import main
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.segmentations import Segment, Segmentation, read_segmentation, write_segmentation
from SIRTDosimetryLib.registration import QAGate, RegistrationSettings, register_case
from SIRTDosimetryLib.registration.case import check_overlap, linear_transform
from SIRTDosimetryLib.registration.elastix import INSTALL_HINT, run_elastix
from SIRTDosimetryLib.registration.overlay import write_checkerboard_png
from SIRTDosimetryLib.registration.presets import parameter_maps
from SIRTDosimetryLib.registration.qa import contour_agreement, jacobian_range, judge

LPS_TO_RAS = np.array([-1.0, -1.0, 1.0])
NEGATIVE_Z = (1, 0, 0, 0, 1, 0, 0, 0, -1)


def box(shape, lo, hi) -> np.ndarray:
    a = np.zeros(shape, dtype=np.uint8)
    a[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = 1
    return a


def test_dice_and_surface_distance_of_shifted_cubes():
    """Cubes of side 10 shifted by 2 voxels along x: Dice = 2·8/20 = 0.8; identical cubes: Dice 1, distance 0."""
    a = make_image(box((30, 30, 30), (10, 10, 10), (20, 20, 20)), spacing=(1.5, 1.5, 1.5))
    b = make_image(box((30, 30, 30), (10, 10, 12), (20, 20, 22)), spacing=(1.5, 1.5, 1.5))
    shifted = contour_agreement(a, b, "liver")
    assert shifted.dice == pytest.approx(0.8)
    # Boundary voxels on the two x faces are 2 voxels (3 mm) off, the side faces partly coincide: 0 < MSD < 3 mm.
    assert 0.0 < shifted.mean_surface_distance_mm < 3.0
    same = contour_agreement(a, a, "liver")
    assert same.dice == 1.0 and same.mean_surface_distance_mm == 0.0
    assert same.carried_volume_ml == pytest.approx(1000 * 1.5**3 * 1e-3)


def test_jacobian_of_uniform_expansion_and_of_a_fold():
    """u(x) = 0.1·x gives J = 1.1³ everywhere; u_x = -2·x reverses the x axis: J = -1, folding everywhere."""
    grid = sitk.Image([12, 12, 12], sitk.sitkUInt8)
    grid.SetSpacing((2.0, 2.0, 2.0))
    expansion = sitk.AffineTransform(3)
    expansion.SetMatrix((1.1, 0, 0, 0, 1.1, 0, 0, 0, 1.1))
    field = sitk.TransformToDisplacementField(expansion, sitk.sitkVectorFloat64, grid.GetSize(), grid.GetOrigin(), grid.GetSpacing(), grid.GetDirection())
    result = jacobian_range(field)
    assert result.minimum == pytest.approx(1.331, rel=1e-6) and result.maximum == pytest.approx(1.331, rel=1e-6)
    assert not result.folds
    mirror = sitk.AffineTransform(3)
    mirror.SetMatrix((-1, 0, 0, 0, 1, 0, 0, 0, 1))
    folded = jacobian_range(sitk.TransformToDisplacementField(mirror, sitk.sitkVectorFloat64, grid.GetSize(), grid.GetOrigin(), grid.GetSpacing(), grid.GetDirection()))
    assert folded.folds and folded.folding_voxels == 10**3  # the inner voxels
    assert folded.minimum == pytest.approx(-1.0)
    verdict = judge(QAGate(), None, folded)
    assert verdict.status == "fail" and "folds" in verdict.reasons[0]


def test_gate_never_passes_silently():
    a = make_image(box((20, 20, 20), (5, 5, 5), (15, 15, 15)))
    good = contour_agreement(a, a, "liver")
    assert judge(QAGate(), good, None).passed
    assert judge(QAGate(), None, None).status == "unchecked"  # nothing could show a failure
    poor = contour_agreement(make_image(box((20, 20, 20), (5, 5, 9), (15, 15, 19))), a, "liver")
    verdict = judge(QAGate(min_dice=0.85), poor, None)
    assert verdict.status == "fail" and "below the gate 0.85" in verdict.reasons[0]
    assert judge(QAGate(min_dice=0.5, max_mean_surface_distance_mm=0.5), poor, None).status == "fail"
    lost = contour_agreement(make_image(np.zeros((20, 20, 20), np.uint8)), a, "liver")  # carried contour left the grid
    assert lost.dice == 0.0 and lost.mean_surface_distance_mm is None
    assert judge(QAGate(min_dice=0.0), lost, None).status == "pass"  # gate 0 means no Dice gate
    assert "empty" in judge(QAGate(min_dice=0.0, max_mean_surface_distance_mm=5.0), lost, None).reasons[0]
    with pytest.raises(SIRTInputError, match="Dice gate"):
        QAGate(min_dice=1.5)


def test_written_segmentation_round_trips_and_opens_in_slicer(tmp_path, scene):
    from SIRTDosimetryLib.mrml.convert import segment_names
    from SIRTDosimetryLib.mrml.scene import load_segmentation

    big = box((16, 18, 20), (2, 2, 2), (14, 16, 18))
    small = box((16, 18, 20), (5, 5, 5), (9, 9, 9))
    layers = tuple(make_image(a, spacing=(1.0, 2.0, 3.0), origin=(5.0, -7.0, 100.0), direction=NEGATIVE_Z) for a in (big + 2 * small, small))
    seg = Segmentation(layers, (Segment("liver", 0, 1), Segment("Tumor 1", 0, 2), Segment("core", 1, 1)), "memory")
    path = tmp_path / "carried.seg.nrrd"
    write_segmentation(seg, path)
    back = read_segmentation(path)
    assert back.names == ["liver", "Tumor 1", "core"]
    for name in back.names:
        assert np.array_equal(back.mask(name), seg.mask(name))
    assert back.layers[0].GetDirection() == NEGATIVE_Z
    assert np.allclose(back.layers[0].GetOrigin(), (5.0, -7.0, 100.0)) and np.allclose(back.layers[0].GetSpacing(), (1.0, 2.0, 3.0))
    node = load_segmentation(scene, path)
    assert sorted(segment_names(node)) == sorted(back.names)


def test_transforms_load_in_slicer_as_documented(tmp_path, scene):
    """A linear .tfm and a displacement-field .nrrd: Slicer's "from parent" maps RAS(p) to RAS(T(p))."""
    motion = sitk.Euler3DTransform((10.0, 20.0, 30.0), 0.0, 0.0, np.deg2rad(5.0))
    motion.SetTranslation((6.0, 8.0, 0.0))
    sitk.WriteTransform(linear_transform(motion), str(tmp_path / "transform.tfm"))
    field = sitk.TransformToDisplacementField(motion, sitk.sitkVectorFloat64, [20, 20, 20], (-50.0, -80.0, 150.0), (5.0, 5.0, 5.0), NEGATIVE_Z)
    sitk.WriteImage(sitk.Cast(field, sitk.sitkVectorFloat32), str(tmp_path / "displacement_field.nrrd"))
    point = np.array([15.0, -40.0, 100.0])
    expected_ras = np.asarray(motion.TransformPoint(point)) * LPS_TO_RAS
    for file, node_class in (("transform.tfm", "vtkMRMLLinearTransformNode"), ("displacement_field.nrrd", "vtkMRMLGridTransformNode")):
        node = scene.AddNewNodeByClass(node_class)
        storage = scene.AddNewNodeByClass("vtkMRMLTransformStorageNode")
        storage.SetFileName(str(tmp_path / file))
        node.SetAndObserveStorageNodeID(storage.GetID())
        assert storage.ReadData(node), file
        mapped = np.asarray(node.GetTransformFromParent().TransformPoint(*(point * LPS_TO_RAS)))
        assert np.allclose(mapped, expected_ras, atol=1e-3), file


def test_linear_transforms_flatten_to_one_affine():
    euler = sitk.Euler3DTransform((1.0, 2.0, 3.0), 0.1, -0.05, 0.2, (4.0, 5.0, 6.0))
    affine = sitk.AffineTransform((1.1, 0.02, 0, 0, 0.95, 0.01, 0, 0, 1.0), (1.0, -2.0, 0.5), (10.0, 0.0, -5.0))
    composite = sitk.CompositeTransform([affine, euler])
    flat = linear_transform(composite)
    for point in np.random.default_rng(1).uniform(-200, 200, size=(10, 3)):
        assert np.allclose(flat.TransformPoint(point.tolist()), composite.TransformPoint(point.tolist()), atol=1e-9)


def test_presets_build_the_stages_asked_for():
    assert [m["Transform"][0] for m in parameter_maps(RegistrationSettings("rigid", "pet"))] == ["EulerTransform"]
    stages = parameter_maps(RegistrationSettings("deformable", "mri", resolutions=3, bspline_grid_spacing_mm=15.0))
    assert [m["Transform"][0] for m in stages] == ["EulerTransform", "AffineTransform", "BSplineTransform"]
    assert stages[-1]["FinalGridSpacingInPhysicalUnits"] == ["15.0"] and stages[-1]["GridSpacingSchedule"] == ["4.0", "2.0", "1.0"]
    assert all(m["Metric"] == ["AdvancedMattesMutualInformation"] for m in stages)
    with pytest.raises(SIRTInputError, match="unknown registration preset"):
        RegistrationSettings("rigid", "ultrasound")
    with pytest.raises(SIRTInputError, match="unknown transform"):
        RegistrationSettings("elastic")


def _write_case(folder, moving_origin=(0.0, 0.0, 0.0), liver=True):
    """A small fixed/moving pair and a moving segmentation (liver present or empty)."""
    array = np.zeros((20, 24, 28), np.float32)
    array[5:15, 6:18, 7:21] = 100.0
    paths = {"fixed": folder / "fixed.nrrd", "moving": folder / "moving.nrrd", "seg": folder / "moving.seg.nrrd"}
    sitk.WriteImage(make_image(array, spacing=(4.0, 4.0, 4.0)), str(paths["fixed"]))
    moving = make_image(array, spacing=(4.0, 4.0, 4.0), origin=moving_origin)
    sitk.WriteImage(moving, str(paths["moving"]))
    labels = make_image((array > 0).astype(np.uint8) if liver else np.zeros(array.shape, np.uint8), spacing=(4.0, 4.0, 4.0), origin=moving_origin)
    write_segmentation(Segmentation((labels,), (Segment("liver", 0, 1),), "memory"), paths["seg"])
    return paths


def test_non_overlapping_images_get_a_clear_message(tmp_path, capsys):
    paths = _write_case(tmp_path, moving_origin=(0.0, 0.0, 2000.0))
    with pytest.raises(SIRTInputError, match="do not overlap in patient coordinates"):
        check_overlap(sitk.ReadImage(str(paths["fixed"])), sitk.ReadImage(str(paths["moving"])))
    code = main(["register", "--fixed", str(paths["fixed"]), "--moving", str(paths["moving"]), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "do not overlap" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_empty_mask_segment_gets_a_clear_message(tmp_path):
    paths = _write_case(tmp_path, liver=False)
    with pytest.raises(SIRTInputError, match="mask segment 'liver' .* is empty"):
        register_case(paths["fixed"], paths["moving"], tmp_path / "out", moving_segmentation=paths["seg"], mask_segment="liver")
    with pytest.raises(SIRTInputError, match="needs both CTs"):
        register_case(paths["fixed"], paths["moving"], tmp_path / "out", fixed_ct=paths["fixed"])
    assert not (tmp_path / "out").exists()


def test_checkerboard_picture_of_a_flipped_grid(tmp_path):
    array = np.random.default_rng(0).uniform(0, 1, size=(12, 16, 20)).astype(np.float32)
    fixed = make_image(array, spacing=(3.0, 3.0, 2.5), direction=NEGATIVE_Z)
    mask = make_image(box(array.shape, (3, 4, 5), (9, 12, 15)), spacing=(3.0, 3.0, 2.5), direction=NEGATIVE_Z)
    write_checkerboard_png(fixed, fixed, tmp_path / "overlay.png", "test", carried=mask, reference=mask)
    assert (tmp_path / "overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_elastix_gets_the_install_instruction(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "itk", None)  # as if itk-elastix were not installed
    image = make_image(np.ones((4, 4, 4), np.float32))
    with pytest.raises(SIRTInputError, match="pip install") as info:
        run_elastix(image, image, [])
    assert str(info.value) == INSTALL_HINT
