"""ROC analysis of a single metric (e.g. tumour mean dose) as in published dose–response studies.

Rule: a lesion or patient is called a responder when its value ≥ threshold (``direction =
"higher"``, the dose–response default) or ≤ threshold (``"lower"``). Every observed value is a
candidate threshold; at each, sensitivity = responders called responders / responders and
specificity = non-responders called non-responders / non-responders.

Operating points reported:

- ``youden``: the threshold maximising Youden's J = sensitivity + specificity − 1
  (Youden 1950, Cancer 3:32) — best balanced accuracy;
- ``best_accuracy``: the threshold maximising (TP + TN) / N;
- ``target_specificity``: the threshold with the highest sensitivity among those whose
  specificity ≥ the target (e.g. 0.90), as used to quote a dose threshold "with 90 % specificity".

Ties between thresholds go to the higher specificity, then the higher threshold value for
``"higher"`` (lower for ``"lower"``). The AUC comes with DeLong's 95 % interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from SIRTDosimetryLib.errors import SIRTInputError

from .metrics import Estimate, delong_ci


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    sensitivity: float
    specificity: float
    accuracy: float

    @property
    def youden(self) -> float:
        return self.sensitivity + self.specificity - 1


@dataclass(frozen=True)
class SingleMetricROC:
    name: str
    direction: str
    n_responders: int
    n_non_responders: int
    auc: Estimate
    thresholds: list[float]
    sensitivity: list[float]
    specificity: list[float]
    youden: OperatingPoint
    best_accuracy: OperatingPoint
    target_specificity: OperatingPoint | None  # None when no threshold reaches the target
    target: float


def single_metric_roc(values, y, *, name: str = "metric", direction: str = "higher", target_specificity: float = 0.90) -> SingleMetricROC:
    """ROC curve, AUC (DeLong CI) and the three operating points of one metric; NaN rows left out."""
    if direction not in ("higher", "lower"):
        raise SIRTInputError("direction must be 'higher' or 'lower'")
    if not 0 < target_specificity <= 1:
        raise SIRTInputError("the target specificity must be in (0, 1]")
    values = np.asarray(values, dtype=float)
    y = np.asarray(y).astype(bool)
    keep = np.isfinite(values)
    values, y = values[keep], y[keep]
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 < 2 or n0 < 2:
        raise SIRTInputError(f"{name}: ROC analysis needs at least two responders and two non-responders with a value")
    sign = 1.0 if direction == "higher" else -1.0
    score = sign * values
    candidates = np.unique(score)[::-1]  # strictest rule first
    called = score[None, :] >= candidates[:, None]
    sensitivity = (called & y).sum(axis=1) / n1
    specificity = (~called & ~y).sum(axis=1) / n0
    accuracy = ((called & y).sum(axis=1) + (~called & ~y).sum(axis=1)) / (n1 + n0)

    def point(i: int) -> OperatingPoint:
        return OperatingPoint(float(sign * candidates[i]), float(sensitivity[i]), float(specificity[i]), float(accuracy[i]))

    def best(objective: np.ndarray) -> int:
        # lexicographic: objective, then specificity, then the strictest threshold (lowest index)
        order = np.lexsort((np.arange(len(candidates)), -specificity, -objective))
        return int(order[0])

    feasible = np.flatnonzero(specificity >= target_specificity - 1e-12)
    target_point = point(int(feasible[np.argmax(sensitivity[feasible])])) if len(feasible) else None
    return SingleMetricROC(
        name=name,
        direction=direction,
        n_responders=n1,
        n_non_responders=n0,
        auc=delong_ci(y, score),
        thresholds=[float(sign * c) for c in candidates],
        sensitivity=sensitivity.tolist(),
        specificity=specificity.tolist(),
        youden=point(best(sensitivity + specificity - 1)),
        best_accuracy=point(best(accuracy)),
        target_specificity=target_point,
        target=target_specificity,
    )
