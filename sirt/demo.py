"""``sirt demo``: the main job on the bundled sample patients.

Patient 1: post-treatment 90Y PET in Bq/mL, absolute calibration, LDM and VSV.
Patient 2: pre-treatment 99mTc-MAA SPECT in counts, relative calibration over the liver, VSV:
the predicted 90Y dose. The administered activity and lung shunt of patient 2 are not part of the
sample data; the demo assumes 1.5 GBq and LSF 5 % and says so.
Each VSV dose map then goes through ``sirt dvh``: DVH/BVH curves, the constraints table and plots,
with the derived normal-liver structures, and ``sirt report`` (report.html, report.pdf).

Then the whole chain of ``sirt run`` on both patients (dose, DVH, report, dosiomic features, cohort
table; first-order features only, to stay within minutes), a SYNTHETIC training cohort built around
the real patients' 90Y dose-volume metrics with a planted dose-response, a model trained on it with
``sirt train`` (one strategy, selector and classifier), and that model's prediction for the real
patients. Everything made from the synthetic cohort says SYNTHETIC in its name and content: it shows
the chain working, it is not a model of anything.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from SIRTDosimetryLib.cli import dvh_command
from SIRTDosimetryLib.cli.dose_command import format_table, run_dose
from SIRTDosimetryLib.data import SAMPLES_DIR
from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration, RelativeCalibration
from SIRTDosimetryLib.dose.engine import DoseParameters
from SIRTDosimetryLib.dose.radiobiology import NORMAL_LIVER_CHIESA_2015, TUMOUR_CHIESA_2015

from SIRTDosimetryLib.reporting.report import ReportRequest, make_report

from . import patient
from . import run as run_module

PATIENT_2_ASSUMED_ACTIVITY_GBQ = 1.5
PATIENT_2_ASSUMED_LSF = 0.05
SYNTHETIC_PATIENTS = 40
SYNTHETIC_TRAIN_ARGUMENTS = ("--strategies", "y90_dvh_dose", "--selectors", "anova", "--classifiers", "lr", "--n-features", "3",
                             "--bootstrap", "200", "--permutations", "0", "--study-permutations", "0")
"""A small search: one strategy (90Y dose-volume metrics), one selector, one classifier."""


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the dose engine on the bundled sample patients")
    p.add_argument("--output", type=Path, default=Path("demo_output"), help="output folder (default ./demo_output)")
    p.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier demo run")
    p.set_defaults(run=run)


def demo_cases() -> list[tuple[str, Path, Path, DoseParameters, str]]:
    tumours_1 = {f"Tumor {i}": TUMOUR_CHIESA_2015 for i in range(1, 7)}
    lq_1 = {"Liver": NORMAL_LIVER_CHIESA_2015, "Normal Tissue": NORMAL_LIVER_CHIESA_2015, **tumours_1}
    pet = AbsoluteCalibration(units="bq_per_ml")
    maa = RelativeCalibration(
        administered_activity_bq=PATIENT_2_ASSUMED_ACTIVITY_GBQ * 1e9,
        calibration_voi=("liver",),
        lung_shunt_fraction=PATIENT_2_ASSUMED_LSF,
    )
    lq_2 = {
        "liver": NORMAL_LIVER_CHIESA_2015,
        "whole liver normal": NORMAL_LIVER_CHIESA_2015,
        "perfused normal": NORMAL_LIVER_CHIESA_2015,
        "Tumor 1": TUMOUR_CHIESA_2015,
        "Tumor 2": TUMOUR_CHIESA_2015,
    }
    pet_1 = (SAMPLES_DIR / "patient_1_Y90_PET.nrrd", SAMPLES_DIR / "patient_1_Segmentation.seg.nrrd")
    spect_2 = (SAMPLES_DIR / "patient_2_SPECT.nrrd", SAMPLES_DIR / "patient_2_Segmentation.seg.nrrd")
    return [
        ("patient_1_ldm", *pet_1, DoseParameters(calibration=pet, method="ldm", radiobiology=lq_1),
         "90Y PET (Bq/mL), absolute, local deposition"),
        ("patient_1_vsv", *pet_1, DoseParameters(calibration=pet, method="vsv", radiobiology=lq_1),
         "90Y PET (Bq/mL), absolute, voxel S-value convolution"),
        ("patient_2_vsv", *spect_2, DoseParameters(calibration=maa, method="vsv", radiobiology=lq_2, clamp_invalid=True),
         f"99mTc-MAA SPECT (counts), relative over the liver with an ASSUMED {PATIENT_2_ASSUMED_ACTIVITY_GBQ} GBq "
         f"and LSF {PATIENT_2_ASSUMED_LSF:.0%}, negative voxels set to zero, VSV: predicted 90Y dose"),
    ]


def dvh_arguments(name: str, segmentation: Path, dose_dir: Path) -> list[str] | None:
    """``sirt dvh`` arguments for a demo case's dose map (None: no DVH step for that case)."""
    common = ["dvh", "--dose", str(dose_dir / "dose_gy.nrrd"), "--segmentation", str(segmentation),
              "--output", str(dose_dir / "dvh"), "--bed-params", "Tumor*=tumour"]
    if name == "patient_1_vsv":
        return [*common, "--whole-normal-liver", "Liver", "--bed-params", "whole normal liver=normal_liver",
                "--segments", "Liver,Tumor*", "--injected-activity-gbq", "1.4",
                "--counts", str(SAMPLES_DIR / "patient_1_Y90_PET.nrrd")]  # TNR from the activity concentrations
    if name == "patient_2_vsv":
        return [*common, "--normal-perfused-liver", "perfused volume", "--whole-normal-liver", "liver",
                "--bed-params", "normal perfused liver=normal_liver", "--bed-params", "whole normal liver=normal_liver",
                "--segments", "liver,Tumor*,perfused volume", "--counts", str(SAMPLES_DIR / "patient_2_SPECT.nrrd"),
                "--injected-activity-gbq", str(PATIENT_2_ASSUMED_ACTIVITY_GBQ), "--lsf", str(PATIENT_2_ASSUMED_LSF)]
    return None


def run(args: argparse.Namespace) -> int:
    dvh_parser = patient.command_parser(dvh_command.add_parser)
    for name, activity, segmentation, params, description in demo_cases():
        result, _ = run_dose(activity, segmentation, params, args.output / name, overwrite=args.overwrite)
        print(f"\n== {name}: {description}")
        print(format_table(result))
        for warning in result.warnings:
            print(f"warning: {warning}")
        dvh = dvh_arguments(name, segmentation, args.output / name)
        if dvh is not None:
            dvh_args = dvh_parser.parse_args([*dvh, *(["--overwrite"] if args.overwrite else [])])
            print(f"-- dose-volume analysis ({args.output / name / 'dvh'})")
            dvh_args.run(dvh_args)
        patient_id = name.rsplit("_", 1)[0]
        make_report(ReportRequest(args.output / name, patient_id, description), overwrite=args.overwrite)
        print(f"-- report ({args.output / name / 'report.html'}, report.pdf)")
    print(f"\nDose maps, BED/EQD2 maps, summary.json, DVH/constraints and reports written under {args.output}/")
    return run_chain(args.output, args.overwrite)


def demo_manifest() -> dict:
    """The manifest of the chain: the two sample patients as in examples/manifest.yaml, with absolute paths
    and without clinical values (the sample data carry none)."""
    tumours_1 = [f"Tumor {i}" for i in range(1, 7)]
    return {
        "patients": [
            {"patient_id": "P1",
             "structures": {"tumour": tumours_1, "wnl": ["Normal Tissue"]},
             "y90": {"pet": str(SAMPLES_DIR / "patient_1_Y90_PET.nrrd"), "segmentation": str(SAMPLES_DIR / "patient_1_Segmentation.seg.nrrd"),
                     "calibration": "absolute", "units": "bq_per_ml", "method": "vsv"}},
            {"patient_id": "P2",
             "structures": {"tumour": ["Tumor 1", "Tumor 2"], "npl": ["perfused normal"], "wnl": ["whole liver normal"]},
             "maa": {"spect": str(SAMPLES_DIR / "patient_2_SPECT.nrrd"), "segmentation": str(SAMPLES_DIR / "patient_2_Segmentation.seg.nrrd"),
                     "administered_activity_gbq": PATIENT_2_ASSUMED_ACTIVITY_GBQ, "lung_shunt_fraction": PATIENT_2_ASSUMED_LSF,
                     "calibration_voi": ["liver"], "clamp_negative": True, "method": "vsv"}},
        ],
    }


def synthetic_training_cohort(real, prefix: str = "y90_dvc_", n: int = SYNTHETIC_PATIENTS, seed: int = 0):
    """SYNTHETIC patients around the real patients' ``prefix`` columns: each patient scales every metric by
    one log-normal dose level (sd 0.4) times a small per-metric noise (sd 0.1); the half with the highest
    dose level (plus noise) respond (CR/PR), the others do not (SD/PD): a planted dose-response."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    columns = [c for c in real.columns if c.startswith(prefix) and real[c].notna().any() and not c.endswith(("_error", "_warning"))]
    centre = real[columns].astype(float).mean(skipna=True).to_numpy()
    level = rng.lognormal(0.0, 0.4, size=n)
    values = centre * level[:, None] * rng.lognormal(0.0, 0.1, size=(n, len(columns)))
    pct = [i for i, c in enumerate(columns) if c.endswith("_pct")]
    values[:, pct] = np.minimum(values[:, pct], 100.0)
    responder = np.log(level) + rng.normal(0.0, 0.15, size=n) > np.median(np.log(level))
    table = pd.DataFrame(values, columns=columns)
    table.insert(0, "patient_id", [f"SYNTHETIC-{i:03d}" for i in range(n)])
    table["response"] = np.where(responder, rng.choice(["CR", "PR"], n), rng.choice(["SD", "PD"], n))
    return table


def run_chain(output: Path, overwrite: bool) -> int:
    """``sirt run`` on both patients, a SYNTHETIC cohort, ``sirt train`` on it, the prediction for the real patients."""
    import pandas as pd
    import yaml

    from SIRTDosimetryLib.errors import SIRTInputError
    from SIRTResponseLib.cli import train_command

    chain, synthetic = output / "chain", output / "SYNTHETIC_model"
    if not overwrite and (chain.exists() or synthetic.exists()):
        raise SIRTInputError(f"{chain} or {synthetic} already exists; choose another folder or pass --overwrite")
    chain.mkdir(parents=True, exist_ok=True)
    manifest, preset = chain / "manifest.yaml", chain / "firstorder-preset.json"
    manifest.write_text(yaml.safe_dump(demo_manifest(), sort_keys=False), encoding="utf-8")
    preset.write_text(json.dumps({"name": "firstorder-only", "classes": ["firstorder"]}), encoding="utf-8")
    parser = patient.command_parser(run_module.register, train_command.add_parser)
    print(f"\n== the whole chain: sirt run {manifest}")
    run_args = parser.parse_args(["run", str(manifest), "--output", str(chain / "run"), "--preset", str(preset), "--no-progress"])
    run_args.run(run_args)
    table = pd.read_csv(chain / "run" / "cohort.csv")

    print(f"\n== SYNTHETIC training cohort of {SYNTHETIC_PATIENTS} patients and 'sirt train' on it ({synthetic})")
    synthetic.mkdir(parents=True, exist_ok=True)
    cohort_path = synthetic / "SYNTHETIC_cohort.csv"
    synthetic_training_cohort(table).to_csv(cohort_path, index=False)
    (synthetic / "README.txt").write_text("SYNTHETIC: a demonstration cohort with a planted dose-response, made by 'sirt demo'. "
                                          "The model and its predictions are not a model of anything.\n", encoding="utf-8")
    model = synthetic / "SYNTHETIC_best_model"
    train_args = parser.parse_args(["train", "--features", str(cohort_path), "--output", str(synthetic / "study"),
                                    *SYNTHETIC_TRAIN_ARGUMENTS, "--export-best", str(model), "--overwrite"])
    train_args.run(train_args)
    print("\n== prediction of the SYNTHETIC model for the sample patients")
    path = run_module.predict_cohort(model, table, output / "SYNTHETIC_predictions.json", synthetic=True)
    print(f"\nreports: {chain / 'run' / 'patients'}/<patient>/<study>/report.html; SYNTHETIC prediction: {path}")
    return 0
