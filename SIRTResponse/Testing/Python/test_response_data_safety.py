"""Nothing the user has is lost, and an edited or malformed model folder is refused, through the real ``sirt``."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from sirt.main import main as sirt
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTResponseLib.labels import build_cohort
from SIRTResponseLib.model_card import CARD_FILE, PAYLOAD_FILE, card_integrity_sha256
from SIRTResponseLib.model_io import build_card, export_model, load_model, predict
from SIRTResponseLib.models import build_pipeline
from SIRTResponseLib.synthetic import synthetic_cohort


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    features, labels = synthetic_cohort(n_patients=24, n_features=20, effect=2.0, seed=5)
    features.to_csv(folder / "features.csv", index=False)
    labels.to_csv(folder / "labels.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tables):
    cohort = build_cohort(pd.read_csv(tables / "features.csv"), pd.read_csv(tables / "labels.csv"))
    pipeline = build_pipeline("anova", "lr", n_features=3).fit(cohort.features.to_numpy(), cohort.y)
    card = build_card(pipeline, cohort.features, model={"id": "m"}, cohort_summary=cohort.summary(), cv_metrics={})
    folder = tmp_path_factory.mktemp("models") / "model"
    export_model(folder, pipeline, card)
    return folder


def _edited_copy(model_dir, tmp_path, edit, reseal: bool = False):
    folder = tmp_path / "edited"
    folder.mkdir()
    (folder / PAYLOAD_FILE).write_bytes((model_dir / PAYLOAD_FILE).read_bytes())
    card = json.loads((model_dir / CARD_FILE).read_text())
    edit(card)
    if reseal:
        card["integrity"]["sha256"] = card_integrity_sha256(card)
    (folder / CARD_FILE).write_text(json.dumps(card))
    return folder


def test_train_export_best_overwrite_replaces_only_the_model_files(tables, tmp_path, capsys):
    best = tmp_path / "best"
    best.mkdir()
    own = best / "features.csv"  # the user's file in the chosen folder
    own.write_bytes((tables / "features.csv").read_bytes())
    argv = [
        "train", "--features", str(own), "--labels", str(tables / "labels.csv"), "--output", str(tmp_path / "study"),
        "--strategies", "y90_dosiomics_dose", "--selectors", "anova", "--classifiers", "lr", "--bootstrap", "20",
        "--permutations", "0", "--study-permutations", "0", "--outer-folds", "2", "--inner-folds", "2", "--export-best", str(best),
    ]  # fmt: skip
    assert sirt(argv) == 0
    assert sirt(argv) == 2 and "already exists" in capsys.readouterr().err
    assert sirt([*argv, "--overwrite"]) == 0
    assert sorted(p.name for p in best.iterdir()) == sorted(["features.csv", CARD_FILE, PAYLOAD_FILE])
    assert own.read_bytes() == (tables / "features.csv").read_bytes()
    load_model(best)


def test_predict_never_writes_over_the_model_it_reads(model_dir, tables, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in model_dir.iterdir()}
    for name in (CARD_FILE, PAYLOAD_FILE):
        argv = ["predict", "--model", str(model_dir), "--features", str(tables / "features.csv"), "--output", str(model_dir / name), "--overwrite"]
        assert sirt(argv) == 2
        assert "would overwrite an input" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in model_dir.iterdir()} == before


@pytest.mark.parametrize(
    ("edit", "reseal", "message"),
    [
        (lambda c: c["input_features"].reverse(), False, "edited after export"),
        (lambda c: c.update(decision_threshold=0.9), False, "edited after export"),
        (lambda c: c.update(decision_threshold=2.0), True, "decision_threshold"),
        (lambda c: c.update(decision_threshold=None), True, "decision_threshold"),
        (lambda c: c.pop("integrity"), False, "no integrity hash"),
        (lambda c: c.pop("input_features"), True, "input_features"),
        (lambda c: c.update(required_features=["not_an_input"]), True, "required_features"),
        (lambda c: c["training_range"].update({c["required_features"][0]: [1.0, 0.0]}), True, "training_range"),
        (lambda c: c["payload"].update(file="../elsewhere/model.skops"), True, "inside the model folder"),
        (lambda c: c.pop("model"), True, "model id"),
    ],
)
def test_edited_or_malformed_cards_are_refused(model_dir, tmp_path, edit, reseal, message):
    with pytest.raises(SIRTInputError, match=message):
        load_model(_edited_copy(model_dir, tmp_path, edit, reseal))


def test_a_nan_threshold_is_refused(model_dir, tmp_path):
    folder = _edited_copy(model_dir, tmp_path, lambda c: None)
    card_text = (folder / CARD_FILE).read_text().replace('"decision_threshold": 0.5', '"decision_threshold": NaN')
    (folder / CARD_FILE).write_text(card_text)
    assert math.isnan(json.loads(card_text)["decision_threshold"])
    with pytest.raises(SIRTInputError, match="not a finite number|edited"):
        load_model(folder)


def test_a_payload_whose_input_count_differs_from_the_card_is_refused(model_dir, tmp_path):
    folder = _edited_copy(model_dir, tmp_path, lambda c: c["input_features"].append("extra_feature"), reseal=True)
    with pytest.raises(SIRTInputError, match=r"takes (\d+) input features but its card lists \d+"):
        load_model(folder)


def test_a_symlinked_payload_is_refused(model_dir, tmp_path):
    folder = _edited_copy(model_dir, tmp_path, lambda c: None)
    (folder / PAYLOAD_FILE).unlink()
    (folder / PAYLOAD_FILE).symlink_to(model_dir / PAYLOAD_FILE)
    with pytest.raises(SIRTInputError, match="symbolic link"):
        load_model(folder)


def test_predict_refuses_a_missing_id_column_and_an_empty_table(model_dir, tables, tmp_path, capsys):
    table = pd.read_csv(tables / "features.csv")
    model = load_model(model_dir)
    with pytest.raises(SIRTInputError, match="no id column 'case'"):
        predict(model, table, id_column="case")
    table.head(0).to_csv(tmp_path / "empty.csv", index=False)
    assert sirt(["predict", "--model", str(model_dir), "--features", str(tmp_path / "empty.csv")]) == 2
    assert "no rows" in capsys.readouterr().err
    assert sirt(["predict", "--model", str(model_dir), "--features", str(tables / "features.csv"), "--id-column", "case"]) == 2
    assert "no id column" in capsys.readouterr().err


def test_ids_1_and_01_are_different_patients(model_dir, tables, tmp_path, capsys):
    table = pd.read_csv(tables / "features.csv").head(2)
    table["patient_id"] = ["01", "1"]
    table.to_csv(tmp_path / "ids.csv", index=False)
    assert sirt(["predict", "--model", str(model_dir), "--features", str(tmp_path / "ids.csv"), "--output", str(tmp_path / "p.json")]) == 0
    assert [p["row_id"] for p in json.loads((tmp_path / "p.json").read_text())["predictions"]] == ["01", "1"]


def test_ids_1_and_01_stay_two_patients_in_a_cohort(tmp_path):
    from SIRTResponseLib.labels import load_cohort

    pd.DataFrame({"patient_id": ["01", "1", "2", "02"], "x": [1.0, 2.0, 3.0, 4.0]}).to_csv(tmp_path / "f.csv", index=False)
    pd.DataFrame({"patient_id": ["01", "1", "2", "02"], "response": ["CR", "PD", "PR", "SD"]}).to_csv(tmp_path / "l.csv", index=False)
    cohort = load_cohort(tmp_path / "f.csv", tmp_path / "l.csv")
    assert sorted(cohort.row_ids) == ["01", "02", "1", "2"]
    assert list(cohort.y) == [1, 0, 1, 0]
