"""Phantoms shared by the Monte Carlo tests and ``bench/bench_mc.py``: arrays (z, y, x), no files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ICRP107_Y90_MEAN_BETA_MEV = 0.9330
"""Mean 90Y beta energy per decay stated by ICRP Publication 107 (0.932991 MeV): the reference for
the energy the Monte Carlo source deposits."""

LIVER_DENSITY_G_PER_ML = 1.06
LUNG_DENSITY_G_PER_ML = 0.26


@dataclass(frozen=True)
class Slab:
    """Liver (uniform activity) for x < interface, lung (no activity) beyond; 1 mm along x."""

    tia_bq_s: np.ndarray
    density_g_per_ml: np.ndarray
    spacing_xyz_mm: tuple[float, float, float]
    interface_index: int  # first lung column along x
    centre: tuple[slice, slice]  # (z, y) region away from the lateral edges, for depth profiles

    def depth_profile(self, dose: np.ndarray) -> np.ndarray:
        """Mean dose per 1 mm layer along x over the central region."""
        z, y = self.centre
        return dose[z, y, :].mean(axis=(0, 1))

    def lung_depths_mm(self) -> np.ndarray:
        """Depth of each layer's centre into lung (negative in liver)."""
        n = self.tia_bq_s.shape[2]
        return (np.arange(n) - self.interface_index + 0.5) * self.spacing_xyz_mm[0]


def liver_lung_slab(liver_mm: int = 48, lung_mm: int = 30, lateral_mm: float = 96.0, lateral_voxel_mm: float = 8.0,
                    tia_per_ml_bq_s: float = 1e9) -> Slab:
    """A liver/lung interface: activity uniform in liver, 1 mm layers along x, coarser laterally.

    The slab is finite laterally; methods compared on it see the same finite phantom."""
    n_lat = int(round(lateral_mm / lateral_voxel_mm))
    spacing = (1.0, lateral_voxel_mm, lateral_voxel_mm)
    voxel_ml = spacing[0] * spacing[1] * spacing[2] / 1000.0
    shape = (n_lat, n_lat, liver_mm + lung_mm)
    density = np.full(shape, LUNG_DENSITY_G_PER_ML)
    density[:, :, :liver_mm] = LIVER_DENSITY_G_PER_ML
    tia = np.zeros(shape)
    tia[:, :, :liver_mm] = tia_per_ml_bq_s * voxel_ml
    quarter = n_lat // 4
    centre = (slice(quarter, n_lat - quarter), slice(quarter, n_lat - quarter))
    return Slab(tia, density, spacing, liver_mm, centre)


def uniform_sphere(diameter_mm: float = 100.0, voxel_mm: float = 4.0, tia_per_ml_bq_s: float = 1e9) -> tuple[np.ndarray, np.ndarray]:
    """A uniform activity sphere in a cube of the same soft tissue; returns (tia, inside mask)."""
    n = int(np.ceil(diameter_mm / voxel_mm)) + 8
    centre = (n - 1) / 2.0
    z, y, x = np.indices((n, n, n))
    inside = (x - centre) ** 2 + (y - centre) ** 2 + (z - centre) ** 2 <= (diameter_mm / 2.0 / voxel_mm) ** 2
    return np.where(inside, tia_per_ml_bq_s * voxel_mm**3 / 1000.0, 0.0), inside
