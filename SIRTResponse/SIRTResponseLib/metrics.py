"""Performance of pooled out-of-fold predictions: point estimates, bootstrap CIs, DeLong's test.

- AUC = P(score of a responder > score of a non-responder) + ½ P(tie) (Mann–Whitney form).
- Accuracy, sensitivity (responders called responders) and specificity (non-responders called
  non-responders) at a probability threshold (0.5: the class the classifier predicts).
- Bootstrap: percentile intervals over resampled rows, stratified by class as in pROC's default
  (Robin et al. 2011, BMC Bioinformatics 12:77), or over resampled patients when rows are lesions
  grouped by patient (a cluster bootstrap; draws with a single class are left out).
- DeLong et al. (1988, Biometrics 44:837) variance of an AUC and covariance of correlated AUCs,
  computed with the fast midrank algorithm of Sun & Xu (2014, IEEE Signal Process. Lett. 21:1389),
  O((m + n) log(m + n)) instead of O(mn). scikit-learn has no DeLong test and the statsmodels /
  SciPy releases we use have none either, hence this small implementation (checked in the tests
  against an O(mn) placement-value version and a bootstrap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

METRICS = ("auc", "accuracy", "sensitivity", "specificity")


def _midranks(values: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, ties sharing their mean rank (Sun & Xu's MIDRANK)."""
    return stats.rankdata(values, axis=-1)


def auc_score(y: np.ndarray, score: np.ndarray) -> float:
    """Mann–Whitney AUC; NaN with a single class."""
    y = np.asarray(y).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = _midranks(np.asarray(score, dtype=float))
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _metrics_rows(y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """Every metric for each row of ``y`` and ``score`` (shape (B, n)), vectorised over rows."""
    y = y.astype(bool)
    n1 = y.sum(axis=1)
    n0 = (~y).sum(axis=1)
    ranks = _midranks(score)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * y).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)
        predicted = score >= threshold
        sensitivity = (predicted & y).sum(axis=1) / n1
        specificity = (~predicted & ~y).sum(axis=1) / n0
    accuracy = (predicted == y).mean(axis=1)
    return {"auc": auc, "accuracy": accuracy, "sensitivity": sensitivity, "specificity": specificity}


def classification_metrics(y, score, threshold: float = 0.5) -> dict[str, float]:
    rows = _metrics_rows(np.asarray(y)[None, :], np.asarray(score, dtype=float)[None, :], threshold)
    return {k: float(v[0]) for k, v in rows.items()}


def bootstrap_indices(y, n_bootstrap: int, seed: int) -> np.ndarray:
    """(B, n) row indices of a class-stratified bootstrap: each class resampled within itself."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    columns = []
    for label in (1, 0):
        members = np.flatnonzero(y == label)
        columns.append(members[rng.integers(0, len(members), size=(n_bootstrap, len(members)))])
    return np.concatenate(columns, axis=1)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float


def bootstrap_metrics(
    y,
    score,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    threshold: float = 0.5,
    groups=None,
) -> dict[str, Estimate]:
    """Every metric with its percentile bootstrap interval (same draws for all four metrics).

    Pass the same ``seed`` for two models on the same rows to resample them identically (paired).
    """
    y = np.asarray(y).astype(int)
    score = np.asarray(score, dtype=float)
    point = classification_metrics(y, score, threshold)
    if groups is None:
        index = bootstrap_indices(y, n_bootstrap, seed)
        draws = _metrics_rows(y[index], score[index], threshold)
    else:
        draws = _grouped_draws(y, score, np.asarray(groups), n_bootstrap, seed, threshold)
    alpha = (1 - level) / 2
    result = {}
    for name in METRICS:
        values = draws[name][np.isfinite(draws[name])]
        low, high = np.quantile(values, [alpha, 1 - alpha]) if len(values) else (np.nan, np.nan)
        result[name] = Estimate(point[name], float(low), float(high))
    return result


def _grouped_draws(y, score, groups, n_bootstrap: int, seed: int, threshold: float) -> dict[str, np.ndarray]:
    """Cluster bootstrap: patients drawn with replacement; each draw's metrics computed on its rows."""
    rng = np.random.default_rng(seed)
    patients, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == p) for p in range(len(patients))]
    out = {name: np.empty(n_bootstrap) for name in METRICS}
    for b in range(n_bootstrap):
        rows = np.concatenate([members[p] for p in rng.integers(0, len(patients), size=len(patients))])
        values = _metrics_rows(y[rows][None, :], score[rows][None, :], threshold)
        for name in METRICS:
            out[name][b] = values[name][0]
    return out


# --- DeLong ------------------------------------------------------------------------------------


def delong_covariance(y, scores) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of ``k`` score vectors on the same rows and their DeLong covariance matrix (k × k).

    Sun & Xu (2014), Algorithm 1: with m positives X and n negatives Y, midranks T_X (within the
    positives), T_Y (within the negatives) and T_Z (all pooled):

        AUC    = (Σ T_Z[X] / m − (m + 1) / 2) / n
        V10_i  = (T_Z[X_i] − T_X[X_i]) / n          placement of each positive
        V01_j  = 1 − (T_Z[Y_j] − T_Y[Y_j]) / m      placement of each negative
        S      = cov(V10) / m + cov(V01) / n
    """
    y = np.asarray(y).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    positives, negatives = scores[:, y], scores[:, ~y]
    m, n = positives.shape[1], negatives.shape[1]
    if m < 2 or n < 2:
        raise ValueError("DeLong's variance needs at least two responders and two non-responders")
    tx, ty = _midranks(positives), _midranks(negatives)
    tz = _midranks(np.concatenate([positives, negatives], axis=1))
    aucs = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    covariance = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, covariance


@dataclass(frozen=True)
class DeLongTest:
    auc_a: float
    auc_b: float
    difference: float
    z: float
    p_value: float


def delong_test(y, score_a, score_b) -> DeLongTest:
    """Two-sided DeLong test of equal AUCs for two models scored on the same rows.

    z = (AUC_a − AUC_b) / sqrt(S_aa + S_bb − 2 S_ab); p from the standard normal.
    Identical rankings give z = 0, p = 1.
    """
    aucs, s = delong_covariance(y, np.vstack([score_a, score_b]))
    variance = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    difference = float(aucs[0] - aucs[1])
    if variance <= 1e-15:
        return DeLongTest(float(aucs[0]), float(aucs[1]), difference, 0.0, 1.0)
    z = difference / np.sqrt(variance)
    return DeLongTest(float(aucs[0]), float(aucs[1]), difference, float(z), float(2 * stats.norm.sf(abs(z))))


def delong_ci(y, score, level: float = 0.95) -> Estimate:
    """AUC with the DeLong (Wald) interval, clipped to [0, 1]."""
    aucs, s = delong_covariance(y, score)
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(max(s[0, 0], 0.0))
    return Estimate(float(aucs[0]), float(max(0.0, aucs[0] - half)), float(min(1.0, aucs[0] + half)))
