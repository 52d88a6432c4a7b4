"""Phantoms shared by the Monte Carlo tests and ``bench/bench_mc.py``: arrays (z, y, x), no files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ICRP107_Y90_MEAN_BETA_MEV = 0.9330
"""Mean 90Y beta energy per decay stated by ICRP Publication 107 (0.932991 MeV): the reference for
the energy the Monte Carlo source deposits."""

# Densities of the phantoms compared with Monte Carlo. The MC engine makes each material at the
# median density of its voxels, so in these phantoms (one density per material) PenRed's per-voxel
# density factor is 1: PenRed does not scale the electron range with that factor (bench/bench_mc.py,
# part ``density_factor``), so a phantom whose voxels needed it would carry the engine's error, not
# the physics. Lung 0.26 g/mL: inflated lung as in the published lung-dose comparisons.
LIVER_DENSITY_G_PER_ML = 1.06
LUNG_DENSITY_G_PER_ML = 0.26
SOFT_TISSUE_DENSITY_G_PER_ML = 1.00
AIR_DENSITY_G_PER_ML = 0.0012048


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

    def depth_profile_sigma(self, dose: np.ndarray, relative_uncertainty: np.ndarray) -> np.ndarray:
        """1-sigma of ``depth_profile`` from per-voxel Monte Carlo uncertainties, added in quadrature.

        Neighbouring voxels share histories, so this is a lower bound; the slab's laterally
        coarse voxels (8 mm against a 1 mm layer) keep that correlation small."""
        z, y = self.centre
        sigma = np.nan_to_num(dose[z, y, :].astype(float) * relative_uncertainty[z, y, :])
        return np.sqrt((sigma**2).sum(axis=(0, 1))) / (sigma.shape[0] * sigma.shape[1])

    @property
    def liver_mask(self) -> np.ndarray:
        return self.tia_bq_s > 0

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


@dataclass(frozen=True)
class TorsoPhantom:
    """A patient-like liver dome under the right lung, on a clinical voxel grid (arrays (z, y, x), z cranial).

    Regions are boolean masks; ``tia_bq_s`` holds the time-integrated activity per voxel."""

    tia_bq_s: np.ndarray
    density_g_per_ml: np.ndarray
    spacing_xyz_mm: tuple[float, float, float]
    liver: np.ndarray  # liver outside the tumour
    tumour: np.ndarray
    lung: np.ndarray

    def regions(self) -> dict[str, np.ndarray]:
        return {"lung": self.lung, "liver": self.liver, "tumour": self.tumour}


def torso_phantom(voxel_mm: float = 4.0, administered_tia_bq_s: float = 2e9 * 3.33e5, lung_shunt_fraction: float = 0.10,
                  tumour_to_normal: float = 4.0, tumour_diameter_mm: float = 32.0, tumour_depth_mm: float = 4.0) -> TorsoPhantom:
    """Liver dome under a lung, tumour just below the dome, lung shunt spread uniformly through the lung.

    Geometry (mm): an elliptic soft-tissue body (semi-axes 110 x 80 in x, y) 240 mm long in z; the liver
    an ellipsoid (semi-axes 80, 60, 55 in x, y, z) whose dome reaches 100 mm below the top of the
    grid; above the liver's mid-plane every body voxel more than 4 mm (a diaphragm) from the liver is
    lung, except a 12 mm soft-tissue chest wall and a 16 mm soft-tissue cap at the top of the grid (the lung
    is closed: a lung face open to the grid's edge would lose, in Monte Carlo, the electrons that
    tissue beyond it returns); the tumour a sphere touching the dome's
    inner surface ``tumour_depth_mm`` below it. Activity: ``lung_shunt_fraction`` of ``administered_tia_bq_s`` uniform
    in lung, the rest in the liver with the tumour ``tumour_to_normal`` times as concentrated.
    The default total corresponds to 2 GBq of 90Y decaying in place (mean life 3.33e5 s)."""
    from scipy import ndimage

    n_xy = (round(240 / voxel_mm), round(184 / voxel_mm))
    n_z = round(240 / voxel_mm)
    z, y, x = np.indices((n_z, n_xy[1], n_xy[0]), dtype=float)
    z, y, x = ((a + 0.5) * voxel_mm for a in (z, y, x))
    cx, cy = n_xy[0] * voxel_mm / 2, n_xy[1] * voxel_mm / 2
    body = ((x - cx) / 110.0) ** 2 + ((y - cy) / 80.0) ** 2 <= 1.0
    liver_cz = n_z * voxel_mm - 100.0 - 55.0
    liver_all = ((x - cx) / 80.0) ** 2 + ((y - cy) / 60.0) ** 2 + ((z - liver_cz) / 55.0) ** 2 <= 1.0
    outside_liver_mm = ndimage.distance_transform_edt(~liver_all, sampling=voxel_mm)
    inside_body_mm = ndimage.distance_transform_edt(body, sampling=voxel_mm)
    closed = z < n_z * voxel_mm - 16.0  # soft tissue over the lung's apex: no lung open to the grid's edge
    lung = body & closed & (z > liver_cz) & (outside_liver_mm > 4.0) & (inside_body_mm > 12.0)
    radius = tumour_diameter_mm / 2.0
    tumour = (x - cx) ** 2 + (y - cy) ** 2 + (z - (liver_cz + 55.0 - tumour_depth_mm - radius)) ** 2 <= radius**2
    tumour &= liver_all
    liver = liver_all & ~tumour
    density = np.where(body, SOFT_TISSUE_DENSITY_G_PER_ML, AIR_DENSITY_G_PER_ML)
    density[liver_all] = LIVER_DENSITY_G_PER_ML
    density[lung] = LUNG_DENSITY_G_PER_ML
    weight = liver + tumour_to_normal * tumour  # activity concentration relative to normal liver
    tia = (1.0 - lung_shunt_fraction) * administered_tia_bq_s * weight / weight.sum()
    tia += lung_shunt_fraction * administered_tia_bq_s * lung / lung.sum()
    return TorsoPhantom(tia, density, (voxel_mm,) * 3, liver, tumour, lung)
