"""Media for the Monte Carlo dose: density per voxel -> one of six materials and a density factor.

The density map comes from the CT through the user's HU-to-density table (``density.py``) or is
uniform; each voxel is given the material whose density interval holds its density. The interval
bounds follow the tissue classes of Schneider, Bortfeld & Schlegel, Phys Med Biol 2000;45:459 (air
below lung, lung up to adipose, adipose below 0.99 g/mL, soft tissue, bone above 1.12 g/mL).
Compositions are PENELOPE-2018's predefined materials (ICRP/ICRU), except liver, which PENELOPE
does not list: adult liver of ICRU Report 46 (1992), by weight.

Each material is generated at the median density of its voxels in the transport region
(``representative_densities``), not at PENELOPE's nominal density, and only the remaining ratio
density(voxel) / density(material) is left to PenRed's density factor. The reason is measured, not
assumed: in PenRed 1.15.2's voxel geometry a density factor f != 1 does not reproduce a material
generated at f times the density. With 10^5 decays per case (0.25 % uncertainty at the source
voxel), 4.42 mm voxels, the source-voxel S value of water generated at 1.0 g/mL and scaled by f
differs from water generated at f x 1.0 g/mL by +5.9 % (f = 0.9), -1.0 % (f = 1.02) and, for ICRP
soft tissue, -2.1 % (f = 1.04), i.e. about -0.55 (f - 1); the edge neighbours move the other way
(+3 % at f = 1.04): the scaled medium's electrons travel as if it were less dense than its
factor says. At f = 0.26 (1 mm voxels) the source-voxel dose is 3.1 times and the range about half
that of water generated at 0.26 g/mL. With ICRP soft tissue generated at 1.04 g/mL the Lanconelli
S(0,0,0) is matched within 1 % (it was 2.8 % low with PENELOPE's 1.00 g/mL material scaled by
1.04). Voxels whose density is away from their material's median keep that error, about
-0.55 (f - 1) at the source voxel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MCMaterial:
    name: str
    upper_density_g_per_ml: float  # voxels below this (and above the previous material's bound)
    penelope_id: int | None = None  # PENELOPE-2018 predefined material number
    composition: tuple[tuple[int, float], ...] = ()  # (Z, weight fraction) where no predefined one fits


LIVER_ICRU46 = ((1, 0.102), (6, 0.139), (7, 0.030), (8, 0.716), (11, 0.002), (15, 0.003), (16, 0.003), (17, 0.002), (19, 0.003))
"""Adult liver, ICRU Report 46 (1992), weight fractions (nominal density 1.06 g/mL)."""

MC_MATERIALS: tuple[MCMaterial, ...] = (
    MCMaterial("air", 0.05, penelope_id=104),
    MCMaterial("lung", 0.85, penelope_id=191),
    MCMaterial("adipose", 0.99, penelope_id=103),
    MCMaterial("soft_tissue", 1.12, penelope_id=262),
    MCMaterial("bone", float("inf"), penelope_id=119),  # compact bone (ICRU), as Lanconelli's bone tables
    MCMaterial("liver", 1.12, composition=LIVER_ICRU46),
)
"""Material 1..6 of the voxel geometry (index + 1). Liver replaces soft tissue inside liver segments."""

SOFT_TISSUE = 3
LIVER = 5


def material_indices(density_g_per_ml: np.ndarray, liver_mask: np.ndarray | None = None) -> np.ndarray:
    """0-based index into ``MC_MATERIALS`` per voxel, from its density (and liver membership)."""
    bounds = [m.upper_density_g_per_ml for m in MC_MATERIALS[:LIVER]]
    index = np.searchsorted(np.asarray(bounds[:-1]), density_g_per_ml, side="right").astype(np.uint8)
    if liver_mask is not None:
        index[(index == SOFT_TISSUE) & liver_mask] = LIVER
    return index


def representative_densities(density_g_per_ml: np.ndarray, index: np.ndarray) -> dict[int, float]:
    """Material index -> the median density (g/mL) of its voxels: the density it is generated at."""
    return {int(i): float(np.median(density_g_per_ml[index == i])) for i in np.unique(index)}
