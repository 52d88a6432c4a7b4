"""Nothing the user has is overwritten or lost: atomic output claims, stale staging, scene folders, labels."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import make_image
from sirt.main import main
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.segmentations import read_segmentation
from SIRTDosimetryLib.io.writers import STAGING_PREFIX, commit_outputs, write_json


def run_cli(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture()
def small_case(tmp_path):
    """A 16³ activity image (Bq/mL) and a labelmap (1 = liver, 2 = tumour inside it) on the same 2 mm grid."""
    activity = np.full((16, 16, 16), 1e5, dtype=np.float32)
    labels = np.zeros((16, 16, 16), dtype=np.uint8)
    labels[2:14, 2:14, 2:14] = 1
    labels[6:10, 6:10, 6:10] = 2
    activity[labels == 2] = 1e6
    folder = tmp_path / "case"
    folder.mkdir()
    sitk.WriteImage(make_image(activity), str(folder / "pet.nrrd"))
    sitk.WriteImage(make_image(labels), str(folder / "labels.nrrd"))
    return folder / "pet.nrrd", folder / "labels.nrrd"


def dose_args(case, output, *extra):
    pet, labels = case
    return ["dose", "--activity", pet, "--segmentation", labels, "--labels", "1=liver", "--labels", "2=tumour",
            "--mode", "absolute", "--units", "bq_per_ml", "--output", output, *extra]  # fmt: skip


def test_an_output_claimed_by_another_run_meanwhile_is_never_replaced(tmp_path):
    """Two runs into one folder: the one that commits second fails cleanly, the first one's file stays."""
    out = tmp_path / "out"

    def write_while_another_run_commits(path):
        path.write_text("mine")
        commit_outputs(out, {"result.json": lambda p: p.write_text("other run")})

    with pytest.raises(SIRTInputError, match="already exists"):
        commit_outputs(out, {"a.json": lambda p: p.write_text("mine"), "result.json": write_while_another_run_commits})
    assert (out / "result.json").read_text() == "other run"
    assert sorted(p.name for p in out.iterdir()) == ["result.json"]  # nothing of the failed run, no staging


def test_an_interrupted_commit_leaves_nothing_behind(tmp_path):
    def interrupted(path):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        commit_outputs(tmp_path, {"a.json": lambda p: p.write_text("x"), "b.json": interrupted})
    assert list(tmp_path.iterdir()) == []


def test_staging_folders_of_a_killed_run_are_removed_by_the_next_run(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{STAGING_PREFIX}{dead.pid}-abc123"
    stale.mkdir()
    (stale / "dose_gy.nrrd").write_text("half written")
    alive = tmp_path / f"{STAGING_PREFIX}{os.getpid()}-running"  # a run still going: left alone
    alive.mkdir()
    commit_outputs(tmp_path, {"a.json": lambda p: p.write_text("x")})
    assert not stale.exists() and alive.exists()


@pytest.mark.parametrize("suffix", [".mrb", ".mrml"])
def test_staging_folders_of_a_killed_scene_save_are_removed_by_the_next_save(tmp_path, scene, suffix):
    """Scenes stage beside their file through the same staging folders as the outputs: a killed save's is removed."""
    from SIRTDosimetryLib.mrml.scene import save_scene

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{STAGING_PREFIX}{dead.pid}-xyz789"
    (stale / "case_data").mkdir(parents=True)
    (stale / "case_data" / "dose.nrrd").write_text("half written")
    save_scene(scene, tmp_path / f"case{suffix}")
    assert (tmp_path / f"case{suffix}").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(STAGING_PREFIX)]  # neither the stale one nor this run's


def test_non_finite_values_headed_for_json_are_named(tmp_path):
    with pytest.raises(SIRTInputError, match=r"/segments/1/dose_mean_gy is not a finite number"):
        write_json({"segments": [{"dose_mean_gy": 1.0}, {"dose_mean_gy": float("inf")}]}, tmp_path / "summary.json")


@pytest.mark.parametrize("where", ["file", "proc", "input"])
def test_an_unusable_output_folder_is_one_line_before_any_work(small_case, tmp_path, capsys, where):
    output = {"file": small_case[1].parent / "pet.nrrd" / "sub", "proc": "/proc/sirt-output", "input": small_case[0]}[where]
    assert run_cli(*dose_args(small_case, output)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "output folder" in err


def test_an_unwritable_scene_is_refused_before_the_dose_is_written(small_case, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(*dose_args(small_case, out, "--scene", "/proc/sirt/case.mrml")) == 2
    assert "cannot be written" in capsys.readouterr().err
    assert not out.exists()


def test_a_scene_never_replaces_data_folders_holding_the_inputs(small_case, tmp_path, capsys):
    """``--scene case.mrml --overwrite`` replaces case_data/ as a whole: refused when the inputs live there."""
    scene = small_case[0].parent.parent / "case.mrml"  # the inputs are in case/... not case_data/: rename
    data = scene.with_name("case_data")
    small_case[0].parent.rename(data)
    case = (data / "pet.nrrd", data / "labels.nrrd")
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    assert run_cli(*dose_args(case, tmp_path / "out", "--scene", scene, "--overwrite")) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before
    assert not (tmp_path / "out").exists()


def test_labels_above_65535_keep_their_identity(tmp_path):
    """70000 would wrap to 4464 through a 16-bit cast and merge with a real label 4464."""
    labels = np.zeros((8, 8, 8), dtype=np.uint32)
    labels[1:4] = 70000
    labels[5:7] = 4464
    path = tmp_path / "labels.nrrd"
    sitk.WriteImage(make_image(labels), str(path))
    segmentation = read_segmentation(path, {70000: "liver", 4464: "tumour"})
    assert np.count_nonzero(segmentation.mask("liver")) == 3 * 64
    assert np.count_nonzero(segmentation.mask("tumour")) == 2 * 64


def test_a_zero_byte_segmentation_says_why(small_case, tmp_path, capsys):
    empty = tmp_path / "empty.seg.nrrd"
    empty.write_bytes(b"")
    assert run_cli("dose", "--activity", small_case[0], "--segmentation", empty, "--mode", "absolute", "--units", "bq_per_ml",
                   "--output", tmp_path / "o") == 2
    assert "is empty (0 bytes)" in capsys.readouterr().err
