"""Lung shunt, lung dose and the planning panel's partition-model plan on the sample MAA SPECT (slicer-core)."""

from __future__ import annotations

import json
import math

import pytest

slicer = pytest.importorskip("slicer")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the slicer-core wheel is not installed", allow_module_level=True)

from SIRTDosimetryLib.analysis.constraints import lung_shunt_fraction_planar  # noqa: E402
from SIRTDosimetryLib.errors import SIRTInputError  # noqa: E402
from SIRTDosimetryLib.mrml.logic import DoseSettings, compute_dose_from_nodes  # noqa: E402
from SIRTDosimetryLib.mrml.samples import load_sample_patient  # noqa: E402
from SIRTDosimetryLib.mrml.treatment_planning import (  # noqa: E402
    PlanRequest,
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
    lung = json.loads(out.provenance_node.GetText())["lung"]  # the engine's partition-model lung dose
    assert lung["method"] == "partition" and lung["lung_mass_g"] == 1000
    assert math.isclose(lung["dose_gy"], E * 1.5 * 0.05, rel_tol=1e-6)


def test_planning_panel_buttons(patient2):
    """The panel's buttons with stand-in label and parameter node (the module passes the real ones)."""
    from types import SimpleNamespace

    from SIRTDosimetryLib.mrml.planning_panel import PlanningPanel

    _, volume, segmentation = patient2
    node = SimpleNamespace(lungAnteriorCounts=100.0, lungPosteriorCounts=400.0, liverAnteriorCounts=900.0, liverPosteriorCounts=1600.0,
                           lungShuntFraction=0.0, activityVolume=volume, segmentation=segmentation, lungSegments=[], calibrationVoi=["liver"],
                           planPerfusedSegments=["perfused volume"], tumourSegments=[], microspheres="resin", targetTumourDoseGy=120.0,
                           plannedActivityGbq=0.0, residualFraction=0.0, clampNegative=True)
    label, errors = SimpleNamespace(text=""), []
    panel = PlanningPanel(label, lambda: node, errors.append, lambda: True)
    panel.planar_lung_shunt()
    assert node.lungShuntFraction == round(200 / 1400, 3) and "14.3 %" in label.text
    panel.spect_lung_shunt()  # no lung segment chosen
    assert errors and "lung segment" in errors[-1]
    panel.plan()  # tumours found by name (Tumor 1, Tumor 2), resin limits
    assert label.text.startswith("Tumour ") and "tumour 120 Gy" in label.text and "Maximum activity within the limits" in label.text
    node.liverAnteriorCounts = 0.0
    node.liverPosteriorCounts = 0.0
    node.lungAnteriorCounts = 0.0
    before = len(errors)
    panel.planar_lung_shunt()  # no counts at all: a message, not a traceback
    assert len(errors) == before + 1
