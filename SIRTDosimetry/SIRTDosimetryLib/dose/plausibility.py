"""Checks of implausible but possible results, reported as warnings (never refusals), and the lung dose.

- More activity in the image (at implantation) than was administered: a calibration, units or
  timing error, or activity counted twice.
- More than 10 % of the activity in the image outside the liver and perfused segments:
  extrahepatic uptake (or a misregistered segmentation) that the liver doses do not show.
- A mean absorbed dose above 1,000 Gy in any segment: beyond anything reported for 90Y or 166Ho
  microspheres (tumour means reach a few hundred Gy; Chiesa et al. EJNMMI 2015;42:1718), so a
  units or calibration error is likely.
- Tissue below 0.9 g/mL (lung) receiving dose with the voxel S-value method: the density correction
  rescales a soft-tissue kernel voxel by voxel, which is not transport-correct near a lung/liver
  interface (the electron range grows about as 1/ρ): local doses there can be off by a factor of two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nuclides import Radionuclide

EXTRAHEPATIC_WARNING_FRACTION = 0.10
MEAN_DOSE_WARNING_GY = 1000.0
LOW_DENSITY_KERNEL_LIMIT_G_PER_ML = 0.9

LIVER_NAME_PARTS = ("liver", "perfus")
"""A segment whose name contains one of these (any case) counts as liver for the extrahepatic check."""
LUNG_NAME_PARTS = ("lung",)


def is_liver_name(name: str) -> bool:
    return any(part in name.lower() for part in LIVER_NAME_PARTS)


def lung_segment(names: list[str]) -> str | None:
    """The first segment named like a lung (e.g. 'lungs', 'Lung left'), or None."""
    return next((n for n in names if any(part in n.lower() for part in LUNG_NAME_PARTS)), None)


@dataclass(frozen=True)
class LungDose:
    """The mean absorbed dose to the lungs and how it was obtained."""

    dose_gy: float
    method: str  # "segment" (mean dose in a lung segment) or "partition" (LDM from the lung shunt)
    segment: str | None = None
    lung_shunt_fraction: float | None = None
    lung_mass_g: float | None = None
    lung_activity_bq: float | None = None


def lung_dose_partition_gy(administered_bq: float, lung_shunt_fraction: float, residual_fraction: float, lung_mass_g: float, nuclide: Radionuclide) -> float:
    """D_L = E_A · A · (1 − R) · LSF / m_L (MIRD partition model; Ho et al., Eur J Nucl Med 1996;23:947).

    E_A is the energy per activity (49.67 J/GBq for 90Y), A the administered activity (GBq), R the
    residual fraction and m_L the lung mass (kg).
    """
    lung_gbq = administered_bq * 1e-9 * (1.0 - residual_fraction) * lung_shunt_fraction
    return nuclide.energy_per_activity_j_per_gbq * lung_gbq / (lung_mass_g * 1e-3)


def activity_warnings(total_in_image_bq: float, administered_bq: float | None, outside_liver_fraction: float | None) -> list[str]:
    warnings = []
    if administered_bq is not None and total_in_image_bq > administered_bq:
        warnings.append(
            f"the image holds {total_in_image_bq / 1e9:.3g} GBq at implantation, {100 * (total_in_image_bq / administered_bq - 1):.0f} % "
            f"more than the {administered_bq / 1e9:.3g} GBq administered: check the calibration, units and times"
        )
    if outside_liver_fraction is not None and outside_liver_fraction > EXTRAHEPATIC_WARNING_FRACTION:
        warnings.append(
            f"{100 * outside_liver_fraction:.0f} % of the activity in the image lies outside the liver and perfused segments "
            f"(more than {100 * EXTRAHEPATIC_WARNING_FRACTION:.0f} %): extrahepatic uptake or a misregistered segmentation?"
        )
    return warnings


def mean_dose_warnings(mean_dose_by_segment: dict[str, float]) -> list[str]:
    return [
        f"segment {name!r}: mean absorbed dose {dose:.0f} Gy is above {MEAN_DOSE_WARNING_GY:.0f} Gy; check the calibration and units"
        for name, dose in mean_dose_by_segment.items()
        if dose > MEAN_DOSE_WARNING_GY
    ]


def low_density_warning(density_g_per_ml: float | np.ndarray, dose_gy: np.ndarray) -> str | None:
    """The VSV limitation, when tissue below 0.9 g/mL receives dose."""
    low = np.asarray(density_g_per_ml) < LOW_DENSITY_KERNEL_LIMIT_G_PER_ML
    if not low.any():
        return None
    count = int(np.count_nonzero(np.broadcast_to(low, dose_gy.shape) & (dose_gy > 0)))
    if count == 0:
        return None
    return (
        f"{count} voxels below {LOW_DENSITY_KERNEL_LIMIT_G_PER_ML} g/mL (lung) receive dose: the voxel S-value method only "
        "rescales a soft-tissue kernel by density, which is not transport-correct there (near a lung/liver interface local "
        "doses can be off by a factor of two); use these doses with caution"
    )
