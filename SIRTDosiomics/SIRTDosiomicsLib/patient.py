"""One patient of a cohort, in a worker: read everything once, compute the dose once, plan the extraction tasks.

Without a ``dose`` image the dose map is computed with ``SIRTDosimetryLib.dose.engine.compute_dose``
(LDM by default) from the activity image (``spect``, or ``pet`` when there is no SPECT): relative
calibration when ``administered_activity_gbq`` is given, absolute otherwise (``units`` and, for
counts, camera factor and acquisition duration). BED maps are computed per structure from the dose
map with the preset's LQ parameters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from SIRTDosimetryLib.errors import error_line

from . import naming
from .manifest import PatientSpec, StudySpec
from .masks import StructureMask, combine_structures, grid_key, masks_from_segmentation
from .presets import Preset


@dataclass
class Prepared:
    patient_id: str
    row: dict[str, Any]  # id, clinical and DVC columns
    feature_sets: dict  # prefix -> extract.FeatureSetInfo
    tasks: list  # extract.Task
    seconds: float
    notes: list[str] = field(default_factory=list)


def study_dose_parameters(dosimetry: dict, activity_units: str | None, segments: tuple[str, ...]):
    """The study's dose parameters through the dosimetry module's one builder.

    ``partial_voxels`` stays "fraction": the DVCs use fractional weights and the masks take the majority of them.
    """
    from SIRTDosimetryLib.dose.parameters import build_dose_parameters

    keys = ("administered_activity_gbq", "calibration_voi", "lung_shunt_fraction", "residual_fraction", "lungs_in_voi",
            "camera_factor_cps_per_mbq", "acquisition_duration_s", "administration_time", "scan_time", "method",
            "kernel", "radionuclide", "half_life_h", "density_g_per_ml", "clamp_negative")
    values = {k: dosimetry[k] for k in keys if k in dosimetry}
    return build_dose_parameters(dosimetry.get("calibration"), units=activity_units, segments=segments, **values)


def _prepare_study(planner, row: dict, notes: list[str], study: StudySpec, preset: Preset) -> None:
    import numpy as np
    import SimpleITK as sitk
    from SIRTDosimetryLib.dose.engine import compute_dose
    from SIRTDosimetryLib.errors import SIRTInputError
    from SIRTDosimetryLib.io.segmentations import read_segmentation
    from SIRTDosimetryLib.io.volumes import (
        CONCENTRATION_UNITS_TO_BQ_PER_ML,
        check_units,
        read_activity_image,
        read_image,
    )
    from SIRTDosimetryLib.nuclides import radionuclide

    from . import dvc
    from .extract import bed_functions

    source = study.source
    structures = {s: () for s in preset.structures}
    structures.update(study.structures)
    for s, names in structures.items():
        if not names:
            structures[s] = ()
    images = study.images
    activity_kind = study.dosimetry.get("activity_image") or ("spect" if "spect" in images else "pet" if "pet" in images else None)
    if activity_kind is not None and activity_kind not in images:
        activity_kind = None
    kinds = [k for k in ("ct", "spect", "pet") if k in images]
    has_dose = "dose" in images or activity_kind is not None
    if has_dose:
        kinds += ["dose", "bed"]
    kinds = [k for k in kinds if k in preset.images]

    # Unreadable inputs and bad dosimetry parameters are the patient's failure (reported, not cached);
    # what concerns one structure or one image stays in the row as <prefix>_error.
    segmentation = read_segmentation(study.segmentation)

    named = {s: names for s, names in structures.items() if names}

    def canonical(by_structure):
        out = {}
        for s, names in by_structure.items():
            out[s] = tuple(segmentation.segment(n).name for n in names)
        return out

    grid_masks: dict[tuple, dict[str, StructureMask]] = {}

    def masks_on(image) -> dict[str, StructureMask]:
        key = grid_key(image)
        if key not in grid_masks:
            masks = masks_from_segmentation(segmentation, image, named, preset.mask_mode)
            grid_masks[key] = _with_unnamed(masks)
        return grid_masks[key]

    def _with_unnamed(masks):
        out = {}
        for s in structures:
            out[s] = masks.get(s) or StructureMask(None, f"no segment named for structure {s!r} in the manifest")
        return out

    loaded: dict[str, Any] = {}
    activity = None
    for kind in ("ct", "spect", "pet"):
        if kind not in images:
            continue
        if kind == activity_kind:
            activity = read_activity_image(images[kind], study.dosimetry.get("units"))
            image, units = activity.image, activity.units
        else:
            image = read_image(images[kind])
            units = check_units(study.dosimetry.get("units")) if kind == "pet" else None
        if kind == "pet" and units in CONCENTRATION_UNITS_TO_BQ_PER_ML and CONCENTRATION_UNITS_TO_BQ_PER_ML[units] != 1.0:
            image = image * CONCENTRATION_UNITS_TO_BQ_PER_ML[units]
        loaded[kind] = image

    dose_image = None
    dose_masks = None
    counts = None
    nuclide = radionuclide(study.dosimetry.get("radionuclide", "y90"), study.dosimetry.get("half_life_h"))
    if has_dose:
        if "dose" in images:
            dose_image = read_image(images["dose"])
            dose_masks = masks_on(dose_image)
            if activity is not None and grid_key(activity.image) == grid_key(dose_image):
                counts = sitk.GetArrayViewFromImage(activity.image)
        else:
            segment_names = tuple(dict.fromkeys(n for names in named.values() for n in names))
            params = study_dose_parameters(study.dosimetry, activity.units, segment_names)
            try:
                result = compute_dose(activity, segmentation, params)
            except SIRTInputError:
                # A structure that cannot be mapped (absent, empty, outside) must not stop the others:
                # find it, and compute the dose without it. Any other error is the patient's.
                masks = masks_on(activity.image)
                good = tuple(dict.fromkeys(n for s, names in named.items() if masks[s].error is None for n in names))
                if good == segment_names:
                    raise
                result = compute_dose(activity, segmentation, replace(params, segments=good))
            else:
                if preset.mask_mode == "majority":  # reuse the dose engine's fraction weights: no second mapping
                    weights = {k: v.weights for k, v in result.structures.items()}
                    grid_masks[grid_key(activity.image)] = _with_unnamed(
                        combine_structures(canonical(named), weights, {}, preset.mask_mode)
                    )
            dose_image = result.dose_gy
            notes += [f"{source}: {w}" for w in result.warnings]
            dose_masks = masks_on(activity.image)
            counts = sitk.GetArrayViewFromImage(activity.image)

    if dose_image is not None:
        ok = dict(dose_masks)
        if "dose" in kinds:
            planner.add_image(source, "dose", dose_image, ok)
        bed_f = bed_functions(preset, structures, nuclide.half_life_h)
        if "bed" in kinds:
            bed_masks = {
                s: (m if s in bed_f else StructureMask(None, f"no LQ parameters for structure {s!r} in the preset (lq)"))
                for s, m in ok.items()
            }
            planner.add_image(source, "bed", dose_image, bed_masks, transform=bed_f, lq_maps=bed_f)
        # Dose-volume constraints from the dosimetry module.
        try:
            dose_array = sitk.GetArrayViewFromImage(dose_image)
            weights = {s: m.weights for s, m in ok.items() if m.error is None and m.weights is not None and m.weights.any()}
            bed_maps = {s: bed_f[s](dose_array) for s in weights if s in bed_f}
            if counts is not None and np.shape(counts) != dose_array.shape:
                counts = None
            lsf = study.dosimetry.get("lung_shunt_fraction")
            columns, warnings = dvc.dose_volume_columns(
                source, dose_array, weights, float(np.prod(dose_image.GetSpacing())) / 1000.0, bed_gy=bed_maps or None, counts=counts,
                lung_shunt_fraction=lsf, injected_activity_gbq=study.dosimetry.get("administered_activity_gbq"),
            )
            row.update(columns)
            if warnings:
                row[naming.dvc_status_column(source, "warning")] = "; ".join(warnings)
        except Exception as exc:
            row[naming.dvc_status_column(source, "error")] = f"dose-volume constraints: {error_line(exc)}"

    for kind in ("spect", "pet", "ct"):
        if kind in loaded and kind in kinds:
            planner.add_image(source, kind, loaded[kind], masks_on(loaded[kind]))


def prepare_patient(spec: PatientSpec, preset: Preset, sparse_mcc: bool = True) -> Prepared:
    """Read everything of one patient once and plan its extraction tasks (runs in a worker)."""
    from .extract import Planner

    start = time.perf_counter()
    planner = Planner(preset, spec.patient_id, sparse_mcc=sparse_mcc)
    row: dict[str, Any] = {naming.ID_COLUMN: spec.patient_id}
    row.update({naming.clinical_column(k): v for k, v in spec.clinical.items()})
    notes: list[str] = []
    for study in spec.studies.values():
        _prepare_study(planner, row, notes, study, preset)
    for task in planner.tasks:
        task.task_id = f"{spec.patient_id}|{task.task_id}"
    for info in planner.feature_sets.values():
        info.tasks = [f"{spec.patient_id}|{t}" for t in info.tasks]
    return Prepared(spec.patient_id, row, planner.feature_sets, planner.tasks, time.perf_counter() - start, notes)


def finish_row(prepared: Prepared, preset: Preset, results: dict) -> dict[str, Any]:
    from .extract import assemble

    row = dict(prepared.row)
    row.update(assemble(preset, prepared.feature_sets, results))
    return row
