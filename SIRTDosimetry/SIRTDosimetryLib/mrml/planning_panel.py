"""The "Lung shunt and planning" panel of the SIRT Dosimetry module: its three buttons, written without Qt
so that they are tested with stand-in widgets (the module passes the real ones).

The computations are ``analysis.constraints.lung_shunt_fraction_planar`` and ``treatment_planning``;
the panel reads the module's parameter node, writes the lung shunt fraction back into it and the plan
into a label. Input errors are shown with ``show_error`` (a message box in Slicer), never as a traceback.
"""

from __future__ import annotations

from collections.abc import Callable


class PlanningPanel:
    def __init__(self, result_label, parameter_node: Callable[[], object], show_error: Callable[[str], None],
                 ensure_dependencies: Callable[[], bool]):
        self.result_label, self.parameter_node = result_label, parameter_node
        self.show_error, self.ensure_dependencies = show_error, ensure_dependencies

    def _run(self, function):
        """``function()``, or None after showing an input error."""
        from ..errors import SIRTInputError

        try:
            return function()
        except SIRTInputError as exc:
            self.show_error(str(exc))
            return None

    def _set_lsf(self, lsf: float | None, how: str) -> None:
        if lsf is not None:
            self.parameter_node().lungShuntFraction = round(lsf, 3)
            self.result_label.text = f"Lung shunt fraction {100 * lsf:.1f} % ({how})."

    def planar_lung_shunt(self, *args) -> None:
        from ..analysis.constraints import lung_shunt_fraction_planar

        node = self.parameter_node()
        counts = (node.lungAnteriorCounts, node.lungPosteriorCounts, node.liverAnteriorCounts, node.liverPosteriorCounts)
        self._set_lsf(self._run(lambda: lung_shunt_fraction_planar(*counts)), "planar geometric means")

    def spect_lung_shunt(self, *args) -> None:
        node = self.parameter_node()
        if not (node.activityVolume and node.segmentation and node.lungSegments and node.calibrationVoi):
            self.show_error("Choose the activity image, the segmentation, the lung segment and the calibration VOI (liver).")
            return
        if not self.ensure_dependencies():
            return
        from .treatment_planning import spect_lung_shunt_fraction

        self._set_lsf(self._run(lambda: spect_lung_shunt_fraction(
            node.activityVolume, node.segmentation, node.lungSegments[0], node.calibrationVoi[0], node.clampNegative)), "SPECT counts")

    def plan(self, *args) -> None:
        node = self.parameter_node()
        if not (node.activityVolume and node.segmentation and node.planPerfusedSegments):
            self.show_error("Choose the activity image (99mTc-MAA SPECT), the segmentation and the perfused liver segment.")
            return
        if not self.ensure_dependencies():
            return
        from ..vocabulary import TUMOUR
        from .defaults import segment_names
        from .logic import structure_role
        from .treatment_planning import PlanRequest, plan_from_nodes, plan_text

        tumours = tuple(node.tumourSegments) or tuple(
            n for n in segment_names(node.segmentation) if structure_role(n, None) == TUMOUR
        )
        request = PlanRequest(
            tumours, node.planPerfusedSegments[0], whole_liver=(node.calibrationVoi[0] if node.calibrationVoi else None),
            lung=(node.lungSegments[0] if node.lungSegments else None), lsf=node.lungShuntFraction,
            microspheres=getattr(node.microspheres, "value", node.microspheres), target_tumour_gy=node.targetTumourDoseGy or None,
            activity_gbq=None if node.targetTumourDoseGy else (node.plannedActivityGbq or None),
            residual_fraction=node.residualFraction, clamp_negative=node.clampNegative,
        )
        plan = self._run(lambda: plan_from_nodes(node.activityVolume, node.segmentation, request))
        if plan is not None:
            self.result_label.text = plan_text(plan)
