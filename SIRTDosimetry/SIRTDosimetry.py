"""SIRT Dosimetry: absorbed dose, BED and EQD2 maps of liver radioembolization (90Y / 166Ho microspheres).

The computation lives in ``SIRTDosimetryLib`` (plain Python, tested without Slicer); this file is the
Slicer module around it: module description, parameter node, a thin widget loaded from
``Resources/UI/SIRTDosimetry.ui``, the logic (which delegates to ``SIRTDosimetryLib.mrml``) and the
self-test (which runs the same scenarios as the pytest suite, ``SIRTDosimetryLib.testing.scenarios``).
"""

import enum
import logging
import tempfile
from typing import Annotated, Optional

import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Decimals, SingleStep, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin
from SIRTDosimetryLib.mrml.widgets import PathSync, ProgressReporter, SegmentListSync, physics_texts  # no Qt or heavy imports

#
# SIRTDosimetry
#


class SIRTDosimetry(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("SIRT Dosimetry")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Nuclear Medicine")]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerSIRT developers"]
        self.parent.helpText = _("""
Personalised dosimetry of liver radioembolization (selective internal radiation therapy, SIRT) with
90Y or 166Ho microspheres. From an activity image (post-treatment 90Y PET in Bq/mL, SPECT counts with a
camera factor, or pre-treatment 99mTc-MAA SPECT with relative calibration) and a segmentation, it
computes the absorbed dose map by local deposition (LDM) or voxel S-value convolution (VSV), BED and
EQD2 maps for segments given linear-quadratic parameters, a per-segment summary table, dose-volume
histograms and constraints. Optionally it derives the normal perfused liver, the whole normal liver
(liver or perfused volume minus the tumours) and threshold targets (voxels above a fraction of the
maximum activity or dose in a VOI) as segments of a new segmentation on the activity grid. Outputs are
new nodes; inputs are never modified.
<p>References:</p>
<ul>
<li>Bolch WE et al. MIRD Pamphlet No. 17: the dosimetry of nonuniform activity distributions.
J Nucl Med 1999;40:11S-36S.</li>
<li>Lanconelli N et al. A free database of radionuclide voxel S values for the dosimetry of nonuniform
activity distributions. Phys Med Biol 2012;57:517-533.</li>
<li>Graves SA, Flynn RT, Hyer DE. Dose point kernels for 2,174 radionuclides. Med Phys 2019;46:5284-5293.</li>
<li>Dale RG. The application of the linear-quadratic dose-effect equation to fractionated and
protracted radiotherapy. Br J Radiol 1985;58:515-528.</li>
<li>Chiesa C et al. Radioembolization of hepatocarcinoma with 90Y glass microspheres: development of an
individualized treatment planning strategy based on dosimetry and radiobiology. EJNMMI 2015;42:1718-1738.</li>
<li>Dieudonne A et al. Study of the impact of tissue density heterogeneities on 3-dimensional abdominal
dosimetry. J Nucl Med 2013;54:236-243.</li>
</ul>
<p>See the <a href="https://github.com/SlicerSIRT/SlicerSIRT#readme">SlicerSIRT documentation</a>.
For research use; not a medical device.</p>
""")
        self.parent.acknowledgementText = _("""
Developed by the SlicerSIRT developers. Sample patients from Burak Demir's
SlicerRadioembolizationDosimetry sample images (MIT licence). Voxel S values from Lanconelli et al.
2012; dose point kernel from Graves et al. 2019. Built on 3D Slicer, SimpleITK, NumPy and SciPy.
""")
        # The bundled sample patients in the Sample Data module, once Slicer has started.
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """The two bundled sample patients in the Sample Data module (category "SIRT dosimetry"), read from the
    extension's files, no download (``SIRTDosimetryLib.mrml.samples``)."""
    import os

    from SIRTDosimetryLib.mrml.samples import register_with_sample_data

    register_with_sample_data(os.path.join(os.path.dirname(__file__), "Resources", "Icons"), lambda: slicer.mrmlScene)


#
# Parameter node
#


class CalibrationMode(enum.Enum):
    ABSOLUTE = "absolute"
    RELATIVE = "relative"

    def label(self):
        return {"absolute": _("Absolute (quantitative image)"), "relative": _("Relative (administered activity)")}[self.value]


class ImageUnits(enum.Enum):
    AUTO = "auto"
    BQ_PER_ML = "bq_per_ml"
    KBQ_PER_ML = "kbq_per_ml"
    MBQ_PER_ML = "mbq_per_ml"
    COUNTS = "counts"

    def label(self):
        return {
            "auto": _("From volume or DICOM header"), "bq_per_ml": "Bq/mL", "kbq_per_ml": "kBq/mL", "mbq_per_ml": "MBq/mL", "counts": _("Counts"),
        }[self.value]


class DoseMethod(enum.Enum):
    LDM = "ldm"
    VSV = "vsv"

    def label(self):
        return {"ldm": _("Local deposition (LDM)"), "vsv": _("Voxel S-value convolution (VSV)")}[self.value]


class KernelSource(enum.Enum):
    AUTO = "auto"
    LANCONELLI = "lanconelli"
    DPK = "dpk"

    def label(self):
        return {"auto": _("Automatic"), "lanconelli": _("Lanconelli 2012 tables"), "dpk": _("Graves 2019 dose point kernel")}[self.value]


class Radionuclide(enum.Enum):
    Y90 = "y90"
    HO166 = "ho166"

    def label(self):
        return {"y90": "Y-90", "ho166": "Ho-166"}[self.value]


class PartialVoxels(enum.Enum):
    FRACTION = "fraction"
    CENTER = "center"
    MAJORITY = "majority"

    def label(self):
        return {"fraction": _("Covered fraction"), "center": _("Voxel centre"), "majority": _("Majority")}[self.value]


class ThresholdImage(enum.Enum):
    ACTIVITY = "activity"
    DOSE = "dose"

    def label(self):
        return {"activity": _("Activity image"), "dose": _("Dose map")}[self.value]


class Microspheres(enum.Enum):
    GLASS = "glass"
    RESIN = "resin"

    def label(self):
        return {"glass": _("Glass (TheraSphere)"), "resin": _("Resin (SIR-Spheres)")}[self.value]


@parameterNodeWrapper
class SIRTDosimetryParameterNode:
    """Everything the user chooses; field names are the camel-case names of ``DoseSettings`` plus the nodes."""

    activityVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    calibrationMode: CalibrationMode = CalibrationMode.ABSOLUTE
    units: ImageUnits = ImageUnits.AUTO
    administrationTime: str = ""
    scanTime: str = ""
    scanAfterAdministrationH: float = 0.0
    cameraFactorCpsPerMbq: Annotated[float, WithinRange(0, 1e6), Decimals(3)] = 0.0
    acquisitionDurationS: Annotated[float, WithinRange(0, 1e6), Decimals(1), SingleStep(60)] = 0.0
    administeredActivityGbq: Annotated[float, WithinRange(0, 100), Decimals(3), SingleStep(0.1)] = 0.0
    lungShuntFraction: Annotated[float, WithinRange(0, 0.99), Decimals(3), SingleStep(0.01)] = 0.0
    residualFraction: Annotated[float, WithinRange(0, 0.99), Decimals(3), SingleStep(0.01)] = 0.0
    calibrationVoi: list[str]
    lungsInVoi: bool = False
    method: DoseMethod = DoseMethod.LDM
    kernel: KernelSource = KernelSource.AUTO
    radionuclide: Radionuclide = Radionuclide.Y90
    halfLifeH: Annotated[float, WithinRange(0, 1000), Decimals(2)] = 0.0
    densityGPerMl: Annotated[float, WithinRange(0.01, 5), Decimals(3), SingleStep(0.01)] = 1.03
    segmentDensities: str = ""
    ctVolume: vtkMRMLScalarVolumeNode
    huDensityTable: str = ""
    partialVoxels: PartialVoxels = PartialVoxels.FRACTION
    segments: list[str]
    clampNegative: bool = False
    tumourSegments: list[str]
    normalLiverSegments: list[str]
    computeDvh: bool = True
    displayThresholdGy: Annotated[float, WithinRange(0, 1000), Decimals(1), SingleStep(0.5)] = 1.0
    displayReferenceGy: Annotated[float, WithinRange(0, 2000), Decimals(0), SingleStep(10)] = 0.0
    normalPerfusedSegments: list[str]
    wholeLiverSegments: list[str]
    derivedTumourSegments: list[str]
    thresholdSegments: list[str]
    thresholdFraction: Annotated[float, WithinRange(0.01, 0.99), Decimals(2), SingleStep(0.05)] = 0.1
    thresholdImage: ThresholdImage = ThresholdImage.ACTIVITY
    doseVolume: vtkMRMLScalarVolumeNode
    summaryTable: vtkMRMLTableNode
    # lung shunt and planning panel (not dose settings)
    lungAnteriorCounts: Annotated[float, WithinRange(0, 1e12)] = 0.0
    lungPosteriorCounts: Annotated[float, WithinRange(0, 1e12)] = 0.0
    liverAnteriorCounts: Annotated[float, WithinRange(0, 1e12)] = 0.0
    liverPosteriorCounts: Annotated[float, WithinRange(0, 1e12)] = 0.0
    lungSegments: list[str]
    microspheres: Microspheres = Microspheres.GLASS
    planPerfusedSegments: list[str]
    targetTumourDoseGy: Annotated[float, WithinRange(0, 2000), Decimals(0), SingleStep(10)] = 0.0
    plannedActivityGbq: Annotated[float, WithinRange(0, 100), Decimals(3), SingleStep(0.1)] = 0.0


# Segment lists of the parameter node and the segment selector widgets that edit them.
SEGMENT_LIST_WIDGETS = {
    "segments": "reportSegmentsSelector",
    "calibrationVoi": "calibrationVoiSelector",
    "tumourSegments": "tumourSegmentsSelector",
    "normalLiverSegments": "normalLiverSegmentsSelector",
    "normalPerfusedSegments": "normalPerfusedSegmentsSelector",
    "wholeLiverSegments": "wholeLiverSegmentsSelector",
    "derivedTumourSegments": "derivedTumourSegmentsSelector",
    "thresholdSegments": "thresholdSegmentsSelector",
    "lungSegments": "lungSegmentsSelector",
    "planPerfusedSegments": "planPerfusedSegmentsSelector",
}


#
# SIRTDosimetryWidget
#


class SIRTDosimetryWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SIRTDosimetry.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SIRTDosimetryLogic()

        # Widgets without an automatic parameter-node connection, kept in step by SIRTDosimetryLib helpers.
        self.segmentLists = SegmentListSync(
            {parameter: getattr(self.ui, widget) for parameter, widget in SEGMENT_LIST_WIDGETS.items()}, lambda: self._parameterNode
        )
        self.huTablePath = PathSync(self.ui.huDensityTablePathLineEdit, "huDensityTable", lambda: self._parameterNode)
        self.progress = ProgressReporter(self.ui.progressBar, self.ui.statusLabel, slicer.app.processEvents)
        self.ui.progressBar.hide()
        self.ui.cancelButton.hide()
        for widget, texts in physics_texts(_).items():  # numbers from the constants, not from the .ui
            for name, text in texts.items():
                setattr(getattr(self.ui, widget), name, text)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.segmentLists.connect()
        self.huTablePath.connect()
        self.ui.segmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.segmentLists.to_widgets)
        self.ui.activitySelector.connect("currentNodeChanged(vtkMRMLNode*)", self.applyFirstRunDefaults)
        self.ui.segmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.applyFirstRunDefaults)
        self.ui.calibrationModeComboBox.connect("currentIndexChanged(int)", self.updateCalibrationWidgets)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.progress.request_cancel)
        from SIRTDosimetryLib.mrml.planning_panel import PlanningPanel  # standard library only until clicked

        self.planning = PlanningPanel(self.ui.planResultLabel, lambda: self._parameterNode,
                                      lambda text: slicer.util.errorDisplay(text, windowTitle=_("SIRT Dosimetry")), self.logic.ensureDependencies)
        self.ui.planarLsfButton.connect("clicked(bool)", self.planning.planar_lung_shunt)
        self.ui.spectLsfButton.connect("clicked(bool)", self.planning.spect_lung_shunt)
        self.ui.planButton.connect("clicked(bool)", self.planning.plan)
        self.ui.reportButton.connect("clicked(bool)", self.onReportButton)
        self.ui.rtDoseExportButton.connect("clicked(bool)", self.onRtDoseExportButton)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.activityVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                self._parameterNode.activityVolume = firstVolumeNode
        if not self._parameterNode.segmentation:
            firstSegmentationNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSegmentationNode")
            if firstSegmentationNode:
                self._parameterNode.segmentation = firstSegmentationNode

    def setParameterNode(self, inputParameterNode: Optional[SIRTDosimetryParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # Widgets with a SlicerParameterName property in the .ui file follow the parameter node.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        self.huTablePath.to_widget()
        self.segmentLists.to_widgets()
        self.updateCalibrationWidgets()
        self._checkCanApply()

    def applyFirstRunDefaults(self, *args) -> None:
        """When the user picks an activity volume or a segmentation: show the volume's units (from the
        volume or its DICOM header), use relative calibration for counts, and the liver segment as the
        calibration VOI (``SIRTDosimetryLib.mrml.defaults``)."""
        node = self._parameterNode
        if node is None or node.activityVolume is None:
            return
        from SIRTDosimetryLib.mrml.defaults import first_apply_settings
        from SIRTDosimetryLib.mrml.logic import volume_units

        suggested = first_apply_settings(node.activityVolume, node.segmentation, volume_units(node.activityVolume))
        if "units" in suggested:
            node.units = ImageUnits(suggested["units"])
            node.calibrationMode = CalibrationMode(suggested["calibration_mode"])
        if "calibration_voi" in suggested and not self._segmentsPresent(node.calibrationVoi):
            node.calibrationVoi = suggested["calibration_voi"]

    def _segmentsPresent(self, names) -> bool:
        from SIRTDosimetryLib.mrml.defaults import segment_names

        present = {n.lower() for n in segment_names(self._parameterNode.segmentation)}
        return bool(names) and all(str(n).lower() in present for n in names)

    def updateCalibrationWidgets(self, *args) -> None:
        relative = self.ui.calibrationModeComboBox.currentIndex == 1
        for name in ("administeredActivitySpinBox", "lungShuntFractionSpinBox", "residualFractionSpinBox",
                     "calibrationVoiSelector", "lungsInVoiCheckBox"):
            getattr(self.ui, name).enabled = relative
        for name in ("unitsComboBox", "cameraFactorSpinBox", "acquisitionDurationSpinBox"):
            getattr(self.ui, name).enabled = not relative

    def _checkCanApply(self, caller=None, event=None) -> None:
        if self.progress.running:  # parameter edits during a run must not re-enable Apply
            self.ui.applyButton.enabled = False
        elif self._parameterNode and self._parameterNode.activityVolume and self._parameterNode.segmentation:
            self.ui.applyButton.toolTip = _("Compute the dose map and the per-segment summary")
            self.ui.applyButton.enabled = True
        else:
            self.ui.applyButton.toolTip = _("Select an activity volume and a segmentation")
            self.ui.applyButton.enabled = False

    def onApplyButton(self) -> None:
        if not self.progress.start():  # a run is active: a second click does nothing
            return
        self.ui.applyButton.enabled = False
        self.ui.cancelButton.show()
        try:
            if not self.logic.ensureDependencies():
                return
            from SIRTDosimetryLib.errors import SIRTInputError
            from SIRTDosimetryLib.mrml.background import BackgroundRunner
            from SIRTDosimetryLib.mrml.logic import OperationCancelled

            # The numerical work runs in a worker thread while Qt keeps processing events: the window
            # stays responsive and Cancel takes effect at once.
            runner = BackgroundRunner(slicer.app.processEvents, self.progress.cancelled)
            try:
                outputs = self.logic.process(self._parameterNode, progress=self.progress, cancel=self.progress.cancelled, run=runner)
            except OperationCancelled:
                self.ui.statusLabel.text = _("Cancelled: nothing was added to the scene.")
                return
            except SIRTInputError as exc:
                self.ui.statusLabel.text = _("Not computed.")
                slicer.util.errorDisplay(str(exc), windowTitle=_("SIRT Dosimetry"))
                return
            except Exception as exc:  # an unexpected failure: message to the user, traceback to the log
                logging.exception("SIRT dose computation failed")
                self.ui.statusLabel.text = _("Failed.")
                slicer.util.errorDisplay(_("Dose computation failed: {message}").format(message=exc), detailedText=str(exc))
                return
            self._parameterNode.doseVolume = outputs.dose_node
            self._parameterNode.summaryTable = outputs.table_node
            self.logic.showResults(outputs)
            for warning in outputs.result.warnings:
                logging.warning(warning)
            self.ui.statusLabel.text = _("Done. {count} segments; mean dose in the summary table.").format(count=len(outputs.result.segments))
            lung = outputs.result.lung
            if lung is not None:
                self.ui.statusLabel.text += " " + _("Lungs {dose:.1f} Gy ({method}).").format(dose=lung.dose_gy, method=lung.method)
            if outputs.derived_segmentation_node is not None:
                self.ui.statusLabel.text += " " + _("Derived segments in '{name}'.").format(name=outputs.derived_segmentation_node.GetName())
        finally:
            self.progress.finish()
            self.ui.cancelButton.hide()
            self._checkCanApply()

    def onReportButton(self) -> None:
        from SIRTDosimetryLib.mrml.report import ask_and_write_report

        written = ask_and_write_report(self._parameterNode.doseVolume if self._parameterNode else None)
        if written is not None:
            self.ui.statusLabel.text = _("Report written: {path}").format(path=written)

    def onRtDoseExportButton(self) -> None:
        from SIRTDosimetryLib.mrml.export import ask_and_export_rtdose

        written = ask_and_export_rtdose(self._parameterNode.doseVolume if self._parameterNode else None)
        if written:
            self.ui.statusLabel.text = _("RT Dose written: {files}").format(files=", ".join(str(p) for p in written))

#
# SIRTDosimetryLogic
#


class SIRTDosimetryLogic(ScriptedLoadableModuleLogic):
    """Batch use from the Python console (see docs/slicer.md)::

        logic = slicer.util.getModuleLogic("SIRTDosimetry")
        from SIRTDosimetryLib.mrml.logic import DoseSettings
        outputs = logic.computeDose(petNode, segNode, DoseSettings(units="bq_per_ml"))
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return SIRTDosimetryParameterNode(super().getParameterNode())

    def ensureDependencies(self, confirm=None, testing=False) -> bool:
        """Install missing Python packages after one confirmation (``confirm=False``: without asking, as the
        self-test does; ``testing``: also what the self-test needs); False, after showing why, when they are not there."""
        from SIRTDosimetryLib.mrml.dependencies import DependenciesMissing, ensure_requirements, module_requirements

        try:
            ensure_requirements(module_requirements("SIRTDosimetry", testing), _("SIRT Dosimetry"), confirm=confirm)
        except DependenciesMissing as exc:
            slicer.util.errorDisplay(str(exc))
            return False
        return True

    def settingsFromParameterNode(self, parameterNode):
        from SIRTDosimetryLib.mrml.logic import DoseSettings

        return DoseSettings.from_object(parameterNode)

    def process(self, parameterNode, progress=None, cancel=None, run=None):
        """Compute with the settings of the parameter node; returns ``DoseOutputs``. ``run`` executes the
        numerical part (``SIRTDosimetryLib.mrml.background``; default: on this thread)."""
        settings = self.settingsFromParameterNode(parameterNode)
        doseNode = parameterNode.doseVolume
        tableNode = parameterNode.summaryTable
        inputs = {parameterNode.activityVolume.GetID()} if parameterNode.activityVolume else set()
        # An output selector left on an input, or on a volume of an earlier computation that is now
        # an input, gets a new node instead.
        if doseNode is not None and doseNode.GetID() in inputs:
            doseNode = None
        return self.computeDose(
            parameterNode.activityVolume, parameterNode.segmentation, settings,
            doseNode=doseNode, tableNode=tableNode, ctNode=parameterNode.ctVolume, progress=progress, cancel=cancel, run=run,
        )

    def computeDose(self, activityNode, segmentationNode, settings, doseNode=None, tableNode=None, ctNode=None, progress=None, cancel=None, derived=None, run=None):
        """Dose of ``activityNode`` with ``segmentationNode``'s segments; ``settings`` is a ``DoseSettings``
        or ready ``DoseParameters``; ``ctNode`` with the settings' HU-density table gives a density per voxel.
        Derived segments: those of the ``DoseSettings``, or ``derived`` (a ``DerivedSegmentsSpec``).
        Returns ``DoseOutputs`` (dose_node, bed_node, eqd2_node, table_node, dvh_chart_node,
        derived_segmentation_node, ...)."""
        from SIRTDosimetryLib.dose.engine import DoseParameters
        from SIRTDosimetryLib.mrml.logic import DoseSettings, compute_dose_from_nodes, volume_units

        if isinstance(settings, DoseParameters):
            params, withDvh, options = settings, True, {}
        else:
            settings = settings or DoseSettings()
            params = settings.to_parameters(volume_units(activityNode) if activityNode else None)
            withDvh = settings.compute_dvh
            options = {"display_threshold_gy": settings.display_threshold_gy, "display_reference_gy": settings.display_reference_gy}
            derived = derived if derived is not None else settings.derived_segments_spec()
        return compute_dose_from_nodes(
            activityNode, segmentationNode, params, dose_node=doseNode, table_node=tableNode, ct_node=ctNode,
            with_dvh=withDvh, derived=derived, progress=progress, cancel=cancel, **options, **({"run": run} if run else {}),
        )

    def showResults(self, outputs) -> None:
        """The results layout (3D and slice views, DVH chart, summary table), the dose as a foreground
        overlay on the activity image, and isodose lines when SlicerRT is installed."""
        from SIRTDosimetryLib.mrml.view import use_results_layout

        use_results_layout(slicer.app.layoutManager().layoutLogic().GetLayoutNode())
        activityNode = outputs.dose_node.GetNodeReference("SIRT.activity")
        slicer.util.setSliceViewerLayers(background=activityNode, foreground=outputs.dose_node, foregroundOpacity=0.5, fit=True)
        if outputs.dvh_chart_node is not None:
            slicer.modules.plots.logic().ShowChartInLayout(outputs.dvh_chart_node)
        slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(outputs.table_node.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()
        self.showIsodose(outputs.dose_node)

    def showIsodose(self, doseNode) -> bool:
        """Isodose surfaces of the dose with SlicerRT's Isodose module, when it is installed."""
        if not hasattr(slicer.modules, "isodose"):
            return False
        try:
            isodoseNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLIsodoseNode", f"{doseNode.GetName()} isodose")
            isodoseNode.SetAndObserveDoseVolumeNode(doseNode)
            logic = slicer.modules.isodose.logic()
            logic.SetNumberOfIsodoseLevels(isodoseNode, 6)
            return bool(logic.CreateIsodoseSurfaces(isodoseNode))
        except Exception:  # isodose lines are an extra view: never fail the result for them
            logging.exception("SlicerRT isodose display failed")
            return False


#
# SIRTDosimetryTest
#


class SIRTDosimetryTest(ScriptedLoadableModuleTest):
    """Runs the scenarios of ``SIRTDosimetryLib.testing.scenarios`` on Slicer's own scene, the same
    functions the pytest suite runs on the slicer-core wheel."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        # A stock Slicer lacks some packages: install them (no dialog in a test run) before the scenarios.
        self.assertTrue(SIRTDosimetryLogic().ensureDependencies(confirm=False, testing=True), "the Python packages could not be installed")
        from SIRTDosimetryLib.testing import scenarios

        for scenario in scenarios.ALL_SCENARIOS:
            self.setUp()
            self.delayDisplay(f"Running {scenario.__name__}")
            if scenario in (scenarios.scenario_patient1_dose_and_scene_round_trip, scenarios.scenario_patient2_derived_segments):
                scenario(slicer.mrmlScene, tempfile.mkdtemp(prefix="SIRTDosimetryTest-"))
            else:
                scenario(slicer.mrmlScene)
        self.test_ParameterNodeSettings()
        self.delayDisplay("SIRT Dosimetry tests passed")

    def test_ParameterNodeSettings(self):
        """The parameter node holds every field of ``DoseSettings`` and gives the same parameters."""
        from SIRTDosimetryLib.testing import scenarios
        from SIRTDosimetryLib.mrml.logic import DoseSettings

        self.setUp()
        logic = SIRTDosimetryLogic()
        parameterNode = logic.getParameterNode()
        expected = scenarios.patient1_settings()
        parameterNode.units = ImageUnits(expected.units)
        parameterNode.tumourSegments = list(expected.tumour_segments)
        parameterNode.normalLiverSegments = list(expected.normal_liver_segments)
        parameterNode.calibrationVoi = list(expected.calibration_voi)
        settings = DoseSettings.from_object(parameterNode)
        self.assertEqual(settings.to_parameters(), scenarios.patient1_parameters())
