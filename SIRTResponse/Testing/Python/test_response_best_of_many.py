"""Study-level statistics of the best of many models: the null of the whole search, BBC-CV, lesions.

The size and power checks run the real search (nested CV, SMOTE, selection) on small designs:
3 strategies × 2 selectors × naive Bayes = 6 models, 20 patients.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from SIRTResponseLib.best_of_many import StudyNull, _bootstrap_rows, format_null_estimate, null_cost_estimate, permuted_labels, selection_aware_auc
from SIRTResponseLib.labels import build_cohort
from SIRTResponseLib.metrics import auc_score
from SIRTResponseLib.nested_cv import inner_splits, outer_splits
from SIRTResponseLib.strategies import StrategyRules
from SIRTResponseLib.study import StudyConfig, rerun_seconds_estimate, run_model_group, run_study, study_null
from SIRTResponseLib.synthetic import synthetic_cohort

STRATEGIES = ["y90_dvh_dose", "y90_dosiomics_dose", "maa_radiomics_ct"]
CONFIG = StudyConfig(selectors=("anova", "kruskal"), classifiers=("nb",), n_bootstrap=200)


def _study_p(tmp_path, seed: int, effect: float, max_permutations: int, stop_after: int) -> StudyNull:
    features, labels = synthetic_cohort(n_patients=20, n_features=40, effect=effect, seed=seed)
    cohort = build_cohort(features, labels)
    result = run_study(cohort, StrategyRules(), STRATEGIES, CONFIG, tmp_path / f"s{seed}-{effect}")
    assert len(result.outcomes) == 6
    return study_null(cohort, result, tmp_path / f"s{seed}-{effect}", max_permutations=max_permutations, stop_after=stop_after)


def test_study_level_p_on_permuted_label_cohorts_is_rarely_small(tmp_path):
    nulls = [_study_p(tmp_path, seed, effect=0.0, max_permutations=19, stop_after=2) for seed in range(10)]
    above = [n.p_value > 0.05 for n in nulls]
    assert sum(above) >= 9, [round(n.p_value, 3) for n in nulls]
    # The best of six noise models often looks good; the null of the best shows it.
    assert max(n.observed_best_auc for n in nulls) > 0.7
    assert all(n.stopped_early or n.n_permutations == 19 for n in nulls)
    assert np.mean([n.n_permutations for n in nulls]) < 19  # the sequential test stops early on noise


def test_study_level_p_on_planted_signal_cohorts_is_small(tmp_path):
    for seed in (0, 1):
        null = _study_p(tmp_path, seed, effect=2.5, max_permutations=20, stop_after=2)
        assert null.observed_best_auc > 0.85 and null.p_value < 0.05, (null.observed_best_auc, null.null_best_aucs)
        assert null.p_value == pytest.approx(1 / 21) and null.quantile(0.95) < null.observed_best_auc


def test_sequential_p_value_and_resume(tmp_path):
    null = StudyNull(6, 0.8, np.array([0.6, 0.85, 0.7, 0.9]), 99, 2, 0.0)
    assert null.stopped_early and null.p_value == 2 / 4  # Besag-Clifford: stop_after / permutations run
    assert StudyNull(6, 0.8, np.array([0.6, 0.7]), 2, 2, 0.0).p_value == 1 / 3  # (1 + reached) / (1 + run)
    features, labels = synthetic_cohort(n_patients=20, n_features=60, effect=0.0, seed=3)
    cohort = build_cohort(features, labels)
    result = run_study(cohort, StrategyRules(), STRATEGIES[:1], CONFIG, tmp_path)
    first = study_null(cohort, result, tmp_path, max_permutations=3, stop_after=3)
    files = sorted((tmp_path / "null").glob("permutation_*.json"))
    stamps = [f.stat().st_mtime_ns for f in files]
    again = study_null(cohort, result, tmp_path, max_permutations=3, stop_after=3)
    assert len(files) == 3 and [f.stat().st_mtime_ns for f in files] == stamps
    np.testing.assert_array_equal(first.null_best_aucs, again.null_best_aucs)
    # The null's time is said before it runs: one study per rerun, from the study's own time.
    assert rerun_seconds_estimate(result) == result.seconds
    resumed = run_study(cohort, StrategyRules(), STRATEGIES[:1], CONFIG, tmp_path)
    compute = sum(o.seconds for o in resumed.outcomes.values())
    assert resumed.n_reused == 2 and rerun_seconds_estimate(resumed, n_jobs=2) == pytest.approx(compute / 2)
    estimate = null_cost_estimate(30.0, max_permutations=99, stop_after=10)
    assert (estimate["seconds_min_estimate"], estimate["seconds_max_estimate"]) == (300.0, 2970.0)
    assert format_null_estimate(estimate).startswith("study-level null: 10 to 99 reruns of the whole search") and "5 min to 50 min" in format_null_estimate(estimate)


def test_bbc_cv_corrects_the_best_of_many_noise_models():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 15)
    noise = rng.normal(size=(300, 30))
    best_in_sample = max(auc_score(y, s) for s in noise)
    interval = selection_aware_auc(noise, y, n_bootstrap=300, seed=1)
    # The best noise model looks good in-sample; BBC-CV does not believe it (it errs low on small samples).
    assert best_in_sample > 0.7 and interval.value < 0.55 and interval.ci_low < 0.5 < interval.ci_high
    signal = np.vstack([noise, y + rng.normal(scale=0.3, size=30)])
    assert selection_aware_auc(signal, y, n_bootstrap=300, seed=1).value > 0.9


def _lesion_cohort(seed: int):
    """24 patients with 1 to 4 lesions each; per-lesion labels, mostly shared within a patient."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 5, 24)
    patients = np.repeat([f"P{i:02d}" for i in range(24)], counts)
    lesions = np.concatenate([np.arange(1, c + 1) for c in counts])
    patient_label = rng.permutation(np.repeat([0, 1], 12))
    y = np.repeat(patient_label, counts)
    y[rng.random(len(y)) < 0.1] ^= 1  # a few lesions respond differently from their patient
    features, _ = synthetic_cohort(n_patients=len(y), n_features=60, effect=1.0, seed=seed)
    features = features.assign(patient_id=patients, lesion=lesions)
    labels = pd.DataFrame({"patient_id": patients, "lesion": lesions, "response": np.where(y == 1, "PR", "SD")})
    return build_cohort(features, labels, lesion_column="lesion")


def test_lesion_level_splits_bootstrap_and_permutations_keep_patients_together():
    cohort = _lesion_cohort(4)
    groups, y = cohort.groups, cohort.y
    assert cohort.grouped and len(np.unique(groups)) == 24 and len(y) > 50
    for fold, (train, test) in enumerate(outer_splits(CONFIG, y, groups)):  # the splits nested_cv_group uses
        assert not set(groups[train]) & set(groups[test])
        for fit, validation in inner_splits(CONFIG, y[train], groups[train], CONFIG.seed + 1 + fold):
            assert not set(groups[train][fit]) & set(groups[train][validation])
    rng = np.random.default_rng(0)
    for _ in range(20):
        counts = _bootstrap_rows(groups, len(y), rng)
        assert all(len(set(counts[groups == g])) == 1 for g in np.unique(groups))  # a patient is drawn whole
    permuted = permuted_labels(y, groups, 20, rng)
    blocks = {g: tuple(y[groups == g]) for g in np.unique(groups)}
    for column in permuted.T:
        moved = sorted(tuple(column[groups == g]) for g in np.unique(groups))
        assert moved == sorted(blocks.values())  # whole patients' label vectors, moved between patients
    dose = cohort.features.filter(like="y90_dose_")
    outcomes = run_model_group("y90_dosiomics_dose", "anova", ("nb", "dt"), dose.to_numpy(), y, groups, list(dose.columns), CONFIG)
    for outcome in outcomes:
        assert outcome.status == "ok"
        folds = np.array(outcome.folds)
        assert all(len(set(folds[groups == g])) == 1 for g in np.unique(groups))  # all lesions of a patient in one test fold
    interval = selection_aware_auc(np.array([o.scores for o in outcomes]), y, groups, n_bootstrap=100)
    assert interval.n_used > 50 and 0 <= interval.ci_low <= interval.value <= interval.ci_high <= 1
