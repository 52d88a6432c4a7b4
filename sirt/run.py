"""``sirt run MANIFEST``: the whole chain for every patient of a manifest, then one cohort table.

Per patient (:mod:`sirt.patient`): MAA planning (the predicted 90Y dose from the MAA SPECT) and/or 90Y
verification (the dose of the post-treatment image), each with BED, DVH and constraints, and its
report (report.html, report.pdf; the 90Y report shows the MAA prediction beside it). Then the
dosiomic features of the cohort (``SIRTDosiomicsLib.cohort``), one cohort table ready for
``sirt train`` (labels joined as ``response``, clinical text variables encoded as declared), and the
prediction of a model when one is given.

Everything the run needs is checked first (manifest entries, files, options, model, labels): a bad
entry stops the run before any image is read. Patients run in parallel locally, or on a Dask cluster
with ``--scheduler``; a failing patient is recorded and the others go on; a rerun into the same
folder skips what is done (patients by ``done.json``, features by their cache).

Output folder::

    patients/<patient>/<maa|y90>/   dose_gy.nrrd, bed_gy.nrrd, summary.json, dvh/, plan/, report.html, report.pdf
    patients/<patient>/register/    with a register: block (sirt.registration_step): transform, carried contours, QA
    features/                       features.csv, features.parquet, features.json ('sirt features')
    cohort.csv, cohort.json         one row per patient: features, clinical variables, response
    predictions.json                with --model
    run.json                        what ran, per patient and study, with provenance
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.writers import commit_outputs, write_json
from SIRTDosimetryLib.provenance import provenance, to_jsonable
from SIRTDosimetryLib.reporting.figures import DEFAULT_ISODOSE_LEVELS_GY, check_levels

from .patient import PatientOptions, PatientOutcome, activity_image, dose_parameters, run_patient
from .registration_step import add_registration_columns

LABEL_COLUMN = "response"
"""The label column ``sirt train`` reads by default; the manifest's ``clinical: {response: ...}`` becomes it."""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="the whole chain for a manifest of patients: dose, DVH, report, features, cohort table, prediction",
        description="For every patient of a manifest (CSV or YAML, see docs/run.md): MAA planning and/or 90Y verification "
        "(dose, BED, DVH and constraints, report), dosiomic features, one cohort table ready for 'sirt train', and the "
        "prediction of a model when --model is given. Rerun into the same folder to resume.",
    )
    p.add_argument("manifest", type=Path, help="manifest of patients (CSV or YAML)")
    p.add_argument("--output", required=True, type=Path, help="run folder (created; reused to resume)")
    p.add_argument("--labels", type=Path, help="label table (patient_id, response, ...) joined into the cohort table")
    p.add_argument("--categorical", action="append", default=[], metavar="NAME=one_hot|ordinal:A,B,C",
                   help="encode a clinical text variable (also 'categorical:' in a YAML manifest); repeatable")
    p.add_argument("--model", type=Path, help="model folder of 'sirt train' (model.skops, model_card.json): predict every patient")
    p.add_argument("--preset", help="dosiomics preset name or file (default sirt-dosiomics-2025)")
    p.add_argument("--no-features", action="store_true", help="dose, DVH and reports only")
    p.add_argument("--no-report", action="store_true", help="no report.html / report.pdf")
    p.add_argument("--isodose-levels", default=",".join(f"{v:g}" for v in DEFAULT_ISODOSE_LEVELS_GY), metavar="GY,GY,...",
                   help="isodose lines of the report pictures (default %(default)s)")
    p.add_argument("--microspheres", choices=("glass", "resin"),
                   help="MAA studies with tumour and one npl segment also get a partition-model plan with these limits")
    p.add_argument("--synthetic", action="store_true", help="label every output SYNTHETIC (demonstration data)")
    x = p.add_argument_group("execution")
    x.add_argument("--workers", type=int, help="local worker processes (default: the CPUs available; 1: in this process)")
    x.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786): run on that cluster")
    x.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


# --- checking everything before any image is read --------------------------------------------------


def _categoricals(manifest: Path, items: list[str]) -> dict:
    """Declared clinical text variables: the YAML manifest's ``categorical:`` mapping, then ``--categorical``."""
    from SIRTDosiomicsLib.naming import clinical_column
    from SIRTResponseLib.cli.common import categorical_declarations
    from SIRTResponseLib.labels import parse_categorical

    declared = {}
    if manifest.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("categorical") is not None:
            if not isinstance(data["categorical"], dict):
                raise SIRTInputError(f"{manifest}: 'categorical:' must map variable names to one_hot or {{ordinal: [levels]}}")
            declared |= {str(k): parse_categorical(v) for k, v in data["categorical"].items()}
    declared |= categorical_declarations(items)
    return {name if name.startswith("clinical_") else clinical_column(name): spec for name, spec in declared.items()}


def check_run(args: argparse.Namespace):
    """Every option and manifest entry checked, all problems in one message; returns (patients, options, categoricals, preset)."""
    from SIRTDosiomicsLib.cohort import ManifestError, read_manifest
    from SIRTDosiomicsLib.presets import load_preset

    from SIRTDosimetryLib.dose.parameters import to_number
    from SIRTDosimetryLib.parallel import check_scheduler_reachable

    if args.scheduler:  # before anything is read or made
        check_scheduler_reachable(args.scheduler)
    try:
        patients = read_manifest(args.manifest)
        preset = None if args.no_features else load_preset(args.preset)
    except (ManifestError, ValueError) as exc:
        raise SIRTInputError(str(exc)) from None
    levels = check_levels(tuple(to_number(v, "--isodose-levels") for v in args.isodose_levels.split(",") if v.strip()))
    problems = []
    for spec in patients:
        for source, study in spec.studies.items():
            where = f"patient {spec.patient_id!r} {source}"
            for path in (*study.images.values(), study.segmentation):
                if not Path(path).exists():
                    problems.append(f"{where}: file not found: {path}")
            if activity_image(study) is None:
                problems.append(f"{where}: no activity image (spect or pet) to compute the dose from")
            try:
                dose_parameters(study)
            except (SIRTInputError, ValueError) as exc:
                problems.append(f"{where}: {exc}")
    if args.model is not None and not (args.model / "model_card.json").is_file():
        problems.append(f"--model {args.model}: no model_card.json (a model folder of 'sirt train')")
    if args.labels is not None:
        from SIRTResponseLib.labels import read_table

        labels = read_table(args.labels)
        missing = [c for c in ("patient_id", LABEL_COLUMN) if c not in labels.columns]
        if missing:
            problems.append(f"--labels {args.labels}: no column(s) {missing}")
    if args.workers is not None and args.workers < 1:
        problems.append("--workers must be at least 1")
    if problems:
        raise SIRTInputError(f"{len(problems)} problem(s): " + "; ".join(problems))
    options = PatientOptions(args.output, levels, report=not args.no_report, synthetic=args.synthetic, microspheres=args.microspheres)
    return patients, options, _categoricals(args.manifest, args.categorical), preset


# --- running -------------------------------------------------------------------------------------


def _progress_bar(total: int, enabled: bool):
    """A tqdm bar over patients with elapsed time and ETA; None when disabled."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="patients", unit="patient", file=sys.stderr)


def run_patients(patients, options: PatientOptions, workers: int | None, scheduler: str | None, progress: bool) -> list[PatientOutcome]:
    """Every patient through :func:`sirt.patient.run_patient`, in parallel; the manifest's order is kept."""
    from SIRTDosimetryLib.parallel import make_executor

    executor = make_executor(min(workers or len(patients), len(patients)) if scheduler is None else None, scheduler)
    bar = _progress_bar(len(patients), progress)
    outcomes: dict[str, PatientOutcome] = {}
    try:
        pending = {executor.submit(run_patient, spec, options): spec for spec in patients}
        while pending:
            for future in executor.wait(list(pending)):
                spec = pending.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - a crashed worker fails its patient only
                    from .patient import StudyOutcome

                    outcome = PatientOutcome(spec.patient_id, [StudyOutcome(s, "failed", "", error=f"worker: {exc}") for s in spec.studies])
                outcomes[spec.patient_id] = outcome
                if bar is not None:
                    bar.update(1)
                for study in outcome.studies:
                    if study.status == "failed":
                        print(f"patient {spec.patient_id} {study.source}: FAILED: {study.error}", file=sys.stderr)
                if outcome.registration and outcome.registration["registration_qa"] in ("fail", "error"):
                    reason = outcome.registration.get("registration_error", "QA gate failed, see registration_qa.json")
                    print(f"patient {spec.patient_id} registration: {outcome.registration['registration_qa'].upper()}: {reason}",
                          file=sys.stderr)
    finally:
        executor.close()
        if bar is not None:
            bar.close()
    return [outcomes[spec.patient_id] for spec in patients]


def cohort_table(features, labels=None, categoricals: dict | None = None):
    """One row per patient for ``sirt train``: the manifest's ``clinical_response`` (or the label table's
    ``response``) as ``response``, the declared clinical text variables encoded."""
    from SIRTDosiomicsLib.naming import clinical_column
    from SIRTResponseLib.labels import encode_categorical

    table = features.copy()
    table["patient_id"] = table["patient_id"].astype(str)
    clinical_label = clinical_column(LABEL_COLUMN)
    if clinical_label in table.columns:
        table = table.rename(columns={clinical_label: LABEL_COLUMN})
    if labels is not None:
        labels = labels.astype({"patient_id": str})
        table = table.drop(columns=[c for c in labels.columns if c != "patient_id" and c in table.columns])
        table = table.merge(labels, on="patient_id", how="left")
    return encode_categorical(table, categoricals or {})


def run(args: argparse.Namespace) -> int:
    patients, options, categoricals, preset = check_run(args)
    start = time.perf_counter()
    print(f"sirt run: {len(patients)} patient(s) into {args.output}", file=sys.stderr)
    outcomes = run_patients(patients, options, args.workers, args.scheduler, not args.no_progress)
    written: dict = {}
    table = None
    if not args.no_features:
        from SIRTDosiomicsLib.cohort import run_manifest
        from SIRTResponseLib.labels import read_table

        features, _ = run_manifest(args.manifest, args.output / "features", preset, workers=args.workers, scheduler=args.scheduler,
                                   progress=not args.no_progress, overwrite=True)
        table = cohort_table(features, read_table(args.labels) if args.labels else None, categoricals)
        table = add_registration_columns(table, {o.patient_id: o.registration for o in outcomes if o.registration})
        meta = {"schema": "slicer-sirt/cohort/1", "label_column": LABEL_COLUMN, "synthetic": args.synthetic,
                "categorical": to_jsonable(categoricals), "rows": len(table), "columns": len(table.columns),
                "provenance": provenance({"manifest": args.manifest, "labels": args.labels}, {"categorical": args.categorical})}
        commit_outputs(args.output, {"cohort.csv": lambda p: table.to_csv(p, index=False), "cohort.json": partial(write_json, meta)},
                       inputs=[args.manifest, *([args.labels] if args.labels else [])], overwrite=True)
        written["cohort"] = str(args.output / "cohort.csv")
    if args.model is not None and table is not None:
        written["predictions"] = str(predict_cohort(args.model, table, args.output / "predictions.json", args.synthetic))
    status = {"schema": "slicer-sirt/run/1", "seconds": round(time.perf_counter() - start, 3), "synthetic": args.synthetic,
              "patients": to_jsonable(outcomes), "outputs": written,
              "provenance": provenance({"manifest": args.manifest}, {k: v for k, v in vars(args).items() if k not in ("run", "command")})}
    commit_outputs(args.output, {"run.json": partial(write_json, status)}, inputs=[args.manifest], overwrite=True)
    failed = [o for o in outcomes if o.failed]
    print(f"{len(patients) - len(failed)} of {len(patients)} patient(s) done; wrote {args.output}")
    return 1 if failed else 0


def predict_cohort(model_dir: Path, table, path: Path, synthetic: bool) -> Path:
    """The model's prediction for every row of the cohort table that has the features it needs, written to
    ``path`` (JSON); a row without them gets the reason instead of a prediction."""
    from SIRTResponseLib.model_io import load_model, predict

    model = load_model(model_dir)
    tag = "SYNTHETIC " if synthetic else ""
    predictions, skipped = [], {}
    for _, row in table.drop(columns=[LABEL_COLUMN], errors="ignore").iterrows():
        try:
            predictions += predict(model, row.to_frame().T, id_column="patient_id")
        except SIRTInputError as exc:
            skipped[str(row["patient_id"])] = str(exc)
            print(f"{tag}{row['patient_id']}: no prediction: {exc}")
    for p in predictions:
        print(f"{tag}{p.row_id}: probability of response {p.probability:.3f} -> {p.predicted_class}")
    data = {"synthetic": synthetic, "model": model.card["model"], "intended_use": model.card["intended_use"],
            "predictions": to_jsonable(predictions), "not_predicted": skipped,
            "provenance": provenance({"model_card": model_dir / "model_card.json"}, {})}
    commit_outputs(path.parent, {path.name: partial(write_json, data)}, overwrite=True)
    return path
