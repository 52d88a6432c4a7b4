"""Scenarios shared by the pytest suite (slicer-core wheel) and the SIRTResponse self-test in Slicer.

Each scenario takes a set-up scene (``slicer.mrmlScene`` in Slicer, ``scene.new_scene().scene``
elsewhere), does what a user does (a patient's features in a table node, a model folder, predict,
save and reopen the scene) and checks the outcome, raising ``AssertionError`` with a message on the
first failure. They return what they made, for callers that want to look further.

They are self-contained: :func:`small_model` trains a small model on a synthetic cohort (one
strategy × one selector × one classifier, nested CV, a few bootstrap samples: a few seconds) and
exports it with ``model_io`` into a temporary folder, once per process; scenarios that damage a
model work on a copy.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import math
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from SIRTDosimetryLib.errors import SIRTInputError

from .. import model_card
from SIRTDosimetryLib.mrml.outputs import table_rows

from ..mrml import logic
from ..mrml.logic import PREDICTION_COLUMNS, model_facts, model_summary, predict_from_table_node

SAVED_RELATIVE = 5e-6
"""Slicer saves table cells with 6 significant digits: numbers read back from a saved scene agree to this."""

STRATEGY = "y90_dosiomics_dose"
"""The synthetic cohort's planted signal is in this strategy's columns."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


# ---------------------------------------------------------------------------------------------
# a small model, trained once per process


@dataclass
class SmallModel:
    folder: Path  # the exported model folder
    features: object  # pandas DataFrame: the synthetic cohort's feature table (patient_id + features)
    card: dict


_MODELS: dict[str, SmallModel] = {}


def _temporary_folder(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def small_model(work_dir: str | Path | None = None) -> SmallModel:
    """A model trained on a synthetic cohort of 30 patients and exported into ``work_dir/model`` (a
    temporary folder when not given); built once per process and reused (``work_dir`` given: built
    there unless the model already lives there)."""
    cached = _MODELS.get("model")
    if cached is not None and (work_dir is None or cached.folder.parent == Path(work_dir)):
        return cached
    from ..labels import build_cohort
    from ..model_io import export_study_model
    from ..strategies import StrategyRules
    from ..study import StudyConfig, run_study
    from ..synthetic import synthetic_cohort

    work_dir = Path(work_dir) if work_dir is not None else _temporary_folder("SIRTResponseTest-")
    features, labels = synthetic_cohort(n_patients=30, n_features=60, effect=2.0, seed=5)
    cohort = build_cohort(features, labels)
    config = StudyConfig(selectors=("anova",), classifiers=("lr",), n_features=(3,), n_bootstrap=20)
    result = run_study(cohort, StrategyRules(), [STRATEGY], config, work_dir / "study", overwrite=True)
    check((result.table["status"] == "ok").all(), f"the small model could not be fitted: {result.table['error'].tolist()}")
    folder = export_study_model(work_dir / "model", result, result.best().id, cohort, overwrite=True)
    card = json.loads((folder / model_card.CARD_FILE).read_text(encoding="utf-8"))
    _MODELS["model"] = SmallModel(folder, features, card)
    return _MODELS["model"]


def _copy_model(model: SmallModel, name: str) -> Path:
    target = _temporary_folder("SIRTResponseTest-") / name
    shutil.copytree(model.folder, target)
    return target


# ---------------------------------------------------------------------------------------------
# tables


def add_feature_table(scene, records: list[dict], name: str, error_columns: dict[str, str] | None = None):
    """A one-row-per-patient feature table node like SIRTDosiomics writes: text columns for text values
    (``patient_id``), numbers otherwise (None → NaN); ``error_columns`` adds ``<prefix>_error`` text columns."""
    from SIRTDosimetryLib.mrml._vtk import vtk

    node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    for column in records[0]:
        values = [r[column] for r in records]
        text = any(isinstance(v, str) for v in values)
        array = vtk.vtkStringArray() if text else vtk.vtkDoubleArray()
        array.SetName(column)
        for v in values:
            array.InsertNextValue(str(v) if text else (math.nan if v is None else float(v)))
        node.AddColumn(array)
    for column, text in (error_columns or {}).items():
        array = vtk.vtkStringArray()
        array.SetName(column)
        for _ in records:
            array.InsertNextValue(text)
        node.AddColumn(array)
    return node


def add_name_value_table(scene, entries: dict[str, object], name: str):
    """A two-column table (feature, value), values as text, as a user would type them in."""
    from SIRTDosimetryLib.mrml._vtk import vtk

    node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    names, values = vtk.vtkStringArray(), vtk.vtkStringArray()
    names.SetName("feature")
    values.SetName("value")
    for key, value in entries.items():
        names.InsertNextValue(key)
        values.InsertNextValue(repr(float(value)) if isinstance(value, float) else str(value))
    node.AddColumn(names)
    node.AddColumn(values)
    return node


def patient_records(model: SmallModel, indices, columns: list[str] | None = None) -> list[dict]:
    """Rows of the synthetic cohort as ``{column: value}`` (all its columns, or ``patient_id`` + ``columns``)."""
    frame = model.features.iloc[list(indices)]
    if columns is not None:
        frame = frame[["patient_id", *columns]]
    return frame.to_dict("records")


def _snapshot(table_node) -> tuple:
    """Everything a prediction must not change in a table node (NaN-safe)."""
    attributes = {n: table_node.GetAttribute(n) for n in (table_node.GetAttributeNames() or ())}
    rows = [{k: repr(v) for k, v in row.items()} for row in table_rows(table_node)]
    table = table_node.GetTable()
    kinds = [table.GetColumn(c).GetClassName() for c in range(table.GetNumberOfColumns())]
    return table_node.GetName(), kinds, rows, attributes


def _node_ids(scene) -> set[str]:
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


def _expected(model: SmallModel, records: list[dict]):
    """What ``model_io`` itself predicts for these feature rows."""
    import pandas as pd

    from ..model_io import load_model, predict

    return predict(load_model(model.folder), pd.DataFrame(records))


def _refused(call, *fragments: str) -> str:
    """``call()`` must raise SIRTInputError whose message contains every fragment; returns the message."""
    try:
        call()
    except SIRTInputError as exc:
        message = str(exc)
        for fragment in fragments:
            check(fragment in message, f"the refusal does not say {fragment!r}: {message}")
        return message
    raise AssertionError(f"accepted, but should be refused with a message about {fragments}")


def check_identity(row: dict, model: SmallModel, what: str) -> None:
    """The model's identity columns of one prediction row match the model folder."""
    card = model.card
    payload_sha256 = hashlib.sha256((model.folder / model_card.PAYLOAD_FILE).read_bytes()).hexdigest()
    check(row["model_id"] == card["model"]["id"], f"{what}: model_id {row['model_id']!r}")
    check(row["payload_sha256"] == payload_sha256 == card["payload"]["sha256"], f"{what}: payload SHA-256 {row['payload_sha256']!r}")
    check(row["trained_utc"] == card["created_utc"], f"{what}: training date {row['trained_utc']!r}")
    check(row["intended_use"] == "research", f"{what}: intended use {row['intended_use']!r}")
    check(row["decision_threshold"] == card["decision_threshold"], f"{what}: threshold {row['decision_threshold']}")
    check(row["model_description"] == "logistic regression, anova feature selection, y90_dosiomics_dose features", f"{what}: description {row['model_description']!r}")
    auc = card["cv_metrics"]["auc"]
    check((row["cv_auc"], row["cv_auc_ci_low"], row["cv_auc_ci_high"]) == (auc["value"], auc["ci_low"], auc["ci_high"]), f"{what}: CV AUC")


def check_prediction(row: dict, expected, what: str) -> None:
    """One prediction row equals ``model_io.predict``'s prediction for the same patient."""
    check(row["patient_id"] == expected.row_id, f"{what}: patient {row['patient_id']!r} != {expected.row_id!r}")
    check(abs(row["probability_response"] - expected.probability) <= 1e-12, f"{what}: probability {row['probability_response']} != {expected.probability}")
    check(row["predicted_class"] == expected.predicted_class, f"{what}: class {row['predicted_class']!r} != {expected.predicted_class!r}")
    check(row["warnings"] == "; ".join(expected.warnings), f"{what}: warnings {row['warnings']!r} != {expected.warnings}")
    label = "responder" if row["probability_response"] >= row["decision_threshold"] else "non-responder"
    check(row["predicted_class"] == label, f"{what}: class does not follow the threshold")


# ---------------------------------------------------------------------------------------------
# scenarios


def scenario_prediction_matches_model_io(scene, work_dir: str | Path | None = None) -> dict:
    """A patient's feature table as SIRTDosiomics writes it (one row, every cohort column, an empty
    ``_error`` column) → a new prediction table whose probability, class and warnings are those of
    ``model_io.predict`` on the same values, with the model's identity; the input table is unchanged.
    The whole cohort in one table (``row=None``) gives one row per patient, ``row=k`` patient k; a
    table with only the features the classifier uses gives the same probability."""
    model = small_model(work_dir)
    required = list(model.card["required_features"])
    records = patient_records(model, [4])
    features = add_feature_table(scene, records, "patient P004 features", {"y90_dose_tumour_error": ""})
    before, ids_before = _snapshot(features), _node_ids(scene)
    progress: list[tuple[float, str]] = []

    out = predict_from_table_node(str(model.folder), features, row=0, progress=lambda f, m: progress.append((f, m)))
    check(out is not None and out.IsA("vtkMRMLTableNode"), "no prediction table node was returned")
    check(_node_ids(scene) - ids_before == {out.GetID()}, "the prediction added other nodes than its table, or none")
    check(_snapshot(features) == before, "the feature table changed")
    check(out.GetName() == "patient P004 features response prediction", f"prediction table name {out.GetName()!r}")
    rows = table_rows(out)
    check([c[0] for c in PREDICTION_COLUMNS] == list(rows[0]), f"prediction columns {list(rows[0])}")
    check(len(rows) == 1, f"{len(rows)} prediction rows for one patient")
    expected = _expected(model, records)[0]
    check_prediction(rows[0], expected, "P004")
    check_identity(rows[0], model, "P004")
    check(rows[0]["out_of_range_features"] == "" and "outside" not in rows[0]["warnings"], "a training patient was out of range")
    check(rows[0]["feature_table"] == features.GetName() and rows[0]["feature_row"] == 0.0, "source of the prediction")
    check(out.GetAttribute("SIRT.Table") == logic.PREDICTION_TABLE_KIND, "SIRT.Table attribute")
    check(out.GetAttribute(logic.ATTRIBUTE_PREFIX + "PayloadSha256") == model.card["payload"]["sha256"], "payload hash attribute")
    check(json.loads(out.GetAttribute(logic.ATTRIBUTE_PREFIX + "RequiredFeatures")) == required, "required features attribute")
    check(out.GetAttribute(logic.ATTRIBUTE_PREFIX + "FeatureTableLayout") == logic.LAYOUT_ROWS, "layout attribute")
    check(out.GetNodeReference(logic.FEATURES_REFERENCE).GetID() == features.GetID(), "no reference to the feature table")
    check(out.GetColumnTitle("probability_response") == "Probability of response", "column title")
    fractions = [f for f, _ in progress]
    check(fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0, f"progress {fractions}")

    # The whole cohort in one table: every row, and one chosen row.
    all_records = patient_records(model, range(len(model.features)))
    cohort = add_feature_table(scene, all_records, "cohort features")
    everyone = table_rows(predict_from_table_node(model.folder, cohort, row=None))
    expected_all = _expected(model, all_records)
    check(len(everyone) == len(expected_all) == 30, f"{len(everyone)} rows for 30 patients")
    for row, theirs, k in zip(everyone, expected_all, range(30)):
        check_prediction(row, theirs, f"cohort row {k}")
        check(row["feature_row"] == float(k), f"cohort row {k}: feature_row {row['feature_row']}")
    seventh = table_rows(predict_from_table_node(model.folder, cohort, row=7))
    check(len(seventh) == 1 and seventh[0]["patient_id"] == "P007", f"row=7 predicted {[r['patient_id'] for r in seventh]}")
    check_prediction(seventh[0], expected_all[7], "row 7")
    check(len({r["predicted_class"] for r in everyone}) == 2, "the cohort's predictions are all of one class")

    # Only the classifier's features (the other inputs are imputed and do not change the result).
    reduced = add_feature_table(scene, patient_records(model, [4], required), "P004 required features only")
    only = table_rows(predict_from_table_node(model.folder, reduced))
    check(abs(only[0]["probability_response"] - expected.probability) <= 1e-12, "leaving out unused inputs changed the probability")
    return {"model": model, "features": features, "output": out, "rows": rows, "expected": expected, "cohort_rows": everyone}


def scenario_name_value_table(scene) -> dict:
    """A two-column name/value table (values typed as text, a ``patient_id`` entry) gives the same
    prediction as the one-row table."""
    model = small_model()
    record = patient_records(model, [11], model.card["required_features"])[0]
    node = add_name_value_table(scene, record, "P011 typed in")
    before = _snapshot(node)
    out = predict_from_table_node(model.folder, node)
    rows = table_rows(out)
    check(len(rows) == 1, "a name/value table is one patient")
    check_prediction(rows[0], _expected(model, [record])[0], "name/value")
    check(out.GetAttribute(logic.ATTRIBUTE_PREFIX + "FeatureTableLayout") == logic.LAYOUT_NAME_VALUE, "layout attribute")
    check(_snapshot(node) == before, "the name/value table changed")
    _refused(lambda: predict_from_table_node(model.folder, node, row=1), "name/value", "row 0")
    return {"model": model, "features": node, "output": out, "rows": rows}


def scenario_out_of_range_warning(scene) -> dict:
    """A feature outside its training range is predicted, named in ``out_of_range_features`` and
    explained in ``warnings`` (value and range), as ``model_io.predict`` warns."""
    model = small_model()
    required = list(model.card["required_features"])
    feature = required[0]
    low, high = model.card["training_range"][feature]
    record = patient_records(model, [2])[0]
    record[feature] = high + (high - low)
    node = add_feature_table(scene, [record], "P002 out of range")
    rows = table_rows(predict_from_table_node(model.folder, node))
    expected = _expected(model, [record])[0]
    check_prediction(rows[0], expected, "out of range")
    check(rows[0]["out_of_range_features"] == feature, f"out_of_range_features {rows[0]['out_of_range_features']!r}")
    check(f"{feature} = {record[feature]:g} is outside the training range" in rows[0]["warnings"], f"warnings {rows[0]['warnings']!r}")
    check(math.isfinite(rows[0]["probability_response"]), "no probability despite the warning")
    # At the ends of the range: no warning.
    record[feature] = high
    edge = table_rows(predict_from_table_node(model.folder, add_feature_table(scene, [record], "P002 at the edge")))
    check(edge[0]["out_of_range_features"] == "", f"a value at the end of the training range was flagged: {edge[0]['warnings']}")
    return {"model": model, "feature": feature, "rows": rows, "expected": expected}


def _tamper_types(folder: Path) -> None:
    """Make the payload name ``subprocess.Popen`` instead of one of our classes, and fix the card's hash
    (an attacker who edits both files): the type check must refuse it."""

    def replace(node) -> bool:
        if isinstance(node, dict):
            if node.get("__class__") == "SpearmanRedundancyFilter":
                node["__class__"], node["__module__"] = "Popen", "subprocess"
                return True
            return any(replace(v) for v in node.values())
        if isinstance(node, list):
            return any(replace(v) for v in node)
        return False

    payload = folder / model_card.PAYLOAD_FILE
    with zipfile.ZipFile(payload) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    check(replace(schema), "the payload has no SpearmanRedundancyFilter to replace")
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(payload, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    card_path = folder / model_card.CARD_FILE
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["payload"]["sha256"] = hashlib.sha256(payload.read_bytes()).hexdigest()
    card["integrity"]["sha256"] = model_card.card_integrity_sha256(card)  # who edits both files reseals the card too
    card_path.write_text(json.dumps(card), encoding="utf-8")


def scenario_refusals(scene) -> dict:
    """Missing features (named), missing values (with SIRTDosiomics' reason), text that is not a
    number, a row that does not exist, a folder that is not a model, a tampered payload and a payload
    with a type outside the allow-list are refused with ``SIRTInputError``; nothing is added to the
    scene, a prediction table to refill keeps its content and the feature table is unchanged."""
    model = small_model()
    required = list(model.card["required_features"])
    good = add_feature_table(scene, patient_records(model, [3]), "P003 features")
    target = predict_from_table_node(model.folder, good)  # a prediction table to refill
    snapshots = {node.GetID(): _snapshot(node) for node in (good, target)}
    messages = {}

    missing = add_feature_table(scene, patient_records(model, [3], [f for f in required if f != required[1]]), "P003 lacking one")
    snapshots[missing.GetID()] = _snapshot(missing)
    record = patient_records(model, [3])[0]
    record[required[2]] = None
    prefix = "_".join(required[2].split("_")[:3])  # e.g. y90_dose_tumour
    nan = add_feature_table(scene, [record], "P003 with a failed feature set", {f"{prefix}_error": "segment 'tumour' is empty"})
    snapshots[nan.GetID()] = _snapshot(nan)
    text = patient_records(model, [3], required)[0]
    text[required[0]] = "high"
    not_a_number = add_feature_table(scene, [text], "P003 with text")
    snapshots[not_a_number.GetID()] = _snapshot(not_a_number)
    empty_folder = _temporary_folder("SIRTResponseTest-")
    tampered = _copy_model(model, "tampered")
    payload = tampered / model_card.PAYLOAD_FILE
    payload.write_bytes(payload.read_bytes() + b"\0")
    foreign = _copy_model(model, "foreign types")
    _tamper_types(foreign)
    ids_before = _node_ids(scene)

    messages["missing_feature"] = _refused(lambda: predict_from_table_node(model.folder, missing), required[1], "lacks feature")
    check(required[0] not in messages["missing_feature"], "the message names features that are there")
    messages["missing_value"] = _refused(
        lambda: predict_from_table_node(model.folder, nan, table_node=target), required[2], "no value", "segment 'tumour' is empty"
    )
    messages["not_a_number"] = _refused(lambda: predict_from_table_node(model.folder, not_a_number), required[0], "'high' is not a number")
    messages["row"] = _refused(lambda: predict_from_table_node(model.folder, good, row=3), "row 3 does not exist")
    messages["output_is_input"] = _refused(lambda: predict_from_table_node(model.folder, good, table_node=good), "cannot be the feature table")
    messages["no_folder"] = _refused(lambda: predict_from_table_node(empty_folder / "nowhere", good), "is not a folder")
    messages["not_a_model"] = _refused(lambda: predict_from_table_node(empty_folder, good, table_node=target), "not a readable model folder")
    messages["tampered"] = _refused(lambda: predict_from_table_node(tampered, good, table_node=target), "does not match the model card")
    messages["tampered_summary"] = _refused(lambda: model_summary(tampered), "does not match the model card")
    messages["foreign_types"] = _refused(lambda: predict_from_table_node(foreign, good), "outside the allow-list", "subprocess.Popen")
    messages["no_table"] = _refused(lambda: predict_from_table_node(model.folder, None), "table node")

    check(_node_ids(scene) == ids_before, f"refused predictions left nodes in the scene: {_node_ids(scene) - ids_before}")
    for node in (good, target, missing, nan, not_a_number):
        check(_snapshot(node) == snapshots[node.GetID()], f"a refused prediction changed table {node.GetName()!r}")
    return {"model": model, "messages": messages}


def scenario_cancel_and_refill(scene) -> dict:
    """Cancelling at any step adds no node and leaves a table to refill as it was; predicting into an
    existing prediction table replaces its rows and provenance, in the same node."""
    from SIRTDosimetryLib.mrml.logic import OperationCancelled

    model = small_model()
    first = add_feature_table(scene, patient_records(model, [5]), "P005 features")
    second = add_feature_table(scene, patient_records(model, [6]), "P006 features")
    out = predict_from_table_node(model.folder, first)
    before, ids_before = _snapshot(out), _node_ids(scene)
    calls = []
    for stop_at in range(1, 6):  # cancel at each of the 5 checks
        calls.clear()

        def cancel(stop_at=stop_at):
            calls.append(1)
            return len(calls) >= stop_at

        try:
            predict_from_table_node(model.folder, second, table_node=None if stop_at % 2 else out, cancel=cancel)
            raise AssertionError(f"cancelling at check {stop_at} did not stop the prediction")
        except OperationCancelled:
            pass
        check(_node_ids(scene) == ids_before, f"cancelling at check {stop_at} left nodes in the scene")
        check(_snapshot(out) == before, f"cancelling at check {stop_at} changed the table to refill")

    again = predict_from_table_node(model.folder, second, table_node=out)
    check(again.GetID() == out.GetID(), "refilling returned another node")
    check(_node_ids(scene) == ids_before, "refilling added nodes")
    rows = table_rows(again)
    check(len(rows) == 1 and rows[0]["patient_id"] == "P006", f"refilled rows {[r['patient_id'] for r in rows]}")
    check_prediction(rows[0], _expected(model, patient_records(model, [6]))[0], "refilled")
    check(again.GetNodeReference(logic.FEATURES_REFERENCE).GetID() == second.GetID(), "the refilled table refers to the old features")
    check(again.GetAttribute(logic.ATTRIBUTE_PREFIX + "FeatureTable") == second.GetName(), "provenance not replaced")
    return {"model": model, "output": again}


def scenario_model_summary(scene) -> dict:
    """The model card summary names the model, its CV AUC, the features it uses, the payload hash and
    the intended use; ``model_facts`` gives the same facts as data."""
    model = small_model()
    card = model.card
    facts = model_facts(model.folder)
    check(facts["model_id"] == card["model"]["id"] and facts["required_features"] == card["required_features"], "facts: identity")
    check(facts["payload_sha256"] == card["payload"]["sha256"] and facts["intended_use"] == "research", "facts: hash, use")
    check(facts["cv_auc"] == card["cv_metrics"]["auc"]["value"], "facts: AUC")
    text = model_summary(str(model.folder))
    for fragment in (
        card["model"]["id"],
        f"AUC {card['cv_metrics']['auc']['value']:.2f}",
        *card["required_features"],
        card["payload"]["sha256"],
        "Intended use: research",
        f"on {card['training_cohort']['n_patients']} patients",
    ):
        check(fragment in text, f"the model summary lacks {fragment!r}:\n{text}")
    check("<" not in text, "the summary is shown in a QLabel: no markup")
    return {"model": model, "summary": text, "facts": facts}


def scenario_scene_round_trip(scene, work_dir: str | Path | None = None) -> dict:
    """A prediction table (with an out-of-range warning) is saved with the scene and reopened with the
    same rows (numbers to Slicer's 6 significant digits, exact probabilities in an attribute), the same
    provenance attributes and its reference to the feature table."""
    from SIRTDosimetryLib.mrml.scene import read_scene, save_scene

    model = small_model()
    feature = model.card["required_features"][1]
    low, high = model.card["training_range"][feature]
    records = patient_records(model, [8, 9])
    records[1][feature] = low - (high - low)
    features = add_feature_table(scene, records, "two patients")
    out = predict_from_table_node(model.folder, features, row=None)
    rows = table_rows(out)
    check(rows[1]["out_of_range_features"] == feature and rows[0]["out_of_range_features"] == "", "the warning is not on row 1")
    attributes = {n: out.GetAttribute(n) for n in out.GetAttributeNames()}

    work_dir = Path(work_dir) if work_dir is not None else _temporary_folder("SIRTResponseTest-")
    path = save_scene(scene, work_dir / "response_prediction.mrb", overwrite=True)
    reopened = read_scene(path)
    again = reopened.scene.GetFirstNodeByName(out.GetName())
    check(again is not None and again.IsA("vtkMRMLTableNode"), "the prediction table is missing from the reopened scene")
    rows_again = table_rows(again)
    check(len(rows_again) == len(rows) and [list(r) for r in rows_again] == [list(r) for r in rows], "columns or rows changed")
    for r, (mine, theirs) in enumerate(zip(rows, rows_again)):
        for column, kind, _, _ in PREDICTION_COLUMNS:
            a, b = mine[column], theirs[column]
            same = a == b if kind == "text" else abs(a - b) <= SAVED_RELATIVE * max(abs(a), 1e-12)
            check(same, f"row {r} {column}: {a!r} became {b!r} through the round trip")
    check({n: again.GetAttribute(n) for n in again.GetAttributeNames()} == attributes, "attributes changed through the round trip")
    exact = json.loads(again.GetAttribute(logic.ATTRIBUTE_PREFIX + "Probabilities"))
    check([e["probability_response"] for e in exact] == [r["probability_response"] for r in rows], "exact probabilities lost")
    reference = again.GetNodeReference(logic.FEATURES_REFERENCE)
    check(reference is not None and reference.GetName() == features.GetName(), "the reference to the feature table was lost")
    check(again.GetColumnTitle("probability_response") == "Probability of response", "column titles lost")
    return {"model": model, "output": out, "rows": rows, "scene_path": path, "reopened": reopened, "rows_again": rows_again}


ALL_SCENARIOS = (
    scenario_prediction_matches_model_io,
    scenario_name_value_table,
    scenario_out_of_range_warning,
    scenario_refusals,
    scenario_cancel_and_refill,
    scenario_model_summary,
    scenario_scene_round_trip,
)
