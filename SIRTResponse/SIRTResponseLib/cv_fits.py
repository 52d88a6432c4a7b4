"""One classifier on one split of the study's cross-validation: its validation AUC and its probabilities.

The study fits 30 classifiers per model (3 outer folds × (3 inner splits × grid + refit)) on a
few dozen rows, 43,200 fits in the full design. At that size scikit-learn's per-call Python
overhead — input validation, cloning, joblib, the scorer's target-type checks — costs far more
than the arithmetic: ``roc_auc_score`` alone takes about 3 ms on 12 rows, longer than fitting a
tree. This module gives the same numbers as scikit-learn's ``roc_auc`` scorer and ``predict_proba``
without that overhead:

- :func:`roc_auc` is ``roc_auc_score`` for 0/1 labels, bitwise: the same ROC points (scores sorted
  descending, one point per distinct score, collinear points dropped as ``roc_curve``'s
  ``drop_intermediate``), the same rates and numpy's own trapezoid.
- :func:`validation_scores` is what the ``roc_auc`` scorer ranks: the decision function where the
  fitted classifier has one, else the probability of response.
- The random forest, the Platt-calibrated SVM, the MLP and XGBoost are fitted by their exact fast
  paths (:mod:`.fast_forest`, :mod:`.fast_svm`, :mod:`.fast_mlp`, :mod:`.fast_xgb`); the others by
  scikit-learn.

Written here because scikit-learn offers no validation-free entry points; the tests compare every
path bitwise with scikit-learn's scorer and estimators, so a library change that breaks the
equality fails them.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning

from .fast_forest import forest_predict_proba
from .fast_mlp import fit_mlp
from .fast_svm import calibrated_svc_proba
from .fast_xgb import xgb_predict_proba
from .models import make_classifier


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for labels 0/1 (1 = response); ``roc_auc_score``'s value, bitwise.

    NaN with an ``UndefinedMetricWarning`` when only one class is present, as scikit-learn does.
    """
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    if np.unique(y_true).size != 2:
        warnings.warn("Only one class is present in y_true. ROC AUC score is not defined in that case.", UndefinedMetricWarning, stacklevel=2)
        return np.nan
    order = np.argsort(scores, kind="stable")[::-1]  # ties in any order: only whole tied blocks become ROC points
    distinct = np.nonzero(np.diff(scores[order]))[0]
    thresholds = np.r_[distinct, scores.size - 1]
    tps = np.cumsum((y_true[order] == y_true.max()).astype(np.float64))[thresholds]
    fps = 1 + thresholds.astype(np.float64) - tps
    if fps.shape[0] > 2:  # roc_curve(drop_intermediate=True): keep the corners only
        corners = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        fps, tps = fps[corners], tps[corners]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    return float(np.trapezoid(tps / tps[-1], fps / fps[-1]))


def _mlp_predict_proba(model, X_fit: np.ndarray, y_fit: np.ndarray, X_eval: np.ndarray) -> np.ndarray:
    return fit_mlp(model, X_fit, y_fit).predict_proba(X_eval)


# ``clone(model).fit(X_fit, y_fit).predict_proba(X_eval)``, bitwise, for the classifiers with a fast path.
_FAST_PREDICT_PROBA = {"rf": forest_predict_proba, "svm": calibrated_svc_proba, "xgb": xgb_predict_proba, "mlp": _mlp_predict_proba}


def _probability(name: str, model, X_fit: np.ndarray, y_fit: np.ndarray, X_eval: np.ndarray) -> np.ndarray:
    fast = _FAST_PREDICT_PROBA.get(name)
    proba = fast(model, X_fit, y_fit, X_eval) if fast is not None else model.fit(X_fit, y_fit).predict_proba(X_eval)
    return proba[:, 1]


def positive_probability(name: str, params: dict, X_fit: np.ndarray, y_fit: np.ndarray, X_eval: np.ndarray, seed: int) -> np.ndarray:
    """The probability of response of the evaluation rows, from classifier ``name`` with ``params`` fitted on the fit rows."""
    return _probability(name, make_classifier(name, seed).set_params(**params), X_fit, y_fit, X_eval)


def validation_scores(name: str, params: dict, X_fit: np.ndarray, y_fit: np.ndarray, X_eval: np.ndarray, seed: int) -> np.ndarray:
    """What scikit-learn's ``roc_auc`` scorer ranks: the decision function where the classifier has one, else P(response)."""
    model = make_classifier(name, seed).set_params(**params)  # a new, unfitted estimator each call
    if hasattr(model, "decision_function"):
        return model.fit(X_fit, y_fit).decision_function(X_eval)
    return _probability(name, model, X_fit, y_fit, X_eval)
