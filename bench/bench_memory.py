"""Peak memory of the dose engine (``compute_dose``), and of the whole ``sirt dose`` command with BED (reading,
computing, writing the dose, BED and EQD2 maps), against the size of the input. Not a test.

    python bench/bench_memory.py [--shape Z Y X] [--method vsv|ldm] [--no-bed]

A synthetic float32 PET in Bq/mL (default 400×512×512, the size the target is set for, 2.34×2.34×2.78 mm;
about a minute per configuration on 2 cores) with a liver and a tumour segmentation on the same grid, VSV with BED maps. The image
and segmentation are written to disk and read back as ``sirt dose`` does; each configuration runs in
a fresh subprocess, whose peak RSS over the call is measured (``malloc_trim``, reset of the kernel's
high-water mark through ``/proc/self/clear_refs``, then VmHWM after − VmRSS before reading the
inputs). The ratio is to the input PET as float32. Target: below 4.

Results go to ``bench/results/memory.json``.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "memory.json"
SPACING_MM = (2.34375, 2.34375, 2.78)
TARGET_RATIO = 4.0


def _status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def write_case(folder: Path, shape: tuple[int, int, int]) -> tuple[Path, Path]:
    nz, ny, nx = shape
    rng = np.random.default_rng(0)
    z, y, x = np.ogrid[:nz, :ny, :nx]
    liver = ((z - nz / 2) / (0.35 * nz)) ** 2 + ((y - ny / 2) / (0.3 * ny)) ** 2 + ((x - nx / 2) / (0.3 * nx)) ** 2 <= 1
    tumour = ((z - nz / 2) / (0.1 * nz)) ** 2 + ((y - ny / 2) / (0.1 * ny)) ** 2 + ((x - nx / 2) / (0.1 * nx)) ** 2 <= 1
    activity = np.where(liver, 2e4, 100.0).astype(np.float32) + np.where(tumour, 2e5, 0).astype(np.float32)
    activity *= rng.uniform(0.8, 1.2, size=shape).astype(np.float32)
    labels = liver.astype(np.uint8) + tumour.astype(np.uint8)  # 1 liver, 2 tumour (inside the liver)
    paths = folder / "pet.nrrd", folder / "labels.nrrd"
    for array, path in ((activity, paths[0]), (labels, paths[1])):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(SPACING_MM)
        sitk.WriteImage(image, str(path))
    return paths


def child(pet: str, labels: str, method: str, bed: bool, command: bool) -> dict:
    """``compute_dose`` on the inputs read from disk, or (``command``) ``sirt dose``'s ``run_dose`` writing into a
    new folder beside them."""
    from SIRTDosimetryLib.cli.dose_command import run_dose
    from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration
    from SIRTDosimetryLib.dose.engine import DoseParameters, compute_dose
    from SIRTDosimetryLib.dose.radiobiology import PRESETS
    from SIRTDosimetryLib.io.segmentations import read_segmentation
    from SIRTDosimetryLib.io.volumes import read_activity_image
    # Modules the engine imports on first use: loaded before the measurement, which is of data only.
    import scipy.fft  # noqa: F401
    import scipy.sparse  # noqa: F401
    from SIRTDosimetryLib.dose import kernels, vsv  # noqa: F401

    params = DoseParameters(
        AbsoluteCalibration("bq_per_ml"), method=method,
        radiobiology={"liver": PRESETS["normal_liver"], "tumour": PRESETS["tumour"]} if bed else {},
    )
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_bytes("VmRSS")
    started = time.perf_counter()
    names = {1: "liver", 2: "tumour"}
    if command:
        result, _ = run_dose(Path(pet), Path(labels), params, Path(pet).parent / f"out-{os.getpid()}", label_names=names)
    else:
        result = compute_dose(read_activity_image(pet, "bq_per_ml"), read_segmentation(labels, names), params)
    seconds = time.perf_counter() - started
    peak = _status_bytes("VmHWM") - before
    del result
    return {"peak_extra_bytes": peak, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(400, 512, 512), metavar=("Z", "Y", "X"))
    parser.add_argument("--method", choices=("vsv", "ldm"), default="vsv")
    parser.add_argument("--no-bed", action="store_true")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        pet, labels, method, bed, command = args.child
        print(json.dumps(child(pet, labels, method, bed == "1", command == "1")))
        return
    shape = tuple(args.shape)
    input_bytes = int(np.prod(shape)) * 4
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        pet, labels = write_case(Path(folder), shape)
        configurations = [("compute_dose", False)] + ([] if args.no_bed else [("compute_dose", True), ("sirt dose", True)])
        for what, bed in configurations:
            flags = ["1" if bed else "0", "1" if what == "sirt dose" else "0"]
            out = subprocess.run([sys.executable, __file__, "--child", str(pet), str(labels), args.method, *flags],
                                 capture_output=True, text=True, check=True, env=os.environ)
            measured = json.loads(out.stdout.strip().splitlines()[-1])
            ratio = measured["peak_extra_bytes"] / input_bytes
            runs.append({"measured": what, "method": args.method, "bed": bed, **measured, "ratio_to_input": ratio,
                         "meets_target": ratio < TARGET_RATIO})
            print(f"{what} {args.method} bed={bed}: peak {measured['peak_extra_bytes'] / 2**20:.0f} MiB = {ratio:.2f} x input "
                  f"({input_bytes / 2**20:.0f} MiB), {measured['seconds']:.1f} s")
    report = {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "shape_zyx": shape, "input_float32_bytes": input_bytes, "target_ratio": TARGET_RATIO, "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
