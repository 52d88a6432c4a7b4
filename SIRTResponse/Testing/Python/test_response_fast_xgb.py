"""The study's gradient-boosted trees: the same probabilities as XGBoost's scikit-learn classifier, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from SIRTResponseLib import fast_xgb
from SIRTResponseLib.fast_xgb import reproduces, xgb_predict_proba
from SIRTResponseLib.models import GRIDS, make_classifier
from xgboost import XGBClassifier


def _rows(n_rows: int, n_features: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    X[:, 0] = np.round(X[:, 0])  # ties, as on coarse features
    X[n_rows - n_rows // 4 :] = X[: n_rows // 4]  # duplicated rows, as after SMOTE
    y = (X[:, -1] + rng.normal(size=n_rows) > 0).astype(int)
    return X, y, np.vstack([rng.normal(size=(9, n_features)), X[:3]])


@pytest.mark.parametrize("max_depth", GRIDS["xgb"]["max_depth"])
@pytest.mark.parametrize(("n_rows", "n_features", "seed"), [(48, 5, 0), (24, 5, 7), (37, 3, 123), (60, 9, 4)])
def test_probabilities_equal_xgboosts_classifier(max_depth, n_rows, n_features, seed, monkeypatch):
    X, y, X_eval = _rows(n_rows, n_features, seed)
    model = make_classifier("xgb", seed).set_params(max_depth=max_depth)
    expected = make_classifier("xgb", seed).set_params(max_depth=max_depth).fit(X, y).predict_proba(X_eval)
    assert reproduces(model)
    monkeypatch.setattr(fast_xgb, "clone", None)  # the fallback cannot run: the native path is what is compared
    got = xgb_predict_proba(model, X, y, X_eval)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == expected.dtype and 0 < expected[:, 1].std()


def test_other_settings_and_labels_go_to_xgboost():
    X, y, X_eval = _rows(30, 4, 1)
    others = [
        XGBClassifier(n_estimators=20, subsample=0.7, random_state=0, n_jobs=1),
        XGBClassifier(n_estimators=20, tree_method="exact", n_jobs=1),
        XGBClassifier(n_estimators=20, booster="gblinear", n_jobs=1),
        XGBClassifier(n_estimators=20, early_stopping_rounds=3),
    ]
    for model in others:
        assert not reproduces(model)
    for model in others[:3]:
        np.testing.assert_array_equal(xgb_predict_proba(model, X, y, X_eval), model.fit(X, y).predict_proba(X_eval))
    with pytest.raises(ValueError, match="Invalid classes"):  # XGBoost's own error for labels 1/2
        xgb_predict_proba(XGBClassifier(n_estimators=5), X, y + 1, X_eval)
