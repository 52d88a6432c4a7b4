"""Response prediction on MRML nodes: model folder + a feature table node → a new prediction table node.

This is what the SIRTResponse module's logic calls, and what a Slicer Python console script calls::

    from SIRTResponseLib import mrml
    print(mrml.model_summary("/path/to/model"))            # what the model card says
    table = mrml.predict_from_table_node("/path/to/model", featureTableNode, row=0)
    table = mrml.predict_from_table_node("/path/to/model", cohortTableNode, row=None)  # every row

The feature table
-----------------
Two layouts are read; which one is decided from the model's input feature names:

- **one row per patient** (the natural one, and what SIRTDosiomics writes): one column per feature,
  named as in the training cohort table (``y90_dose_tumour_glcm_JointEnergy``,
  ``y90_dvc_tumour_dose_mean_gy``, ``clinical_age``, ...), and optionally a ``patient_id`` column
  (``id_column``). ``row`` picks the patient (0 = first), ``row=None`` predicts every row. Columns the
  model does not use — SIRTDosiomics' ``_error``/``_warning``/``_diagnostics_`` columns, other
  features — are ignored.
- **name/value** (a patient's features typed in or pasted as a list): exactly two columns, the first
  text with the feature names, the second the values; no column is named after a model input. A
  ``patient_id`` entry gives the id. The whole table is one patient (``row`` must be 0 or None).

Values may be numeric columns or text holding numbers (a table read from a CSV without a schema);
empty text and ``nan`` are missing values. Every feature that reaches the classifier (the card's
``required_features``) must be there with a finite value; the other input features may be left
out, as they are imputed with the training median and do not change the prediction
(``model_io.predict``). Without an id column, a row is named after the table node (and its row).

A dosimetry summary table (one row per *segment*) is not a feature table: its values become
features only through the cohort table naming (``<source>_dvc_<structure>_<metric>``) that
``sirt features``/SIRTDosiomics write.

The prediction table
--------------------
A new ``vtkMRMLTableNode`` (or ``table_node`` refilled) with one row per patient predicted and the
columns of :data:`PREDICTION_COLUMNS`: ``patient_id``, ``probability_response``,
``predicted_class``, ``decision_threshold``, ``out_of_range_features`` (required features outside
their training range, ``"; "``-separated), ``warnings`` (each out-of-range value with its range, and
package versions that differ from training), the model's identity (``model_id``,
``model_description``, ``payload_sha256``, ``trained_utc``, ``intended_use`` — always "research"),
its cross-validated AUC with the CI, and where the row came from (``feature_table``,
``feature_row``). Node attributes ``SIRT.Table`` = ``response_prediction`` and ``SIRT.Response.*``
(model id, folder, payload and card SHA-256, required features, training range, time, and the
probabilities at full precision: Slicer saves table cells with 6 significant digits) and the node
reference ``SIRT.features`` to the feature table are saved with the scene.

Errors and safety
-----------------
The model is loaded by ``model_io.load_model``: a payload whose SHA-256 differs from the card's or
that needs a type outside the allow-list is refused, nothing is unpickled. A folder that is not a
model folder, a missing feature (named), a value that is not a number, a row that does not exist
raise ``SIRTInputError`` before any node is added; on error or cancellation (``OperationCancelled``)
the scene is as it was and a ``table_node`` to refill keeps its content. The feature table is only
read.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from SIRTDosimetryLib.errors import SIRTInputError

# model_card needs the standard library only; model_io (scikit-learn, XGBoost, skops) is imported on prediction.
from ..model_card import CLASSIFIER_NAMES, read_checked

ProgressCallback = Callable[[float, str], None]
"""``progress(fraction in [0, 1], message)``."""
CancelCheck = Callable[[], bool]
"""Returns True when the user asked to stop; checked between steps."""

PREDICTION_TABLE_KIND = "response_prediction"
"""Value of the prediction table node's ``SIRT.Table`` attribute."""
ATTRIBUTE_PREFIX = "SIRT.Response."
FEATURES_REFERENCE = "SIRT.features"
"""Node reference from the prediction table to the feature table it was computed from."""
DEFAULT_ID_COLUMN = "patient_id"
LAYOUT_ROWS = "rows"
LAYOUT_NAME_VALUE = "name_value"

PREDICTION_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    # (column name, kind, title shown, description)
    ("patient_id", "text", "Patient", "patient id column of the feature table; else the table node's name (and row)"),
    ("probability_response", "number", "Probability of response", "probability of response (complete or partial response) given by the model"),
    ("predicted_class", "text", "Predicted class", "responder when the probability is at least the decision threshold, else non-responder"),
    ("decision_threshold", "number", "Threshold", "decision threshold of the model card"),
    ("out_of_range_features", "text", "Out-of-range features", "required features outside the range of the training cohort, separated by '; '"),
    ("warnings", "text", "Warnings", "each out-of-range value with its training range, and package versions that differ from training, separated by '; '"),
    ("model_id", "text", "Model", "model id of the model card (strategy__selector__classifier)"),
    ("model_description", "text", "Model description", "classifier, feature selector and feature strategy"),
    ("payload_sha256", "text", "Payload SHA-256", "SHA-256 of model.skops, checked against the model card before loading"),
    ("trained_utc", "text", "Trained (UTC)", "when the model was fitted and exported"),
    ("intended_use", "text", "Intended use", "research: not a medical device; a prediction must not guide treatment"),
    ("cv_auc", "number", "CV AUC", "cross-validated AUC of the model (pooled out-of-fold predictions of the nested CV)"),
    ("cv_auc_ci_low", "number", "CV AUC CI low", "lower end of the AUC's bootstrap confidence interval"),
    ("cv_auc_ci_high", "number", "CV AUC CI high", "upper end of the AUC's bootstrap confidence interval"),
    ("feature_table", "text", "Feature table", "name of the feature table node"),
    ("feature_row", "number", "Feature row", "row of the feature table (0 = first)"),
)
"""The prediction table's columns, in order."""


# ---------------------------------------------------------------------------------------------
# the model card (standard library only)


def _metric(card: dict, name: str) -> tuple[float, float, float]:
    entry = (card.get("cv_metrics") or {}).get(name) or {}
    return tuple(_float(entry.get(k)) for k in ("value", "ci_low", "ci_high"))


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _description(model: dict) -> str:
    parts = []
    if model.get("classifier"):
        parts.append(CLASSIFIER_NAMES.get(model["classifier"], model["classifier"]))
    if model.get("selector"):
        parts.append(f"{model['selector']} feature selection")
    if model.get("strategy"):
        parts.append(f"{model['strategy']} features")
    return ", ".join(parts)


def model_facts(model_dir) -> dict:
    """What the model card of ``model_dir`` says, after checking the payload's SHA-256 against it.

    Reads the card only (nothing is unpickled; ``predict_from_table_node`` loads the payload through
    ``model_io.load_model``, which also checks its types). Raises ``SIRTInputError`` for a folder
    that is not a model folder or a payload that does not match its card.
    """
    checked = read_checked(model_dir)
    folder, card, payload_sha256, card_sha256 = checked.folder, checked.card, checked.payload_sha256, checked.card_sha256
    model = card.get("model") or {}
    auc, auc_low, auc_high = _metric(card, "auc")
    accuracy, accuracy_low, accuracy_high = _metric(card, "accuracy")
    cv = card.get("cv_metrics") or {}
    return {
        "folder": str(folder),
        "model_id": str(model.get("id", "")),
        "strategy": model.get("strategy"),
        "selector": model.get("selector"),
        "classifier": model.get("classifier"),
        "description": _description(model),
        "hyperparameters": model.get("hyperparameters") or {},
        "trained_utc": str(card.get("created_utc", "")),
        "intended_use": str(card.get("intended_use", "")),
        "intended_use_note": str(card.get("intended_use_note", "")),
        "positive_class": card.get("positive_class", "responder"),
        "decision_threshold": _float(card.get("decision_threshold", 0.5)),
        "input_features": list(card.get("input_features") or []),
        "required_features": list(card.get("required_features") or []),
        "training_range": dict(card.get("training_range") or {}),
        "training_cohort": dict(card.get("training_cohort") or {}),
        "cv_auc": auc,
        "cv_auc_ci": (auc_low, auc_high),
        "cv_accuracy": accuracy,
        "cv_accuracy_ci": (accuracy_low, accuracy_high),
        "validation": cv.get("validation", ""),
        "study_level": dict(cv.get("study_level") or {}),
        "confidence_intervals": cv.get("confidence_intervals", ""),
        "software": dict(card.get("software") or {}),
        "payload_sha256": payload_sha256,
        "card_sha256": card_sha256,
    }


def _interval(value: float, ci: tuple[float, float]) -> str:
    if not math.isfinite(value):
        return "not given"
    if all(math.isfinite(x) for x in ci):
        return f"{value:.2f} (CI {ci[0]:.2f} to {ci[1]:.2f})"
    return f"{value:.2f}"


def _best_of_many_line(study: dict) -> str:
    """What chance gives a study's best model: the study-level null and the selection-aware AUC, or their absence."""
    if not study:
        return ("Study-level null: not run. A model chosen as the best of many has an optimistic cross-validated AUC "
                "(sirt train --study-permutations runs the null).")
    about = "this model" if study.get("this_model_is_the_study_best") else "the study's best model, not this one"
    return (
        f"Best of {study.get('n_models', '?')} models: with permuted labels the best AUC reached "
        f"{_float(study.get('null_best_auc_mean')):.2f} on average (95th percentile {_float(study.get('null_best_auc_q95')):.2f}, "
        f"{study.get('n_permutations', '?')} permutations); study-level p = {_float(study.get('p_value')):.3g} and "
        f"selection-aware AUC {_interval(_float(study.get('selection_aware_auc')), (_float(study.get('selection_aware_ci_low')), _float(study.get('selection_aware_ci_high'))))}, "
        f"for {about}"
    )


def model_summary(model_dir) -> str:
    """A short plain-text description of the model card (identity, training, CV metrics, features).

    Standard library only; raises ``SIRTInputError`` like :func:`model_facts`.
    """
    f = model_facts(model_dir)
    cohort = f["training_cohort"]
    lines = [f"Model: {f['model_id'] or '(no id)'}" + (f" ({f['description']})" if f["description"] else "")]
    trained = f"Trained: {f['trained_utc'] or 'unknown date'}"
    if cohort:
        trained += (
            f" on {cohort.get('n_patients', '?')} patients ({cohort.get('n_responders', '?')} responders, "
            f"{cohort.get('n_non_responders', '?')} non-responders; {cohort.get('criterion', '?')}"
            + (f", per {cohort['unit']}" if cohort.get("unit") and cohort.get("unit") != "patient" else "")
            + ")"
        )
    lines.append(trained)
    lines.append(f"Cross-validated AUC {_interval(f['cv_auc'], f['cv_auc_ci'])}, accuracy {_interval(f['cv_accuracy'], f['cv_accuracy_ci'])}")
    if f["validation"]:
        lines.append(f"Validation: {f['validation']}; {f['confidence_intervals']}")
    lines.append(_best_of_many_line(f["study_level"]))
    required = f["required_features"]
    lines.append(f"Features used ({len(required)} of {len(f['input_features'])} inputs): {', '.join(required)}")
    lines.append(f"Decision threshold: {f['decision_threshold']:g} (probability of response)")
    lines.append(f"Payload SHA-256: {f['payload_sha256']} (matches the model card)")
    software = f["software"]
    versions = ", ".join(f"{name} {software[name]}" for name in ("scikit-learn", "xgboost", "skops") if name in software)
    if versions:
        lines.append(f"Trained with {versions}")
    lines.append(f"Intended use: {f['intended_use'] or 'unknown'}. {f['intended_use_note']}".rstrip())
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# reading the feature table


@dataclass
class FeatureRows:
    """Rows read from a feature table node: ids, their row numbers in the table, and values by feature."""

    layout: str  # LAYOUT_ROWS or LAYOUT_NAME_VALUE
    ids: list[str]
    rows: list[int]
    values: dict[str, list[float]]  # feature → one value per row (NaN when missing)
    errors: dict[str, list[str]]  # "<prefix>_error" text column → one text per row (SIRTDosiomics)


def _number(value, feature: str, where: str) -> float:
    if isinstance(value, float):
        return value
    text = value.strip()
    if text == "" or text.lower() in ("nan", "na", "n/a"):
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise SIRTInputError(f"feature {feature!r} {where}: {value!r} is not a number") from None


def _id_text(value) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}" if math.isfinite(value) else ""
    return value.strip()


def _row_index(row) -> int | None:
    if row is None:
        return None
    if isinstance(row, bool) or not isinstance(row, numbers.Real) or not math.isfinite(row) or int(row) != row:
        raise SIRTInputError(f"row must be a whole number (0 = first) or None (every row), got {row!r}")
    return int(row)


def _columns(table) -> list:
    return [table.GetColumn(c) for c in range(table.GetNumberOfColumns())]


def read_feature_table(table_node, features, row: int | None = 0, id_column: str = DEFAULT_ID_COLUMN) -> FeatureRows:
    """The values of ``features`` (the model's input features) in ``table_node``; see the module's
    docstring for the two layouts. Features the table lacks are left out of ``values`` (the caller
    decides whether they are needed). Only reads the table."""
    from SIRTDosimetryLib.mrml.outputs import cell_value  # VTK: imported on prediction only

    if table_node is None or not hasattr(table_node, "IsA") or not table_node.IsA("vtkMRMLTableNode"):
        raise SIRTInputError("choose a table node with the patient's features")
    table = table_node.GetTable()
    name = table_node.GetName() or table_node.GetID()
    columns = _columns(table)
    n_rows = table.GetNumberOfRows()
    if not columns or n_rows == 0:
        raise SIRTInputError(f"feature table {name!r} is empty")
    row = _row_index(row)
    wanted = list(dict.fromkeys(features))
    column_names = [c.GetName() or "" for c in columns]
    name_value = (
        len(columns) == 2
        and columns[0].IsA("vtkStringArray")
        and not ({*column_names} & {*wanted, id_column})
    )
    if name_value:
        return _read_name_value(columns, n_rows, wanted, row, id_column, name)
    if row is not None and not 0 <= row < n_rows:
        raise SIRTInputError(f"feature table {name!r} has {n_rows} row(s); row {row} does not exist (0 = first)")
    rows = list(range(n_rows)) if row is None else [row]
    by_name = dict(zip(column_names, columns))  # a vtkTable's column names are unique
    if id_column in by_name:
        ids = [_id_text(cell_value(by_name[id_column], r)) for r in rows]
    else:
        ids = [""] * len(rows)
    ids = [i or (name if n_rows == 1 else f"{name} row {r}") for i, r in zip(ids, rows)]
    values = {
        feature: [_number(cell_value(by_name[feature], r), feature, f"in row {r}") for r in rows]
        for feature in wanted if feature in by_name
    }
    errors = {
        column_name: [str(cell_value(array, r)).strip() for r in rows]
        for column_name, array in by_name.items()
        if column_name.endswith("_error") and not array.IsA("vtkDataArray")
    }
    return FeatureRows(LAYOUT_ROWS, ids, rows, values, errors)


def _read_name_value(columns, n_rows: int, wanted: list[str], row: int | None, id_column: str, name: str) -> FeatureRows:
    from SIRTDosimetryLib.mrml.outputs import cell_value  # VTK: imported on prediction only

    if row not in (None, 0):
        raise SIRTInputError(f"feature table {name!r} is a two-column name/value table: it holds one patient, use row 0")
    names, values = columns
    entries: dict[str, object] = {}
    for r in range(n_rows):
        key = str(cell_value(names, r)).strip()
        if key in entries and key in (*wanted, id_column):
            raise SIRTInputError(f"feature table {name!r} lists {key!r} twice")
        entries.setdefault(key, cell_value(values, r))
    patient = _id_text(entries[id_column]) if id_column in entries else ""
    features = {f: [_number(entries[f], f, "in the name/value table")] for f in wanted if f in entries}
    errors = {k: [str(v).strip()] for k, v in entries.items() if k.endswith("_error") and isinstance(v, str)}
    return FeatureRows(LAYOUT_NAME_VALUE, [patient or name], [0], features, errors)


def _explain(rows: FeatureRows, message: str, missing: list[str]) -> str:
    """Add the SIRTDosiomics ``<prefix>_error`` texts that say why features are missing."""
    reasons = []
    for column, texts in rows.errors.items():
        prefix = column[: -len("_error")] + "_"
        text = next((t for t in texts if t), "")
        if text and any(f.startswith(prefix) for f in missing):
            reasons.append(f"{column}: {text}")
    return message + (f" (the feature table says: {'; '.join(reasons)})" if reasons else "")


# ---------------------------------------------------------------------------------------------
# the prediction


class _Steps:
    def __init__(self, progress: ProgressCallback | None, cancel: CancelCheck | None):
        self.progress, self.cancel = progress, cancel

    def __call__(self, fraction: float, message: str, cancellable: bool = True) -> None:
        if cancellable and self.cancel is not None and self.cancel():
            from SIRTDosimetryLib.mrml.logic import OperationCancelled

            raise OperationCancelled("response prediction cancelled")
        if self.progress is not None:
            self.progress(fraction, message)


def _prediction_rows(model, facts: dict, rows: FeatureRows, predictions, feature_table_name: str) -> list[dict]:
    ranges = model.card["training_range"]
    auc, (auc_low, auc_high) = facts["cv_auc"], facts["cv_auc_ci"]
    out = []
    for index, prediction in enumerate(predictions):
        outside = []
        for feature in model.required_features:
            low, high = ranges[feature]
            if not low <= rows.values[feature][index] <= high:  # the comparison model_io.predict warns with
                outside.append(feature)
        out.append({
            "patient_id": rows.ids[index],
            "probability_response": prediction.probability,
            "predicted_class": prediction.predicted_class,
            "decision_threshold": facts["decision_threshold"],
            "out_of_range_features": "; ".join(outside),
            "warnings": "; ".join(prediction.warnings),
            "model_id": facts["model_id"],
            "model_description": facts["description"],
            "payload_sha256": facts["payload_sha256"],
            "trained_utc": facts["trained_utc"],
            "intended_use": facts["intended_use"],
            "cv_auc": auc,
            "cv_auc_ci_low": auc_low,
            "cv_auc_ci_high": auc_high,
            "feature_table": feature_table_name,
            "feature_row": float(rows.rows[index]),
        })
    return out


def _fill_table(table_node, records: list[dict]) -> None:
    from SIRTDosimetryLib.mrml.outputs import add_column  # VTK: imported on prediction only

    modified = table_node.StartModify()
    try:
        table_node.RemoveAllColumns()
        if hasattr(table_node, "SetUseColumnTitleAsColumnHeader"):
            table_node.SetUseColumnTitleAsColumnHeader(True)
        for column, kind, title, description in PREDICTION_COLUMNS:
            add_column(table_node, column, [record[column] for record in records], title, description=description, text=kind == "text")
    finally:
        table_node.EndModify(modified)


def _set_provenance(table_node, feature_table_node, facts: dict, layout: str, id_column: str, records: list[dict]) -> None:
    for name in list(table_node.GetAttributeNames() or ()):
        if name.startswith(ATTRIBUTE_PREFIX):
            table_node.RemoveAttribute(name)
    # Slicer saves table cells with 6 significant digits: keep the exact probabilities in an attribute.
    exact = [{"patient_id": r["patient_id"], "probability_response": r["probability_response"]} for r in records]
    attributes = {
        "SIRT.Table": PREDICTION_TABLE_KIND,
        ATTRIBUTE_PREFIX + "ModelId": facts["model_id"],
        ATTRIBUTE_PREFIX + "ModelFolder": facts["folder"],
        ATTRIBUTE_PREFIX + "PayloadSha256": facts["payload_sha256"],
        ATTRIBUTE_PREFIX + "ModelCardSha256": facts["card_sha256"],
        ATTRIBUTE_PREFIX + "TrainedUtc": facts["trained_utc"],
        ATTRIBUTE_PREFIX + "IntendedUse": facts["intended_use"],
        ATTRIBUTE_PREFIX + "RequiredFeatures": json.dumps(facts["required_features"]),
        ATTRIBUTE_PREFIX + "TrainingRange": json.dumps(facts["training_range"], allow_nan=False),
        ATTRIBUTE_PREFIX + "FeatureTable": feature_table_node.GetName() or "",
        ATTRIBUTE_PREFIX + "FeatureTableLayout": layout,
        ATTRIBUTE_PREFIX + "IdColumn": id_column,
        ATTRIBUTE_PREFIX + "PredictedUtc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        ATTRIBUTE_PREFIX + "Probabilities": json.dumps(exact, allow_nan=False),
    }
    for name, value in attributes.items():
        table_node.SetAttribute(name, value)
    table_node.SetNodeReferenceID(FEATURES_REFERENCE, feature_table_node.GetID())


def _table_engine(feature_table_node) -> dict | None:
    """The pyradiomics build a SIRT Dosiomics feature table records (None for other tables)."""
    from SIRTDosiomicsLib.radiomics_engine import ENGINE_ATTRIBUTE

    text = feature_table_node.GetAttribute(ENGINE_ATTRIBUTE)
    try:
        engine = json.loads(text) if text else None
    except ValueError:
        return None
    return engine if isinstance(engine, dict) else None


def predict_from_table_node(
    model_dir,
    feature_table_node,
    row: int | None = 0,
    table_node=None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    *,
    id_column: str = DEFAULT_ID_COLUMN,
    name: str | None = None,
):
    """Predict the response of row ``row`` (None: every row) of ``feature_table_node`` with the model
    in ``model_dir``; returns the prediction table node (new, or ``table_node`` refilled).

    See the module's docstring for the table layouts and the output columns. ``progress`` is called
    between steps and ``cancel`` checked between steps (``OperationCancelled``); errors are
    ``SIRTInputError``. On error or cancellation no node is added and ``table_node`` is unchanged;
    the feature table is only read.
    """
    steps = _Steps(progress, cancel)
    if feature_table_node is None or not hasattr(feature_table_node, "IsA") or not feature_table_node.IsA("vtkMRMLTableNode"):
        raise SIRTInputError("choose a table node with the patient's features")
    scene = feature_table_node.GetScene()
    if scene is None:
        raise SIRTInputError("the feature table node is not in a scene")
    if table_node is not None:
        if not hasattr(table_node, "IsA") or not table_node.IsA("vtkMRMLTableNode"):
            raise SIRTInputError("the prediction output must be a table node")
        if table_node.GetID() == feature_table_node.GetID():
            raise SIRTInputError("the prediction table cannot be the feature table: choose 'Create new table'")
    row = _row_index(row)
    feature_table_name = feature_table_node.GetName() or feature_table_node.GetID()

    steps(0.0, "Checking the model")
    facts = model_facts(model_dir)  # cheap checks (folder, card, hash) before the heavy imports
    steps(0.1, "Loading the model")
    from SIRTDosimetryLib.mrml.convert import NewNodesRemoved

    from SIRTDosiomicsLib.radiomics_engine import prediction_warning

    from ..model_io import load_model, predict

    model = load_model(facts["folder"])  # hash again, types against the allow-list; never unpickles
    if model.card.get("payload", {}).get("sha256") != facts["payload_sha256"]:
        raise SIRTInputError(f"the model folder {facts['folder']} changed while it was being loaded; try again")

    engine_warning = prediction_warning(model.card, _table_engine(feature_table_node))
    if engine_warning:
        model.warnings.append(engine_warning)

    steps(0.4, "Reading the features")
    rows = read_feature_table(feature_table_node, model.input_features, row, id_column)
    missing = [f for f in model.required_features if f not in rows.values]
    if missing:
        where = "no column has that name" if rows.layout == LAYOUT_ROWS else "its name column does not list them"
        raise SIRTInputError(f"feature table {feature_table_name!r} lacks feature(s) the model needs: {', '.join(missing)} ({where})")
    absent = {
        rows.ids[i]: [f for f in model.required_features if not math.isfinite(rows.values[f][i])] for i in range(len(rows.ids))
    }
    absent = {k: v for k, v in absent.items() if v}
    if absent:
        message = f"feature table {feature_table_name!r} has no value for feature(s) the model needs: " + "; ".join(
            f"{k}: {', '.join(v)}" for k, v in absent.items()
        )
        raise SIRTInputError(_explain(rows, message, sorted({f for v in absent.values() for f in v})))

    steps(0.6, "Predicting")
    import pandas as pd

    key = "\0row id"  # cannot be a feature name
    frame = pd.DataFrame({key: rows.ids, **rows.values})
    predictions = predict(model, frame, id_column=key)
    records = _prediction_rows(model, facts, rows, predictions, feature_table_name)

    steps(0.9, "Writing the prediction table")
    with NewNodesRemoved(scene, on_error_only=True):
        if table_node is None:
            table_node = scene.AddNewNodeByClass(
                "vtkMRMLTableNode", scene.GenerateUniqueName(name or f"{feature_table_name} response prediction")
            )
        elif name:
            table_node.SetName(name)
        _fill_table(table_node, records)
        _set_provenance(table_node, feature_table_node, facts, rows.layout, id_column, records)
    steps(1.0, f"Done: {len(records)} prediction(s); research use only", cancellable=False)
    return table_node
