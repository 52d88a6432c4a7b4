"""``sirt dvh``: dose (and BED) map + segmentation → DVH curves, constraints table, plots.

Outputs (written together or not at all, see ``io.writers.commit_outputs``):
``dvh.csv`` (long format: structure, quantity, level_gy, cumulative and differential volumes),
``constraints.csv`` and ``constraints.json`` (one row/object per structure; names in
docs/dose-volume.md), ``constraints_wide.csv`` (one row for the patient: ``<structure>_<constraint>``), ``dvh_dose.png`` (and ``dvh_bed.png``), ``lesions.csv`` with ``--lesions``,
and with ``--planned-dose``: ``dose_difference_gy.nrrd``, ``comparison.csv``,
``isodose_dice.csv`` and ``dvh_comparison.png``.
"""

from __future__ import annotations

import argparse
import csv
from functools import partial
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..analysis.comparison import dose_difference, feature_differences, isodose_dice, resample_like, same_grid
from ..analysis.constraints import compute_constraints, constraints_table, lung_shunt_fraction_planar, wide_constraints_table
from ..analysis.derived import DEFAULT_HEALTHY_LIVER_MARGIN_MM, DEFAULT_MIN_LESION_VOLUME_ML, DEFAULT_THRESHOLD_FRACTION
from ..analysis.dose_volume import DoseVolumeOptions, DoseVolumeResult, ThresholdSpec, analyse_dose_volume, constraints_document
from ..analysis.dvh import DEFAULT_BIN_WIDTH_GY, DVH_CSV_COLUMNS, DX_METHODS, dvh_from_sample, dvh_rows
from ..analysis.plots import plot_dvhs
from ..errors import SIRTInputError
from ..io.segmentations import read_segmentation
from ..io.rtdose import read_dose_map
from ..io.volumes import read_image
from ..io.writers import commit_outputs, write_image, write_json
from ..nuclides import Y90
from ..provenance import provenance
from ..structures import PARTIAL_VOXEL_MODES
from ..dose.parameters import lq_parameters, name_value_pairs, to_number
from .arguments import label_names, name_list

SCHEMA = "slicer-sirt/dose-volume/1"
DEFAULT_ISODOSE_LEVELS_GY = (20.0, 50.0, 70.0, 100.0, 120.0, 205.0)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "dvh",
        help="DVH curves, dose-volume constraints and plots per structure",
        description="Dose-volume analysis of a dose map (e.g. from 'sirt dose') with a segmentation: DVH and BED-volume "
        "histograms, the constraints used as dosiomics features, derived structures and per-lesion tables.",
    )
    p.add_argument("--dose", required=True, type=Path, help="dose map in Gy (NRRD/NIfTI/MHA or DICOM RT Dose), e.g. dose_gy.nrrd of 'sirt dose'")
    p.add_argument("--segmentation", required=True, type=Path, help="Slicer .seg.nrrd, labelmap, or DICOM RTSTRUCT/SEG (file or folder)")
    p.add_argument("--labels", action="append", default=[], metavar="VALUE=NAME", help="name a labelmap label (repeatable)")
    p.add_argument("--output", required=True, type=Path, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in the output folder")
    p.add_argument("--segments", action="append", help="segments to analyse (default all): names, globs (Tumor*) or roles (@tumour); "
                   'repeatable, or comma-separated with a name holding a comma in double quotes')
    p.add_argument("--patient-id", help="patient id of the one-row table constraints_wide.csv (default: the dose file's folder name)")
    p.add_argument("--partial-voxels", choices=PARTIAL_VOXEL_MODES, default="fraction", help="how partial voxels count (default fraction)")
    s = p.add_argument_group("structures")
    s.add_argument("--tumours", action="append", metavar="PATTERN", help="tumour structures (names or globs, repeatable; default: names containing tumor/tumour/lesion)")
    s.add_argument("--normal-liver", action="append", default=[], metavar="PATTERN", help="further structures with the normal-liver constraints (V20..V90)")
    s.add_argument("--normal-perfused-liver", metavar="SEGMENT", help="derive 'normal perfused liver' = SEGMENT - tumours")
    s.add_argument("--whole-normal-liver", metavar="SEGMENT", help="derive 'whole normal liver' = SEGMENT - tumours")
    s.add_argument("--healthy-liver", metavar="LIVER[:MARGIN_MM]", help=f"'healthy liver' = LIVER - tumours with activity measured in LIVER + margin (default {DEFAULT_HEALTHY_LIVER_MARGIN_MM:g} mm) - tumours")
    s.add_argument("--derive", action="append", default=[], metavar="NAME=EXPR", help="derived structure, e.g. 'npl=perfused volume - Tumor*' (+ union, - difference, & intersection; spaces around operators)")
    s.add_argument("--threshold", action="append", default=[], metavar="NAME=VOI[:FRACTION]", help=f"voxels of VOI above FRACTION (0-1, default {DEFAULT_THRESHOLD_FRACTION:g}) of its maximum, on --counts if given, else on the dose")
    s.add_argument("--npl-reference", metavar="NAME", help="normal perfused liver for tnr_npl (default: the derived 'normal perfused liver')")
    s.add_argument("--wnl-reference", metavar="NAME", help="whole normal liver for tnr_wnl (default: the derived 'whole normal liver')")
    s.add_argument("--lesions", action="store_true", help="per-lesion table (lesions.csv)")
    s.add_argument("--min-lesion-volume-ml", type=float, default=DEFAULT_MIN_LESION_VOLUME_ML, help=f"lesions below this are flagged as excluded (default {DEFAULT_MIN_LESION_VOLUME_ML:g} mL)")
    s.add_argument("--split-lesions", action="store_true", help="split each tumour segment into connected components")
    b = p.add_argument_group("BED")
    b.add_argument("--bed", type=Path, help="BED map in Gy on the dose grid (e.g. bed_gy.nrrd of 'sirt dose'); NaN voxels are left out")
    b.add_argument("--bed-params", action="append", default=[], metavar="NAME=PRESET|AB,TREP", help="LQ parameters per structure (name, glob, or @tumour / @normal_liver); BED computed from the dose; the last match wins")
    b.add_argument("--half-life-h", type=float, default=Y90.half_life_h, help=f"physical half-life for BED (default {Y90.half_life_h} h, 90Y)")
    c = p.add_argument_group("counts, lung shunt, activity")
    c.add_argument("--counts", type=Path, help="counts or activity image on the dose grid (the image the dose was computed from): for TNR, thresholds and LSF")
    c.add_argument("--lsf", type=float, help="lung shunt fraction (0-1) to record")
    c.add_argument("--lsf-planar", metavar="LUNG_ANT,LUNG_POST,LIVER_ANT,LIVER_POST", help="LSF from planar counts (geometric means)")
    c.add_argument("--lsf-segments", metavar="LUNG,LIVER", help="LSF from the counts image in these two segments")
    c.add_argument("--injected-activity-gbq", type=float, help="injected activity to record (GBq)")
    o = p.add_argument_group("conventions")
    o.add_argument("--dx-method", choices=DX_METHODS, default="nearest_rank", help="how D_x is computed (default nearest_rank)")
    o.add_argument("--bin-width-gy", type=float, default=DEFAULT_BIN_WIDTH_GY, help=f"DVH curve bin width (default {DEFAULT_BIN_WIDTH_GY:g} Gy)")
    v = p.add_argument_group("planning versus verification")
    v.add_argument("--planned-dose", type=Path, help="pre-treatment (MAA) dose map, registered to --dose: writes differences, Dice and DVH overlay")
    v.add_argument("--isodose-levels", help="comma-separated levels for the isodose Dice (default " + ",".join(f"{x:g}" for x in DEFAULT_ISODOSE_LEVELS_GY) + " Gy)")
    p.set_defaults(run=run)


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


def _thresholds(items: list[str]) -> tuple[ThresholdSpec, ...]:
    specs = []
    for name, value in name_value_pairs(items, "--threshold"):
        voi, sep, fraction = value.rpartition(":")
        if not sep:
            voi, fraction = value, None
        specs.append(ThresholdSpec(name, voi, to_number(fraction, "threshold fraction") if fraction is not None else DEFAULT_THRESHOLD_FRACTION))
    return tuple(specs)


def _healthy(value: str | None) -> tuple[str | None, float]:
    if not value:
        return None, DEFAULT_HEALTHY_LIVER_MARGIN_MM
    name, sep, margin = value.rpartition(":")
    if sep:
        try:
            return name, float(margin)
        except ValueError:
            pass
    return value, DEFAULT_HEALTHY_LIVER_MARGIN_MM


def options_from_args(args: argparse.Namespace) -> DoseVolumeOptions:
    lsf = args.lsf
    if args.lsf_planar:
        if lsf is not None:
            raise SIRTInputError("give --lsf or --lsf-planar, not both")
        parts = _split(args.lsf_planar)
        if len(parts) != 4:
            raise SIRTInputError("--lsf-planar needs four counts: lung anterior, lung posterior, liver anterior, liver posterior")
        lsf = lung_shunt_fraction_planar(*(to_number(x, "planar counts") for x in parts))
    lsf_segments = None
    if args.lsf_segments:
        parts = _split(args.lsf_segments)
        if len(parts) != 2:
            raise SIRTInputError("--lsf-segments needs two segments: LUNG,LIVER")
        lsf_segments = (parts[0], parts[1])
    healthy, margin = _healthy(args.healthy_liver)
    lq = lq_parameters(args.bed_params)  # dict keeps the order given; a repeated key keeps its last value
    bed_params = tuple(lq.items())
    return DoseVolumeOptions(
        segments=tuple(name_list(args.segments, "--segments")) if args.segments else None,
        partial_voxels=args.partial_voxels,
        tumour_patterns=tuple(args.tumours) if args.tumours else DoseVolumeOptions.tumour_patterns,
        tumour_patterns_given=bool(args.tumours),
        normal_liver_patterns=tuple(args.normal_liver),
        normal_perfused_from=args.normal_perfused_liver,
        whole_normal_from=args.whole_normal_liver,
        npl_reference=args.npl_reference,
        wnl_reference=args.wnl_reference,
        healthy_liver_from=healthy,
        healthy_liver_margin_mm=margin,
        derived=tuple(name_value_pairs(args.derive, "--derive")),
        thresholds=_thresholds(args.threshold),
        bed_parameters=bed_params,
        half_life_h=args.half_life_h,
        lesions=args.lesions,
        min_lesion_volume_ml=args.min_lesion_volume_ml,
        split_lesions=args.split_lesions,
        lsf=lsf,
        lsf_segments=lsf_segments,
        injected_activity_gbq=args.injected_activity_gbq,
        dx_method=args.dx_method,
        bin_width_gy=args.bin_width_gy,
    )


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def write_csv(header, rows, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(v) for v in row])


def _lesion_table(result: DoseVolumeResult) -> tuple[list[str], list[list]]:
    header, rows = constraints_table([lr.constraints for lr in result.lesions])
    header = ["lesion", "source_structure", "component", "included", *header[4:]]
    rows = [[lr.lesion.name, lr.lesion.source_structure, lr.lesion.component, lr.lesion.included, *row[4:]] for lr, row in zip(result.lesions, rows)]
    return header, rows


def _comparison(result: DoseVolumeResult, post: np.ndarray, pre: np.ndarray, options: DoseVolumeOptions, levels: list[float]):
    pre_constraints = compute_constraints(pre, result.structures, result.voxel_volume_ml, dx_method=options.dx_method)
    post_by_name = {r.name: r for r in result.constraints}
    diff_rows, dice_rows, overlay = [], [], []
    for r in pre_constraints:
        post_features = {k: v for k, v in post_by_name[r.name].features.items() if k.startswith("dose_") or k == "volume_ml"}
        for row in feature_differences(r.features, post_features):
            diff_rows.append([r.name, row["feature"], row["pre"], row["post"], row["difference"], row["relative_difference"]])
        s = next(x for x in result.structures if x.name == r.name)
        for level, dice in isodose_dice(pre, post, s.weights, levels).items():
            dice_rows.append([r.name, level, dice])
        overlay.append(dvh_from_sample(r.samples["dose"], r.name, "dose", options.bin_width_gy))
    return diff_rows, dice_rows, overlay


ALWAYS_WRITTEN = ("dvh.csv", "constraints.csv", "constraints.json", "dvh_dose.png")


def run_dvh(args: argparse.Namespace) -> tuple[DoseVolumeResult, dict]:
    options = options_from_args(args)
    if not args.overwrite:  # fail before the work; commit_outputs checks every output again
        for name in ALWAYS_WRITTEN:
            if (args.output / name).exists():
                raise SIRTInputError(f"output {args.output / name} already exists; choose another folder or pass --overwrite")
    labels = label_names(args.labels)
    dose = read_dose_map(args.dose)
    bed = read_dose_map(args.bed) if args.bed else None
    counts = read_image(args.counts) if args.counts else None
    for image, what in ((bed, "BED"), (counts, "counts")):  # checked again in analyse_dose_volume; here before the slow read
        if image is not None and not same_grid(image, dose):
            raise SIRTInputError(f"the {what} image is not on the dose grid; give the image the dose was computed from")
    segmentation = read_segmentation(args.segmentation, labels)
    result = analyse_dose_volume(dose, segmentation, options, bed, counts)

    inputs = {"dose": args.dose, "segmentation": args.segmentation, "bed": args.bed, "counts": args.counts, "planned_dose": args.planned_dose}
    parameters = {k: v for k, v in vars(args).items() if k not in ("run", "command")}
    outputs = {"dvh": "dvh.csv", "constraints_csv": "constraints.csv", "constraints_wide_csv": "constraints_wide.csv", "constraints_json": "constraints.json", "dvh_dose_png": "dvh_dose.png"}
    writers = {}
    dose_dvhs = [d for d in result.dvhs if d.quantity == "dose"]
    bed_dvhs = [d for d in result.dvhs if d.quantity == "bed"]
    writers["dvh.csv"] = partial(write_csv, DVH_CSV_COLUMNS, dvh_rows(result.dvhs))
    writers["constraints.csv"] = partial(write_csv, *constraints_table(result.constraints))
    patient_id = args.patient_id or Path(args.dose).resolve().parent.name
    writers["constraints_wide.csv"] = partial(write_csv, *wide_constraints_table(result.constraints, patient_id, result.patient))
    writers["dvh_dose.png"] = partial(plot_dvhs, dose_dvhs, title="Dose-volume histograms")
    if bed_dvhs:
        outputs["dvh_bed_png"] = "dvh_bed.png"
        writers["dvh_bed.png"] = partial(plot_dvhs, bed_dvhs, title="BED-volume histograms (BVH)")
    if result.lesions:
        outputs["lesions"] = "lesions.csv"
        writers["lesions.csv"] = partial(write_csv, *_lesion_table(result))
    comparison = None
    if args.planned_dose:
        levels = [to_number(x, "isodose level") for x in _split(args.isodose_levels)] or list(DEFAULT_ISODOSE_LEVELS_GY)
        planned = read_image(args.planned_dose)
        resampled = not same_grid(planned, dose)
        pre_image = resample_like(planned, dose)
        pre = sitk.GetArrayFromImage(pre_image).astype(np.float64)
        post = sitk.GetArrayFromImage(dose).astype(np.float64)
        diff_rows, dice_rows, overlay = _comparison(result, post, pre, options, levels)
        if resampled:
            result.warnings.append(
                "the planned dose map is on another grid: resampled onto the dose grid with an identity transform "
                "(linear interpolation); the two maps must already be registered"
            )
        if not any(np.any(pre[s.weights > 0] > 0) for s in result.structures):
            result.warnings.append("the planned dose map is zero in every analysed structure: are the two maps registered?")
        difference = sitk.GetImageFromArray(dose_difference(pre, post))
        difference.CopyInformation(dose)
        outputs |= {"dose_difference": "dose_difference_gy.nrrd", "comparison": "comparison.csv", "isodose_dice": "isodose_dice.csv", "dvh_comparison_png": "dvh_comparison.png"}
        writers["dose_difference_gy.nrrd"] = partial(write_image, difference)
        writers["comparison.csv"] = partial(write_csv, ["structure", "feature", "planned", "delivered", "difference", "relative_difference"], diff_rows)
        writers["isodose_dice.csv"] = partial(write_csv, ["structure", "level_gy", "dice"], dice_rows)
        writers["dvh_comparison.png"] = partial(plot_dvhs, dose_dvhs, title="Delivered (solid) vs planned (dashed)", overlay=overlay, overlay_label="planned")
        comparison = {"difference": "delivered - planned (Gy)", "isodose_levels_gy": levels, "resampled_to_dose_grid": resampled}
    document = {"schema": SCHEMA, **constraints_document(result, options), "comparison": comparison, "outputs": outputs}
    document["provenance"] = provenance(inputs, parameters)
    writers["constraints.json"] = partial(write_json, document)
    input_paths = [p for p in inputs.values() if p is not None]
    commit_outputs(args.output, writers, inputs=input_paths, overwrite=args.overwrite)
    return result, document


def format_table(result: DoseVolumeResult) -> str:
    has_bed = any("bed_mean_gy" in r.features for r in result.constraints)
    header = f"{'structure':<26}{'role':<14}{'volume_ml':>10}{'mean_gy':>9}{'d70_gy':>9}{'d95_gy':>9}{'max_gy':>9}"
    header += f"{'mean_bed':>10}" if has_bed else ""
    rows = [header]
    for r in result.constraints:
        f = r.features
        line = f"{r.name[:25]:<26}{r.role:<14}{f['volume_ml']:10.1f}{f['dose_mean_gy']:9.1f}{f['dose_d70_gy']:9.1f}{f['dose_d95_gy']:9.1f}{f['dose_max_gy']:9.1f}"
        if has_bed:
            line += f"{f['bed_mean_gy']:10.1f}" if f.get("bed_mean_gy") is not None else f"{'-':>10}"
        rows.append(line)
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    result, _ = run_dvh(args)
    print(format_table(result))
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"wrote {args.output}")
    return 0
