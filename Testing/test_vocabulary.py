"""One segment vocabulary in every command (names, case-insensitive names, globs, @tumour), distinct option
names for the radionuclide and the image source, the wide one-row DVH table."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest

from sirt import main
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.selection import expand_mapping, select_segments, split_patterns

NAMES = ["gallbladder", "liver", "Tumor 1", "Tumor 2", "perfused volume", "whole liver normal", "perfused normal"]


def test_select_segments_by_name_case_glob_and_role():
    assert select_segments(["Liver"], NAMES) == ["liver"]
    assert select_segments(["tumor*", "GALLBLADDER"], NAMES) == ["gallbladder", "Tumor 1", "Tumor 2"]
    assert select_segments(["@tumour"], NAMES) == select_segments(["@tumor"], NAMES) == ["Tumor 1", "Tumor 2"]
    assert select_segments(["@tumour"], NAMES, roles={"tumour": ["Tumor 2"]}) == ["Tumor 2"]
    assert split_patterns("liver, Tumor*|@tumour") == ["liver", "Tumor*", "@tumour"]
    with pytest.raises(SIRTInputError, match="'Spleen' not found: it matches none of"):
        select_segments(["liver", "Spleen"], NAMES)
    with pytest.raises(SIRTInputError, match="unknown role 'bone'"):
        select_segments(["@bone"], NAMES)
    with pytest.raises(SIRTInputError, match="@normal_liver needs the structures' roles"):
        select_segments(["@normal liver"], NAMES)


def test_expand_mapping_later_entries_win_and_come_last():
    mapping = expand_mapping({"perfused*": "normal", "@tumour": "tumour", "perfused normal": "other"}, NAMES)
    assert mapping == {"perfused volume": "normal", "Tumor 1": "tumour", "Tumor 2": "tumour", "perfused normal": "other"}
    assert list(mapping)[-1] == "perfused normal"


@pytest.fixture(scope="module")
def maa_dose(patient2_paths, tmp_path_factory):
    """'sirt dose' with globs and roles in --segments and --bed-params (LDM, 1.5 GBq over the liver)."""
    spect, seg = patient2_paths
    out = tmp_path_factory.mktemp("vocabulary") / "P2"
    assert main.main(["dose", "--activity", str(spect), "--segmentation", str(seg), "--output", str(out), "--mode", "relative",
                      "--administered-activity-gbq", "1.5", "--clamp-negative", "--segments", "LIVER,@tumour",
                      "--bed-params", "liver=normal_liver", "--bed-params", "Tumor*=tumour"]) == 0
    return out


def test_sirt_dose_reads_globs_and_roles(maa_dose):
    summary = json.loads((maa_dose / "summary.json").read_text())
    assert [s["name"] for s in summary["segments"]] == ["liver", "Tumor 1", "Tumor 2"]
    lq = {s["name"]: s["lq_parameters"]["alpha_beta_gy"] for s in summary["segments"]}
    assert lq == {"liver": 2.5, "Tumor 1": 10.0, "Tumor 2": 10.0}
    assert list(summary["provenance"]["parameters"]["radiobiology"]) == ["liver", "Tumor*"]  # as given


def test_sirt_dvh_writes_a_wide_one_row_table_beside_the_long_one(maa_dose, patient2_paths):
    _, seg = patient2_paths
    out = maa_dose / "dvh"
    assert main.main(["dvh", "--dose", str(maa_dose / "dose_gy.nrrd"), "--segmentation", str(seg), "--output", str(out),
                      "--segments", "liver,@tumour", "--bed-params", "@tumour=tumour", "--lsf", "0.05"]) == 0
    with open(out / "constraints.csv", newline="") as handle:
        long = list(csv.DictReader(handle))
    wide = pd.read_csv(out / "constraints_wide.csv")
    assert len(wide) == 1 and wide.loc[0, "patient_id"] == "P2" and wide.loc[0, "lsf"] == 0.05
    for row in long:
        prefix = row["structure"].lower().replace(" ", "_")
        assert float(wide.loc[0, f"{prefix}_dose_mean_gy"]) == pytest.approx(float(row["dose_mean_gy"]), rel=1e-9)
    assert wide.loc[0, "tumor_1_bed_mean_gy"] > 0 and pd.isna(wide.loc[0, "liver_bed_mean_gy"])  # no LQ parameters for the liver


def test_sirt_features_structure_globs_and_source_option(patient2_paths, tmp_path, capsys):
    spect, seg = patient2_paths
    preset = tmp_path / "firstorder.json"
    preset.write_text(json.dumps({"name": "firstorder-only", "classes": ["firstorder"]}))
    common = ["features", "--image", str(spect), "--segmentation", str(seg), "--kind", "spect", "--preset", str(preset),
              "--structure", "tumour=@tumour", "--structure", "npl=PERFUSED NORMAL"]
    assert main.main([*common, "--source", "maa", "--output", str(tmp_path / "a.csv")]) == 0
    table = pd.read_csv(tmp_path / "a.csv")
    assert "maa_spect_tumour_firstorder_Mean" in table.columns and "maa_spect_npl_firstorder_Mean" in table.columns
    assert main.main([*common, "--radionuclide", "maa", "--output", str(tmp_path / "b.csv")]) == 0
    assert "deprecated; use --source" in capsys.readouterr().err
    assert pd.read_csv(tmp_path / "b.csv").equals(table.drop(columns=[]))
    bad = ["features", "--image", str(spect), "--segmentation", str(seg), "--kind", "spect", "--structure", "tumour=Tumour 9"]
    assert main.main(bad) == 2 and "'Tumour 9' not found: it matches none of" in capsys.readouterr().err
