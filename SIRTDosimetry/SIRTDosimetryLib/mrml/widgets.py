"""GUI helpers shared by the three SlicerSIRT module widgets, written without Qt imports so that they
are tested here with stand-in widgets (the module files pass the real ones).

The parameter node wrapper has no automatic connection for ``qMRMLSegmentSelectorWidget``, and segment
*names* (not segment IDs) are what the parameter node stores, because names survive saving and
reloading a scene and are what the engine asks for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


class SegmentListSync:
    """Keeps ``list[str]`` parameter-node fields and multi-selection segment selector widgets in step.

    ``widgets`` maps a parameter name to its widget (``qMRMLSegmentSelectorWidget`` with
    ``multiSelection``); ``parameter_node()`` returns the current wrapper (or None).
    """

    def __init__(self, widgets: Mapping[str, object], parameter_node: Callable[[], object]):
        self.widgets = dict(widgets)
        self.parameter_node = parameter_node
        self._busy = False

    def connect(self) -> None:
        for widget in self.widgets.values():
            widget.connect("segmentSelectionChanged(QStringList)", self.from_widgets)

    def to_widgets(self, *args) -> None:
        """Show the parameter node's segment names in the widgets (names not in the segmentation are skipped)."""
        node = self.parameter_node()
        if node is None or self._busy:
            return
        self._busy = True
        try:
            segmentation_node = node.segmentation
            for parameter, widget in self.widgets.items():
                widget.setCurrentNode(segmentation_node)
                ids = []
                if segmentation_node:
                    segmentation = segmentation_node.GetSegmentation()
                    ids = [segmentation.GetSegmentIdBySegmentName(name) for name in getattr(node, parameter)]
                widget.setSelectedSegmentIDs([i for i in ids if i])
        finally:
            self._busy = False

    def from_widgets(self, *args) -> None:
        """Store the widgets' selections in the parameter node, as segment names."""
        node = self.parameter_node()
        if node is None or self._busy or not node.segmentation:
            return
        segmentation = node.segmentation.GetSegmentation()
        self._busy = True
        try:
            for parameter, widget in self.widgets.items():
                names = [segmentation.GetSegment(i).GetName() for i in widget.selectedSegmentIDs() if segmentation.GetSegment(i)]
                if list(getattr(node, parameter)) != names:
                    setattr(node, parameter, names)
        finally:
            self._busy = False


class PathSync:
    """Keeps a ``str`` parameter-node field and a ``ctkPathLineEdit`` in step (no automatic connection)."""

    def __init__(self, widget, parameter: str, parameter_node: Callable[[], object]):
        self.widget, self.parameter, self.parameter_node = widget, parameter, parameter_node

    def connect(self) -> None:
        self.widget.connect("currentPathChanged(QString)", self.from_widget)

    def to_widget(self, *args) -> None:
        node = self.parameter_node()
        if node is not None and self.widget.currentPath != getattr(node, self.parameter):
            self.widget.currentPath = getattr(node, self.parameter)

    def from_widget(self, path) -> None:
        node = self.parameter_node()
        if node is not None and getattr(node, self.parameter) != path:
            setattr(node, self.parameter, path)


class ProgressReporter:
    """Progress callback, cancel flag and re-entry guard for a computation run from a widget.

    ``self(fraction, message)`` updates the GUI and lets Qt process events; ``cancelled`` is what the
    Lib's ``cancel`` callback and ``background.run_in_background`` read. ``start`` refuses a second run
    while one is active (the Apply button is disabled too, but events processed during a run could
    re-enable it), so a second click never starts a nested computation.
    """

    def __init__(self, progress_bar, status_label, process_events: Callable[[], None]):
        self.progress_bar, self.status_label, self.process_events = progress_bar, status_label, process_events
        self.cancel_requested = False
        self.running = False

    def start(self) -> bool:
        """Begin a run; False (and nothing changes) when one is already running."""
        if self.running:
            return False
        self.running = True
        self.cancel_requested = False
        self.progress_bar.value = 0
        self.progress_bar.show()
        return True

    def finish(self) -> None:
        self.running = False
        self.progress_bar.hide()

    def request_cancel(self, *args) -> None:
        if not self.running:
            return
        self.cancel_requested = True
        self.status_label.text = "Cancelling..."

    def cancelled(self) -> bool:
        return self.cancel_requested

    def __call__(self, fraction: float, message: str) -> None:
        self.progress_bar.value = int(round(100 * fraction))
        self.status_label.text = message
        self.process_events()


def physics_texts(tr: Callable[[str], str] = lambda text: text) -> dict[str, dict[str, str]]:
    """Widget texts quoting physics constants (widget name → {Qt property: text}), made from the constants
    themselves: the .ui file carries none of these numbers, so that each is defined once. ``tr``: the
    translation function, applied to each text before the numbers are filled in. Imports only modules that
    Slicer loads before the module's dependencies are installed (numpy, no scipy)."""
    from ..dose.radiobiology import NORMAL_LIVER_CHIESA_2015, PRESET_SOURCES, TUMOUR_CHIESA_2015
    from ..nuclides import DENSITY_LUNG_G_PER_ML, Y90
    from ..vocabulary import NORMAL_LIVER, TUMOUR

    def lq(what: str, role: str, parameters) -> dict[str, str]:
        text = tr("Segments given {what} LQ parameters (alpha/beta {alpha_beta:g} Gy, repair half-time {repair:g} h; {source}).")
        return {"toolTip": text.format(what=what, alpha_beta=parameters.alpha_beta_gy, repair=parameters.repair_half_time_h,
                                       source=PRESET_SOURCES[role])}

    lungs = f"lungs={DENSITY_LUNG_G_PER_ML:g}"
    return {
        "halfLifeSpinBox": {"toolTip": tr("Physical half-life in hours; 0 uses the radionuclide's ({half_life:g} h for 90Y).").format(
            half_life=Y90.half_life_h)},
        "tumourSegmentsSelector": lq(tr("tumour"), TUMOUR, TUMOUR_CHIESA_2015),
        "normalLiverSegmentsSelector": lq(tr("normal-liver"), NORMAL_LIVER, NORMAL_LIVER_CHIESA_2015),
        "lungSegmentsSelector": {"toolTip": tr("Lung segment(s) of the SPECT's segmentation, for the lung shunt from SPECT counts and the "
                                               "lung mass ({density:g} g/mL).").format(density=DENSITY_LUNG_G_PER_ML)},
        "segmentDensitiesLineEdit": {
            "toolTip": tr("Other densities inside segments, e.g. '{example}'; separate with commas.").format(example=lungs),
            "placeholderText": lungs,
        },
    }
