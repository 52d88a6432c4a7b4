"""Monte Carlo dose: 90Y decays transported by PenRed in separate processes.

The core never imports PenRed (AGPL-3.0): it writes the job (source, materials, densities) to a
folder, hands its batches to the shared parallel engine (``SIRTDosimetryLib.parallel``: local
worker threads, or the workers of a Dask cluster that see the same folder), where each batch runs
``python -m SIRTDosimetryLib.dose.mc_worker`` as a child process, and combines what they write back.
Progress is read from the files the batches update; a cancel is a file in the job folder, on which
every running batch stops its child. Each batch gets its own PenRed seed pair (RANECU's table of
1001 independent pairs), recorded in the result; the same seed, decays, processes and batch size
reproduce the same dose.

Combination of batches: with n_i histories, per-history mean m_i and its 1-sigma uncertainty s_i,
the mean is sum(n_i m_i)/N and its uncertainty sqrt(sum((n_i/N)^2 s_i^2)). Dose to medium (Gy) =
mean energy per unit mass per history (eV/g) x 1.602e-16 J/eV per kg/g x number of decays (the sum
of the time-integrated activity, Bq·s).

Stopping on a target uncertainty: after each round of batches the dose-weighted mean relative
uncertainty of the voxels in the target region, sum(sigma)/sum(dose), is compared with the target
(the criterion of voxel-level MC dosimetry, e.g. Sarrut et al., Med Phys 2014;41:064301).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SIRTInputError
from ..nuclides import MEV_TO_J
from ..parallel import Executor, child_python, make_executor
from .mc_materials import MC_MATERIALS, material_indices, representative_densities

EV_PER_G_TO_GY = MEV_TO_J * 1e-6 * 1e3
"""1 eV/g = 1.602e-16 J/kg."""

SEED_PAIRS = 1001
"""Number of independent seed pairs PenRed's RANECU generator offers."""

MARGIN_WATER_MM = 12.0
"""Transport region around the activity: the 90Y beta range in water (CSDA 11 mm), scaled by the
lowest density around it (at least 0.25 g/mL, normal lung), so that lung dose is not cut off."""

BOX_ACTIVITY_FRACTION = 1e-3
"""Voxels below this fraction of the hottest voxel do not widen the transport box: a SPECT's noise
puts some activity in every voxel. The activity left outside the box is reported, never rescaled."""

WORKER_MODULE = "SIRTDosimetryLib.dose.mc_worker"
POLL_S = 0.2
CANCEL_FILE = "cancel"
"""Written into the job folder to stop the running batches, wherever they run."""
CANCEL_WAIT_S = 30.0
"""How long a cancel waits for the batches to stop before the job folder is removed."""

ProgressCallback = Callable[[float], None]  # fraction done, 0..1
CancelCheck = Callable[[], bool]


class MCUnavailable(SIRTInputError):
    """The optional Monte Carlo extra (pyPenred, icrp107-database) is not installed."""


class MCCancelled(RuntimeError):
    """The user cancelled the Monte Carlo run; no result was produced."""


@dataclass(frozen=True)
class MCSettings:
    decays: int | None = None  # total decays; None: 10^6, or as many as the target uncertainty needs
    target_uncertainty: float | None = None  # relative (0.02 = 2 %) in the target region
    target_segments: tuple[str, ...] = ()  # the target region; empty: voxels above half the maximum dose
    max_decays: int = 10**9
    processes: int | None = None  # local worker processes; None: all CPUs
    batch_decays: int = 200_000
    seed: int = 0  # first seed pair; batch i uses (seed + i) mod 1001
    scheduler: str | None = None  # Dask scheduler address: run batches on its workers (shared folder)
    electron_cutoff_ev: float = 5e4
    photon_cutoff_ev: float = 5e3
    c1: float = 0.05
    c2: float = 0.05

    def __post_init__(self) -> None:
        if self.decays is not None and not (isinstance(self.decays, int) and self.decays > 0):
            raise SIRTInputError(f"the number of Monte Carlo decays must be a positive integer, got {self.decays!r}")
        if self.target_uncertainty is not None and not (0 < self.target_uncertainty < 1):
            raise SIRTInputError(f"the target uncertainty is relative, between 0 and 1 (0.02 = 2 %), got {self.target_uncertainty!r}")
        if self.processes is not None and self.processes < 1:
            raise SIRTInputError(f"Monte Carlo needs at least one process, got {self.processes}")
        if not (isinstance(self.seed, int) and 0 <= self.seed < SEED_PAIRS):
            raise SIRTInputError(f"the Monte Carlo seed is the first of PenRed's seed pairs, 0-{SEED_PAIRS - 1}, got {self.seed!r}")
        if self.batch_decays < 1000:
            raise SIRTInputError(f"a Monte Carlo batch needs at least 1000 decays, got {self.batch_decays}")


@dataclass
class MCDose:
    dose_gy: np.ndarray  # float32, the activity grid
    relative_uncertainty: np.ndarray  # float32, 1 sigma; NaN where no dose was scored
    decays_simulated: int
    decays_represented: float  # sum of the time-integrated activity (Bq·s)
    seed_pairs: list[int]
    achieved_uncertainty: float | None  # in the target region, as used for stopping
    cpu_seconds: float
    wall_seconds: float
    settings: MCSettings
    materials: dict[str, int] = field(default_factory=dict)  # material -> voxels in the transport region
    material_densities_g_per_ml: dict[str, float] = field(default_factory=dict)  # material -> density it was generated at
    activity_outside_box_fraction: float = 0.0  # activity not transported (below BOX_ACTIVITY_FRACTION, outside the box)

    @property
    def cpu_seconds_per_million_decays(self) -> float:
        return self.cpu_seconds / self.decays_simulated * 1e6


def mc_available() -> tuple[bool, str]:
    """Whether the optional extra is installed, and if not, why (one line)."""
    missing = [name for name, module in (("pypenred", "pyPenred"), ("icrp107-database", "icrp107_database")) if importlib.util.find_spec(module) is None]
    if missing:
        return False, f"Monte Carlo dose needs the optional extra: pip install 'slicer-sirt[mc]' (missing {', '.join(missing)})"
    return True, ""


def transport_box(tia: np.ndarray, density: np.ndarray, spacing_mm_zyx: tuple[float, float, float]) -> tuple[slice, ...]:
    """The bounding box of the activity above ``BOX_ACTIVITY_FRACTION`` of its maximum, plus the beta
    range at the lowest density on the grid."""
    nonzero = np.nonzero(tia >= BOX_ACTIVITY_FRACTION * float(tia.max())) if tia.max() > 0 else (np.array([]),)
    if not nonzero[0].size:
        raise SIRTInputError("the activity image holds no activity: nothing to transport")
    margin_mm = MARGIN_WATER_MM / max(float(np.min(density)), 0.25)
    box = []
    for axis, spacing in enumerate(spacing_mm_zyx):
        pad = int(np.ceil(margin_mm / spacing))
        box.append(slice(max(int(nonzero[axis].min()) - pad, 0), min(int(nonzero[axis].max()) + pad + 1, tia.shape[axis])))
    return tuple(box)


def write_job(
    job_dir: Path, tia: np.ndarray, density: np.ndarray, spacing_mm_zyx: tuple[float, float, float],
    settings: MCSettings, liver_mask: np.ndarray | None, nuclide: str = "Y-90",
) -> tuple[dict[str, int], dict[str, float]]:
    """Write the files a worker reads; return voxels per material used and the density (g/mL) each
    material is generated at."""
    index = material_indices(density, liver_mask)
    generated_at = representative_densities(density, index)
    used = np.unique(index)
    remap = np.zeros(len(MC_MATERIALS), dtype=np.uint8)
    remap[used] = np.arange(1, used.size + 1)
    materials = []
    for i in used:
        m = MC_MATERIALS[i]
        materials.append({"name": m.name, "penelope_id": m.penelope_id, "composition": m.composition, "density_g_per_ml": generated_at[int(i)]})
    job = {
        "nuclide": nuclide,
        "shape": list(tia.shape),
        "spacing_mm": [float(s) for s in spacing_mm_zyx],
        "materials": materials,
        "transport": {k: getattr(settings, k) for k in ("electron_cutoff_ev", "photon_cutoff_ev", "c1", "c2")},
    }
    # Materials keep their order, so air (when present) is material 1, which also fills the thin
    # enclosure PenRed puts around the voxels.
    (job_dir / "job.json").write_text(json.dumps(job, indent=1), encoding="utf-8")
    np.save(job_dir / "material.npy", remap[index])
    np.save(job_dir / "density.npy", np.asarray(density, dtype=np.float64))
    np.save(job_dir / "source.npy", np.asarray(tia, dtype=np.float64))
    return ({MC_MATERIALS[i].name: int(np.sum(index == i)) for i in used},
            {MC_MATERIALS[i].name: generated_at[int(i)] for i in used})


def _worker_command(job_dir: Path, *args: object) -> list[str]:
    """Workers run in the job folder (cwd), where PenRed also writes its own reports."""
    return [child_python(), "-m", WORKER_MODULE, str(job_dir), *map(str, args)]


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    lib_root = str(Path(__file__).resolve().parents[2])  # the folder holding SIRTDosimetryLib
    env["PYTHONPATH"] = os.pathsep.join(p for p in (lib_root, env.get("PYTHONPATH", "")) if p)
    return env


def _check_worker(returncode: int, stderr: bytes, job_dir: Path, what: str) -> None:
    if returncode:
        tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"Monte Carlo {what} failed (exit {returncode}): {' | '.join(tail)}; logs in {job_dir}")


def run_batch_subprocess(job_dir: str, batch: str, decays: int, seed_pair: int) -> str:
    """Run one batch in a child process; return its result file. This is the task the executor runs
    (on a local worker thread or a Dask worker): it stops the child when the job folder holds the
    ``CANCEL_FILE``, which is how a cancel reaches batches on any executor."""
    folder = Path(job_dir)
    with open(folder / f"{batch}.stderr", "wb") as stderr:  # a file, not a pipe: a full pipe would block the worker
        child = subprocess.Popen(_worker_command(folder, batch, decays, seed_pair), env=_worker_env(), cwd=folder,
                                 stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        while child.poll() is None:
            if (folder / CANCEL_FILE).exists():
                raise MCCancelled("Monte Carlo dose cancelled")
            time.sleep(POLL_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    _check_worker(child.returncode, (folder / f"{batch}.stderr").read_bytes(), folder, f"batch {batch}")
    return str(folder / f"{batch}.npz")


class _Accumulator:
    def __init__(self, shape: tuple[int, ...]):
        self.weighted = np.zeros(shape)
        self.variance = np.zeros(shape)
        self.batches: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.decays = 0
        self.cpu_seconds = 0.0
        self.seed_pairs: list[int] = []

    def add(self, path: Path) -> None:
        with np.load(path) as batch:
            n = int(batch["n_histories"])
            self.batches.append((n, batch["energy_ev_per_g_per_history"], batch["sigma_ev_per_g_per_history"]))
            self.decays += n
            self.cpu_seconds += float(batch["seconds"])
            self.seed_pairs.append(int(batch["seed_pair"]))

    def mean_and_sigma(self) -> tuple[np.ndarray, np.ndarray]:
        total = float(self.decays)
        mean = sum(n * m for n, m, _ in self.batches) / total
        sigma = np.sqrt(sum((n / total) ** 2 * s**2 for n, _, s in self.batches))
        return mean, sigma


def _uncertainty(mean: np.ndarray, sigma: np.ndarray, target: np.ndarray | None) -> float:
    region = target if target is not None and target.any() else mean >= 0.5 * mean.max()
    scored = float(mean[region].sum())
    return float(sigma[region].sum()) / scored if scored > 0 else float("inf")


def run_monte_carlo(
    tia_bq_s: np.ndarray,
    density_g_per_ml: np.ndarray | float,
    spacing_mm_zyx: tuple[float, float, float],
    settings: MCSettings,
    target_mask: np.ndarray | None = None,
    liver_mask: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    nuclide: str = "Y-90",
) -> MCDose:
    """Dose to medium (Gy) and its relative 1-sigma uncertainty on the grid of ``tia_bq_s`` (z, y, x)."""
    available, reason = mc_available()
    if not available:
        raise MCUnavailable(reason)
    tia = np.asarray(tia_bq_s, dtype=np.float64)
    density = np.array(np.broadcast_to(np.asarray(density_g_per_ml, dtype=np.float64), tia.shape))
    box = transport_box(tia, density, spacing_mm_zyx)
    target_box = target_mask[box] if target_mask is not None else None
    start = time.perf_counter()
    job_dir = Path(tempfile.mkdtemp(prefix="sirt-mc-"))
    try:
        materials, generated_at = write_job(job_dir, tia[box], density[box], spacing_mm_zyx, settings,
                                            None if liver_mask is None else liver_mask[box], nuclide)
        prepared = subprocess.run(_worker_command(job_dir, "prepare"), env=_worker_env(), capture_output=True, cwd=job_dir)
        _check_worker(prepared.returncode, prepared.stderr, job_dir, "preparation")
        acc = _run_batches(job_dir, tia[box].shape, settings, target_box, progress, cancel)
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
    mean, sigma = acc.mean_and_sigma()
    decays_represented = float(tia[box].sum())
    outside = 1.0 - decays_represented / float(tia.sum())
    dose = np.zeros(tia.shape, dtype=np.float32)
    dose[box] = mean * EV_PER_G_TO_GY * decays_represented
    relative = np.full(tia.shape, np.nan, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative[box] = np.where(mean > 0, sigma / mean, np.nan)
    return MCDose(
        dose_gy=dose, relative_uncertainty=relative, decays_simulated=acc.decays, decays_represented=decays_represented,
        seed_pairs=acc.seed_pairs, achieved_uncertainty=_uncertainty(mean, sigma, target_box),
        cpu_seconds=acc.cpu_seconds, wall_seconds=time.perf_counter() - start, settings=settings, materials=materials,
        material_densities_g_per_ml=generated_at, activity_outside_box_fraction=outside,
    )


def _run_batches(job_dir: Path, shape: tuple[int, ...], settings: MCSettings, target: np.ndarray | None,
                 progress: ProgressCallback | None, cancel: CancelCheck | None) -> _Accumulator:
    """Rounds of batches on the shared executor (local threads, or the Dask workers of
    ``settings.scheduler``), until the decays or the target uncertainty are reached."""
    # Locally each batch is a thread waiting on its PenRed child process, so this thread stays free
    # to report progress and to cancel.
    executor = make_executor(settings.processes, settings.scheduler, threads=True)
    try:
        slots = settings.processes or executor.capacity()
        goal = settings.decays or (settings.max_decays if settings.target_uncertainty else 1_000_000)
        acc = _Accumulator(shape)
        batch_index = 0
        while acc.decays < goal:
            round_decays = min(goal - acc.decays, settings.batch_decays * slots)
            sizes = [round_decays // slots + (1 if i < round_decays % slots else 0) for i in range(slots)]
            jobs = []
            for size in (s for s in sizes if s > 0):
                jobs.append((f"batch{batch_index:05d}", size, (settings.seed + batch_index) % SEED_PAIRS))
                batch_index += 1
            for path in _run_round(executor, job_dir, jobs, acc.decays, goal, progress, cancel):
                acc.add(path)
            if settings.target_uncertainty is not None:
                mean, sigma = acc.mean_and_sigma()
                if _uncertainty(mean, sigma, target) <= settings.target_uncertainty:
                    break
    finally:
        executor.close()
    if progress is not None:
        progress(1.0)
    return acc


def _run_round(executor: Executor, job_dir: Path, jobs: list[tuple[str, int, int]], done_before: int, goal: int,
               progress: ProgressCallback | None, cancel: CancelCheck | None) -> list[Path]:
    futures = [executor.submit(run_batch_subprocess, str(job_dir), name, size, seed) for name, size, seed in jobs]
    names = [name for name, _, _ in jobs]
    while not all(f.done() for f in futures):
        if cancel is not None and cancel():
            (job_dir / CANCEL_FILE).write_text("cancel", encoding="ascii")
            deadline = time.monotonic() + CANCEL_WAIT_S  # let the batches stop their children before the folder goes
            while not all(f.done() for f in futures) and time.monotonic() < deadline:
                time.sleep(POLL_S)
            raise MCCancelled("Monte Carlo dose cancelled")
        if progress is not None:
            progress(min((done_before + _progress(job_dir, names)) / goal, 1.0))
        time.sleep(POLL_S)
    return [Path(f.result()) for f in futures]


def _progress(job_dir: Path, names: list[str]) -> float:
    total = 0.0
    for name in names:
        try:
            total += float((job_dir / f"{name}.progress").read_text(encoding="ascii") or 0)
        except (OSError, ValueError):
            pass
    return total


def mc_record(result: MCDose) -> dict:
    """What a dose summary records of a Monte Carlo run (reproducible with the same settings)."""
    return {
        "engine": "PenRed (PENELOPE-2018 physics), ICRP 107 90Y beta spectrum",
        "settings": asdict(result.settings),
        "decays_simulated": result.decays_simulated,
        "decays_represented": result.decays_represented,
        "seed_pairs": result.seed_pairs,
        "achieved_uncertainty": result.achieved_uncertainty,
        "cpu_seconds": result.cpu_seconds,
        "wall_seconds": result.wall_seconds,
        "materials_voxels": result.materials,
        "materials_generated_at_g_per_ml": result.material_densities_g_per_ml,
        "activity_outside_box_fraction": result.activity_outside_box_fraction,
    }
