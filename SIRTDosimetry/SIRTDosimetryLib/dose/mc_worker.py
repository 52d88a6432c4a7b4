"""One batch of 90Y decays transported by PenRed, run as its own process.

This is the only module that imports ``pyPenred`` (AGPL-3.0, the optional extra ``mc``) and the
ICRP 107 decay data (``icrp107-database``, LGPL-3.0); the rest of SlicerSIRT talks to it through
files and a command line, never by importing it:

    python -m SIRTDosimetryLib.dose.mc_worker JOB_DIR prepare
    python -m SIRTDosimetryLib.dose.mc_worker JOB_DIR BATCH_NAME N_HISTORIES SEED_PAIR

``JOB_DIR`` holds ``job.json`` (voxel size, materials, transport cut-offs), ``source.npy``
(time-integrated activity, z-y-x), ``material.npy`` (1-based material per voxel) and
``density.npy`` (g/mL); ``prepare`` writes the shared PenRed files (materials, voxels, the source
blocks, the spectrum); the batch writes ``BATCH_NAME.npz`` (energy per unit mass per history, eV/g,
and its 1-sigma uncertainty), and ``BATCH_NAME.progress`` (histories done) while running.

Physics (PENELOPE-2018 through PenRed, Gimenez-Alventosa et al., Comput Phys Commun 2021;267:108065):
one electron per decay, isotropic, position uniform inside a voxel chosen in proportion to its
time-integrated activity (PenRed's ``3D_MEASURE`` sampler), energy from the ICRP 107 90Y beta
spectrum (Eckerman & Endo, ICRP Publication 107, 2008) linearly interpolated onto 2 keV bins.
Each material is generated at the density the job gives it (the median of its voxels, see
``mc_materials``), so density factors stay near 1. Dose to medium is tallied per voxel; PenRed's
voxel mass uses the material's density, so the tally is divided by each voxel's density factor to
give energy per unit mass of that voxel.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

SPECTRUM_BIN_EV = 2000.0
SOURCE_BLOCK_BINS = 16_384
"""Most voxels one PenRed ``3D_MEASURE`` source holds (unless two planes of the grid hold more).
That sampler's set-up grows faster than linearly with its bins (measured with PenRed 1.15.2:
2x10^4 bins add 0.3 s, 8x10^4 bins 110 s; a 2x10^6-voxel SPECT box never finished), so the
activity is cut into slabs, each its own source given its multinomial share of a batch's decays."""
LOWEST_ENERGY_EV = 60.0  # PENELOPE's tables start at 50 eV
PROGRESS_INTERVAL_S = 0.5


def beta_spectrum_bins(nuclide: str = "Y-90") -> tuple[np.ndarray, np.ndarray, float]:
    """ICRP 107 beta spectrum as histogram bins: lower edges (eV), probabilities (sum 1), top edge (eV).

    The tabulated spectral density (per MeV per decay, ``b-spectra``) is interpolated linearly and
    integrated over 2 keV bins, inside which PenRed samples uniformly.
    """
    from icrp107_database.utility import get_icrp107_spectrum

    table = get_icrp107_spectrum(nuclide, "b-spectra")  # "energies": MeV, "weights": 1/(MeV decay)
    energy_ev = np.asarray(table["energies"], dtype=float) * 1e6
    density = np.asarray(table["weights"], dtype=float)
    edges = np.append(np.arange(0.0, energy_ev[-1], SPECTRUM_BIN_EV), energy_ev[-1])
    fine = np.linspace(edges[:-1], edges[1:], 9, axis=1)
    values = np.interp(fine, energy_ev, density)
    probability = 0.5 * np.sum((values[:, 1:] + values[:, :-1]) * np.diff(fine, axis=1), axis=1)
    lower = edges[:-1].copy()
    lower[0] = LOWEST_ENERGY_EV
    return lower, probability / probability.sum(), float(edges[-1])


def write_spectrum(path: Path, lower_ev: np.ndarray, probability: np.ndarray, top_ev: float) -> None:
    """PenRed ``FILE_SPECTRUM`` format: ``E p`` per bin, closed by the top edge with p = -1."""
    lines = [f"{e:.8E} {p:.8E}" for e, p in zip(lower_ev, probability)]
    lines.append(f"{top_ev:.8E} -1")
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


STANDARD_ATOMIC_WEIGHTS = {1: 1.008, 6: 12.011, 7: 14.007, 8: 15.999, 11: 22.990, 12: 24.305, 15: 30.974, 16: 32.06,
                           17: 35.45, 18: 39.95, 19: 39.098, 20: 40.078, 26: 55.845, 30: 65.38}
"""Standard atomic weights (IUPAC 2021, abridged) of the elements of the predefined materials used,
to turn PENELOPE's atoms per molecule into the weight fractions ``materials.create`` takes."""


def _header(path: Path) -> list[str]:
    return path.read_text(encoding="latin-1").splitlines()[:40]


def listed_composition(penelope_id: int, scratch: Path) -> list[tuple[int, float]]:
    """(Z, weight fraction) of a PENELOPE-2018 predefined material, read from the file it generates."""
    from pyPenred import simulation

    simulation.materials.createListed(int(penelope_id), str(scratch))
    atoms = []
    for line in _header(scratch):
        if "atomic number" in line and "atoms/molecule" in line:
            z_part, n_part = line.split(",")
            atoms.append((int(z_part.split("=")[1]), float(n_part.split("=")[1])))
    scratch.unlink()
    mass = [(z, n * STANDARD_ATOMIC_WEIGHTS[z]) for z, n in atoms]
    total = sum(m for _, m in mass)
    return [(z, m / total) for z, m in mass]


def _material_file(job_dir: Path, index: int, material: dict) -> tuple[Path, float]:
    """Create (once per job) the PENELOPE material file at the density the job gives it (see
    ``mc_materials``: a density factor is not a reliable substitute); return it and that density."""
    from pyPenred import simulation

    path = job_dir / f"material{index}.mat"
    if not path.exists():
        stamp = time.time_ns()
        partial = path.with_suffix(f".{stamp}.part")
        if material.get("penelope_id") is not None:
            composition = listed_composition(int(material["penelope_id"]), path.with_suffix(f".{stamp}.listed"))
        else:
            composition = [(int(z), float(w)) for z, w in material["composition"]]
        simulation.materials.create(material["name"], float(material["density_g_per_ml"]), composition, str(partial))
        partial.replace(path)  # atomic: concurrent batches of one job never read a half-written file
    for line in _header(path)[:5]:
        if "Mass density" in line:
            return path, float(line.split("=")[1].split()[0])
    raise RuntimeError(f"no mass density in {path}")


def _config(job: dict, job_dir: Path, sources: list[tuple[dict, int]], seed_pair: int, nominal: list[float]) -> str:
    """PenRed configuration: one ``3D_MEASURE`` source per (source block, decays) in ``sources``."""
    nz, ny, nx = job["shape"]
    dz, dy, dx = (s / 10.0 for s in job["spacing_mm"])  # cm
    cut = job["transport"]
    lines = [
        "simulation/threads 1",
        f"simulation/seedPair {int(seed_pair)}",
        "simulation/max-time 1e30",
        "simulation/dump-interval 1e30",
    ]
    for block, n_histories in sources:
        key = f"sources/generic/{Path(block['file']).stem}"
        lines += [
            f"{key}/nhist {n_histories:.0f}",
            f'{key}/kpar "electron"',
            f'{key}/spatial/type "3D_MEASURE"',
            f'{key}/spatial/filename "{job_dir / block["file"]}"',
            *(f"{key}/spatial/d{axis} {block['corner_cm'][axis]:.10g}" for axis in "xyz"),
            f'{key}/direction/type "CONE"',
            f"{key}/direction/u 0.0",
            f"{key}/direction/v 0.0",
            f"{key}/direction/w 1.0",
            f"{key}/direction/theta 0.0",
            f"{key}/direction/phi 0.0",
            f"{key}/direction/alpha 180.0",
            f'{key}/energy/type "FILE_SPECTRUM"',
            f'{key}/energy/filename "{job_dir / "spectrum.txt"}"',
        ]
    lines += [
        'geometry/type "VOXEL"',
        f'geometry/filename "{job_dir / "voxels.txt"}"',
        "geometry/ascii true",
        "geometry/enclosure-margin 0.1",
        "geometry/enclosure-material 1",
    ]
    for i, _ in enumerate(nominal, start=1):
        key = f"materials/m{i}"
        lines += [
            f"{key}/number {i}",
            f"{key}/eabs/electron {cut['electron_cutoff_ev']:.6g}",
            f"{key}/eabs/positron {cut['electron_cutoff_ev']:.6g}",
            f"{key}/eabs/gamma {cut['photon_cutoff_ev']:.6g}",
            f"{key}/C1 {cut['c1']}",
            f"{key}/C2 {cut['c2']}",
            f"{key}/WCC {min(cut['electron_cutoff_ev'], 5e3):.6g}",
            f"{key}/WCR {min(cut['photon_cutoff_ev'], 1e3):.6g}",
            f'{key}/filename "{job_dir / f"material{i}.mat"}"',
        ]
    for axis, n, d in (("x", nx, dx), ("y", ny, dy), ("z", nz, dz)):
        lines += [f"tallies/dose/{axis}min 0.0", f"tallies/dose/{axis}max {n * d:.10g}", f"tallies/dose/n{axis} {n}"]
    lines += ['tallies/dose/type "SPATIAL_DOSE_DISTRIB"', "tallies/dose/print-xyz false"]
    return "\n".join(lines) + "\n"


def source_blocks(source: np.ndarray) -> list[tuple[slice, slice, slice]]:
    """Slabs of whole (y, x) planes of ``source`` (z, y, x), at least two planes thick (PenRed 1.15.2
    samples no decay from a measure one bin wide) and otherwise of at most ``SOURCE_BLOCK_BINS``
    voxels; slabs without activity are left out. Slabs only, because PenRed placed decays right from a
    block offset along the first axis but not along the other two (measured)."""
    nz = source.shape[0]
    thickness = min(nz, max(2, SOURCE_BLOCK_BINS // (source.shape[1] * source.shape[2])))
    starts = list(range(0, nz, thickness))
    if len(starts) > 1 and nz - starts[-1] == 1:  # a last slab one plane thick joins the one before
        starts.pop()
    slabs = [(slice(a, b), slice(None), slice(None)) for a, b in zip(starts, starts[1:] + [nz])]
    return [slab for slab in slabs if np.any(source[slab] > 0)]


def batch_sources(job_dir: Path, n_histories: int, seed_pair: int) -> list[tuple[dict, int]]:
    """(source block, decays) of one batch: the decays shared among the source blocks by a multinomial
    draw in proportion to their activity (the same draw for the same seed pair)."""
    blocks = json.loads((job_dir / "sources.json").read_text(encoding="utf-8"))
    activity = np.array([b["activity"] for b in blocks])
    counts = np.random.default_rng(seed_pair).multinomial(n_histories, activity / activity.sum())
    return [(b, int(n)) for b, n in zip(blocks, counts) if n > 0]


def prepare(job_dir: Path) -> list[float]:
    """Write the material, geometry, source and spectrum files shared by all batches (once per job);
    return the materials' nominal densities (g/mL)."""
    from pyPenred import data

    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    nominal = [_material_file(job_dir, i, m)[1] for i, m in enumerate(job["materials"], start=1)]
    marker = job_dir / "prepared"
    if marker.exists():
        return nominal
    material = np.load(job_dir / "material.npy")
    density = np.load(job_dir / "density.npy")
    factor = density / np.asarray(nominal)[material.astype(np.intp) - 1]
    nz, ny, nx = material.shape
    dz, dy, dx = (s / 10.0 for s in job["spacing_mm"])
    stamp = time.time_ns()
    voxels = job_dir / f"voxels.{stamp}.part"
    with open(voxels, "w", encoding="ascii") as handle:
        handle.write(f"{nx} {ny} {nz}\n{dx:.10E} {dy:.10E} {dz:.10E}\n")
        np.savetxt(handle, np.column_stack([material.ravel(), factor.ravel()]), fmt=["%d", "%.8E"])
    voxels.replace(job_dir / "voxels.txt")
    source = np.load(job_dir / "source.npy").astype(np.float64)
    blocks = []
    for k, block in enumerate(source_blocks(source)):
        values = source[block]
        name = f"source{k:05d}.dat"
        part = job_dir / f"{name}.{stamp}.part"
        # PenRed lists the first numpy axis last: (z, y, x) arrays go with (z, y, x) limits (cm). The
        # limits start at 0 and the slab's corner is the sampler's translation.
        z0, z1 = block[0].start, block[0].stop
        limits = [(0.0, (z1 - z0) * dz, "z"), (0.0, ny * dy, "y"), (0.0, nx * dx, "x")]
        data.printResults(str(part), values, np.zeros_like(values), limits, print_coordinates=False, print_bins=False)
        part.replace(job_dir / name)
        blocks.append({"file": name, "activity": float(values.sum()), "corner_cm": {"x": 0.0, "y": 0.0, "z": z0 * dz}})
    (job_dir / "sources.json").write_text(json.dumps(blocks), encoding="utf-8")
    write_spectrum(job_dir / "spectrum.txt", *beta_spectrum_bins(job["nuclide"]))
    np.save(job_dir / "density_factor.npy", factor)
    marker.write_text("ok", encoding="ascii")
    return nominal


def run_batch(job_dir: Path, batch: str, n_histories: int, seed_pair: int) -> None:
    from pyPenred import simulation

    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    nominal = prepare(job_dir)
    simulation.setConfigurationLog(str(job_dir / f"{batch}.config.log"))
    simulation.setSimulationLog(str(job_dir / f"{batch}.simulation.log"))
    sim = simulation.create()
    sim.configFromString(_config(job, job_dir, batch_sources(job_dir, n_histories, seed_pair), seed_pair, nominal))
    progress = job_dir / f"{batch}.progress"
    start = time.perf_counter()
    sim.simulate(True)
    finished, last = 0.0, (0.0, 0.0)
    while sim.isSimulating():
        time.sleep(PROGRESS_INTERVAL_S)
        current = tuple(float(sum(v)) for v in zip(*sim.simulated()))  # (done, requested) of the running source
        if current[0] < last[0]:  # the next source block started (blocks finished between polls are missed)
            finished += last[1]
        last = current
        progress.write_text(f"{min(finished + current[0], n_histories):.0f}", encoding="ascii")
    seconds = time.perf_counter() - start
    values, sigma = sim.getResults(["dose"])["dose"][0].data()[:2]
    factor = np.load(job_dir / "density_factor.npy")
    out = job_dir / f"{batch}.tmp.npz"
    np.savez(out, energy_ev_per_g_per_history=np.asarray(values) / factor, sigma_ev_per_g_per_history=np.asarray(sigma) / factor,
             n_histories=n_histories, seed_pair=seed_pair, seconds=seconds)
    out.replace(job_dir / f"{batch}.npz")
    progress.write_text(f"{n_histories:.0f}", encoding="ascii")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[1] == "prepare":
        prepare(Path(argv[0]))
        return 0
    if len(argv) != 4:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    run_batch(Path(argv[0]), argv[1], int(float(argv[2])), int(argv[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
