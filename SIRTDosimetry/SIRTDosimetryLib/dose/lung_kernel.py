"""Lung-aware kernel convolution: the beta range follows the density of the target.

A soft-tissue kernel scaled only in amplitude (``vsv.density_corrected``) keeps the electrons' soft-
tissue range in lung, where they travel about four times further; published comparisons with MC find
such kernels 60-88 % low for the lung mean dose (Mikell et al., EJNMMI Phys 2015;2:16). Here the
kernel's range is scaled as well.

Physics. In a homogeneous medium of density rho the dose per decay at distance r is
D_rho(r) = rho^2 D_w(rho r) (O'Connor's scaling theorem for the water point kernel D_w; O'Connor,
Phys Med Biol 1957;1:352; Fano, Radiat Res 1954;1:237; Cross 1992), which ``kernels.build_kernel_from_dpk``
turns into voxel S values S_rho. The convolution

    D(t) = rho_t * sum_s (A(s) / rho_s) S_{rho_t}(t - s)

(activity per unit density, convolved with the kernel of the target's density) reduces to the
range-scaled kernel in a homogeneous medium and is one convolution per target density. Target
densities are interpolated on a geometric ladder c_k (ratio ``LADDER_RATIO``, anchored at 1 g/mL)
with linear weights in log density.

Where it is exact. In a laterally uniform slab of one composition, the electrons' transport in
radiological depth X = integral of rho dx does not depend on how the density is distributed (the
one-dimensional case of Fano's and O'Connor's theorems; it holds for the scattered, not only the
straight, paths), so beside a uniformly active medium of density rho_s the dose at depth x in a
medium of density rho_t is (A/rho_s) g(rho_t x), g the water depth dose of an active half-space.
The convolution reproduces this exactly when the activity is uniform over the real depth
max(12 mm / rho_t, 12 mm / rho_s) behind the interface, what both the target's and the true
view of the source reach (SIRTDosimetry/Testing/Python/test_lung_kernel.py compares it with g
computed from the point kernel directly).

What it misses. A source is placed at its real distance scaled by the target's density, not by the
mean density of the path between them (the radiological path length of density-corrected kernel
methods: Dieudonné et al., J Nucl Med 2013;54:236; Sanchez-Garcia et al., Phys Med Biol
2014;59:4769, collapsed-cone superposition for 90Y). So activity that varies within 12 mm / rho_t of
a lung voxel (about 4 cm) is placed too close: liver activity under the dome, and lung activity
beyond it, are seen from the lung through lung rather than through liver (on the torso phantom of
``bench/bench_mc.py``: +27 % in the lung within 2 cm of the liver, +0.5 % beyond), and a thin active
layer misses its deeper part (16 mm of active liver: -3 % in the first 4 mm of lung). For the same
reason activity in air would count 1/rho_air (~800) times: air voxels' activity is dropped (1 %
noise in air beside tissue would otherwise multiply the dose in the outer 4 mm of tissue by 2.6). A
path-length kernel would need one ray trace per source-target pair within the lung range (thousands
of offsets per voxel), which this module does not attempt. Its errors against Monte Carlo on a
liver/lung slab and a patient-like phantom are measured in ``bench/bench_mc.py`` and reported in the
README.
"""

from __future__ import annotations

import math

import numpy as np

from .kernels import BETA_CUTOFF_WATER_MM, MAX_KERNEL_HALF_WIDTH, build_kernel_from_dpk
from .mc_materials import MC_MATERIALS
from .vsv import vsv_dose_gy

LADDER_RATIO = 1.15
"""Ratio between neighbouring densities of the ladder: kernels differ by 15 % in range."""

AIR_UPPER_DENSITY_G_PER_ML = MC_MATERIALS[0].upper_density_g_per_ml
"""Voxels below this density are air (the tissue classes of ``mc_materials``): their activity is not transported."""

DENSITY_FLOOR_G_PER_ML = 0.1
"""Lowest density given its own kernel; lung below it (0.05-0.1 g/mL, emphysema) shares it."""


def density_ladder(density: np.ndarray, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Ladder densities c_k = 1.15^k g/mL spanning the densities present (floored so kernels fit).

    Air voxels do not widen the ladder: they take its lowest kernel (the dose in air is not
    reported), which spares the widest kernel (0.09 g/mL, 67^3 voxels at 4 mm), most of the cost
    with a CT."""
    floor = max(DENSITY_FLOOR_G_PER_ML, BETA_CUTOFF_WATER_MM / (MAX_KERNEL_HALF_WIDTH * min(spacing_mm)))
    tissue = density[density >= AIR_UPPER_DENSITY_G_PER_ML]
    low = max(float(np.min(tissue if tissue.size else density)), floor)
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
    # Decays in air (noise outside the body) would be weighted by 1/rho_air (~800): their electrons
    # leave instead, so they are dropped (the part that reaches tissue within a voxel is neglected).
    per_density = np.divide(tia, density, out=np.zeros_like(tia), where=density >= AIR_UPPER_DENSITY_G_PER_ML)
    dose = np.zeros(tia.shape, dtype=np.float64)
    for k in range(ladder.size):
        if weights[k].any():
            kernel = build_kernel_from_dpk(spacing_xyz_mm, float(ladder[k]))
            dose += weights[k] * vsv_dose_gy(per_density, kernel.values_mgy_per_mbq_s)
    return (dose * density).astype(np.float32)
