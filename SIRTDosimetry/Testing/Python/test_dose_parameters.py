"""The one dose-parameter builder: the command line, the Slicer settings and a manifest entry give the
same validated ``DoseParameters``; bad values are refused when the parameters are made."""

from __future__ import annotations

import argparse
from datetime import datetime

import numpy as np
import pytest
from SIRTDosimetryLib.cli import dose_command
from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration, RelativeCalibration
from SIRTDosimetryLib.dose.parameters import DoseParameters, build_dose_parameters, dose_parameters_from_mapping
from SIRTDosimetryLib.dose.radiobiology import NORMAL_LIVER_CHIESA_2015, TUMOUR_CHIESA_2015, LQParameters
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.mrml.logic import DoseSettings


def _cli(*options: str) -> DoseParameters:
    parser = argparse.ArgumentParser()
    dose_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["dose", "--activity", "a.nrrd", "--segmentation", "s.seg.nrrd", "--output", "o", *options])
    return dose_command.parameters_from_args(args)


def test_cli_gui_and_manifest_build_the_same_parameters():
    cli = _cli(
        "--mode", "relative", "--administered-activity-gbq", "1.8", "--lung-shunt-fraction", "0.06",
        "--calibration-voi", "perfused", "--method", "vsv", "--segment-density", "lungs=0.3",
        "--bed-params", "liver=normal_liver", "--bed-params", "Tumor 1=tumour", "--segments", "liver,Tumor 1",
        "--half-life-h", "64.2", "--lung-mass-g", "1000",
    )
    gui = DoseSettings(
        calibration_mode="relative", administered_activity_gbq=1.8, lung_shunt_fraction=0.06, calibration_voi=["perfused"],
        method="vsv", segment_densities="lungs=0.3", normal_liver_segments=["liver"], tumour_segments=["Tumor 1"],
        segments=["liver", "Tumor 1"], half_life_h=64.2,
    ).to_parameters()
    manifest = dose_parameters_from_mapping({
        "administered_activity_gbq": "1.8", "lung_shunt_fraction": 0.06, "calibration_voi": "perfused", "method": "vsv",
        "segment_densities": {"lungs": 0.3}, "radiobiology": {"liver": "normal_liver", "Tumor 1": "tumour"},
        "segments": ["liver", "Tumor 1"], "half_life_h": 64.2, "lung_mass_g": 1000,
    })
    assert cli == gui == manifest  # the module gives the conventional 1000 g lung mass itself when a shunt is set
    assert cli.calibration == RelativeCalibration(1.8e9, ("perfused",), lung_shunt_fraction=0.06)
    assert cli.radiobiology == {"liver": NORMAL_LIVER_CHIESA_2015, "Tumor 1": TUMOUR_CHIESA_2015}
    assert list(cli.radiobiology) == ["liver", "Tumor 1"]  # painting order kept


def test_absolute_parameters_read_iso_times_and_normalise_units():
    params = build_dose_parameters(
        "absolute", units="Bq/mL", administration_time="2024-05-02T10:30", scan_time=datetime(2024, 5, 3, 9, 0),
        radiobiology={"t": "10,1.5"},
    )
    assert params.calibration == AbsoluteCalibration(
        "bq_per_ml", administration_time=datetime(2024, 5, 2, 10, 30), scan_time=datetime(2024, 5, 3, 9, 0)
    )
    assert params.radiobiology == {"t": LQParameters(10.0, 1.5)}
    assert build_dose_parameters(administered_activity_gbq=2.0).calibration.mode == "relative"  # mode follows the activity


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(method="mcnp"), "unknown dose method 'mcnp'"),
        (dict(kernel="gate"), "unknown kernel source"),
        (dict(partial_voxels="some"), "unknown partial-voxel mode"),
        (dict(radionuclide="i131"), "unknown radionuclide"),
        (dict(half_life_h=0.0), "half-life"),
        (dict(density_g_per_ml=-1.0), "tissue density must be a number of g/mL between"),
        (dict(segment_densities_g_per_ml={"lungs": 0.0}), "density of 'lungs'"),
        (dict(radionuclide="ho166", method="vsv"), "Y-90 only"),
        (dict(radiobiology={"liver": (2.5, 2.5)}), "LQParameters"),
        (dict(segments=()), "segments"),
    ],
)
def test_dose_parameters_refuse_bad_values_when_made(kwargs, message):
    with pytest.raises(SIRTInputError, match=message):
        DoseParameters(AbsoluteCalibration("bq_per_ml"), **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mode="relative"), "needs the administered activity in GBq \\(administered_activity_gbq\\)"),
        (dict(mode="relativ"), "unknown calibration mode"),
        (dict(units="bq_per_ml", scan_time="yesterday", administration_time="2024-05-02"), "scan time: 'yesterday'"),
        (dict(units="bq_per_ml", radiobiology=["liver=banana"]), "preset"),
        (dict(units="bq_per_ml", segment_densities="lungs"), "NAME=VALUE"),
        (dict(units="bq_per_ml", density_g_per_ml="heavy"), "tissue density: 'heavy' is not a number"),
    ],
)
def test_builder_errors_are_one_line(kwargs, message):
    with pytest.raises(SIRTInputError, match=message) as error:
        build_dose_parameters(**kwargs)
    assert "\n" not in str(error.value)


def test_manifest_mapping_refuses_unknown_keys():
    with pytest.raises(SIRTInputError, match="unknown dose parameters dose_method"):
        dose_parameters_from_mapping({"units": "bq_per_ml", "dose_method": "vsv"})


def test_absolute_calibration_keeps_the_administered_activity_as_a_check_only():
    """With absolute calibration the administered activity does not scale the image: it is kept to check it."""
    params = build_dose_parameters("absolute", units="bq_per_ml", administered_activity_gbq=1.5)
    assert isinstance(params.calibration, AbsoluteCalibration)
    assert params.calibration.administered_activity_bq == pytest.approx(1.5e9)


def test_monte_carlo_settings_from_plain_values():
    """A manifest or the command line gives Monte Carlo settings as plain values; the builder checks them."""
    from SIRTDosimetryLib.dose.montecarlo import MCSettings
    from SIRTDosimetryLib.dose.parameters import build_dose_parameters

    params = build_dose_parameters("absolute", units="bq_per_ml", method="mc",
                                   monte_carlo={"decays": 2e5, "target_segments": "Tumor 1, Tumor 2", "seed": 7})
    assert params.monte_carlo == MCSettings(decays=200_000, target_segments=("Tumor 1", "Tumor 2"), seed=7)
    with pytest.raises(SIRTInputError, match="unknown Monte Carlo settings histories"):
        build_dose_parameters("absolute", units="bq_per_ml", method="mc", monte_carlo={"histories": 10})
    with pytest.raises(SIRTInputError, match="whole number"):
        build_dose_parameters("absolute", units="bq_per_ml", method="mc", monte_carlo={"decays": 1.5})
    with pytest.raises(SIRTInputError, match="seed pairs"):
        build_dose_parameters("absolute", units="bq_per_ml", method="mc", monte_carlo={"seed": 1001})
    with pytest.raises(SIRTInputError, match="Y-90 only"):
        build_dose_parameters("absolute", units="bq_per_ml", method="vsv-lung", radionuclide="ho166")


def test_hours_after_administration_decay_like_the_two_date_times():
    """A scan 20 h after the implant, given as hours (CLI, module, manifest), decays like the two date-times."""
    import math

    from SIRTDosimetryLib.dose.calibration import calibration_report
    from SIRTDosimetryLib.nuclides import Y90

    values = np.ones((2, 2, 2), dtype=np.float32)
    hours = build_dose_parameters("absolute", units="bq_per_ml", scan_after_administration_h=20)
    times = build_dose_parameters("absolute", units="bq_per_ml", administration_time="2024-05-02T10:00", scan_time="2024-05-03T06:00")
    by_hours = calibration_report(values, 1.0, hours.calibration, Y90)
    by_times = calibration_report(values, 1.0, times.calibration, Y90)
    assert by_hours.decay_factor == pytest.approx(by_times.decay_factor, rel=1e-12)
    assert by_hours.decay_factor == pytest.approx(math.exp(math.log(2) * 20 / Y90.half_life_h), rel=1e-12)
    assert _cli("--mode", "absolute", "--units", "bq_per_ml", "--scan-after-administration-h", "20") == hours
    gui = DoseSettings(units="bq_per_ml", scan_after_administration_h=20.0).to_parameters()
    assert gui == hours and dose_parameters_from_mapping({"units": "bq_per_ml", "scan_after_administration_h": 20}) == hours
    assert DoseSettings(units="bq_per_ml").to_parameters().calibration.scan_after_administration_h is None  # 0 in the GUI: not given


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(scan_after_administration_h=-1), "hours >= 0"),
        (dict(scan_after_administration_h=float("nan")), "hours >= 0"),
        (dict(scan_after_administration_h=5, administration_time="2024-05-02T10:00"), "not both"),
    ],
)
def test_hours_after_administration_are_checked(kwargs, message):
    with pytest.raises(SIRTInputError, match=message):
        build_dose_parameters("absolute", units="bq_per_ml", **kwargs)
