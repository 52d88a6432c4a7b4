"""Planning: partition model (hand-computed from its formula and against the LDM engine), single
compartment, resin BSA, limits and violations, voxel-based planning."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SIRTDosimetryLib.analysis.derived import AnalysisStructure
from SIRTDosimetryLib.analysis.planning import (
    MICROSPHERE_LIMITS,
    PartitionInputs,
    PlanLimits,
    VoxelPlanner,
    activity_for_normal_dose,
    activity_for_tumour_dose,
    bsa_dubois_m2,
    limits_for,
    max_activities,
    partition_doses,
    plan_partition,
    resin_bsa_plan,
    resin_lsf_reduction,
    single_compartment_activity_gbq,
)
from SIRTDosimetryLib.dose.radiobiology import TUMOUR_CHIESA_2015, bed_gy
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.nuclides import Y90

E = Y90.energy_per_activity_j_per_gbq  # 49.67 J/GBq


def test_partition_worked_example_by_hand():
    """TNR 4, LSF 10 %, tumour 150 g, normal perfused liver 1200 g, lungs 1000 g, 2.0 GBq.

    By hand from the MIRD formulas: A_liver = 2.0 x 0.9 = 1.8 GBq; TNR m_T + m_N = 4 x 0.15 + 1.2
    = 1.8 kg, so D_N = 49.67 x 1.8 / 1.8 = 49.67 Gy, D_T = 4 D_N = 198.68 Gy,
    D_L = 49.67 x 0.2 / 1.0 = 9.934 Gy; tumour activity 1.8 x 0.6/1.8 = 0.6 GBq.
    """
    inputs = PartitionInputs(tumour_mass_g=150, normal_liver_mass_g=1200, tnr=4, lsf=0.10, lung_mass_g=1000)
    d = partition_doses(inputs, 2.0)
    assert d.normal_perfused_liver_gy == pytest.approx(49.67)
    assert d.tumour_gy == pytest.approx(198.68)
    assert d.lung_gy == pytest.approx(9.934)
    assert d.tumour_activity_gbq == pytest.approx(0.6)
    assert d.normal_activity_gbq == pytest.approx(1.2)
    assert d.lung_activity_gbq == pytest.approx(0.2)
    assert d.perfused_liver_gy == pytest.approx(49.67 * 1.8 / 1.35)
    # inverse problems
    assert activity_for_tumour_dose(inputs, 198.68) == pytest.approx(2.0)
    assert activity_for_normal_dose(inputs, 49.67) == pytest.approx(2.0)


def test_residual_and_whole_normal_liver():
    inputs = PartitionInputs(100, 900, 3, 0.05, 1000, whole_normal_liver_mass_g=1500, residual_fraction=0.1)
    d = partition_doses(inputs, 1.5)
    d_n = E * 1.5 * 0.9 * 0.95 / ((3 * 100 + 900) / 1000)
    assert d.normal_perfused_liver_gy == pytest.approx(d_n)
    assert d.whole_normal_liver_gy == pytest.approx(d_n * 900 / 1500)
    assert d.lung_gy == pytest.approx(E * 1.5 * 0.9 * 0.05 / 1.0)


def test_max_activity_is_the_smallest_limit_and_requested_activity_is_never_clipped():
    inputs = PartitionInputs(200, 1300, 3, 0.15, lung_mass_g=1000)
    limits = PlanLimits(lung_single_gy=30, lung_cumulative_gy=50, previous_lung_dose_gy=25, normal_perfused_liver_gy=40)
    by_limit = max_activities(inputs, limits)
    assert by_limit["lung_gy"] == pytest.approx(25 * 1.0 / (E * 0.15))  # cumulative 50 - 25 below the 30 Gy single limit
    assert by_limit["normal_perfused_liver_gy"] == pytest.approx(40 * 1.9 / (E * 0.85))
    plan = plan_partition(inputs, limits, activity_gbq=5.0)
    assert plan.max_activity_gbq == pytest.approx(min(by_limit.values()))
    assert plan.limiting_constraint == min(by_limit, key=by_limit.get)
    assert plan.activity_gbq == 5.0  # kept as asked
    violated = {v["constraint"] for v in plan.violations}
    assert {"lung_gy", "normal_perfused_liver_gy", "lung_cumulative_gy"} <= violated
    assert plan.warnings and all("exceeds the limit" in w for w in plan.warnings)
    at_max = plan.doses_at_max_activity
    assert max(at_max.lung_gy / 25, at_max.normal_perfused_liver_gy / 40) == pytest.approx(1.0)
    ok = plan_partition(inputs, limits, activity_gbq=0.5 * plan.max_activity_gbq)
    assert ok.violations == [] and ok.warnings == []


def test_partition_model_matches_the_ldm_engine_on_a_two_compartment_phantom():
    """Uniform tumour (TNR x) and normal compartments; the engine's relative calibration + LDM must give
    the partition-model mean doses (masses = volumes x 1.03 g/mL)."""
    from SIRTDosimetryLib.dose.calibration import RelativeCalibration
    from SIRTDosimetryLib.dose.engine import DoseParameters, compute_dose
    from SIRTDosimetryLib.io.segmentations import Segment, Segmentation
    from SIRTDosimetryLib.io.volumes import ActivityImage

    shape, spacing = (20, 24, 28), (4.0, 4.0, 4.0)
    labels = np.zeros(shape, np.uint16)
    labels[2:18, 2:22, 2:26] = 2  # normal liver
    labels[6:11, 7:12, 8:14] = 1  # tumour
    tnr, lsf, activity = 4.5, 0.08, 2.2
    image = np.where(labels == 1, tnr, np.where(labels == 2, 1.0, 0.0))
    act = sitk.GetImageFromArray(image)
    act.SetSpacing(spacing)
    lab = sitk.GetImageFromArray(labels)
    lab.CopyInformation(act)
    seg = Segmentation((lab,), (Segment("tumour", 0, 1), Segment("normal", 0, 2)), "synthetic")
    params = DoseParameters(RelativeCalibration(activity * 1e9, ("tumour", "normal"), lung_shunt_fraction=lsf))
    result = compute_dose(ActivityImage(act, None, "synthetic"), seg, params)
    by_name = {s.name: s for s in result.segments}
    inputs = PartitionInputs(by_name["tumour"].mass_g, by_name["normal"].mass_g, tnr, lsf, lung_mass_g=1000)
    d = partition_doses(inputs, activity)
    assert by_name["tumour"].dose_mean_gy == pytest.approx(d.tumour_gy, rel=1e-5)
    assert by_name["normal"].dose_mean_gy == pytest.approx(d.normal_perfused_liver_gy, rel=1e-5)


def test_partition_input_errors():
    with pytest.raises(SIRTInputError, match="lung mass"):
        PartitionInputs(100, 1000, 3, 0.1)  # lung dose requested, no lung mass
    PartitionInputs(100, 1000, 3, 0.0)  # no shunt: no lung mass needed
    with pytest.raises(SIRTInputError, match=r"\[0, 1\)"):
        PartitionInputs(100, 1000, 3, 1.0, 1000)
    with pytest.raises(SIRTInputError, match="tumour-to-normal"):
        PartitionInputs(100, 1000, 0, 0.0)
    with pytest.raises(SIRTInputError, match="below the normal perfused"):
        PartitionInputs(100, 1000, 3, 0.0, whole_normal_liver_mass_g=800)
    with pytest.raises(SIRTInputError, match="at most one"):
        plan_partition(PartitionInputs(100, 1000, 3, 0.0), PlanLimits(), activity_gbq=1, target_tumour_gy=100)
    with pytest.raises(SIRTInputError, match="unknown microsphere"):
        limits_for("ceramic")
    with pytest.raises(SIRTInputError, match="positive"):
        PlanLimits(lung_single_gy=-1)


def test_microsphere_defaults_and_overrides():
    glass, resin = limits_for("glass"), limits_for("resin")
    assert glass.lung_single_gy == 30 and glass.lung_cumulative_gy == 50 and glass.whole_normal_liver_gy == 75
    assert resin.normal_perfused_liver_gy == 40 and resin.whole_normal_liver_gy is None
    custom = limits_for("resin", normal_perfused_liver_gy=50, lung_single_gy=None)
    assert custom.normal_perfused_liver_gy == 50 and custom.lung_single_gy == 30
    assert any("user-set" in s for s in custom.sources)
    assert all(limits.sources for limits in MICROSPHERE_LIMITS.values())


def test_single_compartment_matches_the_package_insert_formula():
    # TheraSphere package insert: A[GBq] = D[Gy] x M[kg] / 50 -> 120 Gy to 1.2 kg = 2.88 GBq
    assert single_compartment_activity_gbq(120, 1200, energy_j_per_gbq=50.0) == pytest.approx(2.88)
    # with shunt and residual: A = D M / (E (1 - LSF)(1 - R))
    assert single_compartment_activity_gbq(120, 1200, 0.1, 0.05) == pytest.approx(120 * 1.2 / (E * 0.9 * 0.95))


def test_resin_bsa_method():
    # DuBois: 0.20247 H^0.725 W^0.425 (H in m, W in kg)
    assert bsa_dubois_m2(175, 70) == pytest.approx(0.20247 * 1.75**0.725 * 70**0.425)
    plan = resin_bsa_plan(1.8, tumour_volume_ml=300, normal_liver_volume_ml=1200, treated_fraction=0.6, lsf=0.12)
    assert plan.tumour_involvement == pytest.approx(0.2)
    assert plan.whole_liver_activity_gbq == pytest.approx(1.8 - 0.2 + 0.2)
    assert plan.activity_gbq == pytest.approx(1.8 * 0.6 * 0.8)
    assert plan.warnings
    assert resin_lsf_reduction(0.05) == (1.0, None)
    assert resin_lsf_reduction(0.18)[0] == 0.6
    assert resin_lsf_reduction(0.25)[0] == 0.0


def test_voxel_planner_scales_linearly_and_solves_for_targets():
    rng = np.random.default_rng(7)
    shape = (12, 12, 12)
    tumour = np.zeros(shape, np.float32)
    tumour[3:7, 3:7, 3:7] = 1
    normal = np.ones(shape, np.float32) - tumour
    dose_ref = np.where(tumour > 0, rng.gamma(4, 40, shape), rng.gamma(4, 8, shape))
    structures = [AnalysisStructure("t", tumour, "tumour"), AnalysisStructure("n", normal, "normal_liver")]
    planner = VoxelPlanner(dose_ref, 2.0, structures, 0.1, lq={"t": TUMOUR_CHIESA_2015})
    ref, doubled = planner.features(2.0), planner.features(4.0)
    for name in ("dose_mean_gy", "dose_d70_gy", "dose_d95_gy", "dose_max_gy"):
        assert doubled["t"][name] == pytest.approx(2 * ref["t"][name])
    # V_x at 2A equals V_(x/2) at A
    assert doubled["n"]["dose_v50_ml"] == pytest.approx(np.sum(normal * (dose_ref >= 25.0)) * 0.1)
    # BED recomputed from the scaled dose
    d = 2 * dose_ref[tumour > 0]
    assert doubled["t"]["bed_mean_gy"] == pytest.approx(np.mean(bed_gy(d, TUMOUR_CHIESA_2015, Y90.half_life_h)))
    assert "bed_mean_gy" not in doubled["n"]
    # activity for a target normal-liver mean dose: linear, A = A_ref x target / mean_ref
    target = 40.0
    assert planner.activity_for("n", "dose_mean_gy", target) == pytest.approx(2.0 * target / ref["n"]["dose_mean_gy"], rel=1e-6)
    a_max, which = planner.max_activity({("n", "dose_mean_gy"): 40.0, ("t", "bed_mean_gy"): 1e6})
    assert which == "n:dose_mean_gy" and a_max == pytest.approx(2.0 * 40 / ref["n"]["dose_mean_gy"], rel=1e-6)
    with pytest.raises(SIRTInputError, match="unknown structures"):
        VoxelPlanner(dose_ref, 2.0, structures, 0.1, lq={"x": TUMOUR_CHIESA_2015})
