"""The study's random forest: the same probabilities as scikit-learn's forest, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from SIRTResponseLib.fast_forest import forest_predict_proba, reproduces


@pytest.mark.parametrize("max_depth", [3, None, 1])
@pytest.mark.parametrize(("n_rows", "n_features", "seed"), [(24, 5, 0), (33, 9, 7), (17, 2, 123)])
def test_probabilities_equal_scikit_learns_forest(max_depth, n_rows, n_features, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    X[:, 0] = np.round(X[:, 0])  # ties between rows, as after SMOTE or on coarse features
    y = rng.integers(0, 2, n_rows)
    X_eval = np.vstack([rng.normal(size=(9, n_features)), X[:3]])
    forest = RandomForestClassifier(n_estimators=100, max_depth=max_depth, random_state=seed, n_jobs=1)
    assert reproduces(forest)
    expected = forest.fit(X, y).predict_proba(X_eval)
    got = forest_predict_proba(RandomForestClassifier(n_estimators=100, max_depth=max_depth, random_state=seed, n_jobs=1), X, y, X_eval)
    np.testing.assert_array_equal(got, expected)
    assert 0 < expected[:, 1].std()  # the trees differ: the comparison is not between constants


def test_other_settings_and_missing_values_go_to_scikit_learn():
    rng = np.random.default_rng(1)
    X, y, X_eval = rng.normal(size=(20, 4)), np.repeat([0, 1], 10), rng.normal(size=(5, 4))
    weighted = RandomForestClassifier(n_estimators=20, class_weight="balanced", random_state=0)
    unseeded = RandomForestClassifier(n_estimators=20)
    assert not reproduces(weighted) and not reproduces(unseeded)
    np.testing.assert_array_equal(forest_predict_proba(weighted, X, y, X_eval), RandomForestClassifier(n_estimators=20, class_weight="balanced", random_state=0).fit(X, y).predict_proba(X_eval))
    X[0, 0] = np.nan
    forest = RandomForestClassifier(n_estimators=20, random_state=0)
    np.testing.assert_array_equal(forest_predict_proba(forest, X, y, X_eval), RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y).predict_proba(X_eval))
