"""Dose computation on MRML nodes: activity volume + segmentation → new dose, BED, EQD2, table, DVH nodes.

This is what the SIRTDosimetry module's logic calls, and what a Slicer Python console script calls
for batch work (see ``docs/slicer.md``)::

    from SIRTDosimetryLib.mrml.logic import DoseSettings, compute_dose_from_nodes
    outputs = compute_dose_from_nodes(petNode, segNode, DoseSettings(units="bq_per_ml").to_parameters())

With ``derived=settings.derived_segments_spec()`` (or a ``DerivedSegmentsSpec``) it also adds the
derived segments (normal perfused liver, whole normal liver, threshold targets) to a new segmentation
node on the activity grid (``derived_segments``); the user's segmentation is never modified.

The engine is the same ``compute_dose`` as the command line's; parameters are made by the same
``build_dose_parameters`` so that the GUI, the console and ``sirt dose`` accept and refuse the same things.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import SimpleITK as sitk

from ..dose.calibration import AbsoluteCalibration
from ..analysis.derived import DEFAULT_THRESHOLD_FRACTION
from ..analysis.segment_derivation import DerivedSegmentsSpec
from ..dose.engine import DoseResult, compute_dose
from ..dose.parameters import DoseParameters, build_dose_parameters
from ..dose.report import dose_summary
from ..errors import SIRTInputError
from ..io.volumes import ActivityImage, check_units
from ..provenance import to_jsonable
from ..vocabulary import NORMAL_LIVER, OTHER, TUMOUR
from . import convert, derived_segments, outputs, view
from .background import OperationCancelled, inline
from .treatment_planning import CONVENTIONAL_LUNG_MASS_G

ProgressCallback = Callable[[float, str], None]
"""``progress(fraction in [0, 1], message)``."""
CancelCheck = Callable[[], bool]
"""Returns True when the user asked to stop; checked between steps."""


# ---------------------------------------------------------------------------------------------
# settings (what the module's parameter node stores)


@dataclass
class DoseSettings:
    """Plain-typed dose settings, one field per GUI control; ``to_parameters`` validates them.

    Numbers that are optional in the engine use 0 for "not given" (a spin box cannot be empty).
    """

    calibration_mode: str = "absolute"  # absolute | relative
    units: str = "auto"  # auto (from the volume's voxel units) | bq_per_ml | kbq_per_ml | mbq_per_ml | counts
    administration_time: str = ""  # ISO 8601; empty: no decay correction
    scan_time: str = ""
    scan_after_administration_h: float = 0.0  # instead of the two times; 0: not given
    camera_factor_cps_per_mbq: float = 0.0
    acquisition_duration_s: float = 0.0
    administered_activity_gbq: float = 0.0
    lung_shunt_fraction: float = 0.0
    residual_fraction: float = 0.0
    calibration_voi: list[str] = field(default_factory=lambda: ["liver"])
    lungs_in_voi: bool = False
    method: str = "ldm"  # ldm | vsv
    kernel: str = "auto"
    radionuclide: str = "y90"
    half_life_h: float = 0.0  # 0: the nuclide's default
    density_g_per_ml: float = 1.03
    segment_densities: str = ""  # "lungs=0.3, bone=1.9"
    hu_density_table: str = ""  # CSV hu,density_g_per_ml of the CT scanner; used with a CT volume
    partial_voxels: str = "fraction"
    segments: list[str] = field(default_factory=list)  # empty: every segment
    clamp_negative: bool = False
    tumour_segments: list[str] = field(default_factory=list)  # get the tumour LQ preset (BED/EQD2)
    normal_liver_segments: list[str] = field(default_factory=list)  # get the normal-liver LQ preset
    compute_dvh: bool = True
    display_threshold_gy: float = outputs.DEFAULT_DISPLAY_THRESHOLD_GY
    display_reference_gy: float = 0.0  # dose colours 0 to twice this; 0: the tumour segments' mean dose
    # derived segments, added to a new segmentation node (all lists empty: none)
    normal_perfused_segments: list[str] = field(default_factory=list)  # "normal perfused liver" = these - tumours
    whole_liver_segments: list[str] = field(default_factory=list)  # "whole normal liver" = these - tumours
    derived_tumour_segments: list[str] = field(default_factory=list)  # empty: segments named like a tumour
    threshold_segments: list[str] = field(default_factory=list)  # one "threshold 10 % of <VOI>" target per VOI
    threshold_fraction: float = DEFAULT_THRESHOLD_FRACTION
    threshold_image: str = "activity"  # activity | dose

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @staticmethod
    def camel_case(name: str) -> str:
        """``calibration_mode`` → ``calibrationMode``: the parameter-node name of a field."""
        head, *rest = name.split("_")
        return head + "".join(part[:1].upper() + part[1:] for part in rest)

    @classmethod
    def from_object(cls, source) -> "DoseSettings":
        """Settings from an object with camel-case attributes (the module's parameter node wrapper)."""
        values = {}
        for name in cls.field_names():
            value = getattr(source, cls.camel_case(name))
            if isinstance(value, enum.Enum):
                value = value.value  # the module's combo-box enums hold the engine's keys as values
            elif not isinstance(value, (str, bytes, int, float, bool)) and hasattr(value, "__iter__"):
                value = [str(v) for v in value]  # the parameter node's observed lists
            values[name] = value
        return cls(**values)

    def derived_segments_spec(self) -> DerivedSegmentsSpec | None:
        """The derived segments asked for (checked: a bad fraction raises ``SIRTInputError``), or None."""
        spec = DerivedSegmentsSpec(
            normal_perfused_from=tuple(self.normal_perfused_segments),
            whole_normal_from=tuple(self.whole_liver_segments),
            tumours=tuple(self.derived_tumour_segments),
            threshold_vois=tuple(self.threshold_segments),
            threshold_fraction=self.threshold_fraction,
            threshold_image=self.threshold_image,
        )
        return spec if spec.requested else None

    def to_parameters(self, volume_units: str | None = None) -> DoseParameters:
        """``DoseParameters`` through the one dose-parameter builder (same checks and errors as ``sirt dose``).

        ``volume_units`` are the activity volume's own units, used when ``units`` is ``auto``.
        """
        relative = self.calibration_mode == "relative"
        try:
            params = build_dose_parameters(
                self.calibration_mode,
                units=volume_units if self.units == "auto" else self.units,
                administration_time=self.administration_time,
                scan_time=self.scan_time,
                scan_after_administration_h=self.scan_after_administration_h or None,
                camera_factor_cps_per_mbq=self.camera_factor_cps_per_mbq or None,
                acquisition_duration_s=self.acquisition_duration_s or None,
                administered_activity_gbq=(self.administered_activity_gbq or None) if relative else None,
                calibration_voi=self.calibration_voi,
                lung_shunt_fraction=self.lung_shunt_fraction,
                residual_fraction=self.residual_fraction,
                lungs_in_voi=self.lungs_in_voi,
                method=self.method,
                kernel=self.kernel,
                radionuclide=self.radionuclide,
                half_life_h=self.half_life_h or None,
                density_g_per_ml=self.density_g_per_ml,
                segment_densities=self.segment_densities,
                partial_voxels=self.partial_voxels,
                clamp_negative=self.clamp_negative,
                radiobiology=[f"{name}=normal_liver" for name in self.normal_liver_segments]
                + [f"{name}=tumour" for name in self.tumour_segments],
                hu_density_table=self.hu_density_table.strip() or None,
                segments=self.segments,
                # the lung dose of the results (partition model) with the conventional lung mass
                lung_mass_g=CONVENTIONAL_LUNG_MASS_G if relative and self.lung_shunt_fraction > 0 and not self.lungs_in_voi else None,
            )
        except SIRTInputError as exc:  # the builder's validation, reworded for the GUI's controls
            from .defaults import in_gui_words

            raise SIRTInputError(in_gui_words(str(exc))) from None
        if isinstance(params.calibration, AbsoluteCalibration) and params.calibration.units is None:
            raise SIRTInputError(
                "absolute calibration needs the image units: choose them (Bq/mL, kBq/mL, MBq/mL or counts); "
                "this volume does not say"
            )
        return params


def volume_units(volume_node) -> str | None:
    """Activity units of a volume node: its voxel value units or ``SIRT.Units`` attribute, else the Units of
    the PET/NM DICOM file it was loaded from (``defaults.dicom_units``)."""
    units = volume_node.GetVoxelValueUnits() if hasattr(volume_node, "GetVoxelValueUnits") else None
    candidates = []
    if units is not None:
        candidates += [units.GetCodeValue(), units.GetCodeMeaning()]
    candidates.append(volume_node.GetAttribute("SIRT.Units"))
    for candidate in candidates:
        if not candidate:
            continue
        text = candidate.strip().strip("{}")
        try:
            return check_units(text)
        except SIRTInputError:
            continue
    from .defaults import dicom_units

    return dicom_units(volume_node)


# ---------------------------------------------------------------------------------------------
# the computation


@dataclass
class DoseOutputs:
    result: DoseResult
    summary: dict
    dose_node: object
    bed_node: object | None = None
    eqd2_node: object | None = None
    table_node: object | None = None
    provenance_node: object | None = None
    dvh_table_node: object | None = None
    dvh_chart_node: object | None = None
    dvh_series_nodes: list = field(default_factory=list)
    constraints_table_node: object | None = None
    derived_segmentation_node: object | None = None

    def nodes(self) -> list:
        single = [
            self.dose_node, self.bed_node, self.eqd2_node, self.table_node, self.provenance_node,
            self.dvh_table_node, self.dvh_chart_node, self.constraints_table_node, self.derived_segmentation_node,
        ]
        return [n for n in single if n is not None] + list(self.dvh_series_nodes)


class _Steps:
    def __init__(self, progress: ProgressCallback | None, cancel: CancelCheck | None):
        self.progress, self.cancel = progress, cancel

    def __call__(self, fraction: float, message: str) -> None:
        if self.cancel is not None and self.cancel():
            raise OperationCancelled("dose computation cancelled")
        if self.progress is not None:
            self.progress(fraction, message)


def _check_inputs(activity_node, segmentation_node, reused: dict, ct_node=None) -> None:
    if activity_node is None or not activity_node.IsA("vtkMRMLScalarVolumeNode") or activity_node.IsA("vtkMRMLLabelMapVolumeNode"):
        raise SIRTInputError("choose a scalar volume (PET in Bq/mL or SPECT) as the activity image")
    if segmentation_node is None or not segmentation_node.IsA("vtkMRMLSegmentationNode"):
        raise SIRTInputError("choose a segmentation with the liver (and tumour) segments")
    if activity_node.GetImageData() is None:
        raise SIRTInputError(f"volume {activity_node.GetName()!r} has no voxel data")
    if ct_node is not None and (not ct_node.IsA("vtkMRMLScalarVolumeNode") or ct_node.GetImageData() is None):
        raise SIRTInputError("the CT for the density must be a scalar volume with voxel data")
    inputs = {n.GetID() for n in (activity_node, segmentation_node, ct_node) if n is not None}
    for role, node in reused.items():
        if node is not None and node.GetID() in inputs:
            raise SIRTInputError(f"the {role} output cannot be an input node: choose 'Create new' for it")


def _node_description(node) -> dict:
    storage = node.GetStorageNode() if hasattr(node, "GetStorageNode") else None
    return {"node_id": node.GetID(), "name": node.GetName(), "file": storage.GetFileName() if storage else None}


def _output_volume(scene, existing, name: str, image: sitk.Image, reference_node):
    node = existing if existing is not None else scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    convert.set_volume_from_image(node, image, np.float32)
    node.SetAndObserveTransformNodeID(reference_node.GetTransformNodeID() if reference_node is not None else None)
    return node


def dvh_curves(result: DoseResult, quantity: str = "dose") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Cumulative DVH (levels in Gy, volume in %) of every reported segment, from ``analysis.dvh``.

    Returns an empty dict when the DVH module is not available.
    """
    try:
        from ..analysis.dvh import compute_dvh
    except ImportError:
        return {}
    image = result.dose_gy if quantity == "dose" else result.bed_gy
    if image is None:
        return {}
    values = sitk.GetArrayViewFromImage(image)
    voxel_ml = float(np.prod(image.GetSpacing())) / 1000.0  # mm³ → mL
    curves = {}
    for summary in result.segments:
        weights = result.structures[summary.name].weights
        if quantity != "dose" and not np.isfinite(values[weights > 0]).all():
            continue  # BED only where LQ parameters were given
        dvh = compute_dvh(values, weights, voxel_ml, summary.name, quantity)
        curves[summary.name] = (np.asarray(dvh.levels_gy), np.asarray(dvh.cumulative_volume_pct))
    return curves


def structure_role(name: str, params: DoseParameters | None) -> str:
    """Role of a segment for the constraints: from the LQ preset it was given, else from its name."""
    import fnmatch

    from ..analysis.derived import DEFAULT_TUMOUR_PATTERNS
    from ..dose.radiobiology import NORMAL_LIVER_CHIESA_2015, TUMOUR_CHIESA_2015

    lq = params.radiobiology.get(name) if params is not None else None
    if lq == TUMOUR_CHIESA_2015:
        return TUMOUR
    if lq == NORMAL_LIVER_CHIESA_2015:
        return NORMAL_LIVER
    lowered = name.lower()
    if any(fnmatch.fnmatch(lowered, p) for p in DEFAULT_TUMOUR_PATTERNS):
        return TUMOUR
    if "normal" in lowered:
        return NORMAL_LIVER
    return OTHER


def constraint_rows(result: DoseResult, params: DoseParameters | None) -> tuple[list[str], list[list]]:
    """Header and rows of the dose-volume constraints of every reported segment (``analysis.constraints``).

    Empty when the constraints module is not available.
    """
    try:
        from ..analysis.constraints import compute_constraints, constraints_table
        from ..analysis.derived import AnalysisStructure
    except ImportError:
        return [], []
    structures = [
        AnalysisStructure(s.name, result.structures[s.name].weights, role=structure_role(s.name, params)) for s in result.segments
    ]
    dose = sitk.GetArrayViewFromImage(result.dose_gy)
    bed = sitk.GetArrayViewFromImage(result.bed_gy) if result.bed_gy is not None else None
    with_lq = {s.name for s in result.segments if s.lq_parameters is not None}
    bed_by_name = {name: bed for name in with_lq} if bed is not None else None
    voxel_ml = float(np.prod(result.dose_gy.GetSpacing())) / 1000.0
    return constraints_table(compute_constraints(dose, structures, voxel_ml, bed=bed_by_name))


@dataclass(frozen=True)
class DoseAnalysis:
    """DVH curves and constraint table of a dose result: pure NumPy, computed off the GUI thread."""

    dvh: dict[str, tuple[np.ndarray, np.ndarray]]
    constraints: tuple[list[str], list[list]]


def analyse_dose(result: DoseResult, params: DoseParameters | None) -> DoseAnalysis:
    return DoseAnalysis(dvh_curves(result), constraint_rows(result, params))


def compute_dose_from_nodes(
    activity_node,
    segmentation_node,
    params: DoseParameters,
    *,
    units: str | None = None,
    dose_node=None,
    bed_node=None,
    eqd2_node=None,
    table_node=None,
    ct_node=None,
    with_dvh: bool = True,
    display_threshold_gy: float = outputs.DEFAULT_DISPLAY_THRESHOLD_GY,
    display_reference_gy: float = 0.0,
    derived: DerivedSegmentsSpec | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    run: Callable[[Callable], object] = inline,
) -> DoseOutputs:
    """Compute the dose of ``activity_node`` with the segments of ``segmentation_node``.

    Outputs are new nodes in the activity node's scene, on the activity node's grid (same IJK-to-RAS
    matrix and parent transform); ``dose_node`` etc. reuse existing *output* nodes instead (never an
    input). ``ct_node`` (a CT registered to the activity, with ``params.hu_density_table``) gives a
    density per voxel. The inputs are not modified. ``units`` overrides the activity units for absolute
    calibration when ``params`` leaves them open. ``progress`` is called between steps, ``cancel``
    checked between steps; on cancellation or error every node created so far is removed again.
    ``derived`` adds the derived segments it asks for to a new segmentation node on the activity grid
    (``DoseOutputs.derived_segmentation_node``, the dose node's ``SIRT.derivedSegmentation``; a
    threshold on the dose uses this dose); they are computed before any output node is added.
    ``run(work)`` executes the numerical part (dose, DVH, constraints: no MRML access) and returns its
    result: inline by default, ``background.BackgroundRunner`` in the module's GUI, so that the window
    stays responsive and Cancel takes effect at once.
    """
    reused = {"dose": dose_node, "BED": bed_node, "EQD2": eqd2_node, "table": table_node}
    _check_inputs(activity_node, segmentation_node, reused, ct_node)
    scene = activity_node.GetScene()
    steps = _Steps(progress, cancel)
    with convert.NewNodesRemoved(scene, on_error_only=True):
        steps(0.0, "Reading the activity volume")
        image_units = units or volume_units(activity_node)
        if isinstance(params.calibration, AbsoluteCalibration) and params.calibration.units is None:
            if image_units is None:
                raise SIRTInputError(
                    f"the volume {activity_node.GetName()!r} does not record its units: choose them under Activity "
                    "calibration > Image units (Bq/mL, kBq/mL, MBq/mL or counts)"
                )
            params = dataclasses.replace(params, calibration=dataclasses.replace(params.calibration, units=image_units))
        activity = ActivityImage(
            convert.image_from_volume_node(activity_node), image_units, f"volume {activity_node.GetName()!r} ({activity_node.GetID()})"
        )

        steps(0.1, "Exporting the segments")
        segmentation = convert.segmentation_from_node(segmentation_node, activity_node, _needed_segments(params))

        ct = None
        if ct_node is not None:
            to_activity = convert.transform_between(ct_node, activity_node, "CT")
            ct = convert.image_from_volume_node(ct_node, ijk_to_ras=to_activity @ convert.node_ijk_to_ras(ct_node))

        steps(0.25, "Computing the dose")

        def numerical_work():
            # Monte Carlo checks ``cancel`` and stops its workers; its progress is not reported from this
            # worker thread (the GUI's progress bar belongs to the main thread).
            dose = compute_dose(activity, segmentation, params, ct=ct, cancel=cancel)
            return dose, (analyse_dose(dose, params) if with_dvh else None)

        result, analysis = run(numerical_work)

        derived_computation = None
        if derived is not None and derived.requested:
            steps(0.7, "Deriving segments")
            derived_computation = derived_segments.compute_derived_segments(
                activity_node, segmentation_node, derived, activity_image=activity.image,
                dose_values=sitk.GetArrayViewFromImage(result.dose_gy), partial_voxels=params.partial_voxels,
                known_weights={name: s.weights for name, s in result.structures.items()},
            )
        derived_name = f"{activity_node.GetName()} derived segments"
        previous_derived = dose_node.GetNodeReference("SIRT.derivedSegmentation") if dose_node is not None else None

        inputs = {
            **({"ct": {**_node_description(ct_node), "voxels_sha256": convert.voxels_sha256(ct_node)}} if ct_node is not None else {}),
            "activity": {**_node_description(activity_node), "voxels_sha256": convert.voxels_sha256(activity_node), "units": image_units},
            "segmentation": {**_node_description(segmentation_node), "segments_sha256": convert.segmentation_sha256(segmentation_node)},
        }

        def make_summary(output_names: dict) -> dict:
            if derived_computation is not None:
                output_names = {**output_names, "derived_segmentation": derived_name}
            summary = dose_summary(result, params, {}, output_names)
            summary["inputs"] = inputs
            if derived_computation is not None:
                summary["derived_segments"] = [s.record for s in derived_computation.structures]
            return summary

        out = add_result_nodes(
            scene, result, params, activity_node.GetName(), activity_node, segmentation_node, make_summary,
            dose_node=dose_node, bed_node=bed_node, eqd2_node=eqd2_node, table_node=table_node,
            with_dvh=with_dvh, display_threshold_gy=display_threshold_gy, display_reference_gy=display_reference_gy,
            steps=steps, analysis=analysis,
        )
        derived_node = None
        if derived_computation is not None:
            derived_node, _ = derived_segments.add_derived_segmentation_node(
                derived_computation, activity_node, segmentation_node, name=derived_name, dose_node=out.dose_node
            )
            derived_node.SetNodeReferenceID("SIRT.dose", out.dose_node.GetID())
        out.dose_node.SetNodeReferenceID("SIRT.derivedSegmentation", derived_node.GetID() if derived_node is not None else None)
        out.derived_segmentation_node = derived_node
        if previous_derived is not None and (derived_node is None or previous_derived.GetID() != derived_node.GetID()):
            derived_segments.remove_segmentation_node(previous_derived)  # made with the dose node's earlier computation: replaced
        view.place_in_run_folder(scene, activity_node, out.nodes(), f"{activity_node.GetName()} dose {datetime.now():%Y-%m-%d %H:%M:%S}")
        return out


def add_result_nodes(
    scene,
    result: DoseResult,
    params: DoseParameters | None,
    base: str,
    activity_node,
    segmentation_node,
    make_summary: Callable[[dict], dict],
    *,
    dose_node=None,
    bed_node=None,
    eqd2_node=None,
    table_node=None,
    with_dvh: bool = True,
    display_threshold_gy: float = outputs.DEFAULT_DISPLAY_THRESHOLD_GY,
    display_reference_gy: float = 0.0,
    steps: Callable[[float, str], None] | None = None,
    analysis: DoseAnalysis | None = None,
) -> DoseOutputs:
    """Output nodes of a ``DoseResult`` on the grid (and under the parent transform) of ``activity_node``.

    ``make_summary(output_names)`` returns the provenance JSON stored in a text node; ``params``
    (None when unknown) are recorded as node attributes. ``analysis`` (from ``analyse_dose``, e.g.
    computed in a worker thread) saves computing the DVH and constraints here.
    """
    steps = steps or (lambda fraction, message: None)
    steps(0.8, "Creating the output volumes")
    # Recomputing into an earlier dose node: its BED/EQD2 volumes are refilled, its other companions
    # (DVH, constraints, provenance) replaced once the new ones exist.
    previous = {}
    if dose_node is not None:
        previous = {role: dose_node.GetNodeReference(f"SIRT.{role}") for role in COMPANION_ROLES}
        bed_node = bed_node or previous.get("bed")
        eqd2_node = eqd2_node or previous.get("eqd2")
    dose = _output_volume(scene, dose_node, f"{base} dose (Gy)", result.dose_gy, activity_node)
    dose_array = sitk.GetArrayViewFromImage(result.dose_gy)
    tumours = [result.structures[s.name].weights for s in result.segments if structure_role(s.name, params) == TUMOUR]
    table = outputs.dose_color_table(scene)
    window_max_gy = view.clinical_window_max_gy(dose_array, tumours, display_reference_gy)
    outputs.setup_dose_display(dose, window_max_gy, display_threshold_gy, table)
    outputs.set_quantity(dose, "Absorbed dose")
    outputs.mark_rt_dose(dose)
    bed = eqd2 = None
    if result.bed_gy is not None:
        eqd2_image = result.eqd2_gy  # derived from the BED map at each access: made once here
        bed = _output_volume(scene, bed_node, f"{base} BED (Gy)", result.bed_gy, activity_node)
        eqd2 = _output_volume(scene, eqd2_node, f"{base} EQD2 (Gy)", eqd2_image, activity_node)
        for node, image, quantity in ((bed, result.bed_gy, "BED"), (eqd2, eqd2_image, "EQD2")):
            values = sitk.GetArrayViewFromImage(image)
            finite = np.isfinite(values)
            outputs.setup_dose_display(node, outputs.display_window_gy(np.where(finite, values, 0), finite), display_threshold_gy, table)
            outputs.set_quantity(node, quantity)
            outputs.mark_rt_dose(node)

    steps(0.9, "Dose-volume histograms")
    dvh_table = dvh_chart = None
    dvh_series: list = []
    if with_dvh and analysis is None:
        analysis = analyse_dose(result, params)
    if with_dvh:
        curves = analysis.dvh
        if curves:
            colors = _segment_colors(segmentation_node)
            dvh_table, dvh_chart, dvh_series = outputs.dvh_plot_nodes(scene, curves, name=f"{base} DVH", colors=colors)

    steps(0.93, "Dose-volume constraints")
    constraints_node = None
    if with_dvh:
        header, rows = analysis.constraints
        if rows:
            constraints_node = outputs.rows_table(scene, f"{base} dose constraints", header, rows, kind="dose_constraints")

    steps(0.95, "Summary table")
    summary_node = outputs.summary_table(scene, result.segments, f"{base} dose summary", table_node)
    output_names = {"dose_gy": dose.GetName(), "summary_table": summary_node.GetName()}
    if bed is not None:
        output_names |= {"bed_gy": bed.GetName(), "eqd2_gy": eqd2.GetName()}
    if dvh_chart is not None:
        output_names |= {"dvh_table": dvh_table.GetName(), "dvh_chart": dvh_chart.GetName()}
    if constraints_node is not None:
        output_names["constraints_table"] = constraints_node.GetName()
    summary = make_summary(output_names)
    provenance = outputs.text_node(scene, f"{base} dose provenance", summary)
    _link(dose, activity_node, segmentation_node, summary_node, provenance, params)
    companions = {"bed": bed, "eqd2": eqd2, "dvhTable": dvh_table, "dvhChart": dvh_chart, "constraintsTable": constraints_node}
    for role, node in companions.items():
        dose.SetNodeReferenceID(f"SIRT.{role}", node.GetID() if node is not None else None)
    for node in (*companions.values(), summary_node):
        if node is not None:
            node.SetNodeReferenceID("SIRT.dose", dose.GetID())
    _remove_replaced(scene, previous, {n.GetID() for n in (*companions.values(), summary_node, provenance) if n is not None})
    steps(1.0, "Done")
    return DoseOutputs(result, summary, dose, bed, eqd2, summary_node, provenance, dvh_table, dvh_chart, dvh_series, constraints_node)


COMPANION_ROLES = ("bed", "eqd2", "dvhTable", "dvhChart", "constraintsTable", "provenance")
"""Output nodes a dose node refers to as ``SIRT.<role>``."""


def _remove_replaced(scene, previous: dict, kept: set[str]) -> None:
    """Remove the companions of an earlier computation that the new one replaced (and a chart's series)."""
    for role, node in previous.items():
        if node is None or node.GetID() in kept or node.GetScene() is None:
            continue
        if role == "dvhChart":
            for i in reversed(range(node.GetNumberOfPlotSeriesNodes())):
                series = node.GetNthPlotSeriesNode(i)
                if series is not None and series.GetID() not in kept:
                    scene.RemoveNode(series)
        scene.RemoveNode(node)


def _segment_colors(segmentation_node) -> dict[str, tuple[float, float, float]]:
    if segmentation_node is None:
        return {}
    segmentation = segmentation_node.GetSegmentation()
    return {
        segmentation.GetNthSegment(i).GetName(): tuple(segmentation.GetNthSegment(i).GetColor())
        for i in range(segmentation.GetNumberOfSegments())
    }


def _needed_segments(params: DoseParameters) -> list[str] | None:
    """Segments the engine will ask for, or None for all of them."""
    if params.segments is None:
        return None
    voi = getattr(params.calibration, "calibration_voi", ())
    mc_targets = params.monte_carlo.target_segments if params.monte_carlo is not None else ()
    return list(dict.fromkeys([*params.segments, *voi, *params.radiobiology, *params.segment_densities_g_per_ml, *mc_targets]))


def _link(dose, activity_node, segmentation_node, table, provenance, params: DoseParameters | None) -> None:
    """Node references and attributes that say where a dose map came from (saved with the scene)."""
    dose.SetNodeReferenceID("SIRT.activity", activity_node.GetID())
    dose.SetNodeReferenceID("SIRT.segmentation", segmentation_node.GetID())
    dose.SetNodeReferenceID("SIRT.summaryTable", table.GetID())
    dose.SetNodeReferenceID("SIRT.provenance", provenance.GetID())
    dose.SetAttribute("SIRT.Quantity", "absorbed_dose")
    dose.SetAttribute("SIRT.Units", "Gy")
    if params is not None:
        dose.SetAttribute("SIRT.Method", params.method)
        dose.SetAttribute("SIRT.Parameters", json.dumps(to_jsonable(params), allow_nan=False, default=str))
