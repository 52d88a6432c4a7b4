"""The cross-validation's AUC and fits: scikit-learn's numbers, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from SIRTResponseLib.cv_fits import positive_probability, roc_auc, validation_scores
from SIRTResponseLib.models import CLASSIFIERS, GRIDS, make_classifier
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import get_scorer, roc_auc_score
from sklearn.model_selection import ParameterGrid


@pytest.mark.parametrize("seed", range(40))
def test_roc_auc_equals_scikit_learn_bitwise(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 60))
    y = rng.permutation(np.r_[[0, 1], rng.integers(0, 2, n - 2)])
    kind = seed % 4
    if kind == 0:  # continuous scores
        scores = rng.normal(size=n)
    elif kind == 1:  # many ties, as a shallow tree's or a forest's probabilities
        scores = rng.integers(0, 4, n) / 4
    elif kind == 2:  # float32, as XGBoost's probabilities
        scores = rng.random(n).astype(np.float32)
    else:  # saturated probabilities and collinear ROC points
        scores = np.where(rng.random(n) < 0.5, 1.0, rng.random(n))
    assert roc_auc(y, scores) == roc_auc_score(y, scores)  # exact, not approximate
    assert type(roc_auc(y, scores)) is float


def test_roc_auc_of_one_class_is_nan_with_scikit_learns_warning():
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(roc_auc(np.ones(5, int), np.arange(5.0)))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_scores_equal_scikit_learns_scorer_and_probabilities(name):
    """Every classifier at every grid point: the AUC the grid search sees and the refit's probabilities."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 5))
    X[:6] = X[6:12]  # duplicated rows, as after SMOTE
    y = (X[:, 0] + rng.normal(size=40) > 0).astype(int)
    X_eval, y_eval = rng.normal(size=(13, 5)), np.r_[np.zeros(6, int), np.ones(7, int)]
    scorer = get_scorer("roc_auc")
    for params in ParameterGrid(GRIDS[name]):
        reference = make_classifier(name, 5).set_params(**params).fit(X, y)
        assert roc_auc(y_eval, validation_scores(name, params, X, y, X_eval, 5)) == scorer(reference, X_eval, y_eval)
        np.testing.assert_array_equal(positive_probability(name, params, X, y, X_eval, 5), reference.predict_proba(X_eval)[:, 1])
