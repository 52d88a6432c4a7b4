"""``sirt register`` on the bundled MAA SPECT moved by known transforms (elastix runs: the slow part of the suite).

The acceptance criteria: the recovered transform puts the liver surface back within one voxel
(mean surface distance) and the carried contour reaches Dice ≥ 0.95 against the original.
Settings are reduced (fewer iterations and samples) to keep each run to seconds of CPU time.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

pytest.importorskip("itk", reason="itk-elastix (the 'registration' extra) is not installed")
# itk's SWIG wrappers warn about their own types on import; nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore:builtin type .* has no __module__ attribute:DeprecationWarning")

from sirt.main import main  # noqa: E402

from SIRTDosimetryLib.errors import SIRTInputError  # noqa: E402
from SIRTDosimetryLib.io.segmentations import read_segmentation  # noqa: E402
from SIRTDosimetryLib.registration import RegistrationSettings, register_case  # noqa: E402
from SIRTDosimetryLib.registration.elastix import run_elastix  # noqa: E402
from SIRTDosimetryLib.registration.presets import parameter_maps  # noqa: E402
from SIRTDosimetryLib.registration.qa import contour_agreement  # noqa: E402
from SIRTDosimetryLib.testing.registration import make_moved_case  # noqa: E402


def _liver_agreement_from_files(carried_path, reference_path):
    """Dice and surface distance recomputed from the written files, on the carried grid."""
    carried = read_segmentation(carried_path)
    reference = read_segmentation(reference_path)
    grid = carried.layers[0]
    mask = lambda seg: sitk.Resample(  # noqa: E731
        sitk.Cast(seg.layers[seg.segment("liver").layer] == seg.segment("liver").label_value, sitk.sitkUInt8),
        grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return contour_agreement(mask(carried), mask(reference), "liver"), min(grid.GetSpacing())


def test_rigid_10mm_5deg_recovered_through_the_cli(tmp_path, capsys):
    case = make_moved_case(tmp_path / "case", "rigid")
    out = tmp_path / "out"
    code = main([
        "register", "--fixed", str(case.fixed), "--moving", str(case.moving), "--output", str(out),
        "--moving-segmentation", str(case.moving_segmentation), "--reference-segmentation", str(case.reference_segmentation),
        "--transform", "rigid", "--preset", "spect", "--mask-segment", "liver", "--iterations", "100", "--threads", "2",
    ])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "QA: pass" in printed
    agreement, voxel_mm = _liver_agreement_from_files(out / "segmentation_on_fixed.seg.nrrd", case.reference_segmentation)
    assert agreement.dice >= 0.95
    assert agreement.mean_surface_distance_mm <= voxel_mm
    # The written transform is the inverse of the known motion: fixed point -> moving point.
    transform = sitk.ReadTransform(str(out / "transform.tfm"))
    liver_points = _liver_surface_points(case.reference_segmentation)
    back = np.array([case.motion.TransformPoint(transform.TransformPoint(p)) for p in liver_points])
    assert np.mean(np.linalg.norm(back - liver_points, axis=1)) <= voxel_mm
    qa = json.loads((out / "registration_qa.json").read_text())
    assert qa["verdict"]["status"] == "pass"
    assert qa["contour_agreement"]["dice"] == pytest.approx(agreement.dice, abs=1e-9)
    assert qa["provenance"]["inputs"]["moving"]["sha256"]
    assert qa["transform"]["file"] == "transform.tfm"
    resampled = sitk.ReadImage(str(out / "moving_resampled.nrrd"))
    fixed = sitk.ReadImage(str(case.fixed))
    assert resampled.GetSize() == fixed.GetSize()
    moved_corr = np.corrcoef(sitk.GetArrayFromImage(sitk.ReadImage(str(case.moving))).ravel(), sitk.GetArrayFromImage(fixed).ravel())[0, 1]
    back_corr = np.corrcoef(sitk.GetArrayFromImage(resampled).ravel(), sitk.GetArrayFromImage(fixed).ravel())[0, 1]
    assert back_corr > moved_corr
    assert (out / "registration_overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _liver_surface_points(reference_path) -> np.ndarray:
    seg = read_segmentation(reference_path)
    layer = seg.layers[seg.segment("liver").layer]
    boundary = sitk.GetArrayFromImage(sitk.LabelContour(sitk.Cast(layer == seg.segment("liver").label_value, sitk.sitkUInt8))) > 0
    index = np.argwhere(boundary)[::50, ::-1].astype(float)
    return np.array([layer.TransformContinuousIndexToPhysicalPoint(i.tolist()) for i in index])


def test_smooth_deformation_recovered_with_a_fold_free_field(tmp_path):
    case = make_moved_case(tmp_path / "case", "deformable")
    settings = RegistrationSettings("deformable", "spect", resolutions=2, iterations=80, spatial_samples=2000, threads=2)
    result = register_case(case.fixed, case.moving, tmp_path / "out", moving_segmentation=case.moving_segmentation,
                           reference_segmentation=case.reference_segmentation, settings=settings, mask_segment="liver")
    agreement, voxel_mm = _liver_agreement_from_files(result.outputs["segmentation_on_fixed.seg.nrrd"], case.reference_segmentation)
    assert agreement.dice >= 0.95
    assert agreement.mean_surface_distance_mm <= voxel_mm
    assert result.jacobian is not None and not result.jacobian.folds
    assert 0.5 < result.jacobian.minimum <= 1.0 <= result.jacobian.maximum < 2.0
    assert result.verdict.status == "pass"
    field = sitk.ReadImage(str(result.outputs["displacement_field.nrrd"]))
    assert field.GetNumberOfComponentsPerPixel() == 3
    # The written field is what was applied: it maps fixed points to where the motion sent them.
    liver_points = _liver_surface_points(case.reference_segmentation)
    transform = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
    back = np.array([case.motion.TransformPoint(transform.TransformPoint(p)) for p in liver_points])
    assert np.mean(np.linalg.norm(back - liver_points, axis=1)) <= voxel_mm


def test_ct_to_ct_transform_is_applied_to_the_emission_image(tmp_path):
    """The hybrid scans' "CTs" (here the SPECT, coarsened) are registered; the emission images follow."""
    case = make_moved_case(tmp_path / "case", "rigid", image_shrink=2)
    reference = read_segmentation(case.reference_segmentation)
    ct_grid = sitk.ReadImage(str(case.fixed))
    liver = sitk.Resample(sitk.Cast(reference.layers[0] == 1, sitk.sitkFloat32), ct_grid, sitk.Transform(), sitk.sitkLinear, 0.0)
    emission = sitk.SmoothingRecursiveGaussian(liver * 1000.0, 6.0)  # a 90Y-like uptake in the liver
    moved_emission = sitk.Resample(emission, emission, case.motion, sitk.sitkLinear, 0.0)
    sitk.WriteImage(emission, str(tmp_path / "fixed_pet.nrrd"))
    sitk.WriteImage(moved_emission, str(tmp_path / "moving_pet.nrrd"))
    settings = RegistrationSettings("affine", "ct", iterations=60, threads=2)  # the affine path, on a rigid motion
    result = register_case(tmp_path / "fixed_pet.nrrd", tmp_path / "moving_pet.nrrd", tmp_path / "out", fixed_ct=case.fixed,
                           moving_ct=case.moving, moving_segmentation=case.moving_segmentation,
                           reference_segmentation=case.reference_segmentation, settings=settings, mask_segment="liver")
    assert result.qa["registered_pair"] == "ct_to_ct"
    assert result.verdict.status == "pass" and result.agreement.dice >= 0.95
    fixed_values = sitk.GetArrayFromImage(emission).ravel()
    before = np.corrcoef(sitk.GetArrayFromImage(moved_emission).ravel(), fixed_values)[0, 1]
    after = np.corrcoef(sitk.GetArrayFromImage(result.moving_resampled).ravel(), fixed_values)[0, 1]
    assert after > 0.99 > before
    assert result.segmentation_on_fixed.layers[0].GetSize() == ct_grid.GetSize()  # carried onto the fixed CT's grid
    row = result.table_row()
    assert row["registration_qa"] == "pass" and row["registration_dice"] == result.agreement.dice
    assert row["registration_jacobian_min"] is None  # linear: no field


def test_an_elastix_failure_is_one_clear_line():
    """Images far apart (the overlap check bypassed): elastix finds no samples inside the moving image."""
    array = np.zeros((16, 16, 16), np.float32)
    array[4:12, 4:12, 4:12] = 1.0
    fixed = sitk.GetImageFromArray(array)
    moving = sitk.GetImageFromArray(array)
    moving.SetOrigin((0.0, 0.0, 500.0))
    with pytest.raises(SIRTInputError, match="^elastix registration failed: ") as info:
        run_elastix(fixed, moving, parameter_maps(RegistrationSettings("rigid", iterations=5, resolutions=1)), threads=1)
    assert "\n" not in str(info.value) and "sample" in str(info.value).lower()
