"""One patient of ``sirt run``: for each study (MAA planning, 90Y verification) dose → DVH → report.

Runs in a worker process (or on a Dask worker): every argument is a plain picklable value and the
result is a :class:`PatientOutcome`; an exception of one study is caught and recorded, the other
studies of the patient and the other patients go on.

Each study's folder ``<output>/patients/<patient>/<source>/`` holds what ``sirt dose``, ``sirt dvh``
and ``sirt report`` write, plus ``done.json`` with the SHA-256 key of everything the results depend
on (the manifest entry, the input files' contents, the options, the software version): a rerun with
the same key skips the study; a changed key recomputes it in place (these folders belong to the run).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from SIRTDosimetryLib import __version__
from SIRTDosimetryLib.cli import dvh_command, plan_command
from SIRTDosimetryLib.cli.dose_command import run_dose
from SIRTDosimetryLib.dose.radiobiology import NORMAL_LIVER_CHIESA_2015, TUMOUR_CHIESA_2015
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.writers import write_json
from SIRTDosimetryLib.provenance import sha256_of
from SIRTDosimetryLib.reporting.content import CONVENTIONAL_LUNG_MASS_G
from SIRTDosimetryLib.reporting.report import ReportRequest, make_report

DONE_FILE = "done.json"
CASES = {"maa": "MAA planning (predicted 90Y dose)", "y90": "90Y verification"}
"""The report's case label of each manifest source."""


@dataclass(frozen=True)
class PatientOptions:
    """What ``sirt run`` does for each patient."""

    output: Path
    isodose_levels_gy: tuple[float, ...]
    report: bool = True
    synthetic: bool = False
    microspheres: str | None = None  # glass | resin: a partition-model plan for MAA studies


@dataclass
class StudyOutcome:
    source: str
    status: str  # "done", "cached" or "failed"
    folder: str
    seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class PatientOutcome:
    patient_id: str
    studies: list[StudyOutcome]
    registration: dict | None = None  # the QA columns of the manifest's register: step (sirt.registration_step)

    @property
    def failed(self) -> bool:
        registration_error = self.registration is not None and self.registration.get("registration_qa") == "error"
        return registration_error or any(s.status == "failed" for s in self.studies)


def command_parser(*adders) -> argparse.ArgumentParser:
    """A parser with only the ``sirt`` commands added by ``adders`` (e.g. ``dvh_command.add_parser``): a chained
    step runs exactly as on the command line."""
    parser = argparse.ArgumentParser(prog="sirt")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in adders:
        add(subparsers)
    return parser


def study_folder(output: Path, patient_id: str, source: str) -> Path:
    from SIRTDosiomicsLib.naming import slug

    return Path(output) / "patients" / slug(patient_id) / source


def activity_image(study) -> str | None:
    """The image the dose is computed from: ``activity_image`` of the manifest, else the SPECT, else the PET."""
    kind = study.dosimetry.get("activity_image") or ("spect" if "spect" in study.images else "pet")
    return study.images.get(kind)


def dose_parameters(study):
    """Dose parameters of a manifest study, with BED for its tumour and normal-liver structures."""
    from SIRTDosiomicsLib.patient import study_dose_parameters  # the manifest's parameter reader

    structures = study.structures
    segments = tuple(dict.fromkeys(n for names in structures.values() for n in names)) or None
    params = study_dose_parameters(study.dosimetry, study.dosimetry.get("units"), segments)
    lq = {n: NORMAL_LIVER_CHIESA_2015 for role in ("npl", "wnl") for n in structures.get(role, ())}
    lq |= {n: TUMOUR_CHIESA_2015 for n in structures.get("tumour", ())}  # tumours last: they win where they overlap
    return replace(params, radiobiology=lq)


def dvh_arguments(study, dose_dir: Path, activity: str) -> list[str]:
    """``sirt dvh`` arguments for a study's dose map: roles from the manifest, BED by role, LSF and activity."""
    args = ["dvh", "--dose", str(dose_dir / "dose_gy.nrrd"), "--segmentation", study.segmentation, "--output", str(dose_dir / "dvh"),
            "--counts", activity, "--bed-params", "@tumour=tumour", "--bed-params", "@normal_liver=normal_liver", "--overwrite"]
    structures = study.structures
    names = list(dict.fromkeys(n for names in structures.values() for n in names))
    if names:
        args += ["--segments", ",".join(names)]
    for name in structures.get("tumour", ()):
        args += ["--tumours", name]
    for role, option in (("npl", "--npl-reference"), ("wnl", "--wnl-reference")):
        for name in structures.get(role, ()):
            args += ["--normal-liver", name]
        if len(structures.get(role, ())) == 1:
            args += [option, structures[role][0]]
    d = study.dosimetry
    if d.get("lung_shunt_fraction") is not None:
        args += ["--lsf", str(d["lung_shunt_fraction"])]
    if d.get("administered_activity_gbq") is not None:
        args += ["--injected-activity-gbq", str(d["administered_activity_gbq"])]
    return args


def plan_arguments(study, folder: Path, activity: str, microspheres: str) -> list[str] | None:
    """``sirt plan`` arguments (partition model on the MAA SPECT) for a study with tumour and one normal
    perfused liver segment; None otherwise (the model needs both compartments)."""
    structures = study.structures
    if not structures.get("tumour") or len(structures.get("npl", ())) != 1:
        return None
    args = ["plan", "--output", str(folder / "plan"), "--overwrite", "--microspheres", microspheres, "--spect", activity,
            "--segmentation", study.segmentation, "--normal-perfused", structures["npl"][0],
            "--lung-mass-g", f"{CONVENTIONAL_LUNG_MASS_G:g}"]
    for name in structures["tumour"]:
        args += ["--tumours", name]
    d = study.dosimetry
    if d.get("lung_shunt_fraction") is not None:
        args += ["--lsf", str(d["lung_shunt_fraction"])]
    if d.get("administered_activity_gbq") is not None:
        args += ["--activity-gbq", str(d["administered_activity_gbq"])]
    if d.get("clamp_negative"):
        args.append("--clamp-negative")
    return args


def study_key(spec, source: str, options: PatientOptions) -> str:
    """SHA-256 of what a study's results depend on."""
    study = spec.studies[source]
    files = {p: sha256_of(p) for p in (*study.images.values(), study.segmentation) if p and Path(p).exists()}
    payload = {"study": spec.to_dict()["studies"][source], "patient_id": spec.patient_id, "files": files,
               "options": {"isodose_levels_gy": list(options.isodose_levels_gy), "report": options.report, "synthetic": options.synthetic,
                    "microspheres": options.microspheres},
               "version": __version__}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _is_done(folder: Path, key: str) -> bool:
    try:
        return json.loads((folder / DONE_FILE).read_text(encoding="utf-8")).get("key") == key
    except (OSError, ValueError):
        return False


def run_study(spec, source: str, options: PatientOptions, compare: Path | None = None) -> StudyOutcome:
    """Dose, DVH and report of one study; raises on failure."""
    study = spec.studies[source]
    folder = study_folder(options.output, spec.patient_id, source)
    key = study_key(spec, source, options)
    if _is_done(folder, key):
        return StudyOutcome(source, "cached", str(folder))
    start = time.perf_counter()
    activity = activity_image(study)
    if activity is None:
        raise SIRTInputError(f"{source}: no activity image (spect or pet) to compute the dose from")
    params = dose_parameters(study)
    result, _ = run_dose(Path(activity), Path(study.segmentation), params, folder, units=study.dosimetry.get("units"), overwrite=True)
    dvh_args = command_parser(dvh_command.add_parser).parse_args(dvh_arguments(study, folder, activity))
    with contextlib.redirect_stdout(io.StringIO()):  # the constraints table is in dvh/; keep the run's output to progress
        dvh_args.run(dvh_args)
    warnings = list(result.warnings)
    plan = None
    plan_args = plan_arguments(study, folder, activity, options.microspheres) if source == "maa" and options.microspheres else None
    if plan_args is not None:
        parsed = command_parser(plan_command.add_parser).parse_args(plan_args)
        with contextlib.redirect_stdout(io.StringIO()):
            parsed.run(parsed)
        plan = folder / "plan" / "plan.json"
    if options.report:
        compare_label = CASES.get("maa") if compare is not None else None
        request = ReportRequest(folder, spec.patient_id, CASES[source], compare_dir=compare, compare_label=compare_label,
                                isodose_levels_gy=options.isodose_levels_gy, synthetic=options.synthetic, plan=plan)
        make_report(request, overwrite=True)
    seconds = time.perf_counter() - start
    write_json({"key": key, "patient_id": spec.patient_id, "source": source, "seconds": round(seconds, 3)}, folder / DONE_FILE)
    return StudyOutcome(source, "done", str(folder), seconds, warnings=warnings)


def run_patient(spec, options: PatientOptions) -> PatientOutcome:
    """Every study of one patient; MAA first so that the 90Y report can show both side by side."""
    outcomes = []
    for source in ("maa", "y90"):
        if source not in spec.studies:
            continue
        maa_done = any(o.source == "maa" and o.status != "failed" for o in outcomes)
        compare = study_folder(options.output, spec.patient_id, "maa") if source == "y90" and maa_done else None
        try:
            outcomes.append(run_study(spec, source, options, compare))
        except Exception as exc:  # noqa: BLE001 - one study's failure is recorded; the others go on
            lines = str(exc).strip().splitlines()
            message = lines[0] if lines else type(exc).__name__
            outcomes.append(StudyOutcome(source, "failed", str(study_folder(options.output, spec.patient_id, source)),
                                         error=message if isinstance(exc, SIRTInputError) else f"{type(exc).__name__}: {message}"))
    registration = None
    if getattr(spec, "registration", None):
        from .registration_step import REGISTER_FOLDER, run_registration

        fixed, moving = (spec.studies[spec.registration[k]] for k in ("fixed", "moving"))
        registration = run_registration(spec, study_folder(options.output, spec.patient_id, REGISTER_FOLDER),
                                        activity_image(fixed), activity_image(moving))
    return PatientOutcome(spec.patient_id, outcomes, registration)
