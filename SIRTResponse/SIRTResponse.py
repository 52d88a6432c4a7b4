"""SIRT Response: apply a trained responder/non-responder model to a patient's features, in Slicer.

Models are trained and exported with ``sirt train`` (``SIRTResponseLib``); the logic here delegates to
``SIRTResponseLib.mrml``, which is expected to provide::

    model_summary(model_dir) -> str
        a short, human-readable description of the model card (identity, features, CV metrics)
    predict_from_table_node(model_dir, feature_table_node, row=0, table_node=None,
                            progress=None, cancel=None) -> vtkMRMLTableNode
        probability of response, predicted class, model identity (name, payload SHA-256) and warnings
        (inputs outside the training range); refuses models whose hash or types do not check out
    scenarios.ALL_SCENARIOS: functions scene -> dict, run by the self-test and by pytest

Missing packages (scikit-learn, xgboost, skops, ...) are installed on first use after asking.
"""

import logging
from typing import Annotated, Optional

import slicer
import vtk
from slicer import vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin
from SIRTDosimetryLib.mrml.widgets import PathSync, ProgressReporter  # no Qt or heavy imports


class SIRTResponse(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("SIRT Response")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Nuclear Medicine")]
        self.parent.dependencies = ["SIRTDosimetry"]  # uses SIRTDosimetryLib (MRML adapter, GUI helpers)
        self.parent.contributors = ["SlicerSIRT developers"]
        self.parent.helpText = _("""
Predicts the response of a liver radioembolization (responder: complete or partial response by mRECIST)
from a patient's dosimetric, dosiomic, radiomic and clinical features with a model trained by
<code>sirt train</code> on a cohort with nested cross-validation. The model folder holds a safely
serialised model and a model card (features, preprocessing, cross-validated AUC with confidence
intervals); the result table shows the probability, the class, the model's identity and a warning for
any input outside the training range.
<p>References:</p>
<ul>
<li>Lencioni R, Llovet JM. Modified RECIST (mRECIST) assessment for hepatocellular carcinoma.
Semin Liver Dis 2010;30:52-60.</li>
<li>Varma S, Simon R. Bias in error estimation when using cross-validation for model selection.
BMC Bioinformatics 2006;7:91.</li>
<li>DeLong ER et al. Comparing the areas under two or more correlated receiver operating characteristic
curves. Biometrics 1988;44:837-845.</li>
</ul>
<p>See the <a href="https://github.com/SlicerSIRT/SlicerSIRT#readme">SlicerSIRT documentation</a>.
For research use; not a medical device: a prediction must not guide treatment.</p>
""")
        self.parent.acknowledgementText = _("""
Developed by the SlicerSIRT developers. Models by scikit-learn and XGBoost, stored with skops.
""")


@parameterNodeWrapper
class SIRTResponseParameterNode:
    modelPath: str = ""
    featureTable: vtkMRMLTableNode
    row: Annotated[int, WithinRange(0, 100000)] = 0
    predictionTable: vtkMRMLTableNode


class SIRTResponseWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SIRTResponse.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SIRTResponseLogic()

        self.modelPath = PathSync(self.ui.modelPathLineEdit, "modelPath", lambda: self._parameterNode)
        self.progress = ProgressReporter(self.ui.progressBar, self.ui.statusLabel, slicer.app.processEvents)
        self.ui.progressBar.hide()
        self.ui.cancelButton.hide()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.modelPath.connect()
        self.ui.modelPathLineEdit.connect("currentPathChanged(QString)", self.updateModelCard)
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

    def setParameterNode(self, inputParameterNode: Optional[SIRTResponseParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        self.modelPath.to_widget()
        self._checkCanApply()

    def updateModelCard(self, path) -> None:
        self.ui.modelCardLabel.text = self.logic.modelSummaryText(path) if path else _("No model loaded.")

    def _checkCanApply(self, caller=None, event=None) -> None:
        if self.progress.running:  # parameter edits during a run must not re-enable Apply
            self.ui.applyButton.enabled = False
            return
        p = self._parameterNode
        self.ui.applyButton.enabled = bool(p and p.modelPath and p.featureTable)
        self.ui.applyButton.toolTip = _("Predict the response") if self.ui.applyButton.enabled else _("Select a model folder and a feature table")

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
                    self.ui.statusLabel.text = _("Cancelled.")
                    return
                if not isinstance(exc, ValueError):
                    logging.exception("SIRT response prediction failed")
                self.ui.statusLabel.text = _("Not computed.")
                slicer.util.errorDisplay(str(exc), windowTitle=_("SIRT Response"))
                return
            self._parameterNode.predictionTable = table
            slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(table.GetID())
            slicer.app.applicationLogic().PropagateTableSelection()
            self.ui.statusLabel.text = _("Done. Research use only: not for treatment decisions.")
        finally:
            self.progress.finish()
            self.ui.cancelButton.hide()
            self._checkCanApply()


class SIRTResponseLogic(ScriptedLoadableModuleLogic):
    """Batch use from the Python console::

        logic = slicer.util.getModuleLogic("SIRTResponse")
        table = logic.predict("/path/to/model", featureTableNode)
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return SIRTResponseParameterNode(super().getParameterNode())

    def ensureDependencies(self, confirm=None, testing=False) -> bool:
        """Install missing Python packages after one confirmation (``confirm=False``: without asking, as the
        self-test does; ``testing``: also what the self-test needs); False, after showing why, when they are not there."""
        from SIRTDosimetryLib.mrml.dependencies import DependenciesMissing, ensure_requirements, module_requirements

        try:
            ensure_requirements(module_requirements("SIRTResponse", testing), _("SIRT Response"), confirm=confirm)
        except DependenciesMissing as exc:
            slicer.util.errorDisplay(str(exc))
            return False
        return True

    @staticmethod
    def libraryMrml():
        """``SIRTResponseLib.mrml``, with a clear message when this build does not have it."""
        try:
            from SIRTResponseLib import mrml
        except ImportError as exc:
            raise RuntimeError(_("This SlicerSIRT build has no MRML adapter for response models (SIRTResponseLib.mrml): {error}").format(error=exc)) from None
        return mrml

    def modelSummaryText(self, modelPath: str) -> str:
        """Model card summary for the GUI; never raises (the text says what is wrong)."""
        try:
            return self.libraryMrml().model_summary(modelPath)
        except Exception as exc:  # shown to the user instead of a summary
            return _("Cannot read the model: {error}").format(error=exc)

    def process(self, parameterNode, progress=None, cancel=None):
        return self.predict(parameterNode.modelPath, parameterNode.featureTable, parameterNode.row,
                            tableNode=parameterNode.predictionTable, progress=progress, cancel=cancel)

    def predict(self, modelPath, featureTableNode, row=0, tableNode=None, progress=None, cancel=None):
        """Prediction table node for one row of ``featureTableNode`` with the model in ``modelPath``."""
        return self.libraryMrml().predict_from_table_node(
            modelPath, featureTableNode, row=row, table_node=tableNode, progress=progress, cancel=cancel,
        )


class SIRTResponseTest(ScriptedLoadableModuleTest):
    """Runs ``SIRTResponseLib.testing.scenarios`` (the pytest scenarios) on Slicer's scene."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        # A stock Slicer lacks some packages: install them (no dialog in a test run) before the scenarios.
        self.assertTrue(SIRTResponseLogic().ensureDependencies(confirm=False, testing=True), "the Python packages could not be installed")
        try:
            from SIRTResponseLib.testing import scenarios
        except ImportError as exc:
            self.fail(f"SIRTResponseLib.testing.scenarios is missing: {exc}")
        for scenario in scenarios.ALL_SCENARIOS:
            self.setUp()
            self.delayDisplay(f"Running {scenario.__name__}")
            scenario(slicer.mrmlScene)
        self.delayDisplay("SIRT Response tests passed")
