"""First-Apply defaults: what the dose module can tell from the nodes before the user sets anything.

Slicer's DICOM plugins record voxel units for CT and MR only, so a PET or SPECT loaded from DICOM has
none on the node; its units are read from the DICOM header the volume was loaded from (Units
(0054,1001): BQML for quantitative PET/SPECT, CNTS or none for NM counts). A volume in counts cannot be
calibrated absolutely without a camera factor, so the suggested calibration is then relative, over the
liver segment (found whatever its capitalisation).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import SIRTInputError

INSTANCE_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"
"""Space-separated SOP instance UIDs that Slicer's DICOM plugins store on a loaded volume."""

LIVER_NAMES = ("liver", "whole liver")
"""Segment names (any capitalisation) taken as the liver for the relative calibration VOI."""


def dicom_units(volume_node, file_for_instance: Callable[[str], str] | None = None) -> str | None:
    """Units of a volume loaded from PET/NM DICOM, from the header of its first instance (None when the
    volume did not come from DICOM, the file is gone, or the modality is not PET/NM).

    ``file_for_instance(uid)`` gives the file of an instance; default: Slicer's DICOM database.
    """
    uids = (volume_node.GetAttribute(INSTANCE_UIDS_ATTRIBUTE) or "").split()
    if not uids:
        return None
    if file_for_instance is None:
        import slicer

        database = getattr(slicer, "dicomDatabase", None)
        if database is None:
            return None
        file_for_instance = database.fileForInstance
    path = file_for_instance(uids[0])
    if not path:
        return None
    from ..io.dicom import file_units

    try:
        return file_units(path)
    except SIRTInputError:
        return None


def segment_names(segmentation_node) -> list[str]:
    if segmentation_node is None:
        return []
    segmentation = segmentation_node.GetSegmentation()
    return [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]


def liver_segment(segmentation_node) -> str | None:
    """The segment named like the liver (``Liver``, ``liver``, ``Whole liver``), or None."""
    names = segment_names(segmentation_node)
    for wanted in LIVER_NAMES:
        for name in names:
            if name.strip().lower() == wanted:
                return name
    return None


def first_apply_settings(activity_node, segmentation_node, units: str | None) -> dict:
    """``DoseSettings`` fields to preset when the user picks these nodes (``units``: the volume's, from
    ``logic.volume_units``): the units shown explicitly, relative calibration for counts, and the liver
    segment as calibration VOI."""
    suggested: dict = {}
    if units is not None:
        suggested["units"] = units
        suggested["calibration_mode"] = "relative" if units == "counts" else "absolute"
    liver = liver_segment(segmentation_node)
    if liver is not None:
        suggested["calibration_voi"] = [liver]
    return suggested


GUI_LABELS: dict[str, str] = {
    "--mode relative": "relative calibration",
    "--mode absolute": "absolute calibration",
    "--mode": "'Calibration'",
    "--method": "'Method'",
    "--kernel": "'Kernel'",
    "--radionuclide": "'Radionuclide'",
    "--half-life-h": "'Half-life'",
    "--density": "'Tissue density'",
    "--segment-density": "'Segment densities'",
    "--ct": "'CT for density'",
    "--hu-density-table": "'HU-density table'",
    "--partial-voxels": "'Partial voxels'",
    "--segments": "'Report segments'",
    "--clamp-negative": "'Negative voxels to zero'",
    "--units": "'Image units'",
    "--administration-time": "'Administration time'",
    "--scan-time": "'Scan time'",
    "--scan-after-administration-h": "'Or scan after administration'",
    "--camera-factor-cps-per-mbq": "'Camera factor'",
    "--acquisition-duration-s": "'Acquisition duration'",
    "--administered-activity-gbq": "'Administered activity'",
    "the administered activity in GBq (administered_activity_gbq)": "the administered activity ('Administered activity', GBq)",  # the builder's wording
    "--lung-shunt-fraction": "'Lung shunt fraction'",
    "--residual-fraction": "'Residual fraction'",
    "--calibration-voi": "'Calibration VOI'",
    "--lungs-in-voi": "'Lungs in VOI'",
    "--bed-params": "'Tumour segments' / 'Normal liver segments'",
}
"""``sirt dose`` options and the SIRT Dosimetry controls that set them (longest first when replacing)."""


def in_gui_words(message: str) -> str:
    """A validation message written for the command line, with each option replaced by its control."""
    for option in sorted(GUI_LABELS, key=len, reverse=True):
        message = message.replace(option, GUI_LABELS[option])
    return message
