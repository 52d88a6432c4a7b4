"""Lung-aware kernel convolution: the beta range follows the density of the target.

A soft-tissue kernel scaled only in amplitude (``vsv.density_corrected``) keeps the electrons' soft-
tissue range in lung, where they travel about four times further; published comparisons with MC find
such kernels 60-88 % low for the lung mean dose (Mikell et al., EJNMMI Phys 2015;2:16). Here the
kernel's range is scaled as well.

Physics. In a homogeneous medium of density rho the dose per decay at distance r is
D_rho(r) = rho^2 D_w(rho r) (O'Connor's scaling theorem for the water point kernel D_w; Cross,
Phys Med Biol 1992), which ``kernels.build_kernel_from_dpk`` turns into voxel S values S_rho.
Across a plane interface the same theorem, applied along each straight path, says that the dose is a
function of radiological depth only: beside a uniformly active medium of density rho_s, the dose
at depth x in a medium of density rho_t is the plateau times g(rho_t x), g the depth profile of a
semi-infinite source in radiological depth. The convolution

    D(t) = rho_t * sum_s (A(s) / rho_s) S_{rho_t}(t - s)

(activity per unit density, convolved with the kernel of the target's density) reproduces this
exactly for a uniform source against any slab, reduces to the range-scaled kernel in a homogeneous
medium, and is one convolution per target density. Target densities are interpolated on a
geometric ladder c_k (ratio ``LADDER_RATIO``, anchored at 1 g/mL) with linear weights in log
density. What it misses: activity that is not uniform within a beta range of an interface is
placed at the target's radiological distance rather than the path's. Its error against Monte Carlo
on a liver/lung slab is measured in ``bench/bench_mc.py`` and reported in the README.
"""

from __future__ import annotations

import math

import numpy as np

from .kernels import MAX_KERNEL_HALF_WIDTH, BETA_CUTOFF_WATER_MM, build_kernel_from_dpk
from .vsv import vsv_dose_gy

LADDER_RATIO = 1.15
"""Ratio between neighbouring densities of the ladder: kernels differ by 15 % in range."""

DENSITY_FLOOR_G_PER_ML = 0.1
"""Lowest density given its own kernel (air voxels use it: the dose in air is not reported)."""


def density_ladder(density: np.ndarray, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Ladder densities c_k = 1.15^k g/mL spanning the densities present (floored so kernels fit)."""
    floor = max(DENSITY_FLOOR_G_PER_ML, BETA_CUTOFF_WATER_MM / (MAX_KERNEL_HALF_WIDTH * min(spacing_mm)))
    low = max(float(np.min(density)), floor)
    high = max(float(np.max(density)), low)
    step = math.log(LADDER_RATIO)
    k_low = math.floor(math.log(low) / step + 1e-9)
    k_high = math.ceil(math.log(high) / step - 1e-9)
    return LADDER_RATIO ** np.arange(k_low, k_high + 1, dtype=float)


def ladder_weights(density: np.ndarray, ladder: np.ndarray) -> np.ndarray:
    """Hat-function weights (sum 1 per voxel) of each voxel's density on the ladder, in log density."""
    position = np.interp(np.log(np.clip(density, ladder[0], ladder[-1])), np.log(ladder), np.arange(ladder.size))
    weights = np.zeros((ladder.size, *density.shape), dtype=np.float64)
    lower = np.floor(position).astype(np.intp)
    upper = np.minimum(lower + 1, ladder.size - 1)
    frac = position - lower
    for k in range(ladder.size):
        weights[k] = np.where(lower == k, 1.0 - frac, 0.0) + np.where((upper == k) & (upper != lower), frac, 0.0)
    return weights


def vsv_lung_dose_gy(tia_bq_s: np.ndarray, density_g_per_ml: np.ndarray | float, spacing_xyz_mm: tuple[float, float, float]) -> np.ndarray:
    """Absorbed dose (Gy, float32) by target-density range-scaled kernels (see the module docstring).

    ``tia_bq_s`` and ``density_g_per_ml`` are (z, y, x) arrays (or one density); ``spacing_xyz_mm``
    is the voxel size along x, y, z as SimpleITK gives it.
    """
    tia = np.asarray(tia_bq_s, dtype=np.float64)
    density = np.array(np.broadcast_to(np.asarray(density_g_per_ml, dtype=np.float64), tia.shape))
    ladder = density_ladder(density, spacing_xyz_mm)
    weights = ladder_weights(density, ladder)
    per_density = tia / density
    dose = np.zeros(tia.shape, dtype=np.float64)
    for k in range(ladder.size):
        if weights[k].any():
            kernel = build_kernel_from_dpk(spacing_xyz_mm, float(ladder[k]))
            dose += weights[k] * vsv_dose_gy(per_density, kernel.values_mgy_per_mbq_s)
    return (dose * density).astype(np.float32)
