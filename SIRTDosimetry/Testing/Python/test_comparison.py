"""Planning (MAA) versus verification (90Y): difference maps, isodose Dice, feature differences, cohort statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import stats

from SIRTDosimetryLib.analysis.comparison import (
    bland_altman,
    cohort_comparison,
    dose_difference,
    feature_differences,
    isodose_dice,
    resample_like,
    same_grid,
)
from SIRTDosimetryLib.errors import SIRTInputError


def test_dose_difference_and_isodose_dice_of_shifted_boxes():
    shape = (10, 10, 20)
    pre = np.zeros(shape)
    post = np.zeros(shape)
    pre[:, :, 2:12] = 100.0  # 10 slabs
    post[:, :, 6:16] = 100.0  # shifted by 4: overlap 6 slabs
    weights = np.ones(shape)
    np.testing.assert_array_equal(dose_difference(pre, post), post - pre)
    dice = isodose_dice(pre, post, weights, [50.0, 150.0])
    assert dice[50.0] == pytest.approx(2 * 6 / (10 + 10))
    assert dice[150.0] is None  # both empty
    assert isodose_dice(pre, pre, weights, [50.0])[50.0] == 1.0
    half = np.zeros(shape)
    half[:, :, :8] = 0.5  # structure covering slabs 0-7 with weight 0.5: pre has 6 slabs there, post 2
    assert isodose_dice(pre, post, half, [50.0])[50.0] == pytest.approx(2 * 2 / (6 + 2))
    with pytest.raises(SIRTInputError, match="different grids"):
        dose_difference(pre, post[:, :, :5])


def test_feature_differences():
    rows = feature_differences({"dose_mean_gy": 50.0, "dose_cv": None, "volume_ml": 0.0}, {"dose_mean_gy": 60.0, "dose_cv": 0.3, "volume_ml": 1.0})
    by = {r["feature"]: r for r in rows}
    assert by["dose_mean_gy"]["difference"] == 10.0 and by["dose_mean_gy"]["relative_difference"] == pytest.approx(0.2)
    assert by["dose_cv"]["difference"] is None
    assert by["volume_ml"]["relative_difference"] is None


def test_bland_altman_closed_form():
    pre = [10.0, 20.0, 30.0, 40.0]
    post = [12.0, 19.0, 35.0, 44.0]
    d = np.array(post) - np.array(pre)  # 2, -1, 5, 4
    ba = bland_altman(pre, post)
    sd = math.sqrt(np.sum((d - d.mean()) ** 2) / 3)
    assert ba.bias == pytest.approx(2.5) and ba.sd == pytest.approx(sd)
    assert ba.lower_loa == pytest.approx(2.5 - 1.96 * sd) and ba.upper_loa == pytest.approx(2.5 + 1.96 * sd)


def test_cohort_comparison():
    pre = np.array([30.0, 45.0, 60.0, 80.0, 120.0, 150.0, 200.0])
    post = pre * 1.1 + np.array([1.0, -2.0, 3.0, 0.5, -1.0, 2.0, 4.0])
    c = cohort_comparison("dose_mean_gy", pre, post)
    assert c.n == 7
    assert c.spearman_rho == pytest.approx(1.0)  # same ranking
    expected = stats.wilcoxon(post, pre)
    assert c.wilcoxon_p == pytest.approx(expected.pvalue) and c.wilcoxon_statistic == pytest.approx(expected.statistic)
    # all differences positive, n = 7: exact two-sided p = 2 / 2^7
    assert c.wilcoxon_p == pytest.approx(2 / 2**7)
    same = cohort_comparison("x", pre, pre)
    assert same.wilcoxon_p is None and same.bland_altman.bias == 0.0
    with pytest.raises(SIRTInputError, match="same length"):
        cohort_comparison("x", [1, 2], [1, 2, 3])
    with pytest.raises(SIRTInputError, match="at least 2"):
        bland_altman([1.0], [2.0])
    with pytest.raises(SIRTInputError, match="finite"):
        bland_altman([1.0, float("nan")], [2.0, 3.0])


def test_resample_like_changes_grid_only_when_needed():
    a = sitk.GetImageFromArray(np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6))
    a.SetSpacing((2.0, 2.0, 2.0))
    assert resample_like(a, a) is a
    b = sitk.Image(12, 10, 8, sitk.sitkFloat32)
    b.SetSpacing((1.0, 1.0, 1.0))
    b.SetOrigin((-0.5, -0.5, -0.5))
    r = resample_like(a, b)
    assert same_grid(r, b) and not same_grid(a, b)
    # a holds 30 z + 6 y + x (voxel indices): linear interpolation reproduces a linear function exactly
    for i, j, k in ((5, 5, 5), (3, 7, 2), (9, 1, 6)):
        cx, cy, cz = ((-0.5 + n) / 2.0 for n in (i, j, k))  # continuous index of the b voxel centre in a
        assert r.GetPixel(i, j, k) == pytest.approx(30 * cz + 6 * cy + cx, abs=1e-4)
