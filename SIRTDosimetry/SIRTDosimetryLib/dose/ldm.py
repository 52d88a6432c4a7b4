"""Local deposition method (LDM): every decay deposits its energy in the voxel where it happens.

D_i = Ã_i · ε / m_i, with ε the absorbed energy per decay and m_i = ρ_i·V the voxel mass.
With ε = E_A·λ (E_A the energy released per unit activity decaying to completion, 49.67 J/GBq
for 90Y) this is D_i = A_i(t0)·E_A / m_i, the MIRD formula D[Gy] = 49.67·A[GBq]/m[kg]
(Gulec, Mesoloras & Stabin, J Nucl Med 2006;47:1209) applied voxel by voxel. LDM is the
reference method for 90Y PET and SPECT, whose resolution exceeds the beta range (Pasciak et al.,
Front Oncol 2014;4:121).
"""

from __future__ import annotations

import numpy as np

from ..nuclides import Radionuclide


def ldm_dose_gy(
    tia_bq_s: np.ndarray, voxel_volume_ml: float, density_g_per_ml: float | np.ndarray, nuclide: Radionuclide
) -> np.ndarray:
    """Absorbed dose (Gy, float32) per voxel by local deposition."""
    # float32 throughout (7 significant digits; no full-size float64 temporaries on large grids)
    gy_per_decay_per_density = np.float32(nuclide.absorbed_energy_per_decay_j / (voxel_volume_ml * 1e-3))
    dose = np.multiply(tia_bq_s, gy_per_decay_per_density, dtype=np.float32)
    dose /= np.asarray(density_g_per_ml, dtype=np.float32)
    return dose
