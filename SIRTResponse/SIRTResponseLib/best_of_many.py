"""Study-level statistics of the best of many models: what chance gives, and an honest interval.

A study fits hundreds of models and reports the best. Its AUC is the maximum of many noisy,
correlated estimates, so it is optimistic, and a permutation test of the chosen model alone does
not account for the choice.

**Study-level null and p-value**: the whole search — every strategy, selector and classifier,
nested cross-validation included — is rerun on permuted labels, and the best AUC of each rerun is
one draw of the null distribution of "the best of this study" (:func:`.study.study_null`). Its
p-value is sequential (Besag & Clifford 1991, *Biometrika* 78:301–304): permutations are run until
``stop_after`` of them reach the observed best (then p = stop_after / permutations run) or until
``max_permutations`` (then p = (1 + reached) / (1 + permutations)). A best that chance reaches
easily costs about ``stop_after / p`` reruns; only a best that chance rarely reaches pays for all
``max_permutations`` — and that is where the precision is needed. With the default 99 the smallest
p is 0.01, never floored at 0.05.

Holding the saved out-of-fold predictions fixed and permuting only the labels (a max-statistic
test without refitting) would cost seconds, but it is not valid here: cross-validated AUCs of
models refitted on noise vary more than the Mann–Whitney permutation distribution of fixed scores,
and on permuted-label cohorts that shortcut gave p < 0.1 in 6 of 12 (expected about 1).

**Selection-aware interval** (bootstrap bias-corrected cross-validation, BBC-CV: Tsamardinos,
Greasidou & Borboudakis 2018, *Machine Learning* 107:1895–1922): in each of ``n_bootstrap``
bootstrap samples of the rows, the model with the best AUC on the in-bag rows is chosen and its
AUC measured on the out-of-bag rows. The mean of those out-of-bag AUCs estimates the performance of
"the best model of this study" with the selection included; their percentiles give the interval.
It needs only the saved out-of-fold predictions. On small samples it errs low (the out-of-bag rows
are those the in-bag winner did not fit by chance): for 300 noise models on 30 rows, whose best
reaches AUC 0.72 in-sample, it gives 0.39 [0.04, 0.67].

Per-lesion data: permutations move whole patients' label vectors between patients with the same
number of lesions (patients are the exchangeable units; a patient with a unique lesion count keeps
its labels, which only makes the test more conservative), and the bootstrap resamples patients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_PERMUTATIONS = 99
DEFAULT_STOP_AFTER = 10
DEFAULT_BOOTSTRAP = 1000
NULL_METHOD = "whole search rerun on permuted labels; sequential p-value (Besag & Clifford 1991)"
INTERVAL_METHOD = "bootstrap bias-corrected cross-validation (BBC-CV): best model chosen in-bag, AUC out-of-bag"


@dataclass(frozen=True)
class StudyNull:
    """The best AUC over all models of reruns of the study on permuted labels."""

    n_models: int
    observed_best_auc: float
    null_best_aucs: np.ndarray
    max_permutations: int
    stop_after: int
    seconds: float

    @property
    def n_permutations(self) -> int:
        return len(self.null_best_aucs)

    @property
    def n_reached(self) -> int:
        return int(np.sum(self.null_best_aucs >= self.observed_best_auc - 1e-12))

    @property
    def stopped_early(self) -> bool:
        return self.n_reached >= self.stop_after

    @property
    def p_value(self) -> float:
        """Besag–Clifford sequential p-value."""
        if self.stopped_early:
            return self.stop_after / self.n_permutations
        return (1 + self.n_reached) / (1 + self.n_permutations)

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.null_best_aucs, q))


@dataclass(frozen=True)
class SelectionAwareAUC:
    """BBC-CV estimate of the AUC of the study's selected model, with its percentile interval."""

    value: float
    ci_low: float
    ci_high: float
    ci_level: float
    n_bootstrap: int
    n_used: int  # bootstrap samples whose out-of-bag rows had both classes


def _midranks(scores: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata  # here, so that building the 'sirt' parser (defaults above) stays light

    return rankdata(scores, axis=1, method="average")


def auc_matrix(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """AUC of every model (rows of ``scores``) for every label vector (columns of ``labels``)."""
    labels = np.asarray(labels, dtype=float)
    n1 = labels.sum(axis=0)
    n0 = labels.shape[0] - n1
    return (_midranks(scores) @ labels - n1 * (n1 + 1) / 2) / (n1 * n0)


def permuted_labels(y: np.ndarray, groups: np.ndarray | None, n_permutations: int, rng: np.random.Generator) -> np.ndarray:
    """``n_permutations`` label vectors (rows × permutations); by patient blocks for grouped rows."""
    y = np.asarray(y)
    if groups is None:
        return np.stack([rng.permutation(y) for _ in range(n_permutations)], axis=1)
    patients, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == p) for p in range(len(patients))]
    sizes = np.array([len(m) for m in members])
    out = np.empty((len(y), n_permutations), dtype=y.dtype)
    for b in range(n_permutations):
        permuted = y.copy()
        for size in np.unique(sizes):
            same = np.flatnonzero(sizes == size)
            for target, source in zip(same, rng.permutation(same)):
                permuted[members[target]] = y[members[source]]
        out[:, b] = permuted
    return out


def sequential_done(null_best: list[float], observed: float, stop_after: int, max_permutations: int) -> bool:
    """Whether the sequential test can stop: enough permuted bests reached the observed one, or all were run."""
    return len(null_best) >= max_permutations or sum(b >= observed - 1e-12 for b in null_best) >= stop_after


def null_cost_estimate(seconds_per_rerun: float, max_permutations: int, stop_after: int) -> dict:
    """What the study-level null will cost, said before it starts.

    Each rerun is the whole search, so it costs about one study (``seconds_per_rerun``). The
    sequential test runs at least ``stop_after`` reruns (a best that every permuted study reaches)
    and at most ``max_permutations``; for a best with study-level p it runs about ``stop_after / p``
    (Besag & Clifford 1991), e.g. 20 reruns for p = 0.5 with the default ``stop_after`` = 10.
    """
    fewest = min(stop_after, max_permutations)
    return {
        "seconds_per_rerun_estimate": seconds_per_rerun,
        "reruns_min": fewest,
        "reruns_max": max_permutations,
        "seconds_min_estimate": seconds_per_rerun * fewest,
        "seconds_max_estimate": seconds_per_rerun * max_permutations,
    }


def format_null_estimate(estimate: dict) -> str:
    """One line for the command line, before the null starts."""
    per = estimate["seconds_per_rerun_estimate"]
    return (
        f"study-level null: {estimate['reruns_min']} to {estimate['reruns_max']} reruns of the whole search on permuted labels, "
        f"about {_duration(per)} each (the study's own time): {_duration(estimate['seconds_min_estimate'])} to "
        f"{_duration(estimate['seconds_max_estimate'])}; it stops early once {estimate['reruns_min']} permuted bests reach the observed best "
        "(--study-permutations 0 skips it)"
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _bootstrap_rows(groups: np.ndarray | None, n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Counts of each row in one bootstrap sample (whole patients resampled for grouped rows)."""
    if groups is None:
        return np.bincount(rng.integers(0, n_rows, n_rows), minlength=n_rows)
    patients, inverse = np.unique(groups, return_inverse=True)
    patient_counts = np.bincount(rng.integers(0, len(patients), len(patients)), minlength=len(patients))
    return patient_counts[inverse]


def selection_aware_auc(
    scores: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None = None,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    ci_level: float = 0.95,
    seed: int = 0,
) -> SelectionAwareAUC:
    """BBC-CV: choose the best model on each bootstrap sample, score it on the rows left out."""
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    y = np.asarray(y).astype(bool)
    n_models, n = scores.shape
    # order[m, i, j] = 1 if model m ranks row i above row j, 1/2 for a tie: the weighted Mann-Whitney
    # AUC of bootstrap counts w is (w·pos)ᵀ order (w·neg) / (W1 W0), for all models in one product.
    order = (scores[:, :, None] > scores[:, None, :]) + 0.5 * (scores[:, :, None] == scores[:, None, :])
    order = order.reshape(n_models, n * n).astype(np.float32)  # 0, 1/2, 1: exact
    rng = np.random.default_rng(seed)
    out_of_bag = []
    for _ in range(n_bootstrap):
        counts = _bootstrap_rows(groups, n, rng)
        held_out = counts == 0
        if len(np.unique(y[held_out])) < 2 or len(np.unique(y[counts > 0])) < 2:
            continue
        pos, neg = counts * y, counts * ~y
        in_bag = order @ np.outer(pos, neg).ravel() / (pos.sum() * neg.sum())
        best = int(np.argmax(in_bag))
        out_of_bag.append(float(auc_matrix(scores[best : best + 1, held_out], y[held_out, None])[0, 0]))
    if not out_of_bag:
        return SelectionAwareAUC(float("nan"), float("nan"), float("nan"), ci_level, n_bootstrap, 0)
    alpha = (1 - ci_level) / 2
    low, high = np.quantile(out_of_bag, [alpha, 1 - alpha])
    return SelectionAwareAUC(float(np.mean(out_of_bag)), float(low), float(high), ci_level, n_bootstrap, len(out_of_bag))


def study_level_summary(null: StudyNull, interval: SelectionAwareAUC) -> dict:
    """The study-level numbers as written to ``summary.json``, the report and the model card."""
    return {
        "n_models": null.n_models,
        "observed_best_auc": null.observed_best_auc,
        "null_method": NULL_METHOD,
        "n_permutations": null.n_permutations,
        "max_permutations": null.max_permutations,
        "stop_after": null.stop_after,
        "stopped_early": null.stopped_early,
        "null_seconds": null.seconds,
        "null_best_auc_mean": float(np.mean(null.null_best_aucs)),
        "null_best_auc_q95": null.quantile(0.95),
        "null_best_auc_q99": null.quantile(0.99),
        "p_value": null.p_value,
        "selection_aware_auc": interval.value,
        "selection_aware_ci_low": interval.ci_low,
        "selection_aware_ci_high": interval.ci_high,
        "selection_aware_ci_level": interval.ci_level,
        "selection_aware_method": INTERVAL_METHOD,
        "selection_aware_bootstrap": interval.n_bootstrap,
        "selection_aware_bootstrap_used": interval.n_used,
    }
