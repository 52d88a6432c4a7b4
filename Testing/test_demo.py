"""``sirt demo`` (what ``make demo`` runs) end to end: dose, DVH and a report per case, then the whole chain
(``sirt run``, a SYNTHETIC cohort, ``sirt train``, the prediction for the sample patients)."""

from __future__ import annotations

import json

import pandas as pd

from sirt import main


def test_demo_runs_the_whole_chain_on_the_bundled_patients(tmp_path):
    out = tmp_path / "demo"
    assert main.main(["demo", "--output", str(out)]) == 0
    for case in ("patient_1_ldm", "patient_1_vsv", "patient_2_vsv"):
        summary = json.loads((out / case / "summary.json").read_text())
        assert summary["segments"] and (out / case / "dose_gy.nrrd").exists()
        assert (out / case / "report.pdf").read_bytes().startswith(b"%PDF")
        assert f"patient {case.rsplit('_', 1)[0]} |" in (out / case / "report.html").read_text(encoding="utf-8")
    for case in ("patient_1_vsv", "patient_2_vsv"):
        constraints = json.loads((out / case / "dvh" / "constraints.json").read_text())
        assert constraints["provenance"]["inputs"]["dose"]["sha256"]
        assert (out / case / "dvh" / "dvh_dose.png").stat().st_size > 10_000

    run = out / "chain" / "run"
    for study in ("p1/y90", "p2/maa"):
        assert (run / "patients" / study / "report.html").stat().st_size > 50_000
    cohort = pd.read_csv(run / "cohort.csv")
    assert list(cohort["patient_id"]) == ["P1", "P2"]
    synthetic = pd.read_csv(out / "SYNTHETIC_model" / "SYNTHETIC_cohort.csv")
    assert len(synthetic) == 40 and synthetic["patient_id"].str.startswith("SYNTHETIC-").all()
    assert set(synthetic["response"]) <= {"CR", "PR", "SD", "PD"}
    predictions = json.loads((out / "SYNTHETIC_predictions.json").read_text())
    assert predictions["synthetic"] is True
    # the model uses 90Y dose-volume metrics: patient 1 (90Y PET) is predicted, patient 2 (MAA only) says why not
    assert [p["row_id"] for p in predictions["predictions"]] == ["P1"]
    assert 0.0 <= predictions["predictions"][0]["probability"] <= 1.0
    assert "y90_dvc_" in predictions["not_predicted"]["P2"]

    assert main.main(["demo", "--output", str(out)]) == 2  # a second run never overwrites silently
