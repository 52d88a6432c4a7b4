"""``sirt dose … --scene out.mrb``: a dose result as a Slicer scene, ready to inspect; dose nodes as RT Dose files.

The scene holds the activity volume, the segmentation (original contours, original grid), the dose
(and BED/EQD2) volumes with the dose colour table shown as a foreground overlay on the activity in
the three slice views, the per-segment summary table, the dose-volume constraints and DVH chart when
the analysis package provides them, and the provenance JSON as a text node.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import SimpleITK as sitk

from ..errors import SIRTInputError
from ..io.rtdose import source_identity, write_rtdose
from ..io.segmentations import Segmentation, read_segmentation
from ..io.volumes import ActivityImage, read_activity_image, read_image
from ..io.writers import commit_outputs
from . import convert, outputs
from .defaults import INSTANCE_UIDS_ATTRIBUTE
from .logic import DoseOutputs, add_result_nodes
from .scene import check_scene_path, new_scene, save_scene

OVERLAY_OPACITY = 0.5


def _name(path: str, default: str) -> str:
    name = Path(path).name if path else default
    for suffix in (".seg.nrrd", ".nii.gz", ".nrrd", ".nii", ".mha", ".mhd"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name or default


def _segment_colors(segmentation: Segmentation) -> dict[str, tuple[float, float, float]]:
    """Segment colours from a ``.seg.nrrd`` header (``SegmentN_Color``), when the segmentation came from one."""
    path = Path(segmentation.source_path)
    if not path.name.lower().endswith(".seg.nrrd") or not path.exists():
        return {}
    try:
        import nrrd

        header = nrrd.read_header(str(path))
    except Exception:  # colours are cosmetic: never fail the export for them
        return {}
    colors = {}
    index = 0
    while f"Segment{index}_Name" in header:
        try:
            rgb = tuple(float(v) for v in str(header.get(f"Segment{index}_Color", "")).split())
        except ValueError:
            rgb = ()
        if len(rgb) == 3:
            colors[header[f"Segment{index}_Name"]] = rgb
        index += 1
    return colors


def build_dose_scene(
    result,
    activity_image: ActivityImage,
    segmentation: Segmentation,
    params=None,
    summary: dict | None = None,
    ct_image=None,
    ct_name: str = "CT",
):
    """A new scene (``SceneContext``) with the inputs and the outputs of ``result``; returns (context, DoseOutputs).

    With ``ct_image`` (a SimpleITK CT registered to the activity) the CT is the slice views' background.
    """
    context = new_scene()
    scene = context.scene
    activity_node = convert.add_volume_node(scene, activity_image.image, _name(activity_image.source_path, "activity"))
    activity_node.CreateDefaultDisplayNodes()
    display = activity_node.GetDisplayNode()
    display.SetAndObserveColorNodeID("vtkMRMLColorTableNodeGrey")
    display.AutoWindowLevelOn()
    if activity_image.units:
        activity_node.SetAttribute("SIRT.Units", activity_image.units)
    segmentation_node = convert.add_segmentation_node(
        scene, segmentation, _name(segmentation.source_path, "segmentation"), _segment_colors(segmentation)
    )

    def make_summary(output_names: dict) -> dict:
        data = dict(summary) if summary is not None else {}
        data.setdefault("outputs", {})
        data["scene_nodes"] = output_names
        return data

    out: DoseOutputs = add_result_nodes(
        scene, result, params, activity_node.GetName(),
        activity_node, segmentation_node, make_summary,
    )
    background = activity_node
    if ct_image is not None:
        background = convert.add_volume_node(scene, ct_image, ct_name)
        background.CreateDefaultDisplayNodes()
        ct_display = background.GetDisplayNode()
        ct_display.SetAndObserveColorNodeID("vtkMRMLColorTableNodeGrey")
        ct_display.AutoWindowLevelOff()
        ct_display.SetWindowLevel(400.0, 40.0)  # abdomen window
    outputs.show_layout_with_plot_and_table(scene, out.dvh_chart_node, out.table_node)
    outputs.show_in_slice_views(scene, background, out.dose_node, OVERLAY_OPACITY)
    return context, out


def write_rtdose_nodes(
    nodes: dict[str, object], folder: str | Path, reference: str | Path | None = None, overwrite: bool = False
) -> list[Path]:
    """Write dose/BED/EQD2 volume nodes as RT Dose files ``<quantity>.dcm`` in ``folder``.

    ``nodes`` maps a quantity of ``io.rtdose.DOSE_QUANTITIES`` (``dose_gy``, ``bed_gy``, ``eqd2_gy``)
    to its volume node. ``reference``, the DICOM activity series the dose was computed from, gives
    the patient, study and frame of reference; without it the files get new UIDs and no identity.
    """
    images = {quantity: convert.image_from_volume_node(node) for quantity, node in nodes.items()}
    identity = source_identity(reference, images) if reference is not None else None
    writers = {f"{quantity}.dcm": partial(write_rtdose, image, quantity=quantity, identity=identity) for quantity, image in images.items()}
    return commit_outputs(Path(folder), writers, overwrite=overwrite)


def rtdose_nodes_of(dose_node) -> dict[str, object]:
    """The maps to export for a dose node of this module: the dose and, when computed, its BED and EQD2
    (the node's ``SIRT.bed`` / ``SIRT.eqd2`` references), keyed by RT Dose quantity."""
    if dose_node.GetNodeReference("SIRT.activity") is None:
        raise SIRTInputError(f"{dose_node.GetName()!r} is not a dose map computed by this module: select one")
    nodes = {"dose_gy": dose_node}
    for quantity, role in (("bed_gy", "bed"), ("eqd2_gy", "eqd2")):
        node = dose_node.GetNodeReference(f"SIRT.{role}")
        if node is not None:
            nodes[quantity] = node
    return nodes


def dicom_series_folder(volume_node, file_for_instance: Callable[[str], str]) -> Path | None:
    """The folder of the DICOM series a volume was loaded from (its first instance's folder, as Slicer's
    DICOM database keeps one folder per series), or None when it did not come from DICOM."""
    uids = (volume_node.GetAttribute(INSTANCE_UIDS_ATTRIBUTE) or "").split()
    path = file_for_instance(uids[0]) if uids else ""
    return Path(path).parent if path else None


def ask_and_export_rtdose(dose_node) -> list[Path] | None:
    """The module's "Export RT Dose" button: ask for a folder and write the dose (and BED/EQD2) of
    ``dose_node`` as DICOM RT Dose, in the study and frame of reference of its activity series when that
    was loaded from DICOM. Returns the files, or None (no dose map, cancelled, or refused: said in a
    message box). Needs the Slicer application (Qt)."""
    import qt
    import slicer
    from slicer.i18n import tr as _

    title = _("SIRT Dosimetry")
    if dose_node is None:
        slicer.util.errorDisplay(_("Compute or select a dose map first."), windowTitle=title)
        return None
    folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Folder for the RT Dose files"))
    if not folder:
        return None
    try:
        nodes = rtdose_nodes_of(dose_node)
        database = getattr(slicer, "dicomDatabase", None)
        reference = dicom_series_folder(dose_node.GetNodeReference("SIRT.activity"), database.fileForInstance) if database else None
        with slicer.util.WaitCursor():
            return write_rtdose_nodes(nodes, folder, reference)
    except SIRTInputError as exc:
        slicer.util.errorDisplay(str(exc), windowTitle=title)
        return None


def save_dose_scene(
    result,
    activity_image: ActivityImage | str | Path,
    segmentation: Segmentation | str | Path,
    path: str | Path,
    *,
    params=None,
    summary: dict | None = None,
    units: str | None = None,
    label_names: dict[int, str] | None = None,
    ct=None,
    overwrite: bool = False,
) -> Path:
    """Save ``result`` with its inputs as a Slicer scene (``.mrb`` bundle, or ``.mrml`` + ``<name>_data/``).

    ``activity_image`` and ``segmentation`` are the engine's inputs, or the paths they were read from
    (read again here with ``units``/``label_names``). ``params`` and ``summary`` (the ``summary.json``
    content) go into the provenance text node. ``ct`` (a SimpleITK image or an image path), when the
    dose used a CT for the density, is added as the background of the slice views. Refuses to
    overwrite an input, and an existing scene unless ``overwrite``.
    """
    path = Path(path)
    ct_name, ct_path = "CT", None
    if ct is not None and not isinstance(ct, sitk.Image):
        ct_path = str(ct)
        ct_name = _name(ct_path, "CT")
        ct = read_image(ct)
    if not isinstance(activity_image, ActivityImage):
        activity_image = read_activity_image(activity_image, units)
    if not isinstance(segmentation, Segmentation):
        segmentation = read_segmentation(segmentation, label_names)
    check_scene_path(path, overwrite, inputs=(activity_image.source_path, segmentation.source_path, ct_path))
    context, _ = build_dose_scene(result, activity_image, segmentation, params, summary, ct, ct_name)
    return save_scene(context.scene, path, overwrite=overwrite)
