"""Validation and timing of the Monte Carlo dose (PenRed) and the lung-aware kernel method. Not a test.

    python bench/bench_mc.py [--parts svalues,sphere,slab,density_factor,phantom,patient,scaling] [--decays N]

Parts (each writes its numbers into ``bench/results/mc.json``, merged with earlier runs):
  svalues  MC voxel S values (4.42 mm, soft tissue 1.04 g/mL and compact bone 1.85 g/mL) against the
           bundled Lanconelli et al. 2012 tables: source voxel and its six face neighbours.
  sphere   uniform 10 cm sphere (4 mm voxels, 1.04 g/mL): MC mean dose against the LDM.
  slab     liver (1.06 g/mL, uniform activity, 48 mm) / lung (0.26 g/mL, 30 mm), 1 mm layers: depth
           profiles of MC, vsv-lung, amplitude-scaled soft-tissue VSV and LDM; lung mean dose over the
           first 2 cm and per layer whose MC dose exceeds 5 % of the liver plateau, with the MC
           layer's 1-sigma and the miss rule (``MISS_RULE``).
  density_factor  a point source in uniform ICRP lung at 0.30, 0.26 and 0.15 g/mL (4 mm voxels): MC
           dose per voxel against the range-scaled point kernel at that density (and at 0.30 g/mL,
           PENELOPE's nominal lung density): whether MC in lung follows the density it is given.
  phantom  patient-like torso (4 mm voxels): liver dome under a lung, hot tumour below the dome, 10 %
           lung shunt (``mc_phantoms.torso_phantom``): mean dose in lung, liver and tumour by MC,
           vsv-lung, amplitude-scaled soft-tissue VSV and LDM, errors against MC, and run times.
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
from SIRTDosimetryLib.dose.ldm import ldm_dose_gy
from SIRTDosimetryLib.dose.lung_kernel import vsv_lung_dose_gy
from SIRTDosimetryLib.dose.montecarlo import MCSettings, run_monte_carlo
from SIRTDosimetryLib.dose.vsv import density_corrected, vsv_dose_gy
from SIRTDosimetryLib.nuclides import MEV_TO_J, Y90
from SIRTDosimetryLib.testing.mc_phantoms import (ICRP107_Y90_MEAN_BETA_MEV, LIVER_DENSITY_G_PER_ML,
                                                  SOFT_TISSUE_DENSITY_G_PER_ML,
                                                  liver_lung_slab, torso_phantom, uniform_sphere)

RESULTS = Path(__file__).resolve().parent / "results" / "mc.json"

LAYER_TOLERANCE = 0.10
MISS_RULE = ("a 1 mm lung layer (MC dose above 5 % of the liver plateau, first 2 cm) is missed when |error| - 10 % exceeds "
             "the 1-sigma statistical uncertainty of the error, from the MC layer mean (per-voxel sigmas in quadrature)")


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
    mc = run_monte_carlo(s.tia_bq_s, s.density_g_per_ml, spacing_zyx, MCSettings(decays=decays, processes=processes, seed=41),
                         liver_mask=s.liver_mask)
    depth = s.lung_depths_mm()
    profiles = {name: s.depth_profile(d).astype(float) for name, d in (("mc", mc.dose_gy), ("vsv_lung", lung), ("vsv_soft_amplitude", soft))}
    mc_sigma = s.depth_profile_sigma(mc.dose_gy, mc.relative_uncertainty)
    plateau = float(profiles["mc"][(depth > -30) & (depth < -15)].mean())
    first_2cm = (depth > 0) & (depth < 20)
    layers = first_2cm & (profiles["mc"] > 0.05 * plateau)
    mc_first_2cm = profiles["mc"][first_2cm].mean()
    mc_first_2cm_sigma = float(np.sqrt((mc_sigma[first_2cm] ** 2).sum()) / first_2cm.sum())
    out = {"decays": mc.decays_simulated, "mc_wall_s": mc.wall_seconds, "vsv_lung_s": lung_s, "liver_plateau_gy": plateau,
           "miss_rule": MISS_RULE, "depth_mm": depth.tolist(), "profiles_gy": {k: v.tolist() for k, v in profiles.items()},
           "mc_sigma_gy": mc_sigma.tolist(), "mc_lung_first_2cm_relative_sigma": mc_first_2cm_sigma / mc_first_2cm, "methods": {}}
    for name in ("vsv_lung", "vsv_soft_amplitude"):
        p = profiles[name]
        per_layer = {}
        for i in np.flatnonzero(layers):
            ratio = p[i] / profiles["mc"][i]
            sigma = ratio * mc_sigma[i] / profiles["mc"][i]  # uncertainty of the error from the MC reference
            per_layer[f"{depth[i]:.1f}"] = {"error": ratio - 1, "sigma": sigma, "miss": bool(abs(ratio - 1) - LAYER_TOLERANCE > sigma)}
        out["methods"][name] = {
            "lung_first_2cm_mean_error": float(p[first_2cm].mean() / mc_first_2cm - 1),
            "layers": per_layer, "layers_missed": sum(int(v["miss"]) for v in per_layer.values()), "layers_counted": len(per_layer),
        }
    out["methods"]["ldm"] = {"lung_first_2cm_mean_error": -1.0, "note": "no activity in lung: LDM gives 0 Gy there"}
    return out


ICRP_LUNG_G_PER_ML = 0.30
"""Nominal density of PENELOPE-2018's ICRP lung, the density the ``density_factor`` part compares with."""


def density_factor(decays: int, processes: int) -> dict:
    tia = np.zeros((9, 9, 9))
    tia[4, 4, 4] = 1e6  # 1 MBq s: dose in mGy equals the S value in mGy/(MBq s)
    out = {}
    for density in (ICRP_LUNG_G_PER_ML, 0.26, 0.15):
        mc = run_monte_carlo(tia, density, (4.0,) * 3, MCSettings(decays=decays, processes=processes, seed=81))
        rows = {}
        for reference in sorted({density, ICRP_LUNG_G_PER_ML}):
            kernel = build_kernel_from_dpk((4.0,) * 3, reference).values_mgy_per_mbq_s
            c = kernel.shape[0] // 2
            rows[f"dpk_at_{reference:g}"] = [float(mc.dose_gy[4, 4, 4 + k]) * 1e3 / float(kernel[c, c, c + k]) for k in range(4)]
        out[f"{density:g}"] = {"density_factor": density / ICRP_LUNG_G_PER_ML, "decays": mc.decays_simulated,
                               "mc_over_kernel_at_offsets_0_to_3": rows,
                               "mc_relative_sigma_at_offsets_0_to_3": [float(mc.relative_uncertainty[4, 4, 4 + k]) for k in range(4)]}
    return out


def phantom(decays: int, processes: int) -> dict:
    t = torso_phantom()
    spacing_zyx = tuple(reversed(t.spacing_xyz_mm))
    doses, seconds = {}, {}
    start = time.perf_counter()
    kernel = build_kernel_from_dpk(t.spacing_xyz_mm, SOFT_TISSUE_DENSITY_G_PER_ML)
    doses["vsv_soft_amplitude"] = density_corrected(vsv_dose_gy(t.tia_bq_s, kernel.values_mgy_per_mbq_s), t.density_g_per_ml,
                                                    SOFT_TISSUE_DENSITY_G_PER_ML)
    seconds["vsv_soft_amplitude"] = time.perf_counter() - start
    start = time.perf_counter()
    doses["vsv_lung"] = vsv_lung_dose_gy(t.tia_bq_s, t.density_g_per_ml, t.spacing_xyz_mm)
    seconds["vsv_lung"] = time.perf_counter() - start
    doses["ldm"] = ldm_dose_gy(t.tia_bq_s, float(np.prod(t.spacing_xyz_mm)) / 1000.0, t.density_g_per_ml, Y90)
    mc = run_monte_carlo(t.tia_bq_s, t.density_g_per_ml, spacing_zyx, MCSettings(decays=decays, processes=processes, seed=71),
                         liver_mask=t.liver | t.tumour)
    seconds["mc"] = mc.wall_seconds
    from scipy import ndimage

    from_liver_mm = ndimage.distance_transform_edt(~(t.liver | t.tumour), sampling=t.spacing_xyz_mm[::-1])
    bands = {"lung_within_20mm_of_liver": t.lung & (from_liver_mm <= 20.0), "lung_beyond_20mm_of_liver": t.lung & (from_liver_mm > 20.0)}
    regions = {}
    for name, mask in {**t.regions(), **bands}.items():
        reference = float(mc.dose_gy[mask].mean())
        sigma = float(np.sqrt(np.nansum((mc.dose_gy[mask].astype(float) * mc.relative_uncertainty[mask]) ** 2)) / mask.sum())
        regions[name] = {"voxels": int(mask.sum()), "mc_mean_gy": reference, "mc_mean_relative_sigma": sigma / reference,
                         "methods": {m: {"mean_gy": float(d[mask].mean()), "error_vs_mc": float(d[mask].mean()) / reference - 1}
                                     for m, d in doses.items()}}
    return {"decays": mc.decays_simulated, "voxel_mm": t.spacing_xyz_mm, "grid": list(t.tia_bq_s.shape),
            "lung_shunt_fraction": 0.10, "tumour_to_normal": 4.0, "regions": regions, "wall_s": seconds,
            "note": "vsv_lung's time includes building its kernels (cached per spacing and density within a process)"}


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


PART_DECAYS = {"slab": 2e6, "density_factor": 4e4}
"""Decays for parts whose README numbers need other than 4e5: 1 mm slab layers to 1-3 %; a point source."""

PARTS = {"svalues": svalues, "sphere": sphere, "slab": slab, "density_factor": density_factor, "phantom": phantom, "patient": patient, "scaling": scaling}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--decays", type=float, default=None, help="default: 4e5, or the part's in PART_DECAYS")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--patient-target", type=float, default=0.02, help="patient: relative uncertainty in Tumor 2 to run to (0: run --decays)")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for part in args.parts.split(","):
        before = _load()
        start = time.perf_counter()
        extra = {"target": args.patient_target} if part == "patient" else {}
        value = PARTS[part](int(args.decays or PART_DECAYS.get(part, 4e5)), args.processes, **extra)
        value["run"] = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "load_average_before": before,
                        "load_average_after": _load(), "cpus": os.cpu_count(), "machine": platform.platform(),
                        "seconds": time.perf_counter() - start, "note": "2-core machine shared with other jobs: times are upper bounds"}
        results[part] = value
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1, default=float))
        print(part, json.dumps({k: v for k, v in value.items() if k not in ("depth_mm", "profiles_gy")}, indent=1, default=float))


if __name__ == "__main__":
    main()
