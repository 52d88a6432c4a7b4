"""The plain nested cross-validation of one model, for checking the shared-work version against it.

Each outer fold runs scikit-learn's ``GridSearchCV`` over the whole pipeline of
:func:`SIRTResponseLib.models.build_pipeline` (every step refitted for every candidate and split),
exactly as the study did before the work shared between classifiers was factored out
(:mod:`SIRTResponseLib.nested_cv`). Used by the tests and by ``bench/bench_study.py --reference``.
"""

from __future__ import annotations

import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from ..models import selected_features
from ..nested_cv import outer_splits
from ..study import StudyConfig, fit_model


def reference_nested_cv(selector: str, classifier: str, X: np.ndarray, y: np.ndarray, groups, feature_names: list[str], config: StudyConfig):
    """Out-of-fold probabilities, chosen hyper-parameters and selected features of one model."""
    scores = np.full(len(y), np.nan)
    params, selected = [], []
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        for fold, (train, test) in enumerate(outer_splits(config, y, groups)):
            model, best = fit_model(selector, classifier, X[train], y[train], groups[train] if groups is not None else None, config, config.seed + 1 + fold)
            scores[test] = model.predict_proba(X[test])[:, 1]
            params.append(best)
            selected.append(selected_features(model, feature_names))
    return scores, params, selected
