"""Dose-volume histograms and the dose-volume statistics behind them, on fractional-voxel structures.

Conventions (also in ``docs/dose-volume.md``):

- **Input**: a value array (dose or BED, Gy), a weight array of the same shape with the fraction
  of each voxel inside the structure (0..1, see ``structures.py``) and the voxel volume in mL.
  Partial voxels count as partial volumes: voxel *i* contributes ``w_i * v`` mL everywhere
  (volumes, V_x, D_x, mean, SD). Minimum and maximum are taken over voxels with ``w_i > 0``.
- **V_x** (volume receiving at least x Gy) is ``sum(w_i v, d_i >= x)``: exact for the voxelised
  dose, never read from a binned histogram.
- **D_x** (dose to the hottest x % of the volume), default ``"nearest_rank"``: sort the voxels by
  decreasing dose and accumulate their volumes; D_x is the dose of the first voxel at which the
  accumulated volume reaches x % of the total. It is the highest dose level d with V(d) >= x %,
  always a dose present in the structure; D_0 is the maximum and D_100 the minimum.
  ``"interpolate"``: each distinct dose is placed at the middle of the volume slab of the voxels
  having it and D_x is linearly interpolated between those points (clamped to max/min at the
  ends); for a linear dose ramp this reproduces the continuous D_x exactly.
- **Curves** are sampled at levels 0, b, 2b, ... (b = bin width, default 0.5 Gy) up to one bin
  past the maximum; the cumulative value at each level is exact V(level); the differential
  value of bin [l_j, l_j+1) is V(l_j) - V(l_j+1), so it sums to the total volume.
- **Small structures**: below ``SMALL_STRUCTURE_VOXELS`` voxels (sum of weights) a warning is
  attached: D2/D98 are then within a voxel or two of max/min.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import SIRTInputError

DxMethod = Literal["nearest_rank", "interpolate"]
DX_METHODS: tuple[str, ...] = ("nearest_rank", "interpolate")
DEFAULT_BIN_WIDTH_GY = 0.5
SMALL_STRUCTURE_VOXELS = 27.0
"""Effective voxel count (sum of weights) below which a structure's D_x values get a warning."""
_REL_TOL = 1e-12


@dataclass(frozen=True)
class VoxelSample:
    """The voxels of one structure, sorted by decreasing value, with their volumes (mL)."""

    values: np.ndarray  # float64, decreasing
    volumes_ml: np.ndarray  # float64, w_i * voxel volume, same order
    n_voxels: int  # voxels with any weight
    voxel_volume_ml: float

    @property
    def total_volume_ml(self) -> float:
        return float(self.volumes_ml.sum())

    @property
    def effective_voxels(self) -> float:
        """Sum of weights (volume in voxel units)."""
        return float(self.volumes_ml.sum() / self.voxel_volume_ml)

    def mapped(self, function: Callable[[np.ndarray], np.ndarray]) -> "VoxelSample":
        """The sample after a non-decreasing function of the values (dose scaling, BED): no re-sort."""
        values = np.asarray(function(self.values), dtype=np.float64)
        return VoxelSample(values, self.volumes_ml, self.n_voxels, self.voxel_volume_ml)


def check_weights(weights: np.ndarray, shape: tuple[int, ...], name: str = "structure") -> np.ndarray:
    weights = np.asarray(weights)
    if weights.shape != tuple(shape):
        raise SIRTInputError(
            f"{name}: weights of shape {weights.shape} do not match the dose grid {tuple(shape)} "
            "(the structure must be mapped onto the dose grid first)"
        )
    if not np.all(np.isfinite(weights)) or weights.min(initial=0) < -1e-6 or weights.max(initial=0) > 1 + 1e-6:
        raise SIRTInputError(f"{name}: voxel weights must lie in [0, 1]")
    return weights


def check_voxel_volume(voxel_volume_ml: float) -> float:
    if not (voxel_volume_ml > 0 and math.isfinite(voxel_volume_ml)):
        raise SIRTInputError(f"voxel volume must be a positive number of mL, got {voxel_volume_ml!r}")
    return float(voxel_volume_ml)


def voxel_sample(
    values: np.ndarray, weights: np.ndarray, voxel_volume_ml: float, name: str = "structure", ignore_nonfinite: bool = False
) -> tuple[VoxelSample, float]:
    """Sort a structure's voxels; returns the sample and the volume (mL) left out for non-finite values.

    Non-finite values inside the structure are an error unless ``ignore_nonfinite`` (used for BED
    maps that are NaN where no LQ parameters were assigned), in which case they are left out and
    their volume is returned so the caller can report it.
    """
    voxel_volume_ml = check_voxel_volume(voxel_volume_ml)
    values = np.asarray(values)
    weights = check_weights(weights, values.shape, name)
    inside = weights > 0
    if not inside.any():
        raise SIRTInputError(f"{name} is empty on the dose grid (no voxel with a positive weight)")
    v = values[inside].astype(np.float64)
    w = weights[inside].astype(np.float64)
    finite = np.isfinite(v)
    left_out_ml = float(w[~finite].sum() * voxel_volume_ml)
    if not finite.all():
        if not ignore_nonfinite:
            raise SIRTInputError(f"{name}: {int((~finite).sum())} voxels inside the structure have NaN/infinite values")
        v, w = v[finite], w[finite]
        if v.size == 0:
            raise SIRTInputError(f"{name}: no voxel inside the structure has a finite value")
    order = np.argsort(-v, kind="stable")
    return VoxelSample(v[order], w[order] * voxel_volume_ml, int(v.size), voxel_volume_ml), left_out_ml


def dose_at_volume_pct(sample: VoxelSample, pct: float, method: DxMethod = "nearest_rank") -> float:
    """D_x: the dose received by at least ``pct`` % of the structure (see the module docstring)."""
    if not (0.0 <= pct <= 100.0):
        raise SIRTInputError(f"D_x needs x in [0, 100] %, got {pct!r}")
    return float(doses_at_volume_pct(sample, np.asarray([pct], dtype=np.float64), method)[0])


def doses_at_volume_pct(sample: VoxelSample, pcts: np.ndarray, method: DxMethod = "nearest_rank") -> np.ndarray:
    total = sample.total_volume_ml
    cumulative = np.cumsum(sample.volumes_ml)
    targets = np.asarray(pcts, dtype=np.float64) / 100.0 * total
    if method == "nearest_rank":
        index = np.searchsorted(cumulative, targets * (1.0 - _REL_TOL), side="left")
        return sample.values[np.clip(index, 0, sample.values.size - 1)]
    if method == "interpolate":
        # voxels of equal dose form one slab; each distinct dose sits at the middle of its slab
        last = np.append(np.flatnonzero(np.diff(sample.values) != 0), sample.values.size - 1)
        slab_end = cumulative[last]
        slab_start = np.concatenate(([0.0], slab_end[:-1]))
        return np.interp(targets, 0.5 * (slab_start + slab_end), sample.values[last])
    raise SIRTInputError(f"unknown D_x method {method!r}; choose one of {', '.join(DX_METHODS)}")


def volumes_at_dose_ml(sample: VoxelSample, levels_gy: np.ndarray) -> np.ndarray:
    """V(d) = volume (mL) receiving at least d, for each level d."""
    ascending = sample.values[::-1]
    tail = np.concatenate(([0.0], np.cumsum(sample.volumes_ml[::-1])))  # volume of the k lowest voxels
    below = np.searchsorted(ascending, np.asarray(levels_gy, dtype=np.float64), side="left")
    return tail[-1] - tail[below]


def volume_at_dose_ml(sample: VoxelSample, level_gy: float) -> float:
    return float(volumes_at_dose_ml(sample, np.asarray([level_gy]))[0])


@dataclass(frozen=True)
class SampleStatistics:
    volume_ml: float
    n_voxels: int
    mean_gy: float
    min_gy: float
    max_gy: float
    sd_gy: float

    @property
    def cv(self) -> float | None:
        """Coefficient of variation SD/mean; None when the mean is 0."""
        return self.sd_gy / self.mean_gy if self.mean_gy > 0 else None


def sample_statistics(sample: VoxelSample) -> SampleStatistics:
    w = sample.volumes_ml
    total = w.sum()
    mean = float(np.sum(w * sample.values) / total)
    variance = float(np.sum(w * (sample.values - mean) ** 2) / total)
    return SampleStatistics(
        volume_ml=float(total),
        n_voxels=sample.n_voxels,
        mean_gy=mean,
        min_gy=float(sample.values[-1]),
        max_gy=float(sample.values[0]),
        sd_gy=math.sqrt(max(variance, 0.0)),
    )


@dataclass(frozen=True)
class DVH:
    """Cumulative and differential DVH of one structure for one quantity (``dose`` or ``bed``)."""

    name: str
    quantity: str
    bin_width_gy: float
    levels_gy: np.ndarray  # bin lower edges; the cumulative curve is sampled here
    cumulative_volume_ml: np.ndarray  # V(>= level)
    differential_volume_ml: np.ndarray  # volume with level <= value < level + bin width
    total_volume_ml: float

    @property
    def cumulative_volume_pct(self) -> np.ndarray:
        return 100.0 * self.cumulative_volume_ml / self.total_volume_ml


def dvh_levels(max_value_gy: float, bin_width_gy: float, min_value_gy: float = 0.0) -> np.ndarray:
    """Levels 0 (or below, for negative values), b, 2b, ... up to one bin past the maximum."""
    if not (bin_width_gy > 0 and math.isfinite(bin_width_gy)):
        raise SIRTInputError(f"DVH bin width must be a positive number of Gy, got {bin_width_gy!r}")
    start = min(0.0, math.floor(min_value_gy / bin_width_gy) * bin_width_gy)
    n = int(math.floor((max_value_gy - start) / bin_width_gy)) + 2
    if n > 2_000_000:
        raise SIRTInputError(f"DVH bin width {bin_width_gy} Gy gives {n} bins up to {max_value_gy:.1f} Gy; choose a wider bin")
    return start + bin_width_gy * np.arange(n, dtype=np.float64)


def dvh_from_sample(
    sample: VoxelSample, name: str, quantity: str = "dose", bin_width_gy: float = DEFAULT_BIN_WIDTH_GY, max_level_gy: float | None = None
) -> DVH:
    top = max(float(sample.values[0]), max_level_gy or 0.0)
    levels = dvh_levels(top, bin_width_gy, float(sample.values[-1]))
    cumulative = volumes_at_dose_ml(sample, levels)
    differential = cumulative - np.append(cumulative[1:], 0.0)
    return DVH(name, quantity, float(bin_width_gy), levels, cumulative, differential, sample.total_volume_ml)


def compute_dvh(
    values: np.ndarray,
    weights: np.ndarray,
    voxel_volume_ml: float,
    name: str = "structure",
    quantity: str = "dose",
    bin_width_gy: float = DEFAULT_BIN_WIDTH_GY,
    max_level_gy: float | None = None,
) -> DVH:
    """DVH of the voxels of ``values`` weighted by ``weights`` (fraction of each voxel in the structure)."""
    sample, _ = voxel_sample(values, weights, voxel_volume_ml, name)
    return dvh_from_sample(sample, name, quantity, bin_width_gy, max_level_gy)


DVH_CSV_COLUMNS = ("structure", "quantity", "level_gy", "cumulative_volume_ml", "cumulative_volume_pct", "differential_volume_ml")


def dvh_rows(dvhs: list[DVH]) -> list[tuple]:
    """Long-format rows (one per structure, quantity and level) for ``dvh.csv``, numbers to 6 significant digits."""
    rows = []
    for d in dvhs:
        pct = d.cumulative_volume_pct
        for i, level in enumerate(d.levels_gy):
            rows.append(
                (d.name, d.quantity, f"{level:.6g}", f"{d.cumulative_volume_ml[i]:.6g}", f"{pct[i]:.6g}", f"{d.differential_volume_ml[i]:.6g}")
            )
    return rows
