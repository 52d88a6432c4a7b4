"""Dose parameters: the validated ``DoseParameters`` and the one builder that makes them from plain values.

``DoseParameters`` (like the calibrations and ``LQParameters`` it holds) checks itself when it is
made, so a parameter set that exists is a valid one and the engine does not check it again.
``build_dose_parameters`` turns the plain values of any front end into one: the ``sirt dose``
options, the Slicer module's ``DoseSettings`` and a manifest entry (``dose_parameters_from_mapping``)
all go through it, so each accepts and refuses the same things with the same one-line
``SIRTInputError``.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ..errors import SIRTInputError
from ..nuclides import DENSITY_SOFT_TISSUE_G_PER_ML, check_density, radionuclide
from ..structures import PARTIAL_VOXEL_MODES, PartialVoxelMode
from .calibration import AbsoluteCalibration, Calibration, RelativeCalibration
from .density import HUDensityTable, read_hu_density_table
from .kernels import KERNEL_SOURCES
from .montecarlo import MCSettings
from .radiobiology import PRESETS, LQParameters

DoseMethod = Literal["ldm", "vsv", "vsv-lung", "mc"]
DOSE_METHODS: tuple[str, ...] = ("ldm", "vsv", "vsv-lung", "mc")  # vsv-lung: range-scaled kernels; mc: Monte Carlo (extra "mc")
CALIBRATION_MODES: tuple[str, ...] = ("absolute", "relative")
DEFAULT_CALIBRATION_VOI: tuple[str, ...] = ("liver",)
BedPrecedence = Literal["smallest", "last"]
BED_PRECEDENCES: tuple[str, ...] = ("smallest", "last")


def _choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise SIRTInputError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


@dataclass(frozen=True)
class DoseParameters:
    calibration: Calibration
    method: DoseMethod = "ldm"
    radionuclide: str = "y90"
    half_life_h: float | None = None  # None: the nuclide's own half-life (nuclides.py)
    density_g_per_ml: float = DENSITY_SOFT_TISSUE_G_PER_ML
    segment_densities_g_per_ml: dict[str, float] = field(default_factory=dict)  # e.g. {"lungs": 0.3}
    kernel: Literal["auto", "lanconelli", "dpk"] = "auto"
    partial_voxels: PartialVoxelMode = "fraction"
    clamp_invalid: bool = False  # set negative and NaN voxels to zero instead of refusing them
    hu_density_table: HUDensityTable | None = None  # with a CT given to compute_dose: density per voxel
    radiobiology: dict[str, LQParameters] = field(default_factory=dict)  # segment name -> LQ parameters, in the order given
    bed_precedence: BedPrecedence = "smallest"  # where parameterised segments overlap: see engine.lq_parameter_map
    segments: tuple[str, ...] | None = None  # None: every segment
    lung_mass_g: float | None = None  # with a lung shunt fraction: lung dose by the partition model
    monte_carlo: MCSettings | None = None  # method "mc": decays or target uncertainty, processes, seed (None: defaults)

    def __post_init__(self) -> None:
        if not isinstance(self.calibration, (AbsoluteCalibration, RelativeCalibration)):
            raise SIRTInputError(f"calibration must be absolute or relative, got {type(self.calibration).__name__}")
        _choice(self.method, DOSE_METHODS, "dose method")
        _choice(self.kernel, KERNEL_SOURCES, "kernel source")
        _choice(self.partial_voxels, PARTIAL_VOXEL_MODES, "partial-voxel mode")
        _choice(self.bed_precedence, BED_PRECEDENCES, "BED precedence")
        if self.lung_mass_g is not None and not (self.lung_mass_g > 0 and math.isfinite(self.lung_mass_g)):
            raise SIRTInputError(f"lung mass must be a positive number of g, got {self.lung_mass_g!r}")
        nuclide = radionuclide(self.radionuclide, self.half_life_h)  # refuses unknown nuclides and bad half-lives
        if self.method != "ldm" and nuclide.name != "Y-90":
            raise SIRTInputError(f"kernels and Monte Carlo are available for Y-90 only; use the LDM for {nuclide.name}")
        if self.monte_carlo is not None and not isinstance(self.monte_carlo, MCSettings):
            raise SIRTInputError(f"monte_carlo must be MCSettings, got {type(self.monte_carlo).__name__}")
        object.__setattr__(self, "density_g_per_ml", check_density(self.density_g_per_ml, "tissue density"))
        densities = {str(n): check_density(v, f"density of {n!r}") for n, v in self.segment_densities_g_per_ml.items()}
        object.__setattr__(self, "segment_densities_g_per_ml", densities)
        for name, lq in self.radiobiology.items():
            if not isinstance(lq, LQParameters):
                raise SIRTInputError(f"LQ parameters of {name!r} must be LQParameters, got {lq!r}")
        if self.hu_density_table is not None and not isinstance(self.hu_density_table, HUDensityTable):
            raise SIRTInputError(f"hu_density_table must be an HUDensityTable, got {type(self.hu_density_table).__name__}")
        if self.segments is not None:
            segments = tuple(self.segments)
            if not segments or not all(isinstance(s, str) and s for s in segments):
                raise SIRTInputError(f"segments must be non-empty names, got {self.segments!r}")
            object.__setattr__(self, "segments", segments)


def build_dose_parameters(
    mode: str | None = None,
    *,
    units: str | None = None,
    administration_time: datetime | str | None = None,
    scan_time: datetime | str | None = None,
    scan_after_administration_h: float | None = None,
    camera_factor_cps_per_mbq: float | None = None,
    acquisition_duration_s: float | None = None,
    administered_activity_gbq: float | None = None,
    calibration_voi: Iterable[str] | str | None = None,
    lung_shunt_fraction: float = 0.0,
    residual_fraction: float = 0.0,
    lungs_in_voi: bool = False,
    method: str = "ldm",
    kernel: str = "auto",
    radionuclide: str = "y90",
    half_life_h: float | None = None,
    density_g_per_ml: float = DENSITY_SOFT_TISSUE_G_PER_ML,
    segment_densities: Mapping[str, float | str] | Iterable[str] | str | None = None,
    partial_voxels: str = "fraction",
    clamp_negative: bool = False,
    radiobiology: Mapping[str, LQParameters | str] | Iterable[str] | None = None,
    bed_precedence: str = "smallest",
    hu_density_table: HUDensityTable | str | Path | None = None,
    segments: Iterable[str] | str | None = None,
    lung_mass_g: float | None = None,
    monte_carlo: MCSettings | Mapping[str, Any] | None = None,
) -> DoseParameters:
    """Validated ``DoseParameters`` from plain values; ``None`` means "not given".

    - ``mode``: ``absolute`` or ``relative``; ``None`` picks relative when an administered activity is given.
    - times: ``datetime`` or ISO 8601 text; or ``scan_after_administration_h`` instead of both.
    - ``calibration_voi``, ``segments``: names, or one text with names separated by commas.
    - ``segment_densities``: ``{name: g/mL}``, ``NAME=G_PER_ML`` items, or one text of such items
      separated by commas, semicolons or new lines.
    - ``radiobiology``: ``{name: LQParameters | preset | "alpha_beta_gy,t_rep_h"}`` or ``NAME=SPEC`` items,
      in painting order (later entries win where segments overlap).
    - ``hu_density_table``: a table or the path of its CSV.
    - ``administered_activity_gbq`` in absolute mode: only checked against the activity in the image.
    - ``monte_carlo``: ``MCSettings`` or a mapping of its fields (``decays``, ``target_uncertainty``, ...).
    """
    if mode is None:
        mode = "relative" if administered_activity_gbq is not None else "absolute"
    _choice(mode, CALIBRATION_MODES, "calibration mode")
    if mode == "absolute":
        calibration: Calibration = AbsoluteCalibration(
            administered_activity_bq=None if administered_activity_gbq is None else to_number(administered_activity_gbq, "administered activity") * 1e9,
            units=units,
            administration_time=_datetime(administration_time, "administration time"),
            scan_time=_datetime(scan_time, "scan time"),
            scan_after_administration_h=None if scan_after_administration_h is None else to_number(scan_after_administration_h, "hours from administration to scan"),
            camera_factor_cps_per_mbq=camera_factor_cps_per_mbq,
            acquisition_duration_s=acquisition_duration_s,
        )
    else:
        if administered_activity_gbq is None:
            raise SIRTInputError("relative calibration needs the administered activity in GBq (administered_activity_gbq)")
        calibration = RelativeCalibration(
            administered_activity_bq=to_number(administered_activity_gbq, "administered activity") * 1e9,
            calibration_voi=_names(calibration_voi) or DEFAULT_CALIBRATION_VOI,
            lung_shunt_fraction=to_number(lung_shunt_fraction, "lung shunt fraction"),
            residual_fraction=to_number(residual_fraction, "residual fraction"),
            lungs_in_voi=bool(lungs_in_voi),
        )
    if isinstance(hu_density_table, (str, Path)):
        hu_density_table = read_hu_density_table(hu_density_table)
    return DoseParameters(
        calibration=calibration,
        method=method,
        radionuclide=radionuclide,
        half_life_h=None if half_life_h is None else to_number(half_life_h, "half-life"),
        density_g_per_ml=to_number(density_g_per_ml, "tissue density"),
        segment_densities_g_per_ml={n: to_number(v, f"density of {n}") for n, v in _name_values(segment_densities, "segment density").items()},
        kernel=kernel,
        partial_voxels=partial_voxels,
        clamp_invalid=bool(clamp_negative),
        radiobiology=lq_parameters(radiobiology),
        bed_precedence=bed_precedence,
        hu_density_table=hu_density_table,
        segments=_names(segments),
        lung_mass_g=None if lung_mass_g is None else to_number(lung_mass_g, "lung mass"),
        monte_carlo=_mc_settings(monte_carlo),
    )


def _mc_settings(value: MCSettings | Mapping[str, Any] | None) -> MCSettings | None:
    if value is None or isinstance(value, MCSettings):
        return value
    known = set(MCSettings.__dataclass_fields__)
    unknown = sorted(set(value) - known)
    if unknown:
        raise SIRTInputError(f"unknown Monte Carlo settings {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = dict(value)
    if values.get("decays") is not None:
        decays = to_number(values["decays"], "Monte Carlo decays")
        if not (decays >= 1 and float(decays).is_integer()):
            raise SIRTInputError(f"Monte Carlo decays must be a positive whole number, got {values['decays']!r}")
        values["decays"] = int(decays)
    if "target_segments" in values:
        values["target_segments"] = _names(values["target_segments"]) or ()
    return MCSettings(**values)


BUILDER_KEYS: tuple[str, ...] = tuple(inspect.signature(build_dose_parameters).parameters)
"""The keys ``build_dose_parameters`` (and a manifest entry) accepts."""


def dose_parameters_from_mapping(values: Mapping[str, Any]) -> DoseParameters:
    """``build_dose_parameters(**values)``, refusing unknown keys with a clear message (manifests, JSON)."""
    unknown = sorted(set(values) - set(BUILDER_KEYS))
    if unknown:
        raise SIRTInputError(f"unknown dose parameters {', '.join(unknown)}; known: {', '.join(BUILDER_KEYS)}")
    return build_dose_parameters(**values)


def lq_parameters(spec: Mapping[str, LQParameters | str] | Iterable[str] | None) -> dict[str, LQParameters]:
    """LQ parameters per segment from ``{name: spec}`` or ``NAME=SPEC`` items; a spec is ``LQParameters``,
    a preset name or ``alpha_beta_gy,t_rep_h``. Order is kept."""
    result = {}
    for name, value in _name_values(spec, "LQ parameters").items():
        if isinstance(value, LQParameters):
            result[name] = value
        elif value in PRESETS:
            result[name] = PRESETS[value]
        else:
            parts = str(value).split(",")
            if len(parts) != 2:
                raise SIRTInputError(f"LQ parameters of {name}: give a preset ({', '.join(PRESETS)}) or 'alpha_beta_gy,t_rep_h', got {value!r}")
            result[name] = LQParameters(to_number(parts[0], "alpha/beta"), to_number(parts[1], "repair half-time"))
    return result


def name_value_pairs(items: Iterable[str], what: str) -> list[tuple[str, str]]:
    """``NAME=VALUE`` items as (name, value); the last ``=`` separates."""
    result = []
    for item in items:
        name, sep, value = str(item).rpartition("=")
        if not sep or not name.strip() or not value.strip():
            raise SIRTInputError(f"{what} must look like NAME=VALUE, got {item!r}")
        result.append((name.strip(), value.strip()))
    return result


def _name_values(spec, what: str) -> dict[str, Any]:
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        return dict(spec)
    if isinstance(spec, str):
        spec = [item for item in re.split(r"[,;\n]", spec) if item.strip()]
    return dict(name_value_pairs(spec, what))


def _names(value: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    names = tuple(str(v).strip() for v in items if str(v).strip())
    return names or None


def to_number(value: float | str, what: str) -> float:
    """``float(value)``, or a ``SIRTInputError`` naming ``what``."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SIRTInputError(f"{what}: {value!r} is not a number") from None


def _datetime(value: datetime | str | None, what: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise SIRTInputError(f"{what}: {text!r} is not an ISO 8601 date and time such as 2024-05-02T10:30") from None
