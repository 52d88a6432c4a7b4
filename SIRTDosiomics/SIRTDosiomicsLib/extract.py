"""The wrapper over pyradiomics' ``RadiomicsFeatureExtractor``: one image, one structure mask, one preset.

Work is split so that it can run in parallel and nothing is done twice, while every number still
comes out of ``RadiomicsFeatureExtractor.execute`` with the same image, mask and settings a plain
pyradiomics call would use:

1. **Planning** (:class:`Planner`, in the process that read the images): for each (image,
   structure) the structure's mask on the image grid is cropped to its bounding box together with
   the image (pyradiomics crops to the same box itself, so the values do not change), the image
   values are clipped, and images that need resampling (CT) go through pyradiomics' own
   ``loadImage`` (normalisation, B-spline resampling) once per structure. What leaves the planner
   is a small :class:`Task`: two cropped arrays, their geometry and pyradiomics settings.
2. **Extraction** (:func:`run_task`, in a worker process): rebuild the two SimpleITK images and run
   ``execute`` with a subset of the feature classes. Each (image, structure) becomes two tasks,
   GLCM (by far the slowest class with fine dose bins: its MCC feature is O(Ng³)) and the other
   texture and first-order classes; shape depends on the mask and the voxel spacing only, so it is
   one task per structure and grid, shared by the dose, BED and SPECT images on that grid.
3. **Assembly** (:func:`assemble`): task results become named columns; a task that failed (empty,
   one-voxel or flat masks…) leaves NaN features and a ``<prefix>_error`` message.

Per-class splitting does not change values: pyradiomics computes each class independently from the
same cropped image and mask.

**Sparse MCC**: see ``sparse_mcc.py`` (bitwise-identical, much faster GLCM MCC for dose maps).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from SIRTDosimetryLib.errors import error_line

from . import naming
from .masks import StructureMask, grid_key, structure_masks, structure_segments
from .presets import (
    FEATURE_CLASSES,
    Preset,
    percentile_value,
    pyradiomics_settings,
)
from .sparse_mcc import enable_sparse_mcc

TEXTURE_GROUPS: dict[str, tuple[str, ...]] = {
    "glcm": ("glcm",),
    "texture": ("firstorder", "glrlm", "glszm", "gldm", "ngtdm"),
}
"""How the non-shape classes are split into tasks (GLCM alone: it dominates with many grey levels)."""

_LOADING_SETTINGS = ("resampledPixelSpacing", "normalize", "preCrop")


def _quiet_radiomics() -> None:
    import radiomics

    radiomics.setVerbosity(logging.ERROR)
    logging.getLogger("radiomics").setLevel(logging.ERROR)


def feature_names(feature_class: str) -> list[str]:
    """The non-deprecated features of a pyradiomics class (the ones it computes by default), sorted."""
    from radiomics import getFeatureClasses

    names = getFeatureClasses()[feature_class].getFeatureNames()
    return sorted(name for name, deprecated in names.items() if not deprecated)


def expected_columns(preset: Preset) -> list[tuple[str, str]]:
    """(class, feature) pairs one structure gets with ``preset``, in column order (107 by default)."""
    pairs = [(cls, name) for cls in FEATURE_CLASSES if cls in preset.classes for name in feature_names(cls)]
    if preset.shape2d:
        pairs += [("shape2D", name) for name in feature_names("shape2D")]
    return pairs


# ---------------------------------------------------------------------------------------------
# Tasks and their execution (worker side)


@dataclass
class Crop:
    """A cropped image and mask (z, y, x) with their geometry; ``image`` None means zeros (shape only)."""

    mask: np.ndarray  # uint8, 1 inside
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    image: np.ndarray | None = None  # float64

    def to_sitk(self) -> tuple[sitk.Image, sitk.Image]:
        values = self.image if self.image is not None else np.zeros(self.mask.shape, dtype=np.float64)
        image = sitk.GetImageFromArray(values)
        mask = sitk.GetImageFromArray(self.mask)
        for im in (image, mask):
            im.SetSpacing(self.spacing)
            im.SetOrigin(self.origin)
            im.SetDirection(self.direction)
        return image, mask

    @classmethod
    def from_sitk(cls, image: sitk.Image | None, mask: sitk.Image) -> Crop:
        return cls(
            mask=sitk.GetArrayFromImage(mask).astype(np.uint8),
            spacing=tuple(mask.GetSpacing()),
            origin=tuple(mask.GetOrigin()),
            direction=tuple(mask.GetDirection()),
            image=None if image is None else sitk.GetArrayFromImage(image).astype(np.float64),
        )


@dataclass
class Task:
    """One pyradiomics call: a crop, the classes to compute and the settings."""

    task_id: str
    part: str  # "shape", "glcm" or "texture"
    crop: Crop
    settings: dict
    classes: dict[str, list]  # pyradiomics enabledFeatures, e.g. {"glcm": []}
    targets: tuple[str, ...]  # feature-set prefixes the values belong to
    shape2d: bool = False
    cost: float = 0.0  # estimated seconds, for longest-first scheduling
    sparse_mcc: bool = True  # bitwise-identical fast MCC (see enable_sparse_mcc)


@dataclass
class TaskResult:
    task_id: str
    values: dict[str, float]  # "<class>_<feature>" -> value
    error: str | None
    seconds: float


_EXTRACTORS: dict[str, Any] = {}


def _extractor(settings: dict, classes: dict[str, list]):
    import json

    from radiomics import featureextractor

    key = json.dumps([settings, classes], sort_keys=True, default=str)
    if key not in _EXTRACTORS:
        _quiet_radiomics()
        extractor = featureextractor.RadiomicsFeatureExtractor(**settings)
        extractor.disableAllFeatures()
        extractor.enableFeaturesByName(**{cls: list(names) for cls, names in classes.items()})
        _EXTRACTORS[key] = extractor
    return _EXTRACTORS[key]


def _largest_slice(image: sitk.Image, mask: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
    """The axial (z) slice with most mask voxels as 2D images (pyradiomics' shape2D needs one slice)."""
    mask_array = sitk.GetArrayViewFromImage(mask)
    z = int(np.argmax(mask_array.reshape(mask_array.shape[0], -1).sum(axis=1)))
    spacing = image.GetSpacing()[:2]
    out = []
    for im in (image, mask):
        slice_2d = sitk.GetImageFromArray(sitk.GetArrayViewFromImage(im)[z])
        slice_2d.SetSpacing(spacing)
        out.append(slice_2d)
    return out[0], out[1]


def extract_values(image: sitk.Image, mask: sitk.Image, settings: dict, classes: dict[str, list]) -> dict[str, float]:
    """``execute`` pyradiomics on one image/mask; returns ``{"<class>_<feature>": value}``."""
    extractor = _extractor(settings, classes)
    out = extractor.execute(image, mask)
    values = {}
    for key, value in out.items():
        if key.startswith("diagnostics_"):
            continue
        cls, name = naming.from_pyradiomics(key)
        values[f"{cls}_{name}"] = float(value)
    return values


def run_task(task: Task) -> TaskResult:
    """Run one task; never raises for a bad mask or image: the message goes into ``error``."""
    start = time.perf_counter()
    try:
        if "glcm" in task.classes:
            enable_sparse_mcc(task.sparse_mcc)
        image, mask = task.crop.to_sitk()
        values = {}
        shape3d = {k: v for k, v in task.classes.items() if k != "shape2D"}
        errors = []
        if shape3d:
            values.update(extract_values(image, mask, task.settings, shape3d))
        if task.shape2d:
            try:
                image2d, mask2d = _largest_slice(image, mask)
                settings2d = {k: v for k, v in task.settings.items() if k not in _LOADING_SETTINGS}
                values.update(extract_values(image2d, mask2d, settings2d, {"shape2D": []}))
            except Exception as exc:  # the 3D classes can still be fine
                errors.append(f"shape2D: {error_line(exc)}")
        error = "; ".join(errors) or None
    except Exception as exc:  # pyradiomics raises ValueError/AssertionError/... for degenerate input
        values, error = {}, f"{task.part}: {error_line(exc)}"
    return TaskResult(task.task_id, values, error, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# Planning (reader side)


@dataclass
class FeatureSetInfo:
    """What is known of one (source, image, structure) feature set before extraction."""

    prefix: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    diagnostics: dict[str, float] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)


def _bbox(mask: np.ndarray) -> tuple[slice, slice, slice]:
    slices = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        nonzero = np.flatnonzero(mask.any(axis=other))
        slices.append(slice(int(nonzero[0]), int(nonzero[-1]) + 1))
    return tuple(slices)


def _glcm_cost(grey_levels: int, voxels: int) -> float:
    # MCC builds Ng x Ng x 13 products Ng times; measured ~2.5e-8 s per Ng^3 on one core.
    return 2.5e-8 * grey_levels**3 + 2e-6 * voxels + 0.05


class Planner:
    """Turns images and structure masks into tasks and per-feature-set bookkeeping for one patient."""

    def __init__(self, preset: Preset, patient_id: str = "", sparse_mcc: bool = True):
        self.preset = preset
        self.patient_id = patient_id
        self.sparse_mcc = sparse_mcc
        self.tasks: list[Task] = []
        self.feature_sets: dict[str, FeatureSetInfo] = {}
        self._shape_tasks: dict[tuple, Task] = {}
        self._counter = 0

    def _next_id(self, part: str) -> str:
        self._counter += 1
        return f"{self.patient_id}#{self._counter}:{part}"

    def _clip_range(self, kind: str, source: str, structure: str, image_array: np.ndarray, cache: dict,
                     lq_map: Callable[[float], float] | None) -> tuple[float | None, float | None]:
        settings = self.preset.image(kind)
        high = settings.clip_high
        if isinstance(high, str) and high == "structure":
            value = self.preset.upper_gy_for(kind, source, structure)
            if value is None:
                raise ValueError(
                    f"no upper clip value for structure {structure!r} of {source} {kind} maps: name the structure tumour, "
                    "npl or wnl, add it to the preset's upper_gy table, or give one value (sirt features --clip-upper)"
                )
            if kind == "bed" and self.preset.bed_upper_gy == "lq" and lq_map is not None:
                value = float(lq_map(value))
            high = value
        elif isinstance(high, str):
            if "percentile" not in cache:
                cache["percentile"] = float(np.nanpercentile(image_array, percentile_value(high)))  # NaN outside structures is allowed
            high = cache["percentile"]
        return settings.clip_low, (None if high is None else float(high))

    def add_image(
        self,
        source: str,
        kind: str,
        image: sitk.Image,
        structures: dict[str, StructureMask],
        transform: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
        lq_maps: dict[str, Callable[[float], float]] | None = None,
    ) -> None:
        """Plan the feature sets of one image for every structure.

        ``structures`` maps a structure token to its mask on this image's grid. ``transform`` maps
        a structure to a voxel-wise function applied before clipping (the BED of that structure's
        LQ parameters); ``lq_maps`` the same function on scalars, for ``bed_upper_gy: lq``.
        """
        preset = self.preset
        settings_kind = preset.image(kind)
        needs_loading = settings_kind.resample_mm is not None or bool(preset.pyradiomics.get("normalize"))
        image_array = sitk.GetArrayViewFromImage(image)
        cache: dict = {}
        grid = ("resampled", source, kind) if needs_loading else grid_key(image)
        for structure, smask in structures.items():
            pfx = naming.prefix(source, kind, structure)
            info = self.feature_sets.setdefault(pfx, FeatureSetInfo(pfx))
            if smask.error is not None:
                info.errors.append(smask.error)
                continue
            mask = smask.mask
            if mask is None or not mask.any():
                info.errors.append(
                    f"structure has no voxel on the {kind} grid (mask rule: {preset.mask_mode}); it is smaller than a voxel "
                    "or lies outside the image"
                )
                continue
            try:
                f = (transform or {}).get(structure)
                clip = self._clip_range(kind, source, structure, image_array, cache, (lq_maps or {}).get(structure))
                settings = pyradiomics_settings(preset, kind, clip)
                if needs_loading:
                    crop = self._load_and_crop(image, mask, settings, f)
                    settings = {k: v for k, v in settings.items() if k not in _LOADING_SETTINGS}
                else:
                    box = _bbox(mask)
                    values = np.asarray(image_array[box], dtype=np.float64)
                    if f is not None:
                        values = np.asarray(f(values), dtype=np.float64)
                    corner = image.TransformIndexToPhysicalPoint([int(box[2].start), int(box[1].start), int(box[0].start)])
                    crop = Crop(
                        mask=mask[box].astype(np.uint8), spacing=tuple(image.GetSpacing()), origin=tuple(corner),
                        direction=tuple(image.GetDirection()), image=values,
                    )
                    settings = {k: v for k, v in settings.items() if k != "resampledPixelSpacing"}
                if settings_kind.range_mode == "clip" and any(v is not None for v in clip):
                    crop.image = np.clip(crop.image, clip[0] if clip[0] is not None else -np.inf,
                                         clip[1] if clip[1] is not None else np.inf)
            except Exception as exc:
                info.errors.append(error_line(exc))
                continue
            inside = crop.image[crop.mask > 0]
            voxels = int(inside.size)
            info.diagnostics.update(
                VoxelNum=float(voxels),
                ClipLow=float("nan") if clip[0] is None else float(clip[0]),
                ClipHigh=float("nan") if clip[1] is None else float(clip[1]),
            )
            if voxels == 0:
                info.errors.append("structure has no voxel left after loading/resampling")
                continue
            not_finite = int(np.count_nonzero(~np.isfinite(inside)))
            if not_finite:  # pyradiomics would bin NaN silently and return numbers that mean nothing
                hint = " (a BED map is NaN where it was computed without LQ parameters)" if kind == "bed" else ""
                info.errors.append(
                    f"{not_finite} of the structure's {voxels} voxels are not finite (NaN or infinite) in the {kind} image{hint}"
                )
                continue
            bins = np.floor(inside / settings["binWidth"])
            grey_levels = int(np.unique(bins).size)
            if grey_levels == 1:
                info.warnings.append(
                    f"no variance: all {voxels} voxels fall in one grey level ({float(inside.min()):.6g}"
                    f"{'' if inside.min() == inside.max() else '…' + format(float(inside.max()), '.6g')}); "
                    "texture features describe a flat region"
                )
            self._add_texture_tasks(info, crop, settings, voxels, grey_levels)
            self._add_shape_task(info, crop, settings, grid, source, structure, voxels)

    def _load_and_crop(self, image: sitk.Image, mask: np.ndarray, settings: dict, f) -> Crop:
        from radiomics.featureextractor import RadiomicsFeatureExtractor

        _quiet_radiomics()
        mask_image = sitk.GetImageFromArray(mask.astype(np.uint8))
        mask_image.CopyInformation(image)
        values = image
        if f is not None:
            values = sitk.GetImageFromArray(np.asarray(f(sitk.GetArrayViewFromImage(image)), dtype=np.float64))
            values.CopyInformation(image)
        loaded_image, loaded_mask = RadiomicsFeatureExtractor.loadImage(values, mask_image, None, **settings)
        crop = Crop.from_sitk(loaded_image, loaded_mask)
        crop.mask = (crop.mask == settings.get("label", 1)).astype(np.uint8)
        return crop

    def _add_texture_tasks(self, info: FeatureSetInfo, crop: Crop, settings: dict, voxels: int, grey_levels: int) -> None:
        for part, classes in TEXTURE_GROUPS.items():
            wanted = {c: [] for c in classes if c in self.preset.classes}
            if not wanted:
                continue
            cost = _glcm_cost(grey_levels, voxels) if part == "glcm" else 4e-6 * voxels + 0.1
            task = Task(self._next_id(part), part, crop, settings, wanted, (info.prefix,), cost=cost,
                        sparse_mcc=self.sparse_mcc)
            self.tasks.append(task)
            info.tasks.append(task.task_id)

    def _add_shape_task(self, info, crop, settings, grid, source, structure, voxels) -> None:
        if "shape" not in self.preset.classes and not self.preset.shape2d:
            return
        key = (grid, source, structure)
        # Shape reads the mask and the spacing only: bin width and resegmentation do not matter.
        shape_settings = {k: v for k, v in settings.items() if k not in ("resegmentRange", "binWidth", "binCount")}
        existing = self._shape_tasks.get(key)
        if existing is not None and existing.settings == shape_settings:
            existing.targets = (*existing.targets, info.prefix)
        else:
            shape_crop = Crop(crop.mask, crop.spacing, crop.origin, crop.direction, image=None)
            classes = {"shape": []} if "shape" in self.preset.classes else {}
            task = Task(self._next_id("shape"), "shape", shape_crop, shape_settings, classes, (info.prefix,),
                        shape2d=self.preset.shape2d, cost=5e-6 * voxels + 0.05)
            self._shape_tasks[key] = task
            self.tasks.append(task)
            existing = task
        info.tasks.append(existing.task_id)


def assemble(preset: Preset, feature_sets: dict[str, FeatureSetInfo], results: dict[str, TaskResult]) -> dict[str, Any]:
    """Columns for every planned feature set: 107 features (NaN if failed), error, warning, diagnostics."""
    columns = expected_columns(preset)
    row: dict[str, Any] = {}
    for pfx, info in feature_sets.items():
        values: dict[str, float] = {}
        errors = list(info.errors)
        for task_id in info.tasks:
            result = results.get(task_id)
            if result is None:
                errors.append("not computed (worker lost)")
                continue
            values.update(result.values)
            if result.error:
                errors.append(result.error)
        for cls, name in columns:
            row[f"{pfx}_{cls}_{name}"] = values.get(f"{cls}_{name}", math.nan)
        for name in ("VoxelNum", "ClipLow", "ClipHigh"):
            row[f"{pfx}_diagnostics_{name}"] = info.diagnostics.get(name, math.nan)
        row[f"{pfx}_error"] = "; ".join(dict.fromkeys(errors))
        row[f"{pfx}_warning"] = "; ".join(dict.fromkeys(info.warnings))
    return row


def run_serial(tasks: list[Task]) -> dict[str, TaskResult]:
    with one_blas_thread():
        return {t.task_id: run_task(t) for t in tasks}


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS/OpenMP to one thread in this process for the duration (threadpoolctl, when installed).

    pyradiomics' GLCM MCC calls ``numpy.linalg.eigvals`` on many small matrices; a multi-threaded
    BLAS (OpenBLAS uses every core by default) makes these calls many times slower, the more so on a
    busy machine (0.7 s → 13 s for two tumours of sample patient 1 on a loaded 2-core machine). The
    cohort's workers run with one thread (``SIRTDosimetryLib.parallel.single_threaded_children``); here, in the calling
    process (Slicer's, or ``sirt features --image``), the limit is set for the extraction only and restored
    afterwards. Values do not change.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # not bundled with every Slicer: run with the BLAS as it is
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=1)
    with limits:
        yield


# ---------------------------------------------------------------------------------------------
# Convenience API for one image


def lq_for(preset: Preset, structure: str):
    """The LQ parameters (``LQParameters``) the preset assigns to a structure, or None."""
    from SIRTDosimetryLib.dose.radiobiology import PRESETS, LQParameters

    spec = preset.lq.get(structure)
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ValueError(f"unknown LQ preset {spec!r} for {structure!r}; known: {', '.join(PRESETS)}")
        return PRESETS[spec]
    return LQParameters(float(spec[0]), float(spec[1]))


def bed_functions(preset: Preset, structures, half_life_h: float):
    """Per structure, the voxel-wise dose→BED function of its LQ parameters; structures without LQ are left out."""
    from SIRTDosimetryLib.dose.radiobiology import bed_gy

    out = {}
    for structure in structures:
        lq = lq_for(preset, structure)
        if lq is not None:
            out[structure] = (lambda values, lq=lq: bed_gy(values, lq, half_life_h))
    return out


def plan_image_features(planner: Planner, image: sitk.Image, masks: dict[str, StructureMask], kind: str, source: str,
                        half_life_h: float | None = None) -> None:
    """Add the feature sets of one image (float64, on the masks' grid) to ``planner``.

    ``kind`` and ``source`` are tokens (``naming.image_token``/``source_token``). A BED image is used as
    it is; ``half_life_h`` (default 90Y) only maps the clip values for ``bed_upper_gy: lq``.
    """
    from SIRTDosimetryLib.nuclides import Y90

    lq_maps = None
    if kind == "bed":
        lq_maps = bed_functions(planner.preset, masks, half_life_h or Y90.half_life_h)
    planner.add_image(source, kind, image, masks, lq_maps=lq_maps)


def extract_image_features(
    image: sitk.Image,
    segmentation,
    structures: dict[str, str | tuple[str, ...] | list[str]],
    kind: str,
    source: str,
    preset: Preset | None = None,
    half_life_h: float | None = None,
    sparse_mcc: bool = True,
) -> dict[str, Any]:
    """Features of one image for each structure, serially, as ``{column: value}``.

    ``segmentation`` is a :class:`SIRTDosimetryLib.io.segmentations.Segmentation` (or a dict of
    structure → boolean mask on the image grid); ``structures`` maps a structure role (``tumour``,
    ``npl``, ``wnl``…) to one or more segment names. For ``kind="bed"`` the image must already be
    a BED map (``half_life_h`` only matters for ``bed_upper_gy: lq``; default 90Y).

    The same three steps (:func:`structure_masks`, :func:`plan_image_features`, running the tasks
    and :func:`assemble`) are what ``SIRTDosiomicsLib.mrml`` runs on Slicer nodes.
    """
    from .presets import default_preset

    preset = preset or default_preset()
    kind = naming.image_token(kind)
    source = naming.source_token(source)
    image = sitk.Cast(image, sitk.sitkFloat64)
    masks = structure_masks(image, segmentation, structure_segments(structures), preset)
    planner = Planner(preset, sparse_mcc=sparse_mcc)
    plan_image_features(planner, image, masks, kind, source, half_life_h)
    return assemble(preset, planner.feature_sets, run_serial(planner.tasks))
