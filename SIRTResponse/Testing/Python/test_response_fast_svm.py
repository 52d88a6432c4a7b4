"""The study's calibrated SVM: the same probabilities as scikit-learn's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC

from SIRTResponseLib.fast_svm import _libsvm_proba, _stratified_test_folds, calibrated_svc_proba, reproduces
from SIRTResponseLib.models import GRIDS, make_classifier


def _data(n_rows: int, n_features: int, seed: int, *, minority: float = 0.5, duplicates: int = 0, constant: bool = False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    X[:, 0] = np.round(X[:, 0])  # ties on a coarse feature
    y = (rng.permutation(n_rows) < round(minority * n_rows)).astype(int)
    if duplicates:  # repeated rows, as SMOTE's synthetic rows next to their neighbours
        X = np.vstack([X, X[:duplicates]])
        y = np.concatenate([y, y[:duplicates]])
    if constant:
        X[:, -1] = 0.7
    X_eval = np.vstack([rng.normal(size=(9, n_features)), X[:3]])
    return X, y, X_eval


def _expected(model, X, y, X_eval):
    return clone(model).fit(X, y).predict_proba(X_eval)


def _assert_libsvm_path_equal(model, X, y, X_eval):
    """The probabilities that libsvm's path itself gives (no fallback) equal scikit-learn's; returns them."""
    expected = _expected(model, X, y, X_eval)
    assert reproduces(model)
    direct = _libsvm_proba(model, X, y, X_eval)
    assert direct is not None
    np.testing.assert_array_equal(direct, expected)
    np.testing.assert_array_equal(calibrated_svc_proba(model, X, y, X_eval), expected)
    return expected


CASES = {
    "balanced 48x5": dict(n_rows=48, n_features=5, seed=0),
    "smote-like duplicates": dict(n_rows=36, n_features=5, seed=1, duplicates=12),
    "unbalanced 1:3": dict(n_rows=40, n_features=5, seed=2, minority=0.25),
    "constant feature": dict(n_rows=30, n_features=4, seed=3, constant=True),
    "small 24x2": dict(n_rows=24, n_features=2, seed=7, minority=0.4),
    "wide 50x9": dict(n_rows=50, n_features=9, seed=123),
}


@pytest.mark.parametrize("C", GRIDS["svm"]["estimator__C"])
@pytest.mark.parametrize("case", CASES)
def test_probabilities_equal_scikit_learns_calibrated_svm(case, C):
    X, y, X_eval = _data(**CASES[case])
    model = make_classifier("svm", CASES[case]["seed"]).set_params(estimator__C=C)  # the study's model
    expected = _assert_libsvm_path_equal(model, X, y, X_eval)
    assert 0 < expected[:, 1].std()  # the SVMs differ between rows: the comparison is not between constants


@pytest.mark.parametrize("labels", [(1, 2), (True, False), (5, 0)])
def test_other_integer_labels_and_label_order(labels):
    X, y01, X_eval = _data(33, 5, 11, minority=0.4)
    y = np.where(y01 == 1, labels[0], labels[1])
    if y.dtype != bool:
        y = y.astype(np.int64)
    model = CalibratedClassifierCV(SVC(C=1.0, random_state=4), method="sigmoid", cv=3, ensemble=False)
    _assert_libsvm_path_equal(model, X, y, X_eval)


def test_all_features_constant_and_other_fold_counts():
    X, y, X_eval = _data(30, 3, 5)
    for cv in (2, 4):
        model = CalibratedClassifierCV(SVC(C=10.0, random_state=1), method="sigmoid", cv=cv, ensemble=False)
        _assert_libsvm_path_equal(model, X, y, X_eval)
    flat = np.ones_like(X)  # variance 0: gamma="scale" falls back to 1
    model = CalibratedClassifierCV(SVC(C=1.0, random_state=1), method="sigmoid", cv=3, ensemble=False)
    _assert_libsvm_path_equal(model, flat, y, X_eval)


@pytest.mark.parametrize("first_label", [0, 1])
def test_folds_are_stratified_k_fold(first_label):
    y = (np.random.default_rng(first_label).random(29) < 0.3).astype(int)
    y[0] = first_label
    folds = _stratified_test_folds(y, 3)
    for fold, (_, test) in enumerate(StratifiedKFold(3).split(np.zeros(len(y)), y)):
        np.testing.assert_array_equal(np.flatnonzero(folds == fold), test)


SVM = dict(method="sigmoid", cv=3, ensemble=False)
OTHER_MODELS = {
    "isotonic": CalibratedClassifierCV(SVC(random_state=0), method="isotonic", cv=3, ensemble=False),
    "ensemble": CalibratedClassifierCV(SVC(random_state=0), method="sigmoid", cv=3, ensemble=True),
    "auto ensemble": CalibratedClassifierCV(SVC(random_state=0), method="sigmoid", cv=3),
    "splitter as cv": CalibratedClassifierCV(SVC(random_state=0), method="sigmoid", cv=StratifiedKFold(3), ensemble=False),
    "linear kernel": CalibratedClassifierCV(SVC(kernel="linear", random_state=0), **SVM),
    "gamma": CalibratedClassifierCV(SVC(gamma=0.5, random_state=0), **SVM),
    "class weight": CalibratedClassifierCV(SVC(class_weight="balanced", random_state=0), **SVM),
    "unseeded": CalibratedClassifierCV(SVC(), **SVM),
}


@pytest.mark.parametrize("name", OTHER_MODELS)
def test_other_settings_go_to_scikit_learn(name):
    model = OTHER_MODELS[name]
    assert not reproduces(model)
    X, y, X_eval = _data(30, 4, 9)
    np.testing.assert_array_equal(calibrated_svc_proba(model, X, y, X_eval), _expected(model, X, y, X_eval))


def test_other_inputs_go_to_scikit_learn():
    model = make_classifier("svm", 0)
    X, y, X_eval = _data(30, 4, 9)
    _assert_libsvm_path_equal(model, np.asfortranarray(X), y, X_eval)  # SVC makes it C-ordered, as the fast path does
    for X_other, y_other in ((X.astype(np.float32), y), (X, y.astype(float))):
        np.testing.assert_array_equal(calibrated_svc_proba(model, X_other, y_other, X_eval), _expected(model, X_other, y_other, X_eval))
    three_classes = y + (np.arange(len(y)) % 3 == 0)
    np.testing.assert_array_equal(calibrated_svc_proba(model, X, three_classes, X_eval), _expected(model, X, three_classes, X_eval))
    y_two_positive = np.zeros_like(y)
    y_two_positive[:2] = 1
    with pytest.raises(ValueError, match="Requesting 3-fold"):  # scikit-learn's own error
        calibrated_svc_proba(model, X, y_two_positive, X_eval)
    X_missing = X.copy()
    X_missing[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        calibrated_svc_proba(model, X_missing, y, X_eval)
