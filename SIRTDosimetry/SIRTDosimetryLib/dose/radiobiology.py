"""Biologically effective dose (BED) and EQD2 for a permanent implant with mono-exponential decay.

Dale's linear-quadratic formula for a dose delivered at an exponentially decaying rate to
completion, with mono-exponential repair of sublethal damage (Dale, Br J Radiol 1985;58:515;
applied to 90Y by Cremonesi et al., EJNMMI 2008;35:2273 and Chiesa et al., EJNMMI 2015;42:1718):

    BED = D · (1 + D · T_rep / ((T_rep + T_phys) · α/β))

(from λ/(μ+λ) = T_rep/(T_rep+T_phys), μ = ln2/T_rep, λ = ln2/T_phys), and

    EQD2 = BED / (1 + 2 Gy / (α/β)).

Named presets (``PRESETS``, each with its source in ``PRESET_SOURCES``) are offered to the user;
none is applied by default: a structure gets BED only if the user assigns it parameters.
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
"""Chiesa C et al. Radioembolization of hepatocarcinoma with 90Y glass microspheres: development of an
individualized treatment planning strategy based on dosimetry and radiobiology. Eur J Nucl Med Mol Imaging
2015;42(11):1718-1738: tumour α/β 10 Gy, T_rep 1.5 h; non-tumoural liver α/β 2.5 Gy, T_rep 2.5 h."""
TUMOUR_HCC_GLASS_DOSIOMICS = LQParameters(alpha_beta_gy=10.0, repair_half_time_h=1.5)
NORMAL_LIVER_HCC_GLASS_DOSIOMICS = LQParameters(alpha_beta_gy=10.0, repair_half_time_h=2.5)
"""The parameters of the 90Y-glass HCC dosiomics study: "Potential of radiomics, dosiomics and dose volume
histograms for tumor response prediction in hepatocellular carcinoma following 90Y-SIRT" (2025, open access;
PubMed 40064820): 17 HCC patients treated with TheraSphere at Geneva University Hospital, 99mTc-MAA and
90Y SPECT/CT, local-deposition dose and BED, response by mRECIST at 3 months. Its BED used α/β 10 Gy for
tumour and normal liver, repair half-times 1.5 h and 2.5 h and a 90Y half-life of 64.2 h, values it
attributes to Chiesa et al. Its authors, journal, volume, pages and DOI were not available where this was
written, nor which Chiesa et al. paper it took the values from: Chiesa et al. 2015 (above) gives 2.5 Gy, not
10 Gy, for the non-tumoural liver, so the normal-liver values differ between the two presets."""

_CHIESA_2015 = "Chiesa et al., Eur J Nucl Med Mol Imaging 2015;42(11):1718-1738 (90Y glass, HCC)"
_HCC_GLASS_DOSIOMICS = (
    "90Y-glass HCC dosiomics study, PubMed 40064820 (2025; 17 patients, mRECIST at 3 months), values attributed to "
    "Chiesa et al.: alpha/beta 10 Gy for tumour and normal liver, with a 90Y half-life of 64.2 h"
)
PRESETS: dict[str, LQParameters] = {  # the first two are named by the role (``vocabulary.ROLES``) they are the default of
    TUMOUR: TUMOUR_CHIESA_2015,
    NORMAL_LIVER: NORMAL_LIVER_CHIESA_2015,
    "tumour_hcc_glass_dosiomics": TUMOUR_HCC_GLASS_DOSIOMICS,
    "normal_liver_hcc_glass_dosiomics": NORMAL_LIVER_HCC_GLASS_DOSIOMICS,
}
PRESET_SOURCES: dict[str, str] = {
    TUMOUR: _CHIESA_2015,
    NORMAL_LIVER: _CHIESA_2015,
    "tumour_hcc_glass_dosiomics": _HCC_GLASS_DOSIOMICS,
    "normal_liver_hcc_glass_dosiomics": _HCC_GLASS_DOSIOMICS,
}
PRESET_HALF_LIFE_H: dict[str, float] = {"tumour_hcc_glass_dosiomics": 64.2, "normal_liver_hcc_glass_dosiomics": 64.2}
"""The 90Y half-life a preset was published with, where it differs from this program's default (64.1 h):
give ``--half-life-h`` with it to reproduce the published BED values."""


def bed_gy(dose_gy: np.ndarray | float, params: LQParameters, half_life_h: float) -> np.ndarray:
    """BED (Gy) of a permanent implant decaying with physical half-life ``half_life_h``."""
    if not half_life_h > 0:
        raise SIRTInputError(f"half-life must be positive, got {half_life_h!r}")
    dose = np.asarray(dose_gy)
    dose = dose.astype(np.result_type(dose.dtype, np.float32), copy=False)  # float32 maps stay float32
    g = params.repair_half_time_h / ((params.repair_half_time_h + half_life_h) * params.alpha_beta_gy)
    return dose * (1.0 + g * dose)


def eqd2_gy(bed: np.ndarray | float, params: LQParameters) -> np.ndarray:
    """EQD2 = BED / (1 + 2/(α/β)) (Gy)."""
    bed = np.asarray(bed)
    return bed.astype(np.result_type(bed.dtype, np.float32), copy=False) / (1.0 + 2.0 / params.alpha_beta_gy)
