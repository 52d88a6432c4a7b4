"""DVH machinery: analytic cases, an independent implementation (dicompyler-core), bad input.

Expected values come from closed forms or from dicompyler-core, never from this code's own output.

Measured agreement with dicompyler-core 0.5.6 (``test_agrees_with_dicompyler_core``: 1 mm grid,
sphere R = 18.3 mm with D(r) = 100 Gy (1 - 0.8 r/R), RTDOSE + RTSTRUCT written with pydicom,
DVH computed by ``dicompylercore.dvhcalc.get_dvh``): identical structure volume (25.664 mL,
same voxels); the cumulative DVH identical at every one of dicompyler's 1 cGy bin edges
(largest difference 5e-11 % of the volume), so V20..V90 agree to 1e-10 %; D2..D98 within
0.0066 Gy (dicompyler reports the lower edge of its 1 cGy bin); mean within 0.0001 Gy
(dicompyler uses bin centres); max 0.0022 Gy, min 0.0086 Gy (bin edges).
Against the closed-form DVH of the same sphere with fractional voxels on a 1 mm grid
(``test_sphere_radial_dose_matches_closed_form``): volume within 0.004 %, D_x within 0.48 Gy
(both D_x methods), V_x within 0.075 % of the volume, mean within 0.015 Gy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from SIRTDosimetryLib.analysis.dvh import (
    compute_dvh,
    dose_at_volume_pct,
    doses_at_volume_pct,
    dvh_levels,
    dvh_rows,
    sample_statistics,
    volume_at_dose_ml,
    volumes_at_dose_ml,
    voxel_sample,
)
from SIRTDosimetryLib.errors import SIRTInputError


def test_uniform_dose_gives_constant_dx_and_step_vx():
    dose = np.full((6, 7, 8), 42.5)
    weights = np.zeros_like(dose)
    weights[1:5, 2:6, 1:7] = 1.0
    voxel_ml = 0.008
    sample, _ = voxel_sample(dose, weights, voxel_ml)
    total = weights.sum() * voxel_ml
    for method in ("nearest_rank", "interpolate"):
        for x in (0, 2, 5, 50, 70, 95, 98, 100):
            assert dose_at_volume_pct(sample, x, method) == pytest.approx(42.5)
    assert volume_at_dose_ml(sample, 42.5) == pytest.approx(total)
    assert volume_at_dose_ml(sample, 42.5 + 1e-9) == 0.0
    assert volume_at_dose_ml(sample, 0.0) == pytest.approx(total)
    stats = sample_statistics(sample)
    assert stats.mean_gy == pytest.approx(42.5)
    assert stats.sd_gy == pytest.approx(0.0, abs=1e-12)
    assert stats.cv == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n", [10, 37])
def test_linear_ramp_closed_forms(n):
    """Dose rising linearly across n equal slabs: d_k = g h (k + 1/2), k = 0..n-1."""
    g, h = 3.0, 2.0  # Gy/mm, mm
    dose = np.broadcast_to((g * h * (np.arange(n) + 0.5))[None, None, :], (3, 4, n)).copy()
    weights = np.ones_like(dose)
    sample, _ = voxel_sample(dose, weights, 0.008)
    top = g * h * n  # continuous maximum
    for x in (2, 5, 50, 70, 95, 98):
        # nearest rank: the ceil(x n / 100)-th slab from the top
        rank = max(1, math.ceil(x * n / 100 - 1e-9))
        assert dose_at_volume_pct(sample, x, "nearest_rank") == pytest.approx(g * h * (n - rank + 0.5))
        # interpolation: exactly the continuous ramp's D_x = D_max (1 - x/100) inside the end slabs
        if 50 / n <= x <= 100 - 50 / n:
            assert dose_at_volume_pct(sample, x, "interpolate") == pytest.approx(top * (1 - x / 100))
    slab_ml = 3 * 4 * 0.008
    for level in (0.0, 7.0, 30.0, top / 2, top - 1):
        k_min = math.ceil(level / (g * h) - 0.5)  # first slab with d_k >= level
        assert volume_at_dose_ml(sample, level) == pytest.approx(slab_ml * (n - max(k_min, 0)))
    stats = sample_statistics(sample)
    assert stats.mean_gy == pytest.approx(top / 2)
    assert stats.sd_gy == pytest.approx(g * h * math.sqrt((n * n - 1) / 12))  # discrete uniform


def test_partial_voxels_count_as_partial_volumes():
    dose = np.array([[[10.0, 20.0, 30.0]]])
    weights = np.array([[[1.0, 0.25, 0.0]]])
    sample, _ = voxel_sample(dose, weights, 2.0)
    assert sample.total_volume_ml == pytest.approx(2.5)
    assert sample.n_voxels == 2
    assert dose_at_volume_pct(sample, 20) == 20.0  # the 20-Gy voxel is exactly 20 % of the volume
    assert dose_at_volume_pct(sample, 20.1) == 10.0
    assert volume_at_dose_ml(sample, 15) == pytest.approx(0.5)
    assert sample_statistics(sample).max_gy == 20.0  # the 30-Gy voxel has no weight
    assert sample_statistics(sample).mean_gy == pytest.approx((10 * 1 + 20 * 0.25) / 1.25)
    # halving every weight changes volumes, not doses
    half, _ = voxel_sample(dose, weights / 2, 2.0)
    assert half.total_volume_ml == pytest.approx(1.25)
    np.testing.assert_allclose(doses_at_volume_pct(half, np.array([5, 50, 95])), doses_at_volume_pct(sample, np.array([5, 50, 95])))


def test_dvh_curves_exact_at_levels_and_differential_sums_to_total():
    rng = np.random.default_rng(1)
    dose = rng.gamma(2.0, 20.0, size=(8, 9, 10))
    weights = rng.uniform(0, 1, size=dose.shape) * (rng.uniform(size=dose.shape) > 0.3)
    d = compute_dvh(dose, weights, 0.05, "s", bin_width_gy=2.5)
    inside = weights > 0
    for i in (0, 3, 10, len(d.levels_gy) - 1):
        level = d.levels_gy[i]
        assert d.cumulative_volume_ml[i] == pytest.approx(np.sum(weights[inside & (dose >= level)]) * 0.05)
    assert d.differential_volume_ml.sum() == pytest.approx(np.sum(weights) * 0.05)
    assert d.cumulative_volume_ml[-1] == 0.0
    assert d.levels_gy[-1] > dose[inside].max()
    assert np.all(np.diff(d.cumulative_volume_ml) <= 1e-12)
    assert d.cumulative_volume_pct[0] == pytest.approx(100.0)
    rows = dvh_rows([d])
    assert len(rows) == len(d.levels_gy) and rows[0][:2] == ("s", "dose")


def _sphere_fractional_weights(shape, spacing, centre, radius, s=4):
    """Fraction of each voxel inside the sphere by s^3 sub-point sampling (independent of structures.py)."""
    offsets = (np.arange(s) + 0.5) / s - 0.5
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    frac = np.zeros(shape)
    for oz in offsets:
        for oy in offsets:
            for ox in offsets:
                r2 = ((zz + oz) * spacing - centre[0]) ** 2 + ((yy + oy) * spacing - centre[1]) ** 2 + ((xx + ox) * spacing - centre[2]) ** 2
                frac += r2 <= radius**2
    return frac / s**3


def test_sphere_radial_dose_matches_closed_form():
    """D(r) = D0 (1 - 0.8 r/R) in a sphere: V(>=d)/V = ((1 - d/D0)/0.8)^3, D_x = D0 (1 - 0.8 (x/100)^(1/3))."""
    d0, radius, spacing = 100.0, 18.3, 1.0
    n = 42
    centre = np.array([20.6, 20.9, 21.2])
    zz, yy, xx = np.meshgrid(*(np.arange(n) * spacing for _ in range(3)), indexing="ij")
    r = np.sqrt((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2)
    dose = d0 * (1 - 0.8 * np.minimum(r, radius) / radius)
    weights = _sphere_fractional_weights((n, n, n), spacing, centre, radius)
    sample, _ = voxel_sample(dose, weights, spacing**3 / 1000)
    assert sample.total_volume_ml == pytest.approx(4 / 3 * math.pi * radius**3 / 1000, rel=1e-3)
    for x in (2, 5, 50, 70, 95, 98):
        expected = d0 * (1 - 0.8 * (x / 100) ** (1 / 3))
        assert dose_at_volume_pct(sample, x) == pytest.approx(expected, abs=0.6)
        assert dose_at_volume_pct(sample, x, "interpolate") == pytest.approx(expected, abs=0.6)
    for level in (30.0, 50.0, 70.0, 90.0):
        expected_pct = 100 * ((1 - level / d0) / 0.8) ** 3
        assert 100 * volume_at_dose_ml(sample, level) / sample.total_volume_ml == pytest.approx(expected_pct, abs=0.15)
    assert sample_statistics(sample).mean_gy == pytest.approx(d0 * (1 - 0.8 * 0.75), abs=0.05)  # <r/R> = 3/4


# --- independent implementation: dicompyler-core ---------------------------------------------------------


def _dicompyler():
    """dicompyler-core 0.5.6 imports pydicom.dicomio.read_file, removed in pydicom 3: alias it (we pass datasets)."""
    pydicom = pytest.importorskip("pydicom")
    from pydicom import dicomio

    if not hasattr(dicomio, "read_file"):
        dicomio.read_file = pydicom.dcmread
    return pytest.importorskip("dicompylercore.dvhcalc")


def _rt_datasets(dose_units: np.ndarray, scaling: float, spacing: float, origin, contours: dict[float, np.ndarray]):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    def base(sop_class):
        ds = Dataset()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
        ds.FrameOfReferenceUID = "1.2.3.4"
        return ds

    dose = base("1.2.840.10008.5.1.4.1.1.481.2")
    nz, ny, nx = dose_units.shape
    dose.Modality = "RTDOSE"
    dose.ImagePositionPatient = [float(v) for v in origin]
    dose.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    dose.PixelSpacing = [spacing, spacing]
    dose.GridFrameOffsetVector = [float(k * spacing) for k in range(nz)]
    dose.Rows, dose.Columns, dose.NumberOfFrames = ny, nx, nz
    dose.SamplesPerPixel, dose.PhotometricInterpretation = 1, "MONOCHROME2"
    dose.BitsAllocated, dose.BitsStored, dose.HighBit, dose.PixelRepresentation = 32, 32, 31, 0
    dose.DoseUnits, dose.DoseType, dose.DoseSummationType = "GY", "PHYSICAL", "PLAN"
    dose.DoseGridScaling = scaling
    dose.PixelData = dose_units.astype("<u4").tobytes()

    rtss = base("1.2.840.10008.5.1.4.1.1.481.3")
    rtss.Modality = "RTSTRUCT"
    roi = Dataset()
    roi.ROINumber, roi.ROIName = 1, "sphere"
    rtss.StructureSetROISequence = Sequence([roi])
    contour_items = []
    for z, xy in contours.items():
        c = Dataset()
        c.ContourGeometricType = "CLOSED_PLANAR"
        c.NumberOfContourPoints = len(xy)
        c.ContourData = [float(v) for p in xy for v in (p[0], p[1], z)]
        contour_items.append(c)
    roi_contour = Dataset()
    roi_contour.ReferencedROINumber = 1
    roi_contour.ContourSequence = Sequence(contour_items)
    rtss.ROIContourSequence = Sequence([roi_contour])
    return dose, rtss


def test_agrees_with_dicompyler_core():
    dvhcalc = _dicompyler()
    spacing, n = 1.0, 44
    origin = np.array([-21.5, -21.5, -21.5])  # voxel centres at origin + k*spacing
    centre = np.array([0.37, -0.21, 0.13])  # x, y, z
    radius, d0, scaling = 18.3, 100.0, 1e-4
    axis = origin[0] + spacing * np.arange(n)
    zz, yy, xx = np.meshgrid(axis, axis, axis, indexing="ij")
    r = np.sqrt((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (zz - centre[2]) ** 2)
    units = np.round(d0 * (1 - 0.8 * np.minimum(r, radius) / radius) / scaling).astype(np.uint32)
    dose = units * scaling  # exactly what the RTDOSE stores

    # contours: circles of 720 vertices on each dose plane the sphere crosses; our mask = voxel centres inside them
    angles = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    contours, weights = {}, np.zeros(dose.shape)
    for k, z in enumerate(axis):
        rz2 = radius**2 - (z - centre[2]) ** 2
        if rz2 <= 1.0:
            continue
        rz = math.sqrt(rz2)
        contours[float(z)] = np.column_stack([centre[0] + rz * np.cos(angles), centre[1] + rz * np.sin(angles)])
        weights[k] = ((xx[k] - centre[0]) ** 2 + (yy[k] - centre[1]) ** 2) < rz2
    rtdose, rtss = _rt_datasets(units, scaling, spacing, origin, contours)
    reference = dvhcalc.get_dvh(rtss, rtdose, 1)

    voxel_ml = spacing**3 / 1000
    sample, _ = voxel_sample(dose, weights, voxel_ml)
    assert reference.volume == pytest.approx(sample.total_volume_ml, rel=1e-9)  # the same voxels
    for x in (2, 5, 50, 70, 95, 98):
        ours = dose_at_volume_pct(sample, x)
        theirs = reference.statistic(f"D{x}").value
        assert abs(ours - theirs) <= 0.01, (x, ours, theirs)  # dicompyler's bin width
    for level in (20.0, 30.0, 50.0, 70.0, 90.0):
        ours_pct = 100 * volume_at_dose_ml(sample, level) / sample.total_volume_ml
        theirs_pct = 100 * reference.statistic(f"V{level:g}Gy").value / reference.volume
        assert abs(ours_pct - theirs_pct) <= 1e-6, (level, ours_pct, theirs_pct)
    stats = sample_statistics(sample)
    assert abs(stats.mean_gy - reference.mean) <= 0.005  # half a bin
    assert abs(stats.max_gy - reference.max) <= 0.01
    assert abs(stats.min_gy - reference.min) <= 0.01
    # the whole cumulative curve, at every one of dicompyler's 1 cGy bin edges
    ours_curve = volumes_at_dose_ml(sample, reference.bins[:-1])
    assert np.max(np.abs(ours_curve - reference.counts)) / sample.total_volume_ml <= 1e-9


# --- bad input ----------------------------------------------------------------------------------------------


def test_bad_input_is_refused():
    dose = np.ones((3, 3, 3))
    with pytest.raises(SIRTInputError, match="empty"):
        voxel_sample(dose, np.zeros_like(dose), 1.0, "empty one")
    with pytest.raises(SIRTInputError, match="do not match the dose grid"):
        voxel_sample(dose, np.ones((3, 3, 4)), 1.0)
    with pytest.raises(SIRTInputError, match=r"\[0, 1\]"):
        voxel_sample(dose, np.full_like(dose, 1.5), 1.0)
    with pytest.raises(SIRTInputError, match="voxel volume"):
        voxel_sample(dose, np.ones_like(dose), 0.0)
    bad = dose.copy()
    bad[1, 1, 1] = np.nan
    with pytest.raises(SIRTInputError, match="NaN"):
        voxel_sample(bad, np.ones_like(dose), 1.0)
    sample, left_out = voxel_sample(bad, np.ones_like(dose), 1.0, ignore_nonfinite=True)
    assert left_out == pytest.approx(1.0) and sample.n_voxels == 26
    sample, _ = voxel_sample(dose, np.ones_like(dose), 1.0)
    with pytest.raises(SIRTInputError, match=r"\[0, 100\]"):
        dose_at_volume_pct(sample, 101)
    with pytest.raises(SIRTInputError, match="unknown D_x method"):
        dose_at_volume_pct(sample, 50, "median")
    with pytest.raises(SIRTInputError, match="bin width"):
        dvh_levels(10.0, 0.0)


def test_single_voxel_structure():
    dose = np.arange(27, dtype=float).reshape(3, 3, 3)
    weights = np.zeros_like(dose)
    weights[1, 1, 1] = 0.3
    sample, _ = voxel_sample(dose, weights, 1.0)
    for x in (0, 2, 50, 98, 100):
        assert dose_at_volume_pct(sample, x) == 13.0
        assert dose_at_volume_pct(sample, x, "interpolate") == 13.0
    assert sample.effective_voxels == pytest.approx(0.3)
