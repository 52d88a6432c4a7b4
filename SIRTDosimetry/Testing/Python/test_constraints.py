"""Constraint features, derived structures, lesions and TNR/LSF: synthetic cases and the sample patients."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from SIRTDosimetryLib.analysis.constraints import (
    EXPANDED_VOI_FEATURE,
    all_feature_names,
    compute_constraints,
    dx_name,
    feature_names,
    lung_shunt_fraction,
    lung_shunt_fraction_planar,
    patient_features,
    structure_constraints,
    vx_name,
)
from SIRTDosimetryLib.analysis.derived import (
    AnalysisStructure,
    derive,
    evaluate_expression,
    expand,
    healthy_liver,
    intersect,
    lesions_from_structures,
    parse_expression,
    split_components,
    subtract,
    threshold_structure,
    union,
)
from SIRTDosimetryLib.dose.radiobiology import NORMAL_LIVER_CHIESA_2015, TUMOUR_CHIESA_2015, bed_gy
from SIRTDosimetryLib.errors import SIRTInputError

DOCS = Path(__file__).resolve().parents[3] / "docs" / "dose-volume.md"


# --- names --------------------------------------------------------------------------------------------------


def test_feature_names_follow_the_documented_pattern():
    tumour = feature_names("tumour")
    normal = feature_names("normal_liver")
    assert tumour[:2] == ["volume_ml", "n_voxels"]
    for q in ("dose", "bed"):
        for x in (2, 5, 50, 70, 95, 98):
            assert f"{q}_d{x}_gy" in tumour
        for level in (120, 205, 400):
            assert f"{q}_v{level}_ml" in tumour and f"{q}_v{level}_pct" in tumour
        for level in (20, 30, 50, 70, 90):
            assert f"{q}_v{level}_ml" in normal and f"{q}_v{level}_ml" not in tumour
        for stat in ("mean_gy", "min_gy", "max_gy", "sd_gy", "cv", "hi_d5_d95"):
            assert f"{q}_{stat}" in tumour
    assert "tnr_npl" in tumour and "tnr_wnl" in tumour and "tnr_npl" not in normal
    assert dx_name("dose", 2.5) == "dose_d2p5_gy" and vx_name("bed", 100, "pct") == "bed_v100_pct"
    assert len(set(all_feature_names())) == len(all_feature_names())


def test_every_feature_name_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    missing = [n for n in all_feature_names() if f"`{n}`" not in text]
    assert not missing, f"not in docs/dose-volume.md: {missing}"


# --- features on synthetic structures ----------------------------------------------------------------------------


def _two_compartments(shape=(10, 12, 14)):
    tumour = np.zeros(shape, np.float32)
    tumour[2:6, 3:7, 4:9] = 1.0
    normal = np.zeros(shape, np.float32)
    normal[1:9, 1:11, 1:13] = 1.0
    normal = subtract(normal, tumour)
    return tumour, normal


def test_structure_features_uniform_dose_and_roles():
    tumour, normal = _two_compartments()
    dose = np.where(tumour > 0, 250.0, 40.0)
    voxel_ml = 0.064
    t = structure_constraints(AnalysisStructure("t", tumour, "tumour"), dose, voxel_ml)
    n = structure_constraints(AnalysisStructure("n", normal, "normal_liver"), dose, voxel_ml)
    assert t.features["volume_ml"] == pytest.approx(tumour.sum() * voxel_ml)
    assert t.features["dose_d95_gy"] == 250.0 and t.features["dose_hi_d5_d95"] == pytest.approx(1.0)
    assert t.features["dose_v205_pct"] == pytest.approx(100.0) and t.features["dose_v400_ml"] == 0.0
    assert t.features["dose_cv"] == pytest.approx(0.0, abs=1e-12)
    assert "dose_v20_ml" not in t.features
    assert n.features["dose_v30_pct"] == pytest.approx(100.0) and n.features["dose_v50_pct"] == 0.0
    assert "bed_mean_gy" not in n.features


def test_bed_from_function_equals_bed_from_map():
    rng = np.random.default_rng(3)
    tumour, normal = _two_compartments()
    dose = rng.gamma(3.0, 30.0, size=tumour.shape)
    s = AnalysisStructure("t", tumour, "tumour")
    from_map = structure_constraints(s, dose, 0.1, bed=bed_gy(dose, TUMOUR_CHIESA_2015, 64.1))
    from_function = structure_constraints(s, dose, 0.1, bed=lambda d: bed_gy(d, TUMOUR_CHIESA_2015, 64.1))
    for name in feature_names("tumour"):
        if name.startswith("bed_"):
            assert from_function.features[name] == pytest.approx(from_map.features[name], rel=1e-9, abs=1e-12), name
    # BED mean from the closed form: D (1 + D T_rep / ((T_rep + T_phys) a/b)) averaged over the voxels
    g = 1.5 / ((1.5 + 64.1) * 10.0)
    d = dose[tumour > 0]
    assert from_map.features["bed_mean_gy"] == pytest.approx(np.mean(d + g * d * d))


def test_bed_map_with_nan_leaves_voxels_out_with_a_warning():
    tumour, normal = _two_compartments()
    dose = np.full(tumour.shape, 30.0)
    bed = bed_gy(dose, NORMAL_LIVER_CHIESA_2015, 64.1)
    bed[1, :, :] = np.nan
    r = structure_constraints(AnalysisStructure("n", normal, "normal_liver"), dose, 1.0, bed=bed)
    assert any("no BED value" in w for w in r.warnings)
    assert r.features["bed_mean_gy"] == pytest.approx(float(bed_gy(30.0, NORMAL_LIVER_CHIESA_2015, 64.1)))


def test_hi_and_cv_are_none_when_undefined_and_small_structures_warn():
    tumour, _ = _two_compartments()
    dose = np.zeros(tumour.shape)
    r = structure_constraints(AnalysisStructure("t", tumour, "tumour"), dose, 1.0)
    assert r.features["dose_hi_d5_d95"] is None and r.features["dose_cv"] is None
    tiny = np.zeros(tumour.shape, np.float32)
    tiny[5, 5, 5:7] = 1
    assert any("covers only 2.0 voxels" in w for w in structure_constraints(AnalysisStructure("x", tiny), dose, 1.0).warnings)


def test_tnr_and_expanded_voi_feature():
    tumour, normal = _two_compartments()
    counts = np.where(tumour > 0, 8.0, 2.0)
    dose = counts * 10
    results = compute_constraints(
        dose,
        [AnalysisStructure("t", tumour, "tumour"), AnalysisStructure("n", normal, "normal_liver")],
        0.1,
        counts=counts,
        normal_perfused=AnalysisStructure("n", normal, "normal_liver"),
    )
    assert results[0].features["tnr_npl"] == pytest.approx(4.0)
    assert results[0].features["tnr_wnl"] is None  # no whole-normal-liver reference given
    assert "tnr_npl" not in results[1].features


def test_lung_shunt_fraction_formulas():
    assert lung_shunt_fraction(1.0, 9.0) == pytest.approx(0.1)
    lsf = lung_shunt_fraction_planar(400, 100, 3600, 2500)
    assert lsf == pytest.approx(200 / (200 + 3000))  # geometric means sqrt(ant*post)
    with pytest.raises(SIRTInputError):
        lung_shunt_fraction(0, 0)
    with pytest.raises(SIRTInputError):
        lung_shunt_fraction(-1, 5)
    with pytest.raises(SIRTInputError, match=r"\[0, 1\)"):
        patient_features(lsf=1.2)
    assert patient_features(0.05, 1.8) == {"lsf": 0.05, "injected_activity_gbq": 1.8}


# --- derived structures ------------------------------------------------------------------------------------------


def test_weight_arithmetic_rules():
    a = np.array([1.0, 0.6, 0.3, 0.0], np.float32)
    b = np.array([0.2, 0.6, 0.5, 0.4], np.float32)
    np.testing.assert_allclose(union(a, b), [1.0, 1.0, 0.8, 0.4])
    np.testing.assert_allclose(subtract(a, b), [0.8, 0.0, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(intersect(a, b), [0.2, 0.6, 0.3, 0.0])


def test_expression_parsing_and_globs():
    assert parse_expression("perfused volume - Tumor* + gall-bladder & liver") == [
        ("+", "perfused volume"), ("-", "Tumor*"), ("+", "gall-bladder"), ("&", "liver"),
    ]
    w = {n: np.zeros(6, np.float32) for n in ("Liver", "Tumor 1", "Tumor 2")}
    w["Liver"][:] = 1
    w["Tumor 1"][1] = 1
    w["Tumor 2"][3:5] = 0.5
    result, definition = evaluate_expression("liver - tumor*", w)
    np.testing.assert_allclose(result, [1, 0, 1, 0.5, 0.5, 1])
    assert definition == "Liver - (Tumor 1 + Tumor 2)"
    with pytest.raises(SIRTInputError, match="matches no structure"):
        evaluate_expression("Liver - Lesion*", w)
    with pytest.raises(SIRTInputError, match="is empty"):
        derive("nothing", "Tumor 1 - Liver", w)
    with pytest.raises(SIRTInputError, match="without a structure"):
        parse_expression("Liver - ")


def test_expand_matches_brute_force_ball():
    shape, spacing = (31, 33, 35), (1.0, 1.0, 1.0)
    w = np.zeros(shape, np.float32)
    w[15, 16, 17] = 1.0
    grown = expand(w, spacing, 10.0)
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    ball = (zz - 15) ** 2 + (yy - 16) ** 2 + (xx - 17) ** 2 <= 100
    np.testing.assert_array_equal(grown >= 1, ball)
    anisotropic = expand(w, (2.5, 1.0, 1.0), 5.0)
    expected = ((zz - 15) * 2.5) ** 2 + (yy - 16) ** 2 + (xx - 17) ** 2 <= 25
    np.testing.assert_array_equal(anisotropic >= 1, expected)
    with pytest.raises(SIRTInputError, match="margin"):
        expand(w, spacing, -1)


def test_threshold_contour():
    values = np.arange(100, dtype=float).reshape(4, 5, 5)
    voi = np.zeros(values.shape, np.float32)
    voi[1:3] = 1.0
    w = threshold_structure(values, voi, 0.9)
    peak = values[1:3].max()
    np.testing.assert_array_equal(w > 0, (voi > 0) & (values >= 0.9 * peak))
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(SIRTInputError, match=r"\(0, 1\)"):
            threshold_structure(values, voi, bad)
    with pytest.raises(SIRTInputError, match="no positive value"):
        threshold_structure(np.zeros(values.shape), voi, 0.1)


def test_healthy_liver_expanded_voi_mean():
    shape = (20, 20, 20)
    liver = np.zeros(shape, np.float32)
    liver[5:15, 5:15, 5:15] = 1
    lesion = np.zeros(shape, np.float32)
    lesion[8:11, 8:11, 8:11] = 1
    dose = np.where(liver > 0, 30.0, 0.0)
    dose[ndimage.binary_dilation(liver > 0) & (liver == 0)] = 12.0  # spill-out shell one voxel wide
    s = healthy_liver(liver, [lesion], (2.0, 2.0, 2.0), margin_mm=2.0)
    r = structure_constraints(s, dose, 0.008)
    assert r.features["volume_ml"] == pytest.approx((1000 - 27) * 0.008)
    assert r.features["dose_mean_gy"] == pytest.approx(30.0)
    shell = expand(liver, (2.0, 2.0, 2.0), 2.0).sum() - liver.sum()  # face neighbours: the 6-connected shell
    expected = (30.0 * (1000 - 27) + 12.0 * shell) / (1000 - 27)
    assert r.features[EXPANDED_VOI_FEATURE] == pytest.approx(expected)


def test_lesions_split_and_minimum_volume():
    w = np.zeros((10, 10, 10), np.float32)
    w[1:4, 1:4, 1:4] = 1  # 27 voxels
    w[6:8, 6:8, 6:8] = 1  # 8 voxels
    assert [int(c.sum()) for c in split_components(w)] == [27, 8]
    lesions = lesions_from_structures({"Tumor": w}, voxel_volume_ml=0.2, min_volume_ml=5.0, split=True)
    assert [(l.name, round(l.volume_ml, 6), l.included) for l in lesions] == [("Tumor #1", 5.4, True), ("Tumor #2", 1.6, False)]
    whole = lesions_from_structures({"Tumor": w}, 0.2, 5.0)
    assert len(whole) == 1 and whole[0].included
    with pytest.raises(SIRTInputError, match="connectivity"):
        split_components(w, 4)


# --- real data ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def patient2_dose(patient2_paths):
    from SIRTDosimetryLib.dose.calibration import RelativeCalibration
    from SIRTDosimetryLib.dose.engine import DoseParameters, compute_dose
    from SIRTDosimetryLib.io.segmentations import read_segmentation
    from SIRTDosimetryLib.io.volumes import read_activity_image

    spect, seg = patient2_paths
    params = DoseParameters(RelativeCalibration(2.0e9, ("perfused volume",)), method="ldm", clamp_invalid=True)
    return compute_dose(read_activity_image(spect), read_segmentation(seg), params)


@pytest.fixture(scope="module")
def patient1_dose(patient1_paths):
    from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration
    from SIRTDosimetryLib.dose.engine import DoseParameters, compute_dose
    from SIRTDosimetryLib.io.segmentations import read_segmentation
    from SIRTDosimetryLib.io.volumes import read_activity_image

    pet, seg = patient1_paths
    return compute_dose(read_activity_image(pet, "bq_per_ml"), read_segmentation(seg), DoseParameters(AbsoluteCalibration("bq_per_ml")))


def _weights(result):
    return {n: s.weights for n, s in result.structures.items()}


def _voxel_ml(result):
    return float(np.prod(result.dose_gy.GetSpacing())) / 1000


def test_patient2_normal_perfused_liver_volumes_add_up(patient2_dose):
    w = _weights(patient2_dose)
    voxel_ml = _voxel_ml(patient2_dose)
    npl = derive("normal perfused liver", "perfused volume - Tumor*", w, role="normal_liver")
    tumours = union(w["Tumor 1"], w["Tumor 2"])
    v_perfused = w["perfused volume"].sum(dtype=np.float64) * voxel_ml
    v_npl = npl.volume_ml(voxel_ml)
    v_tumours_in_perfused = intersect(w["perfused volume"], tumours).sum(dtype=np.float64) * voxel_ml
    assert v_npl + v_tumours_in_perfused == pytest.approx(v_perfused, rel=1e-4)
    # the delineated 'perfused normal' also excludes the gallbladder
    npl_no_gb = derive("x", "perfused volume - Tumor* - gallbladder", w)
    assert npl_no_gb.volume_ml(voxel_ml) == pytest.approx(w["perfused normal"].sum() * voxel_ml, rel=0.01)
    # energy adds up too (LDM, one density): mass-weighted mean doses recombine to the perfused mean
    dose = sitk.GetArrayFromImage(patient2_dose.dose_gy).astype(np.float64)
    r = compute_constraints(dose, [npl, AnalysisStructure("T", intersect(w["perfused volume"], tumours), "tumour")], voxel_ml)
    combined = (r[0].features["dose_mean_gy"] * r[0].features["volume_ml"] + r[1].features["dose_mean_gy"] * r[1].features["volume_ml"]) / v_perfused
    perfused_mean = next(s.dose_mean_gy for s in patient2_dose.segments if s.name == "perfused volume")
    assert combined == pytest.approx(perfused_mean, rel=1e-4)


def test_patient1_whole_normal_liver_matches_delineated_normal_tissue(patient1_dose):
    w = _weights(patient1_dose)
    voxel_ml = _voxel_ml(patient1_dose)
    wnl = derive("whole normal liver", "Liver - Tumor*", w, role="normal_liver")
    assert wnl.volume_ml(voxel_ml) == pytest.approx(w["Normal Tissue"].sum() * voxel_ml, rel=0.005)
    dose = sitk.GetArrayFromImage(patient1_dose.dose_gy).astype(np.float64)
    hl = healthy_liver(w["Liver"], [w[f"Tumor {k}"] for k in range(1, 7)], patient1_dose.dose_gy.GetSpacing()[::-1], 10.0)
    r = structure_constraints(hl, dose, voxel_ml)
    # the expanded VOI recovers counts blurred outside the liver: never less than the plain mean
    assert r.features[EXPANDED_VOI_FEATURE] >= r.features["dose_mean_gy"]
    assert r.features["volume_ml"] == pytest.approx(wnl.volume_ml(voxel_ml), rel=1e-6)
    assert math.isfinite(r.features["dose_d50_gy"])
