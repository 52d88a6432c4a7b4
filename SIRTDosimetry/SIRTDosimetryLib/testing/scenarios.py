"""Scenarios shared by the pytest suite (slicer-core wheel) and the SIRTDosimetry self-test in Slicer.

Each scenario takes a set-up scene (``slicer.mrmlScene`` in Slicer, ``scene.new_scene().scene``
elsewhere), does what a user does (load the sample patients, compute, save, reopen) and checks the
outcome, raising ``AssertionError`` with a message on the first failure. They return what they made,
for callers that want to look further.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..analysis import segment_derivation
from ..data import SAMPLES_DIR
from ..dose.calibration import AbsoluteCalibration, RelativeCalibration
from ..dose.engine import DoseParameters, DoseResult, compute_dose
from ..dose.radiobiology import NORMAL_LIVER_CHIESA_2015, TUMOUR_CHIESA_2015
from ..errors import SIRTInputError
from ..io.segmentations import Segment, Segmentation, read_segmentation
from ..io.volumes import read_activity_image
from ..mrml import convert, derived_segments, outputs
from ..mrml.logic import DoseOutputs, DoseSettings, OperationCancelled, compute_dose_from_nodes
from ..mrml.scene import load_segmentation, load_volume, read_scene, save_scene
from ..vocabulary import NORMAL_PERFUSED_NAME, WHOLE_NORMAL_NAME

FLOAT32_RELATIVE = 1e-6
"""Dose maps are float32: values computed through MRML and from the files agree to this fraction of the maximum."""

PATIENT_1 = (SAMPLES_DIR / "patient_1_Y90_PET.nrrd", SAMPLES_DIR / "patient_1_Segmentation.seg.nrrd")
PATIENT_2 = (SAMPLES_DIR / "patient_2_SPECT.nrrd", SAMPLES_DIR / "patient_2_Segmentation.seg.nrrd")
PATIENT_1_TUMOURS = [f"Tumor {i}" for i in range(1, 7)]


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _ijk_to_ras(node) -> np.ndarray:
    matrix = convert.vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return convert.vtk_matrix_to_numpy(matrix)


def _node_count(scene) -> int:
    return scene.GetNumberOfNodes()


OUTSIDE = -1.0e30
"""Resampling default: marks node voxels that fall outside the file's grid."""


def dose_on_node_grid(reference: sitk.Image, node) -> np.ndarray:
    """``reference`` (an image computed from the files) resampled onto a node's voxels: exact voxel
    correspondence when the grids coincide physically (e.g. the same grid with a flipped axis)."""
    target = convert.image_from_volume_node(node, np.float32)
    resampled = sitk.Resample(reference, target, sitk.Transform(), sitk.sitkNearestNeighbor, OUTSIDE, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(resampled)


def check_dose_matches(node, reference: sitk.Image, what: str) -> float:
    """Node voxels equal the reference map (from the files) within float32 precision, NaN where it is NaN
    (BED outside structures with LQ parameters); returns the largest error as a fraction of the maximum."""
    expected = dose_on_node_grid(reference, node)
    check(not np.any(expected == OUTSIDE), f"{what}: the node's grid does not coincide with the file's grid")
    actual = convert.volume_array(node).astype(np.float32)
    nan = np.isnan(expected)
    check(np.array_equal(nan, np.isnan(actual)), f"{what}: NaN voxels differ")
    scale = float(np.max(np.abs(expected[~nan]))) or 1.0
    error = float(np.max(np.abs(actual[~nan] - expected[~nan]))) / scale
    check(error <= FLOAT32_RELATIVE, f"{what}: values differ from compute_dose on the files by {error:.2e} of the maximum")
    return error


def check_summary_matches(out: DoseOutputs, reference: DoseResult, what: str) -> None:
    rows = outputs.table_rows(out.table_node)
    check([r["name"] for r in rows] == [s.name for s in reference.segments], f"{what}: table rows {[r['name'] for r in rows]}")
    for row, expected in zip(rows, reference.segments):
        for column in ("volume_ml", "mass_g", "activity_bq", "dose_mean_gy", "dose_max_gy"):
            a, b = row[column], getattr(expected, column)
            check(abs(a - b) <= 1e-6 * max(abs(b), 1e-9), f"{what}: {expected.name} {column} {a} != {b}")


@dataclass
class InputSnapshot:
    voxels: str
    segments: str
    ijk_to_ras: np.ndarray
    node_count: int

    @classmethod
    def of(cls, volume_node, segmentation_node) -> "InputSnapshot":
        return cls(
            convert.voxels_sha256(volume_node),
            convert.segmentation_sha256(segmentation_node),
            _ijk_to_ras(volume_node),
            volume_node.GetScene().GetNumberOfNodes(),
        )

    def check_unchanged(self, volume_node, segmentation_node, what: str) -> None:
        check(convert.voxels_sha256(volume_node) == self.voxels, f"{what}: the activity volume's voxels changed")
        check(convert.segmentation_sha256(segmentation_node) == self.segments, f"{what}: the segmentation changed")
        check(np.array_equal(_ijk_to_ras(volume_node), self.ijk_to_ras), f"{what}: the activity geometry changed")


def patient1_settings() -> DoseSettings:
    """GUI-style settings for sample patient 1 (90Y PET in Bq/mL, LDM, BED with the Chiesa 2015 presets)."""
    return DoseSettings(
        calibration_mode="absolute",
        units="bq_per_ml",
        method="ldm",
        tumour_segments=list(PATIENT_1_TUMOURS),
        normal_liver_segments=["Liver", "Normal Tissue"],
    )


def patient1_parameters() -> DoseParameters:
    lq = {"Liver": NORMAL_LIVER_CHIESA_2015, "Normal Tissue": NORMAL_LIVER_CHIESA_2015}
    lq |= {name: TUMOUR_CHIESA_2015 for name in PATIENT_1_TUMOURS}
    return DoseParameters(calibration=AbsoluteCalibration(units="bq_per_ml"), method="ldm", radiobiology=lq)


def patient2_parameters() -> DoseParameters:
    """99mTc-MAA SPECT of patient 2, relative calibration over the liver (assumed 1.5 GBq, LSF 5 %), VSV."""
    calibration = RelativeCalibration(administered_activity_bq=1.5e9, calibration_voi=("liver",), lung_shunt_fraction=0.05)
    lq = {"liver": NORMAL_LIVER_CHIESA_2015, "Tumor 1": TUMOUR_CHIESA_2015, "Tumor 2": TUMOUR_CHIESA_2015}
    return DoseParameters(calibration=calibration, method="vsv", radiobiology=lq, clamp_invalid=True)


# ---------------------------------------------------------------------------------------------


def scenario_patient1_dose_and_scene_round_trip(scene, work_dir: str | Path | None = None) -> dict:
    """Patient 1 (PET + multi-layer segmentation): GUI settings → dose through MRML, checked against
    the engine on the files; inputs unchanged; saved as .mrb and reopened with the same dose and segments."""
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="sirt-scenario-"))
    volume = load_volume(scene, PATIENT_1[0], "patient 1 PET")
    segmentation = load_segmentation(scene, PATIENT_1[1], "patient 1 segmentation")
    before = InputSnapshot.of(volume, segmentation)

    params = patient1_settings().to_parameters()
    check(params == patient1_parameters(), f"GUI settings give other parameters than expected: {params}")
    messages: list[tuple[float, str]] = []
    out = compute_dose_from_nodes(volume, segmentation, params, progress=lambda f, m: messages.append((f, m)))
    check(messages and messages[-1][0] == 1.0, "progress did not reach 100 %")
    check(all(a[0] <= b[0] for a, b in zip(messages, messages[1:])), "progress went backwards")

    before.check_unchanged(volume, segmentation, "patient 1")
    check(out.dose_node.GetID() != volume.GetID(), "the dose was written into the input volume")
    check(convert.same_geometry(out.dose_node, volume), "dose node geometry differs from the activity node's")
    check(out.dose_node.GetImageData().GetScalarType() == convert.vtk.VTK_FLOAT, "dose node is not float32")

    reference = compute_dose(read_activity_image(PATIENT_1[0]), read_segmentation(PATIENT_1[1]), params)
    error = check_dose_matches(out.dose_node, reference.dose_gy, "patient 1")
    check_summary_matches(out, reference, "patient 1")
    check(out.bed_node is not None and out.eqd2_node is not None, "no BED/EQD2 nodes although LQ parameters were given")
    check_dose_matches(out.bed_node, reference.bed_gy, "patient 1 BED")
    check_dose_matches(out.eqd2_node, reference.eqd2_gy, "patient 1 EQD2")

    display = out.dose_node.GetDisplayNode()
    check(display.GetColorNode() is not None and display.GetColorNode().GetName() == outputs.DOSE_COLOR_TABLE_NAME, "no dose colour table")
    check(display.GetApplyThreshold() and display.GetLowerThreshold() == outputs.DEFAULT_DISPLAY_THRESHOLD_GY, "no low-dose threshold")
    check(0 < display.GetWindowLevelMax() <= float(convert.volume_array(out.dose_node).max()) + 1e-3, "dose window outside the dose range")
    check(out.provenance_node is not None and '"inputs"' in out.provenance_node.GetText(), "no provenance text")

    # save and reopen in a fresh scene
    path = save_scene(scene, work_dir / "patient1_dose.mrb", overwrite=True)
    reopened = read_scene(path)
    dose_again = reopened.scene.GetFirstNodeByName(out.dose_node.GetName())
    check(dose_again is not None, "the dose node is missing from the reopened scene")
    check(
        np.array_equal(convert.volume_array(dose_again), convert.volume_array(out.dose_node)),
        "dose values changed through the .mrb round trip",
    )
    check(convert.same_geometry(dose_again, out.dose_node), "dose geometry changed through the .mrb round trip")
    seg_again = reopened.scene.GetFirstNodeByName(segmentation.GetName())
    check(convert.segment_names(seg_again) == convert.segment_names(segmentation), "segment names changed through the round trip")
    table_again = reopened.scene.GetFirstNodeByName(out.table_node.GetName())
    check(table_again is not None and table_again.GetNumberOfRows() == len(reference.segments), "summary table lost in the round trip")
    return {
        "volume": volume, "segmentation": segmentation, "outputs": out, "reference": reference,
        "error": error, "scene_path": path, "reopened": reopened, "progress": messages,
    }


def scenario_patient2_negative_z_geometry(scene) -> dict:
    """Patient 2's SPECT file has a negative z axis; Slicer reads it with the slices reversed. The dose
    node must share the SPECT node's IJK-to-RAS matrix and match the engine on the files voxel by voxel
    (physically), and the reported numbers must not depend on the voxel order."""
    volume = load_volume(scene, PATIENT_2[0], "patient 2 SPECT")
    segmentation = load_segmentation(scene, PATIENT_2[1], "patient 2 segmentation")
    file_image = read_activity_image(PATIENT_2[0]).image
    file_z = np.asarray(file_image.GetDirection()).reshape(3, 3)[2, 2]
    node_z = _ijk_to_ras(volume)[2, 2]
    params = patient2_parameters()
    out = compute_dose_from_nodes(volume, segmentation, params)
    check(np.array_equal(_ijk_to_ras(out.dose_node), _ijk_to_ras(volume)), "dose IJK-to-RAS differs from the SPECT node's")
    check(out.dose_node.GetImageData().GetDimensions() == volume.GetImageData().GetDimensions(), "dose dimensions differ")
    reference = compute_dose(read_activity_image(PATIENT_2[0]), read_segmentation(PATIENT_2[1]), params)
    error = check_dose_matches(out.dose_node, reference.dose_gy, "patient 2")
    for mine, theirs in zip(out.result.segments, reference.segments):
        check(mine.name == theirs.name, "segment order differs")
        check(abs(mine.dose_mean_gy - theirs.dose_mean_gy) <= 1e-5 * theirs.dose_mean_gy, f"{mine.name}: mean dose differs")
        check(abs(mine.volume_ml - theirs.volume_ml) <= 1e-6 * theirs.volume_ml, f"{mine.name}: volume differs")
    # The hottest activity voxel and the hottest dose voxel lie at the same RAS point in both.
    activity = convert.volume_array(volume)
    k, j, i = np.unravel_index(np.argmax(activity), activity.shape)
    ras = _ijk_to_ras(volume) @ np.array([i, j, k, 1.0])
    lps = (ras * np.array([-1, -1, 1, 1]))[:3]
    index = file_image.TransformPhysicalPointToIndex(lps.tolist())
    check(file_image[index] == float(activity[k, j, i]), "the SPECT node and the file disagree on the hottest voxel's position")
    return {"volume": volume, "outputs": out, "reference": reference, "error": error, "file_z": file_z, "node_z": node_z}


def scenario_cancel_and_bad_input(scene) -> dict:
    """Cancelling, an unknown segment, an output that is an input: a clear error and no node left behind."""
    volume = load_volume(scene, PATIENT_1[0], "patient 1 PET (errors)")
    segmentation = load_segmentation(scene, PATIENT_1[1], "patient 1 segmentation (errors)")
    count = _node_count(scene)
    params = patient1_parameters()
    outcomes = {}
    calls = []

    def cancel_after_segments() -> bool:
        calls.append(1)
        return len(calls) >= 3  # let two steps run, then stop

    try:
        compute_dose_from_nodes(volume, segmentation, params, cancel=cancel_after_segments)
        raise AssertionError("cancellation was ignored")
    except OperationCancelled as exc:
        outcomes["cancelled"] = str(exc)
    check(_node_count(scene) == count, f"cancelling left {_node_count(scene) - count} nodes in the scene")

    bad = DoseParameters(calibration=AbsoluteCalibration(units="bq_per_ml"), segments=("Liver", "Spleen"))
    try:
        compute_dose_from_nodes(volume, segmentation, bad)
        raise AssertionError("an unknown segment was accepted")
    except SIRTInputError as exc:
        outcomes["unknown_segment"] = str(exc)
        check("Spleen" in str(exc), f"unclear message: {exc}")
    check(_node_count(scene) == count, "a failed run left nodes in the scene")

    try:
        compute_dose_from_nodes(volume, segmentation, params, dose_node=volume)
        raise AssertionError("the activity volume was accepted as the dose output")
    except SIRTInputError as exc:
        outcomes["output_is_input"] = str(exc)

    try:
        DoseSettings(calibration_mode="relative", administered_activity_gbq=0.0).to_parameters()
        raise AssertionError("relative calibration without activity was accepted")
    except SIRTInputError as exc:
        outcomes["no_activity"] = str(exc)

    try:
        compute_dose_from_nodes(volume, segmentation, DoseSettings(units="auto").to_parameters(volume_units=None))
        raise AssertionError("absolute calibration without units was accepted")
    except SIRTInputError as exc:
        outcomes["no_units"] = str(exc)
    check(_node_count(scene) == count, "a refused run left nodes in the scene")
    return outcomes


def scenario_transformed_segmentation(scene) -> dict:
    """A segmentation under a linear transform is used where the transform puts it, and a dose computed
    on a transformed activity volume gets the same parent transform."""
    spacing = 4.0
    activity = np.zeros((16, 16, 16))
    activity[6:10, 6:10, 6:10] = 1000.0  # hot cube, Bq/mL
    activity[6:10, 6:10, 10:14] = 250.0  # warm cube beside it (+x)
    image = sitk.GetImageFromArray(activity)
    image.SetSpacing((spacing,) * 3)
    image.SetOrigin((10.0, -20.0, 5.0))
    label = np.zeros(activity.shape, dtype=np.uint16)
    label[6:10, 6:10, 6:10] = 1  # drawn on the hot cube
    layer = sitk.GetImageFromArray(label)
    layer.CopyInformation(image)
    segmentation = Segmentation((layer,), (Segment("target", 0, 1),), "synthetic")

    volume = convert.add_volume_node(scene, image, "synthetic activity")
    seg_node = convert.add_segmentation_node(scene, segmentation, "synthetic segmentation")
    params = DoseParameters(calibration=AbsoluteCalibration(units="bq_per_ml"), method="ldm")
    plain = compute_dose_from_nodes(volume, seg_node, params, with_dvh=False)

    # Move the segment by 4 voxels along LPS +x, i.e. RAS -x, onto the warm cube.
    shift = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    matrix = np.eye(4)
    matrix[0, 3] = -4 * spacing
    shift.SetMatrixTransformToParent(convert.numpy_to_vtk_matrix(matrix))
    seg_node.SetAndObserveTransformNodeID(shift.GetID())
    moved = compute_dose_from_nodes(volume, seg_node, params, with_dvh=False)
    ratio = moved.result.segments[0].dose_mean_gy / plain.result.segments[0].dose_mean_gy
    check(abs(ratio - 0.25) < 1e-9, f"the transformed segment did not move onto the warm cube (dose ratio {ratio})")

    # Same transform on both: the result is that of no transform, and the dose follows the volume.
    volume.SetAndObserveTransformNodeID(shift.GetID())
    both = compute_dose_from_nodes(volume, seg_node, params, with_dvh=False)
    check(abs(both.result.segments[0].dose_mean_gy - plain.result.segments[0].dose_mean_gy) < 1e-9, "shared transform changed the dose")
    check(both.dose_node.GetTransformNodeID() == shift.GetID(), "the dose node is not under the activity's transform")
    return {"plain": plain, "moved": moved, "both": both}


def scenario_ct_density(scene, work_dir: str | Path | None = None) -> dict:
    """A CT volume with the scanner's HU-density table gives the density per voxel: a uniform CT at
    0 HU mapped to 2.06 g/mL halves the LDM dose of the default 1.03 g/mL."""
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="sirt-scenario-"))
    activity = np.zeros((10, 10, 10))
    activity[3:7, 3:7, 3:7] = 500.0
    image = sitk.GetImageFromArray(activity)
    image.SetSpacing((4.0, 4.0, 4.0))
    ct_image = sitk.GetImageFromArray(np.zeros((20, 20, 20), dtype=np.int16))  # finer CT over the same box
    ct_image.SetSpacing((2.0, 2.0, 2.0))
    ct_image.SetOrigin((-1.0, -1.0, -1.0))
    label = np.zeros(activity.shape, dtype=np.uint16)
    label[3:7, 3:7, 3:7] = 1
    layer = sitk.GetImageFromArray(label)
    layer.CopyInformation(image)
    volume = convert.add_volume_node(scene, image, "synthetic activity (CT density)")
    ct_node = convert.add_volume_node(scene, ct_image, "synthetic CT")
    seg_node = convert.add_segmentation_node(scene, Segmentation((layer,), (Segment("target", 0, 1),), "synthetic"), "synthetic segmentation (CT)")
    table = work_dir / "hu_density.csv"
    table.write_text("hu,density_g_per_ml\n-1000,0.001\n0,2.06\n3000,3.0\n", encoding="utf-8")
    plain = compute_dose_from_nodes(volume, seg_node, DoseSettings(units="bq_per_ml").to_parameters(), with_dvh=False)
    with_ct = compute_dose_from_nodes(
        volume, seg_node, DoseSettings(units="bq_per_ml", hu_density_table=str(table)).to_parameters(), ct_node=ct_node, with_dvh=False
    )
    ratio = with_ct.result.segments[0].dose_mean_gy / plain.result.segments[0].dose_mean_gy
    check(abs(ratio - 0.5) < 1e-6, f"CT density 2.06 g/mL should halve the dose of 1.03 g/mL, ratio {ratio}")
    check('"ct"' in with_ct.provenance_node.GetText(), "the CT is not in the provenance")
    return {"plain": plain, "with_ct": with_ct, "ratio": ratio}


def scenario_dvh_plot_nodes(scene) -> dict:
    """Synthetic DVH curves of different lengths → one table, one series per curve, one chart."""
    curves = {
        "tumour": (np.array([0.0, 50.0, 100.0, 150.0]), np.array([100.0, 80.0, 30.0, 0.0])),
        "normal liver": (np.array([0.0, 10.0, 20.0]), np.array([100.0, 40.0, 0.0])),
    }
    table, chart, series = outputs.dvh_plot_nodes(scene, curves, name="synthetic DVH")
    check(table.GetNumberOfRows() == 4 and table.GetNumberOfColumns() == 4, "DVH table shape")
    check(chart.GetNumberOfPlotSeriesNodes() == 2, "DVH chart series count")
    for node, (name, (x, y)) in zip(series, curves.items()):
        check(node.GetName() == name, "series name")
        xs = convert.numpy_support.vtk_to_numpy(table.GetTable().GetColumnByName(node.GetXColumnName()))
        ys = convert.numpy_support.vtk_to_numpy(table.GetTable().GetColumnByName(node.GetYColumnName()))
        check(np.array_equal(xs[: x.size], x) and np.array_equal(ys[: y.size], y), f"{name}: curve values")
        check(np.all(xs[x.size :] == x[-1]) and np.all(ys[y.size :] == y[-1]), f"{name}: padding")
    try:
        outputs.dvh_plot_nodes(scene, {"bad": (np.array([0.0, 1.0]), np.array([1.0]))})
        raise AssertionError("curves of unequal length were accepted")
    except SIRTInputError:
        pass
    return {"table": table, "chart": chart, "series": series}


def _segment_mask_on_grid(segmentation_node, name: str, volume_node) -> np.ndarray:
    """A segment as a boolean (z, y, x) array on a volume node's grid (voxel centres inside the segment)."""
    from ..structures import map_segments

    exported = convert.segmentation_from_node(segmentation_node, volume_node, [name])
    grid = convert.image_from_volume_node(volume_node, np.float32)
    return map_segments(exported, grid, [name], "center")[name].weights > 0


def _file_weights_on_node_grid(names: list[str], volume_node) -> dict[str, np.ndarray]:
    """Weights of patient 2's segments computed from the *files* (read_segmentation, map_segments on the
    file's SPECT grid), carried onto the node's voxels: an independent path to the derived structures."""
    from ..structures import map_segments

    file_grid = read_activity_image(PATIENT_2[0]).image
    mapped = map_segments(read_segmentation(PATIENT_2[1]), file_grid, names, "fraction")
    weights = {}
    for name, structure in mapped.items():
        image = sitk.GetImageFromArray(structure.weights)
        image.CopyInformation(file_grid)
        on_node = dose_on_node_grid(image, volume_node)
        check(not np.any(on_node == OUTSIDE), f"{name}: the SPECT node's grid does not coincide with the file's grid")
        weights[name] = on_node
    return weights


def scenario_patient2_derived_segments(scene, work_dir: str | Path | None = None) -> dict:
    """Patient 2 (MAA SPECT): dose with derived segments. "normal perfused liver" = perfused volume −
    tumours and "whole normal liver" = liver − tumours match ``analysis.derived`` run on the files,
    the threshold target is 10 % of the dose maximum in the perfused volume; they are in a new
    segmentation node (the user's is unchanged) that survives saving and reopening the scene; bad
    fractions and unknown segments are refused without leaving nodes."""
    from ..analysis import derived

    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="sirt-scenario-"))
    volume = load_volume(scene, PATIENT_2[0], "patient 2 SPECT (derived)")
    segmentation = load_segmentation(scene, PATIENT_2[1], "patient 2 segmentation (derived)")
    before = InputSnapshot.of(volume, segmentation)
    names_before = convert.segment_names(segmentation)
    count = _node_count(scene)

    # Refused before anything is computed or added.
    refused = {}
    for fraction in (0.0, 1.2):
        try:
            DoseSettings(threshold_segments=["liver"], threshold_fraction=fraction).derived_segments_spec()
            raise AssertionError(f"threshold fraction {fraction} was accepted")
        except SIRTInputError as exc:
            refused[fraction] = str(exc)
            check("fraction" in str(exc), f"unclear message: {exc}")
    try:
        derived_segments.add_derived_segments(volume, segmentation, segment_derivation.DerivedSegmentsSpec(threshold_vois=("spleen",)))
        raise AssertionError("an unknown threshold VOI was accepted")
    except SIRTInputError as exc:
        refused["unknown_voi"] = str(exc)
        check("spleen" in str(exc), f"unclear message: {exc}")
    check(_node_count(scene) == count, f"refused derived segments left {_node_count(scene) - count} nodes in the scene")

    settings = DoseSettings(
        normal_perfused_segments=["perfused volume"], whole_liver_segments=["liver"],
        threshold_segments=["perfused volume"], threshold_image="dose",
    )
    spec = settings.derived_segments_spec()
    params = dataclasses.replace(patient2_parameters(), method="ldm")
    out = compute_dose_from_nodes(volume, segmentation, params, derived=spec, with_dvh=False)
    node = out.derived_segmentation_node
    threshold_name = segment_derivation.threshold_segment_name("perfused volume", 0.1)
    expected_names = [NORMAL_PERFUSED_NAME, WHOLE_NORMAL_NAME, threshold_name]

    before.check_unchanged(volume, segmentation, "patient 2 derived")
    check(convert.segment_names(segmentation) == names_before, "the user's segment names changed")
    check(node is not None and node.GetID() != segmentation.GetID(), "the derived segments are not in a new node")
    check(convert.segment_names(node) == expected_names, f"derived segment names {convert.segment_names(node)}")
    check(out.dose_node.GetNodeReference("SIRT.derivedSegmentation").GetID() == node.GetID(), "the dose node does not refer to them")
    check(node.GetNodeReference("SIRT.segmentation").GetID() == segmentation.GetID(), "no reference to the source segmentation")
    check(node.GetNodeReference("SIRT.thresholdImage").GetID() == out.dose_node.GetID(), "no reference to the thresholded dose")
    check(node.GetTransformNodeID() == volume.GetTransformNodeID(), "the derived segments are not under the activity's transform")
    colors = [tuple(node.GetSegmentation().GetNthSegment(i).GetColor()) for i in range(3)]
    check(len(set(colors)) == 3, f"derived segment colours are not distinct: {colors}")

    # Against analysis.derived run directly on the files.
    voxel_ml = float(np.prod(convert.image_from_volume_node(volume).GetSpacing())) / 1000.0
    w = _file_weights_on_node_grid(["liver", "perfused volume", "Tumor 1", "Tumor 2"], volume)
    record = derived_segments.derived_record(node)
    by_name = {r["name"]: r for r in record["segments"]}
    for name, base in ((NORMAL_PERFUSED_NAME, "perfused volume"), (WHOLE_NORMAL_NAME, "liver")):
        expected = derived.subtract(w[base], w["Tumor 1"], w["Tumor 2"])
        mask = _segment_mask_on_grid(node, name, volume)
        check(np.array_equal(mask, expected >= segment_derivation.MIN_WEIGHT), f"{name}: voxels differ from analysis.derived on the files")
        base_ml = float(np.sum(w[base], dtype=np.float64)) * voxel_ml
        overlap_ml = float(np.sum(w[base] - expected, dtype=np.float64)) * voxel_ml  # tumours inside the base
        rounding_ml = 0.5 * np.count_nonzero((expected > 0) & (expected < 1)) * voxel_ml
        volume_ml = by_name[name]["volume_ml"]
        check(abs(volume_ml - np.count_nonzero(mask) * voxel_ml) < 1e-6, f"{name}: recorded volume is not the segment's")
        check(abs(by_name[name]["weighted_volume_ml"] - (base_ml - overlap_ml)) <= 1e-4 * base_ml, f"{name}: weighted volume")
        check(abs(volume_ml - (base_ml - overlap_ml)) <= min(rounding_ml, 0.01 * base_ml), f"{name}: {volume_ml} mL vs {base_ml - overlap_ml} mL")
        check(by_name[name]["operands"] == {"union_of": [base], "minus": ["Tumor 1", "Tumor 2"]}, f"{name}: operands")

    dose = convert.volume_array(out.dose_node)
    peak = float(dose[w["perfused volume"] > 0].max())
    expected = (w["perfused volume"] >= segment_derivation.MIN_WEIGHT) & (dose >= 0.1 * peak)
    check(np.array_equal(_segment_mask_on_grid(node, threshold_name, volume), expected), "threshold target voxels differ")
    operands = by_name[threshold_name]["operands"]
    check(operands["fraction"] == 0.1 and operands["voi"] == "perfused volume", f"threshold operands {operands}")
    check(operands["image"]["role"] == "dose" and operands["image"]["node_id"] == out.dose_node.GetID(), "threshold image not recorded")
    check(abs(by_name[threshold_name]["voi_maximum"] - peak) <= 1e-6 * peak, "threshold maximum not recorded")
    check([r["name"] for r in json.loads(out.provenance_node.GetText())["derived_segments"]] == expected_names, "not in the provenance")

    # Save and reopen.
    path = save_scene(scene, work_dir / "patient2_derived.mrb", overwrite=True)
    reopened = read_scene(path)
    again = reopened.scene.GetFirstNodeByName(node.GetName())
    volume_again = reopened.scene.GetFirstNodeByName(volume.GetName())
    check(again is not None and again.IsA("vtkMRMLSegmentationNode"), "the derived segmentation is missing from the reopened scene")
    check(convert.segment_names(again) == expected_names, "derived segment names changed through the round trip")
    check(derived_segments.derived_record(again) == record, "the derivation record changed through the round trip")
    check(again.GetNodeReference("SIRT.activity").GetName() == volume.GetName(), "the reference to the activity was lost")
    for name in expected_names:
        check(
            np.array_equal(_segment_mask_on_grid(again, name, volume_again), _segment_mask_on_grid(node, name, volume)),
            f"{name}: voxels changed through the round trip",
        )
    seg_again = reopened.scene.GetFirstNodeByName(segmentation.GetName())
    check(convert.segment_names(seg_again) == names_before, "the user's segmentation changed through the round trip")
    return {
        "volume": volume, "segmentation": segmentation, "outputs": out, "node": node, "record": record,
        "weights": w, "refused": refused, "scene_path": path, "reopened": reopened, "voxel_ml": voxel_ml,
    }


ALL_SCENARIOS = (
    scenario_patient1_dose_and_scene_round_trip,
    scenario_patient2_negative_z_geometry,
    scenario_cancel_and_bad_input,
    scenario_transformed_segmentation,
    scenario_ct_density,
    scenario_dvh_plot_nodes,
    scenario_patient2_derived_segments,
)
