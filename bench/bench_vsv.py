"""Benchmark of the VSV convolution (``SIRTDosimetryLib.dose.vsv.vsv_dose_gy``). Not a test.

    python bench/bench_vsv.py [--quick]

Grids: 128³ and 256³ (synthetic activity, 4.8 mm voxels) and the sample 90Y PET
(89×256×256, 2.34375×2.34375×2.78 mm, converted to time-integrated activity for a permanent
implant). Kernel: 11×11×11 from ``kernels.kernel_for_grid`` (Lanconelli 4.8 mm table, Graves DPK
for the PET grid), or a synthetic 90Y-like kernel if that module cannot be imported.

Per grid, in one run: wall time (median of repeats, interleaved so that background load hits
all methods alike) of ``vsv_dose_gy``; ``scipy.signal.fftconvolve(mode="same")`` on the same
float32 arrays, single-threaded as called by default and with ``scipy.fft.set_workers`` at our
worker count; ``scipy.signal.oaconvolve`` with the same workers (the alternative weighed in
vsv.py); one ``rfftn`` + ``irfftn`` round trip of our padded grid with the same workers.

Memory: each function runs once in a fresh subprocess after its inputs are built. Freed heap is
handed back (``malloc_trim``), the kernel's peak-RSS mark is reset (``/proc/self/clear_refs``),
and peak extra = VmHWM after the call - VmRSS before it. This counts everything the call
touches, pocketfft's own buffers included, and includes the output array. tracemalloc's peak is
recorded too: numpy reports its array buffers to tracemalloc, but pocketfft's C++ scratch
buffers are not seen, so it is a lower bound. Ratios are to the padded grid in float32.

Results go to ``bench/results/vsv.json``; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy
import scipy.fft as sfft
import scipy.signal as signal
import SimpleITK as sitk

from SIRTDosimetryLib.dose.vsv import padded_shape, vsv_dose_gy
from SIRTDosimetryLib.nuclides import Y90

ROOT = Path(__file__).resolve().parents[1]
PET_PATH = ROOT / "SIRTDosimetry" / "SIRTDosimetryLib" / "data" / "samples" / "patient_1_Y90_PET.nrrd"
RESULTS = ROOT / "bench" / "results" / "vsv.json"
SOFT_TISSUE_G_PER_ML = 1.04
SYNTHETIC_SPACING_MM = (4.8, 4.8, 4.8)
CASES = {
    "128^3": (128, 128, 128),
    "256^3": (256, 256, 256),
    "PET 89x256x256": None,
}
METHODS = ("vsv", "fftconvolve_1thread", "fftconvolve_workers", "oaconvolve_workers", "fft_roundtrip")
MEMORY_METHODS = ("vsv", "fftconvolve_workers", "oaconvolve_workers", "fft_roundtrip")
TARGET_MEMORY_RATIO = 4.0
TARGET_ROUNDTRIP_RATIO = 2.0


def case_input(case: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float], str]:
    """(TIA in Bq·s as float32, kernel in mGy/(MBq·s) as float32, spacing (x, y, z) mm, kernel source)."""
    if CASES[case] is None:
        image = sitk.ReadImage(str(PET_PATH))
        spacing = image.GetSpacing()
        voxel_ml = math.prod(spacing) * 1e-3
        # Permanent implant: Ã = A · T½ / ln 2.
        tia = sitk.GetArrayFromImage(image) * (voxel_ml * Y90.half_life_s / math.log(2.0))
    else:
        spacing = SYNTHETIC_SPACING_MM
        tia = np.random.default_rng(0).uniform(0.0, 1e10, size=CASES[case])
    kernel, source = case_kernel(spacing)
    return tia.astype(np.float32), kernel.astype(np.float32), spacing, source


def case_kernel(spacing: tuple[float, float, float]) -> tuple[np.ndarray, str]:
    try:
        from SIRTDosimetryLib.dose.kernels import kernel_for_grid
    except ImportError:
        r = np.sqrt(np.sum(np.square(np.indices((11, 11, 11)) - 5), axis=0))
        return 2.5 * np.exp(-r / 0.37), "synthetic exp(-r/0.37 voxel), 11^3"
    kernel = kernel_for_grid(spacing, SOFT_TISSUE_G_PER_ML)
    return kernel.values_mgy_per_mbq_s, kernel.source


def method_call(method: str, tia: np.ndarray, kernel: np.ndarray, workers: int):
    """A zero-argument callable running ``method`` on the inputs (dose scaling included where it is free)."""
    padded = padded_shape(tia.shape, kernel.shape)
    scaled = (kernel * 1e-9).astype(np.float32)
    if method == "vsv":
        return lambda: vsv_dose_gy(tia, kernel, workers=workers)
    if method == "fftconvolve_1thread":
        return lambda: signal.fftconvolve(tia, scaled, mode="same")
    if method == "fftconvolve_workers":
        return lambda: _with_workers(workers, signal.fftconvolve, tia, scaled, mode="same")
    if method == "oaconvolve_workers":
        return lambda: _with_workers(workers, signal.oaconvolve, tia, scaled, mode="same")
    if method == "fft_roundtrip":
        return lambda: sfft.irfftn(sfft.rfftn(tia, s=padded, workers=workers), s=padded, workers=workers)
    raise ValueError(method)


def _with_workers(workers: int, function, *args, **kwargs):
    with sfft.set_workers(workers):
        return function(*args, **kwargs)


def _proc_status_bytes(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{key}:\s+(\d+) kB", text).group(1)) * 1024


def child_memory(case: str, method: str, workers: int) -> dict:
    """Peak extra memory of one call, in this fresh process (see the module docstring)."""
    tia, kernel, _, _ = case_input(case)
    call = method_call(method, tia, kernel, workers)
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    rss_before = _proc_status_bytes("VmRSS")
    result = call()
    rss_peak = _proc_status_bytes("VmHWM") - rss_before
    del result
    tracemalloc.start()
    result = call()
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"rss_peak_extra_bytes": rss_peak, "tracemalloc_peak_bytes": traced_peak}


def child_timing(case: str, workers: int, repeats: int) -> dict:
    """Median and min wall times of all methods, interleaved; plus vsv's float32 error on the maximum."""
    tia, kernel, spacing, source = case_input(case)
    calls = {method: method_call(method, tia, kernel, workers) for method in METHODS}
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {method: [] for method in METHODS}
    for _ in range(repeats):
        for method, call in calls.items():
            start = time.perf_counter()
            call()
            times[method].append(time.perf_counter() - start)
    dose = calls["vsv"]()
    reference = signal.fftconvolve(tia.astype(np.float64), kernel.astype(np.float64), mode="same") * 1e-9
    return {
        "shape_zyx": list(tia.shape),
        "spacing_xyz_mm": list(spacing),
        "kernel_shape": list(kernel.shape),
        "kernel_source": source,
        "padded_shape": list(padded_shape(tia.shape, kernel.shape)),
        "seconds_median": {m: float(np.median(t)) for m, t in times.items()},
        "seconds_min": {m: float(np.min(t)) for m, t in times.items()},
        "max_dose_gy": float(reference.max()),
        "relative_error_of_max_vs_float64": float(abs(dose.max() - reference.max()) / reference.max()),
        "max_abs_error_over_max_vs_float64": float(np.max(np.abs(dose - reference)) / reference.max()),
    }


def run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine_info(workers: int) -> dict:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "workers": workers,
        "cpu_model": cpu.group(1).strip() if cpu else platform.processor(),
        "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
    }


def case_result(case: str, workers: int, repeats: int) -> dict:
    result = run_child("timing", case, str(workers), str(repeats))
    padded_f32_bytes = 4 * math.prod(result["padded_shape"])
    result["padded_float32_bytes"] = padded_f32_bytes
    result["memory"] = {m: run_child("memory", case, m, str(workers)) for m in MEMORY_METHODS}
    t = result["seconds_median"]
    vsv_memory_ratio = result["memory"]["vsv"]["rss_peak_extra_bytes"] / padded_f32_bytes
    result["targets"] = {
        "at_least_as_fast_as_fftconvolve_workers": t["vsv"] <= t["fftconvolve_workers"],
        "within_2x_of_fft_roundtrip": t["vsv"] <= TARGET_ROUNDTRIP_RATIO * t["fft_roundtrip"],
        "peak_memory_below_4x_padded_float32": vsv_memory_ratio < TARGET_MEMORY_RATIO,
    }
    result["vsv_over_roundtrip"] = t["vsv"] / t["fft_roundtrip"]
    result["vsv_peak_memory_over_padded_float32"] = vsv_memory_ratio
    return result


def markdown_table(results: dict, workers: int) -> str:
    header = (
        f"| grid (z×y×x) | padded | vsv_dose_gy | fftconvolve 1 thread | fftconvolve {workers} thr | "
        f"oaconvolve {workers} thr | rfftn+irfftn | vsv / round trip | peak extra mem / padded f32 "
        f"(vsv, RSS; tracemalloc) | same, fftconvolve | same, oaconvolve | rel. err. of max |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = []
    for case, r in results.items():
        t, mem, pad = r["seconds_median"], r["memory"], r["padded_float32_bytes"]
        rows.append(
            f"| {case} | {'×'.join(map(str, r['padded_shape']))} | {t['vsv']:.3f} s | "
            f"{t['fftconvolve_1thread']:.3f} s | "
            f"{t['fftconvolve_workers']:.3f} s | {t['oaconvolve_workers']:.3f} s | {t['fft_roundtrip']:.3f} s | "
            f"{r['vsv_over_roundtrip']:.2f} | {r['vsv_peak_memory_over_padded_float32']:.2f}; "
            f"{mem['vsv']['tracemalloc_peak_bytes'] / pad:.2f} | "
            f"{mem['fftconvolve_workers']['rss_peak_extra_bytes'] / pad:.2f} | "
            f"{mem['oaconvolve_workers']['rss_peak_extra_bytes'] / pad:.2f} | "
            f"{r['relative_error_of_max_vs_float64']:.1e} |"
        )
    return "\n".join([header, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats, 128^3 and the PET grid only")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, case, *rest = args.child
        if kind == "memory":
            print(json.dumps(child_memory(case, rest[0], int(rest[1]))))
        else:
            print(json.dumps(child_timing(case, int(rest[0]), int(rest[1]))))
        return
    workers = len(os.sched_getaffinity(0))  # what vsv_dose_gy uses by default
    repeats = 3 if args.quick else 7
    cases = [c for c in CASES if not (args.quick and c == "256^3")]
    machine = machine_info(workers)
    results = {case: case_result(case, workers, repeats) for case in cases}
    report = {"machine": machine, "repeats": repeats, "results": results}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, RESULTS)
    print(markdown_table(results, workers))
    print()
    for case, r in results.items():
        print(f"{case}: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in r["targets"].items()))
    print(f"\nwritten {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
