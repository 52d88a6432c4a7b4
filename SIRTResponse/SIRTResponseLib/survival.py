"""Outcome statistics: survival by dose group, tumour-control probability, lesion-level mixed model.

- :func:`survival_by_median`: patients split at the median of a dose metric (high: value ≥
  median), Kaplan–Meier curves per group, the log-rank test and a Cox proportional-hazards
  model of the high-group indicator (hazard ratio high vs low with its 95 % CI) — lifelines.
- :func:`tumour_control`: logistic regression of tumour control (responder = 1) on a dose metric,
  P(control | D) = 1 / (1 + exp(−(b₀ + b₁ D))), with the dose of 50 % control D₅₀ = −b₀ / b₁ and
  patient-clustered (sandwich) standard errors when rows are lesions — statsmodels.
- :func:`mixed_model_log_dose`: linear mixed model log(D) ~ response category with a random
  intercept per patient (REML) — statsmodels ``MixedLM``: does the dose lesions received differ
  between response categories, allowing for lesions of one patient being alike?
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test

from SIRTDosimetryLib.errors import SIRTInputError


@dataclass(frozen=True)
class KMCurve:
    label: str
    n: int
    events: int
    median_survival: float  # inf when the curve stays above 0.5
    timeline: list[float]
    survival: list[float]


@dataclass(frozen=True)
class DichotomisedSurvival:
    metric: str
    endpoint: str
    cutoff: float  # the median; high group: value >= cutoff
    high: KMCurve
    low: KMCurve
    logrank_statistic: float
    logrank_p: float
    hazard_ratio: float  # high vs low
    hazard_ratio_ci: tuple[float, float]
    cox_p: float


def _curve(label: str, time: np.ndarray, event: np.ndarray) -> KMCurve:
    fitter = KaplanMeierFitter(label=label).fit(time, event)
    table = fitter.survival_function_
    return KMCurve(label, int(len(time)), int(event.sum()), float(fitter.median_survival_time_), table.index.tolist(), table.iloc[:, 0].tolist())


def survival_by_median(time, event, metric, *, metric_name: str = "metric", endpoint: str = "OS") -> DichotomisedSurvival:
    """KM, log-rank and Cox for high (≥ median) vs low values of ``metric``; rows with a NaN left out."""
    frame = pd.DataFrame({"time": time, "event": event, "value": metric}).astype(float).dropna()
    if (frame["time"] < 0).any() or not frame["event"].isin([0, 1]).all():
        raise SIRTInputError(f"{endpoint}: times must be >= 0 and events 0 (censored) or 1")
    cutoff = float(frame["value"].median())
    frame["high"] = (frame["value"] >= cutoff).astype(int)
    high, low = frame[frame["high"] == 1], frame[frame["high"] == 0]
    if len(high) < 2 or len(low) < 2 or frame["event"].sum() < 1:
        raise SIRTInputError(f"{endpoint} by {metric_name}: each group needs two patients and the cohort an event")
    test = logrank_test(high["time"], low["time"], high["event"], low["event"])
    cox = CoxPHFitter().fit(frame[["time", "event", "high"]], duration_col="time", event_col="event")
    summary = cox.summary.loc["high"]
    return DichotomisedSurvival(
        metric=metric_name,
        endpoint=endpoint,
        cutoff=cutoff,
        high=_curve(f"{metric_name} ≥ {cutoff:.4g}", high["time"].to_numpy(), high["event"].to_numpy()),
        low=_curve(f"{metric_name} < {cutoff:.4g}", low["time"].to_numpy(), low["event"].to_numpy()),
        logrank_statistic=float(test.test_statistic),
        logrank_p=float(test.p_value),
        hazard_ratio=float(summary["exp(coef)"]),
        hazard_ratio_ci=(float(summary["exp(coef) lower 95%"]), float(summary["exp(coef) upper 95%"])),
        cox_p=float(summary["p"]),
    )


@dataclass(frozen=True)
class TumourControl:
    metric: str
    intercept: float
    slope: float  # per unit of the metric
    slope_ci: tuple[float, float]
    p_value: float
    odds_ratio_per_unit: float
    d50: float  # metric value of 50 % control probability; NaN for a flat slope
    n: int
    clustered: bool


def tumour_control(control, dose, *, metric_name: str = "dose", groups=None) -> TumourControl:
    """Logistic tumour-control model; ``groups`` (patient ids) gives cluster-robust errors."""
    frame = pd.DataFrame({"control": np.asarray(control, dtype=float), "dose": np.asarray(dose, dtype=float)})
    if groups is not None:
        frame["group"] = pd.factorize(np.asarray(groups))[0]
    frame = frame.dropna()
    if frame["control"].nunique() < 2:
        raise SIRTInputError("tumour control needs controlled and uncontrolled tumours")
    model = sm.Logit(frame["control"], sm.add_constant(frame[["dose"]]))
    kwargs = {"cov_type": "cluster", "cov_kwds": {"groups": frame["group"].to_numpy()}} if groups is not None else {}
    try:
        fit = model.fit(disp=0, **kwargs)
    except np.linalg.LinAlgError as exc:
        raise SIRTInputError(f"tumour control by {metric_name}: the logistic fit failed ({exc}); is the outcome perfectly separated?") from None
    b0, b1 = float(fit.params["const"]), float(fit.params["dose"])
    low, high = fit.conf_int().loc["dose"]
    return TumourControl(
        metric=metric_name,
        intercept=b0,
        slope=b1,
        slope_ci=(float(low), float(high)),
        p_value=float(fit.pvalues["dose"]),
        odds_ratio_per_unit=float(np.exp(b1)),
        d50=float(-b0 / b1) if abs(b1) > 1e-12 else float("nan"),
        n=int(len(frame)),
        clustered=groups is not None,
    )


@dataclass(frozen=True)
class MixedModelResult:
    formula: str
    reference: str
    fixed_effects: pd.DataFrame  # term, estimate, ci_low, ci_high, p_value
    patient_variance: float
    residual_variance: float
    n_lesions: int
    n_patients: int
    converged: bool


def mixed_model_log_dose(dose, category, patient, *, reference: str | None = None) -> MixedModelResult:
    """log(dose) ~ C(category) + (1 | patient), REML; coefficients are differences of mean log dose."""
    frame = pd.DataFrame({"dose": np.asarray(dose, dtype=float), "category": np.asarray(category).astype(str), "patient": np.asarray(patient).astype(str)}).dropna()
    if (frame["dose"] <= 0).any():
        raise SIRTInputError("log dose needs doses > 0")
    if frame["category"].nunique() < 2 or frame["patient"].nunique() < 2:
        raise SIRTInputError("the mixed model needs two response categories and two patients")
    frame["log_dose"] = np.log(frame["dose"])
    reference = reference or sorted(frame["category"].unique())[0]
    if reference not in set(frame["category"]):
        raise SIRTInputError(f"reference category {reference!r} does not occur")
    formula = f"log_dose ~ C(category, Treatment(reference={reference!r}))"
    fit = smf.mixedlm(formula, frame, groups=frame["patient"]).fit(reml=True)
    intervals = fit.conf_int()
    terms = [t for t in fit.fe_params.index]
    effects = pd.DataFrame(
        {
            "term": terms,
            "estimate": [float(fit.fe_params[t]) for t in terms],
            "ci_low": [float(intervals.loc[t, 0]) for t in terms],
            "ci_high": [float(intervals.loc[t, 1]) for t in terms],
            "p_value": [float(fit.pvalues[t]) for t in terms],
        }
    )
    return MixedModelResult(
        formula=formula + " + (1 | patient)",
        reference=reference,
        fixed_effects=effects,
        patient_variance=float(fit.cov_re.iloc[0, 0]),
        residual_variance=float(fit.scale),
        n_lesions=int(len(frame)),
        n_patients=int(frame["patient"].nunique()),
        converged=bool(fit.converged),
    )
