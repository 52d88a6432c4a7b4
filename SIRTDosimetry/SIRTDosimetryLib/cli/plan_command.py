"""``sirt plan``: pre-treatment activity planning → plan.json with every input and limit used.

Methods: ``partition`` (MIRD partition model, from numbers and/or a 99mTc-MAA SPECT with its
segmentation), ``single-compartment`` (MIRD, glass) and ``bsa`` (resin). With ``--maa-dose`` the
MAA-predicted dose map is scaled to the planned activity and its dose-volume constraints are
reported (voxel-based planning). Limit violations are printed as warnings and recorded in
plan.json; the activity is never clipped.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..analysis.constraints import lung_shunt_fraction_planar
from ..vocabulary import NORMAL_PERFUSED_NAME, WHOLE_NORMAL_NAME
from ..analysis.derived import DEFAULT_TUMOUR_PATTERNS, AnalysisStructure, resolve_names, subtract, union
from ..analysis.planning import (
    GLASS_PERFUSED_TARGET_RANGE_GY,
    MICROSPHERE_LIMITS,
    PartitionInputs,
    VoxelPlanner,
    bsa_dubois_m2,
    check_limits,
    limits_for,
    measure_maa,
    partition_doses,
    plan_partition,
    resin_bsa_plan,
    single_compartment_activity_gbq,
)
from ..errors import SIRTInputError
from ..io.segmentations import read_segmentation
from ..io.volumes import read_image, voxel_volume_ml
from ..io.writers import commit_outputs, write_json
from ..nuclides import DENSITY_LUNG_G_PER_ML, DENSITY_SOFT_TISSUE_G_PER_ML, Y90
from ..provenance import provenance, to_jsonable
from ..structures import PARTIAL_VOXEL_MODES, map_segments
from ..dose.parameters import to_number
from .arguments import label_names

SCHEMA = "slicer-sirt/plan/1"
METHODS = ("partition", "single-compartment", "bsa")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "plan",
        help="activity planning: partition model, single compartment, resin BSA, voxel-based",
        description="Plan the 90Y activity from 99mTc-MAA (partition model, MIRD single compartment, resin BSA) and "
        "report the resulting doses, the maximum activity within the limits and any limit violated.",
    )
    p.add_argument("--output", required=True, type=Path, help="output folder (plan.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing plan.json")
    p.add_argument("--method", choices=METHODS, default="partition", help="planning method (default partition)")
    p.add_argument("--microspheres", choices=sorted(MICROSPHERE_LIMITS), required=True, help="glass or resin: sets the default limits")
    n = p.add_argument_group("numbers (override what is measured on the MAA)")
    n.add_argument("--tnr", type=float, help="tumour-to-normal ratio")
    n.add_argument("--lsf", type=float, help="lung shunt fraction, 0-1")
    n.add_argument("--lsf-planar", metavar="LUNG_ANT,LUNG_POST,LIVER_ANT,LIVER_POST", help="LSF from planar counts (geometric means)")
    n.add_argument("--tumour-mass-g", type=float)
    n.add_argument("--tumour-volume-ml", type=float)
    n.add_argument("--normal-mass-g", type=float, help="normal perfused liver mass")
    n.add_argument("--normal-volume-ml", type=float, help="normal perfused liver volume")
    n.add_argument("--whole-normal-mass-g", type=float, help="whole normal liver mass (whole normal liver dose)")
    n.add_argument("--whole-normal-volume-ml", type=float)
    n.add_argument("--perfused-mass-g", type=float, help="perfused liver mass (single compartment)")
    n.add_argument("--perfused-volume-ml", type=float)
    n.add_argument("--lung-mass-g", type=float, help="lung mass (1000 g is the conventional assumption)")
    n.add_argument("--lung-volume-ml", type=float)
    n.add_argument("--residual-fraction", type=float, default=0.0, help="activity left in vial and lines, 0-1 (default 0)")
    n.add_argument("--density", type=float, default=DENSITY_SOFT_TISSUE_G_PER_ML, help="liver and tumour density g/mL (default 1.03)")
    n.add_argument("--lung-density", type=float, default=DENSITY_LUNG_G_PER_ML, help="lung density g/mL (default 0.3)")
    m = p.add_argument_group("99mTc-MAA SPECT")
    m.add_argument("--spect", type=Path, help="MAA SPECT (counts) for volumes, TNR and LSF")
    m.add_argument("--segmentation", type=Path, help="segmentation for --spect / --maa-dose")
    m.add_argument("--labels", action="append", default=[], metavar="VALUE=NAME", help="name a labelmap label (repeatable)")
    m.add_argument("--tumours", action="append", metavar="PATTERN", help="tumour segments (names or globs; default names containing tumor/tumour/lesion)")
    m.add_argument("--perfused", metavar="SEGMENT", help="perfused volume: normal perfused liver = SEGMENT - tumours")
    m.add_argument("--normal-perfused", metavar="SEGMENT", help="a segment that already is the normal perfused liver")
    m.add_argument("--liver", metavar="SEGMENT", help="whole liver: whole normal liver = SEGMENT - tumours; liver counts for the LSF")
    m.add_argument("--lung", metavar="SEGMENT", help="lungs: lung mass (volume x lung density) and LSF from counts")
    m.add_argument("--partial-voxels", choices=PARTIAL_VOXEL_MODES, default="fraction")
    m.add_argument("--clamp-negative", action="store_true", help="set negative SPECT voxels to zero instead of stopping")
    t = p.add_argument_group("prescription (one at most)")
    t.add_argument("--activity-gbq", type=float, help="administered activity to evaluate")
    t.add_argument("--target-tumour-dose-gy", type=float, help="partition: activity for this mean tumour dose")
    t.add_argument("--target-normal-dose-gy", type=float, help="partition: activity for this normal perfused liver dose")
    t.add_argument("--target-perfused-dose-gy", type=float, help="single compartment: dose to the perfused liver (glass: 80-150 Gy)")
    limits = p.add_argument_group("limits (defaults by microsphere type)")
    limits.add_argument("--lung-limit-gy", type=float, help="lung dose per treatment (default 30)")
    limits.add_argument("--lung-cumulative-limit-gy", type=float, help="cumulative lung dose (default 50)")
    limits.add_argument("--previous-lung-dose-gy", type=float, help="lung dose of earlier treatments (default 0)")
    limits.add_argument("--npl-limit-gy", type=float, help="normal perfused liver (resin default 40)")
    limits.add_argument("--wnl-limit-gy", type=float, help="whole normal liver (glass default 75)")
    b = p.add_argument_group("resin BSA method")
    b.add_argument("--height-cm", type=float)
    b.add_argument("--weight-kg", type=float)
    b.add_argument("--bsa-m2", type=float, help="body surface area (instead of height and weight)")
    b.add_argument("--treated-fraction", type=float, default=1.0, help="fraction of the liver volume treated (default 1)")
    v = p.add_argument_group("voxel-based planning")
    v.add_argument("--maa-dose", type=Path, help="MAA-predicted dose map (e.g. 'sirt dose --mode relative') to scale to the planned activity")
    v.add_argument("--maa-reference-activity-gbq", type=float, help="the activity that --maa-dose was computed for")
    p.set_defaults(run=run)


def _mass(mass_g, volume_ml, density, what, origin, key):
    if mass_g is not None and volume_ml is not None:
        raise SIRTInputError(f"give the {what} mass or volume, not both")
    if mass_g is not None:
        origin[key] = "given (g)"
        return mass_g
    if volume_ml is not None:
        origin[key] = f"given volume x {density} g/mL"
        return volume_ml * density
    return None


def _measured(maa, args, origin):
    """Fill missing numbers from the MAA measurements; record where each came from."""
    values = {}
    if maa is None:
        return values
    for key, volume, density in (
        ("tumour_mass_g", maa.tumour_volume_ml, args.density),
        ("normal_mass_g", maa.normal_perfused_volume_ml, args.density),
        ("whole_normal_mass_g", maa.whole_normal_volume_ml, args.density),
        ("lung_mass_g", maa.lung_volume_ml, args.lung_density),
    ):
        if volume is not None:
            values[key] = volume * density
            origin[key] = f"MAA segmentation: {volume:.1f} mL x {density} g/mL"
    if maa.tnr is not None:
        values["tnr"], origin["tnr"] = maa.tnr, "MAA counts: (C_T/V_T)/(C_NPL/V_NPL)"
    if maa.lsf is not None:
        values["lsf"], origin["lsf"] = maa.lsf, "MAA SPECT counts: " + maa.definitions.get("lsf", "")
    return values


def _voxel_section(args, segmentation, maa_tumours, activities: dict[str, float]) -> dict:
    if args.maa_reference_activity_gbq is None:
        raise SIRTInputError("--maa-dose needs --maa-reference-activity-gbq (the activity the dose map was computed for)")
    if segmentation is None:
        raise SIRTInputError("--maa-dose needs --segmentation")
    dose_image = read_image(args.maa_dose)
    dose = sitk.GetArrayFromImage(dose_image).astype(np.float64)
    names = segmentation.names
    tumours = maa_tumours if maa_tumours is not None else _tumour_names(args, names)
    wanted = list(dict.fromkeys([*names]))
    mapped = map_segments(segmentation, dose_image, wanted, args.partial_voxels)
    structures = [AnalysisStructure(n, s.weights, "tumour" if n in tumours else "other", "segment") for n, s in mapped.items()]
    tumour_w = union(*(mapped[t].weights for t in tumours)) if tumours else None
    if args.perfused and tumour_w is not None:
        base = resolve_names([args.perfused], names, "segment")[0]
        structures.append(AnalysisStructure(NORMAL_PERFUSED_NAME, subtract(mapped[base].weights, tumour_w), "normal_liver", f"{base} - tumours", source="derived"))
    if args.liver and tumour_w is not None:
        base = resolve_names([args.liver], names, "segment")[0]
        structures.append(AnalysisStructure(WHOLE_NORMAL_NAME, subtract(mapped[base].weights, tumour_w), "normal_liver", f"{base} - tumours", source="derived"))
    planner = VoxelPlanner(dose, args.maa_reference_activity_gbq, structures, voxel_volume_ml(dose_image.GetSpacing()))
    return {
        "maa_dose": str(args.maa_dose),
        "reference_activity_gbq": args.maa_reference_activity_gbq,
        "note": "dose scales linearly with activity: D(A) = D_ref A / A_ref",
        "at_activity": {label: {"activity_gbq": a, "structures": planner.features(a)} for label, a in activities.items() if a is not None},
    }


def _tumour_names(args, names):
    if args.tumours:
        return resolve_names(args.tumours, names, "tumour segment")
    from ..analysis.derived import match_names

    return [n for n in names if any(match_names(p, [n]) for p in DEFAULT_TUMOUR_PATTERNS)]


def run_plan(args: argparse.Namespace) -> dict:
    origin: dict[str, str] = {}
    warnings: list[str] = []
    labels = label_names(args.labels)
    segmentation = read_segmentation(args.segmentation, labels) if args.segmentation else None
    maa = None
    if args.spect:
        if segmentation is None:
            raise SIRTInputError("--spect needs --segmentation")
        maa = measure_maa(
            read_image(args.spect), segmentation, args.tumours or DEFAULT_TUMOUR_PATTERNS, args.perfused, args.normal_perfused,
            args.liver, args.lung, args.partial_voxels, args.clamp_negative, tumour_patterns_given=bool(args.tumours),
        )
        warnings.extend(maa.warnings)
    elif any(x for x in (args.perfused, args.normal_perfused, args.liver, args.lung)) and not args.maa_dose:
        raise SIRTInputError("segment options (--perfused, --liver, --lung, ...) need --spect")
    measured = _measured(maa, args, origin)

    lsf = args.lsf
    if args.lsf_planar:
        if lsf is not None:
            raise SIRTInputError("give --lsf or --lsf-planar, not both")
        parts = [x.strip() for x in args.lsf_planar.split(",")]
        if len(parts) != 4:
            raise SIRTInputError("--lsf-planar needs four counts: lung anterior, lung posterior, liver anterior, liver posterior")
        lsf = lung_shunt_fraction_planar(*(to_number(x, "planar counts") for x in parts))
        origin["lsf"] = "planar geometric means"
    elif lsf is not None:
        origin["lsf"] = "given"
    if lsf is None:
        lsf = measured.get("lsf")
    if args.tnr is not None:
        origin["tnr"] = "given"

    def pick(key, given_mass, given_volume, density, what):
        value = _mass(given_mass, given_volume, density, what, origin, key)
        return value if value is not None else measured.get(key)

    tumour_mass = pick("tumour_mass_g", args.tumour_mass_g, args.tumour_volume_ml, args.density, "tumour")
    normal_mass = pick("normal_mass_g", args.normal_mass_g, args.normal_volume_ml, args.density, "normal perfused liver")
    whole_mass = pick("whole_normal_mass_g", args.whole_normal_mass_g, args.whole_normal_volume_ml, args.density, "whole normal liver")
    lung_mass = pick("lung_mass_g", args.lung_mass_g, args.lung_volume_ml, args.lung_density, "lung")
    perfused_mass = _mass(args.perfused_mass_g, args.perfused_volume_ml, args.density, "perfused liver", origin, "perfused_mass_g")
    tnr = args.tnr if args.tnr is not None else measured.get("tnr")

    limits = limits_for(
        args.microspheres,
        lung_single_gy=args.lung_limit_gy,
        lung_cumulative_gy=args.lung_cumulative_limit_gy,
        previous_lung_dose_gy=args.previous_lung_dose_gy,
        normal_perfused_liver_gy=args.npl_limit_gy,
        whole_normal_liver_gy=args.wnl_limit_gy,
    )
    plan: dict = {"schema": SCHEMA, "method": args.method, "microspheres": args.microspheres}
    activities: dict[str, float | None] = {}

    if args.method == "partition":
        missing = [n for n, v in (("tumour mass", tumour_mass), ("normal perfused liver mass", normal_mass), ("TNR", tnr), ("LSF", lsf)) if v is None]
        if missing:
            raise SIRTInputError(f"the partition model needs: {', '.join(missing)} (give them, or --spect with --segmentation and segments)")
        inputs = PartitionInputs(tumour_mass, normal_mass, tnr, lsf, lung_mass, whole_mass, args.residual_fraction)
        result = plan_partition(inputs, limits, args.activity_gbq, args.target_tumour_dose_gy, args.target_normal_dose_gy)
        warnings.extend(result.warnings)
        plan |= {
            "inputs": to_jsonable(inputs),
            "limits": to_jsonable(limits) | {"lung_gy_this_treatment": limits.lung_gy},
            "prescription": result.prescription,
            "activity_gbq": result.activity_gbq,
            "doses": to_jsonable(result.doses),
            "max_activity_gbq": result.max_activity_gbq,
            "limiting_constraint": result.limiting_constraint,
            "max_activity_by_limit_gbq": result.max_activity_by_limit_gbq,
            "doses_at_max_activity": to_jsonable(result.doses_at_max_activity),
            "violations": result.violations,
            "assumptions": result.assumptions,
            "sources": result.sources,
        }
        activities = {"planned": result.activity_gbq, "maximum": result.max_activity_gbq}
    elif args.method == "single-compartment":
        if perfused_mass is None:
            if tumour_mass is not None and normal_mass is not None:
                perfused_mass = tumour_mass + normal_mass
                origin["perfused_mass_g"] = "tumour + normal perfused liver masses"
            else:
                raise SIRTInputError("single compartment needs the perfused liver mass or volume (or --spect with --perfused)")
        lsf_used = lsf or 0.0
        if lsf is None:
            warnings.append("no lung shunt fraction given: taken as 0")
        if args.target_perfused_dose_gy is not None:
            if args.activity_gbq is not None:
                raise SIRTInputError("give --activity-gbq or --target-perfused-dose-gy, not both")
            activity = single_compartment_activity_gbq(args.target_perfused_dose_gy, perfused_mass, lsf_used, args.residual_fraction)
            low, high = GLASS_PERFUSED_TARGET_RANGE_GY
            if args.microspheres == "glass" and not (low <= args.target_perfused_dose_gy <= high):
                warnings.append(f"target {args.target_perfused_dose_gy:g} Gy is outside the TheraSphere package insert range {low:g}-{high:g} Gy")
        elif args.activity_gbq is not None:
            activity = args.activity_gbq
        else:
            raise SIRTInputError("single compartment needs --target-perfused-dose-gy or --activity-gbq")
        inputs = PartitionInputs(0.0, perfused_mass, 1.0, lsf_used, lung_mass, None, args.residual_fraction)
        doses = partition_doses(inputs, activity)
        # one compartment: no normal-liver dose, so only the lung limits apply
        lung_limits = replace(limits, normal_perfused_liver_gy=None, whole_normal_liver_gy=None)
        violations = check_limits(doses, lung_limits)
        warnings.extend(f"{v['constraint']}: {v['dose_gy']:.1f} Gy exceeds the limit of {v['limit_gy']:.1f} Gy" for v in violations)
        plan |= {
            "inputs": {"perfused_mass_g": perfused_mass, "lsf": lsf_used, "residual_fraction": args.residual_fraction, "lung_mass_g": lung_mass,
                       "energy_j_per_gbq": Y90.energy_per_activity_j_per_gbq},
            "limits": to_jsonable(limits) | {"lung_gy_this_treatment": limits.lung_gy},
            "activity_gbq": activity,
            "doses": {"perfused_liver_gy": doses.perfused_liver_gy, "lung_gy": doses.lung_gy},
            "violations": violations,
            "assumptions": ["single compartment: the normal-liver limits are not applied (the model gives no normal-liver dose)"],
            "sources": ["MIRD single compartment, TheraSphere package insert (A = D M / 50; here E = 49.67 J/GBq)", *limits.sources],
        }
        activities = {"planned": activity}
    else:  # bsa
        if args.microspheres != "resin":
            raise SIRTInputError("the BSA method is for resin microspheres (--microspheres resin)")
        if args.bsa_m2 is not None:
            bsa, origin["bsa_m2"] = args.bsa_m2, "given"
        elif args.height_cm is not None and args.weight_kg is not None:
            bsa, origin["bsa_m2"] = bsa_dubois_m2(args.height_cm, args.weight_kg), "DuBois from height and weight"
        else:
            raise SIRTInputError("the BSA method needs --bsa-m2 or --height-cm and --weight-kg")
        v_t = args.tumour_volume_ml if args.tumour_volume_ml is not None else (maa.tumour_volume_ml if maa else None)
        v_n = args.whole_normal_volume_ml if args.whole_normal_volume_ml is not None else (maa.whole_normal_volume_ml if maa else None)
        if v_t is None or v_n is None:
            raise SIRTInputError("the BSA method needs the tumour volume and the whole normal liver volume (or --spect with --liver)")
        bsa_plan = resin_bsa_plan(bsa, v_t, v_n, args.treated_fraction, lsf or 0.0)
        warnings.extend(bsa_plan.warnings)
        if lsf is None:
            warnings.append("no lung shunt fraction given: no LSF reduction applied")
        plan |= {"inputs": {"height_cm": args.height_cm, "weight_kg": args.weight_kg, "tumour_volume_ml": v_t, "whole_normal_volume_ml": v_n,
                            "treated_fraction": args.treated_fraction, "lsf": lsf},
                 "bsa": to_jsonable(bsa_plan), "activity_gbq": bsa_plan.activity_gbq, "violations": [],
                 "sources": [bsa_plan.source]}
        activities = {"planned": bsa_plan.activity_gbq}
        if args.activity_gbq is not None:
            raise SIRTInputError("the BSA method computes the activity: do not give --activity-gbq")

    plan["input_origin"] = origin
    if maa is not None:
        plan["maa_measurements"] = to_jsonable(maa)
    if args.maa_dose:
        plan["voxel_based"] = _voxel_section(args, segmentation, list(maa.tumours) if maa else None, activities)
    plan["warnings"] = warnings
    inputs = {"spect": args.spect, "segmentation": args.segmentation, "maa_dose": args.maa_dose}
    plan["provenance"] = provenance(inputs, {k: v for k, v in vars(args).items() if k not in ("run", "command")})
    commit_outputs(args.output, {"plan.json": partial(write_json, plan)}, inputs=[p for p in inputs.values() if p], overwrite=args.overwrite)
    return plan


def format_plan(plan: dict) -> str:
    lines = [f"method: {plan['method']} ({plan['microspheres']} microspheres)"]
    if plan.get("activity_gbq") is not None:
        lines.append(f"activity: {plan['activity_gbq']:.3f} GBq ({plan.get('prescription', plan['method'])})")
    doses = plan.get("doses") or {}
    for key, value in doses.items():
        if key.endswith("_gy") and value is not None:
            lines.append(f"  {key:<28}{value:10.1f}")
    if plan.get("max_activity_gbq") is not None:
        lines.append(f"maximum activity within limits: {plan['max_activity_gbq']:.3f} GBq (limited by {plan['limiting_constraint']})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    plan = run_plan(args)
    print(format_plan(plan))
    for warning in plan["warnings"]:
        print(f"warning: {warning}")
    print(f"wrote {args.output / 'plan.json'}")
    return 0
