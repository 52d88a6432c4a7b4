"""Response prediction on a real vtkMRMLScene (slicer-core 5.12 wheel): SIRTResponseLib.mrml.

The checks live in ``SIRTResponseLib.testing.scenarios`` so that the SIRTResponse self-test in Slicer
runs the very same code; here each scenario runs in a fresh scene on a small model trained once
(synthetic cohort, one strategy × one selector × one classifier) and exported into ``tmp_path``,
and a few properties that only make sense outside Slicer are checked besides.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

slicer = pytest.importorskip("slicer")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the slicer-core wheel is not installed (the PyPI package 'slicer' is unrelated)", allow_module_level=True)

from SIRTDosimetryLib.errors import SIRTInputError  # noqa: E402
from SIRTResponseLib import mrml  # noqa: E402
from SIRTResponseLib import model_card  # noqa: E402
from SIRTResponseLib.testing import scenarios  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return scenarios.small_model(tmp_path_factory.mktemp("response_model"))


# --- the scenarios (also the module's self-test) -------------------------------------------------


@pytest.mark.parametrize("scenario", scenarios.ALL_SCENARIOS, ids=lambda s: s.__name__)
def test_scenario(scenario, model, scene):
    assert scenarios.small_model() is model  # the scenarios use the model trained in tmp_path
    result = scenario(scene)
    assert result["model"] is model


def test_prediction_equals_model_io_on_the_same_patient(model, scene):
    result = scenarios.scenario_prediction_matches_model_io(scene)
    row, expected = result["rows"][0], result["expected"]
    assert row["probability_response"] == pytest.approx(expected.probability, abs=1e-12)
    assert 0.0 <= row["probability_response"] <= 1.0
    assert row["predicted_class"] == expected.predicted_class and row["patient_id"] == "P004"
    assert row["model_id"] == model.card["model"]["id"] == "y90_dosiomics_dose__anova__lr"
    assert row["intended_use"] == "research"


def test_scene_round_trip_keeps_the_prediction_table(model, scene, tmp_path):
    result = scenarios.scenario_scene_round_trip(scene, tmp_path)
    assert result["scene_path"] == tmp_path / "response_prediction.mrb" and result["scene_path"].is_file()
    assert [r["patient_id"] for r in result["rows_again"]] == ["P008", "P009"]
    assert "outside the training range" in result["rows_again"][1]["warnings"]


# --- the contract the module file relies on -------------------------------------------------------


def _calls(tree: ast.Module, attribute: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == attribute]


def test_module_file_calls_match_the_implemented_contract():
    """SIRTResponse.py cannot run here: check that what it calls exists with the arguments it passes."""
    tree = ast.parse((ROOT / "SIRTResponse" / "SIRTResponse.py").read_text(encoding="utf-8"))
    for name in ("model_summary", "predict_from_table_node"):
        calls = _calls(tree, name)
        assert calls, f"SIRTResponse.py does not call {name}"
        signature = inspect.signature(getattr(mrml, name))
        for call in calls:
            signature.bind(*[None] * len(call.args), **{k.arg: None for k in call.keywords})
    source = (ROOT / "SIRTResponse" / "SIRTResponse.py").read_text(encoding="utf-8")
    assert "scenarios.ALL_SCENARIOS" in source and "scenario(slicer.mrmlScene)" in source
    for scenario in scenarios.ALL_SCENARIOS:  # the self-test passes the scene only
        parameters = list(inspect.signature(scenario).parameters.values())
        assert parameters[0].name == "scene" and all(p.default is not inspect.Parameter.empty for p in parameters[1:])
    assert mrml.OperationCancelled.__name__ == "OperationCancelled"  # what the widget recognises


def test_model_summary_needs_neither_vtk_nor_the_model_packages(model):
    """The module shows the card before scikit-learn & co. are installed: nothing heavy is imported."""
    code = (
        "import sys, json\n"
        "from SIRTResponseLib import mrml\n"
        f"text = mrml.model_summary({str(model.folder)!r})\n"
        "heavy = ('sklearn', 'skops', 'xgboost', 'imblearn', 'pandas', 'vtk', 'slicer', 'SimpleITK', 'scipy')\n"
        "print(json.dumps({'text': text, 'imported': [m for m in heavy if m in sys.modules]}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    out = json.loads(result.stdout)
    assert out["imported"] == []
    assert model.card["payload"]["sha256"] in out["text"]


# --- feature tables as they come ------------------------------------------------------------------


def test_csv_read_by_slicer_without_a_schema_is_text_and_still_predicts(model, scene, tmp_path):
    """Slicer reads a .csv without a schema as text columns; numbers in text are parsed, ids kept."""
    required = model.card["required_features"]
    records = scenarios.patient_records(model, [1, 2], required)
    lines = [",".join(["patient_id", *required])] + [",".join([r["patient_id"], *(repr(float(r[f])) for f in required)]) for r in records]
    path = tmp_path / "features.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", "features from csv")
    storage = scene.AddNewNodeByClass("vtkMRMLTableStorageNode")
    storage.SetFileName(str(path))
    node.SetAndObserveStorageNodeID(storage.GetID())
    assert storage.ReadData(node)
    assert node.GetTable().GetColumn(1).IsA("vtkStringArray")
    rows = scenarios.table_rows(mrml.predict_from_table_node(model.folder, node, row=None))
    for row, expected in zip(rows, scenarios._expected(model, records)):
        scenarios.check_prediction(row, expected, row["patient_id"])


def test_numeric_patient_ids_and_tables_without_an_id_column(model, scene):
    required = model.card["required_features"]
    record = scenarios.patient_records(model, [0], required)[0]
    numbered = scenarios.add_feature_table(scene, [{**record, "patient_id": 17.0}], "numbered")
    assert scenarios.table_rows(mrml.predict_from_table_node(model.folder, numbered))[0]["patient_id"] == "17"
    anonymous = scenarios.add_feature_table(scene, [{f: record[f] for f in required}] * 2, "anonymous")
    rows = scenarios.table_rows(mrml.predict_from_table_node(model.folder, anonymous, row=None))
    assert [r["patient_id"] for r in rows] == ["anonymous row 0", "anonymous row 1"]
    single = scenarios.add_feature_table(scene, [{f: record[f] for f in required}], "single patient")
    assert scenarios.table_rows(mrml.predict_from_table_node(model.folder, single))[0]["patient_id"] == "single patient"
    other_id = scenarios.add_feature_table(scene, [{**record, "case": "C-9"}], "other id column")
    out = mrml.predict_from_table_node(model.folder, other_id, id_column="case", name="my prediction")
    assert out.GetName() == "my prediction" and scenarios.table_rows(out)[0]["patient_id"] == "C-9"


def test_duplicated_names_empty_tables_and_bad_rows_are_refused(model, scene):
    required = model.card["required_features"]
    record = scenarios.patient_records(model, [0], required)[0]
    node = scenarios.add_feature_table(scene, [record], "one patient")
    count = scene.GetNumberOfNodes()
    listed_twice = scenarios.add_name_value_table(scene, {**record, "x": 1}, "listed twice")
    listed_twice.GetTable().GetColumn(0).SetValue(4, required[0])  # the "x" entry renamed
    listed_twice.GetTable().Modified()
    with pytest.raises(SIRTInputError, match="twice"):
        mrml.predict_from_table_node(model.folder, listed_twice)
    empty = scene.AddNewNodeByClass("vtkMRMLTableNode", "empty")
    with pytest.raises(SIRTInputError, match="is empty"):
        mrml.predict_from_table_node(model.folder, empty)
    with pytest.raises(SIRTInputError, match="whole number"):
        mrml.predict_from_table_node(model.folder, node, row=1.5)
    assert scene.GetNumberOfNodes() == count + 2  # the two tables made here


def test_model_facts_of_a_card_without_metrics(model, tmp_path):
    """Cards written by build_card with other metrics (or none) still summarise; NaN stands for 'not given'."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / model_card.PAYLOAD_FILE).write_bytes((model.folder / model_card.PAYLOAD_FILE).read_bytes())
    card = {k: v for k, v in model.card.items() if k not in ("cv_metrics", "training_cohort")}
    card["integrity"] = {"sha256": model_card.card_integrity_sha256(card)}  # as build_card would have sealed it
    (folder / model_card.CARD_FILE).write_text(json.dumps(card), encoding="utf-8")
    facts = mrml.model_facts(folder)
    assert math.isnan(facts["cv_auc"]) and facts["training_cohort"] == {}
    text = mrml.model_summary(folder)
    assert "AUC not given" in text and card["model"]["id"] in text
    (folder / model_card.CARD_FILE).write_text(json.dumps(card | {"format": "pickle"}), encoding="utf-8")
    with pytest.raises(SIRTInputError, match="unknown model card format"):
        mrml.model_summary(folder)
    with pytest.raises(SIRTInputError, match="choose a model folder"):
        mrml.model_summary("")


def test_model_summary_says_what_chance_gives_the_best_of_many(model, tmp_path):
    """The card's study-level null and selection-aware AUC reach the module's Model panel; their absence is said too."""
    assert "Study-level null: not run" in mrml.model_summary(model.folder)  # the small model was trained without it
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / model_card.PAYLOAD_FILE).write_bytes((model.folder / model_card.PAYLOAD_FILE).read_bytes())
    study = {"n_models": 1440, "n_permutations": 99, "null_best_auc_mean": 0.781, "null_best_auc_q95": 0.842, "p_value": 0.23,
             "selection_aware_auc": 0.612, "selection_aware_ci_low": 0.43, "selection_aware_ci_high": 0.79}
    for is_best, about in ((True, "for this model"), (False, "for the study's best model, not this one")):
        card = {k: v for k, v in model.card.items() if k != "integrity"}
        card["cv_metrics"] = {**card["cv_metrics"], "study_level": {**study, "this_model_is_the_study_best": is_best}}
        card["integrity"] = {"sha256": model_card.card_integrity_sha256(card)}
        (folder / model_card.CARD_FILE).write_text(json.dumps(card), encoding="utf-8")
        assert mrml.model_facts(folder)["study_level"]["p_value"] == 0.23
        text = mrml.model_summary(folder)
        assert "Best of 1440 models" in text and "0.78 on average (95th percentile 0.84, 99 permutations)" in text
        assert "study-level p = 0.23" in text and "selection-aware AUC 0.61 (CI 0.43 to 0.79)" in text and about in text
