"""Metrics, bootstrap intervals and DeLong's test, each against a second implementation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, recall_score, roc_auc_score

from SIRTResponseLib.metrics import (
    auc_score,
    bootstrap_metrics,
    classification_metrics,
    delong_ci,
    delong_covariance,
    delong_test,
)


def _scores(seed: int, n1: int = 17, n0: int = 23, ties: bool = True):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n1, int), np.zeros(n0, int)]
    a = rng.normal(size=n1 + n0) + 0.8 * y
    b = 0.6 * a + rng.normal(size=n1 + n0) * 0.8
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    order = rng.permutation(len(y))
    return y[order], a[order], b[order]


def _placement_delong(y, scores):
    """DeLong written the O(mn) way, straight from DeLong et al. (1988): psi kernel and placements."""
    y = np.asarray(y).astype(bool)
    k = len(scores)
    m, n = y.sum(), (~y).sum()
    v10 = np.empty((k, m))
    v01 = np.empty((k, n))
    aucs = np.empty(k)
    for r, s in enumerate(scores):
        x, z = s[y], s[~y]
        psi = (x[:, None] > z[None, :]).astype(float) + 0.5 * (x[:, None] == z[None, :])
        aucs[r] = psi.mean()
        v10[r] = psi.mean(axis=1)
        v01[r] = psi.mean(axis=0)
    s10 = np.array([[np.sum((v10[i] - aucs[i]) * (v10[j] - aucs[j])) / (m - 1) for j in range(k)] for i in range(k)])
    s01 = np.array([[np.sum((v01[i] - aucs[i]) * (v01[j] - aucs[j])) / (n - 1) for j in range(k)] for i in range(k)])
    return aucs, s10 / m + s01 / n


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_delong_matches_the_placement_value_definition(seed):
    y, a, b = _scores(seed)
    aucs, cov = delong_covariance(y, np.vstack([a, b]))
    ref_aucs, ref_cov = _placement_delong(y, [a, b])
    np.testing.assert_allclose(aucs, ref_aucs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(aucs, [roc_auc_score(y, a), roc_auc_score(y, b)], atol=1e-12)


def test_delong_variance_agrees_with_a_bootstrap_estimate():
    y, a, b = _scores(3, n1=60, n0=80, ties=False)
    _, cov = delong_covariance(y, np.vstack([a, b]))
    rng = np.random.default_rng(0)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    draws = []
    for _ in range(2000):
        rows = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        draws.append([roc_auc_score(y[rows], a[rows]), roc_auc_score(y[rows], b[rows])])
    boot = np.cov(np.array(draws).T)
    np.testing.assert_allclose(np.diag(cov), np.diag(boot), rtol=0.15)
    np.testing.assert_allclose(cov[0, 1], boot[0, 1], rtol=0.25)


def test_delong_test_properties():
    y, a, b = _scores(4)
    same = delong_test(y, a, a)
    assert same.z == 0 and same.p_value == 1.0
    monotone = delong_test(y, a, np.exp(a))  # same ranking, same AUC
    assert monotone.p_value == 1.0
    ab, ba = delong_test(y, a, b), delong_test(y, b, a)
    assert ab.z == pytest.approx(-ba.z) and ab.p_value == pytest.approx(ba.p_value)
    strong = np.where(y == 1, 1.0, 0.0) + np.random.default_rng(0).normal(scale=0.1, size=len(y))
    assert delong_test(y, strong, np.random.default_rng(1).normal(size=len(y))).p_value < 1e-4


def test_delong_ci_contains_the_auc_and_shrinks_with_n():
    y, a, _ = _scores(5, 20, 20)
    small = delong_ci(y, a)
    y, a, _ = _scores(5, 200, 200)
    large = delong_ci(y, a)
    assert small.ci_low < small.value < small.ci_high
    assert large.ci_high - large.ci_low < small.ci_high - small.ci_low


def test_point_metrics_match_scikit_learn():
    y, a, _ = _scores(6)
    probability = 1 / (1 + np.exp(-a))
    metrics = classification_metrics(y, probability)
    predicted = (probability >= 0.5).astype(int)
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, probability))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert metrics["sensitivity"] == pytest.approx(recall_score(y, predicted))
    assert metrics["specificity"] == pytest.approx(recall_score(1 - y, 1 - predicted))
    assert auc_score(y, probability) == pytest.approx(metrics["auc"])
    assert np.isnan(auc_score(np.ones(4), np.arange(4)))


def test_bootstrap_intervals_are_paired_stratified_and_reproducible():
    y, a, b = _scores(7)
    first = bootstrap_metrics(y, a, n_bootstrap=300, seed=1)
    again = bootstrap_metrics(y, a, n_bootstrap=300, seed=1)
    assert first == again
    for name, estimate in first.items():
        assert estimate.ci_low <= estimate.value <= estimate.ci_high, name
    # the AUC interval is close to DeLong's for a moderately large sample
    y, a, _ = _scores(8, 80, 80, ties=False)
    boot = bootstrap_metrics(y, a, n_bootstrap=1000, seed=0)["auc"]
    wald = delong_ci(y, a)
    assert boot.ci_low == pytest.approx(wald.ci_low, abs=0.03) and boot.ci_high == pytest.approx(wald.ci_high, abs=0.03)


def test_cluster_bootstrap_resamples_patients():
    y, a, _ = _scores(9, 30, 30)
    groups = np.repeat(np.arange(20), 3)
    grouped = bootstrap_metrics(y, a, n_bootstrap=200, seed=0, groups=groups)
    assert grouped["auc"].ci_low <= grouped["auc"].value <= grouped["auc"].ci_high
