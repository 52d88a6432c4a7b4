"""The dose engine: activity image + segmentation + parameters → dose, BED and EQD2 maps.

This is the one entry point used by the command line (``sirt dose``) and by the Slicer logic;
it works on SimpleITK images and returns images on the activity grid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import SimpleITK as sitk

from ..errors import SIRTInputError
from ..io.segmentations import Segmentation
from ..io.volumes import KNOWN_UNITS, ActivityImage, voxel_volume_ml
from ..nuclides import Radionuclide, radionuclide
from ..structures import Structure, map_segments
from .calibration import (
    AbsoluteCalibration,
    CalibrationReport,
    RelativeCalibration,
    calibrate,
    time_integrated_activity_bq_s,
    with_dicom_timing,
)
from .density import density_from_ct
from .ldm import ldm_dose_gy
from .parameters import DoseParameters
from .radiobiology import LQParameters, bed_gy, eqd2_gy

__all__ = ["DoseParameters", "DoseResult", "SegmentSummary", "check_voxel_values", "compute_dose", "density_map"]


@dataclass(frozen=True)
class SegmentSummary:
    """Per-segment numbers on the activity grid; units in the names."""

    name: str
    volume_ml: float
    contoured_volume_ml: float
    mass_g: float
    activity_bq: float
    dose_mean_gy: float
    dose_min_gy: float
    dose_max_gy: float
    image_value_sum: float
    bed_mean_gy: float | None = None
    bed_min_gy: float | None = None
    bed_max_gy: float | None = None
    eqd2_mean_gy: float | None = None
    lq_parameters: LQParameters | None = None


@dataclass
class DoseResult:
    dose_gy: sitk.Image  # float32 on the activity grid
    bed_gy: sitk.Image | None  # NaN where no structure has LQ parameters
    eqd2_gy: sitk.Image | None
    structures: dict[str, Structure]
    segments: list[SegmentSummary]
    calibration: CalibrationReport
    nuclide: Radionuclide
    kernel_source: str | None
    invalid_voxels: dict[str, int]
    warnings: list[str]


def check_voxel_values(values: np.ndarray, clamp: bool) -> tuple[np.ndarray, dict[str, int]]:
    """Refuse (or, if asked, zero) negative and NaN/infinite voxels; return a copy and the counts."""
    nonfinite = ~np.isfinite(values)
    negative = values < 0  # NaN compares False
    counts = {"negative": int(negative.sum()), "non_finite": int(nonfinite.sum())}
    if counts["negative"] or counts["non_finite"]:
        if not clamp:
            raise SIRTInputError(
                f"the activity image has {counts['negative']} negative and {counts['non_finite']} NaN/infinite voxels; "
                "pass --clamp-negative (clamp_invalid=True) to set them to zero"
            )
        values = np.where(negative | nonfinite, 0.0, values)
    return values, counts


def density_map(
    shape: tuple[int, ...], base_g_per_ml: float | np.ndarray, overrides: dict[str, float], structures: dict[str, Structure]
) -> np.ndarray | float:
    """Mass density per voxel: the base (one value or a CT-derived map), replaced in voxels at least half
    inside a segment given its own density (densities checked by ``DoseParameters``)."""
    if not overrides:
        return base_g_per_ml
    density = np.array(np.broadcast_to(base_g_per_ml, shape), dtype=np.float64)
    for name, value in overrides.items():
        if name not in structures:
            raise SIRTInputError(f"density given for segment {name!r}, which is not among {', '.join(structures)}")
        density[structures[name].weights >= 0.5] = value
    return density


def _image_like(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
    image.CopyInformation(reference)
    return image


def _weighted_stats(values: np.ndarray, weights: np.ndarray) -> tuple[float, float, float]:
    inside = weights > 0
    w = weights[inside].astype(np.float64)
    v = values[inside].astype(np.float64)
    return float(np.sum(w * v) / np.sum(w)), float(v.min()), float(v.max())


def compute_dose(
    activity: ActivityImage, segmentation: Segmentation, params: DoseParameters, ct: sitk.Image | None = None
) -> DoseResult:
    """Compute the absorbed dose map and per-segment summary. Inputs are not modified.

    ``ct`` (registered to the activity image) with ``params.hu_density_table`` gives a density per voxel.
    """
    nuclide = radionuclide(params.radionuclide, params.half_life_h)
    reference = activity.image
    voxel_ml = voxel_volume_ml(reference.GetSpacing())
    values, invalid = check_voxel_values(sitk.GetArrayFromImage(reference).astype(np.float64), params.clamp_invalid)

    wanted = list(params.segments) if params.segments is not None else segmentation.names
    voi = params.calibration.calibration_voi if isinstance(params.calibration, RelativeCalibration) else ()
    needed = list(dict.fromkeys([*wanted, *voi, *params.radiobiology, *params.segment_densities_g_per_ml]))
    structures = map_segments(segmentation, reference, needed, params.partial_voxels)
    warnings = [
        f"segment {s.name!r}: {100 * (1 - s.coverage):.1f} % of its contoured volume lies outside the activity image"
        for s in structures.values()
        if s.coverage < 0.98
    ]

    calibration = params.calibration
    if isinstance(calibration, AbsoluteCalibration):
        if calibration.units is None:
            if activity.units is None:
                raise SIRTInputError(f"absolute calibration needs the image units ({', '.join(KNOWN_UNITS)})")
            calibration = replace(calibration, units=activity.units)
        if activity.dicom is not None:
            calibration, dicom_warnings = with_dicom_timing(calibration, activity.dicom)
            warnings += dicom_warnings

    voi_weights = None
    if voi:
        voi_weights = np.clip(sum(structures[name].weights for name in voi), 0.0, 1.0)
    activity_bq, report = calibrate(values, voxel_ml, calibration, nuclide, voi_weights)
    tia = time_integrated_activity_bq_s(activity_bq, nuclide)
    if (ct is None) != (params.hu_density_table is None):
        raise SIRTInputError("CT density scaling needs both the CT and the scanner's HU-to-density table")
    base = params.density_g_per_ml if ct is None else density_from_ct(ct, reference, params.hu_density_table)
    density = density_map(values.shape, base, params.segment_densities_g_per_ml, structures)

    kernel_source = None
    if params.method == "ldm":
        dose = ldm_dose_gy(tia, voxel_ml, density, nuclide)
    else:  # "vsv", for Y-90 only (DoseParameters checks both)
        from .kernels import kernel_for_grid
        from .vsv import density_corrected, vsv_dose_gy

        kernel = kernel_for_grid(reference.GetSpacing(), params.density_g_per_ml, source=params.kernel)
        kernel_source = kernel.source
        dose = vsv_dose_gy(tia, kernel.values_mgy_per_mbq_s)
        dose = density_corrected(dose, density, kernel.density_g_per_ml)

    bed_map = eqd2_map = None
    if params.radiobiology:
        bed_map = np.full(dose.shape, np.nan, dtype=np.float32)
        eqd2_map = np.full(dose.shape, np.nan, dtype=np.float32)
        # Two passes: every voxel touched by a parameterised structure gets a BED (no gaps at edges; first
        # entry first); then voxels at least half inside a structure take its parameters, later entries winning.
        for majority in (False, True):
            for name, lq in params.radiobiology.items():
                weights = structures[name].weights
                inside = weights >= 0.5 if majority else (weights > 0) & np.isnan(bed_map)
                bed = bed_gy(dose[inside], lq, nuclide.half_life_h)
                bed_map[inside] = bed
                eqd2_map[inside] = eqd2_gy(bed, lq)

    density_array = np.broadcast_to(np.asarray(density, dtype=np.float64), dose.shape)
    summaries = []
    for name in wanted:
        s = structures[name]
        w = s.weights
        mean, low, high = _weighted_stats(dose, w)
        extra = {}
        if name in params.radiobiology:
            lq = params.radiobiology[name]
            bed = bed_gy(dose, lq, nuclide.half_life_h)
            bed_mean, bed_low, bed_high = _weighted_stats(bed, w)
            extra = dict(
                bed_mean_gy=bed_mean, bed_min_gy=bed_low, bed_max_gy=bed_high,
                eqd2_mean_gy=float(eqd2_gy(bed_mean, lq)), lq_parameters=lq,
            )
        summaries.append(
            SegmentSummary(
                name=name,
                volume_ml=s.mapped_volume_ml,
                contoured_volume_ml=s.contoured_volume_ml,
                mass_g=float(np.sum(w * density_array, dtype=np.float64) * voxel_ml),
                activity_bq=float(np.sum(w * activity_bq, dtype=np.float64)),
                dose_mean_gy=mean,
                dose_min_gy=low,
                dose_max_gy=high,
                image_value_sum=float(np.sum(w * values, dtype=np.float64)),
                **extra,
            )
        )
    return DoseResult(
        dose_gy=_image_like(dose, reference),
        bed_gy=_image_like(bed_map, reference) if bed_map is not None else None,
        eqd2_gy=_image_like(eqd2_map, reference) if eqd2_map is not None else None,
        structures=structures,
        segments=summaries,
        calibration=report,
        nuclide=nuclide,
        kernel_source=kernel_source,
        invalid_voxels=invalid,
        warnings=warnings,
    )
