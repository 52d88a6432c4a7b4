"""``sirt register``: elastix registration of one case, with the contour carried over and a QA record."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..registration import DEFAULT_MIN_DICE, PRESETS, TRANSFORM_KINDS, QAGate, RegistrationSettings, register_case

EXIT_GATE_FAILED = 1
"""Exit code when the outputs were written but the registration failed its QA gate."""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "register",
        help="register a moving image (and its contours) onto a fixed image with elastix, with QA",
        description="Register a moving image onto a fixed one with elastix (itk-elastix); write the transform (Slicer-readable), "
        "the resampled image, the contours carried onto the fixed grid, a QA record (Dice, mean surface distance, Jacobian) "
        "and a checkerboard picture. Exit code 1 when the QA gate fails, 2 for bad input.",
    )
    p.add_argument("--fixed", required=True, type=Path, help="fixed image (its grid receives the results): file, or PET/SPECT DICOM folder")
    p.add_argument("--moving", required=True, type=Path, help="moving image (emission, CT or MRI): file, or PET/SPECT DICOM folder")
    p.add_argument("--output", required=True, type=Path, help="output folder")
    p.add_argument("--transform", choices=TRANSFORM_KINDS, default="rigid", help="transform model (default rigid)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="spect",
                   help="modality preset: " + "; ".join(f"{k}: {v.description}" for k, v in PRESETS.items()))
    p.add_argument("--moving-segmentation", type=Path, help="contours on the moving image, carried onto the fixed grid")
    p.add_argument("--reference-segmentation", type=Path, help="contours drawn on the fixed side: the QA reference")
    p.add_argument("--fixed-ct", type=Path, help="CT of the fixed hybrid scan: register the CTs, apply to the moving image")
    p.add_argument("--moving-ct", type=Path, help="CT of the moving hybrid scan (with --fixed-ct)")
    p.add_argument("--qa-segment", default="liver", help="segment compared with the reference (default liver)")
    p.add_argument("--mask-segment", help="restrict the metric to this segment (+10 mm) of the contours, e.g. liver")
    p.add_argument("--min-dice", type=float, default=DEFAULT_MIN_DICE, help=f"QA gate on the Dice of --qa-segment (default {DEFAULT_MIN_DICE})")
    p.add_argument("--max-surface-distance-mm", type=float, help="QA gate on the mean surface distance (default none)")
    p.add_argument("--iterations", type=int, default=RegistrationSettings.iterations, help="optimiser iterations per resolution")
    p.add_argument("--resolutions", type=int, default=RegistrationSettings.resolutions, help="pyramid levels")
    p.add_argument("--grid-spacing-mm", type=float, help="B-spline control-point spacing (deformable; default: the preset's)")
    p.add_argument("--threads", type=int, help="elastix threads (default all cores)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in the output folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = RegistrationSettings(
        transform=args.transform, preset=args.preset, resolutions=args.resolutions, iterations=args.iterations,
        bspline_grid_spacing_mm=args.grid_spacing_mm, threads=args.threads,
    )
    result = register_case(
        args.fixed, args.moving, args.output,
        moving_segmentation=args.moving_segmentation, reference_segmentation=args.reference_segmentation,
        fixed_ct=args.fixed_ct, moving_ct=args.moving_ct, settings=settings,
        gate=QAGate(args.min_dice, args.max_surface_distance_mm), qa_segment=args.qa_segment,
        mask_segment=args.mask_segment, overwrite=args.overwrite,
    )
    if result.agreement is not None:
        a = result.agreement
        distance = f"{a.mean_surface_distance_mm:.2f} mm" if a.mean_surface_distance_mm is not None else "- (carried contour empty)"
        print(f"{a.segment}: Dice {a.dice:.3f}, mean surface distance {distance} "
              f"(carried {a.carried_volume_ml:.1f} mL, reference {a.reference_volume_ml:.1f} mL)")
    if result.jacobian is not None:
        j = result.jacobian
        print(f"Jacobian determinant {j.minimum:.3f} to {j.maximum:.3f}" + (f", folds in {j.folding_voxels} voxels" if j.folds else ""))
    print(f"QA: {result.verdict.status}" + "".join(f"\n  {reason}" for reason in result.verdict.reasons))
    print(f"wrote {args.output} in {result.elapsed_s:.1f} s")
    return EXIT_GATE_FAILED if result.verdict.status == "fail" else 0
