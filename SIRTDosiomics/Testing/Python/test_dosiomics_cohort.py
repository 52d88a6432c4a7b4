"""SIRTDosiomics cohort extraction: manifests, the table, failures, resuming, local pool and Dask, CLI."""

from __future__ import annotations

import argparse
import json

import nrrd
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosiomicsLib import cli, cohort, naming
from SIRTDosiomicsLib.cohort import extract_cohort, run_manifest
from SIRTDosiomicsLib.manifest import ManifestError, patient_from_record, read_manifest
from SIRTDosiomicsLib.presets import load_preset
from SIRTDosiomicsLib.radiomics_engine import radiomics_engine, table_engine

FAST = {"images": {"dose": {"bin_width": 10.0}, "bed": {"bin_width": 10.0}}}  # few grey levels: quick tests
SEGMENTS = ("tumour", "normal a", "normal b")


def _write_patient(folder, seed: int) -> None:
    """SPECT counts (4 mm voxels) and a Slicer .seg.nrrd with a tumour and two normal-liver halves."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (18, 24, 24)
    z, y, x = np.indices(shape)
    tumour = (z - 9) ** 2 + (y - 12) ** 2 + (x - 12) ** 2 <= 16
    liver = (z > 2) & (z < 15) & (y > 3) & (y < 20) & (x > 3) & (x < 20) & ~tumour
    counts = rng.poisson(3, shape).astype(np.int16)
    counts[liver] += rng.poisson(40, liver.sum()).astype(np.int16)
    counts[tumour] += rng.poisson(400 + 50 * seed, tumour.sum()).astype(np.int16)
    image = sitk.GetImageFromArray(counts)
    image.SetSpacing((4.0, 4.0, 4.0))
    image.SetOrigin((-40.0, -30.0, 10.0))
    sitk.WriteImage(image, str(folder / "spect.nrrd"))
    labels = np.zeros(shape, np.uint8)
    labels[tumour] = 1
    labels[liver & (x < 12)] = 2
    labels[liver & (x >= 12)] = 3
    header = {
        "space": "left-posterior-superior",
        "space directions": np.diag([4.0, 4.0, 4.0]),
        "space origin": np.array([-40.0, -30.0, 10.0]),
        "kinds": ["domain"] * 3,
    }
    for i, name in enumerate(SEGMENTS):
        header |= {f"Segment{i}_Name": name, f"Segment{i}_LabelValue": str(i + 1), f"Segment{i}_Layer": "0"}
    nrrd.write(str(folder / "seg.seg.nrrd"), labels, header, index_order="C")


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    for i in (1, 2):
        _write_patient(root / f"P{i}", seed=i)
    manifest = root / "cohort.csv"
    manifest.write_text(
        "patient_id,maa_spect,maa_segmentation,maa_administered_activity_gbq,maa_lung_shunt_fraction,maa_calibration_voi,"
        "tumour,npl,wnl,clinical_age,clinical_response\n"
        "P1,P1/spect.nrrd,P1/seg.seg.nrrd,1.5,0.05,tumour|normal a|normal b,tumour,normal a,normal a|normal b,61,CR\n"
        "P2,P2/spect.nrrd,P2/seg.seg.nrrd,2.0,0.08,tumour|normal a|normal b,tumour,normal a,normal a|normal b,70,PD\n"
        "P3,P3/missing.nrrd,P1/seg.seg.nrrd,2.0,,tumour|normal a|normal b,tumour,normal a,normal a|normal b,55,SD\n"
    )
    return root, manifest


# --- manifests --------------------------------------------------------------------------------------


def test_csv_and_yaml_manifests_give_the_same_patients(cohort_dir, tmp_path):
    root, manifest = cohort_dir
    from_csv = read_manifest(manifest)
    assert [p.patient_id for p in from_csv] == ["P1", "P2", "P3"]
    p1 = from_csv[0]
    assert set(p1.studies) == {"maa"}
    study = p1.studies["maa"]
    assert study.images == {"spect": str((root / "P1" / "spect.nrrd").resolve())}
    assert study.structures == {"tumour": ("tumour",), "npl": ("normal a",), "wnl": ("normal a", "normal b")}
    assert study.dosimetry["administered_activity_gbq"] == 1.5
    assert study.dosimetry["calibration_voi"] == SEGMENTS
    assert p1.clinical == {"age": "61", "response": "CR"}
    yaml_path = root / "cohort.yaml"
    yaml_path.write_text(
        "defaults:\n  structures: {npl: normal a, wnl: [normal a, normal b]}\n"
        "  maa: {calibration_voi: [tumour, normal a, normal b]}\n"
        "patients:\n"
        "  - patient_id: P1\n    clinical: {age: '61', response: CR}\n    structures: {tumor: tumour}\n"
        "    99mTc-MAA: {spect: P1/spect.nrrd, segmentation: P1/seg.seg.nrrd, administered_activity_gbq: 1.5,"
        " lung_shunt_fraction: 0.05}\n"
    )
    assert read_manifest(yaml_path)[0] == p1


def test_manifest_errors_are_clear():
    with pytest.raises(ManifestError, match="unknown manifest keys"):
        patient_from_record({"patient_id": "A", "maa_spect": "x.nrrd", "maa_segmentation": "s", "maa_dosage": 3})
    with pytest.raises(ManifestError, match="need maa_segmentation"):
        patient_from_record({"patient_id": "A", "maa_spect": "x.nrrd"})
    with pytest.raises(ManifestError, match="no patient_id"):
        patient_from_record({"maa_spect": "x.nrrd"})
    with pytest.raises(ManifestError, match="administered_activity_gbq"):
        patient_from_record({"patient_id": "A", "maa_spect": "x", "maa_segmentation": "s", "maa_administered_activity_gbq": "two"})


# --- cohort runs ------------------------------------------------------------------------------------


def test_cohort_table_failures_and_resume(cohort_dir, tmp_path, monkeypatch):
    root, manifest = cohort_dir
    out = tmp_path / "out"
    frame, outcomes = run_manifest(manifest, out, preset=FAST, workers=1, progress=False)
    assert [o.status for o in outcomes] == ["done", "done", "failed"]
    assert "not found" in outcomes[2].error
    assert list(frame["patient_id"]) == ["P1", "P2", "P3"]
    assert frame.loc[2, "patient_error"].startswith("image file not found")
    assert frame.loc[0, "patient_error"] == "" and frame.loc[0, "clinical_response"] == "CR"
    assert frame["clinical_age"].tolist() == [61.0, 70.0, 55.0]
    features = [c for c in frame.columns if naming.parse_column(c).kind == "feature"]
    for image in ("dose", "bed", "spect"):
        assert sum(c.startswith(f"maa_{image}_") for c in features) == 321  # 3 structures x 107
    errors = [c for c in frame.columns if c.endswith("_error") and c != "patient_error"]
    assert all(frame.loc[0, c] == "" for c in errors), {c: frame.loc[0, c] for c in errors if frame.loc[0, c]}
    assert frame.loc[:1, "maa_dose_tumour_glcm_JointEnergy"].notna().all()
    # Dose-volume constraints from the dosimetry module, per structure.
    for name in ("maa_dvc_tumour_dose_mean_gy", "maa_dvc_wnl_bed_d70_gy", "maa_dvc_npl_dose_v30_pct", "maa_dvc_tumour_tnr_wnl"):
        assert np.isfinite(frame.loc[0, name]), name
    assert frame.loc[1, "maa_dvc_patient_injected_activity_gbq"] == 2.0
    # CSV and Parquet hold the same table; features.json the provenance.
    csv_frame = pd.read_csv(out / "features.csv", keep_default_na=False, na_values=[""], float_precision="round_trip")
    parquet = pd.read_parquet(out / "features.parquet")
    assert list(csv_frame.columns) == list(parquet.columns) == list(frame.columns)
    np.testing.assert_array_equal(csv_frame[features].to_numpy(float), parquet[features].to_numpy(float))
    meta = json.loads((out / "features.json").read_text())
    assert [p["status"] for p in meta["patients"]] == ["done", "done", "failed"]
    assert meta["features_per_structure"] == 107 and meta["preset"]["images"]["dose"]["bin_width"] == 10.0
    assert table_engine(out / "features.csv") == radiomics_engine()  # the pyradiomics build, for model cards

    # Rerun: finished patients come from the cache, the failed one is tried again.
    def no_recompute(spec, *args):
        if spec.patient_id != "P3":
            raise AssertionError(f"{spec.patient_id} recomputed")
        raise SIRTInputError("still missing")

    monkeypatch.setattr(cohort, "prepare_patient", no_recompute)
    with pytest.raises(SIRTInputError, match="already exists"):
        run_manifest(manifest, out, preset=FAST, workers=1, progress=False)
    frame2, outcomes2 = run_manifest(manifest, out, preset=FAST, workers=1, progress=False, overwrite=True)
    assert [o.status for o in outcomes2] == ["cached", "cached", "failed"]
    pd.testing.assert_frame_equal(frame2.drop(columns="patient_error"), frame.drop(columns="patient_error"))
    # A changed preset is a different cache key: recomputed.
    (again,) = extract_cohort(read_manifest(manifest)[:1], load_preset({**FAST, "shape2d": True}), workers=1,
                              cache_dir=out / ".sirt-features-cache", progress=False)
    assert again.status == "failed" and again.error == "P1 recomputed"


def test_local_pool_and_dask_give_the_same_values(cohort_dir):
    root, manifest = cohort_dir
    patients = read_manifest(manifest)[:2]
    preset = load_preset(FAST)
    inline = extract_cohort(patients, preset, workers=1, progress=False)
    pooled = extract_cohort(patients, preset, workers=2, progress=False)
    for a, b in zip(inline, pooled):
        assert b.status == "done"
        assert a.row.keys() == b.row.keys()
        for key, value in a.row.items():
            if isinstance(value, float):
                np.testing.assert_allclose(b.row[key], value, rtol=1e-13, err_msg=key)
            else:
                assert b.row[key] == value, key
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        on_dask = extract_cohort(patients, preset, scheduler=cluster.scheduler_address, progress=False)
    assert [o.status for o in on_dask] == ["done", "done"]
    np.testing.assert_allclose(on_dask[1].row["maa_bed_wnl_glszm_ZoneEntropy"], inline[1].row["maa_bed_wnl_glszm_ZoneEntropy"], rtol=1e-13)


# --- command line -----------------------------------------------------------------------------------


def _parse(argv):
    parser = argparse.ArgumentParser(prog="sirt")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_single_image_and_cohort(cohort_dir, tmp_path, capsys):
    root, manifest = cohort_dir
    args = _parse(["features", "--image", str(root / "P1" / "spect.nrrd"), "--segmentation", str(root / "P1" / "seg.seg.nrrd"),
                   "--kind", "spect", "--radionuclide", "maa", "--structure", "tumour=tumour",
                   "--structure", "wnl=normal a|normal b", "--output", str(tmp_path / "one.csv")])
    assert args.run(args) == 0
    assert "wrote" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "one.csv", keep_default_na=False, na_values=[""], float_precision="round_trip")
    assert len(table) == 1 and sum(c.startswith("maa_spect_tumour_") and "_diagnostics_" not in c for c in table.columns) == 109
    assert pd.isna(table.loc[0, "maa_spect_wnl_error"])  # empty: no error
    assert np.isfinite(table.loc[0, "maa_spect_wnl_gldm_DependenceEntropy"])
    assert table_engine(tmp_path / "one.csv")["source"] == "pyradiomics-bhklab"  # one.json beside one.csv
    args = _parse(["features", "--image", str(root / "P1" / "spect.nrrd"), "--segmentation", str(root / "P1" / "seg.seg.nrrd"),
                   "--kind", "spect", "--source", "99mTc-MAA"])
    assert args.run(args) == 0
    printed = dict(line.split("\t", 1) for line in capsys.readouterr().out.splitlines())
    assert "maa_spect_normal-a_firstorder_Mean" in printed  # every segment as its own structure
    args = _parse(["features", "--manifest", str(manifest), "--output", str(tmp_path / "c"), "--workers", "1",
                   "--no-progress", "--preset", str(_preset_file(tmp_path))])
    assert args.run(args) == 1  # P3 fails, the others are written
    assert "patient P3" in capsys.readouterr().err
    assert len(pd.read_parquet(tmp_path / "c" / "features.parquet")) == 3
    with pytest.raises(SIRTInputError, match="either --manifest"):
        bad = _parse(["features", "--manifest", str(manifest), "--image", "x"])
        bad.run(bad)


def _preset_file(tmp_path):
    path = tmp_path / "fast.yaml"
    path.write_text("images:\n  dose: {bin_width: 10}\n  bed: {bin_width: 10}\n")
    return path
