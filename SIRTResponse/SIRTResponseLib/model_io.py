"""Model folders: a safe payload, a JSON model card, and prediction for new patients.

A model folder holds two files:

- ``model.skops``: the fitted pipeline serialised with skops (``skops.io.dumps``). Loading never
  unpickles: skops rebuilds only the types it trusts by default (scikit-learn estimators, NumPy
  arrays, ...) plus the explicit allow-list :data:`ALLOWED_TYPES`; a payload that needs any other
  type is refused before anything in it is constructed. XGBoost models travel inside it as the
  booster's own raw (UBJSON) bytes, which ``xgboost.core.Booster`` restores.
- ``model_card.json``: what the model needs and what it is for — ordered input features, the
  features that reach the classifier (``required_features``), preprocessing parameters, the
  training range of each required feature, feature extraction settings, training cohort summary,
  cross-validated metrics with CIs, hyper-parameters, package versions, the payload's SHA-256 and
  the intended use ("research").

:func:`load_model` refuses a payload whose SHA-256 differs from the card's, or which needs a type
outside the allow-list. :func:`predict` refuses a patient without a required feature and warns
for values outside the training range. Input features the classifier does not use may be left
out; they are imputed with the training median and do not change the prediction.

Note for sharing: the payload holds fitted parameters, not the training table, but some
classifiers store training rows by nature — an SVM keeps its support vectors (z-scored values of
the selected features, SMOTE rows included).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio

from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.writers import commit_outputs, write_json
from SIRTDosimetryLib.provenance import software_versions, to_jsonable

from .model_card import CARD_FILE, CARD_FORMAT, PAYLOAD_FILE, card_integrity_sha256, read_checked
from .models import selected_features

INTENDED_USE = "research"

ALLOWED_TYPES: tuple[str, ...] = (
    "SIRTResponseLib.features.MRMRSelector",
    "SIRTResponseLib.features.ReliefFSelector",
    "SIRTResponseLib.features.SpearmanRedundancyFilter",
    "SIRTResponseLib.features.adaptive_smote",
    "SIRTResponseLib.features.kruskal_wallis",
    "SIRTResponseLib.glmboost.GLMBoostClassifier",
    "imblearn.base.FunctionSampler",
    "imblearn.pipeline.Pipeline",
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.tree._tree.Tree",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
)
"""Types beyond skops' defaults that a model payload may contain: our own steps, imbalanced-learn's
pipeline and sampler, the calibrated SVM's parts, tree structures and the XGBoost booster."""

_CHECKED_PACKAGES = ("scikit-learn", "imbalanced-learn", "xgboost", "skops", "numpy")


def _untrusted(payload: bytes) -> list[str]:
    return [t for t in sio.get_untrusted_types(data=payload) if t not in ALLOWED_TYPES]


def _plain(params: dict) -> dict:
    """Estimator parameters as JSON: functions by qualified name, estimators by their repr."""
    plain = {}
    for key, value in params.items():
        if callable(value) and hasattr(value, "__qualname__"):
            value = f"{value.__module__}.{value.__qualname__}"
        elif hasattr(value, "get_params"):
            value = repr(value)
        plain[key] = to_jsonable(value)
    return plain


def _preprocessing(pipeline, input_features: list[str]) -> dict:
    """Fitted preprocessing parameters, by feature name."""
    steps = pipeline.named_steps
    kept = [n for n, keep in zip(input_features, steps["redundancy"].get_support()) if keep]
    required = selected_features(pipeline, input_features)
    scaler = steps["scale"]
    position = {n: i for i, n in enumerate(kept)}
    selector = steps["select"]
    return {
        "imputation": {"strategy": "median", "values": dict(zip(input_features, map(float, steps["impute"].statistics_)))},
        "redundancy_filter": {"method": "spearman", "threshold": steps["redundancy"].threshold, "kept": kept},
        "scaling": {
            "method": "z-score",
            "mean": {n: float(scaler.mean_[position[n]]) for n in required},
            "sd": {n: float(scaler.scale_[position[n]]) for n in required},
        },
        "selection": {"method": type(selector).__name__, "parameters": _plain(selector.get_params(deep=False)), "selected": required},
        "oversampling": {"method": "SMOTE, k lowered in small folds", **steps["smote"].kw_args} if "smote" in steps else None,
    }


def build_card(
    pipeline,
    X: pd.DataFrame,
    *,
    model: dict,
    cohort_summary: dict,
    cv_metrics: dict,
    extraction_settings: dict | None = None,
) -> dict:
    """The model card of a pipeline fitted on ``X`` (whose columns are its input features, in order)."""
    input_features = list(X.columns)
    required = selected_features(pipeline, input_features)
    return {
        "format": CARD_FORMAT,
        "intended_use": INTENDED_USE,
        "intended_use_note": "Research only. Not a medical device; not validated for clinical decisions.",
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model,
        "positive_class": "responder",
        "decision_threshold": 0.5,
        "input_features": input_features,
        "required_features": required,
        "training_range": {n: [float(X[n].min()), float(X[n].max())] for n in required},
        "preprocessing": _preprocessing(pipeline, input_features),
        "feature_extraction": extraction_settings,
        "training_cohort": cohort_summary,
        "cv_metrics": cv_metrics,
        "software": software_versions(),
    }


def export_model(folder: str | Path, pipeline, card: dict, overwrite: bool = False) -> Path:
    """Write ``model.skops`` and ``model_card.json`` (with the payload's SHA-256) into ``folder``."""
    payload = sio.dumps(pipeline)
    untrusted = _untrusted(payload)
    if untrusted:  # never write a model that load_model would refuse
        raise SIRTInputError(f"the model contains types outside the allow-list: {untrusted}")
    card = to_jsonable(card | {
        "payload": {"file": PAYLOAD_FILE, "format": "skops", "sha256": hashlib.sha256(payload).hexdigest()},
        "allowed_types": list(ALLOWED_TYPES),
    })
    card["integrity"] = {"method": "sha256 of the card's other fields as canonical JSON", "sha256": card_integrity_sha256(card)}
    folder = Path(folder)
    commit_outputs(folder, {PAYLOAD_FILE: lambda p: p.write_bytes(payload), CARD_FILE: partial(write_json, card)}, overwrite=overwrite)
    return folder


@dataclass
class LoadedModel:
    pipeline: object
    card: dict
    warnings: list[str] = field(default_factory=list)

    @property
    def input_features(self) -> list[str]:
        return list(self.card["input_features"])

    @property
    def required_features(self) -> list[str]:
        return list(self.card["required_features"])


def load_model(folder: str | Path) -> LoadedModel:
    """Check and load a model folder; raises :class:`SIRTInputError` for anything that does not check out."""
    checked = read_checked(folder)
    folder, card, payload = checked.folder, checked.card, checked.payload
    try:
        untrusted = _untrusted(payload)
        if untrusted:
            raise SIRTInputError(f"{folder / PAYLOAD_FILE} contains types outside the allow-list: {untrusted}; refusing to load")
        pipeline = sio.loads(payload, trusted=list(ALLOWED_TYPES))
    except SIRTInputError:
        raise
    except Exception as exc:  # a damaged or foreign payload: skops raises many kinds of errors
        raise SIRTInputError(f"{folder / PAYLOAD_FILE} cannot be loaded: {type(exc).__name__}: {exc}") from None
    n_inputs = getattr(pipeline, "n_features_in_", None) if hasattr(pipeline, "predict_proba") else None
    if n_inputs is None:
        raise SIRTInputError(f"{folder / PAYLOAD_FILE} is not a fitted classification pipeline; refusing to load")
    if n_inputs != len(card["input_features"]):
        raise SIRTInputError(
            f"{folder / PAYLOAD_FILE} takes {n_inputs} input features but its card lists {len(card['input_features'])}; refusing to load"
        )
    notes = []
    current = software_versions()
    for name in _CHECKED_PACKAGES:
        trained = card.get("software", {}).get(name)
        if trained and current.get(name) and trained != current[name]:
            notes.append(f"model trained with {name} {trained}, running {current[name]}")
    return LoadedModel(pipeline, card, notes)


@dataclass(frozen=True)
class Prediction:
    row_id: str
    probability: float  # of response
    predicted_class: str  # "responder" or "non-responder"
    warnings: list[str]


def predict(model: LoadedModel, table: pd.DataFrame, id_column: str = "patient_id") -> list[Prediction]:
    """Probability of response and class for every row of ``table`` (one row per patient or lesion)."""
    required = model.required_features
    if table.empty:
        raise SIRTInputError("the feature table has no rows")
    if id_column not in table.columns:
        raise SIRTInputError(f"the feature table has no id column {id_column!r}; name it with --id-column (columns: {', '.join(map(str, table.columns[:10]))}...)")
    ids = table[id_column].astype(str).tolist()
    missing_columns = [c for c in required if c not in table.columns]
    if missing_columns:
        raise SIRTInputError(f"the model needs feature(s) the table does not have: {missing_columns}")
    values = table.reindex(columns=model.input_features)
    try:
        values = values.astype(float)
    except (TypeError, ValueError) as exc:
        raise SIRTInputError(f"feature values must be numbers: {exc}") from None
    incomplete = {}
    for row_id, row in zip(ids, values[required].to_numpy()):
        absent = [c for c, v in zip(required, row) if not np.isfinite(v)]
        if absent:
            incomplete[row_id] = absent
    if incomplete:
        raise SIRTInputError("missing required feature values: " + "; ".join(f"{k}: {v}" for k, v in incomplete.items()))
    probabilities = model.pipeline.predict_proba(values.to_numpy())[:, 1]
    threshold = float(model.card["decision_threshold"])
    ranges = model.card["training_range"]
    predictions = []
    for row_id, probability, row in zip(ids, probabilities, values[required].to_numpy()):
        notes = list(model.warnings)
        for name, value in zip(required, row):
            low, high = ranges[name]
            if not low <= value <= high:
                notes.append(f"{name} = {value:g} is outside the training range [{low:g}, {high:g}]")
        label = "responder" if probability >= threshold else "non-responder"
        predictions.append(Prediction(row_id, float(probability), label, notes))
    return predictions


def export_study_model(
    folder: str | Path,
    result,
    model_id: str,
    cohort,
    extraction_settings: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Refit one model of a :class:`~.study.StudyResult` on the whole cohort and export it."""
    from .study import cv_metrics, refit  # model_io is usable without the study machinery

    outcome = result.outcomes[model_id]
    columns = result.columns[outcome.strategy]
    pipeline, params = refit(outcome.spec, cohort, columns, result.config)
    card = build_card(
        pipeline,
        cohort.features[columns],
        model={
            "id": model_id,
            "strategy": outcome.strategy,
            "selector": outcome.selector,
            "classifier": outcome.classifier,
            "hyperparameters": params,
            "study_settings": result.config.settings(),
        },
        cohort_summary=cohort.summary(),
        cv_metrics=cv_metrics(result.table, model_id, result.config, result.study_level),
        extraction_settings=extraction_settings,
    )
    return export_model(folder, pipeline, card, overwrite=overwrite)
