"""The manifest's ``register:`` block in ``sirt run``: parsed, run on elastix, QA numbers in the cohort table."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from sirt import main
from sirt.registration_step import add_registration_columns
from SIRTDosiomicsLib.manifest import ManifestError, patient_from_record


def _record(tmp_path, register):
    for name in ("maa.nrrd", "maa.seg.nrrd", "y90.nrrd", "y90.seg.nrrd"):
        (tmp_path / name).touch()
    return {"patient_id": "P1", "maa": {"spect": "maa.nrrd", "segmentation": "maa.seg.nrrd", "administered_activity_gbq": 1.5},
            "y90": {"spect": "y90.nrrd", "segmentation": "y90.seg.nrrd", "administered_activity_gbq": 1.5}, "register": register}


def test_register_block_is_read_and_checked(tmp_path):
    spec = patient_from_record(_record(tmp_path, {"fixed": "MAA", "moving": "y90", "transform": "Rigid", "min_dice": "0.9"}), tmp_path)
    assert spec.registration == {"fixed": "maa", "moving": "y90", "transform": "rigid", "min_dice": 0.9}
    with pytest.raises(ManifestError, match="two different studies"):
        patient_from_record(_record(tmp_path, {"fixed": "maa", "moving": "maa"}), tmp_path)
    with pytest.raises(ManifestError, match="register_<field>"):
        patient_from_record(_record(tmp_path, {"fixed": "maa", "moving": "y90", "metric": "mi"}), tmp_path)
    assert patient_from_record({k: v for k, v in _record(tmp_path, {}).items() if k != "register"}, tmp_path).registration == {}


def test_registration_columns_join_the_cohort_table():
    table = pd.DataFrame({"patient_id": ["P1", "P2"], "dose_mean_gy": [1.0, 2.0]})
    joined = add_registration_columns(table, {"P2": {"registration_qa": "fail", "registration_dice": 0.7}})
    assert joined["registration_qa"].tolist()[1] == "fail" and pd.isna(joined["registration_qa"].tolist()[0])
    assert joined["registration_dice"].tolist()[1] == 0.7
    assert add_registration_columns(table, {}) is table


@pytest.mark.filterwarnings("ignore:builtin type .* has no __module__ attribute:DeprecationWarning")  # itk's SWIG types
def test_sirt_run_registers_the_moved_90y_scan_onto_the_maa_scan(tmp_path):
    pytest.importorskip("itk", reason="itk-elastix (the 'registration' extra) is not installed")
    from SIRTDosimetryLib.testing.registration import make_moved_case

    case = make_moved_case(tmp_path / "case", "rigid", image_shrink=2)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"patients": [{
        "patient_id": "P1",
        "structures": {"tumour": ["Tumor 1"]},
        "maa": {"spect": str(case.fixed), "segmentation": str(case.reference_segmentation), "administered_activity_gbq": 1.5,
                "clamp_negative": True},
        "y90": {"spect": str(case.moving), "segmentation": str(case.moving_segmentation), "administered_activity_gbq": 1.5,
                "clamp_negative": True},
        "register": {"fixed": "maa", "moving": "y90", "transform": "rigid", "mask_segment": "liver", "iterations": 60},
    }]}), encoding="utf-8")
    preset = tmp_path / "firstorder.json"
    preset.write_text(json.dumps({"name": "firstorder-only", "classes": ["firstorder"]}), encoding="utf-8")
    out = tmp_path / "run"
    rc = main.main(["run", str(manifest), "--output", str(out), "--preset", str(preset), "--workers", "1", "--no-progress", "--no-report"])
    assert rc == 0
    cohort = pd.read_csv(out / "cohort.csv")
    assert cohort.loc[0, "registration_qa"] == "pass" and cohort.loc[0, "registration_dice"] >= 0.95
    assert (out / "patients" / "p1" / "register" / "transform.tfm").exists()
    status = json.loads((out / "run.json").read_text())
    assert status["patients"][0]["registration"]["registration_qa"] == "pass"
