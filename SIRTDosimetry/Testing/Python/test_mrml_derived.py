"""Derived segments (normal perfused liver, whole normal liver, threshold targets) added to a new
segmentation node on the activity grid (``SIRTDosimetryLib.mrml.derived_segments``), on the real
sample patient 2 (99mTc-MAA SPECT; segments liver, Tumor 1, Tumor 2, perfused volume, ...).

The main checks are ``scenarios.scenario_patient2_derived_segments``, which the module's self-test
in Slicer runs too; the tests here add the standalone entry point, the rollback on failure, the
.mrml round trip and the settings wiring.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the slicer-core wheel is not installed (the PyPI package 'slicer' is unrelated)", allow_module_level=True)

from SIRTDosimetryLib.analysis import derived  # noqa: E402
from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration  # noqa: E402
from SIRTDosimetryLib.dose.engine import DoseParameters  # noqa: E402
from SIRTDosimetryLib.errors import SIRTInputError  # noqa: E402
from SIRTDosimetryLib.io.segmentations import Segment, Segmentation  # noqa: E402
from SIRTDosimetryLib.mrml import convert, derived_segments  # noqa: E402
from SIRTDosimetryLib.testing import scenarios  # noqa: E402
from SIRTDosimetryLib.analysis.segment_derivation import DerivedSegmentsSpec, threshold_segment_name  # noqa: E402
from SIRTDosimetryLib.mrml.derived_segments import add_derived_segments, derived_record  # noqa: E402
from SIRTDosimetryLib.vocabulary import NORMAL_PERFUSED_NAME, WHOLE_NORMAL_NAME  # noqa: E402
from SIRTDosimetryLib.mrml.logic import DoseSettings, compute_dose_from_nodes  # noqa: E402
from SIRTDosimetryLib.mrml.scene import load_segmentation, load_volume, new_scene, read_scene, save_scene  # noqa: E402

TUMOURS = ["Tumor 1", "Tumor 2"]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    context = new_scene()
    result = scenarios.scenario_patient2_derived_segments(context.scene, tmp_path_factory.mktemp("derived"))
    result["context"] = context
    return result


@pytest.fixture(scope="module")
def patient2(patient2_paths):
    """One scene with patient 2 loaded, shared by the standalone tests (each checks node counts relative to its start)."""
    context = new_scene()
    volume = load_volume(context.scene, patient2_paths[0], "patient 2 SPECT")
    segmentation = load_segmentation(context.scene, patient2_paths[1], "patient 2 segments")
    return context, volume, segmentation


def user_segmentation_state(node) -> tuple:
    """Segment count, names and a hash of the labelmaps (and their geometry) of a segmentation node."""
    return node.GetSegmentation().GetNumberOfSegments(), tuple(convert.segment_names(node)), convert.segmentation_sha256(node)


# --- the shared scenario ----------------------------------------------------------------------------


def test_normal_perfused_liver_is_perfused_volume_minus_the_tumours(scenario):
    """On the files (analysis.derived run directly) the voxels match exactly (checked in the scenario);
    here the numbers: the tumours lie inside the perfused volume, so the weighted volume is the perfused
    volume minus both tumours, and the segment (voxels at least half inside) agrees within voxel rounding."""
    w, voxel_ml = scenario["weights"], scenario["voxel_ml"]
    record = {r["name"]: r for r in scenario["record"]["segments"]}[NORMAL_PERFUSED_NAME]
    perfused_ml = float(np.sum(w["perfused volume"], dtype=np.float64)) * voxel_ml
    tumours_ml = sum(float(np.sum(w[t], dtype=np.float64)) for t in TUMOURS) * voxel_ml
    direct = derived.subtract(w["perfused volume"], *(w[t] for t in TUMOURS))
    assert record["weighted_volume_ml"] == pytest.approx(float(direct.sum(dtype=np.float64)) * voxel_ml, rel=1e-6)
    assert record["weighted_volume_ml"] == pytest.approx(perfused_ml - tumours_ml, rel=5e-3)
    assert record["volume_ml"] == pytest.approx(record["weighted_volume_ml"], rel=5e-3)
    assert record["voxels"] == int(np.count_nonzero(direct >= 0.5))
    assert record["definition"] == "perfused volume - Tumor 1 - Tumor 2"
    assert 700 < record["volume_ml"] < 1000  # about 840 mL: 1082 mL perfused, 240 mL of tumour


def test_derived_segments_are_in_a_new_node_with_stable_names_and_record(scenario):
    node, out = scenario["node"], scenario["outputs"]
    assert node.GetName() == "patient 2 SPECT (derived) derived segments"
    assert node.GetID() not in {scenario["segmentation"].GetID(), scenario["volume"].GetID()}
    assert node in out.nodes()
    record = scenario["record"]
    assert record["schema"] == derived_segments.SCHEMA
    assert record["segmentation"]["node_id"] == scenario["segmentation"].GetID()
    assert record["grid"]["node_id"] == scenario["volume"].GetID()
    names = [r["name"] for r in record["segments"]]
    assert names == [NORMAL_PERFUSED_NAME, WHOLE_NORMAL_NAME, "threshold 10 % of perfused volume"]
    threshold = record["segments"][2]
    assert threshold["operands"]["image"]["voxels_sha256"] == convert.voxels_sha256(out.dose_node)
    assert threshold["threshold_value"] == pytest.approx(0.1 * threshold["voi_maximum"])
    # the segments are on the activity lattice and the Segment Editor uses the activity geometry
    segmentation = node.GetSegmentation()
    labelmap = segmentation.GetNthSegment(0).GetRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName())
    matrix = convert.vtk.vtkMatrix4x4()
    labelmap.GetImageToWorldMatrix(matrix)
    lattice = np.linalg.solve(convert.node_ijk_to_ras(scenario["volume"]), convert.vtk_matrix_to_numpy(matrix))
    assert np.allclose(lattice[:3, :3], np.eye(3), atol=1e-6) and np.allclose(lattice[:3, 3], np.round(lattice[:3, 3]), atol=1e-4)
    assert node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole()).GetID() == scenario["volume"].GetID()


def test_the_user_segmentation_is_unchanged_and_saved_scene_reopens(scenario):
    reopened = scenario["reopened"].scene
    node = reopened.GetFirstNodeByName(scenario["node"].GetName())
    assert node.GetNodeReference("SIRT.dose").GetName() == scenario["outputs"].dose_node.GetName()
    dose = reopened.GetFirstNodeByName(scenario["outputs"].dose_node.GetName())
    assert dose.GetNodeReference("SIRT.derivedSegmentation").GetID() == node.GetID()
    assert json.loads(reopened.GetFirstNodeByName(scenario["outputs"].provenance_node.GetName()).GetText())["derived_segments"]


def test_refused_fractions_name_the_problem(scenario):
    assert set(scenario["refused"]) == {0.0, 1.2, "unknown_voi"}


# --- standalone entry point -------------------------------------------------------------------------


def test_standalone_threshold_on_activity_and_user_segmentation_untouched(patient2):
    context, volume, segmentation = patient2
    state = user_segmentation_state(segmentation)
    count = context.scene.GetNumberOfNodes()
    spec = DerivedSegmentsSpec(normal_perfused_from=("Perfused Volume",), threshold_vois=("liver",), threshold_fraction=0.25)
    out = add_derived_segments(volume, segmentation, spec, name="my derived")
    assert user_segmentation_state(segmentation) == state
    assert context.scene.GetNumberOfNodes() > count and out.node.GetName() == "my derived"
    assert convert.segment_names(out.node) == [NORMAL_PERFUSED_NAME, "threshold 25 % of liver"]
    # the activity voxels at or above 25 % of the liver maximum, among the voxels at least half in the liver
    weights = derived_segments.segment_weights(segmentation, volume, convert.image_from_volume_node(volume), ["liver"])["liver"]
    activity = convert.volume_array(volume)
    expected = (weights >= 0.5) & (activity >= 0.25 * activity[weights > 0].max())
    assert np.array_equal(out.structures[1].mask, expected)
    image = derived_record(out.node)["segments"][1]["operands"]["image"]
    assert image["role"] == "activity" and image["node_id"] == volume.GetID() and image["voxels_sha256"] == convert.voxels_sha256(volume)
    assert out.node.GetNodeReference("SIRT.thresholdImage").GetID() == volume.GetID()
    # default tumours (names with "tumor") are the two tumours, as explicit globs would give
    assert out.record["segments"][0]["operands"]["minus"] == TUMOURS
    again = add_derived_segments(volume, segmentation, DerivedSegmentsSpec(normal_perfused_from=("perfused volume",), tumours=("tumor*",)))
    assert np.array_equal(again.structures[0].mask, out.structures[0].mask)
    assert user_segmentation_state(segmentation) == state


@pytest.mark.parametrize("fraction", [0, 0.0, 1.0, 1.2, -0.1, float("nan"), True])
def test_bad_threshold_fraction_is_refused_and_adds_no_node(patient2, fraction):
    context, volume, segmentation = patient2
    state = user_segmentation_state(segmentation)
    count = context.scene.GetNumberOfNodes()
    with pytest.raises(SIRTInputError, match="fraction"):
        add_derived_segments(volume, segmentation, DerivedSegmentsSpec(threshold_vois=("liver",), threshold_fraction=fraction))
    with pytest.raises(SIRTInputError, match="fraction"):
        DoseSettings(threshold_segments=["liver"], threshold_fraction=fraction).derived_segments_spec()
    with pytest.raises(SIRTInputError, match="fraction"):  # the analysis layer refuses it too
        derived.threshold_structure(np.ones((2, 2, 2)), np.ones((2, 2, 2)), fraction)
    assert context.scene.GetNumberOfNodes() == count
    assert user_segmentation_state(segmentation) == state


@pytest.mark.parametrize(
    "spec, message",
    [
        (DerivedSegmentsSpec(threshold_vois=("liver",), threshold_image="dose"), "dose"),
        (DerivedSegmentsSpec(whole_normal_from=("liver",), tumours=("metastasis",)), "metastasis"),
        (DerivedSegmentsSpec(whole_normal_from=("Tumor 1",), tumours=("Tumor*",)), "both a tumour"),
        (DerivedSegmentsSpec(tumours=("Tumor 1",)), "no derived segment"),
    ],
)
def test_bad_requests_add_no_node(patient2, spec, message):
    context, volume, segmentation = patient2
    count = context.scene.GetNumberOfNodes()
    with pytest.raises(SIRTInputError, match=message):
        add_derived_segments(volume, segmentation, spec)
    assert context.scene.GetNumberOfNodes() == count


def test_failure_while_adding_the_node_leaves_the_scene_as_it_was(patient2, monkeypatch):
    context, volume, segmentation = patient2
    count = context.scene.GetNumberOfNodes()
    real = convert.add_segmentation_node

    def add_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(convert, "add_segmentation_node", add_then_fail)
    with pytest.raises(RuntimeError):
        add_derived_segments(volume, segmentation, DerivedSegmentsSpec(whole_normal_from=("liver",)))
    assert context.scene.GetNumberOfNodes() == count


def test_dose_on_another_grid_is_refused(patient2):
    context, volume, segmentation = patient2
    other = convert.add_volume_node(context.scene, sitk.Image(4, 4, 4, sitk.sitkFloat32), "not on the grid")
    count = context.scene.GetNumberOfNodes()
    with pytest.raises(SIRTInputError, match="not on the grid"):
        add_derived_segments(volume, segmentation, DerivedSegmentsSpec(threshold_vois=("liver",), threshold_image="dose"), dose_node=other)
    assert context.scene.GetNumberOfNodes() == count
    context.scene.RemoveNode(other)


def test_derived_segmentation_survives_an_mrml_round_trip(patient2, tmp_path):
    context, volume, segmentation = patient2
    spec = DerivedSegmentsSpec(whole_normal_from=("liver",), threshold_vois=("perfused volume",))
    out = add_derived_segments(volume, segmentation, spec, name="round trip derived")  # names are not made unique
    path = save_scene(context.scene, tmp_path / "derived.mrml")
    reopened = read_scene(path).scene
    again = reopened.GetFirstNodeByName(out.node.GetName())
    assert convert.segment_names(again) == [WHOLE_NORMAL_NAME, threshold_segment_name("perfused volume", 0.1)]
    assert derived_record(again) == out.record
    colors = [tuple(again.GetSegmentation().GetNthSegment(i).GetColor()) for i in range(2)]
    assert colors == [tuple(s.color) for s in out.structures]
    volume_again = reopened.GetFirstNodeByName(volume.GetName())
    for structure in out.structures:
        assert np.array_equal(scenarios._segment_mask_on_grid(again, structure.name, volume_again), structure.mask), structure.name


# --- settings, logic, transforms (small synthetic images) -------------------------------------------


def test_settings_give_the_spec_or_none():
    assert DoseSettings().derived_segments_spec() is None
    spec = DoseSettings(
        normal_perfused_segments=["perfused volume"], whole_liver_segments=["liver"], derived_tumour_segments=["Tumor*"],
        threshold_segments=["liver", "liver"], threshold_fraction=0.2, threshold_image="dose",
    ).derived_segments_spec()
    assert spec == DerivedSegmentsSpec(("perfused volume",), ("liver",), ("Tumor*",), ("liver",), 0.2, "dose")
    with pytest.raises(SIRTInputError, match="threshold image"):
        DoseSettings(threshold_segments=["liver"], threshold_image="ct").derived_segments_spec()
    assert threshold_segment_name("liver", 0.15) == "threshold 15 % of liver"


def _synthetic(scene, transform=None):
    """A 'liver' box with a hot 'tumour' cube inside, under an optional parent transform."""
    activity = np.zeros((12, 12, 12))
    activity[2:10, 2:10, 2:10] = 100.0
    activity[4:7, 4:7, 4:7] = 1000.0
    image = sitk.GetImageFromArray(activity)
    image.SetSpacing((4.0, 4.0, 4.0))
    labels = np.zeros(activity.shape, dtype=np.uint16)
    labels[2:10, 2:10, 2:10] = 1
    tumour = np.zeros(activity.shape, dtype=np.uint16)
    tumour[4:7, 4:7, 4:7] = 1
    layers = []
    for array in (labels, tumour):
        layer = sitk.GetImageFromArray(array)
        layer.CopyInformation(image)
        layers.append(layer)
    volume = convert.add_volume_node(scene, image, "activity")
    seg = convert.add_segmentation_node(scene, Segmentation(tuple(layers), (Segment("liver", 0, 1), Segment("lesion", 1, 1)), "x"), "seg")
    if transform is not None:
        volume.SetAndObserveTransformNodeID(transform.GetID())
        seg.SetAndObserveTransformNodeID(transform.GetID())
    return volume, seg


def test_recomputing_into_the_same_dose_node_replaces_the_derived_segmentation():
    context = new_scene()
    scene = context.scene
    volume, seg = _synthetic(scene)
    params = DoseParameters(calibration=AbsoluteCalibration(units="bq_per_ml"))
    spec = DerivedSegmentsSpec(whole_normal_from=("liver",), threshold_vois=("liver",), threshold_fraction=0.5, threshold_image="dose")
    first = compute_dose_from_nodes(volume, seg, params, derived=spec, with_dvh=False)
    assert convert.segment_names(first.derived_segmentation_node) == [WHOLE_NORMAL_NAME, "threshold 50 % of liver"]
    record = derived_record(first.derived_segmentation_node)
    assert record["segments"][0]["voxels"] == 8**3 - 3**3  # liver box minus the lesion ("lesion" is a tumour by name)
    assert record["segments"][1]["voxels"] == 3**3  # only the lesion is at >= 50 % of the maximum dose
    count = scene.GetNumberOfNodes()
    second = compute_dose_from_nodes(volume, seg, params, derived=spec, with_dvh=False, dose_node=first.dose_node, table_node=first.table_node)
    assert scene.GetNumberOfNodes() == count
    assert first.derived_segmentation_node.GetScene() is None
    assert second.dose_node.GetNodeReference("SIRT.derivedSegmentation").GetID() == second.derived_segmentation_node.GetID()
    third = compute_dose_from_nodes(volume, seg, params, with_dvh=False, dose_node=second.dose_node, table_node=second.table_node)
    assert third.derived_segmentation_node is None and second.derived_segmentation_node.GetScene() is None
    assert scene.GetNumberOfNodes() == count - 2  # the segmentation and its display node, nothing left behind
    assert third.dose_node.GetNodeReference("SIRT.derivedSegmentation") is None


def test_derived_segmentation_follows_the_activity_transform():
    context = new_scene()
    scene = context.scene
    shift = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    matrix = np.eye(4)
    matrix[:3, 3] = (12.0, -8.0, 20.0)
    shift.SetMatrixTransformToParent(convert.numpy_to_vtk_matrix(matrix))
    volume, seg = _synthetic(scene, shift)
    out = add_derived_segments(volume, seg, DerivedSegmentsSpec(whole_normal_from=("liver",)))
    assert out.node.GetTransformNodeID() == shift.GetID()
    assert out.record["segments"][0]["voxels"] == 8**3 - 3**3
    # the derived segment lies where the liver minus the lesion lies, in world coordinates too
    bounds_derived, bounds_liver = [0.0] * 6, [0.0] * 6
    out.node.GetSegmentation().GetNthSegment(0).GetBounds(bounds_derived)
    seg.GetSegmentation().GetSegment(seg.GetSegmentation().GetSegmentIdBySegmentName("liver")).GetBounds(bounds_liver)
    assert np.allclose(bounds_derived, bounds_liver)
