"""SIRT Dosiomics: radiomic features of dose, BED, SPECT/PET and CT maps per structure, in Slicer.

The computation lives in ``SIRTDosiomicsLib`` (pyradiomics through ``pyradiomics-bhklab``); the logic
here delegates to ``SIRTDosiomicsLib.mrml``, which is expected to provide::

    extract_features_from_nodes(images, segmentation_node, structures, source, preset=None,
                                table_node=None, progress=None, cancel=None) -> vtkMRMLTableNode
        images: {"dose" | "bed" | "spect" | "ct": vtkMRMLScalarVolumeNode}
        structures: {"tumour" | "npl" | "wnl": [segment names]}
        source: "maa" | "y90"; preset: None (published protocol) or a preset file path
        progress(fraction, message) / cancel() -> bool as in SIRTDosimetryLib.mrml.logic
    scenarios.ALL_SCENARIOS: functions scene -> dict, run by the self-test and by pytest

Missing packages (pyradiomics-bhklab, pandas, ...) are installed on first use after asking.
"""

import enum
import logging
from typing import Optional

import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin
from SIRTDosimetryLib.mrml.widgets import PathSync, ProgressReporter, SegmentListSync  # no Qt or heavy imports


class SIRTDosiomics(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("SIRT Dosiomics")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Nuclear Medicine")]
        self.parent.dependencies = ["SIRTDosimetry"]  # uses SIRTDosimetryLib (MRML adapter, GUI helpers)
        self.parent.contributors = ["SlicerSIRT developers"]
        self.parent.helpText = _("""
Radiomic features ("dosiomics") of absorbed dose and BED maps, SPECT/PET and CT, per structure (tumour,
normal perfused liver, whole normal liver), with the published SIRT dosiomics protocol as the default
preset and stable feature names that say source, image, structure, class and feature. Features go to a
table node, one row per patient, ready for the SIRT Response module or for export.
<p>References:</p>
<ul>
<li>van Griethuysen JJM et al. Computational radiomics system to decode the radiographic phenotype.
Cancer Res 2017;77:e104-e107 (pyradiomics).</li>
<li>Zwanenburg A et al. The Image Biomarker Standardization Initiative. Radiology 2020;295:328-338.</li>
</ul>
<p>See the <a href="https://github.com/SlicerSIRT/SlicerSIRT#readme">SlicerSIRT documentation</a>.
For research use; not a medical device.</p>
""")
        self.parent.acknowledgementText = _("""
Developed by the SlicerSIRT developers. Feature extraction by pyradiomics (BSD licence), the engine
that SlicerRadiomics also wraps, installed as the maintained pyradiomics-bhklab distribution.
""")


class FeatureSource(enum.Enum):
    MAA = "maa"
    Y90 = "y90"

    def label(self):
        return {"maa": _("Pre-treatment (99mTc-MAA)"), "y90": _("Post-treatment (90Y)")}[self.value]


@parameterNodeWrapper
class SIRTDosiomicsParameterNode:
    doseVolume: vtkMRMLScalarVolumeNode
    bedVolume: vtkMRMLScalarVolumeNode
    spectVolume: vtkMRMLScalarVolumeNode
    ctVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    tumourSegments: list[str]
    nplSegments: list[str]
    wnlSegments: list[str]
    source: FeatureSource = FeatureSource.Y90
    presetPath: str = ""
    featureTable: vtkMRMLTableNode


SEGMENT_LIST_WIDGETS = {
    "tumourSegments": "tumourSegmentsSelector",
    "nplSegments": "nplSegmentsSelector",
    "wnlSegments": "wnlSegmentsSelector",
}
STRUCTURE_ROLES = {"tumourSegments": "tumour", "nplSegments": "npl", "wnlSegments": "wnl"}
IMAGE_KINDS = {"doseVolume": "dose", "bedVolume": "bed", "spectVolume": "spect", "ctVolume": "ct"}


class SIRTDosiomicsWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SIRTDosiomics.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SIRTDosiomicsLogic()

        self.segmentLists = SegmentListSync(
            {parameter: getattr(self.ui, widget) for parameter, widget in SEGMENT_LIST_WIDGETS.items()}, lambda: self._parameterNode
        )
        self.presetPath = PathSync(self.ui.presetPathLineEdit, "presetPath", lambda: self._parameterNode)
        self.progress = ProgressReporter(self.ui.progressBar, self.ui.statusLabel, slicer.app.processEvents)
        self.ui.progressBar.hide()
        self.ui.cancelButton.hide()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.segmentLists.connect()
        self.presetPath.connect()
        self.ui.segmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.segmentLists.to_widgets)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.progress.request_cancel)
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
        if not self._parameterNode.segmentation:
            firstSegmentationNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSegmentationNode")
            if firstSegmentationNode:
                self._parameterNode.segmentation = firstSegmentationNode

    def setParameterNode(self, inputParameterNode: Optional[SIRTDosiomicsParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        self.presetPath.to_widget()
        self.segmentLists.to_widgets()
        self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None) -> None:
        if self.progress.running:  # parameter edits during a run must not re-enable Apply
            self.ui.applyButton.enabled = False
            return
        p = self._parameterNode
        hasImage = p is not None and any(getattr(p, name) for name in IMAGE_KINDS)
        hasStructure = p is not None and any(list(getattr(p, name)) for name in SEGMENT_LIST_WIDGETS)
        self.ui.applyButton.enabled = bool(hasImage and p.segmentation and hasStructure)
        self.ui.applyButton.toolTip = (
            _("Extract the features") if self.ui.applyButton.enabled else _("Select at least one image, a segmentation and the segments of a structure")
        )

    def onApplyButton(self) -> None:
        if not self.progress.start():  # a run is active: a second click does nothing
            return
        self.ui.applyButton.enabled = False
        self.ui.cancelButton.show()
        try:
            if not self.logic.ensureDependencies():
                return
            try:
                with slicer.util.WaitCursor():
                    table = self.logic.process(self._parameterNode, progress=self.progress, cancel=self.progress.cancelled)
            except Exception as exc:
                if type(exc).__name__ == "OperationCancelled":
                    self.ui.statusLabel.text = _("Cancelled: nothing was added to the scene.")
                    return
                if not isinstance(exc, ValueError):  # SIRTInputError and the Lib's other input errors are ValueErrors
                    logging.exception("SIRT feature extraction failed")
                self.ui.statusLabel.text = _("Not computed.")
                slicer.util.errorDisplay(str(exc), windowTitle=_("SIRT Dosiomics"))
                return
            self._parameterNode.featureTable = table
            slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(table.GetID())
            slicer.app.applicationLogic().PropagateTableSelection()
            self.ui.statusLabel.text = _("Done: {count} columns.").format(count=table.GetNumberOfColumns())
        finally:
            self.progress.finish()
            self.ui.cancelButton.hide()
            self._checkCanApply()


class SIRTDosiomicsLogic(ScriptedLoadableModuleLogic):
    """Batch use from the Python console::

        logic = slicer.util.getModuleLogic("SIRTDosiomics")
        table = logic.extractFeatures({"dose": doseNode}, segNode, {"tumour": ["Tumor 1"]}, source="y90")
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return SIRTDosiomicsParameterNode(super().getParameterNode())

    def ensureDependencies(self, confirm=None, testing=False) -> bool:
        """Install missing Python packages after one confirmation (``confirm=False``: without asking, as the
        self-test does; ``testing``: also what the self-test needs); False, after showing why, when they are not there."""
        from SIRTDosimetryLib.mrml.dependencies import RADIOMICS_MISSING, DependenciesMissing, ensure_requirements, module_requirements, require_module

        try:
            ensure_requirements(module_requirements("SIRTDosiomics", testing), _("SIRT Dosiomics"), confirm=confirm)
            require_module("radiomics", RADIOMICS_MISSING)
        except DependenciesMissing as exc:
            slicer.util.errorDisplay(str(exc))
            return False
        return True

    @staticmethod
    def libraryMrml():
        """``SIRTDosiomicsLib.mrml``, with a clear message when this build does not have it."""
        try:
            from SIRTDosiomicsLib import mrml
        except ImportError as exc:
            raise RuntimeError(_("This SlicerSIRT build has no MRML adapter for dosiomics (SIRTDosiomicsLib.mrml): {error}").format(error=exc)) from None
        return mrml

    def process(self, parameterNode, progress=None, cancel=None):
        images = {kind: getattr(parameterNode, name) for name, kind in IMAGE_KINDS.items() if getattr(parameterNode, name)}
        structures = {role: list(getattr(parameterNode, name)) for name, role in STRUCTURE_ROLES.items() if list(getattr(parameterNode, name))}
        return self.extractFeatures(
            images, parameterNode.segmentation, structures, parameterNode.source.value,
            preset=parameterNode.presetPath or None, tableNode=parameterNode.featureTable, progress=progress, cancel=cancel,
        )

    def extractFeatures(self, images, segmentationNode, structures, source="y90", preset=None, tableNode=None, progress=None, cancel=None):
        """Feature table node for ``images`` ({kind: volume node}) and ``structures`` ({role: [segment names]})."""
        return self.libraryMrml().extract_features_from_nodes(
            images, segmentationNode, structures, source, preset=preset, table_node=tableNode, progress=progress, cancel=cancel,
        )


class SIRTDosiomicsTest(ScriptedLoadableModuleTest):
    """Runs ``SIRTDosiomicsLib.testing.scenarios`` (the pytest scenarios) on Slicer's scene."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        # A stock Slicer lacks some packages: install them (no dialog in a test run) before the scenarios.
        self.assertTrue(SIRTDosiomicsLogic().ensureDependencies(confirm=False, testing=True), "the Python packages could not be installed")
        try:
            from SIRTDosiomicsLib.testing import scenarios
        except ImportError as exc:
            self.fail(f"SIRTDosiomicsLib.testing.scenarios is missing: {exc}")
        for scenario in scenarios.ALL_SCENARIOS:
            self.setUp()
            self.delayDisplay(f"Running {scenario.__name__}")
            scenario(slicer.mrmlScene)
        self.delayDisplay("SIRT Dosiomics tests passed")
