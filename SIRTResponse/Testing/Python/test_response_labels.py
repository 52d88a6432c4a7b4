"""Response labels, cohort tables and the strategy → column rules."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from SIRTDosiomicsLib import naming
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTResponseLib.labels import binary_labels, build_cohort, load_cohort
from SIRTResponseLib.strategies import DEFAULT_STRATEGIES, UNUSED_BOOKKEEPING, UNUSED_NO_GROUP, UNUSED_NOT_RUN, StrategyRules, load_rules
from SIRTResponseLib.synthetic import synthetic_cohort


def test_binary_labels_per_criterion():
    assert binary_labels(["CR", "PR", "SD", "PD"], "mrecist").tolist() == [1, 1, 0, 0]
    assert binary_labels(["complete response", " pr ", "Stable disease", "progressive_disease"], "easl").tolist() == [1, 1, 0, 0]
    assert binary_labels(["CMR", "PMR", "SMD", "PMD"], "percist").tolist() == [1, 1, 0, 0]
    assert binary_labels([1, 0.0, "responder", "non-responder"], "binary").tolist() == [1, 0, 1, 0]


def test_unknown_category_or_criterion_is_refused():
    with pytest.raises(SIRTInputError, match="not mrecist categories"):
        binary_labels(["CR", "CMR"], "mrecist")
    with pytest.raises(SIRTInputError, match="unknown response criterion"):
        binary_labels(["CR"], "who")


def _tables():
    features = pd.DataFrame(
        {
            "patient_id": [1, 2, 3, 4],
            "y90_dvc_tumour_dose_mean_gy": [120.0, 80.0, 200.0, 50.0],
            "clinical_age": [60, 70, 55, 80],
            "y90_dose_tumour_error": ["", "", "", ""],
        }
    )
    labels = pd.DataFrame({"patient_id": ["1", "2", "3", "4", "5"], "response": ["PR", "SD", "CR", None, "PD"]})
    return features, labels


def test_build_cohort_joins_and_leaves_out_unlabelled_rows():
    features, labels = _tables()
    cohort = build_cohort(features, labels)
    assert cohort.row_ids == ["1", "2", "3"]  # patient 4 has no label, patient 5 no features
    assert cohort.y.tolist() == [1, 0, 1]
    assert list(cohort.features.columns) == ["y90_dvc_tumour_dose_mean_gy", "clinical_age"]  # bookkeeping left out
    assert cohort.summary()["n_responders"] == 2 and cohort.unit == "patient" and not cohort.grouped


def test_per_lesion_cohort_groups_rows_by_patient(tmp_path):
    features = pd.DataFrame({"patient_id": ["a", "a", "b", "c"], "lesion": [1, 2, 1, 1], "x": [1.0, 2.0, 3.0, 4.0]})
    labels = pd.DataFrame({"patient_id": ["a", "a", "b", "c"], "lesion": [1, 2, 1, 1], "response": ["CR", "PD", "SD", "PR"]})
    features.to_csv(tmp_path / "f.csv", index=False)
    labels.to_parquet(tmp_path / "l.parquet")
    cohort = load_cohort(tmp_path / "f.csv", tmp_path / "l.parquet", lesion_column="lesion")
    assert cohort.grouped and cohort.groups.tolist() == ["a", "a", "b", "c"]
    assert cohort.row_ids == ["a/1", "a/2", "b/1", "c/1"]
    assert cohort.summary()["n_patients"] == 3


def test_bad_tables_are_refused():
    features, labels = _tables()
    with pytest.raises(SIRTInputError, match="must be numeric"):
        build_cohort(features.assign(clinical_sex=["m", "f", "m", "f"]), labels)
    with pytest.raises(SIRTInputError, match="duplicate"):
        build_cohort(features, pd.concat([labels, labels]))
    with pytest.raises(SIRTInputError, match="responders only"):
        build_cohort(features, labels.assign(response="CR"))
    with pytest.raises(SIRTInputError, match="no column"):
        build_cohort(features, labels, label_column="mrecist")


def test_default_rules_have_44_strategies_36_on_the_published_design():
    assert len(DEFAULT_STRATEGIES) == 44  # 2 sources x (5 radiomics + 3 dosiomics + 3 DVH subsets) x (with, without clinical)
    features, _ = synthetic_cohort(n_patients=6, n_features=120)  # CT, SPECT, dose, BED, DVH, clinical; no PET
    resolved, skipped = StrategyRules().resolve(list(DEFAULT_STRATEGIES), list(features.columns[1:]))
    assert len(resolved) == 36 and all("pet" in name for name in skipped)


def test_default_rules_match_the_dosiomics_naming_scheme():
    columns = {
        naming.feature_column("maa", "ct", "tumour", "glcm", "JointEnergy"): "maa_radiomics_ct",
        naming.feature_column("maa", "spect", "npl", "firstorder", "Mean"): "maa_radiomics_spect",
        naming.feature_column("y90", "dose", "tumour", "shape", "Sphericity"): "y90_dosiomics_dose",
        naming.feature_column("y90", "bed", "wnl", "glszm", "ZoneEntropy"): "y90_dosiomics_bed",
        naming.dvc_column("y90", "tumour", "dose_mean_gy"): "y90_dvh_dose",
        naming.dvc_column("maa", "tumour", "bed_d70_gy"): "maa_dvh_bed",
        naming.feature_column("y90", "pet", "tumour", "glcm", "Idm"): "y90_radiomics_pet",
    }
    extra = [
        naming.clinical_column("Child Pugh"),
        naming.dvc_column("y90", "tumour", "tnr_npl"),
        naming.dvc_column("y90", naming.PATIENT_STRUCTURE, "lsf"),
        naming.dvc_column("y90", naming.PATIENT_STRUCTURE, "injected_activity_gbq"),
        naming.dvc_column("y90", "tumour", "n_voxels"),
        naming.diagnostics_column("maa", "ct", "tumour", "VoxelNum"),
        naming.error_column("maa", "ct", "tumour"),
        naming.warning_column("maa", "ct", "tumour"),
    ]
    rules = StrategyRules()
    available = [*columns, *extra]
    for column, strategy in columns.items():
        assert column in rules.columns(strategy, available)
        others = [s for s in DEFAULT_STRATEGIES if column in rules.columns(s, available)]
        family = strategy.rsplit("_", 1)[0]  # e.g. maa_radiomics: same source and category only
        assert all(s.rsplit("_", 1)[0] == family and strategy.rsplit("_", 1)[1] in s for s in others), others
    assert rules.columns("maa_radiomics_ct+spect+clinical", available) == [*list(columns)[:2], "clinical_child_pugh"]
    assert rules.columns("y90_dvh_dose", available) == ["y90_dvc_tumour_dose_mean_gy", "y90_dvc_tumour_tnr_npl", "y90_dvc_patient_lsf", "y90_dvc_patient_injected_activity_gbq"]
    assert "y90_dvc_patient_lsf" in rules.columns("y90_dvh_bed+clinical", [*available, naming.dvc_column("y90", "tumour", "bed_mean_gy")])
    bookkeeping = extra[4:]
    assert not any(c in rules.columns(s, available) for s in DEFAULT_STRATEGIES for c in bookkeeping)


def test_resolve_skips_strategies_without_columns_or_with_duplicate_columns():
    rules = StrategyRules()
    available = ["y90_dvc_tumour_dose_mean_gy", "y90_dvc_tumour_volume_ml"]
    resolved, skipped = rules.resolve(list(DEFAULT_STRATEGIES), available)
    assert resolved == {"y90_dvh_dose": available}  # dose+bed lacks BED; +clinical lacks clinical columns
    assert "y90_dvh_bed" in skipped and "no column" in skipped["y90_dvh_dose+clinical"]
    resolved, skipped = rules.resolve(["y90_dvh_dose", "y90_dvh_dose+bed"], [*available, "y90_dvc_tumour_bed_mean_gy"])
    assert set(resolved) == {"y90_dvh_dose", "y90_dvh_dose+bed"}


def test_select_patterns():
    rules = StrategyRules()
    assert rules.select(["y90_dvh_*"]) == [s for s in DEFAULT_STRATEGIES if s.startswith("y90_dvh_")]
    with pytest.raises(SIRTInputError, match="no strategy matches"):
        rules.select(["nothing_*"])


def test_rules_from_json(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"groups": {"tumour_dose": "^y90_dvc_tumour_dose_"}, "strategies": {"mine": ["tumour_dose", "clinical"]}}))
    rules = load_rules(path)
    assert list(rules.strategies) == ["mine"]
    assert rules.columns("mine", ["clinical_age", "y90_dvc_tumour_dose_mean_gy", "y90_dvc_npl_dose_mean_gy"]) == ["clinical_age", "y90_dvc_tumour_dose_mean_gy"]
    path.write_text(json.dumps({"groups": {"bad": "("}}))
    with pytest.raises(SIRTInputError, match="bad regular expression"):
        load_rules(path)
    path.write_text(json.dumps({"strategies": {"s": ["missing"]}}))
    with pytest.raises(SIRTInputError, match="unknown group"):
        load_rules(path)



SAMPLE_COLUMNS = Path(__file__).resolve().parents[1] / "Data" / "sample_patients_feature_columns.txt"


def test_every_column_of_the_sample_patients_feature_table_is_used_or_listed_unused():
    """The header of a real ``sirt features`` table of the two sample patients (90Y PET and MAA SPECT,
    dose and BED, DVH constraints with LSF and injected activity, clinical values); see the manifest
    beside it to regenerate it."""
    columns = SAMPLE_COLUMNS.read_text().split()
    assert columns[0] == "patient_id" and len(columns) > 2000
    available = columns[1:]
    assert all(naming.parse_column(c).kind != "id" for c in available)  # every name parses with the Dosiomics grammar
    rules = StrategyRules()
    resolved, _ = rules.resolve(list(DEFAULT_STRATEGIES), available)
    unused = rules.unused(available, resolved)
    used = {c for strategy_columns in resolved.values() for c in strategy_columns}
    assert used | set(unused) == set(available) and not used & set(unused)
    assert set(unused.values()) == {UNUSED_BOOKKEEPING}  # only errors, warnings, diagnostics and voxel counts
    for source in ("maa", "y90"):
        for value in ("lsf", "injected_activity_gbq"):
            column = naming.dvc_column(source, naming.PATIENT_STRUCTURE, value)
            assert column in available and column in resolved[f"{source}_dvh_dose"]
    pet = [c for c in available if c.startswith("y90_pet_") and naming.parse_column(c).kind == "feature"]
    assert len(pet) == 321 and set(pet) <= set(resolved["y90_radiomics_pet"])
    assert rules.unused(available, {"only": resolved["y90_radiomics_pet"]})["y90_dvc_patient_lsf"] == UNUSED_NOT_RUN
    assert StrategyRules(groups={"pet": "^y90_pet_"}, strategies={"pet": ("pet",)}).unused(available, {})["clinical_age"] == UNUSED_NO_GROUP
