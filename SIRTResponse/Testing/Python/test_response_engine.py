"""The pyradiomics build travels from the feature table into the model card, and a prediction whose
features come from another build warns (command line and MRML)."""

from __future__ import annotations

import json
from importlib import metadata

import pytest

from sirt.main import main as sirt_main
from SIRTDosiomicsLib.radiomics_engine import (
    ENGINE_KEY,
    card_engine,
    engine_mismatch,
    prediction_warning,
    radiomics_engine,
    table_engine,
)
from SIRTResponseLib.synthetic import synthetic_cohort

SLICER_RADIOMICS = {"package": "pyradiomics", "version": "3.0.1", "distribution": None, "source": "SlicerRadiomics",
                    "location": "/Slicer/NA-MIC/Extensions/SlicerRadiomics/lib/radiomics"}


def test_the_installed_engine_is_the_bhklab_distribution():
    engine = radiomics_engine()
    assert engine["distribution"] == "pyradiomics-bhklab" == engine["source"]
    assert engine["version"] == metadata.version("pyradiomics-bhklab")


def test_mismatch_messages():
    here = radiomics_engine()
    assert engine_mismatch(here, dict(here, location="/elsewhere")) is None  # same build, other folder
    message = engine_mismatch(SLICER_RADIOMICS, here)
    assert f"pyradiomics {here['version']} (pyradiomics-bhklab)" in message and "pyradiomics 3.0.1 (SlicerRadiomics)" in message
    assert "not recorded" in engine_mismatch(here, None) and engine_mismatch(None, None) is None
    radiomic = {"required_features": ["y90_dose_tumour_glcm_Idm"], "feature_extraction": {ENGINE_KEY: SLICER_RADIOMICS}}
    dvh_only = {"required_features": ["y90_dvc_tumour_dose_mean_gy", "clinical_age"], "feature_extraction": {ENGINE_KEY: SLICER_RADIOMICS}}
    assert prediction_warning(radiomic, here) and prediction_warning(dvh_only, here) is None


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained on a table whose features.json says SlicerRadiomics' pyradiomics 3.0.1."""
    folder = tmp_path_factory.mktemp("engine")
    features, labels = synthetic_cohort(n_patients=30, n_features=40, effect=2.0, seed=3)
    features.to_csv(folder / "features.csv", index=False)
    (folder / "features.json").write_text(json.dumps({ENGINE_KEY: SLICER_RADIOMICS}))
    labels.to_csv(folder / "labels.csv", index=False)
    argv = ["train", "--features", str(folder / "features.csv"), "--labels", str(folder / "labels.csv"),
            "--output", str(folder / "study"), "--strategies", "y90_dosiomics_dose", "--selectors", "anova",
            "--classifiers", "lr", "--n-features", "3", "--bootstrap", "20", "--permutations", "0", "--study-permutations", "0",
            "--export-best", str(folder / "model")]
    assert sirt_main(argv) == 0
    return folder, features


def test_model_card_records_the_engine_of_its_training_table(trained):
    folder, _ = trained
    card = json.loads((folder / "model" / "model_card.json").read_text())
    assert card_engine(card) == SLICER_RADIOMICS


def test_prediction_warns_when_the_engine_differs(trained, tmp_path, capsys):
    folder, features = trained
    capsys.readouterr()
    features.head(2).to_csv(tmp_path / "new.csv", index=False)
    (tmp_path / "new.json").write_text(json.dumps({ENGINE_KEY: radiomics_engine()}))
    assert table_engine(tmp_path / "new.csv") == radiomics_engine()
    assert sirt_main(["predict", "--model", str(folder / "model"), "--features", str(tmp_path / "new.csv")]) == 0
    out = capsys.readouterr().out
    assert out.count("warning: features computed with pyradiomics") == 2 and "3.0.1 (SlicerRadiomics)" in out

    (tmp_path / "new.json").write_text(json.dumps({ENGINE_KEY: SLICER_RADIOMICS}))  # the training build: no warning
    assert sirt_main(["predict", "--model", str(folder / "model"), "--features", str(tmp_path / "new.csv")]) == 0
    assert "pyradiomics" not in capsys.readouterr().out


def test_mrml_prediction_reads_the_engine_of_a_dosiomics_table(trained, scene):
    pytest.importorskip("slicer")
    from SIRTDosiomicsLib.radiomics_engine import ENGINE_ATTRIBUTE
    from SIRTResponseLib.mrml.logic import predict_from_table_node
    from SIRTResponseLib.testing.scenarios import add_feature_table

    folder, features = trained
    table = add_feature_table(scene, features.head(1).to_dict("records"), "patient features")
    table.SetAttribute(ENGINE_ATTRIBUTE, json.dumps(radiomics_engine()))
    prediction = predict_from_table_node(folder / "model", table, row=0)
    column = prediction.GetTable().GetColumnByName("warnings")
    assert "3.0.1 (SlicerRadiomics)" in column.GetValue(0)
