"""Nested cross-validation of every classifier of one (strategy, selector), sharing the per-fold work.

A model of the study is the pipeline of :func:`.models.build_pipeline`::

    impute → Spearman redundancy filter → z-score → select k → SMOTE → classifier

evaluated by nested cross-validation: outer folds (:func:`outer_splits`), and in each outer
training part a grid search over the classifier's grid with inner folds (:func:`inner_splits`),
scored by ROC AUC, then a refit of the best candidate on the whole outer training part.

Everything before the classifier depends only on the rows, the selector and *k* — not on the
classifier or its hyper-parameters. Fitting it once per (outer fold, inner split or refit, *k*)
and reusing it for every classifier and grid point gives the same numbers as refitting the whole
pipeline for every candidate (scikit-learn's ``GridSearchCV``), at a fraction of the cost: the
study's 8 classifiers × 2–4 grid points share one preprocessing and one selection per split
instead of repeating them 20 times. The shared steps are memoised with ``joblib.Memory`` in the
study folder, so a resumed or extended study (another classifier, another strategy with the same
columns) reuses them too.

Equality with ``GridSearchCV`` is by construction and is tested: the candidates are visited in
``ParameterGrid`` order, each split is scored as scikit-learn's ``roc_auc`` scorer does (decision
function when the classifier has one, else probabilities), candidates are ranked by their mean
score with ties going to the first, and the refit sees the whole outer training part. The fits and
the AUC go through :mod:`.cv_fits`, bitwise scikit-learn's numbers without its per-call overhead.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
from sklearn.model_selection import ParameterGrid, StratifiedGroupKFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from .cv_fits import positive_probability, roc_auc, validation_scores
from .features import selector_k_parameter
from .models import param_grid, preprocessing_steps, selection_steps

if TYPE_CHECKING:
    from joblib import Memory


class CVSettings(Protocol):
    """The settings of :class:`.study.StudyConfig` that the cross-validation reads."""

    n_features: tuple[int, ...]
    outer_folds: int
    inner_folds: int
    seed: int
    redundancy_threshold: float
    smote: bool
    smote_k: int

def outer_splits(config: CVSettings, y: np.ndarray, groups: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
    if groups is None:
        splitter = StratifiedKFold(config.outer_folds, shuffle=True, random_state=config.seed)
        return list(splitter.split(np.zeros(len(y)), y))
    splitter = StratifiedGroupKFold(config.outer_folds, shuffle=True, random_state=config.seed)
    return list(splitter.split(np.zeros(len(y)), y, groups))


def inner_splits(config: CVSettings, y: np.ndarray, groups: np.ndarray | None, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified inner folds; fewer than ``inner_folds`` when the minority class is smaller."""
    if groups is None:
        minority = int(np.bincount(y).min())
    else:
        minority = min(len(np.unique(groups[y == label])) for label in (0, 1))
    n_splits = min(config.inner_folds, minority)
    if n_splits < 2:
        raise ValueError(f"a training fold has {minority} row(s) of one class; inner cross-validation needs 2")
    if groups is None:
        return list(StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    return list(StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))


@dataclass(frozen=True)
class PreparedSplit:
    """One split after the shared steps: what the classifier is fitted on and what it is scored on."""

    fit_X: np.ndarray  # selected features of the fit rows, after SMOTE
    fit_y: np.ndarray
    eval_X: np.ndarray  # selected features of the evaluation rows
    columns: np.ndarray  # indices of the selected input columns, in column order


def _apply_steps(steps, X_fit, y_fit, X_eval) -> PreparedSplit:
    """Fit unfitted pipeline steps on the fit rows as ``Pipeline.fit`` does, and apply them to both parts."""
    columns = np.arange(X_fit.shape[1])
    for name, step in steps:
        if name == "smote":
            X_fit, y_fit = step.fit_resample(X_fit, y_fit)
            continue
        X_fit = step.fit(X_fit, y_fit).transform(X_fit)
        X_eval = step.transform(X_eval)
        if hasattr(step, "get_support"):
            columns = columns[step.get_support()]
    return PreparedSplit(np.asarray(X_fit), np.asarray(y_fit), np.asarray(X_eval), columns)


def preprocess_split(X_fit, y_fit, X_eval, redundancy_threshold: float) -> PreparedSplit:
    """Imputation, redundancy filter and z-score fitted on the fit rows, applied to both parts."""
    return _apply_steps(preprocessing_steps(redundancy_threshold), X_fit, y_fit, X_eval)


def select_split(X_fit, y_fit, X_eval, selector: str, k: int, smote: bool, smote_k: int, seed: int) -> PreparedSplit:
    """Selection of ``k`` features (and SMOTE of the fit rows) on preprocessed rows."""
    return _apply_steps(selection_steps(selector, n_features=k, smote=smote, smote_k=smote_k, seed=seed), X_fit, y_fit, X_eval)


@dataclass
class ClassifierFolds:
    """What one classifier did over the outer folds (out-of-fold scores in row order)."""

    scores: np.ndarray
    folds: np.ndarray
    best_params: list[dict] = field(default_factory=list)
    selected_columns: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time: what the folds cost without other work on the machine
    n_warnings: int = 0
    error: str = ""


def _k_of(candidate: dict, selector: str, default: int) -> int:
    return candidate.get(f"select__{selector_k_parameter(selector)}", default)


def _classifier_params(candidate: dict) -> dict:
    return {k.removeprefix("classifier__"): v for k, v in candidate.items() if k.startswith("classifier__")}


def nested_cv_group(
    selector: str,
    classifiers: tuple[str, ...],
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None,
    config: CVSettings,
    memory: Memory | None = None,
) -> tuple[dict[str, ClassifierFolds], float, float]:
    """Nested CV of every classifier with one selector on these rows.

    Returns ``(results per classifier, seconds and CPU seconds of the shared steps)``; warnings of the shared steps
    are counted for every classifier. A classifier that fails gets its ``error``; a failure of the
    shared steps (or of the splits) fails all of them.
    """
    preprocess = memory.cache(preprocess_split) if memory is not None else preprocess_split
    select = memory.cache(select_split) if memory is not None else select_split
    results = {c: ClassifierFolds(np.full(len(y), np.nan), np.full(len(y), -1)) for c in classifiers}
    grids = {c: param_grid(selector, c, config.n_features) for c in classifiers}
    ks = sorted(set(config.n_features)) if len(config.n_features) > 1 else [config.n_features[0]]
    shared_seconds = shared_cpu_seconds = 0.0
    with warnings.catch_warnings(record=True) as shared_warnings, threadpool_limits(1):
        warnings.simplefilter("always")
        try:
            for fold, (train, test) in enumerate(outer_splits(config, y, groups)):
                start, cpu_start = time.perf_counter(), time.process_time()
                X_train, y_train = X[train], y[train]
                parts = [(X_train, y_train, X[test], None)]  # the refit part first, then the inner splits
                if any(grids.values()):
                    inner = inner_splits(config, y_train, groups[train] if groups is not None else None, config.seed + 1 + fold)
                    parts += [(X_train[fit], y_train[fit], X_train[val], y_train[val]) for fit, val in inner]
                prepared = {}
                for p, (fit_X, fit_y, eval_X, _) in enumerate(parts):
                    pre = preprocess(fit_X, fit_y, eval_X, config.redundancy_threshold)
                    for k in ks:
                        chosen = select(pre.fit_X, fit_y, pre.eval_X, selector, k, config.smote, config.smote_k, config.seed)
                        prepared[p, k] = PreparedSplit(chosen.fit_X, chosen.fit_y, chosen.eval_X, pre.columns[chosen.columns])
                shared_seconds += time.perf_counter() - start
                shared_cpu_seconds += time.process_time() - cpu_start
                validation = [part[3] for part in parts[1:]]
                for name in classifiers:
                    _fold(name, selector, grids[name], prepared, validation, config, results[name], fold, test)
        except Exception as exc:  # the shared steps failed: every model of the group failed
            for result in results.values():
                result.error = result.error or f"{type(exc).__name__}: {exc}"
    for result in results.values():
        result.n_warnings += len(shared_warnings)
    return results, shared_seconds, shared_cpu_seconds


def _best_candidate(means: np.ndarray) -> int:
    """GridSearchCV's choice: the highest mean score, ties to the first, NaN ranked last."""
    if np.isnan(means).all():
        return 0
    return int(np.argmax(np.nan_to_num(means, nan=np.nanmin(means) - 1)))


def _fold(name: str, selector: str, grid: dict, prepared: dict, validation: list, config: CVSettings, result: ClassifierFolds, fold: int, test: np.ndarray) -> None:
    """One outer fold of one classifier: grid search on the inner splits, refit, predict the test rows."""
    if result.error:
        return
    start, cpu_start = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            best: dict = {}
            if grid:
                candidates = list(ParameterGrid(grid))
                means = []
                for candidate in candidates:
                    k = _k_of(candidate, selector, config.n_features[0])
                    params = _classifier_params(candidate)
                    split_scores = []
                    for part, y_val in enumerate(validation, start=1):
                        split = prepared[part, k]
                        split_scores.append(roc_auc(y_val, validation_scores(name, params, split.fit_X, split.fit_y, split.eval_X, config.seed)))
                    means.append(np.average(split_scores))
                best = candidates[_best_candidate(np.array(means))]
            refit = prepared[0, _k_of(best, selector, config.n_features[0])]
            result.scores[test] = positive_probability(name, _classifier_params(best), refit.fit_X, refit.fit_y, refit.eval_X, config.seed)
            result.folds[test] = fold
            result.best_params.append(best)
            result.selected_columns.append(refit.columns)
        except Exception as exc:  # a model that cannot be fitted is a result, not a crash of the study
            result.error = f"{type(exc).__name__}: {exc}"
    result.n_warnings += len(caught)
    result.seconds += time.perf_counter() - start
    result.cpu_seconds += time.process_time() - cpu_start
