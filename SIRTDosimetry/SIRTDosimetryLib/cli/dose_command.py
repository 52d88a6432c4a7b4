"""``sirt dose``: activity image + segmentation → dose (and BED/EQD2) maps and summary.json."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

import SimpleITK as sitk

from ..dose.engine import DoseResult, compute_dose
from ..dose.kernels import KERNEL_SOURCES
from ..dose.parameters import BED_PRECEDENCES, CALIBRATION_MODES, DOSE_METHODS, DoseParameters, build_dose_parameters, name_value_pairs
from ..dose.radiobiology import PRESET_HALF_LIFE_H, PRESETS
from ..dose.report import dose_summary
from ..io.rtdose import write_rtdose
from ..io.segmentations import read_segmentation
from ..io.volumes import KNOWN_UNITS, read_activity_image, read_image
from ..io.writers import check_outputs, commit_outputs, write_image, write_json
from ..nuclides import DENSITY_SOFT_TISSUE_G_PER_ML, RADIONUCLIDES
from ..structures import PARTIAL_VOXEL_MODES
from .arguments import label_names, name_list


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "dose",
        help="absorbed dose map (LDM or VSV) with per-segment summary",
        description="Compute the absorbed dose map of a 90Y (or 166Ho) microsphere implant.",
    )
    p.add_argument("--activity", required=True, type=Path, help="activity image: NRRD/NIfTI/MHA file or DICOM folder")
    p.add_argument("--segmentation", required=True, type=Path, help="Slicer .seg.nrrd, labelmap, or DICOM RTSTRUCT/SEG (file or folder)")
    p.add_argument("--labels", action="append", default=[], metavar="VALUE=NAME", help="name a labelmap label (repeatable)")
    p.add_argument("--output", required=True, type=Path, help="output folder")
    p.add_argument("--mode", choices=CALIBRATION_MODES, required=True, help="activity calibration")
    p.add_argument("--method", choices=DOSE_METHODS, default="ldm",
                   help="dose method (default ldm); vsv-lung: range-scaled kernels for lung; mc: Monte Carlo (extra 'mc')")
    p.add_argument("--kernel", choices=KERNEL_SOURCES, default="auto", help="VSV kernel source (default auto)")
    p.add_argument("--radionuclide", choices=sorted(RADIONUCLIDES), default="y90")
    p.add_argument("--half-life-h", type=float, help=f"physical half-life in hours (default: the nuclide's, {RADIONUCLIDES['y90'].half_life_h:g} h for 90Y)")
    p.add_argument("--density", type=float, default=DENSITY_SOFT_TISSUE_G_PER_ML, help=f"tissue density g/mL (default {DENSITY_SOFT_TISSUE_G_PER_ML:g})")
    p.add_argument("--segment-density", action="append", default=[], metavar="NAME=G_PER_ML", help="density inside a segment, e.g. lungs=0.3")
    p.add_argument("--ct", type=Path, help="CT registered to the activity image, for a density per voxel")
    p.add_argument("--hu-density-table", type=Path, help="CSV hu,density_g_per_ml: the CT scanner's calibration")
    p.add_argument("--partial-voxels", choices=PARTIAL_VOXEL_MODES, default="fraction", help="how partial voxels count (default fraction)")
    p.add_argument("--segments", action="append", help="segments to report (default all): names, globs (Tumor*) or roles (@tumour); "
                   'repeatable, or comma-separated; quote a name holding a comma: --segments \'"Tumor 1,2",Liver\'')
    p.add_argument("--clamp-negative", action="store_true", help="set negative and NaN voxels to zero instead of stopping")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in the output folder")
    p.add_argument(
        "--rtdose", action="store_true",
        help="also write each map as DICOM RT Dose (dose_gy.dcm, ...), in the study and frame of reference of a DICOM activity series",
    )
    p.add_argument(
        "--scene", type=Path,
        help="also save a Slicer scene (.mrb, or .mrml + data folders) with the dose overlay, segments, tables and DVH (needs slicer-core)",
    )
    a = p.add_argument_group("absolute calibration")
    a.add_argument("--units", choices=KNOWN_UNITS, help="image units (DICOM: read from the file)")
    a.add_argument("--administration-time", type=datetime.fromisoformat, help="ISO 8601, e.g. 2024-05-02T10:30")
    a.add_argument("--scan-time", type=datetime.fromisoformat, help="ISO 8601 time the image values refer to")
    a.add_argument("--scan-after-administration-h", type=float,
                   help="hours from the implant to the time the image values refer to, instead of the two times")
    a.add_argument("--camera-factor-cps-per-mbq", type=float, help="SPECT calibration factor (counts images)")
    a.add_argument("--acquisition-duration-s", type=float, help="SPECT acquisition duration (counts images)")
    r = p.add_argument_group("relative calibration")
    r.add_argument("--administered-activity-gbq", type=float, help="activity administered (GBq); with absolute calibration only checked against the image")
    r.add_argument("--lung-mass-g", type=float, help="lung mass (g) for the partition-model lung dose with --lung-shunt-fraction (1000 g is the conventional value)")
    r.add_argument("--lung-shunt-fraction", type=float, default=0.0, help="lung shunt fraction, 0-1 (default 0)")
    r.add_argument("--residual-fraction", type=float, default=0.0, help="residual activity fraction, 0-1 (default 0)")
    r.add_argument("--calibration-voi", action="append", help="segment(s) the activity is distributed over (default liver)")
    r.add_argument("--lungs-in-voi", action="store_true", help="the calibration VOI includes the lungs")
    m = p.add_argument_group("Monte Carlo (--method mc; needs pip install 'slicer-sirt[mc]')")
    m.add_argument("--mc-decays", type=float, help="number of decays to simulate (default 1e6, or as the target needs)")
    m.add_argument("--mc-uncertainty", type=float, help="stop at this relative uncertainty in the target, e.g. 0.02")
    m.add_argument("--mc-target", help="comma-separated segments the uncertainty is measured in (default: voxels above half the maximum)")
    m.add_argument("--mc-processes", type=int, help="local worker processes (default all CPUs)")
    m.add_argument("--mc-seed", type=int, default=0, help="first PenRed seed pair, 0-1000 (default 0)")
    m.add_argument("--mc-scheduler", help="Dask scheduler address: run the batches on its workers (shared file system)")
    b = p.add_argument_group("radiobiology")
    b.add_argument(
        "--bed-params",
        action="append",
        default=[],
        metavar="NAME=PRESET|AB,TREP",
        help=f"LQ parameters for segments (a name, a glob such as Tumor*, or @tumour): a preset ({', '.join(PRESETS)}) or alpha/beta (Gy),T_rep (h); "
        "writes BED and EQD2 maps",
    )
    b.add_argument(
        "--bed-precedence", choices=BED_PRECEDENCES, default="smallest",
        help="where segments with LQ parameters overlap: the smallest segment wins (default: a tumour keeps its own "
        "parameters inside its liver) or the last --bed-params entry",
    )
    p.set_defaults(run=run)


def parameters_from_args(args: argparse.Namespace) -> DoseParameters:
    """The ``sirt dose`` options through the one dose-parameter builder."""
    return build_dose_parameters(
        args.mode,
        units=args.units,
        administration_time=args.administration_time,
        scan_time=args.scan_time,
        scan_after_administration_h=args.scan_after_administration_h,
        camera_factor_cps_per_mbq=args.camera_factor_cps_per_mbq,
        acquisition_duration_s=args.acquisition_duration_s,
        administered_activity_gbq=args.administered_activity_gbq,
        calibration_voi=args.calibration_voi,
        lung_shunt_fraction=args.lung_shunt_fraction,
        residual_fraction=args.residual_fraction,
        lungs_in_voi=args.lungs_in_voi,
        method=args.method,
        kernel=args.kernel,
        radionuclide=args.radionuclide,
        half_life_h=args.half_life_h,
        density_g_per_ml=args.density,
        segment_densities=args.segment_density,
        partial_voxels=args.partial_voxels,
        clamp_negative=args.clamp_negative,
        radiobiology=args.bed_params,
        bed_precedence=args.bed_precedence,
        hu_density_table=args.hu_density_table,
        segments=name_list(args.segments, "--segments") if args.segments else None,
        lung_mass_g=args.lung_mass_g,
        monte_carlo={"decays": args.mc_decays, "target_uncertainty": args.mc_uncertainty, "target_segments": args.mc_target,
                     "processes": args.mc_processes, "seed": args.mc_seed, "scheduler": args.mc_scheduler} if args.method == "mc" else None,
    )


def output_names(params: DoseParameters, rtdose: bool = False) -> list[str]:
    """The files ``sirt dose`` writes with these parameters (``rtdose``: the DICOM RT Dose files too)."""
    maps = ["dose_gy", *(("bed_gy", "eqd2_gy") if params.radiobiology else ())]
    uncertainty = ["dose_uncertainty_rel.nrrd"] if params.method == "mc" else []
    return [*(f"{m}.nrrd" for m in maps), *uncertainty, "summary.json", *((f"{m}.dcm" for m in maps) if rtdose else ())]


def run_dose(
    activity_path: Path,
    segmentation_path: Path,
    params: DoseParameters,
    output: Path,
    units: str | None = None,
    label_names: dict[int, str] | None = None,
    overwrite: bool = False,
    ct_path: Path | None = None,
    rtdose: bool = False,
) -> tuple[DoseResult, dict]:
    """Read, compute and write; returns the result and the summary written.

    ``rtdose`` also writes every map as a DICOM RT Dose file (``<map>.dcm``).
    """
    input_paths = [p for p in (activity_path, segmentation_path, ct_path) if p is not None]
    check_outputs(output, output_names(params, rtdose), input_paths, overwrite)  # before the work
    activity = read_activity_image(activity_path, units)
    identity = activity.dicom.identity if activity.dicom is not None else None
    ct = read_image(ct_path) if ct_path is not None else None
    segmentation = read_segmentation(segmentation_path, label_names)
    result = compute_dose(activity, segmentation, params, ct)
    del activity, ct, segmentation  # their buffers are freed before the maps are written
    # each map is got when its file is written: EQD2 is made from the BED map then, and dropped after
    maps: dict[str, Callable[[], sitk.Image]] = {"dose_gy": lambda: result.dose_gy}
    if result.bed_gy is not None:
        maps |= {"bed_gy": lambda: result.bed_gy, "eqd2_gy": lambda: result.eqd2_gy}
    outputs = {name: f"{name}.nrrd" for name in maps}
    if result.uncertainty_rel is not None:
        outputs["dose_uncertainty_rel"] = "dose_uncertainty_rel.nrrd"
    if rtdose:
        outputs |= {f"{name}_rtdose": f"{name}.dcm" for name in maps}
    inputs = {"activity": activity_path, "segmentation": segmentation_path, "ct": ct_path,
              "hu_density_table": params.hu_density_table.source if params.hu_density_table else None}
    summary = dose_summary(result, params, inputs, outputs)
    writers = {f"{name}.nrrd": _writer(write_image, image) for name, image in maps.items()}
    writers["summary.json"] = partial(write_json, summary)
    if result.uncertainty_rel is not None:
        writers["dose_uncertainty_rel.nrrd"] = partial(write_image, result.uncertainty_rel)
    if rtdose:
        writers |= {f"{name}.dcm": _writer(write_rtdose, image, quantity=name, identity=identity) for name, image in maps.items()}
    commit_outputs(output, writers, inputs=[p for p in inputs.values() if p is not None], overwrite=overwrite)
    return result, summary


def _writer(write: Callable[..., None], image: Callable[[], sitk.Image], **options) -> Callable[[Path], None]:
    """A function writing ``image()`` to a path with ``write``: the image is got only when written."""
    return lambda path: write(image(), path, **options)


def run(args: argparse.Namespace) -> int:
    params = parameters_from_args(args)
    labels = label_names(args.labels)
    if args.scene:  # fail before computing when the scene cannot be written
        from ..mrml.export import check_scene_path, save_dose_scene  # needs slicer-core: imported only when asked for

        check_scene_path(args.scene, args.overwrite, inputs=[args.activity, args.segmentation, args.ct])
    result, summary = run_dose(
        args.activity, args.segmentation, params, args.output, args.units, labels, args.overwrite, args.ct, args.rtdose
    )
    if args.scene:
        save_dose_scene(result, args.activity, args.segmentation, args.scene, params=params, summary=summary,
                        units=args.units, label_names=labels, ct=args.ct, overwrite=args.overwrite)
    print(format_table(result))
    print(f"note: {result.lung_dose_note}")
    for warning in [*preset_half_life_warnings(args.bed_params, result.nuclide.half_life_h), *result.warnings]:
        print(f"warning: {warning}")
    if args.rtdose and not args.activity.is_dir():
        print("note: the activity is not a DICOM series, so the RT Dose files have a new study and frame of reference "
              "and no patient identity; 'sirt export --reference SERIES' places them with the source images")
    print(f"wrote {args.output}")
    return 0


def preset_half_life_warnings(bed_params: list[str], half_life_h: float) -> list[str]:
    """A preset published with another half-life than the one used (e.g. 64.2 h vs 64.1 h)."""
    used = {value for _, value in name_value_pairs(bed_params, "--bed-params") if value in PRESET_HALF_LIFE_H}
    return [
        f"LQ preset {name!r} was published with a half-life of {PRESET_HALF_LIFE_H[name]} h; this run uses {half_life_h} h "
        f"(pass --half-life-h {PRESET_HALF_LIFE_H[name]} to reproduce the published values)"
        for name in sorted(used)
        if abs(PRESET_HALF_LIFE_H[name] - half_life_h) > 1e-9
    ]


def format_table(result: DoseResult) -> str:
    header = f"{'segment':<22}{'volume_ml':>11}{'activity_mbq':>14}{'mean_gy':>10}{'max_gy':>10}{'mean_bed_gy':>13}"
    rows = [header]
    for s in result.segments:
        bed = f"{s.bed_mean_gy:13.1f}" if s.bed_mean_gy is not None else f"{'-':>13}"
        rows.append(f"{s.name[:21]:<22}{s.volume_ml:11.1f}{s.activity_bq / 1e6:14.1f}{s.dose_mean_gy:10.1f}{s.dose_max_gy:10.1f}{bed}")
    return "\n".join(rows)
