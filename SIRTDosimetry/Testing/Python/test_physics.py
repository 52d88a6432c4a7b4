"""Dose physics against analytic cases and published constants."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest

from SIRTDosimetryLib.dose.calibration import (
    AbsoluteCalibration,
    RelativeCalibration,
    calibrate,
    decay_factor_to_implant,
    time_integrated_activity_bq_s,
)
from SIRTDosimetryLib.dose.ldm import ldm_dose_gy
from SIRTDosimetryLib.dose.radiobiology import NORMAL_LIVER_CHIESA_2015, TUMOUR_CHIESA_2015, LQParameters, bed_gy, eqd2_gy
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.nuclides import HO166, MEV_TO_J, Y90, radionuclide


def test_y90_energy_per_decay_is_consistent_with_mean_beta_energy():
    """49.67 J/GBq at T1/2 = 64.1 h is 0.9312 MeV per decay: within 0.3 % of the 0.9336 MeV mean beta energy."""
    per_decay_mev = Y90.absorbed_energy_per_decay_j / MEV_TO_J
    assert per_decay_mev == pytest.approx(49.67e-9 * math.log(2) / (64.1 * 3600) / MEV_TO_J)
    assert abs(per_decay_mev / Y90.mean_beta_energy_mev - 1) < 0.003


def _sphere(shape: int, radius_vox: float) -> np.ndarray:
    z, y, x = np.indices((shape,) * 3) - (shape - 1) / 2
    return (x**2 + y**2 + z**2) <= radius_vox**2


@pytest.mark.parametrize("nuclide", [Y90, HO166, Y90.with_half_life(64.2)])
def test_ldm_uniform_sphere_gives_mird_formula(nuclide):
    """A uniform sphere holding A decaying to completion gets D = A * E[J/GBq] / (V * rho) in every voxel.

    1 GBq in 1 kg gives 49.67 Gy for 90Y (Gulec et al. 2006) and 15.87 Gy for 166Ho (Smits et al. 2010),
    whatever half-life is chosen.
    """
    sphere = _sphere(31, 12)
    voxel_ml = 0.4**3  # 4 mm voxels
    density = 1.03
    mass_kg = sphere.sum() * voxel_ml * density / 1000
    activity_gbq = mass_kg  # chosen so that A/m = 1 GBq/kg
    activity = np.where(sphere, activity_gbq * 1e9 / sphere.sum(), 0.0)
    dose = ldm_dose_gy(time_integrated_activity_bq_s(activity, nuclide), voxel_ml, density, nuclide)
    assert dose.dtype == np.float32
    np.testing.assert_allclose(dose[sphere], nuclide.energy_per_activity_j_per_gbq, rtol=1e-6)
    assert np.all(dose[~sphere] == 0)


def test_ldm_density_map_scales_inversely():
    tia = np.full((2, 2, 2), 1e12)
    density = np.array([1.0, 0.3]).reshape(2, 1, 1) * np.ones((2, 2, 2))
    dose = ldm_dose_gy(tia, 0.1, density, Y90)
    np.testing.assert_allclose(dose[1] / dose[0], 1 / 0.3, rtol=1e-6)


def test_time_integrated_activity_is_activity_over_lambda():
    a0 = np.array([1e9])
    tia = time_integrated_activity_bq_s(a0, Y90)
    assert tia[0] == pytest.approx(1e9 * 64.1 * 3600 / math.log(2))


def test_decay_correction_back_to_implant():
    t0 = datetime(2024, 5, 2, 10, 0)
    assert decay_factor_to_implant(Y90, t0, t0 + timedelta(hours=64.1)) == pytest.approx(2.0)
    assert decay_factor_to_implant(Y90, None, None) == 1.0
    with pytest.raises(SIRTInputError, match="before the administration"):
        decay_factor_to_implant(Y90, t0, t0 - timedelta(hours=1))
    with pytest.raises(SIRTInputError, match="both"):
        decay_factor_to_implant(Y90, t0, None)


def test_absolute_calibration_units_and_decay():
    values = np.full((2, 2, 2), 2.0)  # kBq/mL
    t0 = datetime(2024, 5, 2, 10, 0)
    cal = AbsoluteCalibration(units="kbq_per_ml", administration_time=t0, scan_time=t0 + timedelta(hours=2 * 64.1))
    activity, report = calibrate(values, 0.5, cal, Y90)
    np.testing.assert_allclose(activity, 2.0e3 * 0.5 * 4.0)
    assert report.decay_factor == pytest.approx(4.0)
    assert report.total_activity_in_image_bq == pytest.approx(8 * 4.0e3)


def test_absolute_calibration_of_counts_with_camera_factor():
    """A = counts / (T_acq * CF): 1.2e6 counts in 1200 s (1000 cps) at 10 cps/MBq is 100 MBq."""
    values = np.array([[[1.2e6]]])
    cal = AbsoluteCalibration(units="counts", camera_factor_cps_per_mbq=10.0, acquisition_duration_s=1200.0)
    activity, _ = calibrate(values, 1.0, cal, Y90)
    assert activity[0, 0, 0] == pytest.approx(100e6)
    with pytest.raises(SIRTInputError, match="camera calibration factor"):
        calibrate(values, 1.0, AbsoluteCalibration(units="counts"), Y90)


def test_relative_calibration_distributes_activity_over_voi():
    """A_VOI = A_adm (1 - R)(1 - LSF), shared in proportion to counts; voxels outside the VOI scale alike."""
    counts = np.zeros((4, 4, 4))
    counts[:2] = 10.0
    counts[2:] = 5.0
    voi = np.zeros_like(counts)
    voi[:2] = 1.0
    cal = RelativeCalibration(administered_activity_bq=2e9, lung_shunt_fraction=0.1, residual_fraction=0.05)
    activity, report = calibrate(counts, 0.1, cal, Y90, voi)
    expected_voi = 2e9 * 0.95 * 0.9
    assert np.sum(activity * voi) == pytest.approx(expected_voi)
    assert activity[3, 0, 0] == pytest.approx(activity[0, 0, 0] / 2)
    assert report.details["activity_in_voi_bq"] == pytest.approx(expected_voi)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(administered_activity_bq=-1), "administered activity"),
        (dict(administered_activity_bq=1e9, lung_shunt_fraction=1.2), "lung shunt fraction"),
        (dict(administered_activity_bq=1e9, lung_shunt_fraction=0.1, lungs_in_voi=True), "counted|counts"),
        (dict(administered_activity_bq=1e9, calibration_voi=()), "calibration VOI"),
    ],
)
def test_relative_calibration_bad_input_refused_when_made(kwargs, message):
    with pytest.raises(SIRTInputError, match=message):
        RelativeCalibration(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(units="bq_per_ml", camera_factor_cps_per_mbq=10.0), "count images"),
        (dict(units="counts", camera_factor_cps_per_mbq=-1.0), "camera factor"),
        (dict(units="uci_per_ml"), "unknown image units"),
        (dict(units="bq_per_ml", administration_time=datetime(2024, 5, 2), scan_time=datetime(2024, 5, 1)), "before"),
    ],
)
def test_absolute_calibration_bad_input_refused_when_made(kwargs, message):
    with pytest.raises(SIRTInputError, match=message):
        AbsoluteCalibration(**kwargs)


def test_relative_calibration_zero_counts_in_voi():
    with pytest.raises(SIRTInputError, match="no counts"):
        calibrate(np.zeros((2, 2, 2)), 1.0, RelativeCalibration(administered_activity_bq=1e9), Y90, np.ones((2, 2, 2)))


@pytest.mark.parametrize("half_life", [0.0, -64.1, float("nan")])
def test_half_life_must_be_positive(half_life):
    with pytest.raises(SIRTInputError, match="half-life"):
        radionuclide("y90", half_life)


def test_unknown_radionuclide_lists_known():
    with pytest.raises(SIRTInputError, match="y90"):
        radionuclide("lu177")


def test_bed_analytic_value():
    """BED = D (1 + D T_rep / ((T_rep + T_phys) alpha/beta)): 100 Gy to tumour, 90Y.

    100 * (1 + 100 * 1.5 / (65.6 * 10)) = 122.866 Gy; EQD2 = BED / 1.2.
    """
    bed = bed_gy(100.0, TUMOUR_CHIESA_2015, 64.1)
    assert float(bed) == pytest.approx(100 * (1 + 100 * 1.5 / (65.6 * 10)))
    assert float(bed) == pytest.approx(122.866, abs=1e-3)
    assert float(eqd2_gy(bed, TUMOUR_CHIESA_2015)) == pytest.approx(float(bed) / 1.2)


def test_bed_limits():
    """Fast repair (T_rep -> 0) leaves BED = D; BED - D grows as D squared."""
    assert float(bed_gy(80.0, LQParameters(2.5, 1e-9), 64.1)) == pytest.approx(80.0)
    d = np.array([10.0, 20.0])
    excess = bed_gy(d, NORMAL_LIVER_CHIESA_2015, 64.1) - d
    assert excess[1] / excess[0] == pytest.approx(4.0)


@pytest.mark.parametrize("ab, trep", [(0, 1.5), (10, -1), (float("nan"), 1.0)])
def test_lq_parameters_must_be_positive(ab, trep):
    with pytest.raises(SIRTInputError):
        LQParameters(ab, trep)


def test_calibration_report_gives_the_factor_and_total_of_calibrate():
    """The engine takes the calibration as one factor (no activity array): it must be calibrate's, in both modes."""
    from SIRTDosimetryLib.dose.calibration import calibration_report

    counts = np.random.default_rng(1).uniform(0, 100, size=(4, 5, 6)).astype(np.float32)
    voi = np.zeros(counts.shape)
    voi[1:3] = 0.5
    for cal, weights in ((AbsoluteCalibration(units="kbq_per_ml"), None), (RelativeCalibration(administered_activity_bq=2e9), voi)):
        activity, report = calibrate(counts, 0.1, cal, Y90, weights)
        alone = calibration_report(counts, 0.1, cal, Y90, None if weights is None else float(np.sum(counts * weights, dtype=np.float64)))
        assert alone == report
        np.testing.assert_allclose(activity, counts * alone.bq_per_voxel_value, rtol=1e-6)
        assert alone.total_activity_in_image_bq == pytest.approx(float(np.sum(activity, dtype=np.float64)), rel=1e-6)
