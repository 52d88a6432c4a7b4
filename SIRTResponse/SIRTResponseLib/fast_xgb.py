"""XGBoost's scikit-learn classifier without its per-round Python overhead.

The study's gradient-boosted trees (``XGBClassifier``, 100 rounds) are fitted 30 times per model on a
few dozen rows. Each round of ``xgboost.train`` checks the feature names of the training matrix
again and runs the callback container around one native update of microseconds, and the wrapper
adds its label checks, parameter handling and a reset of the booster's caches: together about
as much again as the native work (1.9× per fit on the study's grid, ``bench/bench_fast_paths.py``). :func:`xgb_predict_proba` makes the native calls that
``XGBClassifier.fit`` / ``predict_proba`` make, in the same order, without that Python:

* the training matrix as ``XGBClassifier._create_dmatrix`` makes it (a ``QuantileDMatrix`` with the
  estimator's ``missing``, ``n_jobs`` and ``max_bin``, for the hist method);
* a ``Booster`` with ``get_xgb_params()`` and that matrix as its only cache, as ``xgboost.train``;
* ``XGBoosterUpdateOneIter`` for rounds 0 … n_estimators − 1, the call ``Booster.update`` makes;
* ``inplace_predict`` of the probability over all rounds, as ``XGBModel.predict``, and the two
  columns ``[1 − p, p]`` of ``predict_proba``.

The result is bitwise ``clone(model).fit(X, y).predict_proba(X_eval)`` (the tests compare them on
the study's grid). Written here, on XGBoost's ctypes binding, because XGBoost has no public
training loop without the per-round checks. Any other setting — a custom objective or metric,
callbacks, early stopping, another booster, tree method or device, categorical data, anything but
the number of rounds, learning rate, depth, threads, seed and metric — or labels other than 0/1 go
to ``XGBClassifier`` itself. It serves cross-validation only: exported models are
``XGBClassifier``\\ s.
"""

from __future__ import annotations

import ctypes

import numpy as np
from sklearn.base import clone
from xgboost import Booster, QuantileDMatrix, XGBClassifier
from xgboost.core import _LIB, _check_call

_DEFAULTS = XGBClassifier().get_params()
# The settings of the study's grid, which the tests cover; any other differing from its default goes to XGBoost.
_REPRODUCED = {"n_estimators", "learning_rate", "max_depth", "n_jobs", "random_state", "eval_metric"}


def reproduces(model: XGBClassifier) -> bool:
    """Whether :func:`xgb_predict_proba` trains this classifier itself (else ``XGBClassifier`` does)."""
    if type(model) is not XGBClassifier:
        return False
    params = model.get_params()
    others = all(params[k] is _DEFAULTS[k] or params[k] == _DEFAULTS[k] for k in params if k not in _REPRODUCED)
    return others and isinstance(params["eval_metric"], (str, type(None))) and isinstance(params["n_estimators"], int)


def xgb_predict_proba(model: XGBClassifier, X: np.ndarray, y: np.ndarray, X_eval: np.ndarray) -> np.ndarray:
    """``clone(model).fit(X, y).predict_proba(X_eval)``, bitwise, at a fraction of the cost."""
    y = np.asarray(y)
    if not reproduces(model) or y.ndim != 1 or not np.array_equal(np.unique(y), [0, 1]):
        return clone(model).fit(X, y).predict_proba(X_eval)
    train = QuantileDMatrix(X, label=y, missing=model.missing, nthread=model.n_jobs, max_bin=model.max_bin)  # fit's own matrix
    booster = Booster(model.get_xgb_params(), [train])
    for iteration in range(model.n_estimators):
        _check_call(_LIB.XGBoosterUpdateOneIter(booster.handle, ctypes.c_int(iteration), train.handle))
    positive = booster.inplace_predict(X_eval, iteration_range=(0, 0), predict_type="value", missing=model.missing)
    return np.vstack((1.0 - positive, positive)).transpose()
