"""The ``sirt`` edge: every bad input ends in one clear line and exit code 2, never a traceback;
Ctrl-C ends cleanly; nothing half-made is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from sirt.main import main

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args) -> int:
    return main([str(a) for a in args])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


@pytest.fixture()
def small_case(tmp_path):
    activity = np.full((10, 10, 10), 1e5, dtype=np.float32)
    labels = np.zeros((10, 10, 10), dtype=np.uint8)
    labels[2:8, 2:8, 2:8] = 1
    labels[4:6, 4:6, 4:6] = 2
    for name, array in (("pet.nrrd", activity), ("labels.nrrd", labels)):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing((2.0, 2.0, 2.0))
        sitk.WriteImage(image, str(tmp_path / name))
    return tmp_path / "pet.nrrd", tmp_path / "labels.nrrd"


@pytest.mark.parametrize(
    ("content", "message"),
    [("patients: [a\n", "line 2"), ("!!python/object/apply:os.system ['echo hacked']\n", "never run")],
)
def test_bad_yaml_manifests_are_one_line(tmp_path, capsys, content, message):
    manifest = tmp_path / "cohort.yaml"
    manifest.write_text(content)
    assert run_cli("features", "--manifest", manifest, "--output", tmp_path / "out") == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_a_manifest_that_is_a_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "cohort.yaml").mkdir()
    assert run_cli("features", "--manifest", tmp_path / "cohort.yaml", "--output", tmp_path / "out") == 2
    assert "Is a directory" in one_error_line(capsys)


def test_an_unreachable_dask_scheduler_fails_fast_and_leaves_no_folder(tmp_path, capsys):
    features = pd.DataFrame({"patient_id": ["a", "b"], "x": [1.0, 2.0], "response": ["CR", "PD"]})
    features.to_csv(tmp_path / "features.csv", index=False)
    started = time.monotonic()
    assert run_cli("train", "--features", tmp_path / "features.csv", "--output", tmp_path / "study", "--dask", "tcp://127.0.0.1:1") == 2
    assert time.monotonic() - started < 6
    assert "cannot reach the Dask scheduler" in one_error_line(capsys)
    assert not (tmp_path / "study").exists()
    manifest = tmp_path / "cohort.yaml"
    manifest.write_text("patients: []\n")
    assert run_cli("features", "--manifest", manifest, "--output", tmp_path / "f", "--scheduler", "tcp://127.0.0.1:1") == 2
    assert "cannot reach the Dask scheduler" in one_error_line(capsys)
    assert not (tmp_path / "f").exists()
    started = time.monotonic()
    assert run_cli("run", manifest, "--output", tmp_path / "r", "--scheduler", "tcp://127.0.0.1:1") == 2
    assert time.monotonic() - started < 6
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in one_error_line(capsys)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("times", "message"),
    [
        (("2024-03-11T10:00+02:00", "2024-03-12T10:00"), "time zone"),
        (("2024-03-11T10:00", "9999-01-01T00:00"), "half-lives"),
    ],
)
def test_bad_times_are_one_line(small_case, tmp_path, capsys, times, message):
    pet, labels = small_case
    code = run_cli("dose", "--activity", pet, "--segmentation", labels, "--mode", "absolute", "--units", "bq_per_ml",
                   "--administration-time", times[0], "--scan-time", times[1], "--output", tmp_path / "out")
    assert code == 2
    assert message in one_error_line(capsys)


def test_a_vsv_density_below_air_is_one_line(small_case, tmp_path, capsys):
    pet, labels = small_case
    code = run_cli("dose", "--activity", pet, "--segmentation", labels, "--mode", "absolute", "--units", "bq_per_ml",
                   "--method", "vsv", "--density", "1e-300", "--output", tmp_path / "out")
    assert code == 2
    assert "between 0.001" in one_error_line(capsys)


def test_segment_names_holding_a_comma_can_be_chosen(small_case, tmp_path):
    pet, labels = small_case
    code = run_cli("dose", "--activity", pet, "--segmentation", labels, "--labels", "1=liver", "--labels", "2=Tumor 1,2",
                   "--mode", "absolute", "--units", "bq_per_ml", "--segments", '"Tumor 1,2"', "--segments", "liver",
                   "--output", tmp_path / "out")
    assert code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert sorted(s["name"] for s in summary["segments"]) == ["Tumor 1,2", "liver"]


def test_ctrl_c_ends_cleanly_without_a_traceback_or_partial_outputs(patient1_paths, tmp_path):
    pet, seg = patient1_paths
    out = tmp_path / "out"
    script = (
        "import sys; from sirt.main import main; print('ready', flush=True); "
        f"sys.exit(main(['dose', '--activity', {str(pet)!r}, '--segmentation', {str(seg)!r}, '--mode', 'absolute', "
        f"'--units', 'bq_per_ml', '--method', 'vsv', '--output', {str(out)!r}]))"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *(str(REPO / m) for m in ("SIRTDosimetry", "SIRTDosiomics", "SIRTResponse"))]))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert not out.exists() or not [p for p in out.iterdir()]


def test_an_absurd_plan_target_is_one_line(tmp_path, capsys):
    code = run_cli("plan", "--output", tmp_path / "plan", "--microspheres", "resin", "--tnr", "4", "--lsf", "0.1", "--tumour-mass-g", "150",
                   "--normal-mass-g", "1200", "--lung-mass-g", "1000", "--target-tumour-dose-gy", "1e308")
    assert code == 2
    assert "got inf" in one_error_line(capsys)
    assert not (tmp_path / "plan").exists()
