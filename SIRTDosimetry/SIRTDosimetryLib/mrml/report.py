"""The patient report of a dose map in the scene (the module's "Report" button).

A dose volume made by the SIRTDosimetry logic references its activity volume, segmentation and
provenance text (the dose summary JSON); those are all a report needs. The pictures are drawn from
the nodes' voxels (nothing is read from disk); ``report.html`` and ``report.pdf`` are written into a
folder the user chooses, never over an existing report unless asked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import SimpleITK as sitk

from ..analysis.comparison import resample_like
from ..analysis.derived import DEFAULT_TUMOUR_PATTERNS
from ..errors import SIRTInputError
from ..reporting.content import build_content
from ..reporting.figures import DEFAULT_ISODOSE_LEVELS_GY, DoseView, to_lps
from ..reporting.report import dose_figures, write_report
from ..structures import map_segments
from .convert import image_from_volume_node, segmentation_from_node


def _reference(dose_node, role: str, what: str):
    node = dose_node.GetNodeReference(f"SIRT.{role}")
    if node is None:
        raise SIRTInputError(f"{dose_node.GetName()!r} has no {what}: select a dose map computed by this module")
    return node


def dose_view_from_nodes(dose_node, summary: dict) -> DoseView:
    """The dose node over its activity volume with the reported segments, in LPS order."""
    activity_node = _reference(dose_node, "activity", "activity volume")
    segmentation_node = _reference(dose_node, "segmentation", "segmentation")
    dose = to_lps(sitk.Cast(image_from_volume_node(dose_node), sitk.sitkFloat64))
    background = resample_like(image_from_volume_node(activity_node), dose)
    names = [s["name"] for s in summary["segments"]]
    segmentation = segmentation_from_node(segmentation_node, activity_node, names)
    masks = {n: s.weights > 0 for n, s in map_segments(segmentation, dose, names, mode="center").items()}
    return DoseView(sitk.GetArrayFromImage(dose), sitk.GetArrayFromImage(background), f"activity volume {activity_node.GetName()!r}",
                    masks, dose.GetSpacing())


def write_report_for_dose_node(dose_node, output: str | Path, patient_id: str, case: str = "dosimetry",
                               isodose_levels_gy: Sequence[float] = DEFAULT_ISODOSE_LEVELS_GY,
                               overwrite: bool = False) -> list[Path]:
    """Write ``report.html`` and ``report.pdf`` for a dose node of this module into ``output``."""
    if not patient_id.strip():
        raise SIRTInputError("give the patient ID for the report")
    provenance = _reference(dose_node, "provenance", "dose provenance")
    summary = json.loads(provenance.GetText())
    summary.setdefault("provenance", {}).setdefault("inputs", {})
    content = build_content(patient_id, case, summary)
    content.figures = dose_figures(dose_view_from_nodes(dose_node, summary), content.label, case, tuple(isodose_levels_gy),
                                   DEFAULT_TUMOUR_PATTERNS)
    return write_report(content, Path(output), overwrite=overwrite)


def ask_and_write_report(dose_node) -> Path | None:
    """The module's Report button: ask for a folder and the patient ID, write the report and open it.

    Returns the HTML file, or None when there is no dose map, the user cancels or the input is refused
    (said in a message box). Needs the Slicer application (Qt).
    """
    import qt
    import slicer
    from slicer.i18n import tr as _

    title = _("SIRT Dosimetry")
    if dose_node is None:
        slicer.util.errorDisplay(_("Compute or select a dose map first."), windowTitle=title)
        return None
    window = slicer.util.mainWindow()
    folder = qt.QFileDialog.getExistingDirectory(window, _("Folder for report.html and report.pdf"))
    patient_id = qt.QInputDialog.getText(window, _("Patient report"), _("Patient ID:")) if folder else ""
    if not folder or not patient_id:
        return None
    try:
        with slicer.util.WaitCursor():
            written = write_report_for_dose_node(dose_node, folder, patient_id)
    except SIRTInputError as exc:
        slicer.util.errorDisplay(str(exc), windowTitle=title)
        return None
    qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(str(written[0])))
    return written[0]
