"""The dose engine: activity image + segmentation + parameters → dose, BED and EQD2 maps.

This is the one entry point used by the command line (``sirt dose``) and by the Slicer logic;
it works on SimpleITK images and returns images on the activity grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import SimpleITK as sitk

from ..errors import SIRTInputError
from ..io.segmentations import Segmentation
from ..io.volumes import KNOWN_UNITS, ActivityImage, voxel_volume_ml
from ..nuclides import Radionuclide, radionuclide
from ..selection import expand_mapping, select_segments
from ..structures import Structure, map_segments, union_of
from .calibration import (
    AbsoluteCalibration,
    Calibration,
    CalibrationReport,
    RelativeCalibration,
    calibration_report,
    time_integrated_activity_bq_s,
    with_dicom_timing,
)
from .density import density_from_ct
from .ldm import ldm_dose_gy
from .montecarlo import CancelCheck, MCSettings, ProgressCallback, mc_record, run_monte_carlo
from .parameters import BED_PRECEDENCES, BedPrecedence, DoseParameters
from .plausibility import (
    LungDose,
    activity_warnings,
    is_liver_name,
    low_density_warning,
    lung_dose_partition_gy,
    lung_segment,
    mean_dose_warnings,
)
from .radiobiology import LQParameters, bed_gy, eqd2_gy

LUNG_DOSE_NOTES: dict[str, str] = {
    "ldm": "lung dose by local deposition: +17 % against Monte Carlo for the lung mean dose (Mikell et al., EJNMMI Phys 2015;2:16), "
    "+15 % on the README's torso phantom",
    "vsv": "lung dose by a soft-tissue kernel scaled in amplitude only: -60 % to -88 % against Monte Carlo without the lung "
    "density, +20 % with it (Mikell et al. 2015; d'Andrea et al., Appl Sci 2024;14:7684), +13 % on the README's torso "
    "phantom; prefer vsv-lung or mc",
    "vsv-lung": "lung dose by range-scaled kernels of the target density: against Monte Carlo, -2.8 % for the lung "
    "mean over the first 2 cm of a liver/lung slab (-4.9 % to +0.8 % per 1 mm layer) and +8 % for the lung mean of a torso "
    "phantom with a 10 % lung shunt (README); it places sources at the lung's distance, not the path's",
    "mc": "lung dose by Monte Carlo (PenRed, PENELOPE-2018); statistical uncertainty per voxel in dose_uncertainty_rel",
}
"""Which method gave the lung dose, and its expected error: written into every dose summary."""

Region = tuple[slice, slice, slice]
"""A box of the activity grid (z, y, x), with explicit starts and stops."""
VoxelValues = np.ndarray | Callable[[Region], np.ndarray]
"""A map on the activity grid, or a function giving it over a region (a map derived on demand)."""

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


@dataclass(frozen=True)
class LQAssignment:
    """The LQ parameters of each voxel: the structures given parameters (in the order given) and the precedence
    where they overlap (see ``lq_parameter_map``). EQD2 is derived from BED through it, region by region, so
    that no EQD2 map of the whole grid need be kept."""

    structures: dict[str, Structure]
    parameters: dict[str, LQParameters]
    precedence: BedPrecedence

    def index(self, region: Region) -> np.ndarray:
        """Index into ``parameters`` of each voxel of ``region`` (−1: none)."""
        return lq_parameter_map(self.structures, list(self.parameters), self.precedence, region)

    def eqd2_gy(self, bed: np.ndarray, region: Region) -> np.ndarray:
        """EQD2 (float32, NaN without parameters) of ``bed``, the BED over ``region``: EQD2 = BED / (1 + 2 Gy/(α/β))
        with each voxel's α/β (``radiobiology.eqd2_gy``)."""
        index = self.index(region)
        eqd2 = np.full(bed.shape, np.nan, dtype=np.float32)
        for k, lq in enumerate(self.parameters.values()):
            inside = index == k
            eqd2[inside] = eqd2_gy(bed[inside], lq)
        return eqd2


@dataclass
class DoseResult:
    dose_gy: sitk.Image  # float32 on the activity grid
    bed_gy: sitk.Image | None  # NaN where no structure has LQ parameters
    lq: LQAssignment | None  # with bed_gy: whence each voxel's LQ parameters, for EQD2
    structures: dict[str, Structure]
    segments: list[SegmentSummary]
    calibration: CalibrationReport
    nuclide: Radionuclide
    kernel_source: str | None
    invalid_voxels: dict[str, int]
    warnings: list[str]
    lung: LungDose | None = None
    lung_dose_note: str = ""
    uncertainty_rel: sitk.Image | None = None  # Monte Carlo: relative 1-sigma uncertainty of the dose
    monte_carlo: dict | None = None  # Monte Carlo: decays, seed pairs, CPU time, materials

    @property
    def eqd2_gy(self) -> sitk.Image | None:
        """The EQD2 map (float32, NaN where no structure has LQ parameters), made from ``bed_gy`` at each call,
        a few z-planes at a time: a new image, not kept by the result (hold on to it to use it twice)."""
        if self.bed_gy is None:
            return None
        bed = sitk.GetArrayViewFromImage(self.bed_gy)
        return _image_by_slabs(self.bed_gy, lambda region: self.lq.eqd2_gy(bed[region], region))


def check_voxel_values(values: np.ndarray, clamp: bool) -> tuple[np.ndarray, dict[str, int]]:
    """Refuse (or, if asked, zero) negative and NaN/infinite voxels; return them (a copy if zeroed) and the counts."""
    low, high = values.min(), values.max()  # NaN propagates: two reductions, no full-size masks, in the usual case
    if np.isfinite(low) and np.isfinite(high) and low >= 0:
        return values, {"negative": 0, "non_finite": 0}
    nonfinite = ~np.isfinite(values)
    negative = values < 0  # NaN compares False
    counts = {"negative": int(negative.sum()), "non_finite": int(nonfinite.sum())}
    if counts["negative"] or counts["non_finite"]:
        if not clamp:
            raise SIRTInputError(
                f"the activity image has {counts['negative']} negative and {counts['non_finite']} NaN/infinite voxels; "
                "allow setting them to zero (--clamp-negative on the command line, 'Negative voxels to zero' in Slicer)"
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
    density = np.array(np.broadcast_to(base_g_per_ml, shape), dtype=np.float32)
    for name, value in overrides.items():
        if name not in structures:
            raise SIRTInputError(f"density given for segment {name!r}, which is not among {', '.join(structures)}")
        s = structures[name]
        density[s.slices][s.box >= 0.5] = value
    return density


def lq_parameter_map(structures: dict[str, Structure], names: list[str], precedence: BedPrecedence = "smallest",
                     region: Region | None = None) -> np.ndarray:
    """Which of ``names`` gives each voxel its LQ parameters: an int8 map of indices into ``names``, −1 for none.

    Every voxel a structure touches takes its parameters; where several overlap, with ``"smallest"``
    the structure of smallest contoured volume wins (a tumour inside its liver keeps the tumour's
    parameters in all its voxels, whatever the order given), with ``"last"`` the last one named.
    ``region`` (slices with explicit starts and stops): the map of that part of the grid only.
    """
    if precedence not in BED_PRECEDENCES:
        raise SIRTInputError(f"unknown BED precedence {precedence!r}; choose one of {', '.join(BED_PRECEDENCES)}")
    if len(names) > np.iinfo(np.int8).max:
        raise SIRTInputError(f"at most {np.iinfo(np.int8).max} structures can have LQ parameters, got {len(names)}")
    order = list(range(len(names)))  # painting order: the winner is painted last
    if precedence == "smallest":
        order.sort(key=lambda k: -structures[names[k]].contoured_volume_ml)
    grid = structures[names[0]].grid_shape
    region = region or tuple(slice(0, n) for n in grid)
    index = np.full(tuple(r.stop - r.start for r in region), -1, dtype=np.int8)
    for k in order:
        s = structures[names[k]]
        # the overlap of the structure's box and the region, in the coordinates of each
        lo = [max(a.start, b.start) for a, b in zip(s.slices, region)]
        hi = [min(a.stop, b.stop) for a, b in zip(s.slices, region)]
        if any(h <= l for l, h in zip(lo, hi)):
            continue
        in_box = tuple(slice(l - a, h - a) for l, h, a in zip(lo, hi, s.start))
        in_region = tuple(slice(l - r.start, h - r.start) for l, h, r in zip(lo, hi, region))
        index[in_region][s.box[in_box] > 0] = k
    return index


def _image_like(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
    image.CopyInformation(reference)
    return image


def _image_by_slabs(reference: sitk.Image, slab: Callable[[Region], np.ndarray]) -> sitk.Image:
    """A float32 image on ``reference``'s grid filled a few z-planes at a time with ``slab(region)``: no full-size
    array besides the image itself."""
    from .vsv import SLAB_VOXELS

    image = sitk.Image(reference.GetSize(), sitk.sitkFloat32)
    image.CopyInformation(reference)
    nx, ny, nz = reference.GetSize()
    step = max(1, SLAB_VOXELS // (ny * nx))
    for z0 in range(0, nz, step):
        z1 = min(z0 + step, nz)
        image[:, :, z0:z1] = sitk.GetImageFromArray(slab((slice(z0, z1), slice(0, ny), slice(0, nx))))  # pasted in place
    return image


def _bed_image(dose: np.ndarray, reference: sitk.Image, lq: LQAssignment, nuclide: Radionuclide) -> sitk.Image:
    """The BED image (float32, NaN where no structure has LQ parameters)."""

    def slab(region: Region) -> np.ndarray:
        index = lq.index(region)
        bed = np.full(index.shape, np.nan, dtype=np.float32)
        for k, params in enumerate(lq.parameters.values()):
            inside = index == k
            bed[inside] = bed_gy(dose[region][inside], params, nuclide.half_life_h)
        return bed

    return _image_by_slabs(reference, slab)


def _weighted_parts(values: VoxelValues, structure: Structure):
    """(w, v) in float64 for the voxels with weight in the structure's box, a few z-planes at a time: the float64
    temporaries stay slab-sized however large the structure."""
    from .vsv import SLAB_VOXELS

    box = structure.box
    z, y, x = structure.slices
    step = max(1, SLAB_VOXELS // max(1, box.shape[1] * box.shape[2]))
    for z0 in range(0, len(box), step):
        w = box[z0 : z0 + step]
        region = (slice(z.start + z0, z.start + z0 + len(w)), y, x)
        grid = values(region) if callable(values) else values[region]
        inside = w > 0
        yield w[inside].astype(np.float64), grid[inside].astype(np.float64)


def _weighted_sum(values: np.ndarray, structure: Structure) -> float:
    """Σ w·v in float64 over the voxels with weight, within the structure's box (numpy's pairwise sum, not a
    BLAS dot, so that the result does not depend on the number of threads)."""
    return float(sum(np.sum(w * v) for w, v in _weighted_parts(values, structure)))


def _weighted_stats(values: VoxelValues, structure: Structure) -> tuple[float, float, float]:
    """Weighted mean, minimum and maximum over the voxels with weight."""
    total = weight = 0.0
    low, high = np.inf, -np.inf
    for w, v in _weighted_parts(values, structure):
        if v.size:
            total, weight = total + np.sum(w * v), weight + np.sum(w)
            low, high = min(low, v.min()), max(high, v.max())
    return float(total / weight), float(low), float(high)


def plausibility_warnings(activity: ActivityImage, calibration: Calibration, report: CalibrationReport, structures: dict[str, Structure],
                          liver: list[str], values: np.ndarray) -> list[str]:
    """More activity in the image than administered; too much of it outside the liver (see ``plausibility``).

    ``values``: the checked voxel values, which the calibration turns into activity by one factor."""
    administered = None
    if isinstance(calibration, RelativeCalibration):
        administered = calibration.administered_activity_bq
    elif calibration.administered_activity_bq is not None:
        administered = calibration.administered_activity_bq
    elif activity.dicom is not None and activity.dicom.injected_activity_bq:
        administered = activity.dicom.injected_activity_bq
    outside = None
    total = report.total_activity_in_image_bq
    if liver and total > 0:
        inside = union_of([structures[n] for n in liver], "liver", 1.0)
        outside = 1.0 - _weighted_sum(values, inside) * report.bq_per_voxel_value / total
    return activity_warnings(report.total_activity_in_image_bq, administered, outside)


def _lung_dose(params: DoseParameters, calibration: Calibration, nuclide: Radionuclide, structures: dict[str, Structure],
               lung: str | None, dose: np.ndarray) -> LungDose | None:
    """Mean dose in a lung segment, else the partition-model lung dose when the shunt and lung mass are known."""
    if lung is not None:
        return LungDose(_weighted_stats(dose, structures[lung])[0], "segment", segment=lung)
    if isinstance(calibration, RelativeCalibration) and calibration.lung_shunt_fraction > 0 and params.lung_mass_g is not None:
        gy = lung_dose_partition_gy(calibration.administered_activity_bq, calibration.lung_shunt_fraction, calibration.residual_fraction,
                                    params.lung_mass_g, nuclide)
        lung_bq = calibration.administered_activity_bq * (1 - calibration.residual_fraction) * calibration.lung_shunt_fraction
        return LungDose(gy, "partition", lung_shunt_fraction=calibration.lung_shunt_fraction, lung_mass_g=params.lung_mass_g, lung_activity_bq=lung_bq)
    return None


def resolve_segment_names(params: DoseParameters, segmentation: Segmentation) -> DoseParameters:
    """``params`` with every segment it names resolved, once, to the segmentation's names: the patterns of
    ``segments`` and ``radiobiology`` (names, globs, ``@tumour``; see ``selection``) to the names they select,
    the calibration VOI and the segments given a density by name (exact, else case-insensitive: ``liver``
    finds ``Liver``, see ``Segmentation.segment``)."""
    names = segmentation.names
    spelled = lambda n: segmentation.segment(n).name  # noqa: E731
    segments = None
    if params.segments is not None:  # in the order given: the summary's rows follow it
        segments = tuple(dict.fromkeys(n for pattern in params.segments for n in select_segments([pattern], names)))
    calibration = params.calibration
    if isinstance(calibration, RelativeCalibration):
        calibration = replace(calibration, calibration_voi=tuple(map(spelled, calibration.calibration_voi)))
    return replace(
        params,
        calibration=calibration,
        segments=segments,
        radiobiology=expand_mapping(params.radiobiology, names, "--bed-params segment"),
        segment_densities_g_per_ml={spelled(k): v for k, v in params.segment_densities_g_per_ml.items()},
    )


def compute_dose(
    activity: ActivityImage, segmentation: Segmentation, params: DoseParameters, ct: sitk.Image | None = None,
    progress: ProgressCallback | None = None, cancel: CancelCheck | None = None,
) -> DoseResult:
    """Compute the absorbed dose map and per-segment summary. Inputs are not modified.

    ``ct`` (registered to the activity image) with ``params.hu_density_table`` gives a density per voxel.
    ``progress`` (fraction done) and ``cancel`` are used by the Monte Carlo method, which runs long.
    """
    params = resolve_segment_names(params, segmentation)
    nuclide = radionuclide(params.radionuclide, params.half_life_h)
    reference = activity.image
    voxel_ml = voxel_volume_ml(reference.GetSpacing())
    # A read-only view of the image where it is float32 already (no copy of the grid); clamping makes a copy.
    values, invalid = check_voxel_values(sitk.GetArrayViewFromImage(reference).astype(np.float32, copy=False), params.clamp_invalid)

    wanted = list(params.segments) if params.segments is not None else segmentation.names
    voi = params.calibration.calibration_voi if isinstance(params.calibration, RelativeCalibration) else ()
    liver = [n for n in segmentation.names if is_liver_name(n)]
    lung = lung_segment(segmentation.names)
    mc_settings = params.monte_carlo or MCSettings()
    mc_targets = list(mc_settings.target_segments) if params.method == "mc" else []
    needed = list(dict.fromkeys([*wanted, *voi, *params.radiobiology, *params.segment_densities_g_per_ml, *liver, *([lung] if lung else []),
                                 *mc_targets]))
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

    voi_counts = _weighted_sum(values, union_of([structures[name] for name in voi], "calibration VOI", voxel_ml)) if voi else None
    report = calibration_report(values, voxel_ml, calibration, nuclide, voi_counts)
    bq_per_value = report.bq_per_voxel_value
    # What the summary needs of the voxel values, taken before the dose: a copy of them the engine made
    # (clamped, or converted to float32) is then freed before the dose maps are made.
    value_sums = {name: _weighted_sum(values, structures[name]) for name in wanted}
    uptake_warnings = plausibility_warnings(activity, calibration, report, structures, liver, values)

    def tia_bq_s(voxel_values: np.ndarray) -> np.ndarray:
        """Ã on the whole grid, made only by the methods that need it."""
        return time_integrated_activity_bq_s(voxel_values * bq_per_value, nuclide)

    if (ct is None) != (params.hu_density_table is None):
        raise SIRTInputError("CT density scaling needs both the CT and the scanner's HU-to-density table")
    base = params.density_g_per_ml
    if ct is not None:
        ct_density = density_from_ct(ct, reference, params.hu_density_table, outside_density_g_per_ml=params.density_g_per_ml)
        base = ct_density.density_g_per_ml
        if ct_density.voxels_outside_ct:
            warnings.append(
                f"{ct_density.voxels_outside_ct} activity voxels lie (partly) outside the CT: given the tissue density "
                f"{params.density_g_per_ml} g/mL there instead of a CT-derived one"
            )
    density = density_map(values.shape, base, params.segment_densities_g_per_ml, structures)

    kernel_source = None
    uncertainty = mc_summary = None
    if params.method == "ldm":
        dose = ldm_dose_gy(tia_bq_s(values), voxel_ml, density, nuclide)
    elif params.method == "vsv-lung":  # Y-90 only (DoseParameters checks)
        from .lung_kernel import vsv_lung_dose_gy

        dose = vsv_lung_dose_gy(tia_bq_s(values), density, reference.GetSpacing())
        kernel_source = "Graves et al. 2019 90Y dose point kernel, range-scaled to each target density"
    elif params.method == "mc":  # Y-90 only (DoseParameters checks)
        masks = {name: _union(structures, names) for name, names in (("target", mc_settings.target_segments), ("liver", liver))}
        mc = run_monte_carlo(tia_bq_s(values), np.broadcast_to(np.asarray(density, dtype=np.float64), values.shape),
                             tuple(reversed(reference.GetSpacing())), mc_settings, masks["target"], masks["liver"], progress, cancel)
        dose, uncertainty, mc_summary = mc.dose_gy, mc.relative_uncertainty, mc_record(mc)
        if mc.activity_outside_box_fraction > 0.01:
            warnings.append(f"Monte Carlo: {100 * mc.activity_outside_box_fraction:.1f} % of the activity lies in voxels below "
                            "0.1 % of the maximum outside the transport box and gives no dose")
    else:  # "vsv", for Y-90 only (DoseParameters checks both)
        from .kernels import kernel_for_grid
        from .vsv import density_corrected, vsv_dose_gy

        kernel = kernel_for_grid(reference.GetSpacing(), params.density_g_per_ml, source=params.kernel)
        kernel_source = kernel.source
        # The calibration factor and Ã = A/λ (permanent implant) folded into the kernel (the convolution is
        # linear): no activity or time-integrated copy of the whole grid
        dose = vsv_dose_gy(values, np.asarray(kernel.values_mgy_per_mbq_s) * (bq_per_value / nuclide.decay_constant_per_s))
        dose = density_corrected(dose, density, kernel.density_g_per_ml, in_place=True)
        low_density = low_density_warning(density, dose)
        if low_density:
            warnings.append(low_density)

    del values  # frees the engine's copy, if it made one (a view of the caller's image otherwise)
    # Each map lives once, in its image; the arrays below are views of them.
    dose_image = _image_like(dose, reference)
    dose = sitk.GetArrayViewFromImage(dose_image)
    bed_map = bed_image = lq = None
    if params.radiobiology:
        names = list(params.radiobiology)
        lq = LQAssignment(structures, dict(params.radiobiology), params.bed_precedence)
        bed_image = _bed_image(dose, reference, lq, nuclide)
        bed_map = sitk.GetArrayViewFromImage(bed_image)
        for k, name in enumerate(names):
            s = structures[name]
            w, here = s.box, lq.index(s.slices)
            own = float(np.sum(w, where=here == k, dtype=np.float64)) / float(np.sum(w, dtype=np.float64))
            if own < 0.99:
                others = sorted({names[j] for j in np.unique(here[(w > 0) & (here != k)]) if j >= 0})
                warnings.append(
                    f"segment {name!r}: {100 * (1 - own):.1f} % of its volume takes the LQ parameters of {', '.join(map(repr, others))} "
                    f"where they overlap (BED precedence: {params.bed_precedence})"
                )

    density_array = np.broadcast_to(np.asarray(density, dtype=np.float32), dose.shape)
    summaries = []
    for name in wanted:
        s = structures[name]
        mean, low, high = _weighted_stats(dose, s)
        extra = {}
        if name in params.radiobiology:  # from the maps, so that the summary and bed_gy.nrrd agree
            bed_mean, bed_low, bed_high = _weighted_stats(bed_map, s)
            extra = dict(
                bed_mean_gy=bed_mean, bed_min_gy=bed_low, bed_max_gy=bed_high,
                eqd2_mean_gy=_weighted_stats(lambda region: lq.eqd2_gy(bed_map[region], region), s)[0],
                lq_parameters=params.radiobiology[name],
            )
        summaries.append(
            SegmentSummary(
                name=name,
                volume_ml=s.mapped_volume_ml,
                contoured_volume_ml=s.contoured_volume_ml,
                mass_g=_weighted_sum(density_array, s) * voxel_ml,
                activity_bq=value_sums[name] * bq_per_value,
                dose_mean_gy=mean,
                dose_min_gy=low,
                dose_max_gy=high,
                image_value_sum=value_sums[name],
                **extra,
            )
        )
    warnings += uptake_warnings
    warnings += mean_dose_warnings({s.name: s.dose_mean_gy for s in summaries})
    return DoseResult(
        lung=_lung_dose(params, calibration, nuclide, structures, lung, dose),
        dose_gy=dose_image,
        bed_gy=bed_image,
        lq=lq,
        structures=structures,
        segments=summaries,
        calibration=report,
        nuclide=nuclide,
        kernel_source=kernel_source,
        lung_dose_note=LUNG_DOSE_NOTES[params.method],
        uncertainty_rel=_image_like(uncertainty, reference) if uncertainty is not None else None,
        monte_carlo=mc_summary,
        invalid_voxels=invalid,
        warnings=warnings,
    )


def _union(structures: dict[str, Structure], names) -> np.ndarray | None:
    """Voxels at least half inside any of the named segments (Monte Carlo target, liver material), or None."""
    masks = [structures[n].weights >= 0.5 for n in names]
    return np.logical_or.reduce(masks) if masks else None
