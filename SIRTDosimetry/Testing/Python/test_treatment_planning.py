"""Lung shunt, lung dose and the planning panel's partition-model plan on the sample MAA SPECT (slicer-core)."""

from __future__ import annotations

import json
import math

import pytest

slicer = pytest.importorskip("slicer")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the slicer-core wheel is not installed", allow_module_level=True)

from SIRTDosimetryLib.analysis.constraints import lung_shunt_fraction_planar  # noqa: E402
from SIRTDosimetryLib.dose.calibration import RelativeCalibration  # noqa: E402
from SIRTDosimetryLib.errors import SIRTInputError  # noqa: E402
from SIRTDosimetryLib.mrml.logic import DoseSettings, compute_dose_from_nodes  # noqa: E402
from SIRTDosimetryLib.mrml.samples import load_sample_patient  # noqa: E402
from SIRTDosimetryLib.mrml.treatment_planning import (  # noqa: E402
    PlanRequest,
    lung_dose_gy,
    plan_from_nodes,
    plan_text,
    spect_lung_shunt_fraction,
)

E = 49.67  # J/GBq, Gulec et al. 2006


@pytest.fixture(scope="module")
def patient2():
    from SIRTDosimetryLib.mrml.scene import new_scene

    context = new_scene()
    yield (context.scene, *load_sample_patient(context.scene, "SIRTPatient2MAASPECT"))
    context.scene.Clear(1)


def test_planar_geometric_mean():
    # GM lung = sqrt(100 x 400) = 200, GM liver = sqrt(900 x 1600) = 1200
    assert lung_shunt_fraction_planar(100, 400, 900, 1600) == pytest.approx(200 / 1400)


def test_lung_dose_of_a_relative_calibration():
    calibration = RelativeCalibration(1.5e9, ("liver",), lung_shunt_fraction=0.05, residual_fraction=0.02)
    assert lung_dose_gy(calibration) == pytest.approx(E * 1.5 * 0.98 * 0.05 / 1.0)
    assert lung_dose_gy(calibration, lung_mass_g=800) == pytest.approx(E * 1.5 * 0.98 * 0.05 / 0.8)
    assert lung_dose_gy(RelativeCalibration(1.5e9, ("liver",))) is None


def test_spect_lung_shunt_is_a_count_ratio(patient2):
    _, volume, segmentation = patient2
    # no lung segment in the sample: the gallbladder stands in for the counts outside the liver
    lsf = spect_lung_shunt_fraction(volume, segmentation, lung="gallbladder", liver="liver", clamp_negative=True)
    assert 0 < lsf < 0.2


def test_target_tumour_dose_gives_the_partition_activity_and_its_limits(patient2):
    _, volume, segmentation = patient2
    request = PlanRequest(("Tumor 1", "Tumor 2"), "perfused volume", whole_liver="liver", lsf=0.05, microspheres="glass",
                          target_tumour_gy=150.0, clamp_negative=True)
    plan = plan_from_nodes(volume, segmentation, request)
    i = plan.inputs
    expected = 150.0 * (i.tnr * i.tumour_mass_g + i.normal_liver_mass_g) / 1000 / (E * i.tnr * (1 - 0.05))
    assert plan.activity_gbq == pytest.approx(expected, rel=1e-9)
    assert plan.doses.tumour_gy == pytest.approx(150.0)
    assert plan.doses.lung_gy == pytest.approx(E * plan.activity_gbq * 0.05 / 1.0)  # 1000 g lungs
    assert plan.max_activity_gbq > 0 and plan.limiting_constraint in ("lung_gy", "whole_normal_liver_gy")
    text = plan_text(plan)
    assert "Maximum activity within the limits" in text and "lung mass 1000 g" in text
    doses = plan_from_nodes(volume, segmentation, PlanRequest(("Tumor 1", "Tumor 2"), "perfused volume", lsf=0.05,
                                                              activity_gbq=plan.activity_gbq, clamp_negative=True))
    assert doses.doses.tumour_gy == pytest.approx(150.0)  # activity -> doses inverts dose -> activity
    with pytest.raises(SIRTInputError, match="lung shunt fraction"):
        plan_from_nodes(volume, segmentation, PlanRequest(("Tumor 1",), "perfused volume", clamp_negative=True))


def test_lung_dose_is_in_the_results(patient2):
    scene, volume, segmentation = patient2
    settings = DoseSettings(calibration_mode="relative", administered_activity_gbq=1.5, lung_shunt_fraction=0.05,
                            calibration_voi=["liver"], clamp_negative=True, segments=["liver"])
    out = compute_dose_from_nodes(volume, segmentation, settings.to_parameters(), with_dvh=False)
    lungs = json.loads(out.provenance_node.GetText())["lungs"]
    assert math.isclose(lungs["dose_mean_gy"], E * 1.5 * 0.05, rel_tol=1e-12) and lungs["mass_g"] == 1000
