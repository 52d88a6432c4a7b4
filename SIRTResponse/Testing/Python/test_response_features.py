"""In-fold preprocessing: redundancy filter, selectors (against reference versions) and SMOTE."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer

from SIRTResponseLib.features import (
    SELECTORS,
    MRMRSelector,
    ReliefFSelector,
    SpearmanRedundancyFilter,
    adaptive_smote,
    kruskal_wallis,
    make_selector,
)
from SIRTResponseLib.models import build_pipeline, selected_features


def _planted(n=40, p=30, seed=0):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n // 2, int), np.zeros(n - n // 2, int)]
    X = rng.normal(size=(n, p))
    X[:, 3] += 2.0 * y
    X[:, 7] += 1.2 * y
    return X, y


def test_redundancy_filter_keeps_the_more_relevant_of_a_correlated_pair():
    X, y = _planted()
    noisy_copy = X[:, 3] + np.random.default_rng(1).normal(scale=0.4, size=len(y))  # rho > 0.9 with column 3, weaker
    monotone = np.exp(X[:, 5])  # Spearman rho = 1 with column 5
    X = np.column_stack([X, noisy_copy, monotone, np.ones(len(y))])
    rho = stats.spearmanr(X[:, 3], noisy_copy).statistic
    assert rho > 0.9
    kept = SpearmanRedundancyFilter(0.90).fit(X, y).get_support()
    assert kept[3] and not kept[30]  # the planted feature beats its weaker copy
    assert kept[5] != kept[31]  # exactly one of a perfectly rank-correlated pair
    assert not kept[32]  # constant
    remaining = X[:, kept]
    rho_all = stats.spearmanr(remaining).statistic
    assert np.max(np.abs(rho_all - np.eye(len(rho_all)))) <= 0.90


def _relieff_reference(X, y, k, n_neighbors):
    """ReliefF written as the textbook loop: per row, per feature, explicit neighbour lists."""
    n, p = X.shape
    span = X.max(axis=0) - X.min(axis=0)
    span[span == 0] = 1

    def diff(a, i, j):
        return abs(X[i, a] - X[j, a]) / span[a]

    def distance(i, j):
        return sum(diff(a, i, j) for a in range(p))

    nn = min(n_neighbors, min(np.bincount(y)) - 1)
    weights = np.zeros(p)
    for i in range(n):
        others = sorted((distance(i, j), j) for j in range(n) if j != i)
        hits = [j for _, j in others if y[j] == y[i]][:nn]
        misses = [j for _, j in others if y[j] != y[i]][:nn]
        for a in range(p):
            weights[a] += sum(diff(a, i, j) for j in misses) / nn - sum(diff(a, i, j) for j in hits) / nn
    return weights / n


def test_relieff_matches_the_textbook_loop_and_finds_the_planted_feature():
    X, y = _planted(n=24, p=8, seed=2)
    selector = ReliefFSelector(k=2, n_neighbors=5).fit(X, y)
    np.testing.assert_allclose(selector.weights_, _relieff_reference(X, y, 2, 5), atol=1e-12)
    assert selector.get_support()[3]


def test_mrmr_takes_relevance_first_and_avoids_redundancy():
    X, y = _planted(seed=3)
    duplicate = X[:, 3] + np.random.default_rng(0).normal(scale=0.05, size=len(y))
    X = np.column_stack([X, duplicate])
    selector = MRMRSelector(k=2).fit(X, y)
    first = int(np.argmax(np.abs([stats.pearsonr(X[:, j], y).statistic for j in range(X.shape[1])])))
    assert selector.ranking_[0] == first and first in (3, 30)
    def mi(a, b):
        return -0.5 * np.log(1 - stats.pearsonr(a, b).statistic ** 2)

    mid = [mi(X[:, j], y) - mi(X[:, j], X[:, first]) if j != first else -np.inf for j in range(X.shape[1])]
    assert selector.ranking_[1] == int(np.argmax(mid))
    assert selector.ranking_[1] not in (3, 30)  # not the near-copy of the first pick


def test_kruskal_wallis_scores_match_scipy_per_column():
    X, y = _planted(seed=4)
    h, p = kruskal_wallis(X, y)
    for j in range(X.shape[1]):
        reference = stats.kruskal(X[y == 0, j], X[y == 1, j])
        assert h[j] == pytest.approx(reference.statistic) and p[j] == pytest.approx(reference.pvalue)
    h, p = kruskal_wallis(np.ones((10, 2)), np.r_[np.ones(5, int), np.zeros(5, int)])
    assert h.tolist() == [0, 0] and p.tolist() == [1, 1]


@pytest.mark.parametrize("name", SELECTORS)
def test_every_selector_keeps_k_features_and_finds_the_strong_one(name):
    X, y = _planted(seed=5)
    support = make_selector(name, 3).fit(X, y).get_support()
    assert support.sum() == 3 and support[3]


def test_adaptive_smote_handles_tiny_minorities():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 3))
    y = np.r_[np.zeros(8, int), np.ones(2, int)]
    Xr, yr = adaptive_smote(X, y, k_neighbors=5, random_state=0)  # k lowered to 1
    assert np.bincount(yr).tolist() == [8, 8] and np.array_equal(Xr[:10], X)
    one = np.r_[np.zeros(9, int), np.ones(1, int)]
    Xr, yr = adaptive_smote(X, one, random_state=0)
    assert Xr is X and yr is one
    balanced = np.r_[np.zeros(5, int), np.ones(5, int)]
    assert adaptive_smote(X, balanced)[0] is X


def test_pipeline_on_public_data_oversamples_in_fit_only():
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    rows = np.r_[rng.choice(np.flatnonzero(y == 0), 8, replace=False), rng.choice(np.flatnonzero(y == 1), 22, replace=False)]
    X, y = X[rows], y[rows]
    names = [f"f{i}" for i in range(X.shape[1])]
    pipeline = build_pipeline("anova", "lr", n_features=4).fit(X, y)
    assert pipeline.predict_proba(X).shape == (30, 2)  # SMOTE does not add rows at prediction
    chosen = selected_features(pipeline, names)
    assert len(chosen) == 4 and set(chosen) <= set(names)
    assert pipeline.score(X, y) > 0.8
