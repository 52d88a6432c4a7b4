"""Results in view: a layout with the 3D and slice views, the DVH chart and the tables; the outputs of a
run in one subject-hierarchy folder under the input's study; a colour window at clinical dose levels.

Everything here works on MRML nodes only (no Qt), so it runs in Slicer and on the slicer-core wheel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

import numpy as np

from ._vtk import slicer_module, vtk

LAYOUT_ID = 5401
"""View arrangement id of the SlicerSIRT results layout (custom layouts use ids above 500)."""

LAYOUT_XML = """<layout type="vertical" split="true">
 <item splitSize="400">
  <layout type="horizontal">
   <item><view class="vtkMRMLViewNode" singletontag="1"><property name="viewlabel" action="default">1</property></view></item>
   <item><view class="vtkMRMLSliceNode" singletontag="Red"><property name="orientation" action="default">Axial</property><property name="viewlabel" action="default">R</property><property name="viewcolor" action="default">#F34A33</property></view></item>
  </layout>
 </item>
 <item splitSize="400">
  <layout type="horizontal">
   <item><view class="vtkMRMLSliceNode" singletontag="Yellow"><property name="orientation" action="default">Sagittal</property><property name="viewlabel" action="default">Y</property><property name="viewcolor" action="default">#EDD54C</property></view></item>
   <item><view class="vtkMRMLSliceNode" singletontag="Green"><property name="orientation" action="default">Coronal</property><property name="viewlabel" action="default">G</property><property name="viewcolor" action="default">#6EB04B</property></view></item>
  </layout>
 </item>
 <item splitSize="350">
  <layout type="horizontal">
   <item><view class="vtkMRMLPlotViewNode" singletontag="PlotView1"><property name="viewlabel" action="default">P</property></view></item>
   <item><view class="vtkMRMLTableViewNode" singletontag="TableView1"><property name="viewlabel" action="default">T</property></view></item>
  </layout>
 </item>
</layout>"""
"""3D and axial views, sagittal and coronal views, then the DVH chart beside the summary table (Slicer's
built-in "Four-Up Plot Table" arrangement has no 3D view)."""


def use_results_layout(layout_node) -> None:
    """Register the results layout with ``layout_node`` (once) and switch to it."""
    if not layout_node.IsLayoutDescription(LAYOUT_ID):
        layout_node.AddLayoutDescription(LAYOUT_ID, LAYOUT_XML)
    layout_node.SetViewArrangement(LAYOUT_ID)


def place_in_run_folder(scene, input_node, nodes: Iterable, name: str | None = None) -> int:
    """Put ``nodes`` in a new subject-hierarchy folder beside ``input_node`` (under its study, or its
    patient, or the scene); returns the folder's item ID. A folder left empty by the move (the nodes of an
    earlier run refilled by this one) is removed."""
    hierarchy = slicer_module().vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    scene_item = hierarchy.GetSceneItemID()
    input_item = hierarchy.GetItemByDataNode(input_node)
    parent = hierarchy.GetItemParent(input_item) if input_item else scene_item
    folder = hierarchy.CreateFolderItem(parent or scene_item, name or f"SIRT dose {datetime.now():%Y-%m-%d %H:%M:%S}")
    emptied = set()
    for node in nodes:
        if node is None:
            continue
        item = hierarchy.GetItemByDataNode(node)
        if item:
            old = hierarchy.GetItemParent(item)
            if old not in (scene_item, parent) and hierarchy.GetItemLevel(old) == "Folder":
                emptied.add(old)
            hierarchy.SetItemParent(item, folder)
        else:
            hierarchy.CreateItem(folder, node)
    for old in emptied:
        if not _children_with_nodes(hierarchy, old):
            hierarchy.RemoveItem(old, False, True)  # its items of removed nodes go with it; no node is removed
    return folder


def _children_with_nodes(hierarchy, item) -> list[int]:
    ids = vtk.vtkIdList()
    hierarchy.GetItemChildren(item, ids, True)
    nodes = [hierarchy.GetItemDataNode(ids.GetId(i)) for i in range(ids.GetNumberOfIds())]
    return [ids.GetId(i) for i, node in enumerate(nodes) if node is not None and node.GetScene() is not None]


def clinical_window_max_gy(dose: np.ndarray, tumour_weights: Iterable[np.ndarray], reference_gy: float = 0.0) -> float:
    """Top of the dose colour window: twice the reference tumour dose, so that the colour ramp's middle
    (green) is the reference and red is twice it, whatever the hottest voxel.

    ``reference_gy`` is the prescribed tumour dose when the user gives one (> 0); otherwise the mean dose
    over the tumour segments (``tumour_weights``: partial-voxel weights on the dose grid), else over all
    voxels with dose. Rounded up to a multiple of 10 Gy, at least 10 Gy.
    """
    if not reference_gy > 0:
        weights = sum((np.asarray(w, dtype=np.float64) for w in tumour_weights), np.zeros(dose.shape))
        weights = np.clip(weights, 0.0, 1.0)
        finite = np.isfinite(dose)
        if not (weights[finite] > 0).any():
            weights = (dose > 0) & finite
        total = float(np.sum(weights[finite]))
        reference_gy = float(np.sum(dose[finite] * weights[finite]) / total) if total > 0 else 5.0
    return max(10.0, 10.0 * math.ceil(2.0 * reference_gy / 10.0))
