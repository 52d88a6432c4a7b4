"""Survival by dose group, logistic tumour control and the lesion-level mixed model on simulated data."""

from __future__ import annotations

import numpy as np
import pytest

from SIRTDosimetryLib.errors import SIRTInputError
from SIRTResponseLib.survival import mixed_model_log_dose, survival_by_median, tumour_control


def test_survival_split_at_the_median_detects_a_protective_dose():
    rng = np.random.default_rng(0)
    n = 80
    dose = rng.gamma(4, 40, n)
    high = dose >= np.median(dose)
    time = rng.exponential(np.where(high, 30.0, 10.0))  # hazard ratio high vs low = 1/3
    censor = rng.uniform(5, 60, n)
    result = survival_by_median(np.minimum(time, censor), (time <= censor).astype(int), dose, metric_name="tumour_mean_gy", endpoint="OS")
    assert result.cutoff == pytest.approx(np.median(dose))
    assert result.high.n + result.low.n == n and result.high.n == high.sum()
    assert result.logrank_p < 0.01 and result.cox_p < 0.01
    assert result.hazard_ratio_ci[0] < result.hazard_ratio < result.hazard_ratio_ci[1] < 1
    assert 0.15 < result.hazard_ratio < 0.7
    assert result.high.median_survival > result.low.median_survival
    assert result.high.survival[0] == 1.0 and np.all(np.diff(result.high.survival) <= 0)


def test_survival_refuses_bad_events():
    with pytest.raises(SIRTInputError, match="events 0"):
        survival_by_median([1, 2, 3, 4], [0, 1, 2, 1], [1, 2, 3, 4])


def test_tumour_control_recovers_a_known_dose_response():
    rng = np.random.default_rng(1)
    dose = rng.uniform(0, 300, 3000)
    b0, b1 = -3.0, 0.025  # D50 = 120 Gy
    control = (rng.random(3000) < 1 / (1 + np.exp(-(b0 + b1 * dose)))).astype(int)
    result = tumour_control(control, dose, metric_name="dose")
    assert result.slope == pytest.approx(b1, rel=0.1) and result.intercept == pytest.approx(b0, rel=0.1)
    assert result.d50 == pytest.approx(120, rel=0.05)
    assert result.slope_ci[0] < b1 < result.slope_ci[1] and result.p_value < 1e-10
    clustered = tumour_control(control[:300], dose[:300], groups=np.repeat(np.arange(100), 3))
    assert clustered.clustered and clustered.slope_ci[0] < clustered.slope < clustered.slope_ci[1]


def test_mixed_model_recovers_a_category_effect_on_log_dose():
    rng = np.random.default_rng(2)
    patients = np.repeat(np.arange(40), 4)
    category = rng.choice(["CR", "PR", "SD", "PD"], len(patients))
    effect = {"CR": 0.6, "PR": 0.4, "SD": 0.0, "PD": -0.2}
    log_dose = 4.5 + np.array([effect[c] for c in category]) + rng.normal(scale=0.3, size=40)[patients] + rng.normal(scale=0.2, size=len(patients))
    result = mixed_model_log_dose(np.exp(log_dose), category, patients, reference="SD")
    effects = result.fixed_effects.set_index("term")["estimate"]
    assert effects["C(category, Treatment(reference='SD'))[T.CR]"] == pytest.approx(0.6, abs=0.12)
    assert effects["C(category, Treatment(reference='SD'))[T.PD]"] == pytest.approx(-0.2, abs=0.12)
    assert result.patient_variance == pytest.approx(0.09, abs=0.06) and result.residual_variance == pytest.approx(0.04, abs=0.015)
    assert (result.n_lesions, result.n_patients) == (160, 40)
    with pytest.raises(SIRTInputError, match="doses > 0"):
        mixed_model_log_dose([0.0, 1.0, 2.0], ["CR", "PD", "PD"], [1, 2, 3])
