"""Cohort extraction: a manifest of patients → one feature table (CSV and Parquet).

One row per patient: ``patient_id``, clinical columns, dose-volume constraints from the dosimetry
module, and dosiomic/radiomic features for every (source, image, structure). The work runs

- **locally in parallel** by default: a pool of ``spawn``-ed worker processes, one BLAS/OpenMP
  thread each (``workers`` processes, default: the CPUs this process may use);
- **on a Dask cluster** when given its scheduler address (``tcp://host:8786``); the workers must
  see the same file paths;
- **in this process** with ``workers=1``.

Each patient is first *prepared* in a worker (read images and segmentation once, compute the dose
map once, map the segments once per image grid, crop; see ``extract.Planner``), which yields small
extraction tasks that are scheduled longest first. When a patient's last task is done its row is
written to the cache folder as ``<patient>-<key>.json``, ``key`` being a SHA-256 of the input files'
contents, the patient's manifest entry, the preset and the software versions: a rerun skips the
patients already done. A patient that fails (unreadable file, bad calibration…) gets a
``patient_error`` and is not cached; the others go on. Failures that concern one image and one
structure (empty, one-voxel or outside masks, flat images) stay inside the row as
``<prefix>_error`` / ``<prefix>_warning`` columns.

The manifest is read by ``manifest.py``, each patient prepared in a worker by ``patient.py``, rows
cached by ``cache.py`` and tabulated by ``table.py``; the executors and the result store are the
shared engine of ``SIRTDosimetryLib.parallel``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from SIRTDosimetryLib.errors import error_line
from SIRTDosimetryLib.parallel import make_executor, worker_count

from . import naming
from .cache import cache_key, cache_name, cohort_store
from .manifest import ManifestError, PatientSpec, read_manifest
from .patient import Prepared, finish_row, prepare_patient
from .presets import Preset, load_preset
from .table import TABLE_SCHEMA, feature_table, write_table


def _worker_init() -> None:
    import logging

    logging.getLogger("radiomics").setLevel(logging.ERROR)


def warm_up() -> bool:
    """Import the engine in a worker (call once per worker to start a pool before timing it)."""
    import radiomics  # noqa: F401
    import SimpleITK  # noqa: F401
    from radiomics import featureextractor  # noqa: F401
    from SIRTDosimetryLib.dose import engine  # noqa: F401

    return True


@dataclass
class PatientOutcome:
    patient_id: str
    row: dict[str, Any]
    status: str  # "done", "cached" or "failed"
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def write(self, text: str) -> None:
        import sys

        print(text, file=sys.stderr)

    def close(self) -> None:
        pass


def _progress_bar(total: int, initial: int, enabled: bool):
    """A tqdm progress bar over patients; a silent stand-in without tqdm or when disabled."""
    if enabled:
        try:
            from tqdm import tqdm

            return tqdm(total=total, initial=initial, desc="patients", unit="patient")
        except ImportError:
            pass
    return _NoBar()


@dataclass
class _Active:
    spec: PatientSpec
    key: str
    prepared: Prepared | None = None
    results: dict = field(default_factory=dict)
    remaining: set = field(default_factory=set)
    started: float = field(default_factory=time.perf_counter)


def _failed_row(spec: PatientSpec, message: str) -> dict[str, Any]:
    row: dict[str, Any] = {naming.ID_COLUMN: spec.patient_id, naming.PATIENT_ERROR_COLUMN: message}
    row.update({naming.clinical_column(k): v for k, v in spec.clinical.items()})
    return row


def extract_cohort(
    patients: Iterable[PatientSpec],
    preset: Preset | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    cache_dir: Path | str | None = None,
    progress: bool = True,
    executor=None,
    on_patient: Callable[[PatientOutcome], None] | None = None,
    sparse_mcc: bool = True,
) -> list[PatientOutcome]:
    """Extract every patient; returns one outcome per patient, in manifest order.

    Cached patients (same cache key) are loaded, not recomputed. A failure of one patient is
    recorded in its outcome and does not stop the others. ``executor`` (an object with
    ``submit``/``wait``/``restart``/``close``, e.g. ``SIRTDosimetryLib.parallel.LocalExecutor``) reuses a running pool;
    ``sparse_mcc=False`` keeps pyradiomics' own (slower, identical) MCC computation.
    """
    from .extract import TaskResult, run_task

    preset = preset or load_preset()
    store = cohort_store(cache_dir) if cache_dir is not None else None
    patients = list(patients)
    outcomes: dict[str, PatientOutcome] = {}
    todo: list[tuple[PatientSpec, str]] = []
    for spec in patients:
        try:
            key = cache_key(spec, preset)
        except Exception as exc:
            outcomes[spec.patient_id] = PatientOutcome(spec.patient_id, _failed_row(spec, error_line(exc)), "failed", error=error_line(exc))
            continue
        cached = store.load(cache_name(spec.patient_id, key), key) if store is not None else None
        if cached is not None:
            outcomes[spec.patient_id] = PatientOutcome(spec.patient_id, cached["row"], "cached", cached.get("seconds", 0.0))
        else:
            todo.append((spec, key))

    bar = _progress_bar(len(patients), len(outcomes), progress)
    own_executor = executor is None
    active: dict[str, _Active] = {}
    futures: dict[Any, tuple[str, str, Any]] = {}  # future -> (kind, patient, payload)
    attempts: dict[tuple[str, str], int] = {}
    futures_to_resubmit: list = []
    queue = list(todo)
    max_active = 2 * worker_count(workers) if scheduler is None else 64

    def finish(pid: str, outcome: PatientOutcome) -> None:
        outcomes[pid] = outcome
        active.pop(pid, None)
        if outcome.status == "done" and cache_dir is not None:
            store.save(cache_name(pid, state_keys[pid]), state_keys[pid], {"row": outcome.row, "seconds": outcome.seconds})
        if outcome.status == "failed":
            bar.write(f"patient {pid}: failed: {outcome.error}")
        bar.update(1)
        if on_patient is not None:
            on_patient(outcome)

    state_keys = {spec.patient_id: key for spec, key in todo}

    def submit_prepare(spec: PatientSpec) -> None:
        futures[ex.submit(prepare_patient, spec, preset, sparse_mcc)] = ("prepare", spec.patient_id, spec)

    def submit_task(pid: str, task) -> None:
        futures[ex.submit(run_task, task)] = ("task", pid, task)

    def fill() -> None:
        while queue and len(active) < max_active:
            spec, key = queue.pop(0)
            active[spec.patient_id] = _Active(spec, key)
            submit_prepare(spec)

    def complete_if_done(pid: str) -> None:
        state = active[pid]
        if state.prepared is not None and not state.remaining:
            row = finish_row(state.prepared, preset, state.results)
            finish(pid, PatientOutcome(pid, row, "done", time.perf_counter() - state.started, notes=state.prepared.notes))

    ex = executor
    if own_executor:
        ex = make_executor(workers, scheduler, initializer=_worker_init)
    try:
        fill()
        while futures:
            done = ex.wait(list(futures))
            broken = False
            for future in done:
                kind, pid, payload = futures.pop(future)
                if pid not in active:
                    continue
                try:
                    value = future.result()
                except BrokenProcessPool:
                    broken = True
                    tries = attempts.get((kind, getattr(payload, "task_id", pid)), 0) + 1
                    attempts[(kind, getattr(payload, "task_id", pid))] = tries
                    if tries >= 2:
                        if kind == "prepare":
                            finish(pid, PatientOutcome(pid, _failed_row(active[pid].spec, "worker process crashed"), "failed",
                                                       error="worker process crashed"))
                        else:
                            active[pid].results[payload.task_id] = TaskResult(payload.task_id, {}, "worker process crashed", 0.0)
                            active[pid].remaining.discard(payload.task_id)
                            complete_if_done(pid)
                    else:
                        futures_to_resubmit.append((kind, pid, payload))
                    continue
                except Exception as exc:  # prepare failed, or a Dask-side error
                    if kind == "prepare":
                        message = error_line(exc)
                        finish(pid, PatientOutcome(pid, _failed_row(active[pid].spec, message), "failed", error=message))
                    else:
                        active[pid].results[payload.task_id] = TaskResult(payload.task_id, {}, f"{payload.part}: {error_line(exc)}", 0.0)
                        active[pid].remaining.discard(payload.task_id)
                        complete_if_done(pid)
                    continue
                state = active[pid]
                if kind == "prepare":
                    state.prepared = value
                    state.remaining = {t.task_id for t in value.tasks}
                    for task in sorted(value.tasks, key=lambda t: -t.cost):
                        submit_task(pid, task)
                    value.tasks = []  # the crops are in flight; do not keep them twice
                else:
                    state.results[value.task_id] = value
                    state.remaining.discard(value.task_id)
                complete_if_done(pid)
            if broken:
                # A worker died (out of memory, crash): everything in flight is lost; start afresh.
                ex.restart()
                lost = list(futures.values())
                futures.clear()
                for item in futures_to_resubmit + lost:
                    kind, pid, payload = item
                    if pid not in active:
                        continue
                    if kind == "prepare":
                        submit_prepare(payload)
                    else:
                        submit_task(pid, payload)
                futures_to_resubmit.clear()
            fill()
    finally:
        if own_executor and ex is not None:
            ex.close()
        bar.close()
    return [outcomes[spec.patient_id] for spec in patients]


def run_manifest(
    manifest: Path | str,
    output_dir: Path | str,
    preset: Preset | str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    cache_dir: Path | str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    sparse_mcc: bool = True,
):
    """Read a manifest, extract every patient (resuming from the cache), write the table; returns (frame, outcomes)."""
    from SIRTDosimetryLib.errors import SIRTInputError
    from SIRTDosimetryLib.provenance import describe_input, software_versions

    from .extract import expected_columns
    from .radiomics_engine import ENGINE_KEY, radiomics_engine

    try:
        preset = load_preset(preset)
        patients = read_manifest(manifest)
    except (ManifestError, ValueError) as exc:
        raise SIRTInputError(str(exc)) from None
    output_dir = Path(output_dir)
    for name in ("features.csv", "features.parquet", "features.json"):
        if (output_dir / name).exists() and not overwrite:
            raise SIRTInputError(f"output {output_dir / name} already exists; choose another folder or pass --overwrite")
    cache_dir = Path(cache_dir) if cache_dir is not None else output_dir / ".sirt-features-cache"
    start = time.perf_counter()
    outcomes = extract_cohort(patients, preset, workers=workers, scheduler=scheduler, cache_dir=cache_dir, progress=progress,
                              sparse_mcc=sparse_mcc)
    frame = feature_table(outcomes)
    metadata = {
        "schema": TABLE_SCHEMA,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "manifest": describe_input(manifest),
        "preset": preset.to_dict(),
        "features_per_structure": len(expected_columns(preset)),
        "columns": len(frame.columns),
        "execution": {"workers": worker_count(workers), "scheduler": scheduler, "cache": str(cache_dir), "sparse_mcc": sparse_mcc,
                      "seconds": round(time.perf_counter() - start, 3)},
        "patients": [
            {"patient_id": o.patient_id, "status": o.status, "seconds": round(o.seconds, 3), "error": o.error, "notes": o.notes}
            for o in outcomes
        ],
        "software": software_versions(),
        ENGINE_KEY: radiomics_engine(),
    }
    inputs = [Path(manifest)] + [Path(p) for s in patients for st in s.studies.values() for p in (*st.images.values(), st.segmentation) if p]
    write_table(frame, output_dir, metadata, inputs=inputs, overwrite=overwrite)
    return frame, outcomes


def extract_patient(spec: PatientSpec, preset: Preset | None = None, workers: int | None = 1, executor=None,
                    sparse_mcc: bool = True) -> dict[str, Any]:
    """One patient's row (no cache); ``workers``/``executor`` as for :func:`extract_cohort`.

    Raises ``SIRTInputError`` when the patient fails as a whole.
    """
    from SIRTDosimetryLib.errors import SIRTInputError

    outcome = extract_cohort([spec], preset, workers=workers, progress=False, executor=executor, sparse_mcc=sparse_mcc)[0]
    if outcome.status == "failed":
        raise SIRTInputError(f"patient {spec.patient_id}: {outcome.error}")
    return outcome.row
