"""The study: planted signal found, permuted labels at chance (leakage detector), resume, Dask, groups."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from distributed import LocalCluster
from sklearn.datasets import load_breast_cancer
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from SIRTDosimetryLib.errors import SIRTInputError
from SIRTResponseLib.labels import build_cohort
from SIRTResponseLib.metrics import auc_score
from SIRTResponseLib.strategies import StrategyRules
from SIRTResponseLib.nested_cv import inner_splits, outer_splits
from SIRTResponseLib.study import (
    ModelSpec,
    StudyConfig,
    delong_matrix,
    permutation_check,
    run_model,
    run_model_group,
    run_study,
)
from SIRTResponseLib.synthetic import SIGNAL_COLUMNS, synthetic_cohort
from SIRTResponseLib.testing.reference_cv import reference_nested_cv

STRATEGIES = ["y90_dosiomics_dose", "maa_radiomics_ct"]  # planted signal in the first only


def _config(**changes) -> StudyConfig:
    return StudyConfig(**({"selectors": ("anova", "relieff"), "classifiers": ("lr", "glmboost"), "n_bootstrap": 50} | changes))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    features, labels = synthetic_cohort(n_patients=40, n_features=160, effect=2.0, seed=3)
    cohort = build_cohort(features, labels)
    folder = tmp_path_factory.mktemp("study")
    result = run_study(cohort, StrategyRules(), STRATEGIES, _config(), folder, n_jobs=2)
    return cohort, folder, result


def test_planted_signal_is_found(planted):
    cohort, folder, result = planted
    table = result.table
    assert len(table) == 8 and (table["status"] == "ok").all()
    for column in ("auc", "accuracy", "sensitivity", "specificity", "auc_ci_low", "auc_ci_high", "specificity_ci_high", "delong_p_vs_best"):
        assert column in table.columns
    best = result.best()
    assert best.strategy == "y90_dosiomics_dose"
    best_row = table.iloc[0]
    assert best_row["auc"] > 0.85 and best_row["auc_ci_low"] > 0.65
    assert all(SIGNAL_COLUMNS[0] in fold for fold in best.selected_features)  # every outer fold selects the planted feature
    noise = table[table["strategy"] == "maa_radiomics_ct"]
    assert noise["auc"].between(0.2, 0.8).all()
    assert (noise["delong_p_vs_best"] < 0.05).all()
    assert sorted(p.name for p in (folder / "models").iterdir()) == sorted(f"{i}.json" for i in result.outcomes)
    matrix = delong_matrix(result.outcomes, cohort.y, list(table["model_id"][:3]))
    assert np.allclose(matrix, matrix.T) and (np.diag(matrix) == 1).all()


def test_study_resumes_and_refuses_other_settings(planted, tmp_path):
    cohort, folder, first = planted
    grown = run_study(cohort, StrategyRules(), STRATEGIES, _config(classifiers=("lr", "glmboost", "nb")), folder)
    assert (grown.n_reused, grown.n_computed) == (8, 4)
    for model_id, outcome in first.outcomes.items():
        assert grown.outcomes[model_id].scores == outcome.scores
    # an interrupted run: a model file missing, another truncated mid-write by a crash of another tool
    (folder / "models" / f"{first.table.iloc[0]['model_id']}.json").unlink()
    (folder / "models" / f"{first.table.iloc[1]['model_id']}.json").write_text('{"strategy": ')
    resumed = run_study(cohort, StrategyRules(), STRATEGIES, _config(classifiers=("lr", "glmboost", "nb")), folder)
    assert (resumed.n_reused, resumed.n_computed) == (10, 2)
    pd.testing.assert_frame_equal(resumed.table.drop(columns="seconds"), grown.table.drop(columns="seconds"))
    with pytest.raises(SIRTInputError, match="other settings"):
        run_study(cohort, StrategyRules(), STRATEGIES, _config(seed=1), folder)
    copy = tmp_path / "copy"
    run_study(cohort, StrategyRules(), STRATEGIES[:1], _config(classifiers=("nb",), selectors=("anova",)), copy)
    redone = run_study(cohort, StrategyRules(), STRATEGIES[:1], _config(classifiers=("nb",), selectors=("anova",), seed=1), copy, overwrite=True)
    assert redone.n_computed == 1 and json.loads((copy / "study.json").read_text())["settings"]["seed"] == 1


def test_permuted_labels_centre_on_chance_and_a_leaky_pipeline_does_not():
    """Leakage detector: nested CV on labels unrelated to 300 features must give AUC ≈ 0.5."""
    features, labels = synthetic_cohort(n_patients=30, n_features=300, effect=0.0, seed=4)
    cohort = build_cohort(features, labels)
    config = _config(classifiers=("lr",), selectors=("anova",))
    spec = ModelSpec("all", "anova", "lr")
    columns = list(cohort.features.columns)
    outcome = run_model(spec, cohort.features.to_numpy(), cohort.y, None, columns, config)
    check = permutation_check(outcome, cohort, columns, config, observed_auc=0.5, n_permutations=8)
    assert abs(check.null_mean - 0.5) < 0.12, check.null_aucs
    # the same data through a pipeline that selects features on all rows before cross-validating
    leaky = []
    for seed in range(4):
        y = np.random.default_rng(seed).permutation(cohort.y)
        X = SelectKBest(f_classif, k=5).fit_transform(cohort.features.to_numpy(), y)
        score = cross_val_predict(LogisticRegression(), X, y, cv=StratifiedKFold(3, shuffle=True, random_state=0), method="predict_proba")[:, 1]
        leaky.append(auc_score(y, score))
    assert np.mean(leaky) > 0.75  # the detector has the power to see leakage


def test_public_breast_cancer_data():
    data = load_breast_cancer()
    rng = np.random.default_rng(5)
    rows = np.r_[rng.choice(np.flatnonzero(data.target == 0), 20, replace=False), rng.choice(np.flatnonzero(data.target == 1), 20, replace=False)]
    features = pd.DataFrame(data.data[rows], columns=[f"maa_ct_tumour_firstorder_{n.title().replace(' ', '')}" for n in data.feature_names])
    features.insert(0, "patient_id", [f"B{i}" for i in range(40)])
    labels = pd.DataFrame({"patient_id": features["patient_id"], "response": np.where(data.target[rows] == 1, "PR", "PD")})
    cohort = build_cohort(features, labels)
    rules = StrategyRules()
    spec = ModelSpec("maa_radiomics_ct", "anova", "glmboost")
    columns = rules.columns("maa_radiomics_ct", list(cohort.features.columns))
    assert len(columns) == 30
    outcome = run_model(spec, cohort.features[columns].to_numpy(), cohort.y, None, columns, _config())
    assert outcome.status == "ok" and auc_score(cohort.y, outcome.scores) > 0.9


def test_per_lesion_splits_keep_patients_together():
    rng = np.random.default_rng(6)
    patients = np.repeat([f"P{i}" for i in range(18)], 2)
    y = np.tile([1, 0], 18)
    rng.shuffle(y)
    outer = outer_splits(_config(), y, patients)
    for train, test in outer:
        assert not set(patients[train]) & set(patients[test])
        for inner_train, inner_test in inner_splits(_config(), y[train], patients[train], seed=1):
            assert not set(patients[train][inner_train]) & set(patients[train][inner_test])
    features = pd.DataFrame({"patient_id": patients, "lesion": np.tile([1, 2], 18), "y90_dvc_tumour_dose_mean_gy": rng.gamma(4, 30, 36) + 40 * y})
    labels = features[["patient_id", "lesion"]].assign(response=np.where(y == 1, "PR", "SD"))
    cohort = build_cohort(features, labels, lesion_column="lesion")
    outcome = run_model(ModelSpec("y90_dvh_dose", "anova", "nb"), cohort.features.to_numpy(), cohort.y, cohort.groups, list(cohort.features.columns), _config(n_features=(1,)))
    assert outcome.status == "ok" and len(set(outcome.folds)) == 3


def test_dask_backend_gives_the_local_results(tmp_path):
    features, labels = synthetic_cohort(n_patients=30, n_features=60, effect=1.5, seed=7)
    cohort = build_cohort(features, labels)
    config = _config(selectors=("anova",), classifiers=("nb", "lr"))
    local = run_study(cohort, StrategyRules(), ["y90_dosiomics_dose"], config, tmp_path / "local")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        remote = run_study(cohort, StrategyRules(), ["y90_dosiomics_dose"], config, tmp_path / "dask", dask_address=cluster.scheduler_address)
    assert remote.n_computed == 2
    for model_id, outcome in local.outcomes.items():
        np.testing.assert_allclose(remote.outcomes[model_id].scores, outcome.scores)


def test_a_failing_model_is_a_result_not_a_crash(tmp_path):
    features, labels = synthetic_cohort(n_patients=30, n_features=60, seed=8)
    features["clinical_empty"] = np.nan
    cohort = build_cohort(features, labels)
    rules = StrategyRules(groups={"empty": "^clinical_empty$", "dose": "^y90_dose_"}, strategies={"empty": ("empty",), "dose": ("dose",)})
    result = run_study(cohort, rules, ["empty", "dose"], _config(selectors=("anova",), classifiers=("nb",)), tmp_path)
    table = result.table.set_index("model_id")
    assert table.loc["empty__anova__nb", "status"] == "failed" and "ValueError" in table.loc["empty__anova__nb", "error"]
    assert np.isnan(table.loc["empty__anova__nb", "auc"]) and table.loc["dose__anova__nb", "status"] == "ok"
    assert result.table.iloc[-1]["model_id"] == "empty__anova__nb"


def test_bad_configurations_are_refused(tmp_path):
    with pytest.raises(SIRTInputError, match="unknown selector/classifier"):
        StudyConfig(classifiers=("knn",))
    with pytest.raises(SIRTInputError, match="at least 2 folds"):
        StudyConfig(outer_folds=1)
    features, labels = synthetic_cohort(n_patients=20, n_features=30, responder_fraction=0.1, seed=9)
    with pytest.raises(SIRTInputError, match="needs at least 3"):
        run_study(build_cohort(features, labels), StrategyRules(), STRATEGIES, _config(), tmp_path)
    features, labels = synthetic_cohort(n_patients=20, n_features=30, seed=9)
    with pytest.raises(SIRTInputError, match="no strategy has columns"):
        pet = StrategyRules(groups={"pet": "^maa_pet_"}, strategies={"maa_pet": ("pet",)})
        run_study(build_cohort(features, labels), pet, ["maa_pet"], _config(), tmp_path)


@pytest.mark.parametrize(
    ("n_features", "selector", "classifiers"),
    [((3,), "rfe", ("dt", "glmboost", "lr", "mlp", "nb", "svm", "xgb")), ((2, 4), "mrmr", ("nb", "svm")), ((4,), "anova", ("rf",))],
)
def test_shared_fold_work_gives_gridsearchcv_results_bit_for_bit(n_features, selector, classifiers):
    """Every classifier of a (strategy, selector) group equals the whole pipeline grid-searched per model
    (one k; and a grid over k, alone for naive Bayes and crossed with a nested parameter for the SVM)."""
    features, labels = synthetic_cohort(n_patients=22, n_features=120, effect=1.0, seed=9)
    cohort = build_cohort(features, labels)
    columns = [c for c in cohort.features.columns if c.startswith(("y90_dose_", "clinical_"))]
    X = cohort.features[columns].to_numpy()
    config = _config(n_features=n_features)
    for outcome in run_model_group("s", selector, classifiers, X, cohort.y, None, columns, config):
        scores, params, selected = reference_nested_cv(selector, outcome.classifier, X, cohort.y, None, columns, config)
        assert outcome.status == "ok", outcome.error
        np.testing.assert_array_equal(outcome.scores, scores, err_msg=outcome.id)
        assert outcome.best_params == params and outcome.selected_features == selected, outcome.id
