"""``sirt run`` on the bundled sample patients with the example manifest, labels and survival table."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sirt import main
from SIRTDosimetryLib.reporting.content import dose_table

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def firstorder_preset(tmp_path_factory) -> Path:
    """The published preset cut to the first-order class, to keep the test to seconds."""
    path = tmp_path_factory.mktemp("preset") / "firstorder.json"
    path.write_text(json.dumps({"name": "firstorder-only", "classes": ["firstorder"]}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def example_run(tmp_path_factory, firstorder_preset):
    """The examples as written: both sample patients, labels joined, categorical clinical variables."""
    out = tmp_path_factory.mktemp("run") / "run"
    rc = main.main(["run", str(EXAMPLES / "manifest.yaml"), "--output", str(out), "--labels", str(EXAMPLES / "labels.csv"),
                    "--preset", str(firstorder_preset), "--workers", "1", "--no-progress", "--isodose-levels", "50,100,205",
                    "--microspheres", "resin"])
    assert rc == 0
    return out


def test_every_patient_has_dose_dvh_and_a_report_matching_its_summary(example_run):
    status = json.loads((example_run / "run.json").read_text())
    assert [(p["patient_id"], [s["source"] for s in p["studies"]]) for p in status["patients"]] == [("P1", ["y90"]), ("P2", ["maa"])]
    assert all(s["status"] == "done" for p in status["patients"] for s in p["studies"])
    for folder, case in ((example_run / "patients" / "p1" / "y90", "90Y verification"),
                         (example_run / "patients" / "p2" / "maa", "MAA planning (predicted 90Y dose)")):
        summary = json.loads((folder / "summary.json").read_text())
        constraints = json.loads((folder / "dvh" / "constraints.json").read_text())
        page = (folder / "report.html").read_text(encoding="utf-8")
        assert (folder / "report.pdf").read_bytes().startswith(b"%PDF")
        assert f"| {case} |" in page
        # the report's dose table is the dose summary's, row for row
        for row in dose_table(summary).rows:
            cells = "".join(f"<td class=\"{'num' if c != row[0] else ''}\">{c}</td>" for c in row)
            assert cells in page, row[0]
        # BED by role and the manifest's tumours as tumours
        roles = {s["name"]: s["role"] for s in constraints["structures"]}
        assert roles["Tumor 1"] == "tumour" and all(s["bed_mean_gy"] is not None for s in summary["segments"])
        pictured = re.findall(r"<figure id='slices_([^']+)'", page)
        assert len(pictured) == sum(1 for r in roles.values() if r == "tumour")
    # MAA planning: the partition model of the resin limits in P2's report; no plan for 90Y verification
    plan = json.loads((example_run / "patients" / "p2" / "maa" / "plan" / "plan.json").read_text())
    page = (example_run / "patients" / "p2" / "maa" / "report.html").read_text(encoding="utf-8")
    assert plan["method"] == "partition" and plan["microspheres"] == "resin" and plan["activity_gbq"] == 1.5
    assert "<h2>Planning</h2>" in page and f"{plan['max_activity_gbq']:.2f}" in page and "<h2>Planning limits</h2>" in page
    assert not (example_run / "patients" / "p1" / "y90" / "plan").exists()


def test_cohort_table_is_ready_for_sirt_train(example_run):
    table = pd.read_csv(example_run / "cohort.csv")
    assert list(table["patient_id"]) == ["P1", "P2"] and list(table["response"]) == ["PR", "SD"]
    assert "clinical_response" not in table.columns
    assert list(table["clinical_child_pugh"]) == [0.0, 1.0]  # ordinal A, B, C
    assert list(table["clinical_etiology_hcc"]) == [1.0, 0.0] and list(table["clinical_etiology_mcrc"]) == [0.0, 1.0]
    assert any(c.startswith("y90_dose_") and "firstorder" in c for c in table.columns)
    assert any(c.startswith("maa_dose_") and "firstorder" in c for c in table.columns)
    assert any(c.startswith("maa_dvc_") for c in table.columns) and any(c.startswith("y90_dvc_") for c in table.columns)
    from SIRTResponseLib.labels import build_cohort

    cohort = build_cohort(table)  # what 'sirt train' does with this table: no text column is refused
    assert list(cohort.y) == [1, 0]
    survival = pd.read_csv(EXAMPLES / "survival.csv")
    assert set(survival["patient_id"]) == set(table["patient_id"])


def test_rerun_resumes_and_a_failing_patient_does_not_stop_the_others(example_run, firstorder_preset, tmp_path, capsys):
    data = yaml.safe_load((EXAMPLES / "manifest.yaml").read_text())
    for p in data["patients"]:
        for source in ("maa", "y90"):
            for key in ("pet", "spect", "segmentation"):
                if key in p.get(source, {}):
                    p[source][key] = str((EXAMPLES / p[source][key]).resolve())
    bad = json.loads(json.dumps(data["patients"][1]))
    bad["patient_id"] = "P3"
    bad["structures"]["tumour"] = ["Tumor 9"]
    data["patients"].append(bad)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump(data), encoding="utf-8")
    rc = main.main(["run", str(manifest), "--output", str(example_run), "--preset", str(firstorder_preset), "--workers", "1",
                    "--no-progress", "--isodose-levels", "50,100,205", "--no-features", "--microspheres", "resin"])
    assert rc == 1
    assert "patient P3 maa: FAILED" in capsys.readouterr().err and "Tumor 9" in (example_run / "run.json").read_text()
    status = {p["patient_id"]: p["studies"][0]["status"] for p in json.loads((example_run / "run.json").read_text())["patients"]}
    assert status == {"P1": "cached", "P2": "cached", "P3": "failed"}


def test_bad_manifest_and_options_are_reported_together_before_any_image_is_read(tmp_path, capsys):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump({"patients": [
        {"patient_id": "A", "maa": {"spect": "missing.nrrd", "segmentation": "missing.seg.nrrd", "calibration": "relative"}},
    ]}), encoding="utf-8")
    rc = main.main(["run", str(manifest), "--output", str(tmp_path / "out"), "--model", str(tmp_path), "--isodose-levels", "100,50"])
    assert rc == 2 and "increasing" in capsys.readouterr().err
    rc = main.main(["run", str(manifest), "--output", str(tmp_path / "out"), "--model", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "missing.nrrd" in err and "needs the administered activity" in err and "model_card.json" in err
    assert not (tmp_path / "out").exists()
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_sirt_run_on_a_local_dask_cluster(tmp_path):
    """``--scheduler``: the patients run on a Dask cluster (here an in-process one) with the same results."""
    from distributed import LocalCluster

    data = yaml.safe_load((EXAMPLES / "manifest.yaml").read_text())
    p2 = data["patients"][1]
    for key in ("spect", "segmentation"):
        p2["maa"][key] = str((EXAMPLES / p2["maa"][key]).resolve())
    p2["maa"]["method"] = "ldm"
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump({"patients": [p2]}), encoding="utf-8")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        rc = main.main(["run", str(manifest), "--output", str(tmp_path / "out"), "--scheduler", cluster.scheduler_address,
                        "--no-features", "--no-report", "--no-progress"])
    assert rc == 0
    status = json.loads((tmp_path / "out" / "run.json").read_text())
    assert status["patients"][0]["studies"][0]["status"] == "done"
    summary = json.loads((tmp_path / "out" / "patients" / "p2" / "maa" / "summary.json").read_text())
    assert summary["method"] == "ldm"
    assert {s["name"] for s in summary["segments"]} == {"Tumor 1", "Tumor 2", "perfused normal", "whole liver normal"}
    assert all(s["activity_bq"] > 0 for s in summary["segments"])
