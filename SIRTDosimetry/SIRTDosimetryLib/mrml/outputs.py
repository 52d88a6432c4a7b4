"""Output nodes: dose-style colour table and display, summary table, provenance text, DVH table and chart.

Every function creates new nodes; none modifies an input node.
"""

from __future__ import annotations

import colorsys
import json
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import SIRTInputError
from ._vtk import slicer_module, vtk

DOSE_COLOR_TABLE_NAME = "SIRT Dose"
DOSE_COLOR_TABLE_ATTRIBUTE = "SIRT.ColorTable"
DEFAULT_DISPLAY_THRESHOLD_GY = 1.0
"""Voxels below this dose are transparent in the overlay (background noise of 90Y PET and MAA SPECT)."""

ATTRIBUTE_PREFIX = "SIRT."
"""Node attributes written by SlicerSIRT start with this."""

# SlicerRT's names (SlicerRtCommon/vtkSlicerRtCommon.cxx): a scalar volume with the dose-volume
# attribute is a dose for SlicerRT's Dose Volume Histogram, Isodose and DICOM RT export; the dose
# unit is read from the attributes of the study the volume belongs to in the subject hierarchy.
SLICERRT_DOSE_VOLUME_ATTRIBUTE = "DicomRtImport.DoseVolume"
SLICERRT_DOSE_UNIT_NAME_ATTRIBUTE = "DicomRtImport.DoseUnitName"
SLICERRT_DOSE_UNIT_VALUE_ATTRIBUTE = "DicomRtImport.DoseUnitValue"

SUMMARY_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    # (column name = SegmentSummary field, title shown, unit, description)
    ("name", "Segment", "", "segment name"),
    ("volume_ml", "Volume", "mL", "volume on the activity grid (partial voxels counted by their fraction)"),
    ("contoured_volume_ml", "Contoured volume", "mL", "volume on the segmentation's own grid"),
    ("mass_g", "Mass", "g", "volume times density"),
    ("activity_bq", "Activity", "Bq", "activity at implantation in the segment"),
    ("dose_mean_gy", "Mean dose", "Gy", "mean absorbed dose (voxels weighted by their fraction inside)"),
    ("dose_min_gy", "Min dose", "Gy", "minimum absorbed dose over voxels touching the segment"),
    ("dose_max_gy", "Max dose", "Gy", "maximum absorbed dose over voxels touching the segment"),
    ("bed_mean_gy", "Mean BED", "Gy", "mean biologically effective dose (empty without LQ parameters)"),
    ("bed_min_gy", "Min BED", "Gy", "minimum BED"),
    ("bed_max_gy", "Max BED", "Gy", "maximum BED"),
    ("eqd2_mean_gy", "EQD2 of mean BED", "Gy", "equivalent dose in 2 Gy fractions of the mean BED"),
)


# ---------------------------------------------------------------------------------------------
# dose colour table and display


def dose_color_table(scene, name: str = DOSE_COLOR_TABLE_NAME):
    """The scene's SlicerSIRT dose colour table, created once: a 256-entry blue→cyan→green→yellow→red ramp.

    Like the isodose look of radiotherapy systems; the table is a regular node so that it is saved
    with the scene and the overlay looks the same when the scene is reopened.
    """
    slicer = slicer_module()
    nodes = scene.GetNodesByClass("vtkMRMLColorTableNode")
    for i in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(i)
        if node.GetAttribute(DOSE_COLOR_TABLE_ATTRIBUTE) == "dose" and node.GetName() == name:
            return node
    table = slicer.vtkMRMLColorTableNode()
    table.SetName(name)
    table.SetTypeToUser()
    table.SetAttribute(DOSE_COLOR_TABLE_ATTRIBUTE, "dose")
    table.SetNumberOfColors(256)
    for i in range(256):
        hue = (2.0 / 3.0) * (1.0 - i / 255.0)  # 240° (blue) at the bottom to 0° (red) at the top
        r, g, b = colorsys.hsv_to_rgb(hue, 1.0, 1.0)
        table.SetColor(i, f"{i}", r, g, b, 1.0)
    scene.AddNode(table)
    return table


def display_window_gy(dose: np.ndarray, inside: np.ndarray | None = None) -> float:
    """Upper end of the colour window: the 99.5th percentile of the dose in the structures (or of the
    non-zero dose), so that one hot voxel does not wash out the map."""
    values = dose[inside] if inside is not None and inside.any() else dose[dose > 0]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 1.0
    top = float(np.percentile(values, 99.5))
    return top if top > 0 else float(values.max()) or 1.0


def setup_dose_display(volume_node, window_max_gy: float, threshold_gy: float = DEFAULT_DISPLAY_THRESHOLD_GY, color_table=None):
    """Dose-overlay display: dose colour table, window [0, window_max_gy], transparent below ``threshold_gy``."""
    slicer = slicer_module()
    scene = volume_node.GetScene()
    display = volume_node.GetDisplayNode()
    if display is None:
        display = slicer.vtkMRMLScalarVolumeDisplayNode()
        scene.AddNode(display)
        volume_node.SetAndObserveDisplayNodeID(display.GetID())
    table = color_table or dose_color_table(scene)
    display.SetAndObserveColorNodeID(table.GetID())
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0, max(float(window_max_gy), threshold_gy + 1e-3))
    display.AutoThresholdOff()
    display.SetThreshold(float(threshold_gy), 1e12)
    display.ApplyThresholdOn()
    display.SetInterpolate(False)  # show the voxels the dose was computed on
    return display


def set_quantity(volume_node, quantity: str, units: str = "Gy") -> None:
    """Voxel value quantity and units as coded entries (shown by Slicer's data probe)."""
    slicer = slicer_module()
    if not hasattr(volume_node, "SetVoxelValueUnits"):
        return
    unit = slicer.vtkCodedEntry()
    unit.SetValueSchemeMeaning(units, "UCUM", units)
    volume_node.SetVoxelValueUnits(unit)
    code = slicer.vtkCodedEntry()
    code.SetValueSchemeMeaning(quantity.replace(" ", ""), "SIRT", quantity)
    volume_node.SetVoxelValueQuantity(code)


def mark_rt_dose(volume_node) -> None:
    """Make ``volume_node`` (voxels in Gy) an RT dose volume as SlicerRT's DICOM RT import does.

    Sets the dose-volume attribute on the node and, where the node already sits under a study in
    the subject hierarchy, the dose unit (Gy, voxel values used as they are) on that study. Safe to
    call again once the node has been placed.
    """
    slicer = slicer_module()
    volume_node.SetAttribute(SLICERRT_DOSE_VOLUME_ATTRIBUTE, "1")
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(volume_node.GetScene())
    item = hierarchy.GetItemByDataNode(volume_node)
    study = hierarchy.GetItemAncestorAtLevel(item, "Study") if item else 0
    if study:
        hierarchy.SetItemAttribute(study, SLICERRT_DOSE_UNIT_NAME_ATTRIBUTE, "GY")
        hierarchy.SetItemAttribute(study, SLICERRT_DOSE_UNIT_VALUE_ATTRIBUTE, "1.0")


# ---------------------------------------------------------------------------------------------
# tables


def _new_table(scene, name: str):
    table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    if hasattr(table_node, "SetUseColumnTitleAsColumnHeader"):
        table_node.SetUseColumnTitleAsColumnHeader(True)  # show "Mean dose" rather than dose_mean_gy
    return table_node


def add_column(
    table_node, name: str, values: Sequence, title: str = "", unit: str = "", description: str = "", text: bool | None = None
) -> None:
    """Append a column: text (vtkStringArray, None → "") or numbers (vtkDoubleArray, None → NaN).

    ``text=None`` makes a text column when every value is a string.
    """
    if text is None:
        text = bool(values) and all(isinstance(v, str) for v in values)
    if text:
        array = vtk.vtkStringArray()
        for v in values:
            array.InsertNextValue("" if v is None else str(v))
    else:
        array = vtk.vtkDoubleArray()
        for v in values:
            array.InsertNextValue(float("nan") if v is None else float(v))
    array.SetName(name)
    table_node.AddColumn(array)
    if title:
        table_node.SetColumnTitle(name, title)
    if unit:
        table_node.SetColumnUnitLabel(name, unit)
    if description:
        table_node.SetColumnDescription(name, description)


def summary_table(scene, segments, name: str, table_node=None):
    """Table node with one row per segment summary (``SegmentSummary``); column names are the field names.

    ``table_node``: an existing output table to refill instead of a new one.
    """
    if table_node is None:
        table_node = _new_table(scene, name)
    else:
        table_node.RemoveAllColumns()
    table_node.SetAttribute(ATTRIBUTE_PREFIX + "Table", "dose_summary")
    for column, title, unit, description in SUMMARY_COLUMNS:
        values = [getattr(s, column) for s in segments]
        if column != "name" and all(v is None for v in values):
            continue  # no BED columns without radiobiology
        add_column(table_node, column, values, title, unit, description)
    return table_node


def rows_table(scene, name: str, header: Sequence[str], rows: Sequence[Sequence], kind: str = ""):
    """Table node from a header and rows (text columns stay text, the others become numbers; None → NaN)."""
    table_node = _new_table(scene, name)
    if kind:
        table_node.SetAttribute(ATTRIBUTE_PREFIX + "Table", kind)
    for c, column in enumerate(header):
        values = [row[c] for row in rows]
        if any(isinstance(v, str) for v in values):
            values = ["" if v is None else str(v) for v in values]
        add_column(table_node, column, values)
    return table_node


def cell_value(array, r: int) -> float | str:
    """A table cell as float (numeric arrays) or str (text arrays, and variant arrays as Slicer's CSV reader makes)."""
    if array.IsA("vtkDataArray"):
        return float(array.GetTuple1(r))
    value = array.GetValue(r)
    return value if isinstance(value, str) else value.ToString()


def table_rows(table_node) -> list[dict]:
    """The rows of a table node as dictionaries (numbers as float, text as str)."""
    table = table_node.GetTable()
    columns = [table.GetColumn(c) for c in range(table.GetNumberOfColumns())]
    return [{c.GetName(): cell_value(c, r) for c in columns} for r in range(table.GetNumberOfRows())]


def text_node(scene, name: str, data: dict):
    """A text node holding ``data`` as indented JSON (saved with the scene as a .txt file)."""
    slicer = slicer_module()
    node = scene.AddNewNodeByClass("vtkMRMLTextNode", name)
    node.SetForceCreateStorageNode(slicer.vtkMRMLTextNode.CreateStorageNodeAlways)
    node.SetText(json.dumps(data, indent=2, allow_nan=False, default=str))
    node.SetAttribute(ATTRIBUTE_PREFIX + "Format", "json")
    return node


# ---------------------------------------------------------------------------------------------
# DVH


def dvh_plot_nodes(
    scene,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    name: str = "DVH",
    quantity: str = "Dose",
    units: str = "Gy",
    y_title: str = "Volume (%)",
    colors: Mapping[str, tuple[float, float, float]] | None = None,
):
    """Table + plot series + chart showing cumulative DVH curves in Slicer's plot view.

    ``curves`` maps a structure name to ``(levels, volume)`` arrays (e.g. Gy and % of the structure).
    All curves go into one table with a level column and a volume column per structure; curves of
    different lengths are padded by repeating their last point (which draws nothing new). Returns
    ``(table_node, chart_node, series_nodes)``.
    """
    slicer = slicer_module()
    if not curves:
        raise SIRTInputError("no DVH curves to plot")
    checked = {}
    for structure, (x, y) in curves.items():
        x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
        if x.size == 0 or x.size != y.size:
            raise SIRTInputError(f"DVH of {structure!r}: levels and volumes must be non-empty and of equal length")
        checked[structure] = (x, y)
    n = max(x.size for x, _ in checked.values())
    table_node = _new_table(scene, f"{name} table")
    table_node.SetAttribute(ATTRIBUTE_PREFIX + "Table", "dvh")
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", f"{name} chart")
    chart.SetTitle(name)
    chart.SetXAxisTitle(f"{quantity} ({units})")
    chart.SetYAxisTitle(y_title)
    chart.SetLegendVisibility(True)
    palette = [colorsys.hsv_to_rgb((0.08 + i * 0.618034) % 1.0, 0.7, 0.85) for i in range(len(checked))]
    series_nodes = []
    for index, (structure, (x, y)) in enumerate(checked.items()):
        x_name, y_name = f"{structure} {quantity.lower()} ({units})", f"{structure} volume"
        pad = n - x.size
        add_column(table_node, x_name, np.concatenate([x, np.full(pad, x[-1])]).tolist(), unit=units)
        add_column(table_node, y_name, np.concatenate([y, np.full(pad, y[-1])]).tolist())
        series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", structure)  # the legend shows this name
        series.SetAndObserveTableNodeID(table_node.GetID())
        series.SetXColumnName(x_name)
        series.SetYColumnName(y_name)
        series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
        series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleNone)
        series.SetLineWidth(2)
        series.SetColor(*(colors or {}).get(structure, palette[index]))
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
        series_nodes.append(series)
    return table_node, chart, series_nodes


def show_in_slice_views(scene, background_node, foreground_node, opacity: float = 0.5, layouts=("Red", "Yellow", "Green")) -> None:
    """Background/foreground volumes of the slice views, stored in the scene (used for saved scenes;
    inside Slicer use ``slicer.util.setSliceViewerLayers``)."""
    slicer = slicer_module()
    for layout in layouts:
        composite = None
        nodes = scene.GetNodesByClass("vtkMRMLSliceCompositeNode")
        for i in range(nodes.GetNumberOfItems()):
            if nodes.GetItemAsObject(i).GetLayoutName() == layout:
                composite = nodes.GetItemAsObject(i)
        if composite is None:
            composite = slicer.vtkMRMLSliceCompositeNode()
            composite.SetLayoutName(layout)
            composite.SetSingletonTag(layout)
            scene.AddNode(composite)
        composite.SetBackgroundVolumeID(background_node.GetID() if background_node else None)
        composite.SetForegroundVolumeID(foreground_node.GetID() if foreground_node else None)
        composite.SetForegroundOpacity(opacity)


def show_layout_with_plot_and_table(scene, chart_node=None, table_node=None) -> None:
    """Four-up layout with a plot and a table view showing ``chart_node`` and ``table_node``, stored in
    the scene (layout and view nodes are singletons that Slicer takes over when it opens the scene;
    inside Slicer use the Plots logic's ``ShowChartInLayout`` instead)."""
    slicer = slicer_module()
    layout_logic = slicer.vtkMRMLLayoutLogic()
    layout_logic.SetMRMLScene(scene)  # creates the layout node and the view nodes the layout needs
    layout_logic.GetLayoutNode().SetViewArrangement(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpPlotTableView)
    if chart_node is not None:
        plot_view = scene.GetFirstNodeByClass("vtkMRMLPlotViewNode")
        if plot_view is not None:
            plot_view.SetPlotChartNodeID(chart_node.GetID())
    if table_node is not None:
        table_view = scene.GetFirstNodeByClass("vtkMRMLTableViewNode")
        if table_view is not None:
            table_view.SetTableNodeID(table_node.GetID())
    layout_logic.SetMRMLScene(None)
