"""From image voxel values to activity at implantation and time-integrated activity.

Two calibrations:

- **Absolute**: a quantitative image (PET in Bq/mL, or SPECT counts with a camera calibration
  factor in cps/MBq and the acquisition duration). With administration and scan times, the
  activity is decay-corrected back to implantation, A(t0) = A(t_scan)·exp(λ·(t_scan − t0)); without
  them the image is taken as the activity at implantation.
- **Relative** (self-calibration): the administered activity, less the lung shunt and residual
  fractions, is distributed over the counts in a calibration VOI:
  A_i = c_i · A_adm·(1 − R)·(1 − LSF) / Σ_VOI w_j·c_j, applied to every voxel of the image. This is how
  99mTc-MAA SPECT becomes a predicted 90Y activity map (e.g. Chiesa et al. EJNMMI 2015;42:1718;
  Dewaraja et al. J Nucl Med 2017;58:1337). When the lungs are inside the VOI the lung shunt is
  already in the counts and must not be subtracted again.

Microspheres are a permanent implant, so the time-integrated activity is Ã = A(t0)/λ with the
physical decay constant only (no biological clearance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from ..errors import SIRTInputError
from ..io.volumes import CONCENTRATION_UNITS_TO_BQ_PER_ML, check_units
from ..nuclides import Radionuclide


def _check_fraction(value: float, what: str) -> None:
    if not (0.0 <= value < 1.0):
        raise SIRTInputError(f"{what} must be in [0, 1), got {value!r}")


def _check_times(administration_time: datetime | None, scan_time: datetime | None, require_both: bool = True) -> None:
    """Both times or neither (``require_both``; a calibration may hold one and take the other from DICOM),
    in one convention (both with a time zone or both without), the scan not before the administration."""
    if require_both and (administration_time is None) != (scan_time is None):
        raise SIRTInputError("give both the administration time and the scan time, or neither")
    if administration_time is None or scan_time is None:
        return
    if (administration_time.tzinfo is None) != (scan_time.tzinfo is None):
        raise SIRTInputError(
            f"administration time {administration_time.isoformat()} and scan time {scan_time.isoformat()}: give both "
            "with a time zone (e.g. +02:00) or both without"
        )
    if scan_time < administration_time:
        raise SIRTInputError(f"scan time {scan_time} is before the administration time {administration_time}")


@dataclass(frozen=True)
class AbsoluteCalibration:
    units: str | None  # "bq_per_ml", "kbq_per_ml", "mbq_per_ml", "counts" (with a camera factor); None: the image's own
    administration_time: datetime | None = None
    scan_time: datetime | None = None
    camera_factor_cps_per_mbq: float | None = None
    acquisition_duration_s: float | None = None
    administered_activity_bq: float | None = None  # only checked against the image (None: the DICOM's, if any)
    scan_after_administration_h: float | None = None  # instead of the two times: hours from implant to the image's reference time

    mode = "absolute"

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", check_units(self.units))
        for value, what in ((self.camera_factor_cps_per_mbq, "camera factor"), (self.acquisition_duration_s, "acquisition duration")):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise SIRTInputError(f"{what} must be a positive number, got {value!r}")
        if self.units in CONCENTRATION_UNITS_TO_BQ_PER_ML and self.camera_factor_cps_per_mbq is not None:
            raise SIRTInputError("a camera calibration factor applies to count images, not to images in Bq/mL")
        _check_times(self.administration_time, self.scan_time, require_both=False)
        hours = self.scan_after_administration_h
        if hours is not None:
            if not (hours >= 0 and math.isfinite(hours)):
                raise SIRTInputError(f"the time from administration to scan must be a number of hours >= 0, got {hours!r}")
            if self.administration_time is not None or self.scan_time is not None:
                raise SIRTInputError("give the hours from administration to scan or the two date-times, not both")


@dataclass(frozen=True)
class RelativeCalibration:
    administered_activity_bq: float
    calibration_voi: tuple[str, ...] = ("liver",)
    lung_shunt_fraction: float = 0.0
    residual_fraction: float = 0.0
    lungs_in_voi: bool = False

    mode = "relative"

    def __post_init__(self) -> None:
        if not (self.administered_activity_bq > 0 and math.isfinite(self.administered_activity_bq)):
            raise SIRTInputError(f"administered activity must be positive, got {self.administered_activity_bq!r} Bq")
        _check_fraction(self.lung_shunt_fraction, "lung shunt fraction")
        _check_fraction(self.residual_fraction, "residual fraction")
        if self.lungs_in_voi and self.lung_shunt_fraction > 0:
            raise SIRTInputError("the lungs are in the calibration VOI, so the lung shunt is in the counts: do not also give a lung shunt fraction")
        voi = (self.calibration_voi,) if isinstance(self.calibration_voi, str) else tuple(self.calibration_voi)
        if not voi:
            raise SIRTInputError("relative calibration needs a calibration VOI")
        object.__setattr__(self, "calibration_voi", voi)


Calibration = AbsoluteCalibration | RelativeCalibration


@dataclass(frozen=True)
class CalibrationReport:
    """What the calibration did, for the summary."""

    mode: str
    bq_per_voxel_value: float  # activity at implantation per unit voxel value
    decay_factor: float  # A(t0)/A(scan); 1 when no times were given
    total_activity_in_image_bq: float
    details: dict = field(default_factory=dict)


TIME_DISAGREEMENT_WARNING_S = 600.0
"""A user's administration time and the DICOM's differing by more than this (10 min) is reported."""

MAX_DECAY_HALF_LIVES = 20.0
"""Scan-to-administration intervals beyond this many half-lives (a decay factor of 10⁶) are refused."""


def _clock_difference_s(user: datetime, dicom_datetime: datetime | None, dicom_time_of_day) -> float | None:
    """|user − DICOM| administration time in seconds; against a time of day only, the smallest
    difference on a 24-hour clock (an administration before midnight and a time after it are close)."""
    user = user.replace(tzinfo=None)  # DICOM times are local wall-clock times
    if dicom_datetime is not None:
        return abs((user - dicom_datetime).total_seconds())
    if dicom_time_of_day is None:
        return None
    day_s = 86400.0
    delta = abs((user - datetime.combine(user.date(), dicom_time_of_day)).total_seconds()) % day_s
    return min(delta, day_s - delta)


def with_dicom_timing(calibration: AbsoluteCalibration, info) -> tuple[AbsoluteCalibration, list[str]]:
    """Fill what the user left out of an absolute calibration from DICOM metadata (``io.dicom.DicomActivityInfo``).

    Times the user gave always win; an administration time that differs from the DICOM's by more
    than 10 min is reported. Values decay-corrected to the administration (ADMIN) are already
    activity at implantation. Otherwise the decay-correction reference time (START: acquisition
    start, see ``io.dicom``; NONE: acquisition start) is the scan time, and the administration must
    be known with its date: a DICOM Radiopharmaceutical Start Time without a date is refused (the
    scan day cannot be assumed: a 90Y PET the day after the implant would get a 23 % lower dose)
    unless the user gives the administration date-time. Returns the calibration and the warnings.
    """
    warnings = list(info.timing_notes)
    if calibration.units == "counts" and calibration.acquisition_duration_s is None and info.acquisition_duration_s:
        calibration = replace(calibration, acquisition_duration_s=info.acquisition_duration_s)
    if calibration.scan_after_administration_h is not None:
        if info.decay_correction == "ADMIN":
            raise SIRTInputError("the DICOM values are decay-corrected to the administration (ADMIN): do not give a scan time")
        if info.administration_datetime is not None and info.decay_correction_datetime is not None:
            dicom_h = (info.decay_correction_datetime - info.administration_datetime).total_seconds() / 3600.0
            if abs(dicom_h - calibration.scan_after_administration_h) * 3600.0 > TIME_DISAGREEMENT_WARNING_S:
                warnings.append(
                    f"the {calibration.scan_after_administration_h:g} h from administration to scan given differ from the DICOM's "
                    f"{dicom_h:.2f} h; the hours given are used"
                )
        return calibration, warnings
    user_admin = calibration.administration_time
    if user_admin is not None:
        difference = _clock_difference_s(user_admin, info.administration_datetime, info.administration_time_of_day)
        if difference is not None and difference > TIME_DISAGREEMENT_WARNING_S:
            warnings.append(
                f"the administration time given ({user_admin.isoformat()}) differs from the DICOM's "
                f"({(info.administration_datetime or info.administration_time_of_day).isoformat()}) by "
                f"{difference / 60:.0f} min; the time given is used"
            )
    if user_admin is not None and calibration.scan_time is not None:
        return calibration, warnings
    if info.decay_correction == "ADMIN":
        if calibration.scan_time is not None:
            raise SIRTInputError("the DICOM values are decay-corrected to the administration (ADMIN): do not give a scan time")
        return replace(calibration, administration_time=None), warnings  # already activity at implantation
    admin = user_admin or info.administration_datetime
    scan = calibration.scan_time or info.decay_correction_datetime
    if admin is None and info.administration_time_of_day is not None:
        raise SIRTInputError(
            f"the DICOM series gives the administration time ({info.administration_time_of_day.isoformat()}) but not its date, "
            "so the decay time is uncertain (a scan the day after would be off by 24 h); give the administration "
            "date-time, e.g. --administration-time 2024-05-02T10:30"
        )
    if admin is None or scan is None:
        if user_admin is not None or calibration.scan_time is not None:
            raise SIRTInputError("give both the administration time and the scan time: the DICOM series does not hold the other")
        warnings.append("the DICOM series lacks administration or reference times: the image is taken as activity at implantation")
        return calibration, warnings
    if info.decay_correction == "NONE":
        warnings.append("DICOM values are not decay-corrected: taken as activity at the acquisition start")
    return replace(calibration, administration_time=admin, scan_time=scan), warnings


def decay_factor_to_implant(nuclide: Radionuclide, administration_time: datetime | None, scan_time: datetime | None) -> float:
    """exp(λ·(t_scan − t_admin)): multiplies activity at scan time to give activity at implantation."""
    _check_times(administration_time, scan_time)
    if administration_time is None:
        return 1.0
    return decay_factor_after(nuclide, (scan_time - administration_time).total_seconds())


def decay_factor_after(nuclide: Radionuclide, elapsed_s: float) -> float:
    """exp(λ·Δt) for a scan Δt after the administration (physical decay only)."""
    half_lives = elapsed_s / (nuclide.half_life_h * 3600.0)
    if half_lives > MAX_DECAY_HALF_LIVES:
        raise SIRTInputError(
            f"the scan is {elapsed_s / 86400:.1f} days ({half_lives:.0f} half-lives of {nuclide.name}) after the administration; "
            f"more than {MAX_DECAY_HALF_LIVES:.0f} half-lives is not a usable decay correction (check the dates)"
        )
    return math.exp(nuclide.decay_constant_per_s * elapsed_s)


def calibration_report(
    values: np.ndarray,
    voxel_volume_ml: float,
    calibration: Calibration,
    nuclide: Radionuclide,
    voi_counts: float | None = None,
) -> CalibrationReport:
    """The activity at implantation per unit voxel value, and the image total, from checked, non-negative voxel
    values, without making an activity array (the calibration is one factor for the whole image).

    ``voi_counts`` (relative mode only) is Σ w·value over the calibration VOI; totals are summed in float64.
    """
    total_values = float(np.sum(values, dtype=np.float64))
    if isinstance(calibration, AbsoluteCalibration):
        if calibration.scan_after_administration_h is not None:
            decay = decay_factor_after(nuclide, calibration.scan_after_administration_h * 3600.0)
        else:
            decay = decay_factor_to_implant(nuclide, calibration.administration_time, calibration.scan_time)
        if calibration.units in CONCENTRATION_UNITS_TO_BQ_PER_ML:
            per_value = CONCENTRATION_UNITS_TO_BQ_PER_ML[calibration.units] * voxel_volume_ml
        elif calibration.units == "counts":
            factor, duration = calibration.camera_factor_cps_per_mbq, calibration.acquisition_duration_s
            if factor is None or duration is None:
                raise SIRTInputError(
                    "absolute calibration of a count image needs the camera calibration factor (cps/MBq) and the "
                    "acquisition duration (s); otherwise use relative calibration"
                )
            per_value = 1e6 / (duration * factor)  # counts -> cps -> MBq -> Bq
        else:
            raise SIRTInputError(f"absolute calibration needs known image units, got {calibration.units!r}")
        details = {
            "units": calibration.units,
            "administration_time": calibration.administration_time.isoformat() if calibration.administration_time else None,
            "scan_time": calibration.scan_time.isoformat() if calibration.scan_time else None,
            "scan_after_administration_h": calibration.scan_after_administration_h,
        }
        return CalibrationReport("absolute", per_value * decay, decay, total_values * per_value * decay, details)

    if voi_counts is None:
        raise SIRTInputError("relative calibration needs a calibration VOI")
    if not voi_counts > 0:
        raise SIRTInputError(f"the calibration VOI ({' + '.join(calibration.calibration_voi)}) contains no counts")
    target_bq = calibration.administered_activity_bq * (1 - calibration.residual_fraction) * (1 - calibration.lung_shunt_fraction)
    per_value = target_bq / voi_counts
    details = {
        "calibration_voi": list(calibration.calibration_voi),
        "voi_counts": voi_counts,
        "activity_in_voi_bq": target_bq,
        "lungs_in_voi": calibration.lungs_in_voi,
    }
    return CalibrationReport("relative", per_value, 1.0, total_values * per_value, details)


def calibrate(
    values: np.ndarray,
    voxel_volume_ml: float,
    calibration: Calibration,
    nuclide: Radionuclide,
    voi_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, CalibrationReport]:
    """Activity at implantation per voxel (Bq, in the type of ``values``) and the ``calibration_report``.

    ``voi_weights`` (relative mode only) are the calibration-VOI weights on the image grid.
    """
    voi_counts = None if voi_weights is None else float(np.sum(values * voi_weights, dtype=np.float64))
    report = calibration_report(values, voxel_volume_ml, calibration, nuclide, voi_counts)
    return values * report.bq_per_voxel_value, report


def time_integrated_activity_bq_s(activity_at_implant_bq: np.ndarray, nuclide: Radionuclide) -> np.ndarray:
    """Ã = ∫_0^∞ A(t0)·e^(−λt) dt = A(t0)/λ (Bq·s): permanent implant, physical decay only."""
    return activity_at_implant_bq / nuclide.decay_constant_per_s
