"""Scenes outside the Slicer application: set-up, loading files, saving and reading ``.mrb``/``.mrml``.

Inside Slicer, ``slicer.mrmlScene`` already has its logics; ``new_scene`` builds the equivalent
for batch use and tests with the slicer-core wheel: the colour, volumes and segmentations logics
(segments need the segmentations logic's converter rules) and the data I/O and cache managers that
reading a scene bundle needs. Keep the returned ``SceneContext`` alive as long as the scene: the
logics are not owned by the scene.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SIRTInputError
from ..io.writers import check_output_dir, staging_folder
from ._vtk import slicer_module

SCENE_FOLDER_SUFFIXES = ("_data", "_Private")
"""Folders written beside ``name.mrml``: ``name_data/`` (the nodes' files) and ``name_Private/`` (hidden nodes)."""


@dataclass
class SceneContext:
    scene: object
    logics: dict[str, object] = field(default_factory=dict)


def setup_scene(scene) -> dict[str, object]:
    """Attach the logics and I/O managers a bare ``vtkMRMLScene`` needs; returns the logics to keep alive."""
    slicer = slicer_module()
    if scene.GetCacheManager() is None:
        scene.SetCacheManager(slicer.vtkCacheManager())
    if scene.GetDataIOManager() is None:
        io_manager = slicer.vtkDataIOManager()
        io_manager.SetCacheManager(scene.GetCacheManager())
        scene.SetDataIOManager(io_manager)
    application = slicer.vtkMRMLApplicationLogic()
    application.SetMRMLScene(scene)
    colors = slicer.vtkMRMLColorLogic()
    colors.SetMRMLScene(scene)  # default colour tables (Grey, Labels, PET, ...), as in Slicer
    volumes = slicer.vtkSlicerVolumesLogic()
    volumes.SetMRMLApplicationLogic(application)
    volumes.SetMRMLScene(scene)
    segmentations = slicer.vtkSlicerSegmentationsModuleLogic()
    segmentations.SetMRMLApplicationLogic(application)
    segmentations.SetMRMLScene(scene)
    application.SetModuleLogic("Colors", colors)
    application.SetModuleLogic("Volumes", volumes)
    application.SetModuleLogic("Segmentations", segmentations)
    return {"application": application, "colors": colors, "volumes": volumes, "segmentations": segmentations}


def new_scene() -> SceneContext:
    """A ``vtkMRMLScene`` set up like Slicer's for volumes, segmentations, tables, plots and scene bundles."""
    scene = slicer_module().vtkMRMLScene()
    return SceneContext(scene, setup_scene(scene))


def _read_into_new_node(scene, path: str | Path, name: str | None, node_class: str, storage_class: str, what: str):
    """A new node of ``node_class`` read from ``path`` by a new ``storage_class`` node; nothing left on failure."""
    path = Path(path)
    if not path.exists():
        raise SIRTInputError(f"{what} file not found: {path}")
    node = scene.AddNewNodeByClass(node_class, name or _stem(path))
    storage = scene.AddNewNodeByClass(storage_class)
    storage.SetFileName(str(path))
    node.SetAndObserveStorageNodeID(storage.GetID())
    if not storage.ReadData(node):
        scene.RemoveNode(node)
        scene.RemoveNode(storage)
        raise SIRTInputError(f"cannot read {what} {path}")
    node.CreateDefaultDisplayNodes()
    return node


def load_volume(scene, path: str | Path, name: str | None = None):
    """Read a scalar volume file into a new node, as Slicer's "Add data" does (same reader, same voxel order)."""
    slicer = slicer_module()
    node = _read_into_new_node(scene, path, name, "vtkMRMLScalarVolumeNode", "vtkMRMLVolumeArchetypeStorageNode", "image")
    if isinstance(node.GetDisplayNode(), slicer.vtkMRMLScalarVolumeDisplayNode) and not node.GetDisplayNode().GetColorNodeID():
        node.GetDisplayNode().SetAndObserveColorNodeID("vtkMRMLColorTableNodeGrey")
    return node


def load_segmentation(scene, path: str | Path, name: str | None = None):
    """Read a ``.seg.nrrd`` (or other segmentation file Slicer reads) into a new segmentation node."""
    return _read_into_new_node(scene, path, name, "vtkMRMLSegmentationNode", "vtkMRMLSegmentationStorageNode", "segmentation")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".seg.nrrd", ".nii.gz", ".nrrd", ".nii", ".mha", ".mhd"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _messages(collection) -> str:
    if collection is None:
        return ""
    text = collection.GetAllMessagesAsString() if hasattr(collection, "GetAllMessagesAsString") else ""
    return f": {text.strip()}" if text and text.strip() else ""


def check_scene_path(path: str | Path, overwrite: bool = False, inputs=()) -> Path:
    """Refuse a scene path that cannot be used: wrong suffix, an existing scene (without ``overwrite``)
    or one of the ``inputs``. Cheap, so that a command line can check before it computes."""
    path = Path(path)
    if path.suffix.lower() not in (".mrb", ".mrml"):
        raise SIRTInputError(f"scene file must end in .mrb or .mrml, got {path.name!r}")
    # A .mrml scene replaces its data folders as a whole: an input inside them would be lost.
    replaced = [path] + ([path.with_name(path.stem + s) for s in SCENE_FOLDER_SUFFIXES] if path.suffix.lower() == ".mrml" else [])
    replaced = [p.resolve() for p in replaced]
    for source in inputs:
        if not source or not Path(source).exists():
            continue
        source = Path(source).resolve()
        if any(source == r or r in source.parents for r in replaced):
            raise SIRTInputError(f"scene {path} would overwrite the input {source}; choose another scene name")
    if path.exists() and not overwrite:
        raise SIRTInputError(f"scene {path} already exists; choose another name or allow overwriting")
    check_output_dir(path.parent, "scene folder")
    return path


def save_scene(scene, path: str | Path, overwrite: bool = False) -> Path:
    """Save ``scene`` with all its data as a ``.mrb`` bundle, or as ``name.mrml`` + ``name_data/`` folder
    (+ ``name_Private/``, where Slicer puts colour tables and other hidden nodes).

    The file is written under a temporary name and moved into place once complete, so a failed save
    leaves nothing behind; an existing file is replaced only with ``overwrite``. It is a copy: the
    scene keeps its own URL, root directory, storage nodes and file names.
    """
    slicer = slicer_module()
    path = check_scene_path(path, overwrite)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    messages = slicer.vtkMRMLMessageCollection()
    with _scene_file_state_kept(scene):
        if suffix == ".mrb":
            _save_mrb(scene, path, messages)
        else:
            _save_mrml(scene, path, overwrite)
    return path


class _scene_file_state_kept:
    """Saving points the scene and its storage nodes at the written files (and adds storage nodes to
    nodes that had none): put everything back afterwards, so that saving a copy, e.g. of Slicer's own
    scene in the self-test, leaves the user's scene as it was."""

    def __init__(self, scene):
        self.scene = scene

    def __enter__(self):
        self.root, self.url = self.scene.GetRootDirectory(), self.scene.GetURL()
        self.storage = {}
        nodes = self.scene.GetNodesByClass("vtkMRMLStorageNode")
        for i in range(nodes.GetNumberOfItems()):
            node = nodes.GetItemAsObject(i)
            self.storage[node.GetID()] = (node.GetFileName(), [node.GetNthFileName(k) for k in range(node.GetNumberOfFileNames())])
        self.storable = {}
        nodes = self.scene.GetNodesByClass("vtkMRMLStorableNode")
        for i in range(nodes.GetNumberOfItems()):
            node = nodes.GetItemAsObject(i)
            self.storable[node.GetID()] = node.GetStorageNodeID()
        return self

    def __exit__(self, *exc):
        nodes = self.scene.GetNodesByClass("vtkMRMLStorableNode")
        for i in range(nodes.GetNumberOfItems()):
            node = nodes.GetItemAsObject(i)
            before = self.storable.get(node.GetID())
            if node.GetStorageNodeID() != before:
                added = node.GetStorageNode()
                node.SetAndObserveStorageNodeID(before)
                if added is not None and added.GetID() not in self.storage:
                    self.scene.RemoveNode(added)
        nodes = self.scene.GetNodesByClass("vtkMRMLStorageNode")
        for i in range(nodes.GetNumberOfItems()):
            node = nodes.GetItemAsObject(i)
            if node.GetID() in self.storage:
                name, names = self.storage[node.GetID()]
                node.SetFileName(name)
                node.ResetFileNameList()
                for other in names:
                    node.AddFileName(other)
        self.scene.SetRootDirectory(self.root or "")
        self.scene.SetURL(self.url or "")
        return False


def _save_mrb(scene, path: Path, messages) -> None:
    """The bundle is assembled in a temporary folder under the scene's root directory: use a staging
    folder beside the target, and keep the final file name (it names the scene inside the bundle)."""
    staging = staging_folder(path.parent)
    try:
        scene.SetRootDirectory(str(staging))
        if not scene.WriteToMRB(str(staging / path.name), None, messages):
            raise SIRTInputError(f"cannot save the scene to {path}{_messages(messages)}")
        os.replace(staging / path.name, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _save_mrml(scene, path: Path, overwrite: bool) -> None:
    data_dir = path.with_name(path.stem + SCENE_FOLDER_SUFFIXES[0])
    if data_dir.exists() and not overwrite:
        raise SIRTInputError(f"scene data folder {data_dir} already exists; choose another name or allow overwriting")
    staging = staging_folder(path.parent)
    try:
        _write_storable_nodes(scene, staging, data_dir.name)
        scene.SetRootDirectory(str(path.parent))
        scene.SetURL(str(staging / path.name))
        if not scene.Commit(str(staging / path.name)):
            raise SIRTInputError(f"cannot write the scene file {path}")
        # Commit also writes "private" nodes (e.g. colour tables) into <name>_Private/: move everything.
        for item in sorted(staging.iterdir()):
            target = path.parent / item.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_storable_nodes(scene, staging: Path, data_folder: str) -> None:
    """Write every storable node with data to ``staging/data_folder`` and point its storage node there (relative)."""
    slicer = slicer_module()
    (staging / data_folder).mkdir()
    used: set[str] = set()
    nodes = scene.GetNodesByClass("vtkMRMLStorableNode")
    for i in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(i)
        if not node.GetSaveWithScene() or node.GetHideFromEditors():
            continue  # hidden nodes (colour tables, ...) are written by Commit into <name>_Private/
        if isinstance(node, slicer.vtkMRMLTextNode) and node.GetStorageNode() is None:
            continue  # short text is kept inside the scene file
        storage = node.GetStorageNode()
        if storage is None:
            if not node.AddDefaultStorageNode():
                continue
            storage = node.GetStorageNode()
        if storage is None:
            continue
        extension = storage.GetDefaultWriteFileExtension() or "dat"
        base = "".join(c if c.isalnum() or c in "-_." else "_" for c in node.GetName()) or node.GetID()
        name = f"{base}.{extension}"
        k = 1
        while name in used:
            k += 1
            name = f"{base}_{k}.{extension}"
        used.add(name)
        storage.SetFileName(str(staging / data_folder / name))
        if not storage.WriteData(node):
            raise SIRTInputError(f"cannot write the data of node {node.GetName()!r}")
        storage.SetFileName(f"{data_folder}/{name}")  # relative to the scene file


def read_scene(path: str | Path) -> SceneContext:
    """Read a ``.mrb`` or ``.mrml`` scene, with its data, into a new set-up scene."""
    slicer = slicer_module()
    path = Path(path)
    if not path.exists():
        raise SIRTInputError(f"scene file not found: {path}")
    context = new_scene()
    scene = context.scene
    messages = slicer.vtkMRMLMessageCollection()
    if path.suffix.lower() == ".mrb":
        ok = scene.ReadFromMRB(str(path), True, messages)
    else:
        scene.SetURL(str(path))
        scene.SetRootDirectory(str(path.parent))
        ok = scene.Connect()
    if not ok:
        raise SIRTInputError(f"cannot read the scene {path}{_messages(messages)}")
    return context
