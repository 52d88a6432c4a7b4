"""Component-wise likelihood boosting of a logistic model: R's ``mboost::glmboost(family = Binomial())``.

No maintained Python port of glmboost exists, so it is written here, following mboost's
definitions (Bühlmann & Hothorn 2007, Statist. Sci. 22:477; mboost ``Family.R``, ``Binomial()``):

- labels ỹ ∈ {−1, +1}; the model is on the half log-odds scale, f = ½ log(p / (1 − p)), so
  p = 1 / (1 + exp(−2f)) and mboost's coefficients are half those of a logistic regression;
- offset f₀ = ½ log(p̄ / (1 − p̄)) with p̄ the training fraction of positives;
- negative gradient of mboost's loss, u = 2 ỹ exp(−2 ỹ f) / (log 2 · (1 + exp(−2 ỹ f)));
- base learners: one least-squares line per column of the design [1, X − mean(X)] (an intercept
  column and each centred covariate: ``center = TRUE``), β_j = ⟨x_j, u⟩ / ⟨x_j, x_j⟩; the column
  with the smallest residual sum of squares (largest β_j² ⟨x_j, x_j⟩) is chosen;
- update f ← f + ν x_j β_j and coef_j ← coef_j + ν β_j, for ``mstop`` iterations (ν = 0.1).

With small ν and many iterations the coefficients converge to half the maximum-likelihood
logistic regression coefficients (checked in the tests); few iterations give a sparse,
shrunken model — ``mstop`` is the regularisation parameter, tuned by the study's inner CV.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data


class GLMBoostClassifier(ClassifierMixin, BaseEstimator):
    """Binary classifier by component-wise gradient boosting of linear base learners (mboost).

    Fitted attributes: ``offset_`` (f₀), ``intercept_`` (boosted intercept, excluding the offset),
    ``coef_`` (per input column, half log-odds scale as mboost's ``coef()``), ``center_`` (column
    means subtracted), ``selected_`` (column chosen at each iteration, −1 for the intercept).
    """

    def __init__(self, mstop: int = 100, nu: float = 0.1, center: bool = True):
        self.mstop = mstop
        self.nu = nu
        self.center = center

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(f"GLMBoostClassifier needs two classes, got {len(self.classes_)}")
        if self.mstop < 1 or not 0 < self.nu <= 1:
            raise ValueError("mstop must be >= 1 and nu in (0, 1]")
        signed = np.where(y == self.classes_[1], 1.0, -1.0)
        self.center_ = X.mean(axis=0) if self.center else np.zeros(X.shape[1])
        design = np.column_stack([np.ones(len(X)), X - self.center_])
        squares = (design**2).sum(axis=0)
        usable = squares > 1e-12 * max(squares.max(), 1.0)
        p = (signed > 0).mean()
        self.offset_ = 0.5 * np.log(p / (1 - p))
        f = np.full(len(X), self.offset_)
        coef = np.zeros(design.shape[1])
        selected = np.empty(self.mstop, dtype=int)
        for m in range(self.mstop):
            exp2yf = np.exp(-2 * signed * np.clip(f, -36, 36))
            u = 2 * signed * exp2yf / (np.log(2) * (1 + exp2yf))
            beta = np.where(usable, design.T @ u / np.where(usable, squares, 1.0), 0.0)
            j = int(np.argmax(beta**2 * squares))
            f += self.nu * beta[j] * design[:, j]
            coef[j] += self.nu * beta[j]
            selected[m] = j - 1
        self.intercept_ = coef[0]
        self.coef_ = coef[1:]
        self.selected_ = selected
        return self

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of the positive class, 2 f(x)."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False)
        f = self.offset_ + self.intercept_ + (X - self.center_) @ self.coef_
        return 2 * f

    def predict_proba(self, X) -> np.ndarray:
        positive = 1 / (1 + np.exp(-np.clip(self.decision_function(X), -72, 72)))
        return np.column_stack([1 - positive, positive])

    def predict(self, X) -> np.ndarray:
        return self.classes_[(self.decision_function(X) > 0).astype(int)]
