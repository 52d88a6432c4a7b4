"""``sirt dvh`` and ``sirt plan`` end to end on the sample patient 2 (99mTc-MAA SPECT), and their bad-input errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from sirt import main
from SIRTDosimetryLib.nuclides import Y90

E = Y90.energy_per_activity_j_per_gbq


@pytest.fixture(scope="module")
def maa_dose(patient2_paths, tmp_path_factory):
    """'sirt dose' on patient 2: 2 GBq distributed over the perfused volume (LDM)."""
    spect, seg = patient2_paths
    out = tmp_path_factory.mktemp("dose")
    args = ["dose", "--activity", str(spect), "--segmentation", str(seg), "--output", str(out), "--mode", "relative",
            "--administered-activity-gbq", "2.0", "--calibration-voi", "perfused volume", "--clamp-negative"]
    assert main.main(args) == 0, "sirt dose failed"
    return out / "dose_gy.nrrd"


def _csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_sirt_dvh_patient2(maa_dose, patient2_paths, tmp_path, capsys):
    spect, seg = patient2_paths
    out = tmp_path / "dvh"
    rc = main.main([
        "dvh", "--dose", str(maa_dose), "--segmentation", str(seg), "--output", str(out), "--counts", str(spect),
        "--normal-perfused-liver", "perfused volume", "--whole-normal-liver", "liver",
        "--derive", "npl without gallbladder=perfused volume - Tumor* - gallbladder",
        "--threshold", "perfusion 10%=perfused volume:0.1",
        "--bed-params", "@tumour=tumour", "--bed-params", "@normal_liver=normal_liver",
        "--lesions", "--min-lesion-volume-ml", "5", "--lsf", "0.05", "--injected-activity-gbq", "2.0",
        "--planned-dose", str(maa_dose), "--bin-width-gy", "1",
    ])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    for name in ("dvh.csv", "constraints.csv", "constraints.json", "dvh_dose.png", "dvh_bed.png", "lesions.csv",
                 "comparison.csv", "isodose_dice.csv", "dose_difference_gy.nrrd", "dvh_comparison.png"):
        assert (out / name).stat().st_size > 0, name
    assert not [p for p in out.iterdir() if p.name.startswith(".sirt-staging")]

    doc = json.loads((out / "constraints.json").read_text())
    assert doc["schema"] == "slicer-sirt/dose-volume/1"
    assert doc["provenance"]["inputs"]["dose"]["sha256"]
    assert doc["patient"] == {"lsf": 0.05, "injected_activity_gbq": 2.0, "lsf_method": "given"}
    structures = {s["name"]: s for s in doc["structures"]}
    assert structures["Tumor 1"]["role"] == "tumour" and structures["normal perfused liver"]["role"] == "normal_liver"
    npl, t1 = structures["normal perfused liver"]["features"], structures["Tumor 1"]["features"]
    assert "dose_v30_pct" in npl and "bed_v30_pct" in npl and "dose_v30_pct" not in t1
    # dose is proportional to counts (LDM, one density; negatives clamped for the dose only): TNR ~ dose ratio
    assert t1["tnr_npl"] == pytest.approx(t1["dose_mean_gy"] / npl["dose_mean_gy"], rel=0.02)
    # the delineated 'perfused normal' excludes the gallbladder too
    assert structures["npl without gallbladder"]["features"]["volume_ml"] == pytest.approx(
        structures["perfused normal"]["features"]["volume_ml"], rel=0.01)
    assert structures["perfusion 10%"]["source"] == "threshold"

    rows = _csv(out / "constraints.csv")
    assert [r["structure"] for r in rows] == [s["name"] for s in doc["structures"]]
    assert float(rows[0]["volume_ml"]) == pytest.approx(doc["structures"][0]["features"]["volume_ml"], rel=1e-9)
    lesions = _csv(out / "lesions.csv")
    assert {r["lesion"] for r in lesions} == {"Tumor 1", "Tumor 2"} and all(r["included"] == "true" for r in lesions)

    curve = [r for r in _csv(out / "dvh.csv") if r["structure"] == "Tumor 1" and r["quantity"] == "dose"]
    assert float(curve[0]["cumulative_volume_pct"]) == pytest.approx(100.0)
    assert sum(float(r["differential_volume_ml"]) for r in curve) == pytest.approx(t1["volume_ml"], rel=1e-4)

    # comparing the map with itself: no difference, Dice 1
    assert all(float(r["difference"]) == 0.0 for r in _csv(out / "comparison.csv") if r["difference"])
    assert all(r["dice"] in ("", "1.0", "1") for r in _csv(out / "isodose_dice.csv"))
    assert np.all(sitk.GetArrayViewFromImage(sitk.ReadImage(str(out / "dose_difference_gy.nrrd"))) == 0)


def _run_expecting_error(args, out, capsys, message):
    rc = main.main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err, err
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def test_sirt_dvh_bad_input_leaves_no_files(maa_dose, patient2_paths, tmp_path, capsys):
    spect, seg = patient2_paths
    out = tmp_path / "out"
    base = ["dvh", "--dose", str(maa_dose), "--segmentation", str(seg), "--output", str(out)]
    _run_expecting_error([*base, "--threshold", "t=perfused volume:1.5"], out, capsys, "threshold fraction must be in (0, 1)")
    _run_expecting_error([*base, "--derive", "nothing=Tumor 1 - liver"], out, capsys, "is empty on the dose grid")

    # a dose grid that misses the tumours: crop the map well away from them
    dose = sitk.ReadImage(str(maa_dose))
    cropped_path = tmp_path / "cropped.nrrd"
    sitk.WriteImage(dose[:, :, :5], str(cropped_path))
    _run_expecting_error(["dvh", "--dose", str(cropped_path), "--segmentation", str(seg), "--output", str(out), "--segments", "Tumor 1"],
                         out, capsys, "lies outside")
    # a counts image on another grid
    other = tmp_path / "other.nrrd"
    sitk.WriteImage(sitk.Shrink(dose, [2, 2, 2]), str(other))
    _run_expecting_error([*base, "--counts", str(other)], out, capsys, "not on the dose grid")
    _run_expecting_error([*base, "--lsf-segments", "lungs,liver"], out, capsys, "counts image")

    # an existing output is not overwritten and stays as it was
    out.mkdir(exist_ok=True)
    (out / "constraints.csv").write_text("keep me")
    assert main.main([*base, "--segments", "Tumor 1"]) == 2
    assert (out / "constraints.csv").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["constraints.csv"]


def test_sirt_plan_partition_from_numbers(tmp_path, capsys):
    out = tmp_path / "plan"
    rc = main.main(["plan", "--output", str(out), "--microspheres", "resin", "--tnr", "4", "--lsf", "0.1", "--tumour-mass-g", "150",
                    "--normal-mass-g", "1200", "--lung-mass-g", "1000", "--activity-gbq", "2.0"])
    printed = capsys.readouterr().out
    assert rc == 0
    plan = json.loads((out / "plan.json").read_text())
    # hand-computed: D_N = E x 2.0 x 0.9 / (4 x 0.15 + 1.2) = E Gy, above the resin 40 Gy limit
    assert plan["doses"]["normal_perfused_liver_gy"] == pytest.approx(E)
    assert plan["doses"]["tumour_gy"] == pytest.approx(4 * E)
    assert plan["activity_gbq"] == 2.0  # kept, not clipped
    assert plan["max_activity_gbq"] == pytest.approx(40 * 1.8 / (E * 0.9))
    assert [v["constraint"] for v in plan["violations"]] == ["normal_perfused_liver_gy"]
    assert "warning: normal_perfused_liver_gy" in printed
    assert plan["limits"]["normal_perfused_liver_gy"] == 40 and plan["limits"]["lung_single_gy"] == 30
    assert plan["sources"] and plan["input_origin"]["lsf"] == "given"
    assert plan["provenance"]["parameters"]["tnr"] == 4


def test_sirt_plan_from_maa_with_voxel_planning(maa_dose, patient2_paths, tmp_path, capsys):
    spect, seg = patient2_paths
    out = tmp_path / "plan"
    rc = main.main(["plan", "--output", str(out), "--microspheres", "glass", "--spect", str(spect), "--segmentation", str(seg),
                    "--perfused", "perfused volume", "--liver", "liver", "--clamp-negative", "--lsf", "0.0",
                    "--target-tumour-dose-gy", "205", "--maa-dose", str(maa_dose), "--maa-reference-activity-gbq", "2.0"])
    assert rc == 0, capsys.readouterr()
    plan = json.loads((out / "plan.json").read_text())
    assert plan["doses"]["tumour_gy"] == pytest.approx(205)
    maa = plan["maa_measurements"]
    assert maa["tumours"] == ["Tumor 1", "Tumor 2"] and maa["tnr"] > 1
    assert plan["inputs"]["tumour_mass_g"] == pytest.approx(maa["tumour_volume_ml"] * 1.03)
    voxel = plan["voxel_based"]["at_activity"]["planned"]
    npl_mean = voxel["structures"]["normal perfused liver"]["dose_mean_gy"]
    # MAA map at 2 GBq with no shunt, scaled: the voxel NPL mean equals the partition NPL dose
    assert npl_mean == pytest.approx(plan["doses"]["normal_perfused_liver_gy"], rel=0.01)


def test_sirt_plan_single_compartment_and_bsa(tmp_path, capsys):
    out = tmp_path / "sc"
    rc = main.main(["plan", "--output", str(out), "--method", "single-compartment", "--microspheres", "glass",
                    "--perfused-volume-ml", "800", "--target-perfused-dose-gy", "120", "--lsf", "0.3", "--lung-mass-g", "1000"])
    printed = capsys.readouterr().out
    assert rc == 0
    plan = json.loads((out / "plan.json").read_text())
    # A = D M / (E (1 - LSF)) with M = 800 mL x 1.03 g/mL; lung dose = E A LSF / 1 kg, above 30 Gy
    activity = 120 * 0.824 / (E * 0.7)
    assert plan["activity_gbq"] == pytest.approx(activity)
    assert plan["doses"]["lung_gy"] == pytest.approx(E * activity * 0.3)
    assert [v["constraint"] for v in plan["violations"]] == ["lung_gy"] and "warning: lung_gy" in printed
    out = tmp_path / "bsa"
    assert main.main(["plan", "--output", str(out), "--method", "bsa", "--microspheres", "resin", "--bsa-m2", "1.8",
                      "--tumour-volume-ml", "300", "--whole-normal-volume-ml", "1200", "--lsf", "0.05"]) == 0
    assert json.loads((out / "plan.json").read_text())["activity_gbq"] == pytest.approx(1.8 - 0.2 + 0.2)


def test_sirt_plan_bad_input(patient2_paths, tmp_path, capsys):
    spect, seg = patient2_paths
    out = tmp_path / "plan"
    numbers = ["plan", "--output", str(out), "--microspheres", "glass", "--tnr", "3", "--tumour-mass-g", "100", "--normal-mass-g", "1000"]
    _run_expecting_error([*numbers, "--lsf", "0.1"], out, capsys, "no lung mass is given")
    _run_expecting_error([*numbers, "--lsf", "1.2", "--lung-mass-g", "1000"], out, capsys, "lung shunt fraction must be in [0, 1)")
    _run_expecting_error(numbers, out, capsys, "needs: LSF")
    _run_expecting_error(["plan", "--output", str(out), "--microspheres", "glass", "--spect", str(spect), "--segmentation", str(seg),
                          "--perfused", "perfused volume", "--liver", "liver", "--lung", "lungs", "--clamp-negative"],
                         out, capsys, "'lungs' matches none of")
    _run_expecting_error(["plan", "--output", str(out), "--microspheres", "glass", "--method", "bsa", "--bsa-m2", "1.8"],
                         out, capsys, "resin")
