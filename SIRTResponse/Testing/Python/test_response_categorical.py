"""Clinical text variables declared categorical (one-hot or ordinal) instead of refused by ``sirt train``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sirt import main
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTResponseLib.labels import Categorical, build_cohort, encode_categorical, parse_categorical


def test_parse_declarations():
    assert parse_categorical("one_hot") == Categorical("one_hot")
    assert parse_categorical("ordinal:A,B,C") == Categorical("ordinal", ("A", "B", "C"))
    assert parse_categorical({"ordinal": ["A", "B", "C"]}) == parse_categorical("ordinal:A,B,C")
    with pytest.raises(SIRTInputError, match="levels in order"):
        parse_categorical("ordinal")
    with pytest.raises(SIRTInputError, match="one_hot, ordinal"):
        parse_categorical("dummy")


def test_encode_ordinal_and_one_hot_keeps_empty_cells_empty():
    table = pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "clinical_child_pugh": ["A", "C", None, "B"],
                          "clinical_etiology": ["HCC", "mCRC", "HCC", ""], "x": [1.0, 2.0, 3.0, 4.0]})
    out = encode_categorical(table, {"clinical_child_pugh": parse_categorical("ordinal:A,B,C"),
                                     "clinical_etiology": parse_categorical("one_hot")})
    assert list(out.columns) == ["patient_id", "clinical_child_pugh", "clinical_etiology_hcc", "clinical_etiology_mcrc", "x"]
    np.testing.assert_array_equal(out["clinical_child_pugh"], [0.0, 2.0, np.nan, 1.0])
    np.testing.assert_array_equal(out["clinical_etiology_hcc"], [1.0, 0.0, 1.0, np.nan])
    with pytest.raises(SIRTInputError, match=r"values \['D'\] are not among the declared levels"):
        encode_categorical(table.assign(clinical_child_pugh=["A", "D", "B", "C"]), {"clinical_child_pugh": parse_categorical("ordinal:A,B,C")})


def test_sirt_train_accepts_declared_text_columns(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 24
    y = np.arange(n) % 2
    table = pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)], "response": np.where(y == 1, "PR", "SD"),
                          "clinical_child_pugh": rng.choice(["A", "B", "C"], n),
                          "y90_dvc_tumour_dose_mean_gy": 100 + 80 * y + rng.normal(0, 20, n)})
    features = tmp_path / "cohort.csv"
    table.to_csv(features, index=False)
    with pytest.raises(SIRTInputError, match="declare text columns categorical"):
        build_cohort(table)
    common = ["train", "--features", str(features), "--strategies", "y90_dvh_dose+clinical", "--selectors", "anova",
              "--classifiers", "lr", "--n-features", "2", "--bootstrap", "50", "--permutations", "0", "--study-permutations", "0", "--no-smote"]
    assert main.main([*common, "--output", str(tmp_path / "refused")]) == 2
    assert "clinical_child_pugh" in capsys.readouterr().err
    assert main.main([*common, "--output", str(tmp_path / "study"), "--categorical", "clinical_child_pugh=ordinal:A,B,C"]) == 0
