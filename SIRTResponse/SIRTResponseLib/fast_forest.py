"""Probabilities of scikit-learn's random forest without its per-tree Python overhead.

Inside the study a forest of 100 trees is fitted 21 times per model on a few dozen rows.
``RandomForestClassifier`` spends about 1–2 ms per tree in Python (cloning, parameter validation,
input checks of every tree) and only microseconds building it, so the forest was 40–60 % of the
study's compute. :func:`forest_predict_proba` builds the same trees with scikit-learn's own tree
builder — the Cython classes that ``DecisionTreeClassifier._fit`` uses — drawing the per-tree seeds
(``RandomState(random_state).randint(2**31 - 1)``, one per tree, as ``BaseEnsemble._make_estimator``)
and the bootstrap counts (``RandomState(tree seed).randint(0, n, n)``, as
``_generate_sample_indices``) exactly as ``RandomForestClassifier.fit`` does, and sums the trees'
probabilities in tree order before dividing by their number, as ``predict_proba`` does. The result
is bitwise that of ``RandomForestClassifier(...).fit(X, y).predict_proba(X_eval)`` (the tests
compare them on the study's grid, with and without a depth limit).

It is written here, on scikit-learn's private tree classes, because no library offers the forest
without the per-tree overhead; a forest with any other setting than ``n_estimators``,
``max_depth`` and an integer ``random_state`` (the study's grid), or inputs with missing values,
goes to scikit-learn's forest itself. It serves cross-validation only: exported models are
scikit-learn forests.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree._classes import CRITERIA_CLF, DENSE_SPLITTERS
from sklearn.tree._tree import DepthFirstTreeBuilder, Tree

_MAX_INT = np.iinfo(np.int32).max
_DEFAULTS = RandomForestClassifier().get_params()
_REPRODUCED = ("n_estimators", "max_depth", "random_state", "n_jobs", "verbose")


def reproduces(forest: RandomForestClassifier) -> bool:
    """Whether :func:`forest_predict_proba` builds this forest's trees itself (else scikit-learn does)."""
    params = forest.get_params()
    defaults = all(params[k] == _DEFAULTS[k] for k in params if k not in _REPRODUCED)
    return type(forest) is RandomForestClassifier and defaults and isinstance(params["random_state"], (int, np.integer))


def forest_predict_proba(forest: RandomForestClassifier, X: np.ndarray, y: np.ndarray, X_eval: np.ndarray) -> np.ndarray:
    """``clone(forest).fit(X, y).predict_proba(X_eval)``, bitwise, at a fraction of the cost."""
    if not reproduces(forest) or not (np.isfinite(X).all() and np.isfinite(X_eval).all()):
        return clone(forest).fit(X, y).predict_proba(X_eval)
    X = np.ascontiguousarray(X, dtype=np.float32)  # the forest's own conversion (validate_data, float32)
    X_eval = np.ascontiguousarray(X_eval, dtype=np.float32)
    classes, encoded = np.unique(y, return_inverse=True)
    y_fit = encoded.astype(np.float64).reshape(-1, 1)
    n_classes = np.array([len(classes)], dtype=np.intp)
    n_rows, n_features = X.shape
    max_features = max(1, int(np.sqrt(n_features)))  # max_features="sqrt"
    max_depth = _MAX_INT if forest.max_depth is None else forest.max_depth
    seeds = np.random.RandomState(forest.random_state)
    # One generator reseeded per use: RandomState(seed) and RandomState().seed(seed) give the same
    # stream, and reseeding costs 2 µs where making a RandomState costs 0.2 ms (most of a tree's time).
    draws = np.random.RandomState(0)
    proba = np.zeros((len(X_eval), len(classes)))
    for _ in range(forest.n_estimators):
        seed = seeds.randint(_MAX_INT)
        draws.seed(seed)
        counts = np.bincount(draws.randint(0, n_rows, n_rows), minlength=n_rows).astype(np.float64)
        draws.seed(seed)
        criterion = CRITERIA_CLF["gini"](1, n_classes)
        # criterion, max_features, min_samples_leaf, min_weight_leaf, random_state, monotonic_cst
        splitter = DENSE_SPLITTERS["best"](criterion, max_features, 1, 0.0, draws, None)
        tree = Tree(n_features, n_classes, 1)
        # splitter, min_samples_split, min_samples_leaf, min_weight_leaf, max_depth, min_impurity_decrease
        DepthFirstTreeBuilder(splitter, 2, 1, 0.0, max_depth, 0.0).build(tree, X, y_fit, counts, None)
        proba += tree.predict(X_eval)[:, : len(classes)]
    proba /= forest.n_estimators
    return proba
