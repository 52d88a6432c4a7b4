"""Model folders: every pipeline exports and loads; tampered payloads and bad patients are refused."""

from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
import pytest
import skops.io as sio

from SIRTDosimetryLib.errors import SIRTInputError
from SIRTResponseLib.features import SELECTORS
from SIRTResponseLib.labels import build_cohort
from SIRTResponseLib.model_card import card_integrity_sha256
from SIRTResponseLib.model_io import ALLOWED_TYPES, CARD_FILE, PAYLOAD_FILE, build_card, export_model, load_model, predict
from SIRTResponseLib.models import CLASSIFIERS, build_pipeline
from SIRTResponseLib.synthetic import synthetic_cohort


@pytest.fixture(scope="module")
def cohort():
    features, labels = synthetic_cohort(n_patients=30, n_features=60, effect=2.0, seed=11)
    return build_cohort(features, labels)


def _export(folder, cohort, selector="anova", classifier="lr"):
    X = cohort.features
    pipeline = build_pipeline(selector, classifier, n_features=3).fit(X.to_numpy(), cohort.y)
    card = build_card(
        pipeline,
        X,
        model={"id": f"all__{selector}__{classifier}", "selector": selector, "classifier": classifier},
        cohort_summary=cohort.summary(),
        cv_metrics={"auc": {"value": 0.9, "ci_low": 0.8, "ci_high": 1.0}},
        extraction_settings={"preset": "sirt-dosiomics-2025"},
    )
    export_model(folder, pipeline, card)
    return pipeline


@pytest.mark.parametrize(("selector", "classifier"), [("anova", c) for c in CLASSIFIERS] + [(s, "lr") for s in SELECTORS[1:]])
def test_every_pipeline_round_trips_within_the_allow_list(tmp_path, cohort, selector, classifier):
    pipeline = _export(tmp_path / "model", cohort, selector, classifier)
    model = load_model(tmp_path / "model")
    X = cohort.features.to_numpy()
    np.testing.assert_allclose(model.pipeline.predict_proba(X), pipeline.predict_proba(X), rtol=1e-12, atol=1e-12)
    assert set(sio.get_untrusted_types(file=tmp_path / "model" / PAYLOAD_FILE)) <= set(ALLOWED_TYPES)


def test_model_card_contents(tmp_path, cohort):
    _export(tmp_path / "model", cohort)
    card = json.loads((tmp_path / "model" / CARD_FILE).read_text())
    assert card["intended_use"] == "research"
    assert card["input_features"] == list(cohort.features.columns)
    assert len(card["required_features"]) == 3 and set(card["required_features"]) <= set(card["input_features"])
    assert card["payload"]["sha256"] == hashlib.sha256((tmp_path / "model" / PAYLOAD_FILE).read_bytes()).hexdigest()
    assert set(card["training_range"]) == set(card["required_features"])
    assert card["preprocessing"]["redundancy_filter"]["threshold"] == 0.9
    assert set(card["preprocessing"]["scaling"]["mean"]) == set(card["required_features"])
    assert card["preprocessing"]["selection"]["parameters"]["score_func"].endswith("f_classif")
    assert card["training_cohort"]["n_patients"] == 30 and card["feature_extraction"]["preset"] == "sirt-dosiomics-2025"
    for package in ("scikit-learn", "skops", "imbalanced-learn", "numpy"):
        assert package in card["software"]


def test_predict_warns_outside_the_training_range_and_ignores_unused_features(tmp_path, cohort):
    pipeline = _export(tmp_path / "model", cohort)
    model = load_model(tmp_path / "model")
    table = cohort.features.reset_index(names="patient_id")
    predictions = predict(model, table)
    np.testing.assert_allclose([p.probability for p in predictions], pipeline.predict_proba(cohort.features.to_numpy())[:, 1])
    assert all(not p.warnings for p in predictions)
    assert [p.predicted_class == "responder" for p in predictions] == [p.probability >= 0.5 for p in predictions]
    required = model.required_features
    unused = [c for c in table.columns if c not in required and c != "patient_id"]
    reduced = table[["patient_id", *required]].head(2).copy()
    assert [p.probability for p in predict(model, reduced)] == pytest.approx([p.probability for p in predictions[:2]])
    assert unused  # the reduced table really lacked inputs
    low, high = model.card["training_range"][required[0]]
    reduced.loc[0, required[0]] = high + (high - low)
    warned = predict(model, reduced)
    assert len(warned[0].warnings) == 1 and "outside the training range" in warned[0].warnings[0]


def test_missing_required_features_are_refused(tmp_path, cohort):
    _export(tmp_path / "model", cohort)
    model = load_model(tmp_path / "model")
    table = cohort.features.reset_index(names="patient_id")
    with pytest.raises(SIRTInputError, match="does not have"):
        predict(model, table.drop(columns=model.required_features[0]))
    table.loc[3, model.required_features[1]] = np.nan
    with pytest.raises(SIRTInputError, match=f"{table.loc[3, 'patient_id']}: \\['{model.required_features[1]}'\\]"):
        predict(model, table)


def test_hash_mismatch_is_refused(tmp_path, cohort):
    _export(tmp_path / "model", cohort)
    payload = tmp_path / "model" / PAYLOAD_FILE
    payload.write_bytes(payload.read_bytes() + b"\0")
    with pytest.raises(SIRTInputError, match="does not match the model card"):
        load_model(tmp_path / "model")


def _replace_class(node, old: str, module: str, name: str) -> bool:
    if isinstance(node, dict):
        if node.get("__class__") == old:
            node["__class__"], node["__module__"] = name, module
            return True
        return any(_replace_class(v, old, module, name) for v in node.values())
    if isinstance(node, list):
        return any(_replace_class(v, old, module, name) for v in node)
    return False


def test_payload_with_a_type_outside_the_allow_list_is_refused_even_with_a_matching_hash(tmp_path, cohort):
    folder = tmp_path / "model"
    _export(folder, cohort)
    payload = folder / PAYLOAD_FILE
    with zipfile.ZipFile(payload) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    assert _replace_class(schema, "SpearmanRedundancyFilter", "subprocess", "Popen")
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(payload, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    card = json.loads((folder / CARD_FILE).read_text())
    card["payload"]["sha256"] = hashlib.sha256(payload.read_bytes()).hexdigest()  # an attacker who edits both files
    card["integrity"]["sha256"] = card_integrity_sha256(card)  # and reseals the card
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(SIRTInputError, match="outside the allow-list.*subprocess.Popen"):
        load_model(folder)


def test_unreadable_folders_are_refused(tmp_path, cohort):
    with pytest.raises(SIRTInputError, match="not a readable model folder"):
        load_model(tmp_path)
    _export(tmp_path / "model", cohort)
    card = json.loads((tmp_path / "model" / CARD_FILE).read_text())
    (tmp_path / "model" / CARD_FILE).write_text(json.dumps(card | {"format": "pickle"}))
    with pytest.raises(SIRTInputError, match="unknown model card format"):
        load_model(tmp_path / "model")
    with pytest.raises(SIRTInputError, match="already exists"):
        _export(tmp_path / "model", cohort)
