"""Dose-volume analysis of a dose map and a segmentation: structures, constraints, DVHs, lesions.

The one entry point behind ``sirt dvh`` and the Slicer module: it maps the segments onto the dose
grid, builds the derived structures, assigns roles and computes everything on SimpleITK images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..dose.radiobiology import LQParameters, bed_gy
from ..errors import SIRTInputError
from ..io.segmentations import Segmentation
from ..io.volumes import voxel_volume_ml
from ..nuclides import Y90
from ..selection import select_segments
from ..structures import PartialVoxelMode, map_segments
from ..vocabulary import NORMAL_PERFUSED_NAME, WHOLE_NORMAL_NAME
from .comparison import same_grid
from .constraints import StructureConstraints, compute_constraints, lung_shunt_fraction, patient_features
from .derived import (
    DEFAULT_HEALTHY_LIVER_MARGIN_MM,
    DEFAULT_MIN_LESION_VOLUME_ML,
    DEFAULT_THRESHOLD_FRACTION,
    DEFAULT_TUMOUR_PATTERNS,
    AnalysisStructure,
    Lesion,
    derive,
    healthy_liver,
    lesions_from_structures,
    match_names,
    resolve_names,
    threshold_structure,
)
from .dvh import DEFAULT_BIN_WIDTH_GY, DVH, DxMethod, dvh_from_sample

HEALTHY_LIVER_NAME = "healthy liver"


@dataclass(frozen=True)
class ThresholdSpec:
    name: str
    voi: str
    fraction: float = DEFAULT_THRESHOLD_FRACTION

    def __post_init__(self) -> None:
        if not (isinstance(self.fraction, (int, float)) and 0.0 < self.fraction < 1.0):
            raise SIRTInputError(f"threshold fraction must be in (0, 1), got {self.fraction!r} for {self.name!r}")


@dataclass(frozen=True)
class DoseVolumeOptions:
    segments: tuple[str, ...] | None = None  # None: every segment
    partial_voxels: PartialVoxelMode = "fraction"
    tumour_patterns: tuple[str, ...] = DEFAULT_TUMOUR_PATTERNS
    tumour_patterns_given: bool = False  # when True, every pattern must match
    normal_liver_patterns: tuple[str, ...] = ()
    normal_perfused_from: str | None = None  # segment: "normal perfused liver" = it - tumours
    whole_normal_from: str | None = None  # segment: "whole normal liver" = it - tumours
    npl_reference: str | None = None  # TNR reference (default: the derived normal perfused liver)
    wnl_reference: str | None = None
    healthy_liver_from: str | None = None
    healthy_liver_margin_mm: float = DEFAULT_HEALTHY_LIVER_MARGIN_MM
    derived: tuple[tuple[str, str], ...] = ()  # (name, expression), evaluated in order
    thresholds: tuple[ThresholdSpec, ...] = ()
    bed_parameters: tuple[tuple[str, LQParameters], ...] = ()  # (name, glob or @role; parameters), last match wins
    half_life_h: float = Y90.half_life_h
    lesions: bool = False
    min_lesion_volume_ml: float = DEFAULT_MIN_LESION_VOLUME_ML
    split_lesions: bool = False
    lsf: float | None = None
    lsf_segments: tuple[str, str] | None = None  # (lung, liver) counted on the counts image
    injected_activity_gbq: float | None = None
    dx_method: DxMethod = "nearest_rank"
    bin_width_gy: float = DEFAULT_BIN_WIDTH_GY


@dataclass
class LesionResult:
    lesion: Lesion
    constraints: StructureConstraints


@dataclass
class DoseVolumeResult:
    structures: list[AnalysisStructure]
    constraints: list[StructureConstraints]
    dvhs: list[DVH]
    lesions: list[LesionResult]
    patient: dict
    tnr_references: dict
    voxel_volume_ml: float
    warnings: list[str] = field(default_factory=list)


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image).astype(np.float64)


def _check_on_grid(image: sitk.Image | None, reference: sitk.Image, what: str) -> np.ndarray | None:
    if image is None:
        return None
    if not same_grid(image, reference):
        raise SIRTInputError(
            f"the {what} image is not on the dose grid (size {image.GetSize()} vs {reference.GetSize()}, spacing "
            f"{tuple(round(s, 3) for s in image.GetSpacing())} vs {tuple(round(s, 3) for s in reference.GetSpacing())}); "
            "give the image the dose was computed from"
        )
    return _array(image)


def _segments_needed(options: DoseVolumeOptions, segmentation: Segmentation) -> list[str]:
    if options.segments is None:
        return list(segmentation.names)
    return select_segments(options.segments, segmentation.names, "segment")


def _lq_for(structure: AnalysisStructure, options: DoseVolumeOptions) -> LQParameters | None:
    """The last matching --bed-params entry wins (name, glob, or @role)."""
    chosen = None
    for key, lq in options.bed_parameters:
        if key.startswith("@"):
            if structure.role == key[1:]:
                chosen = lq
        elif match_names(key, [structure.name]):
            chosen = lq
    return chosen


def _bed_function(lq: LQParameters, half_life_h: float):
    """BED as a function of dose (non-decreasing for dose >= 0), applied to each structure's voxels."""
    return lambda dose: bed_gy(dose, lq, half_life_h)


def analyse_dose_volume(
    dose: sitk.Image,
    segmentation: Segmentation,
    options: DoseVolumeOptions = DoseVolumeOptions(),
    bed: sitk.Image | None = None,
    counts: sitk.Image | None = None,
) -> DoseVolumeResult:
    """Structures, constraints and DVHs for a dose map (Gy) and a segmentation."""
    if bed is not None and options.bed_parameters:
        raise SIRTInputError("give either a BED map or BED parameters, not both")
    if options.lsf_segments and counts is None:
        raise SIRTInputError("measuring the lung shunt fraction needs the counts image (--counts)")
    if options.lsf_segments and options.lsf is not None:
        raise SIRTInputError("give the lung shunt fraction or the segments to measure it from, not both")
    dose_array = _array(dose)
    if not np.all(np.isfinite(dose_array)):
        raise SIRTInputError("the dose map has NaN/infinite voxels")
    bed_array = _check_on_grid(bed, dose, "BED")
    counts_array = _check_on_grid(counts, dose, "counts")
    voxel_ml = voxel_volume_ml(dose.GetSpacing())
    spacing_zyx = dose.GetSpacing()[::-1]
    warnings: list[str] = []

    # 1. segments on the dose grid
    wanted = _segments_needed(options, segmentation)
    extra = [s for s in (options.normal_perfused_from, options.whole_normal_from, options.healthy_liver_from) if s]
    extra += [t.voi for t in options.thresholds] + list(options.lsf_segments or ())
    all_names = segmentation.names
    for name in extra:
        wanted += [n for n in match_names(name, all_names) if n not in wanted]
    mapped = map_segments(segmentation, dose, wanted, options.partial_voxels)
    for s in mapped.values():
        if s.coverage < 0.98:
            warnings.append(f"segment {s.name!r}: {100 * (1 - s.coverage):.1f} % of its contoured volume lies outside the dose grid")
    weights: dict[str, np.ndarray] = {name: s.weights for name, s in mapped.items()}
    structures: dict[str, AnalysisStructure] = {
        name: AnalysisStructure(name, s.weights, definition="segment", source="segment") for name, s in mapped.items()
    }

    # 2. tumours (roles are needed by the derived structures below)
    if options.tumour_patterns_given:
        tumour_names = resolve_names(options.tumour_patterns, list(weights), "tumour structure")
    else:
        tumour_names = [n for n in weights if any(match_names(p, [n]) for p in options.tumour_patterns)]
    tumour_weights = [weights[n] for n in tumour_names]

    def add(structure: AnalysisStructure) -> None:
        if structure.name in structures:
            raise SIRTInputError(f"a structure named {structure.name!r} already exists; choose another name")
        structures[structure.name] = structure
        weights[structure.name] = structure.weights

    def minus_tumours(name: str, base: str) -> AnalysisStructure:
        base_name = resolve_names([base], list(mapped), "segment")[0]
        if not tumour_names:
            raise SIRTInputError(f"{name!r} = {base_name} - tumours, but no structure is a tumour (see --tumours)")
        expression = base_name + "".join(f" - {t}" for t in tumour_names)
        return derive(name, expression, weights, role="normal_liver")

    if options.normal_perfused_from:
        add(minus_tumours(NORMAL_PERFUSED_NAME, options.normal_perfused_from))
    if options.whole_normal_from:
        add(minus_tumours(WHOLE_NORMAL_NAME, options.whole_normal_from))
    if options.healthy_liver_from:
        liver = resolve_names([options.healthy_liver_from], list(mapped), "segment")[0]
        add(healthy_liver(weights[liver], tumour_weights, spacing_zyx, options.healthy_liver_margin_mm, HEALTHY_LIVER_NAME))
    for name, expression in options.derived:
        add(derive(name, expression, weights))
    for spec in options.thresholds:
        voi = resolve_names([spec.voi], list(weights), "threshold VOI")[0]
        source = counts_array if counts_array is not None else dose_array
        w = threshold_structure(source, weights[voi], spec.fraction, spec.name)
        add(
            AnalysisStructure(
                spec.name, w, "other", f"{voi} >= {100 * spec.fraction:g} % of max ({'counts' if counts_array is not None else 'dose'})",
                source="threshold", details={"voi": voi, "fraction": spec.fraction},
            )
        )

    # 3. roles
    normal_names = set(resolve_names(options.normal_liver_patterns, list(structures), "normal-liver structure"))
    for name, s in list(structures.items()):
        role = s.role
        if name in tumour_names:
            role = "tumour"
        elif name in normal_names:
            role = "normal_liver"
        if role != s.role:
            structures[name] = AnalysisStructure(s.name, s.weights, role, s.definition, s.activity_weights, s.source, s.details)
    analysed = [s for s in structures.values() if s.source != "segment" or s.name in _segments_needed(options, segmentation)]

    # 4. TNR references
    def reference(given: str | None, default: str) -> AnalysisStructure | None:
        if given:
            return structures[resolve_names([given], list(structures), "TNR reference")[0]]
        return structures.get(default)

    npl, wnl = reference(options.npl_reference, NORMAL_PERFUSED_NAME), reference(options.wnl_reference, WHOLE_NORMAL_NAME)
    tnr_source = "counts" if counts_array is not None else "dose"
    if counts_array is None and (npl or wnl) and tumour_names:
        warnings.append("TNR computed from the dose map (no counts image given): equal to the count ratio for the LDM with one density")

    # 5. BED from parameters
    bed_input = bed_array
    lq_used: dict[str, LQParameters] = {}
    if options.bed_parameters:
        bed_input = {}
        for s in analysed:
            lq = _lq_for(s, options)
            if lq is not None:
                lq_used[s.name] = lq
                bed_input[s.name] = _bed_function(lq, options.half_life_h)
        unmatched = [k for k, _ in options.bed_parameters if not k.startswith("@") and not any(match_names(k, [s.name]) for s in analysed)]
        if unmatched:
            raise SIRTInputError(f"BED parameters given for {', '.join(map(repr, unmatched))}, which match no analysed structure")

    # 6. constraints and DVHs
    constraints = compute_constraints(
        dose_array, analysed, voxel_ml, bed_input, counts_array if counts_array is not None else dose_array, npl, wnl, options.dx_method
    )
    for r in constraints:
        warnings.extend(r.warnings)
    dvhs = [dvh_from_sample(r.samples["dose"], r.name, "dose", options.bin_width_gy) for r in constraints]
    dvhs += [dvh_from_sample(r.samples["bed"], r.name, "bed", options.bin_width_gy) for r in constraints if "bed" in r.samples]

    # 7. lesions
    lesion_results: list[LesionResult] = []
    if options.lesions:
        if not tumour_names:
            raise SIRTInputError("lesion analysis asked for, but no structure is a tumour (see --tumours)")
        lesions = lesions_from_structures({n: weights[n] for n in tumour_names}, voxel_ml, options.min_lesion_volume_ml, options.split_lesions)
        lesion_structures = [AnalysisStructure(l.name, l.weights, "tumour", f"lesion of {l.source_structure}", source="lesion") for l in lesions]
        lesion_bed = None
        if bed_array is not None:
            lesion_bed = bed_array
        elif options.bed_parameters:
            lesion_bed = {}
            for l, s in zip(lesions, lesion_structures):
                lq = _lq_for(s, options) or lq_used.get(l.source_structure)
                if lq is not None:
                    lesion_bed[l.name] = _bed_function(lq, options.half_life_h)
        lesion_constraints = compute_constraints(
            dose_array, lesion_structures, voxel_ml, lesion_bed, counts_array if counts_array is not None else dose_array, npl, wnl, options.dx_method
        )
        lesion_results = [LesionResult(l, c) for l, c in zip(lesions, lesion_constraints)]
        excluded = [l.name for l in lesions if not l.included]
        if excluded:
            warnings.append(f"lesions below {options.min_lesion_volume_ml:g} mL are flagged as excluded: {', '.join(excluded)}")

    # 8. patient level
    lsf, lsf_method = options.lsf, "given" if options.lsf is not None else None
    if options.lsf_segments:
        lung_name, liver_name = (resolve_names([n], list(mapped), "segment")[0] for n in options.lsf_segments)
        lsf = lung_shunt_fraction(float(np.sum(weights[lung_name] * counts_array)), float(np.sum(weights[liver_name] * counts_array)))
        lsf_method = f"counts in {lung_name!r} / ({lung_name!r} + {liver_name!r})"
    patient = patient_features(lsf, options.injected_activity_gbq) | {"lsf_method": lsf_method}

    tnr_references = {
        "normal_perfused_liver": npl.name if npl else None,
        "whole_normal_liver": wnl.name if wnl else None,
        "source": tnr_source,
    }
    return DoseVolumeResult(analysed, constraints, dvhs, lesion_results, patient, tnr_references, voxel_ml, list(dict.fromkeys(warnings)))


def conventions(options: DoseVolumeOptions) -> dict:
    """The conventions behind the numbers, written into constraints.json."""
    return {
        "dx_method": options.dx_method,
        "dx_definition": (
            "nearest rank: dose of the voxel at which the volume accumulated from the hottest voxel reaches x % of the structure"
            if options.dx_method == "nearest_rank"
            else "linear interpolation between the distinct voxel doses, each placed at the middle of the volume slab of the voxels having it"
        ),
        "vx_definition": "volume (mL, and % of the structure) with dose >= x Gy, exact on the voxelised dose",
        "partial_voxels": options.partial_voxels,
        "partial_voxel_weighting": "a voxel counts with the fraction of it inside the structure in volumes, V_x, D_x, mean and SD; min/max over voxels with any weight",
        "bin_width_gy": options.bin_width_gy,
        "half_life_h": options.half_life_h,
        "hi_definition": "D5/D95 (null when D95 = 0)",
        "cv_definition": "SD/mean (null when mean = 0)",
        "tnr_definition": "(C_tumour/V_tumour)/(C_ref/V_ref), C counts (or dose without a counts image)",
    }


def lq_parameters_used(options: DoseVolumeOptions) -> list[dict]:
    return [{"structure": key, "alpha_beta_gy": lq.alpha_beta_gy, "repair_half_time_h": lq.repair_half_time_h} for key, lq in options.bed_parameters]


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def constraints_document(result: DoseVolumeResult, options: DoseVolumeOptions) -> dict:
    """The JSON-ready body of constraints.json (without provenance)."""
    return {
        "conventions": conventions(options),
        "voxel_volume_ml": result.voxel_volume_ml,
        "bed_parameters": lq_parameters_used(options),
        "tnr_references": result.tnr_references,
        "patient": {k: _finite_or_none(v) for k, v in result.patient.items()},
        "structures": [
            {
                "name": r.name,
                "role": r.role,
                "source": r.source,
                "definition": r.definition,
                "features": {k: _finite_or_none(v) for k, v in r.features.items()},
                "warnings": r.warnings,
            }
            for r in result.constraints
        ],
        "lesions": [
            {
                "name": lr.lesion.name,
                "source_structure": lr.lesion.source_structure,
                "component": lr.lesion.component,
                "included": lr.lesion.included,
                "features": {k: _finite_or_none(v) for k, v in lr.constraints.features.items()},
            }
            for lr in result.lesions
        ],
        "warnings": result.warnings,
    }
