"""Validation and timing of the Monte Carlo dose (PenRed) and the lung-aware kernel method. Not a test.

    python bench/bench_mc.py [--parts svalues,sphere,slab,patient,scaling] [--decays N]

Parts (each writes its numbers into ``bench/results/mc.json``, merged with earlier runs):
  svalues  MC voxel S values (4.42 mm, soft tissue 1.04 g/mL and compact bone 1.85 g/mL) against the
           bundled Lanconelli et al. 2012 tables: source voxel and its six face neighbours.
  sphere   uniform 10 cm sphere (4 mm voxels, 1.04 g/mL): MC mean dose against the LDM.
  slab     liver (1.06 g/mL, uniform activity, 48 mm) / lung (0.26 g/mL, 30 mm), 1 mm layers: depth
           profiles of MC, vsv-lung, amplitude-scaled soft-tissue VSV and LDM; lung mean dose over the
           first 2 cm and per layer whose MC dose exceeds 5 % of the liver plateau.
  patient  sample patient 2 (99mTc-MAA SPECT, relative calibration 2 GBq into the liver): MC run until
           2 % relative uncertainty in Tumor 2 (--patient-target), with --processes workers: the
           decays and wall time that took, and MC against VSV for the liver and Tumor 2 means.
  scaling  MC wall and CPU time per 10^6 decays with 1 and 2 worker processes (the same job), speed-up.

Every record carries the machine's load average before and after: the numbers in the README were
taken on a 2-core machine shared with other jobs, so times are upper bounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from SIRTDosimetryLib.dose.kernels import build_kernel_from_dpk, load_lanconelli
from SIRTDosimetryLib.dose.lung_kernel import vsv_lung_dose_gy
from SIRTDosimetryLib.dose.montecarlo import MCSettings, run_monte_carlo
from SIRTDosimetryLib.dose.vsv import density_corrected, vsv_dose_gy
from SIRTDosimetryLib.nuclides import MEV_TO_J, Y90
from SIRTDosimetryLib.testing.mc_phantoms import ICRP107_Y90_MEAN_BETA_MEV, LIVER_DENSITY_G_PER_ML, liver_lung_slab, uniform_sphere

RESULTS = Path(__file__).resolve().parent / "results" / "mc.json"


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def svalues(decays: int, processes: int) -> dict:
    out = {}
    for tissue, density in (("soft", 1.04), ("bone", 1.85)):
        tia = np.zeros((11, 11, 11))
        tia[5, 5, 5] = 1e6
        mc = run_monte_carlo(tia, density, (4.42,) * 3, MCSettings(decays=decays, processes=processes, seed=21))
        s = mc.dose_gy.astype(float) * 1e3  # mGy/(MBq s)
        table = load_lanconelli(4.42, tissue).values_mgy_per_mbq_s
        c = table.shape[0] // 2
        rows = {}
        for name, (dz, dy, dx) in {"0,0,0": (0, 0, 0), "0,0,1": (0, 0, 1), "0,0,-1": (0, 0, -1), "0,1,0": (0, 1, 0),
                                   "0,-1,0": (0, -1, 0), "1,0,0": (1, 0, 0), "-1,0,0": (-1, 0, 0)}.items():
            rows[name] = {"mc": s[5 + dz, 5 + dy, 5 + dx], "table": float(table[c + dz, c + dy, c + dx]),
                          "ratio": s[5 + dz, 5 + dy, 5 + dx] / float(table[c + dz, c + dy, c + dx]),
                          "relative_uncertainty": float(mc.relative_uncertainty[5 + dz, 5 + dy, 5 + dx])}
        out[tissue] = {"density_g_per_ml": density, "decays": mc.decays_simulated, "wall_s": mc.wall_seconds,
                       "cpu_s_per_1e6_decays": mc.cpu_seconds_per_million_decays, "voxels": rows}
    return out


def sphere(decays: int, processes: int) -> dict:
    tia, inside = uniform_sphere(100.0, 4.0)
    mc = run_monte_carlo(tia, 1.04, (4.0,) * 3, MCSettings(decays=decays, processes=processes, seed=31))
    mass_g = 1.04 * 0.064
    ldm_icrp = tia[inside][0] * ICRP107_Y90_MEAN_BETA_MEV * MEV_TO_J / (mass_g * 1e-3)
    ldm_ref = tia[inside][0] * Y90.absorbed_energy_per_decay_j / (mass_g * 1e-3)
    n = tia.shape[0]
    z, y, x = np.indices(tia.shape)
    radius_mm = 4.0 * np.sqrt(sum((a - (n - 1) / 2.0) ** 2 for a in (z, y, x)))
    interior = radius_mm <= 50.0 - 12.0  # more than the 90Y range inside the surface: charged-particle equilibrium
    mean, core = float(mc.dose_gy[inside].mean()), float(mc.dose_gy[interior].mean())
    return {"decays": mc.decays_simulated, "wall_s": mc.wall_seconds, "mc_mean_gy": mean, "mc_interior_mean_gy": core,
            "ldm_icrp107_energy_gy": ldm_icrp, "ldm_49.67_j_per_gbq_gy": ldm_ref,
            "interior_ratio_to_ldm_icrp107": core / ldm_icrp, "interior_ratio_to_ldm_49.67": core / ldm_ref,
            "whole_sphere_ratio_to_ldm_icrp107": mean / ldm_icrp,
            "note": "whole sphere: energy escaping through the voxelised surface lowers the mean; interior: > 12 mm inside"}


def slab(decays: int, processes: int) -> dict:
    s = liver_lung_slab()
    spacing_zyx = tuple(reversed(s.spacing_xyz_mm))
    t = time.perf_counter()
    lung = vsv_lung_dose_gy(s.tia_bq_s, s.density_g_per_ml, s.spacing_xyz_mm)
    lung_s = time.perf_counter() - t
    kernel = build_kernel_from_dpk(s.spacing_xyz_mm, LIVER_DENSITY_G_PER_ML)
    soft = density_corrected(vsv_dose_gy(s.tia_bq_s, kernel.values_mgy_per_mbq_s), s.density_g_per_ml, LIVER_DENSITY_G_PER_ML)
    mc = run_monte_carlo(s.tia_bq_s, s.density_g_per_ml, spacing_zyx, MCSettings(decays=decays, processes=processes, seed=41))
    depth = s.lung_depths_mm()
    profiles = {name: s.depth_profile(d).astype(float) for name, d in (("mc", mc.dose_gy), ("vsv_lung", lung), ("vsv_soft_amplitude", soft))}
    plateau = float(profiles["mc"][(depth > -30) & (depth < -15)].mean())
    first_2cm = (depth > 0) & (depth < 20)
    layers = first_2cm & (profiles["mc"] > 0.05 * plateau)
    out = {"decays": mc.decays_simulated, "mc_wall_s": mc.wall_seconds, "vsv_lung_s": lung_s, "liver_plateau_gy": plateau,
           "depth_mm": depth.tolist(), "profiles_gy": {k: v.tolist() for k, v in profiles.items()}, "methods": {}}
    for name in ("vsv_lung", "vsv_soft_amplitude"):
        p = profiles[name]
        out["methods"][name] = {
            "lung_first_2cm_mean_error": float(p[first_2cm].mean() / profiles["mc"][first_2cm].mean() - 1),
            "layer_errors_above_5pct_plateau": {f"{d:.1f}": float(p[i] / profiles["mc"][i] - 1) for i, d in enumerate(depth) if layers[i]},
        }
    out["methods"]["ldm"] = {"lung_first_2cm_mean_error": -1.0, "note": "no activity in lung: LDM gives 0 Gy there"}
    return out


def patient(decays: int, processes: int, target: float = 0.02) -> dict:
    """Sample patient 2: MC until ``target`` relative uncertainty in Tumor 2 (measured, not
    extrapolated), checked every ``processes`` x 2 x 10^6 decays (large batches: each batch pays
    PenRed's set-up of the 2 x 10^6-voxel box again); ``target=0`` runs ``decays`` instead."""
    from SIRTDosimetryLib.dose.calibration import RelativeCalibration
    from SIRTDosimetryLib.dose.engine import DoseParameters, compute_dose
    from SIRTDosimetryLib.io.segmentations import read_segmentation
    from SIRTDosimetryLib.io.volumes import read_activity_image

    samples = Path(__file__).resolve().parents[1] / "SIRTDosimetry" / "SIRTDosimetryLib" / "data" / "samples"
    activity = read_activity_image(next(samples.glob("patient_2_SPECT*")))
    segmentation = read_segmentation(next(samples.glob("patient_2_Seg*")))
    liver = next(n for n in segmentation.names if n.lower() == "liver")
    calibration = RelativeCalibration(administered_activity_bq=2e9, calibration_voi=(liver,))
    segments = (liver, "Tumor 2")
    base = dict(calibration=calibration, segments=segments, clamp_invalid=True)
    vsv = compute_dose(activity, segmentation, DoseParameters(method="vsv", **base))
    run = dict(target_uncertainty=target) if target else dict(decays=decays)
    settings = MCSettings(processes=processes, seed=51, target_segments=("Tumor 2",), batch_decays=2_000_000, **run)
    mc = compute_dose(activity, segmentation, DoseParameters(method="mc", monte_carlo=settings, **base))
    record = mc.monte_carlo
    achieved = record["achieved_uncertainty"]
    return {
        "activity": "patient_2_SPECT (99mTc-MAA), relative calibration 2 GBq into the liver; uniform 1.04 g/mL (no CT)",
        "means_gy": {s.name: {"vsv": v.dose_mean_gy, "mc": s.dose_mean_gy, "ratio": s.dose_mean_gy / v.dose_mean_gy}
                     for s, v in zip(mc.segments, vsv.segments)},
        "processes": processes, "target_uncertainty_tumor2": target or None,
        "decays": record["decays_simulated"], "wall_s": record["wall_seconds"], "cpu_s": record["cpu_seconds"],
        "tumor2_uncertainty": achieved,
        # 1/sqrt(decays): the decays 2 % would take from this run's uncertainty (a check on the measured count).
        "decays_for_2pct_tumor2_from_uncertainty": record["decays_simulated"] * (achieved / 0.02) ** 2,
        "transport_box_voxels": int(sum(record["materials_voxels"].values())),
        "activity_outside_box_fraction": record["activity_outside_box_fraction"],
        "materials_voxels": record["materials_voxels"],
    }


def scaling(decays: int, _processes: int) -> dict:
    """The same job (uniform 40 mm sphere, 4 mm voxels) with 1 and 2 worker processes."""
    tia, _ = uniform_sphere(40.0, 4.0)
    out = {}
    for processes in (1, 2):
        mc = run_monte_carlo(tia, 1.04, (4.0,) * 3, MCSettings(decays=decays, processes=processes, seed=61))
        out[str(processes)] = {"decays": mc.decays_simulated, "wall_s": mc.wall_seconds, "wall_s_per_1e6_decays": mc.wall_seconds / decays * 1e6,
                               "cpu_s_per_1e6_decays": mc.cpu_seconds_per_million_decays}
    out["speedup_2_vs_1"] = out["1"]["wall_s"] / out["2"]["wall_s"]
    return out


PARTS = {"svalues": svalues, "sphere": sphere, "slab": slab, "patient": patient, "scaling": scaling}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--decays", type=float, default=4e5)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--patient-target", type=float, default=0.02, help="patient: relative uncertainty in Tumor 2 to run to (0: run --decays)")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for part in args.parts.split(","):
        before = _load()
        start = time.perf_counter()
        extra = {"target": args.patient_target} if part == "patient" else {}
        value = PARTS[part](int(args.decays), args.processes, **extra)
        value["run"] = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "load_average_before": before,
                        "load_average_after": _load(), "cpus": os.cpu_count(), "machine": platform.platform(),
                        "seconds": time.perf_counter() - start, "note": "2-core machine shared with other jobs: times are upper bounds"}
        results[part] = value
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1, default=float))
        print(part, json.dumps({k: v for k, v in value.items() if k not in ("depth_mm", "profiles_gy")}, indent=1, default=float))


if __name__ == "__main__":
    main()
