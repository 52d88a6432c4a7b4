"""``sirt dose`` on both real sample patients, and its handling of bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from sirt.main import main
from SIRTDosimetryLib.nuclides import Y90


def run_cli(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def patient1_ldm(tmp_path_factory, patient1_paths):
    pet, seg = patient1_paths
    out = tmp_path_factory.mktemp("p1") / "out"
    code = run_cli(
        "dose", "--activity", pet, "--segmentation", seg, "--mode", "absolute", "--units", "bq_per_ml",
        "--method", "ldm", "--output", out, "--bed-params", "Liver=normal_liver", "--bed-params", "Tumor 2=10,1.5",
    )
    assert code == 0
    return out, json.loads((out / "summary.json").read_text())


def test_patient1_outputs_on_activity_grid(patient1_ldm, patient1_paths):
    out, summary = patient1_ldm
    pet = sitk.ReadImage(str(patient1_paths[0]))
    dose = sitk.ReadImage(str(out / "dose_gy.nrrd"))
    assert dose.GetPixelID() == sitk.sitkFloat32
    assert dose.GetSize() == pet.GetSize()
    np.testing.assert_allclose(dose.GetOrigin(), pet.GetOrigin())
    np.testing.assert_allclose(dose.GetSpacing(), pet.GetSpacing())
    np.testing.assert_allclose(dose.GetDirection(), pet.GetDirection())
    assert set(summary["outputs"]) == {"dose_gy", "bed_gy", "eqd2_gy"}
    for name in summary["outputs"].values():
        assert (out / name).exists()


def test_patient1_ldm_energy_balance(patient1_ldm, patient1_paths):
    """Absolute LDM: every segment's mean dose is 49.67 J/GBq x activity / mass (mass-weighted, uniform density)."""
    _, summary = patient1_ldm
    pet = sitk.GetArrayFromImage(sitk.ReadImage(str(patient1_paths[0])))
    total_bq = pet.sum() * 2.34375 * 2.34375 * 2.7799999930640795 / 1000
    assert summary["calibration"]["total_activity_in_image_bq"] == pytest.approx(total_bq, rel=1e-6)  # activity held in float32
    for s in summary["segments"]:
        expected = Y90.energy_per_activity_j_per_gbq * s["activity_bq"] / 1e9 / (s["mass_g"] / 1000)
        assert s["dose_mean_gy"] == pytest.approx(expected, rel=1e-4), s["name"]
        assert s["dose_min_gy"] <= s["dose_mean_gy"] <= s["dose_max_gy"]
        assert s["mass_g"] == pytest.approx(1.03 * s["volume_ml"])


def test_patient1_summary_has_bed_only_where_asked(patient1_ldm):
    _, summary = patient1_ldm
    by_name = {s["name"]: s for s in summary["segments"]}
    assert by_name["Liver"]["lq_parameters"] == {"alpha_beta_gy": 2.5, "repair_half_time_h": 2.5}
    assert by_name["Tumor 2"]["bed_mean_gy"] > by_name["Tumor 2"]["dose_mean_gy"]
    assert by_name["Tumor 1"]["bed_mean_gy"] is None  # no parameters given: no BED, no silent default


def test_bed_map_follows_formula_and_is_nan_elsewhere(patient1_ldm):
    out, _ = patient1_ldm
    dose = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "dose_gy.nrrd"))).astype(float)
    bed = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "bed_gy.nrrd"))).astype(float)
    defined = np.isfinite(bed)
    assert 0 < defined.sum() < bed.size
    g_liver = 2.5 / ((2.5 + 64.1) * 2.5)
    g_tumour = 1.5 / ((1.5 + 64.1) * 10)
    ratio = (bed[defined] / np.where(dose[defined] > 0, dose[defined], np.nan) - 1) / np.where(dose[defined] > 0, dose[defined], np.nan)
    ratio = ratio[np.isfinite(ratio) & (dose[defined] > 1)]
    # every voxel with BED uses one of the two parameter sets
    close = np.isclose(ratio, g_liver, rtol=1e-3) | np.isclose(ratio, g_tumour, rtol=1e-3)
    assert close.all()
    assert np.isclose(ratio, g_tumour, rtol=1e-3).any() and np.isclose(ratio, g_liver, rtol=1e-3).any()


def test_eqd2_file_is_the_bed_file_over_each_voxels_factor(patient1_ldm):
    """eqd2_gy.nrrd, made from the BED map when written: EQD2 = BED / (1 + 2/(α/β)) with the α/β of the
    parameters each voxel's BED used (liver 2.5 Gy: 1.8; Tumor 2, 10 Gy: 1.2), NaN where BED is."""
    out, _ = patient1_ldm
    dose = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "dose_gy.nrrd"))).astype(float)
    bed = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "bed_gy.nrrd")))
    eqd2 = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "eqd2_gy.nrrd")))
    assert eqd2.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(eqd2), np.isnan(bed))
    hot = np.isfinite(bed) & (dose > 1)
    liver = np.isclose((bed[hot] / dose[hot] - 1) / dose[hot], 2.5 / ((2.5 + 64.1) * 2.5), rtol=1e-3)
    assert liver.any() and (~liver).any()
    np.testing.assert_allclose(eqd2[hot][liver], bed[hot][liver] / 1.8, rtol=1e-6)
    np.testing.assert_allclose(eqd2[hot][~liver], bed[hot][~liver] / 1.2, rtol=1e-6)


def test_patient1_provenance(patient1_ldm, patient1_paths):
    _, summary = patient1_ldm
    prov = summary["provenance"]
    assert prov["inputs"]["activity"]["sha256"] and len(prov["inputs"]["activity"]["sha256"]) == 64
    assert prov["parameters"]["method"] == "ldm"
    assert prov["parameters"]["calibration"]["units"] == "bq_per_ml"
    assert {"slicer-sirt", "numpy", "SimpleITK"} <= set(prov["software"])


def test_patient2_relative_calibration(tmp_path, patient2_paths):
    """MAA SPECT: the activity in the liver VOI is A_adm (1 - LSF) after clamping the negative voxels."""
    spect, seg = patient2_paths
    out = tmp_path / "p2"
    code = run_cli(
        "dose", "--activity", spect, "--segmentation", seg, "--mode", "relative", "--administered-activity-gbq", "2.0",
        "--lung-shunt-fraction", "0.08", "--calibration-voi", "liver", "--clamp-negative", "--output", out,
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    liver = next(s for s in summary["segments"] if s["name"] == "liver")
    assert liver["activity_bq"] == pytest.approx(2.0e9 * 0.92, rel=1e-6)  # activity held in float32
    assert summary["invalid_voxels"]["negative"] == int((sitk.GetArrayFromImage(sitk.ReadImage(str(spect))) < 0).sum())
    assert liver["dose_mean_gy"] == pytest.approx(49.67 * 1.84 / (liver["mass_g"] / 1000), rel=1e-4)


def test_negative_voxels_refused_without_clamp(tmp_path, patient2_paths, capsys):
    spect, seg = patient2_paths
    code = run_cli("dose", "--activity", spect, "--segmentation", seg, "--mode", "relative",
                   "--administered-activity-gbq", "2", "--output", tmp_path / "o")
    err = capsys.readouterr().err
    assert code == 2
    assert "461 negative" in err and "--clamp-negative" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--segments", "Liver,Lungs"], "segment 'Lungs' not found.*'Liver', 'Tumor 1'"),
        (["--half-life-h", "0"], "half-life"),
        (["--half-life-h", "-3"], "half-life"),
        (["--density", "0"], "tissue density must be a number of g/mL between"),
        (["--bed-params", "Liver=banana"], "preset"),
        (["--segment-density", "Lungs=0.3"], "Lungs"),
    ],
)
def test_bad_parameters(tmp_path, patient1_paths, capsys, extra, message):
    pet, seg = patient1_paths
    code = run_cli("dose", "--activity", pet, "--segmentation", seg, "--mode", "absolute", "--units", "bq_per_ml",
                   "--output", tmp_path / "o", *extra)
    assert code == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_absolute_mode_needs_units(tmp_path, patient1_paths, capsys):
    pet, seg = patient1_paths
    assert run_cli("dose", "--activity", pet, "--segmentation", seg, "--mode", "absolute", "--output", tmp_path / "o") == 2
    assert "needs the image units (bq_per_ml" in capsys.readouterr().err


def test_unknown_units_rejected(tmp_path, patient1_paths, capsys):
    pet, seg = patient1_paths
    with pytest.raises(SystemExit) as exc:  # argparse refuses a unit outside the known list
        run_cli("dose", "--activity", pet, "--segmentation", seg, "--mode", "absolute", "--units", "uCi_per_ml", "--output", tmp_path)
    assert exc.value.code == 2
    assert "bq_per_ml" in capsys.readouterr().err


def test_zero_counts_in_calibration_voi(tmp_path, patient1_paths, capsys):
    pet, seg = patient1_paths
    image = sitk.ReadImage(str(pet))
    empty = sitk.Image(image.GetSize(), sitk.sitkFloat32)
    empty.CopyInformation(image)
    zero_path = tmp_path / "zero.nrrd"
    sitk.WriteImage(empty, str(zero_path))
    code = run_cli("dose", "--activity", zero_path, "--segmentation", seg, "--mode", "relative",
                   "--administered-activity-gbq", "1", "--calibration-voi", "Liver", "--output", tmp_path / "o")
    assert code == 2
    assert "contains no counts" in capsys.readouterr().err


def test_non_overlapping_geometry(tmp_path, patient1_paths, capsys):
    pet, seg = patient1_paths
    data, header = nrrd.read(str(seg))
    header["space origin"] = np.asarray(header["space origin"]) + np.array([0.0, 0.0, 2000.0])
    moved = tmp_path / "moved.seg.nrrd"
    nrrd.write(str(moved), data, header)
    code = run_cli("dose", "--activity", pet, "--segmentation", moved, "--mode", "absolute", "--units", "bq_per_ml",
                   "--output", tmp_path / "o")
    assert code == 2
    assert "lies outside the activity image" in capsys.readouterr().err


def test_never_overwrites_inputs_or_outputs(tmp_path, patient1_paths, capsys):
    pet, seg = patient1_paths
    folder = tmp_path / "data"
    folder.mkdir()
    own_pet = folder / "dose_gy.nrrd"  # an input whose name equals an output's
    shutil.copy(pet, own_pet)
    before = own_pet.read_bytes()
    code = run_cli("dose", "--activity", own_pet, "--segmentation", seg, "--mode", "absolute", "--units", "bq_per_ml",
                   "--output", folder, "--overwrite")
    assert code == 2 and "overwrite an input" in capsys.readouterr().err
    assert own_pet.read_bytes() == before
    out = tmp_path / "out"
    args = ["dose", "--activity", pet, "--segmentation", seg, "--mode", "absolute", "--units", "bq_per_ml", "--output", out]
    assert run_cli(*args) == 0
    assert run_cli(*args) == 2 and "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no staging left behind


def test_corrupt_activity_file(tmp_path, patient1_paths, capsys):
    bad = tmp_path / "bad.nrrd"
    bad.write_bytes(b"NRRD0004\ngarbage")
    code = run_cli("dose", "--activity", bad, "--segmentation", patient1_paths[1], "--mode", "absolute",
                   "--units", "bq_per_ml", "--output", tmp_path / "o")
    assert code == 2
    assert "cannot read image" in capsys.readouterr().err


def test_console_script_reports_without_traceback(tmp_path, patient1_paths):
    """The installed entry point: bad input gives exit 2 and one clear line, no traceback."""
    pet, seg = patient1_paths
    proc = subprocess.run(
        [sys.executable, "-m", "sirt", "dose", "--activity", str(pet), "--segmentation", str(seg),
         "--mode", "absolute", "--units", "bq_per_ml", "--segments", "Nope", "--output", str(tmp_path / "o")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "segment 'Nope' not found" in proc.stderr


def test_cli_writes_a_slicer_scene(tmp_path, patient2_paths):
    """``sirt dose --scene out.mrb``: the scene file is written and reopens with the dose volume and segments."""
    from SIRTDosimetryLib.mrml.scene import read_scene

    spect, seg = patient2_paths
    scene_path = tmp_path / "case.mrb"
    code = run_cli("dose", "--activity", spect, "--segmentation", seg, "--mode", "relative", "--administered-activity-gbq", "1.5",
                   "--clamp-negative", "--segments", "liver,Tumor 1", "--output", tmp_path / "o", "--scene", scene_path)
    assert code == 0
    scene = read_scene(scene_path).scene
    volumes = [scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode") for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"))]
    assert any("dose" in v.GetName().lower() for v in volumes)
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") >= 1
    assert run_cli("dose", "--activity", spect, "--segmentation", seg, "--mode", "relative", "--administered-activity-gbq", "1.5",
                   "--clamp-negative", "--output", tmp_path / "o2", "--scene", scene_path) == 2  # never overwritten
