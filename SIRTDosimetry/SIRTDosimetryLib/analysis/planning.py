"""Pre-treatment activity planning: partition model, single-compartment MIRD, resin BSA, voxel planning.

Partition model (MIRD; Ho et al., Eur J Nucl Med 1996;23:947; Gulec, Mesoloras, Stabin,
J Nucl Med 2006;47:1209). With A the administered activity (GBq), R the residual fraction, LSF the
lung shunt fraction, TNR the tumour-to-normal ratio of activity concentration, masses in kg and
E = 49.67 J/GBq (``nuclides.Y90``; Gy = J/kg):

    A_liver = A (1 - R)(1 - LSF)
    D_N     = E A_liver / (TNR m_T + m_N)          normal perfused liver
    D_T     = TNR D_N                              tumour
    D_L     = E A (1 - R) LSF / m_L                lungs
    D_WNL   = D_N m_N / m_WNL                      whole normal liver (untreated part gets none)

Solving for A gives the activity for a target dose and the largest activity within each limit;
the plan's maximum activity is the smallest of those. Limits are never applied silently: a
requested activity above a limit is kept and reported as a violation.

Limits (defaults, all user options):
- lungs: 30 Gy per treatment, 50 Gy cumulative (Ho et al., Eur J Nucl Med 1997;24:293), both
  microsphere types.
- glass (TheraSphere): whole normal liver < 75 Gy (EANM guideline, Weber et al., Eur J Nucl Med
  Mol Imaging 2022;49:1682, table 2: 75 Gy, range 50-90 Gy with bilirubin). Single-compartment
  dosimetry targets 80-150 Gy to the perfused liver (TheraSphere package insert:
  A[GBq] = D[Gy] M[kg] / 50, the insert rounds the constant to 50).
- resin (SIR-Spheres): normal perfused liver < 40 Gy (Weber et al. 2022, table 3, unilobar;
  Levillain et al., Eur J Nucl Med Mol Imaging 2021;48:1570).
- resin BSA method (SIR-Spheres instructions for use; Kennedy et al., Int J Radiat Oncol Biol Phys
  2007;68:13): A[GBq] = BSA[m²] - 0.2 + V_T/(V_T + V_N), scaled by the fraction of the liver
  treated, BSA by DuBois (0.20247 H[m]^0.725 W[kg]^0.425), with the IFU's lung-shunt reductions
  (LSF 10-15 %: -20 %; 15-20 %: -40 %; > 20 %: not recommended).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..dose.radiobiology import LQParameters, bed_gy
from ..errors import SIRTInputError
from ..nuclides import Y90
from .constraints import quantity_features
from .derived import AnalysisStructure
from .dvh import DxMethod, VoxelSample, voxel_sample

ENERGY_J_PER_GBQ = Y90.energy_per_activity_j_per_gbq
PARTITION_SOURCE = "MIRD partition model: Ho et al. Eur J Nucl Med 1996;23:947; Gulec et al. J Nucl Med 2006;47:1209"
LUNG_LIMIT_SOURCE = "lungs 30 Gy per treatment, 50 Gy cumulative: Ho et al. Eur J Nucl Med 1997;24:293"


@dataclass(frozen=True)
class PlanLimits:
    """Absorbed-dose limits (Gy); None = no limit. Every one is recorded in the plan."""

    lung_single_gy: float | None = 30.0
    lung_cumulative_gy: float | None = 50.0
    previous_lung_dose_gy: float = 0.0
    normal_perfused_liver_gy: float | None = None
    whole_normal_liver_gy: float | None = None
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("lung_single_gy", "lung_cumulative_gy", "normal_perfused_liver_gy", "whole_normal_liver_gy"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise SIRTInputError(f"limit {name} must be a positive number of Gy, got {value!r}")
        if not (self.previous_lung_dose_gy >= 0 and math.isfinite(self.previous_lung_dose_gy)):
            raise SIRTInputError(f"previous lung dose must be a non-negative number of Gy, got {self.previous_lung_dose_gy!r}")

    @property
    def lung_gy(self) -> float | None:
        """The lung limit for this treatment: min(single, cumulative - previous)."""
        candidates = []
        if self.lung_single_gy is not None:
            candidates.append(self.lung_single_gy)
        if self.lung_cumulative_gy is not None:
            candidates.append(self.lung_cumulative_gy - self.previous_lung_dose_gy)
        return min(candidates) if candidates else None


MICROSPHERE_LIMITS: dict[str, PlanLimits] = {
    "glass": PlanLimits(
        whole_normal_liver_gy=75.0,
        sources=(LUNG_LIMIT_SOURCE, "glass: whole normal liver < 75 Gy (50-90 Gy with bilirubin), Weber et al. EJNMMI 2022;49:1682 table 2"),
    ),
    "resin": PlanLimits(
        normal_perfused_liver_gy=40.0,
        sources=(LUNG_LIMIT_SOURCE, "resin: normal perfused liver < 40 Gy (unilobar), Weber et al. EJNMMI 2022;49:1682 table 3; Levillain et al. EJNMMI 2021;48:1570"),
    ),
}
GLASS_PERFUSED_TARGET_RANGE_GY = (80.0, 150.0)
"""TheraSphere package insert: 80-150 Gy to the perfused liver (single compartment)."""


def limits_for(microspheres: str, **overrides) -> PlanLimits:
    """Default limits of a microsphere type with user overrides (None values are ignored)."""
    try:
        base = MICROSPHERE_LIMITS[microspheres]
    except KeyError:
        raise SIRTInputError(f"unknown microsphere type {microspheres!r}; choose one of {', '.join(MICROSPHERE_LIMITS)}") from None
    given = {k: v for k, v in overrides.items() if v is not None}
    if given:
        base = replace(base, **given, sources=(*base.sources, "user-set: " + ", ".join(f"{k}={v}" for k, v in given.items())))
    return base


def _positive(value: float | None, what: str, allow_zero: bool = False) -> float:
    if value is None or not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise SIRTInputError(f"{what} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}")
    return float(value)


def _fraction(value: float, what: str) -> float:
    if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
        raise SIRTInputError(f"{what} must be in [0, 1), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class PartitionInputs:
    """Masses in g. ``normal_liver_mass_g`` is the normal *perfused* liver (the model's normal compartment)."""

    tumour_mass_g: float
    normal_liver_mass_g: float
    tnr: float
    lsf: float
    lung_mass_g: float | None = None
    whole_normal_liver_mass_g: float | None = None
    residual_fraction: float = 0.0
    energy_j_per_gbq: float = ENERGY_J_PER_GBQ

    def __post_init__(self) -> None:
        _positive(self.tumour_mass_g, "tumour mass (g)", allow_zero=True)
        _positive(self.normal_liver_mass_g, "normal perfused liver mass (g)")
        _positive(self.tnr, "tumour-to-normal ratio")
        _fraction(self.lsf, "lung shunt fraction")
        _fraction(self.residual_fraction, "residual fraction")
        _positive(self.energy_j_per_gbq, "energy per activity (J/GBq)")
        if self.lung_mass_g is not None:
            _positive(self.lung_mass_g, "lung mass (g)")
        elif self.lsf > 0:
            raise SIRTInputError(
                "a lung dose is requested (lung shunt fraction > 0) but no lung mass is given: give a lung segment "
                "(mass = volume x 0.3 g/mL) or the lung mass (1000 g is the conventional assumption of Ho et al. 1996)"
            )
        if self.whole_normal_liver_mass_g is not None:
            _positive(self.whole_normal_liver_mass_g, "whole normal liver mass (g)")
            if self.whole_normal_liver_mass_g < self.normal_liver_mass_g * (1 - 1e-6):
                raise SIRTInputError(
                    f"whole normal liver mass ({self.whole_normal_liver_mass_g:.1f} g) is below the normal perfused liver mass "
                    f"({self.normal_liver_mass_g:.1f} g)"
                )

    @property
    def _denominator_kg(self) -> float:
        return (self.tnr * self.tumour_mass_g + self.normal_liver_mass_g) / 1000.0

    @property
    def _liver_fraction(self) -> float:
        return (1 - self.residual_fraction) * (1 - self.lsf)


@dataclass(frozen=True)
class PartitionDoses:
    activity_gbq: float
    tumour_gy: float | None  # None when there is no tumour compartment
    normal_perfused_liver_gy: float
    whole_normal_liver_gy: float | None
    lung_gy: float
    perfused_liver_gy: float  # mean over tumour + normal perfused liver
    tumour_activity_gbq: float
    normal_activity_gbq: float
    lung_activity_gbq: float


def partition_doses(inputs: PartitionInputs, activity_gbq: float) -> PartitionDoses:
    """Mean absorbed doses of the partition model for an administered activity."""
    a = _positive(activity_gbq, "activity (GBq)", allow_zero=True)
    e = inputs.energy_j_per_gbq
    liver_gbq = a * inputs._liver_fraction
    d_n = e * liver_gbq / inputs._denominator_kg
    lung_gbq = a * (1 - inputs.residual_fraction) * inputs.lsf
    d_l = e * lung_gbq / (inputs.lung_mass_g / 1000.0) if lung_gbq > 0 else 0.0
    wnl = d_n * inputs.normal_liver_mass_g / inputs.whole_normal_liver_mass_g if inputs.whole_normal_liver_mass_g else None
    tumour_gbq = liver_gbq * inputs.tnr * inputs.tumour_mass_g / 1000.0 / inputs._denominator_kg
    return PartitionDoses(
        activity_gbq=a,
        tumour_gy=inputs.tnr * d_n if inputs.tumour_mass_g > 0 else None,
        normal_perfused_liver_gy=d_n,
        whole_normal_liver_gy=wnl,
        lung_gy=d_l,
        perfused_liver_gy=e * liver_gbq / ((inputs.tumour_mass_g + inputs.normal_liver_mass_g) / 1000.0),
        tumour_activity_gbq=tumour_gbq,
        normal_activity_gbq=liver_gbq - tumour_gbq,
        lung_activity_gbq=lung_gbq,
    )


def activity_for_tumour_dose(inputs: PartitionInputs, tumour_gy: float) -> float:
    """A = D_T (TNR m_T + m_N) / (E TNR (1 - R)(1 - LSF))."""
    if inputs.tumour_mass_g <= 0:
        raise SIRTInputError("a tumour dose target needs a tumour mass")
    d = _positive(tumour_gy, "target tumour dose (Gy)")
    return d * inputs._denominator_kg / (inputs.energy_j_per_gbq * inputs.tnr * inputs._liver_fraction)


def activity_for_normal_dose(inputs: PartitionInputs, normal_gy: float) -> float:
    """A = D_N (TNR m_T + m_N) / (E (1 - R)(1 - LSF))."""
    d = _positive(normal_gy, "target normal liver dose (Gy)")
    return d * inputs._denominator_kg / (inputs.energy_j_per_gbq * inputs._liver_fraction)


def max_activities(inputs: PartitionInputs, limits: PlanLimits) -> dict[str, float]:
    """The largest activity (GBq) allowed by each limit that applies."""
    out: dict[str, float] = {}
    e = inputs.energy_j_per_gbq
    lung_limit = limits.lung_gy
    if lung_limit is not None and inputs.lsf > 0:
        if lung_limit <= 0:
            out["lung_gy"] = 0.0  # cumulative limit already used up
        else:
            out["lung_gy"] = lung_limit * (inputs.lung_mass_g / 1000.0) / (e * (1 - inputs.residual_fraction) * inputs.lsf)
    if limits.normal_perfused_liver_gy is not None:
        out["normal_perfused_liver_gy"] = activity_for_normal_dose(inputs, limits.normal_perfused_liver_gy)
    if limits.whole_normal_liver_gy is not None:
        m_wnl = inputs.whole_normal_liver_mass_g or inputs.normal_liver_mass_g
        out["whole_normal_liver_gy"] = activity_for_normal_dose(inputs, limits.whole_normal_liver_gy * m_wnl / inputs.normal_liver_mass_g)
    return out


@dataclass
class PartitionPlan:
    inputs: PartitionInputs
    limits: PlanLimits
    prescription: str  # how the activity was chosen
    activity_gbq: float | None
    doses: PartitionDoses | None
    max_activity_gbq: float | None
    limiting_constraint: str | None
    doses_at_max_activity: PartitionDoses | None
    max_activity_by_limit_gbq: dict[str, float]
    violations: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def check_limits(doses: PartitionDoses, limits: PlanLimits) -> list[dict]:
    """Every limit the doses exceed, with value and limit."""
    violations = []
    checks = [
        ("lung_gy", doses.lung_gy, limits.lung_gy),
        ("normal_perfused_liver_gy", doses.normal_perfused_liver_gy, limits.normal_perfused_liver_gy),
        ("whole_normal_liver_gy", doses.whole_normal_liver_gy if doses.whole_normal_liver_gy is not None else doses.normal_perfused_liver_gy, limits.whole_normal_liver_gy),
    ]
    for name, value, limit in checks:
        if limit is not None and value > limit * (1 + 1e-9):
            violations.append({"constraint": name, "dose_gy": value, "limit_gy": limit})
    if limits.lung_cumulative_gy is not None and doses.lung_gy + limits.previous_lung_dose_gy > limits.lung_cumulative_gy * (1 + 1e-9):
        violations.append(
            {"constraint": "lung_cumulative_gy", "dose_gy": doses.lung_gy + limits.previous_lung_dose_gy, "limit_gy": limits.lung_cumulative_gy}
        )
    return violations


def plan_partition(
    inputs: PartitionInputs,
    limits: PlanLimits,
    activity_gbq: float | None = None,
    target_tumour_gy: float | None = None,
    target_normal_gy: float | None = None,
) -> PartitionPlan:
    """Partition-model plan: at most one of activity / tumour target / normal-liver target; the
    maximum activity within the limits is always reported."""
    chosen = [x is not None for x in (activity_gbq, target_tumour_gy, target_normal_gy)]
    if sum(chosen) > 1:
        raise SIRTInputError("give at most one of: activity, target tumour dose, target normal liver dose")
    assumptions = []
    if limits.whole_normal_liver_gy is not None and inputs.whole_normal_liver_mass_g is None:
        assumptions.append("no whole normal liver mass given: the whole normal liver is taken to be the normal perfused liver (whole-liver treatment)")
    by_limit = max_activities(inputs, limits)
    max_a = min(by_limit.values()) if by_limit else None
    limiting = min(by_limit, key=by_limit.get) if by_limit else None
    if activity_gbq is not None:
        a, how = _positive(activity_gbq, "activity (GBq)"), "activity given"
    elif target_tumour_gy is not None:
        a, how = activity_for_tumour_dose(inputs, target_tumour_gy), f"tumour dose {target_tumour_gy:g} Gy"
    elif target_normal_gy is not None:
        a, how = activity_for_normal_dose(inputs, target_normal_gy), f"normal perfused liver dose {target_normal_gy:g} Gy"
    else:
        a, how = None, "none (maximum activity only)"
    doses = partition_doses(inputs, a) if a is not None else None
    violations = check_limits(doses, limits) if doses is not None else []
    warnings = [
        f"{v['constraint']}: {v['dose_gy']:.1f} Gy exceeds the limit of {v['limit_gy']:.1f} Gy at {a:.3f} GBq" for v in violations
    ]
    if max_a is not None and max_a <= 0:
        warnings.append(f"no activity is allowed: the {limiting} limit is already reached")
    if not by_limit:
        warnings.append("no dose limit applies: the maximum activity is not defined")
    return PartitionPlan(
        inputs=inputs,
        limits=limits,
        prescription=how,
        activity_gbq=a,
        doses=doses,
        max_activity_gbq=max_a,
        limiting_constraint=limiting,
        doses_at_max_activity=partition_doses(inputs, max_a) if max_a is not None else None,
        max_activity_by_limit_gbq=by_limit,
        violations=violations,
        warnings=warnings,
        assumptions=assumptions,
        sources=[PARTITION_SOURCE, f"E = {inputs.energy_j_per_gbq} J/GBq ({Y90.source})", *limits.sources],
    )


# --- single compartment and BSA ----------------------------------------------------------------------


def single_compartment_activity_gbq(
    target_gy: float, perfused_mass_g: float, lsf: float = 0.0, residual_fraction: float = 0.0, energy_j_per_gbq: float = ENERGY_J_PER_GBQ
) -> float:
    """MIRD single compartment (glass): A = D M / (E (1 - LSF)(1 - R)) (TheraSphere package insert, with E = 49.67 J/GBq)."""
    d = _positive(target_gy, "target perfused liver dose (Gy)")
    m = _positive(perfused_mass_g, "perfused liver mass (g)")
    return d * (m / 1000.0) / (energy_j_per_gbq * (1 - _fraction(lsf, "lung shunt fraction")) * (1 - _fraction(residual_fraction, "residual fraction")))


def bsa_dubois_m2(height_cm: float, weight_kg: float) -> float:
    """Body surface area (DuBois & DuBois 1916, as in the SIR-Spheres IFU): 0.20247 H[m]^0.725 W[kg]^0.425."""
    h = _positive(height_cm, "height (cm)") / 100.0
    w = _positive(weight_kg, "weight (kg)")
    return 0.20247 * h**0.725 * w**0.425


def resin_lsf_reduction(lsf: float) -> tuple[float, str | None]:
    """(activity factor, warning) for the SIR-Spheres IFU lung shunt reductions."""
    lsf = _fraction(lsf, "lung shunt fraction")
    if lsf < 0.10:
        return 1.0, None
    if lsf < 0.15:
        return 0.8, "LSF 10-15 %: activity reduced by 20 % (SIR-Spheres IFU)"
    if lsf <= 0.20:
        return 0.6, "LSF 15-20 %: activity reduced by 40 % (SIR-Spheres IFU)"
    return 0.0, f"LSF {100 * lsf:.1f} % > 20 %: SIR-Spheres treatment is not recommended (IFU)"


@dataclass(frozen=True)
class BSAPlan:
    bsa_m2: float
    tumour_involvement: float
    whole_liver_activity_gbq: float
    treated_fraction: float
    lsf_factor: float
    activity_gbq: float
    warnings: tuple[str, ...]
    source: str = "SIR-Spheres IFU BSA method; Kennedy et al. Int J Radiat Oncol Biol Phys 2007;68:13"


def resin_bsa_plan(
    bsa_m2: float, tumour_volume_ml: float, normal_liver_volume_ml: float, treated_fraction: float = 1.0, lsf: float = 0.0
) -> BSAPlan:
    """A = (BSA - 0.2 + V_T/(V_T + V_N)) × treated fraction × LSF factor (GBq)."""
    bsa = _positive(bsa_m2, "body surface area (m²)")
    v_t = _positive(tumour_volume_ml, "tumour volume (mL)", allow_zero=True)
    v_n = _positive(normal_liver_volume_ml, "normal liver volume (mL)")
    if not (0 < treated_fraction <= 1):
        raise SIRTInputError(f"treated liver fraction must be in (0, 1], got {treated_fraction!r}")
    involvement = v_t / (v_t + v_n)
    whole = bsa - 0.2 + involvement
    factor, warning = resin_lsf_reduction(lsf)
    return BSAPlan(bsa, involvement, whole, treated_fraction, factor, whole * treated_fraction * factor, tuple(w for w in [warning] if w))


# --- voxel-based planning ------------------------------------------------------------------------------


class VoxelPlanner:
    """Scale a 99mTc-MAA-predicted dose map to any activity and report the dose-volume constraints.

    The dose is proportional to activity (D(A) = D_ref A / A_ref), so the voxels of each structure
    are sorted once and every activity costs one pass over them (fast enough to follow a slider).
    BED is recomputed from the scaled dose voxel by voxel (BED is not linear in activity).
    """

    def __init__(
        self,
        dose_ref: np.ndarray,
        reference_activity_gbq: float,
        structures: Sequence[AnalysisStructure],
        voxel_volume_ml: float,
        lq: Mapping[str, LQParameters] | None = None,
        half_life_h: float = Y90.half_life_h,
        dx_method: DxMethod = "nearest_rank",
    ):
        self.reference_activity_gbq = _positive(reference_activity_gbq, "reference activity (GBq)")
        self.structures = {s.name: s for s in structures}
        self.samples: dict[str, VoxelSample] = {s.name: voxel_sample(dose_ref, s.weights, voxel_volume_ml, s.name)[0] for s in structures}
        self.lq = dict(lq or {})
        unknown = set(self.lq) - set(self.structures)
        if unknown:
            raise SIRTInputError(f"LQ parameters given for unknown structures: {', '.join(sorted(unknown))}")
        self.half_life_h = half_life_h
        self.dx_method = dx_method

    def features(self, activity_gbq: float) -> dict[str, dict[str, float | None]]:
        scale = _positive(activity_gbq, "activity (GBq)", allow_zero=True) / self.reference_activity_gbq
        out = {}
        for name, sample in self.samples.items():
            role = self.structures[name].role
            dose = sample.mapped(lambda d: d * scale)
            features = {"volume_ml": dose.total_volume_ml, **quantity_features(dose, "dose", role, self.dx_method)}
            if name in self.lq:
                lq = self.lq[name]
                features.update(quantity_features(dose.mapped(lambda d, lq=lq: bed_gy(d, lq, self.half_life_h)), "bed", role, self.dx_method))
            out[name] = features
        return out

    def activity_for(self, structure: str, feature: str, target: float, max_activity_gbq: float = 100.0) -> float:
        """Activity (GBq) at which a non-decreasing feature (dose or BED mean, D_x, V_x) reaches ``target``."""
        if structure not in self.samples:
            raise SIRTInputError(f"unknown structure {structure!r}")

        def value(a: float) -> float:
            v = self.features(a)[structure].get(feature)
            if v is None and feature not in self.features(self.reference_activity_gbq)[structure]:
                raise SIRTInputError(f"feature {feature!r} is not available for {structure!r}")
            return -math.inf if v is None else v

        if value(max_activity_gbq) < target:
            raise SIRTInputError(f"{structure} {feature} stays below {target} even at {max_activity_gbq} GBq")
        lo, hi = 0.0, max_activity_gbq
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            if value(mid) >= target:
                hi = mid
            else:
                lo = mid
            if hi - lo < 1e-9 * max(hi, 1e-9):
                break
        return hi

    def max_activity(self, limits: Mapping[tuple[str, str], float], max_activity_gbq: float = 100.0) -> tuple[float, str | None]:
        """Largest activity keeping every (structure, feature) at or below its limit, and the limiting one."""
        best, which = max_activity_gbq, None
        for (structure, feature), limit in limits.items():
            try:
                a = self.activity_for(structure, feature, limit, max_activity_gbq)
            except SIRTInputError as exc:
                if "stays below" in str(exc):
                    continue
                raise
            if a < best:
                best, which = a, f"{structure}:{feature}"
        return best, which


# --- measurements on a 99mTc-MAA SPECT ----------------------------------------------------------------


@dataclass(frozen=True)
class MAAMeasurements:
    """Volumes (mL) and count ratios measured on a 99mTc-MAA SPECT with a segmentation."""

    tumours: tuple[str, ...]
    tumour_volume_ml: float
    normal_perfused_volume_ml: float | None
    whole_normal_volume_ml: float | None
    lung_volume_ml: float | None
    tnr: float | None  # tumours against the normal perfused liver
    lsf: float | None  # lung counts / (lung + liver counts)
    definitions: dict[str, str]
    counts: dict[str, float]
    warnings: tuple[str, ...] = ()


def measure_maa(
    spect,
    segmentation,
    tumour_patterns: Sequence[str],
    perfused: str | None = None,
    normal_perfused: str | None = None,
    whole_liver: str | None = None,
    lung: str | None = None,
    partial_voxels: str = "fraction",
    clamp_negative: bool = False,
    tumour_patterns_given: bool = True,
) -> MAAMeasurements:
    """Tumour, normal-liver and lung volumes, TNR and LSF from a count image and its segmentation.

    - tumours: the structures matching ``tumour_patterns`` (their union);
    - normal perfused liver: the ``normal_perfused`` segment, or ``perfused`` − tumours;
    - whole normal liver: ``whole_liver`` − tumours;
    - LSF = C_lung / (C_lung + C_liver), C_liver the counts in ``whole_liver`` (or ``perfused``).
    """
    import SimpleITK as sitk

    from ..dose.engine import check_voxel_values
    from ..io.volumes import voxel_volume_ml
    from ..structures import map_segments
    from .constraints import concentration, lung_shunt_fraction
    from .derived import require_nonempty, resolve_names, subtract, union

    if perfused and normal_perfused:
        raise SIRTInputError("give the perfused volume (normal perfused liver = perfused - tumours) or the normal perfused liver segment, not both")
    values, invalid = check_voxel_values(sitk.GetArrayFromImage(spect).astype(np.float64), clamp_negative)
    names = segmentation.names
    if tumour_patterns_given:
        tumours = resolve_names(tumour_patterns, names, "tumour segment")
    else:
        from .derived import match_names

        tumours = [n for n in names if any(match_names(p, [n]) for p in tumour_patterns)]
    needed = list(tumours)
    picked = {}
    for key, given in (("perfused", perfused), ("normal_perfused", normal_perfused), ("whole_liver", whole_liver), ("lung", lung)):
        if given:
            picked[key] = resolve_names([given], names, f"{key.replace('_', ' ')} segment")[0]
            needed.append(picked[key])
    mapped = map_segments(segmentation, spect, list(dict.fromkeys(needed)), partial_voxels)
    voxel_ml = voxel_volume_ml(spect.GetSpacing())
    w = {n: s.weights for n, s in mapped.items()}
    tumour_w = union(*(w[t] for t in tumours)) if tumours else np.zeros(values.shape, np.float32)
    definitions, counts, warnings = {}, {}, []
    if invalid["negative"] or invalid["non_finite"]:
        warnings.append(f"{invalid['negative']} negative and {invalid['non_finite']} NaN voxels of the SPECT set to zero")

    def volume(weights):
        return float(np.sum(weights, dtype=np.float64) * voxel_ml)

    npl_w = None
    if "normal_perfused" in picked:
        npl_w = w[picked["normal_perfused"]]
        definitions["normal_perfused_liver"] = picked["normal_perfused"]
    elif "perfused" in picked:
        definitions["normal_perfused_liver"] = picked["perfused"] + "".join(f" - {t}" for t in tumours)
        npl_w = require_nonempty(subtract(w[picked["perfused"]], tumour_w), "normal perfused liver", definitions["normal_perfused_liver"])
    wnl_w = None
    if "whole_liver" in picked:
        definitions["whole_normal_liver"] = picked["whole_liver"] + "".join(f" - {t}" for t in tumours)
        wnl_w = require_nonempty(subtract(w[picked["whole_liver"]], tumour_w), "whole normal liver", definitions["whole_normal_liver"])
    tnr = None
    if tumours and npl_w is not None:
        c_n = concentration(values, npl_w)
        if c_n > 0:
            tnr = concentration(values, tumour_w) / c_n
        else:
            warnings.append("the normal perfused liver has no counts: TNR undefined")
    lsf = None
    if "lung" in picked:
        liver_key = "whole_liver" if "whole_liver" in picked else "perfused" if "perfused" in picked else None
        if liver_key is None:
            raise SIRTInputError("measuring the lung shunt fraction needs the liver (or perfused volume) segment too")
        counts["lung"] = float(np.sum(w[picked["lung"]] * values, dtype=np.float64))
        counts["liver"] = float(np.sum(w[picked[liver_key]] * values, dtype=np.float64))
        lsf = lung_shunt_fraction(counts["lung"], counts["liver"])
        definitions["lsf"] = f"counts in {picked['lung']!r} / ({picked['lung']!r} + {picked[liver_key]!r})"
    return MAAMeasurements(
        tumours=tuple(tumours),
        tumour_volume_ml=volume(tumour_w),
        normal_perfused_volume_ml=volume(npl_w) if npl_w is not None else None,
        whole_normal_volume_ml=volume(wnl_w) if wnl_w is not None else None,
        lung_volume_ml=volume(w[picked["lung"]]) if "lung" in picked else None,
        tnr=tnr,
        lsf=lsf,
        definitions=definitions,
        counts=counts,
        warnings=tuple(warnings),
    )
