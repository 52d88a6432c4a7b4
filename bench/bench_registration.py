"""Benchmark of ``sirt register`` (``SIRTDosimetryLib.registration.register_case``). Not a test.

    python bench/bench_registration.py           # default settings (3 resolutions, 250 iterations)
    python bench/bench_registration.py --quick   # the reduced settings the tests use

Cases: the bundled MAA SPECT of patient 2 (128×128×160, 4.42×4.42×2.5 mm) and its liver contour
(CT grid coarsened to 1.95 mm in-plane), moved by a rigid 10 mm / 5° motion and by a smooth
Gaussian deformation (``SIRTDosimetryLib.testing.registration``), and the rigid motion again with
the moving image's contrast inverted (a different "modality" for mutual information); the original
is the fixed scan and the reference contour. Each case: wall time of ``register_case`` (read, elastix, resampling,
QA, writing) with a liver mask, its process CPU time, and the QA numbers (liver Dice, mean surface
distance, Jacobian range). The first registration of a process also pays the ``itk`` import,
measured separately. The machine's load average is recorded: other work slows every case.

Results go to ``bench/results/registration.json``; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from SIRTDosimetryLib.provenance import software_versions
from SIRTDosimetryLib.registration import RegistrationSettings, register_case
from SIRTDosimetryLib.testing.registration import make_moved_case

RESULTS = Path(__file__).resolve().parent / "results" / "registration.json"
CASES = (("rigid", "rigid", False), ("deformable", "deformable", False), ("rigid, inverted contrast", "rigid", True))
"""(name, motion, moving image with inverted contrast): the last one checks mutual information across "modalities"."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tests' reduced settings")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.perf_counter()
    import itk  # noqa: F401  (lazy: the first attribute access loads the wrapped modules)

    itk.ElastixRegistrationMethod  # noqa: B018
    import_s = time.perf_counter() - started
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-registration-") as folder:
        for name, motion, inverted in CASES:
            case = make_moved_case(Path(folder) / name, motion, inverted_contrast=inverted)
            if args.quick:
                settings = RegistrationSettings(motion, "spect", resolutions=2 if motion == "deformable" else 3,
                                                iterations=80 if motion == "deformable" else 100,
                                                spatial_samples=2000 if motion == "deformable" else 3000, threads=args.threads)
            else:
                settings = RegistrationSettings(motion, "spect", threads=args.threads)
            cpu, wall = time.process_time(), time.perf_counter()
            result = register_case(case.fixed, case.moving, Path(folder) / name / "out", moving_segmentation=case.moving_segmentation,
                                   reference_segmentation=case.reference_segmentation, settings=settings, mask_segment="liver")
            rows.append({
                "case": name,
                "settings": {"resolutions": settings.resolutions, "iterations": settings.iterations,
                             "spatial_samples": settings.spatial_samples, "threads": settings.threads},
                "wall_s": round(time.perf_counter() - wall, 2),
                "cpu_s": round(time.process_time() - cpu, 2),
                "liver_dice": round(result.agreement.dice, 4),
                "liver_mean_surface_distance_mm": round(result.agreement.mean_surface_distance_mm, 3),
                "jacobian_min": round(result.jacobian.minimum, 4) if result.jacobian else None,
                "jacobian_max": round(result.jacobian.maximum, 4) if result.jacobian else None,
                "verdict": result.verdict.status,
            })
    report = {
        "itk_import_s": round(import_s, 2),
        "cases": rows,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "software": software_versions(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"itk import: {import_s:.1f} s\n")
    print("| case | wall s | CPU s | liver Dice | MSD mm | Jacobian | QA |\n|---|---|---|---|---|---|---|")
    for r in rows:
        jac = f"{r['jacobian_min']}–{r['jacobian_max']}" if r["jacobian_min"] is not None else "–"
        print(f"| {r['case']} | {r['wall_s']} | {r['cpu_s']} | {r['liver_dice']} | {r['liver_mean_surface_distance_mm']} | {jac} | {r['verdict']} |")


if __name__ == "__main__":
    main()
