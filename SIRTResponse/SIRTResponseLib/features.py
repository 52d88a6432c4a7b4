"""In-fold preprocessing steps: redundancy filter, feature selectors and oversampling.

Every step here is a scikit-learn / imbalanced-learn estimator, so that inside the study's
pipeline it is fitted on training folds only and merely applied to test folds.

- :class:`SpearmanRedundancyFilter`: drops constant features, then, of every pair with
  |Spearman rho| > threshold (0.90), keeps the one more related to the label.
- Selectors of ``k`` features, named as in the study:

  ======  ======================================================================================
  anova   one-way ANOVA F (scikit-learn ``SelectKBest(f_classif)``)
  kruskal Kruskal–Wallis H (``SelectKBest`` with :func:`kruskal_wallis`, SciPy's test per column)
  mrmr    minimum redundancy maximum relevance (Peng et al. 2005, IEEE TPAMI 27:1226), MID
          scheme, mutual information from correlations as in R's mRMRe, greedy
  relieff ReliefF (Kononenko 1994; Robnik-Šikonja & Kononenko 2003, Mach Learn 53:23)
  rfe     recursive feature elimination with an L2 logistic regression, 10 % of the features
          removed per step (scikit-learn ``RFE``)
  ======  ======================================================================================

  mRMR and ReliefF are written here: the PyPI packages that offer them are not scikit-learn
  selectors (``mrmr_selection`` works on data frames and pulls in polars and category_encoders),
  or keep a copy of the whole training matrix inside the fitted object (``skrebate``'s
  ``ReliefF`` stores ``_X``), which would put patient data into every exported model file.
- :func:`adaptive_smote`: SMOTE (Chawla et al. 2002) with ``k_neighbors`` lowered to the minority
  count − 1 in tiny training folds, and no oversampling when fewer than two minority rows exist.
"""

from __future__ import annotations

import numpy as np
from imblearn import FunctionSampler
from imblearn.over_sampling import SMOTE
from scipy import stats
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator
from sklearn.feature_selection import RFE, SelectKBest, SelectorMixin, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted, validate_data


def _rank_auc(ranks: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-column Mann–Whitney AUC from column ranks."""
    positive = y == 1
    n1, n0 = positive.sum(), (~positive).sum()
    return (ranks[positive].sum(axis=0) - n1 * (n1 + 1) / 2) / (n1 * n0)


class SpearmanRedundancyFilter(SelectorMixin, BaseEstimator):
    """Keep one feature of every group whose pairwise |Spearman rho| exceeds ``threshold``.

    Features are visited from the most to the least label-related (|AUC − 0.5| on the training
    rows, ties in column order); a feature is kept unless it correlates above the threshold with
    one already kept. Constant columns are dropped first.
    """

    def __init__(self, threshold: float = 0.90):
        self.threshold = threshold

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        varying = np.ptp(X, axis=0) > 0
        keep = np.zeros(X.shape[1], dtype=bool)
        candidates = np.flatnonzero(varying)
        if len(candidates):
            ranks = stats.rankdata(X[:, candidates], axis=0)
            rho = np.atleast_2d(np.corrcoef(ranks, rowvar=False))
            relevance = np.abs(_rank_auc(ranks, (y == np.unique(y)[-1]).astype(int)) - 0.5)
            blocked = np.zeros(len(candidates), dtype=bool)
            for j in np.argsort(-relevance, kind="stable"):
                if not blocked[j]:
                    keep[candidates[j]] = True
                    blocked |= np.abs(rho[j]) > self.threshold
        self.support_ = keep
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_


def kruskal_wallis(X, y) -> tuple[np.ndarray, np.ndarray]:
    """Kruskal–Wallis H and p per column (SciPy), for ``SelectKBest``; constant columns score 0."""
    X = np.asarray(X, dtype=float)
    samples = [X[y == c] for c in np.unique(y)]
    with np.errstate(invalid="ignore", divide="ignore"):
        result = stats.kruskal(*samples, axis=0)
    return np.nan_to_num(result.statistic, nan=0.0), np.nan_to_num(result.pvalue, nan=1.0)


def _gaussian_mutual_information(r: np.ndarray) -> np.ndarray:
    """I = −½ ln(1 − r²): mutual information of jointly Gaussian variables with correlation r (nats)."""
    return -0.5 * np.log1p(-np.minimum(np.nan_to_num(r, nan=0.0) ** 2, 1 - 1e-12))


class MRMRSelector(SelectorMixin, BaseEstimator):
    """Greedy mRMR, MID scheme: next feature = argmax I(f; y) − mean_{s in S} I(f; s).

    Mutual information is estimated from Pearson correlations under a Gaussian assumption,
    I = −½ ln(1 − r²) (r with the 0/1 label: the point-biserial correlation), as R's mRMRe does
    by default (De Jay et al. 2013, Bioinformatics 29:2365) — stable on tiny samples, unlike
    binned or nearest-neighbour MI estimates. The first pick is the most relevant feature.
    """

    def __init__(self, k: int = 10):
        self.k = k

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        k = min(self.k, X.shape[1])
        with np.errstate(invalid="ignore", divide="ignore"):
            label = (y == np.unique(y)[-1]).astype(float)
            correlation = np.atleast_2d(np.corrcoef(np.column_stack([X, label]), rowvar=False))
        relevance = _gaussian_mutual_information(correlation[:-1, -1])
        redundancy = _gaussian_mutual_information(correlation[:-1, :-1])
        selected = [int(np.argmax(relevance))]
        redundancy_sum = redundancy[:, selected[0]].copy()
        while len(selected) < k:
            score = relevance - redundancy_sum / len(selected)
            score[selected] = -np.inf
            best = int(np.argmax(score))
            selected.append(best)
            redundancy_sum += redundancy[:, best]
        self.relevance_ = relevance
        self.ranking_ = np.array(selected)
        self.support_ = np.isin(np.arange(X.shape[1]), selected)
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_


class ReliefFSelector(SelectorMixin, BaseEstimator):
    """ReliefF weights for two classes; keeps the ``k`` features of largest weight.

    With diff(A, a, b) = |a − b| / (max A − min A) over the training rows and the Manhattan
    distance sum_A diff(A, ·, ·) to find neighbours, for every row R_i with its ``n`` nearest
    hits H_j (same class, R_i excluded) and ``n`` nearest misses M_j::

        W[A] = 1/m Σ_i ( 1/n Σ_j diff(A, R_i, M_j) − 1/n Σ_j diff(A, R_i, H_j) )

    (for two classes ReliefF's prior weighting P(C) / (1 − P(class(R_i))) is 1). ``n`` is
    ``n_neighbors`` lowered to the smaller class size − 1; ties in distance keep row order.
    """

    def __init__(self, k: int = 10, n_neighbors: int = 10):
        self.k = k
        self.n_neighbors = n_neighbors

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        span = np.ptp(X, axis=0)
        scaled = X / np.where(span > 0, span, 1.0)
        classes, counts = np.unique(y, return_counts=True)
        n = max(1, min(self.n_neighbors, counts.min() - 1))
        distance = cdist(scaled, scaled, metric="cityblock")
        np.fill_diagonal(distance, np.inf)
        weights = np.zeros(X.shape[1])
        for i in range(len(X)):
            order = np.argsort(distance[i], kind="stable")
            order = order[order != i]
            hits = order[y[order] == y[i]][:n]
            misses = order[y[order] != y[i]][:n]
            weights += np.abs(scaled[misses] - scaled[i]).mean(axis=0) - np.abs(scaled[hits] - scaled[i]).mean(axis=0)
        self.weights_ = weights / len(X)
        k = min(self.k, X.shape[1])
        top = np.argsort(-self.weights_, kind="stable")[:k]
        self.support_ = np.isin(np.arange(X.shape[1]), top)
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_


SELECTORS = ("anova", "kruskal", "mrmr", "relieff", "rfe")


def make_selector(name: str, k: int):
    """A fresh, unfitted selector of ``k`` features."""
    if name == "anova":
        return SelectKBest(f_classif, k=k)
    if name == "kruskal":
        return SelectKBest(kruskal_wallis, k=k)
    if name == "mrmr":
        return MRMRSelector(k=k)
    if name == "relieff":
        return ReliefFSelector(k=k)
    if name == "rfe":
        return RFE(LogisticRegression(C=1.0, solver="liblinear"), n_features_to_select=k, step=0.1)
    raise ValueError(f"unknown selector {name!r}; known: {', '.join(SELECTORS)}")


def selector_k_parameter(name: str) -> str:
    """The name of the ``k`` parameter of a selector (for grids over the number of features)."""
    return "n_features_to_select" if name == "rfe" else "k"


def adaptive_smote(X, y, k_neighbors: int = 5, random_state: int | None = None):
    """SMOTE to balance the classes, with k lowered to minority − 1; unchanged if that is < 1."""
    counts = np.bincount(np.asarray(y).astype(int))
    minority = counts[counts > 0].min()
    if minority < 2 or minority == counts.max():
        return X, y
    return SMOTE(k_neighbors=min(k_neighbors, minority - 1), random_state=random_state).fit_resample(X, y)


def make_oversampler(k_neighbors: int = 5, random_state: int | None = None) -> FunctionSampler:
    return FunctionSampler(func=adaptive_smote, kw_args={"k_neighbors": k_neighbors, "random_state": random_state}, validate=True)
