"""Mann–Whitney + Benjamini–Hochberg (against statsmodels) and single-metric ROC thresholds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score
from statsmodels.stats.multitest import multipletests

from SIRTDosimetryLib.errors import SIRTInputError
from SIRTResponseLib.roc import single_metric_roc
from SIRTResponseLib.univariate import COLUMNS, mann_whitney_table


@pytest.fixture(scope="module")
def breast_cancer_cohort():
    """scikit-learn's breast-cancer data subsampled to a cohort size: 25 + 25 patients, 30 features."""
    data = load_breast_cancer(as_frame=True)
    rng = np.random.default_rng(0)
    rows = np.r_[rng.choice(np.flatnonzero(data.target == 0), 25, replace=False), rng.choice(np.flatnonzero(data.target == 1), 25, replace=False)]
    return data.data.iloc[rows].reset_index(drop=True), data.target.to_numpy()[rows]


def test_mann_whitney_table_matches_scipy_and_statsmodels_fdr(breast_cancer_cohort):
    X, y = breast_cancer_cohort
    X = X.assign(constant=1.0)
    X.loc[0, "mean radius"] = np.nan
    table = mann_whitney_table(X, y, q=0.05)
    assert list(table.columns) == list(COLUMNS)
    row = table.set_index("feature").loc["mean radius"]
    values = X["mean radius"].to_numpy()
    reference = stats.mannwhitneyu(values[(y == 1) & np.isfinite(values)], values[(y == 0) & np.isfinite(values)])
    assert row["p_value"] == pytest.approx(reference.pvalue) and row["u_statistic"] == reference.statistic
    assert row["n_responders"] + row["n_non_responders"] == 49
    assert row["auc"] == pytest.approx(roc_auc_score(y[np.isfinite(values)], values[np.isfinite(values)]))
    tested = table[table["p_value"].notna()]
    reject, q, *_ = multipletests(tested["p_value"], alpha=0.05, method="fdr_bh")
    np.testing.assert_allclose(tested["q_value"], q)
    np.testing.assert_array_equal(tested["significant"], reject)
    constant = table.set_index("feature").loc["constant"]
    assert np.isnan(constant["p_value"]) and not constant["significant"]
    assert table["p_value"].is_monotonic_increasing or table["p_value"].dropna().is_monotonic_increasing


def test_fdr_finds_planted_features_only():
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(20, int), np.zeros(20, int)]
    X = pd.DataFrame(rng.normal(size=(40, 200)), columns=[f"f{i}" for i in range(200)])
    X["f0"] += 2.5 * y
    X["f1"] -= 2.5 * y
    table = mann_whitney_table(X, y)
    assert set(table.loc[table["significant"], "feature"]) == {"f0", "f1"}
    assert table.set_index("feature").loc["f1", "auc"] < 0.2


def test_roc_thresholds_on_a_hand_example():
    # doses of 5 responders and 5 non-responders
    dose = [120, 150, 90, 200, 95, 40, 70, 100, 30, 50]
    y = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    roc = single_metric_roc(dose, y, name="tumour mean dose", target_specificity=1.0)
    # >= 90 Gy: all 5 responders, 4 of 5 non-responders (100 Gy is a false positive): J = 0.8, accuracy 0.9;
    # 100 % specificity first at >= 120 Gy, with 3 of 5 responders. AUC: 23 of 25 pairs ordered.
    assert roc.auc.value == pytest.approx(roc_auc_score(y, dose)) == pytest.approx(0.92)
    assert (roc.youden.threshold, roc.youden.sensitivity, roc.youden.specificity) == (90, 1.0, 0.8)
    assert (roc.best_accuracy.threshold, roc.best_accuracy.accuracy) == (90, pytest.approx(0.9))
    assert (roc.target_specificity.threshold, roc.target_specificity.sensitivity, roc.target_specificity.specificity) == (120, 0.6, 1.0)
    assert roc.auc.ci_low < 0.92 < roc.auc.ci_high
    # a tie in J (>= 90: 0.8 + 0.8; >= 120: 0.6 + 1.0) goes to the higher specificity
    tie = single_metric_roc([120, 150, 90, 200, 60, 40, 70, 100, 30, 50], y)
    assert (tie.youden.threshold, tie.youden.specificity) == (120, 1.0)


def test_roc_direction_lower_and_unreachable_target():
    y = np.array([1, 1, 1, 0, 0, 0])
    value = np.array([1.0, 2.0, 3.5, 3.0, 4.0, 5.0])  # responders have lower values
    roc = single_metric_roc(value, y, direction="lower", target_specificity=0.6)
    assert roc.auc.value == pytest.approx(roc_auc_score(y, -value))
    assert roc.youden.threshold == 2.0 and roc.youden.specificity == 1.0
    tied = single_metric_roc(np.ones(6), y, target_specificity=0.5)
    assert tied.auc.value == 0.5 and tied.target_specificity is None  # one threshold, specificity 0
    with pytest.raises(SIRTInputError, match="two responders"):
        single_metric_roc([1.0, 2.0, np.nan], [1, 0, 1])
