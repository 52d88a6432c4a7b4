"""Biologically effective dose (BED) and EQD2 for a permanent implant with mono-exponential decay.

Dale's linear-quadratic formula for a dose delivered at an exponentially decaying rate to
completion, with mono-exponential repair of sublethal damage (Dale, Br J Radiol 1985;58:515;
applied to 90Y by Cremonesi et al., EJNMMI 2008;35:2273 and Chiesa et al., EJNMMI 2015;42:1718):

    BED = D · (1 + D · T_rep / ((T_rep + T_phys) · α/β))

(from λ/(μ+λ) = T_rep/(T_rep+T_phys), μ = ln2/T_rep, λ = ln2/T_phys), and

    EQD2 = BED / (1 + 2 Gy / (α/β)).

Defaults (Chiesa et al. 2015): tumour α/β = 10 Gy, T_rep = 1.5 h; normal liver α/β = 2.5 Gy,
T_rep = 2.5 h. They are only defaults offered to the user: a structure gets BED only if the user
assigns it parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import SIRTInputError
from ..vocabulary import NORMAL_LIVER, TUMOUR


@dataclass(frozen=True)
class LQParameters:
    alpha_beta_gy: float
    repair_half_time_h: float

    def __post_init__(self) -> None:
        for value, what in ((self.alpha_beta_gy, "alpha/beta"), (self.repair_half_time_h, "repair half-time")):
            if not (value > 0 and math.isfinite(value)):
                raise SIRTInputError(f"{what} must be a positive number, got {value!r}")


TUMOUR_CHIESA_2015 = LQParameters(alpha_beta_gy=10.0, repair_half_time_h=1.5)
NORMAL_LIVER_CHIESA_2015 = LQParameters(alpha_beta_gy=2.5, repair_half_time_h=2.5)
PRESETS: dict[str, LQParameters] = {TUMOUR: TUMOUR_CHIESA_2015, NORMAL_LIVER: NORMAL_LIVER_CHIESA_2015}
"""LQ presets, named by the role (``vocabulary.ROLES``) they are the default of."""


def bed_gy(dose_gy: np.ndarray | float, params: LQParameters, half_life_h: float) -> np.ndarray:
    """BED (Gy) of a permanent implant decaying with physical half-life ``half_life_h``."""
    if not half_life_h > 0:
        raise SIRTInputError(f"half-life must be positive, got {half_life_h!r}")
    dose = np.asarray(dose_gy, dtype=np.float64)
    g = params.repair_half_time_h / ((params.repair_half_time_h + half_life_h) * params.alpha_beta_gy)
    return dose * (1.0 + g * dose)


def eqd2_gy(bed: np.ndarray | float, params: LQParameters) -> np.ndarray:
    """EQD2 = BED / (1 + 2/(α/β)) (Gy)."""
    return np.asarray(bed, dtype=np.float64) / (1.0 + 2.0 / params.alpha_beta_gy)
