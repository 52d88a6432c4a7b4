"""GLM boosting (mboost's glmboost with Binomial family) against independent references."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from SIRTResponseLib.glmboost import GLMBoostClassifier


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    eta = 0.3 + 1.2 * X[:, 0] - 0.8 * X[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return X, y


def _reference_boost(X, y, mstop, nu):
    """The algorithm as mboost states it, written with lstsq fits and the loss' explicit derivative."""
    ytilde = np.where(y == 1, 1.0, -1.0)
    Z = np.column_stack([np.ones(len(X)), X - X.mean(axis=0)])
    p = y.mean()
    f = np.full(len(X), 0.5 * np.log(p / (1 - p)))
    coef = np.zeros(Z.shape[1])

    def loss(f):  # log2(1 + exp(-2 y f)), mboost Binomial's risk up to the base of the logarithm
        return np.log2(1 + np.exp(-2 * ytilde * f))

    for _ in range(mstop):
        eps = 1e-6
        u = -(loss(f + eps) - loss(f - eps)) / (2 * eps)  # negative gradient, numerically
        best = None
        for j in range(Z.shape[1]):
            beta, *_ = np.linalg.lstsq(Z[:, [j]], u, rcond=None)
            rss = np.sum((u - Z[:, j] * beta[0]) ** 2)
            if best is None or rss < best[0]:
                best = (rss, j, beta[0])
        _, j, beta = best
        f = f + nu * beta * Z[:, j]
        coef[j] += nu * beta
    return coef, f


def test_matches_the_reference_algorithm():
    X, y = _data()
    model = GLMBoostClassifier(mstop=60, nu=0.1).fit(X, y)
    coef, f = _reference_boost(X, y, 60, 0.1)
    np.testing.assert_allclose(model.intercept_, coef[0], atol=1e-6)
    np.testing.assert_allclose(model.coef_, coef[1:], atol=1e-6)
    np.testing.assert_allclose(model.decision_function(X), 2 * f, atol=1e-5)


def test_converges_to_half_the_logistic_regression_coefficients():
    X, y = _data(n=400, seed=1)
    model = GLMBoostClassifier(mstop=3000, nu=0.3).fit(X, y)
    mle = LogisticRegression(C=np.inf, max_iter=10000, tol=1e-10).fit(X, y)
    np.testing.assert_allclose(model.coef_, mle.coef_[0] / 2, atol=2e-3)
    np.testing.assert_allclose(model.decision_function(X), mle.decision_function(X), atol=1e-2)


def test_early_stopping_is_sparse_and_offset_is_the_prior_log_odds():
    X, y = _data(seed=2)
    model = GLMBoostClassifier(mstop=10, nu=0.1).fit(X, y)
    assert model.offset_ == pytest.approx(0.5 * np.log(y.mean() / (1 - y.mean())))
    assert set(np.flatnonzero(model.coef_)) <= {0, 2}  # only the informative covariates enter early
    assert model.selected_[0] == 0
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(model.predict(X), (proba[:, 1] > 0.5).astype(int))


def test_on_public_data_with_string_labels():
    data = load_breast_cancer()
    X = StandardScaler().fit_transform(data.data[:120])
    labels = np.array(["malignant", "benign"])[data.target[:120]]
    model = clone(GLMBoostClassifier(mstop=100)).fit(X, labels)
    assert list(model.classes_) == ["benign", "malignant"]
    assert (model.predict(X) == labels).mean() > 0.9


def test_refuses_bad_input():
    X, y = _data(n=20)
    with pytest.raises(ValueError, match="two classes"):
        GLMBoostClassifier().fit(X, np.arange(20) % 3)
    with pytest.raises(ValueError, match="mstop"):
        GLMBoostClassifier(mstop=0).fit(X, y)
