"""SIRTDosiomics: feature counts, presets, names, bitwise agreement with plain pyradiomics, bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import SimpleITK as sitk

import radiomics
from radiomics import featureextractor
from SIRTDosimetryLib.io.segmentations import Segment, Segmentation
from SIRTDosiomicsLib import extract, naming, presets, sparse_mcc
from SIRTDosiomicsLib.extract import (
    Planner,
    assemble,
    expected_columns,
    extract_image_features,
    feature_names,
    run_serial,
)
from SIRTDosiomicsLib.masks import StructureMask
from SIRTDosiomicsLib.sparse_mcc import enable_sparse_mcc, sparse_mcc_q
from SIRTDosiomicsLib.presets import (
    EXPECTED_FEATURE_COUNTS,
    FEATURES_PER_STRUCTURE,
    PUBLISHED_UPPER_GY,
    default_preset,
    load_preset,
    with_changes,
)

radiomics.setVerbosity(logging.ERROR)


# --- helpers --------------------------------------------------------------------------------------


def _image(array, spacing=(4.0, 4.0, 4.0), origin=(-60.0, -50.0, 20.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(np.asarray(array, dtype=np.float64))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def _phantom(shape=(20, 26, 26), seed=0):
    """A dose-like image (Gy) with a hot sphere (tumour) in a warm box (normal liver)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    centre = np.array(shape) / 2
    r = np.sqrt(((z - centre[0]) * 1.0) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2)
    tumour = r <= 4.5
    liver = (z > 2) & (z < shape[0] - 3) & (y > 3) & (y < shape[1] - 3) & (x > 2) & (x < shape[2] - 2) & ~tumour
    dose = 40 + 15 * rng.standard_normal(shape)
    dose[tumour] = 300 + 120 * rng.standard_normal(tumour.sum())  # some voxels above the 416 Gy clip
    dose[~(tumour | liver)] *= 0.1
    return np.clip(dose, 0, None), tumour, liver


def _plain(image: sitk.Image, mask: np.ndarray, low, high, **settings) -> dict[str, float]:
    """Plain pyradiomics on the full-size clipped image: the reference.

    Run with one BLAS thread, as the wrapper runs: the thread count changes the summation order inside
    numpy's eigenvalue routine (GLCM MCC), hence the last bit of that feature.
    """
    clipped = sitk.GetImageFromArray(np.clip(sitk.GetArrayFromImage(image), low, high))
    clipped.CopyInformation(image)
    m = sitk.GetImageFromArray(mask.astype(np.uint8))
    m.CopyInformation(image)
    with extract.one_blas_thread():
        out = featureextractor.RadiomicsFeatureExtractor(additionalInfo=False, **settings).execute(clipped, m)
    return {k[len("original_"):]: float(v) for k, v in out.items()}


def _segmentation(image: sitk.Image, masks: dict[str, np.ndarray]) -> Segmentation:
    labels = np.zeros(sitk.GetArrayViewFromImage(image).shape, dtype=np.uint16)
    segments = []
    for value, (name, mask) in enumerate(masks.items(), start=1):
        labels[mask] = value
        segments.append(Segment(name, 0, value))
    layer = sitk.GetImageFromArray(labels)
    layer.CopyInformation(image)
    return Segmentation((layer,), tuple(segments), "synthetic")


# --- counts, presets, names -------------------------------------------------------------------------


def test_feature_counts_per_class_are_pyradiomics_defaults():
    for cls, count in EXPECTED_FEATURE_COUNTS.items():
        assert len(feature_names(cls)) == count, cls
    assert FEATURES_PER_STRUCTURE == 107
    assert len(expected_columns(default_preset())) == 107
    assert 3 * len(expected_columns(default_preset())) == 321  # tumour, NPL, WNL per image
    assert len(feature_names("shape2D")) == presets.SHAPE2D_FEATURE_COUNT == 9
    with_2d = with_changes(default_preset(), shape2d=True)
    assert len(expected_columns(with_2d)) == with_2d.feature_count == 116
    # pyradiomics' default extractor computes exactly these 107 on a 3D mask.
    enabled = featureextractor.RadiomicsFeatureExtractor().enabledFeatures
    assert set(enabled) == set(EXPECTED_FEATURE_COUNTS)


def test_default_preset_is_the_published_protocol():
    p = default_preset()
    assert p.name == "sirt-dosiomics-2025"
    assert p.images["ct"].resample_mm == (1.5, 1.5, 1.5)
    assert (p.images["ct"].clip_low, p.images["ct"].clip_high, p.images["ct"].bin_width) == (-500.0, 500.0, 20.0)
    assert (p.images["spect"].clip_low, p.images["spect"].clip_high, p.images["spect"].bin_width) == (0.0, "p99.9", 50.0)
    for kind in ("dose", "bed"):
        assert (p.images[kind].clip_low, p.images[kind].clip_high, p.images[kind].bin_width) == (0.0, "structure", 1.0)
    assert PUBLISHED_UPPER_GY == {
        "maa": {"tumour": 650.34, "npl": 158.02, "wnl": 127.08},
        "y90": {"tumour": 416.25, "npl": 133.16, "wnl": 123.08},
    }
    assert p.upper_gy_for("bed", "y90", "npl") == 133.16
    assert p.structures == ("tumour", "npl", "wnl")


def test_preset_overrides_from_yaml(tmp_path):
    path = tmp_path / "preset.yaml"
    path.write_text(
        "name: coarse\nshape2d: true\nimages:\n  dose: {bin_width: 5}\n  spect: {clip_high: p99}\n"
        "upper_gy: {90Y: {tumour: 500}}\nbed_upper_gy: lq\n"
    )
    p = load_preset(path)
    assert p.name == "coarse" and p.shape2d and p.bed_upper_gy == "lq"
    assert p.images["dose"].bin_width == 5 and p.images["dose"].clip_high == "structure"  # merged, not replaced
    assert p.images["spect"].clip_high == "p99"
    assert p.upper_gy["y90"] == {"tumour": 500.0, "npl": 133.16, "wnl": 123.08}
    assert load_preset(None) == default_preset() == load_preset("sirt-dosiomics-2025")
    with pytest.raises(ValueError, match="unknown preset keys"):
        load_preset({"bin_width": 3})
    with pytest.raises(ValueError, match="clip_high"):
        load_preset({"images": {"spect": {"clip_high": "p200"}}})
    with pytest.raises(ValueError, match="set per image kind"):
        load_preset({"pyradiomics": {"binWidth": 3}})


def test_column_names_are_stable_and_parse_back():
    col = naming.feature_column("y90", "dose", "tumour", "glcm", "JointEnergy")
    assert col == "y90_dose_tumour_glcm_JointEnergy"
    parsed = naming.parse_column(col)
    assert (parsed.kind, parsed.source, parsed.image, parsed.structure, parsed.feature_class, parsed.name) == (
        "feature", "y90", "dose", "tumour", "glcm", "JointEnergy")
    assert naming.parse_column("maa_ct_wnl_error").kind == "error"
    assert naming.parse_column("maa_spect_npl_diagnostics_VoxelNum").kind == "diagnostics"
    dvc = naming.parse_column(naming.dvc_column("maa", "tumour", "dose_d70_gy"))
    assert (dvc.kind, dvc.structure, dvc.name) == ("dvc", "tumour", "dose_d70_gy")
    assert naming.parse_column("maa_dvc_error").kind == "dvc_error"
    assert naming.parse_column(naming.clinical_column("Child-Pugh score")).name == "child_pugh_score"
    assert naming.source_token("99mTc-MAA") == "maa" and naming.source_token("90Y") == "y90"
    assert naming.structure_token("Tumor") == "tumour" and naming.structure_token("Perfused normal") == "perfused-normal"
    with pytest.raises(naming.NamingError):
        naming.source_token("f18")
    with pytest.raises(naming.NamingError):
        naming.parse_column("original_glcm_JointEnergy")


# --- the wrapper gives pyradiomics' numbers -------------------------------------------------------


def test_wrapper_is_bitwise_equal_to_plain_pyradiomics_and_shares_shape():
    dose, tumour, liver = _phantom()
    image = _image(dose)
    preset = default_preset()
    masks = {"tumour": StructureMask(tumour), "wnl": StructureMask(liver)}
    planner = Planner(preset, "p")
    planner.add_image("y90", "dose", image, masks)
    planner.add_image("y90", "bed", image, masks, transform={s: (lambda v: 2.0 * v) for s in masks})
    parts = sorted(t.part for t in planner.tasks)
    assert parts.count("shape") == 2  # one shape task per structure, shared by dose and BED
    assert parts.count("glcm") == parts.count("texture") == 4
    row = assemble(preset, planner.feature_sets, run_serial(planner.tasks))
    for structure, mask, high in (("tumour", tumour, 416.25), ("wnl", liver, 123.08)):
        ref = _plain(image, mask, 0.0, high, binWidth=1.0)
        assert len(ref) == 107
        got = {k: row[f"y90_dose_{structure}_{k}"] for k in ref}
        assert got == ref  # bitwise
        assert row[f"y90_dose_{structure}_diagnostics_ClipHigh"] == high
        assert row[f"y90_dose_{structure}_error"] == "" and row[f"y90_dose_{structure}_warning"] == ""
        bed_ref = _plain(_image(2.0 * dose), mask, 0.0, high, binWidth=1.0)
        assert {k: row[f"y90_bed_{structure}_{k}"] for k in bed_ref} == bed_ref


def test_real_patient_dose_features_equal_plain_pyradiomics(patient1_paths):
    from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration
    from SIRTDosimetryLib.dose.engine import DoseParameters, compute_dose
    from SIRTDosimetryLib.io.segmentations import read_segmentation
    from SIRTDosimetryLib.io.volumes import read_activity_image

    activity = read_activity_image(patient1_paths[0], "bq_per_ml")
    segmentation = read_segmentation(patient1_paths[1])
    result = compute_dose(activity, segmentation, DoseParameters(AbsoluteCalibration("bq_per_ml"), segments=("Tumor 1", "Tumor 6")))
    row = extract_image_features(result.dose_gy, segmentation, {"tumour": "Tumor 1", "npl": ["Tumor 6"]}, "dose", "90Y")
    dose = sitk.Cast(result.dose_gy, sitk.sitkFloat64)
    for structure, segment, high in (("tumour", "Tumor 1", 416.25), ("npl", "Tumor 6", 133.16)):
        mask = result.structures[segment].weights >= 0.5  # majority rule
        ref = _plain(dose, mask, 0.0, high, binWidth=1.0)
        assert {k: row[f"y90_dose_{structure}_{k}"] for k in ref} == ref
        assert row[f"y90_dose_{structure}_diagnostics_VoxelNum"] == mask.sum()


def test_ct_resampling_goes_through_pyradiomics_loader():
    rng = np.random.default_rng(3)
    shape = (14, 40, 40)
    ct = -100 + 300 * rng.standard_normal(shape)
    mask = np.zeros(shape, bool)
    mask[3:11, 8:30, 10:32] = True
    image = _image(ct, spacing=(0.8, 0.8, 2.5))
    preset = load_preset({"images": {"ct": {"range_mode": "resegment"}}})
    planner = Planner(preset, "ct")
    planner.add_image("maa", "ct", image, {"wnl": StructureMask(mask)})
    row = assemble(preset, planner.feature_sets, run_serial(planner.tasks))
    m = sitk.GetImageFromArray(mask.astype(np.uint8))
    m.CopyInformation(image)
    ref = featureextractor.RadiomicsFeatureExtractor(
        additionalInfo=False, binWidth=20.0, resampledPixelSpacing=[1.5, 1.5, 1.5], interpolator="sitkBSpline",
        padDistance=5, resegmentRange=[-500.0, 500.0],
    ).execute(image, m)
    ref = {k[len("original_"):]: float(v) for k, v in ref.items()}
    assert {k: row[f"maa_ct_wnl_{k}"] for k in ref} == ref
    # Default (clip) mode: the voxels stay, their values are limited to -500..500 HU after resampling.
    planner = Planner(default_preset(), "ct")
    planner.add_image("maa", "ct", image, {"wnl": StructureMask(mask)})
    (task,) = [t for t in planner.tasks if t.part == "texture"]
    assert task.crop.image.min() >= -500 and task.crop.image.max() <= 500
    assert "resampledPixelSpacing" not in task.settings  # resampled once, in the planner


def test_percentile_clip_of_spect_is_over_the_whole_image():
    dose, tumour, liver = _phantom(seed=5)
    image = _image(dose * 10)
    row = extract_image_features(image, {"tumour": tumour}, {"tumour": "x"}, "spect", "maa")
    assert row["maa_spect_tumour_diagnostics_ClipHigh"] == pytest.approx(np.percentile(dose * 10, 99.9))
    assert row["maa_spect_tumour_error"] == ""


def test_bed_clip_values_same_or_through_lq():
    from SIRTDosimetryLib.dose.radiobiology import TUMOUR_CHIESA_2015, bed_gy
    from SIRTDosimetryLib.nuclides import Y90

    dose, tumour, _ = _phantom(shape=(12, 14, 14), seed=9)
    image = _image(dose)
    row = extract_image_features(image, {"tumour": tumour}, {"tumour": "x"}, "bed", "y90")
    assert row["y90_bed_tumour_diagnostics_ClipHigh"] == 416.25  # the published table, as stated for dose and BED
    row = extract_image_features(image, {"tumour": tumour}, {"tumour": "x"}, "bed", "y90", load_preset({"bed_upper_gy": "lq"}))
    expected = float(bed_gy(416.25, TUMOUR_CHIESA_2015, Y90.half_life_h))
    assert row["y90_bed_tumour_diagnostics_ClipHigh"] == pytest.approx(expected) and expected > 800


# --- sparse MCC ------------------------------------------------------------------------------------


def _dense_mcc_q(P, px, py, eps):
    Q = (P[:, :, None, 0, :] * P[:, None, :, 0, :]) / (px[:, :, None, 0, :] * py[:, None, :, 0, :] + eps)
    for gl in range(1, P.shape[1]):
        Q += (P[:, :, None, gl, :] * P[:, None, :, gl, :]) / (px[:, :, None, 0, :] * py[:, None, :, gl, :] + eps)
    return Q


def test_sparse_mcc_matrix_is_bitwise_the_engines():
    rng = np.random.default_rng(7)
    P = rng.random((1, 60, 60, 13))
    P[P < 0.93] = 0
    P += P.transpose(0, 2, 1, 3)
    P /= P.sum((1, 2), keepdims=True)
    px, py, eps = P.sum(2, keepdims=True), P.sum(1, keepdims=True), np.spacing(1)
    assert np.array_equal(sparse_mcc_q(P, px, py, eps), _dense_mcc_q(P, px, py, eps))


def test_sparse_mcc_feature_is_bitwise_the_engines():
    from radiomics import glcm

    dose, tumour, _ = _phantom(seed=11)
    image, mask = _image(np.clip(dose, 0, 416.25)), sitk.GetImageFromArray(tumour.astype(np.uint8))
    mask.CopyInformation(image)
    assert enable_sparse_mcc(False) is False
    dense_cls = glcm.RadiomicsGLCM.getMCCFeatureValue
    g = glcm.RadiomicsGLCM(image, mask, binWidth=1.0)
    g._initCalculation()
    dense = g.getMCCFeatureValue()
    try:
        assert enable_sparse_mcc(True) is True
        assert glcm.RadiomicsGLCM.getMCCFeatureValue is not dense_cls
        assert "MCC" in glcm.RadiomicsGLCM.getFeatureNames() and not glcm.RadiomicsGLCM.getFeatureNames()["MCC"]
        assert np.array_equal(g.getMCCFeatureValue(), dense)
    finally:
        enable_sparse_mcc(False)
    assert glcm.RadiomicsGLCM.getMCCFeatureValue is dense_cls


def test_sparse_mcc_refuses_an_unverified_engine(monkeypatch):
    monkeypatch.setattr(sparse_mcc, "VERIFIED_MCC_SOURCE_SHA256", "0" * 64)
    assert enable_sparse_mcc(True) is False


# --- bad input -------------------------------------------------------------------------------------


def test_bad_structures_give_messages_and_the_others_are_computed():
    dose, tumour, liver = _phantom(seed=2)
    image = _image(dose)
    one_voxel = np.zeros_like(tumour)
    one_voxel[1, 1, 20] = True
    flat_region = np.zeros_like(tumour)
    flat_region[0:3, 0:4, 0:4] = True
    dose_flat = dose.copy()
    dose_flat[flat_region] = 7.0
    segmentation = _segmentation(image, {"tumour": tumour, "liver": liver, "dot": one_voxel, "flat": flat_region})
    # A segment on a grid far away from the image: mapped coverage 0 %.
    far = sitk.GetImageFromArray(np.ones((3, 3, 3), np.uint16))
    far.SetOrigin((5000.0, 0.0, 0.0))
    segmentation = Segmentation((*segmentation.layers, far), (*segmentation.segments, Segment("far", 1, 1)), "synthetic")
    preset = load_preset({"upper_gy": {"y90": {"dot": 100, "flat": 100, "far": 100, "missing": 100}}})
    structures = {"tumour": "tumour", "wnl": "liver", "dot": "dot", "flat": "flat", "far": "far", "missing": "nope"}
    row = extract_image_features(_image(dose_flat), segmentation, structures, "dose", "y90", preset)
    assert "1 segmented voxel" in row["y90_dose_dot_error"]
    assert "outside" in row["y90_dose_far_error"]
    assert "not found" in row["y90_dose_missing_error"]
    assert "no variance" in row["y90_dose_flat_warning"] and row["y90_dose_flat_error"] == ""
    assert row["y90_dose_flat_firstorder_Variance"] == 0.0
    for s in ("dot", "far", "missing"):
        values = [row[f"y90_dose_{s}_{c}_{f}"] for c, f in expected_columns(preset)]
        assert len(values) == 107 and all(np.isnan(values))
    for s in ("tumour", "wnl"):
        assert row[f"y90_dose_{s}_error"] == ""
        assert not any(np.isnan([row[f"y90_dose_{s}_{c}_{f}"] for c, f in expected_columns(preset)]))
    # A structure with no clip value in the preset: a message, not a crash.
    row = extract_image_features(image, {"liver-2": liver}, {"liver-2": "x"}, "dose", "y90")
    assert "no upper clip value" in row["y90_dose_liver-2_error"]


def test_empty_mask_and_flat_image():
    dose, tumour, liver = _phantom(seed=4)
    row = extract_image_features(_image(np.full(dose.shape, 3.0)), {"tumour": tumour, "wnl": np.zeros_like(liver)},
                                 {"tumour": "a", "wnl": "b"}, "dose", "maa")
    assert "no voxel" in row["maa_dose_wnl_error"]
    assert "no variance" in row["maa_dose_tumour_warning"]
    assert row["maa_dose_tumour_glcm_Contrast"] == 0.0
