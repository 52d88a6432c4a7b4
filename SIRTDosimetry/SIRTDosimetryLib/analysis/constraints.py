"""Dose-volume constraints (features) per structure, for dose and BED, with stable names.

Every feature name is built here and nowhere else (``feature_names``); the names are documented
in ``docs/dose-volume.md`` and are used as model features, so they must not change. Pattern:
``<quantity>_<metric>[<level>]_<unit>`` with quantity ``dose`` or ``bed``; levels with a decimal
point are written with ``p`` (D2.5 -> ``d2p5``).

Per structure and quantity: mean, min, max, SD (Gy), coefficient of variation (SD/mean),
D2, D5, D50, D70, D95, D98 (Gy), V120, V205, V400 in mL and in % of the structure volume,
homogeneity index HI = D5/D95; structures with the ``normal_liver`` role also get V20, V30, V50,
V70, V90. Tumour structures get the tumour-to-normal ratios ``tnr_npl`` (against the normal
perfused liver) and ``tnr_wnl`` (against the whole normal liver):
TNR = (C_tumour / V_tumour) / (C_NL / V_NL) with C the counts (or activity) in each structure.
Patient-level: ``lsf`` (lung shunt fraction) and ``injected_activity_gbq``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import SIRTInputError
from ..vocabulary import ROLES
from .derived import AnalysisStructure
from .dvh import (
    SMALL_STRUCTURE_VOXELS,
    DxMethod,
    VoxelSample,
    doses_at_volume_pct,
    sample_statistics,
    voxel_sample,
    volumes_at_dose_ml,
)

QUANTITIES: tuple[str, ...] = ("dose", "bed")
DX_LEVELS_PCT: tuple[float, ...] = (2, 5, 50, 70, 95, 98)
VX_LEVELS_GY: tuple[float, ...] = (120, 205, 400)
VX_LEVELS_NORMAL_LIVER_GY: tuple[float, ...] = (20, 30, 50, 70, 90)
STRUCTURE_META: tuple[str, ...] = ("volume_ml", "n_voxels")
TNR_FEATURES: tuple[str, ...] = ("tnr_npl", "tnr_wnl")
EXPANDED_VOI_FEATURE = "dose_mean_expanded_voi_gy"
PATIENT_FEATURES: tuple[str, ...] = ("lsf", "injected_activity_gbq")


def _level(value: float) -> str:
    text = f"{float(value):g}"
    if "e" in text:
        raise SIRTInputError(f"level {value!r} cannot be written in a feature name")
    return text.replace(".", "p").replace("-", "m")


def dx_name(quantity: str, pct: float) -> str:
    return f"{quantity}_d{_level(pct)}_gy"


def vx_name(quantity: str, level_gy: float, unit: str) -> str:
    if unit not in ("ml", "pct"):
        raise SIRTInputError(f"V_x unit must be ml or pct, got {unit!r}")
    return f"{quantity}_v{_level(level_gy)}_{unit}"


def vx_levels(role: str) -> tuple[float, ...]:
    return (*VX_LEVELS_NORMAL_LIVER_GY, *VX_LEVELS_GY) if role == "normal_liver" else VX_LEVELS_GY


def quantity_feature_names(quantity: str, role: str) -> list[str]:
    if quantity not in QUANTITIES:
        raise SIRTInputError(f"unknown quantity {quantity!r}; choose one of {', '.join(QUANTITIES)}")
    if role not in ROLES:
        raise SIRTInputError(f"unknown role {role!r}")
    q = quantity
    names = [f"{q}_mean_gy", f"{q}_min_gy", f"{q}_max_gy", f"{q}_sd_gy", f"{q}_cv"]
    names += [dx_name(q, x) for x in DX_LEVELS_PCT]
    for level in vx_levels(role):
        names += [vx_name(q, level, "ml"), vx_name(q, level, "pct")]
    names.append(f"{q}_hi_d5_d95")
    return names


def feature_names(role: str, quantities: Sequence[str] = QUANTITIES, expanded_voi: bool = False) -> list[str]:
    """The ordered feature names of a structure with this role."""
    names = list(STRUCTURE_META)
    for q in quantities:
        names += quantity_feature_names(q, role)
    if expanded_voi:
        names.append(EXPANDED_VOI_FEATURE)
    if role == "tumour":
        names += TNR_FEATURES
    return names


def all_feature_names() -> list[str]:
    """Every structure-level and patient-level name this module can produce (for the docs check)."""
    names = list(STRUCTURE_META)
    for q in QUANTITIES:
        names += quantity_feature_names(q, "normal_liver")  # the largest set of V_x levels
    return [*names, EXPANDED_VOI_FEATURE, *TNR_FEATURES, *PATIENT_FEATURES]


# --- computing ------------------------------------------------------------------------------------


def quantity_features(sample: VoxelSample, quantity: str, role: str, dx_method: DxMethod = "nearest_rank") -> dict[str, float | None]:
    """All features of one quantity from a sorted voxel sample."""
    q = quantity
    stats = sample_statistics(sample)
    out: dict[str, float | None] = {
        f"{q}_mean_gy": stats.mean_gy,
        f"{q}_min_gy": stats.min_gy,
        f"{q}_max_gy": stats.max_gy,
        f"{q}_sd_gy": stats.sd_gy,
        f"{q}_cv": stats.cv,
    }
    dx = doses_at_volume_pct(sample, np.asarray(DX_LEVELS_PCT, dtype=np.float64), dx_method)
    out.update({dx_name(q, x): float(d) for x, d in zip(DX_LEVELS_PCT, dx)})
    levels = vx_levels(role)
    vols = volumes_at_dose_ml(sample, np.asarray(levels, dtype=np.float64))
    for level, v in zip(levels, vols):
        out[vx_name(q, level, "ml")] = float(v)
        out[vx_name(q, level, "pct")] = float(100.0 * v / stats.volume_ml)
    d5, d95 = out[dx_name(q, 5)], out[dx_name(q, 95)]
    out[f"{q}_hi_d5_d95"] = d5 / d95 if d95 and d95 > 0 else None
    return out


@dataclass
class StructureConstraints:
    name: str
    role: str
    definition: str
    source: str
    features: dict[str, float | None]
    warnings: list[str] = field(default_factory=list)
    samples: dict[str, VoxelSample] = field(default_factory=dict, repr=False)  # quantity -> sorted voxels


BedFunction = Callable[[np.ndarray], np.ndarray]
BedInput = np.ndarray | Mapping[str, np.ndarray | BedFunction] | None


def _bed_for(bed: BedInput, name: str) -> np.ndarray | BedFunction | None:
    if bed is None:
        return None
    if isinstance(bed, Mapping):
        return bed.get(name)
    return bed


def concentration(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean of ``values`` over a structure: counts (or activity) per unit volume, up to the voxel volume."""
    inside = np.asarray(weights) > 0
    w = np.asarray(weights)[inside].astype(np.float64)
    if w.sum() <= 0:
        raise SIRTInputError("structure is empty")
    return float(np.sum(w * np.asarray(values)[inside]) / w.sum())


def tumour_to_normal_ratio(counts: np.ndarray, tumour_weights: np.ndarray, normal_weights: np.ndarray) -> float | None:
    """TNR = (C_T/V_T)/(C_N/V_N); None when the normal structure has no counts."""
    normal = concentration(counts, normal_weights)
    if not normal > 0:
        return None
    return concentration(counts, tumour_weights) / normal


def structure_constraints(
    structure: AnalysisStructure,
    dose: np.ndarray,
    voxel_volume_ml: float,
    bed: np.ndarray | Callable[[np.ndarray], np.ndarray] | None = None,
    dx_method: DxMethod = "nearest_rank",
) -> StructureConstraints:
    """Features of one structure from the dose array and an optional BED.

    ``bed`` is either a BED array on the same grid (NaN voxels left out, with a warning) or a
    non-decreasing function of dose (e.g. ``lambda d: bed_gy(d, lq, T)``) applied to the
    structure's voxels only.
    """
    dose_sample, _ = voxel_sample(dose, structure.weights, voxel_volume_ml, structure.name)
    features: dict[str, float | None] = {"volume_ml": dose_sample.total_volume_ml, "n_voxels": dose_sample.n_voxels}
    features.update(quantity_features(dose_sample, "dose", structure.role, dx_method))
    samples = {"dose": dose_sample}
    warnings = []
    if dose_sample.effective_voxels < SMALL_STRUCTURE_VOXELS:
        warnings.append(
            f"{structure.name!r} covers only {dose_sample.effective_voxels:.1f} voxels of the dose grid: "
            "its D_x values are within a voxel or two of min/max"
        )
    if callable(bed):
        features.update(quantity_features(dose_sample.mapped(bed), "bed", structure.role, dx_method))
        samples["bed"] = dose_sample.mapped(bed)
    elif bed is not None:
        bed_sample, left_out_ml = voxel_sample(bed, structure.weights, voxel_volume_ml, structure.name, ignore_nonfinite=True)
        if left_out_ml > 0:
            warnings.append(
                f"{structure.name!r}: {left_out_ml:.2f} mL ({100 * left_out_ml / dose_sample.total_volume_ml:.1f} %) has no BED "
                "value (NaN in the BED map) and is left out of the BED features"
            )
        features.update(quantity_features(bed_sample, "bed", structure.role, dx_method))
        samples["bed"] = bed_sample
    if structure.activity_weights is not None:
        features[EXPANDED_VOI_FEATURE] = float(
            np.sum(structure.activity_weights * dose, dtype=np.float64) / np.sum(structure.weights, dtype=np.float64)
        )
    return StructureConstraints(structure.name, structure.role, structure.definition, structure.source, features, warnings, samples)


def compute_constraints(
    dose: np.ndarray,
    structures: Sequence[AnalysisStructure],
    voxel_volume_ml: float,
    bed: BedInput = None,
    counts: np.ndarray | None = None,
    normal_perfused: AnalysisStructure | None = None,
    whole_normal: AnalysisStructure | None = None,
    dx_method: DxMethod = "nearest_rank",
) -> list[StructureConstraints]:
    """Features of every structure; TNR for tumours when ``counts`` (counts or activity image on the
    dose grid; with the LDM and one density the dose map itself is proportional) and the normal
    references are given."""
    dose = np.asarray(dose)
    if counts is not None and np.shape(counts) != dose.shape:
        raise SIRTInputError(f"the counts image {np.shape(counts)} is not on the dose grid {dose.shape}")
    results = []
    references = {}
    for key, ref in zip(TNR_FEATURES, (normal_perfused, whole_normal)):
        if counts is not None and ref is not None:
            references[key] = (ref.name, concentration(counts, ref.weights))
    for s in structures:
        r = structure_constraints(s, dose, voxel_volume_ml, _bed_for(bed, s.name), dx_method)
        if s.role == "tumour":
            for key in TNR_FEATURES:
                value = None
                if key in references:
                    ref_name, ref_concentration = references[key]
                    if ref_concentration > 0:
                        value = concentration(counts, s.weights) / ref_concentration
                    else:
                        r.warnings.append(f"{key} of {s.name!r}: {ref_name!r} has no counts")
                r.features[key] = value
        results.append(r)
    return results


# --- patient level -------------------------------------------------------------------------------


def _check_counts(value: float, what: str) -> float:
    if not (value >= 0 and math.isfinite(value)):
        raise SIRTInputError(f"{what} must be a non-negative number of counts, got {value!r}")
    return float(value)


def lung_shunt_fraction(lung_counts: float, liver_counts: float) -> float:
    """LSF = C_lung / (C_lung + C_liver), from SPECT (or any co-registered count image) VOIs."""
    lung, liver = _check_counts(lung_counts, "lung counts"), _check_counts(liver_counts, "liver counts")
    if lung + liver <= 0:
        raise SIRTInputError("lung shunt fraction: lungs and liver have no counts")
    return lung / (lung + liver)


def lung_shunt_fraction_planar(lung_anterior: float, lung_posterior: float, liver_anterior: float, liver_posterior: float) -> float:
    """LSF from anterior/posterior planar 99mTc-MAA counts with geometric means:
    LSF = GM_lung / (GM_lung + GM_liver), GM = sqrt(anterior × posterior) (SIR-Spheres and
    TheraSphere instructions; see Allred et al., EJNMMI Res 2018;8:50 for its overestimation)."""
    gm_lung = math.sqrt(_check_counts(lung_anterior, "lung anterior counts") * _check_counts(lung_posterior, "lung posterior counts"))
    gm_liver = math.sqrt(_check_counts(liver_anterior, "liver anterior counts") * _check_counts(liver_posterior, "liver posterior counts"))
    return lung_shunt_fraction(gm_lung, gm_liver)


def patient_features(lsf: float | None = None, injected_activity_gbq: float | None = None) -> dict[str, float | None]:
    if lsf is not None and not (0.0 <= lsf < 1.0):
        raise SIRTInputError(f"lung shunt fraction must be in [0, 1), got {lsf!r}")
    if injected_activity_gbq is not None and not (injected_activity_gbq > 0 and math.isfinite(injected_activity_gbq)):
        raise SIRTInputError(f"injected activity must be a positive number of GBq, got {injected_activity_gbq!r}")
    return {"lsf": lsf, "injected_activity_gbq": injected_activity_gbq}


def constraints_table(results: Sequence[StructureConstraints]) -> tuple[list[str], list[list]]:
    """Header and rows for ``constraints.csv``: one row per structure, the union of the names in canonical order."""
    canonical = all_feature_names()
    present = {k for r in results for k in r.features}
    columns = [n for n in canonical if n in present]
    header = ["structure", "role", "source", "definition", *columns]
    rows = [[r.name, r.role, r.source, r.definition, *(r.features.get(c) for c in columns)] for r in results]
    return header, rows


def structure_slug(name: str) -> str:
    """A structure name as a column prefix: lower case, runs of other characters as one ``_`` (``Tumor 1`` → ``tumor_1``)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "structure"


def wide_constraints_table(results: Sequence[StructureConstraints], patient_id: str,
                           patient: dict | None = None) -> tuple[list[str], list[list]]:
    """One row per patient: ``patient_id``, the patient values (LSF, injected activity) and
    ``<structure>_<constraint>`` for every structure, in the order of ``constraints.csv``.

    Two structures whose names give the same prefix are an error (their columns would collide).
    """
    header, rows = constraints_table(results)
    features = header[4:]
    slugs = [structure_slug(r.name) for r in results]
    repeated = sorted({s for s in slugs if slugs.count(s) > 1})
    if repeated:
        raise SIRTInputError(f"structure names give the same column prefix {repeated}; rename the segments")
    numeric = {k: v for k, v in (patient or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    wide_header = ["patient_id", *numeric, *(f"{s}_{f}" for s in slugs for f in features)]
    wide_row = [patient_id, *numeric.values(), *(v for row in rows for v in row[4:])]
    return wide_header, [wide_row]
