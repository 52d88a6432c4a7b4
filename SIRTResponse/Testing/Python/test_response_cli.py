"""``sirt train``, ``sirt predict`` and ``sirt stats`` through the real ``sirt`` entry point."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sirt.main import main as sirt_main
from SIRTResponseLib.synthetic import SIGNAL_COLUMNS, synthetic_cohort


@pytest.fixture()
def sirt():
    """The real ``sirt`` entry point."""
    return sirt_main


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    features, labels = synthetic_cohort(n_patients=30, n_features=80, effect=2.0, seed=21)
    features.to_csv(folder / "features.csv", index=False)
    labels.to_csv(folder / "labels.csv", index=False)
    rng = np.random.default_rng(0)
    survival = pd.DataFrame({"patient_id": labels["patient_id"], "os_months": rng.exponential(20, 30).round(1), "os_event": rng.integers(0, 2, 30)})
    survival.to_csv(folder / "survival.csv", index=False)
    return folder


def test_train_then_predict(sirt, tables, tmp_path, capsys):
    study, best = tmp_path / "study", tmp_path / "best"
    argv = [
        "train", "--features", str(tables / "features.csv"), "--labels", str(tables / "labels.csv"),
        "--output", str(study), "--strategies", "y90_dosiomics_dose,maa_radiomics_ct", "--selectors", "anova",
        "--classifiers", "lr,nb", "--bootstrap", "50", "--permutations", "2", "--export-best", str(best),
        "--study-permutations", "4", "--study-stop-after", "2",
    ]  # fmt: skip
    assert sirt(argv) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "study-level null: 2 to 4 reruns of the whole search on permuted labels" in captured.err  # said before it runs
    assert "best: y90_dosiomics_dose__anova__" in out and "permuted labels" in out and "study-level p = 0.2" in out  # 1/(1+4)
    assert "selection-aware AUC" in out
    results = pd.read_csv(study / "results.csv")
    assert len(results) == 4 and {"auc", "accuracy", "sensitivity", "specificity", "auc_ci_low", "auc_ci_high"} <= set(results.columns)
    for name in ("report.html", "heatmap_auc.png", "roc_best.png", "confusion_best.png", "permutation.png", "delong_top.csv", "summary.json", "strategies.json"):
        assert (study / name).is_file(), name
    summary = json.loads((study / "summary.json").read_text())
    assert summary["n_models"] == 4 and summary["best_model"]["id"] == results.loc[0, "model_id"]
    level = summary["study_level"]
    assert level["n_models"] == 4 and level["n_permutations"] == 4 and level["p_value"] == pytest.approx(0.2)
    assert level["observed_best_auc"] == pytest.approx(results.loc[0, "auc"]) and level["null_best_auc_q95"] < level["observed_best_auc"]
    assert level["selection_aware_ci_low"] <= level["selection_aware_auc"] <= level["selection_aware_ci_high"]
    estimate = level["null_cost_estimate"]
    assert estimate["seconds_per_rerun_estimate"] == summary["seconds"]  # this study computed every model: its own time
    assert estimate["seconds_max_estimate"] == pytest.approx(4 * estimate["seconds_per_rerun_estimate"])
    assert estimate["seconds_min_estimate"] == pytest.approx(2 * estimate["seconds_per_rerun_estimate"])
    assert len(json.loads((study / "study_null.json").read_text())["null_best_aucs"]) == 4
    card = json.loads((best / "model_card.json").read_text())
    assert card["model"]["id"] == results.loc[0, "model_id"] and card["cv_metrics"]["auc"]["value"] == pytest.approx(results.loc[0, "auc"])
    assert card["cv_metrics"]["study_level"]["p_value"] == level["p_value"] and card["cv_metrics"]["study_level"]["this_model_is_the_study_best"]
    html = (study / "report.html").read_text()
    assert "study-level p = 0.2" in html and "study_null.png" in html and (study / "study_null.png").is_file()
    strategies = json.loads((study / "strategies.json").read_text())
    used = {c for columns in strategies["columns"].values() for c in columns}
    table_columns = set(pd.read_csv(tables / "features.csv", nrows=0).columns) - {"patient_id"}
    assert used | set(strategies["unused"]) == table_columns and not used & set(strategies["unused"])
    null_files = sorted((study / "null").glob("permutation_*.json"))
    assert len(null_files) == 4
    stamps = [f.stat().st_mtime_ns for f in null_files]
    assert (study / "exported" / results.loc[0, "model_id"] / "model.skops").is_file()
    assert "<img" in (study / "report.html").read_text()

    assert sirt(argv) == 2  # the --export-best folder exists
    assert "already exists" in capsys.readouterr().err
    resumed = [a if a != str(best) else str(tmp_path / "best2") for a in argv]
    chosen = results.loc[3, "model_id"]
    assert sirt([*resumed, "--export-model", chosen]) == 0
    assert "(0 computed, 4 reused" in capsys.readouterr().out
    assert [f.stat().st_mtime_ns for f in null_files] == stamps  # the study-level null resumed too
    assert json.loads((study / "exported" / chosen / "model_card.json").read_text())["model"]["id"] == chosen
    assert sirt([*resumed, "--export-model", "no_such_model"]) == 2

    patients = pd.read_csv(tables / "features.csv").head(3)
    patients.to_csv(tmp_path / "new.csv", index=False)
    assert sirt(["predict", "--model", str(best), "--features", str(tmp_path / "new.csv"), "--output", str(tmp_path / "pred.json")]) == 0
    out = capsys.readouterr().out
    assert "P000: probability of response" in out
    predictions = json.loads((tmp_path / "pred.json").read_text())["predictions"]
    assert [p["row_id"] for p in predictions] == ["P000", "P001", "P002"]
    patients.drop(columns=card["required_features"][0]).to_csv(tmp_path / "incomplete.csv", index=False)
    assert sirt(["predict", "--model", str(best), "--features", str(tmp_path / "incomplete.csv")]) == 2
    assert "does not have" in capsys.readouterr().err


def test_train_refuses_bad_arguments(sirt, tables, tmp_path, capsys):
    base = ["train", "--features", str(tables / "features.csv"), "--labels", str(tables / "labels.csv"), "--output", str(tmp_path / "s")]
    assert sirt([*base, "--classifiers", "knn"]) == 2
    assert "unknown selector/classifier" in capsys.readouterr().err
    assert sirt([*base, "--strategies", "pet_*"]) == 2
    assert sirt([*base, "--criterion", "percist"]) == 2
    assert "not percist categories" in capsys.readouterr().err
    assert sirt(["train", "--features", str(tmp_path / "missing.csv"), "--output", str(tmp_path / "s")]) == 2


def test_stats(sirt, tables, tmp_path, capsys):
    argv = [
        "stats", "--features", str(tables / "features.csv"), "--labels", str(tables / "labels.csv"), "--output", str(tmp_path / "stats"),
        "--roc-metric", SIGNAL_COLUMNS[1], "--dose-metric", SIGNAL_COLUMNS[1],
        "--survival", str(tables / "survival.csv"), "--endpoint", "OS=os_months,os_event",
    ]  # fmt: skip
    assert sirt(argv) == 0
    assert "significant at q = 0.05" in capsys.readouterr().out
    out = tmp_path / "stats"
    univariate = pd.read_csv(out / "univariate.csv")
    assert set(univariate.loc[univariate["significant"], "feature"]) >= set(SIGNAL_COLUMNS)
    thresholds = pd.read_csv(out / "roc_thresholds.csv")
    assert list(thresholds["rule"]) == ["youden", "best_accuracy", "specificity>=0.9"]
    assert {"threshold", "sensitivity", "specificity"} <= set(thresholds.columns)
    assert {"slope_ci_low", "slope_ci_high", "d50"} <= set(pd.read_csv(out / "tumour_control.csv").columns)
    assert {"logrank_p", "hazard_ratio", "hazard_ratio_ci_low"} <= set(pd.read_csv(out / "survival.csv").columns)
    for name in ("boxplots.png", f"roc_{SIGNAL_COLUMNS[1]}.png", f"km_OS_{SIGNAL_COLUMNS[1]}.png", "report.html", "summary.json"):
        assert (out / name).is_file(), name
    assert sirt(argv) == 2  # outputs exist and --overwrite was not given
    assert sirt([*argv[:7], "--endpoint", "OS=os_months"]) == 2
