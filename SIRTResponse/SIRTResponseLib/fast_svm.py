"""Platt-calibrated probabilities of scikit-learn's RBF SVM without its per-call overhead.

The study's SVM is ``CalibratedClassifierCV(SVC(kernel="rbf", C=C, random_state=seed),
method="sigmoid", cv=3, ensemble=False)``: the sigmoid is fitted on the out-of-fold decision values
of three SVMs and applied to those of an SVM on all rows. On a few dozen rows libsvm itself takes
microseconds; nearly all of the ~10 ms per fit is scikit-learn's Python around it (parameter and
input validation of every SVC, ``cross_val_predict`` with joblib and cloning, label encoders).
:func:`calibrated_svc_proba` makes the same calls to libsvm that ``SVC._dense_fit`` and
``SVC._dense_decision_function`` make, on the same arrays:

* the folds of ``StratifiedKFold(cv)`` (no shuffle), which ``check_cv`` makes for binary labels;
* per fold an SVC on the training rows, with ``gamma="scale"`` = 1 / (n_features · Var(X_fold))
  (1 when the variance is 0), the seed ``RandomState(random_state).randint(2**31 - 1)`` and
  ``class_weight_`` of ones, whose decision values, sign-flipped as scikit-learn does for two
  classes, fill the out-of-fold column;
* scikit-learn's own ``_sigmoid_calibration`` (Platt's sigmoid by L-BFGS-B) on that column and
  the labels, then the SVC on all rows, P(1) = expit(-(a·f + b)), P(0) = 1 - P(1) and the same
  clipping of values a hair above 1 as ``_CalibratedClassifier.predict_proba``.

The result is bitwise ``clone(model).fit(X, y).predict_proba(X_eval)`` (the tests compare them over
the study's grid, seeds and shapes, with ties, unbalanced classes and a constant feature). It is
written here, on scikit-learn's private libsvm binding, because no library offers the calibrated
SVM without the overhead. Any other setting (another kernel or SVC parameter than ``C`` and an
integer ``random_state``, isotonic or ensemble calibration, a splitter object as ``cv``), labels
other than two integer classes with at least ``cv`` rows each, non-float64, non-finite or sparse
inputs, or a scikit-learn without these private parts goes to scikit-learn itself — which also
raises its own errors. It serves cross-validation only: exported models are scikit-learn's.
"""

from __future__ import annotations

from functools import lru_cache
from numbers import Integral

import numpy as np
from scipy.special import expit
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import SVC

try:  # private parts of scikit-learn; without them every call goes to the estimator
    from sklearn.calibration import _sigmoid_calibration
    from sklearn.svm import _libsvm as libsvm
    from sklearn.svm._base import LIBSVM_IMPL

    _C_SVC = LIBSVM_IMPL.index("c_svc")
except (ImportError, ValueError):
    _C_SVC = None

_SVC_DEFAULTS = SVC().get_params()
_REPRODUCED = ("C", "random_state")


def reproduces(model: CalibratedClassifierCV) -> bool:
    """Whether :func:`calibrated_svc_proba` computes this model itself (else scikit-learn does)."""
    svc = model.estimator
    if _C_SVC is None or type(model) is not CalibratedClassifierCV or type(svc) is not SVC:
        return False
    cv = model.cv
    if model.method != "sigmoid" or model.ensemble is not False or isinstance(cv, bool) or not isinstance(cv, Integral) or cv < 2:
        return False
    params = svc.get_params()
    defaults = all(params[k] == _SVC_DEFAULTS[k] for k in params if k not in _REPRODUCED)
    return defaults and isinstance(params["random_state"], Integral) and not isinstance(params["random_state"], bool)


def _reproducible_data(X, y, X_eval, n_folds: int) -> bool:
    arrays = all(isinstance(a, np.ndarray) and a.dtype == np.float64 and a.ndim == 2 for a in (X, X_eval))
    if not (arrays and isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind in "biu" and len(y) == len(X)):
        return False
    counts = np.unique(y, return_counts=True)[1]
    finite = np.isfinite(X).all() and np.isfinite(X_eval).all()
    return len(counts) == 2 and counts.min() >= n_folds and X.shape[1] == X_eval.shape[1] and bool(finite)


@lru_cache(maxsize=64)
def _libsvm_seed(random_state: int) -> int:
    """The seed ``BaseLibSVM.fit`` draws for libsvm (made once per ``random_state``: a RandomState costs ~0.2 ms)."""
    return int(np.random.RandomState(random_state).randint(np.iinfo("i").max))


def _stratified_test_folds(y_encoded: np.ndarray, n_folds: int) -> np.ndarray:
    """``StratifiedKFold(n_folds)._make_test_folds`` (no shuffle) for labels 0/1: each row's test fold.

    Classes are numbered by first appearance; fold sizes per class come from dealing the sorted
    labels round robin, and each class's rows get the folds in blocks, in row order.
    """
    first = y_encoded[0]
    by_appearance = (y_encoded != first).astype(np.intp)
    y_order = np.sort(by_appearance)
    allocation = np.asarray([np.bincount(y_order[i::n_folds], minlength=2) for i in range(n_folds)])
    test_folds = np.empty(len(y_encoded), dtype="i")
    for k in range(2):
        test_folds[by_appearance == k] = np.arange(n_folds).repeat(allocation[:, k])
    return test_folds


class _LibSVM:
    """One SVC's libsvm model, fitted and evaluated with the arguments ``SVC`` passes."""

    def __init__(self, svc: SVC, X: np.ndarray, y01: np.ndarray):
        self.svc = svc
        X_var = X.var()
        self.gamma = 1.0 / (X.shape[1] * X_var) if X_var != 0 else 1.0  # gamma="scale"
        *self.model, fit_status, _ = libsvm.fit(
            X, y01, svm_type=_C_SVC, sample_weight=np.empty(0), class_weight=np.ones(2), kernel=svc.kernel, C=svc.C,
            nu=svc.nu, probability=False, degree=svc.degree, shrinking=svc.shrinking, tol=svc.tol,
            cache_size=svc.cache_size, coef0=svc.coef0, gamma=self.gamma, epsilon=svc.epsilon, max_iter=svc.max_iter,
            random_seed=_libsvm_seed(svc.random_state),
        )  # fmt: skip
        dual_coef, intercept = self.model[3], self.model[4]
        self.usable = fit_status == 0 and np.isfinite(dual_coef).all() and np.isfinite(intercept).all()

    def decision(self, X: np.ndarray) -> np.ndarray:
        """``SVC.decision_function`` for two classes: libsvm's value with its sign flipped."""
        svc = self.svc
        values = libsvm.decision_function(
            X, *self.model, svm_type=_C_SVC, kernel=svc.kernel, degree=svc.degree, cache_size=svc.cache_size,
            coef0=svc.coef0, gamma=self.gamma,
        )  # fmt: skip
        return -values.ravel()


def calibrated_svc_proba(model: CalibratedClassifierCV, X: np.ndarray, y: np.ndarray, X_eval: np.ndarray) -> np.ndarray:
    """``clone(model).fit(X, y).predict_proba(X_eval)``, bitwise, at a fraction of the cost."""
    proba = None
    if reproduces(model) and _reproducible_data(X, y, X_eval, model.cv):
        proba = _libsvm_proba(model, X, y, X_eval)
    return clone(model).fit(X, y).predict_proba(X_eval) if proba is None else proba


def _libsvm_proba(model: CalibratedClassifierCV, X: np.ndarray, y: np.ndarray, X_eval: np.ndarray) -> np.ndarray | None:
    """The probabilities from libsvm and the sigmoid fit; ``None`` where an SVC would raise (a non-finite model)."""
    svc = model.estimator
    X = np.ascontiguousarray(X)  # SVC's own conversion (order="C"); the variance is taken after it
    X_eval = np.ascontiguousarray(X_eval)
    y_encoded = np.unique(y, return_inverse=True)[1]  # 1 = the second class, as label_binarize
    y01 = y_encoded.astype(np.float64)
    test_folds = _stratified_test_folds(y_encoded, model.cv)
    out_of_fold = np.empty(len(X))
    libsvm.set_verbosity_wrap(svc.verbose)
    for fold in range(model.cv):
        test = test_folds == fold
        fold_svm = _LibSVM(svc, X[~test], y01[~test])
        if not fold_svm.usable:
            return None
        out_of_fold[test] = fold_svm.decision(X[test])
    final_svm = _LibSVM(svc, X, y01)
    if not final_svm.usable:
        return None
    a, b = _sigmoid_calibration(out_of_fold, y_encoded)
    proba = np.zeros((len(X_eval), 2))
    proba[:, 1] = expit(-(a * final_svm.decision(X_eval) + b))
    proba[:, 0] = 1.0 - proba[:, 1]
    proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
    return proba
