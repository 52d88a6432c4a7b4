"""``sirt demo``: the main job on the bundled sample patients.

Patient 1: post-treatment 90Y PET in Bq/mL, absolute calibration, LDM and VSV.
Patient 2: pre-treatment 99mTc-MAA SPECT in counts, relative calibration over the liver, VSV:
the predicted 90Y dose. The administered activity and lung shunt of patient 2 are not part of the
sample data; the demo assumes 1.5 GBq and LSF 5 % and says so.
Each VSV dose map then goes through ``sirt dvh``: DVH/BVH curves, the constraints table and plots,
with the derived normal-liver structures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from SIRTDosimetryLib.cli.dose_command import format_table, run_dose
from SIRTDosimetryLib.data import SAMPLES_DIR
from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration, RelativeCalibration
from SIRTDosimetryLib.dose.engine import DoseParameters
from SIRTDosimetryLib.dose.radiobiology import NORMAL_LIVER_CHIESA_2015, TUMOUR_CHIESA_2015

from . import patient

PATIENT_2_ASSUMED_ACTIVITY_GBQ = 1.5
PATIENT_2_ASSUMED_LSF = 0.05


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
    dvh_parser = patient.dvh_parser()
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
    print(f"\nDose maps, BED/EQD2 maps, summary.json and DVH/constraints written under {args.output}/")
    return 0
