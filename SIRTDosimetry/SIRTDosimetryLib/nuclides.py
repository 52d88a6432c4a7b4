"""Radionuclide and tissue data used by the dose engine, each with its source.

All physics constants live here so that a reviewer can check them in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .errors import SIRTInputError

MEV_TO_J = 1.602176634e-13
"""Joules per MeV (CODATA 2018, exact since the 2019 SI redefinition)."""


@dataclass(frozen=True)
class Radionuclide:
    """A therapeutic beta emitter used as a permanent microsphere implant.

    ``energy_per_activity_j_per_gbq`` is the absorbed energy released by 1 GBq decaying to
    completion, the constant behind the MIRD/partition-model formula
    ``D[Gy] = A[GBq] * E[J/GBq] / m[kg]``. The local-deposition model uses it directly, so that a
    uniform distribution reproduces the formula exactly whatever half-life is chosen.
    ``mean_beta_energy_mev`` is the mean beta energy per decay, to which the dose point kernel
    and voxel S values are normalised; ``None`` where no kernel is shipped for the nuclide.
    """

    name: str
    half_life_h: float
    mean_beta_energy_mev: float | None
    energy_per_activity_j_per_gbq: float
    source: str

    def __post_init__(self) -> None:
        if not (self.half_life_h > 0 and math.isfinite(self.half_life_h)):
            raise SIRTInputError(f"half-life of {self.name} must be a positive number of hours, got {self.half_life_h!r}")
        if not (self.energy_per_activity_j_per_gbq > 0 and math.isfinite(self.energy_per_activity_j_per_gbq)):
            raise SIRTInputError(
                f"energy per activity of {self.name} must be positive, got {self.energy_per_activity_j_per_gbq!r} J/GBq"
            )

    @property
    def half_life_s(self) -> float:
        return self.half_life_h * 3600.0

    @property
    def decay_constant_per_s(self) -> float:
        """lambda = ln 2 / T_1/2 (1/s)."""
        return math.log(2.0) / self.half_life_s

    @property
    def absorbed_energy_per_decay_j(self) -> float:
        """Energy per decay implied by the J/GBq constant: E/A * lambda (J).

        For 90Y with 49.67 J/GBq and 64.1 h this is 0.9312 MeV, 0.26 % below the 0.9336 MeV mean
        beta energy the kernels are normalised to (the published constant predates the current
        decay data). The difference is stated in the README and checked in the tests.
        """
        return self.energy_per_activity_j_per_gbq * 1e-9 * self.decay_constant_per_s

    def with_half_life(self, half_life_h: float) -> "Radionuclide":
        return replace(self, half_life_h=half_life_h)


Y90 = Radionuclide(
    name="Y-90",
    half_life_h=64.1,
    mean_beta_energy_mev=0.9336,
    energy_per_activity_j_per_gbq=49.67,
    source=(
        "T1/2 = 64.1 h (NNDC/ENSDF, as used by Graves et al. Med Phys 2019;46:5284; some software uses 64.2 h); "
        "mean beta energy 0.9336 MeV (Graves et al. 2019 kernel sum, ICRP 107); "
        "49.67 J/GBq (Gulec, Mesoloras, Stabin, J Nucl Med 2006;47:1209, the partition-model constant)"
    ),
)

HO166 = Radionuclide(
    name="Ho-166",
    half_life_h=26.8,
    mean_beta_energy_mev=None,
    energy_per_activity_j_per_gbq=15.87,
    source=(
        "T1/2 = 26.8 h and 15.87 J/GBq (Smits et al., J Exp Clin Cancer Res 2010;29:70: "
        "D[Gy] = 15.87 A[GBq]/m[kg]); no voxel kernel shipped, so LDM only"
    ),
)

RADIONUCLIDES: dict[str, Radionuclide] = {"y90": Y90, "ho166": HO166}


def radionuclide(key: str, half_life_h: float | None = None) -> Radionuclide:
    """Look up a radionuclide by key (``y90``, ``ho166``), optionally with another half-life."""
    try:
        nuclide = RADIONUCLIDES[key.lower().replace("-", "")]
    except KeyError:
        raise SIRTInputError(f"unknown radionuclide {key!r}; known: {', '.join(RADIONUCLIDES)}") from None
    return nuclide if half_life_h is None else nuclide.with_half_life(half_life_h)


# Tissue mass densities (g/mL), defaults only: every one is a user parameter.
DENSITY_SOFT_TISSUE_G_PER_ML = 1.03
"""Liver / soft tissue, 1.03 g/mL (MIRD partition model, Gulec et al. 2006; published range 1.03-1.05)."""
DENSITY_LUNG_G_PER_ML = 0.3
"""Lung, 0.3 g/mL (MIRD partition model, Ho et al. 1996; SIR-Spheres and TheraSphere documentation)."""
DENSITY_WATER_G_PER_ML = 1.0


DENSITY_MIN_G_PER_ML = 0.001
"""Physical floor of a mass density in the body: about that of air (0.0012 g/mL at 20 °C)."""
DENSITY_MAX_G_PER_ML = 25.0
"""Above the densest element (osmium, 22.6 g/mL): a larger value is a typing or unit error."""


def check_density(value: float, what: str = "density") -> float:
    if not (math.isfinite(value) and DENSITY_MIN_G_PER_ML <= value <= DENSITY_MAX_G_PER_ML):
        raise SIRTInputError(
            f"{what} must be a number of g/mL between {DENSITY_MIN_G_PER_ML} (air) and {DENSITY_MAX_G_PER_ML}, got {value!r}"
        )
    return float(value)
