"""Cohort extraction: a manifest of patients → one feature table (CSV and Parquet).

One row per patient: ``patient_id``, clinical columns, dose-volume constraints from the dosimetry
module, and dosiomic/radiomic features for every (source, image, structure). The work runs

- **locally in parallel** by default: a pool of ``spawn``-ed worker processes, one BLAS/OpenMP
  thread each (``workers`` processes, default: the CPUs this process may use);
- **on a Dask cluster** when given its scheduler address (``tcp://host:8786``); the workers must
  see the same file paths;
- **in this process** with ``workers=1``.

Each patient is first *prepared* in a worker (read images and segmentation once, compute the dose
map once, map the segments once per image grid, crop; see ``extract.Planner``), which yields small
extraction tasks that are scheduled longest first. When a patient's last task is done its row is
written to the cache folder as ``<patient>-<key>.json``, ``key`` being a SHA-256 of the input files'
contents, the patient's manifest entry, the preset and the software versions: a rerun skips the
patients already done. A patient that fails (unreadable file, bad calibration…) gets a
``patient_error`` and is not cached; the others go on. Failures that concern one image and one
structure (empty, one-voxel or outside masks, flat images) stay inside the row as
``<prefix>_error`` / ``<prefix>_warning`` columns.

Manifest (CSV: one row per patient; YAML: a list ``patients:`` with optional ``defaults:``)::

    patient_id,maa_spect,maa_segmentation,maa_administered_activity_gbq,maa_lung_shunt_fraction,tumour,npl,wnl,clinical_age
    P01,P01/maa_spect.nrrd,P01/maa.seg.nrrd,2.1,0.05,Tumor 1|Tumor 2,perfused normal,whole liver normal,64

Keys: ``<source>_<field>`` with source ``maa`` or ``y90`` and field an image (``ct``, ``spect``,
``pet``, ``dose``), ``segmentation``, a structure (``tumour``, ``npl``, ``wnl``, ``structure_<name>``;
several segments separated by ``|``) or a dosimetry parameter (:data:`DOSIMETRY_FIELDS`);
structures without a source prefix apply to both sources; ``clinical_<name>`` for clinical values.
Relative paths are relative to the manifest's folder. YAML may nest the same keys::

    defaults: {structures: {npl: perfused normal, wnl: whole liver normal}}
    patients:
      - patient_id: P01
        clinical: {age: 64, child_pugh: A}
        structures: {tumour: [Tumor 1, Tumor 2]}
        maa: {spect: P01/maa_spect.nrrd, segmentation: P01/maa.seg.nrrd, administered_activity_gbq: 2.1}
        y90: {spect: P01/y90_spect.nrrd, segmentation: P01/y90.seg.nrrd, administered_activity_gbq: 2.3}

Without a ``dose`` image the dose map is computed with ``SIRTDosimetryLib.dose.engine.compute_dose``
(LDM by default) from the activity image (``spect``, or ``pet`` when there is no SPECT): relative
calibration when ``administered_activity_gbq`` is given, absolute otherwise (``units`` and, for
counts, camera factor and acquisition duration). BED maps are computed per structure from the dose
map with the preset's LQ parameters.
"""

from __future__ import annotations

import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool
import contextlib
import csv
import hashlib
import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import naming
from .presets import Preset, load_preset

CACHE_SCHEMA = "slicer-sirt/dosiomics-cache/1"
TABLE_SCHEMA = "slicer-sirt/features/1"
IMAGE_FIELDS: tuple[str, ...] = ("ct", "spect", "pet", "dose")


def _to_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y"):
        return True
    if text in ("0", "false", "no", "n"):
        return False
    raise ValueError(f"{value!r} is not true/false")


def _to_datetime(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())


def _to_names(value) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value).split("|") if part.strip())


DOSIMETRY_FIELDS: dict[str, Callable[[Any], Any]] = {
    "calibration": lambda v: str(v).strip().lower(),  # absolute | relative (default: relative when an activity is given)
    "administered_activity_gbq": float,
    "lung_shunt_fraction": float,
    "residual_fraction": float,
    "calibration_voi": _to_names,
    "lungs_in_voi": _to_bool,
    "units": lambda v: str(v).strip(),
    "camera_factor_cps_per_mbq": float,
    "acquisition_duration_s": float,
    "administration_time": _to_datetime,
    "scan_time": _to_datetime,
    "method": lambda v: str(v).strip().lower(),
    "kernel": lambda v: str(v).strip().lower(),
    "radionuclide": lambda v: str(v).strip().lower(),
    "half_life_h": float,
    "density_g_per_ml": float,
    "clamp_negative": _to_bool,
    "activity_image": lambda v: str(v).strip().lower(),  # spect | pet: which image the dose is computed from
}
"""Per-source dosimetry keys of the manifest and how their values are read."""


@dataclass(frozen=True)
class StudySpec:
    """One source (MAA or 90Y) of a patient: images, segmentation, dosimetry parameters, structures."""

    source: str
    segmentation: str | None
    images: dict[str, str]
    dosimetry: dict[str, Any]
    structures: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class PatientSpec:
    patient_id: str
    studies: dict[str, StudySpec]
    clinical: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        from SIRTDosimetryLib.provenance import to_jsonable

        return to_jsonable(self)


class ManifestError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------
# Manifest


def _empty(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def _flatten(record: dict) -> dict:
    """Nested YAML entries (``clinical:``, ``structures:``, ``maa: {...}``) to flat manifest keys."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        key = str(key).strip()
        lower = key.lower()
        if lower == "clinical" and isinstance(value, dict):
            flat.update({f"clinical_{k}": v for k, v in value.items()})
        elif lower == "structures" and isinstance(value, dict):
            flat.update({f"structure_{k}": v for k, v in value.items()})
        elif isinstance(value, dict) and lower in naming.SOURCE_ALIASES:
            source = naming.SOURCE_ALIASES[lower]
            for k, v in value.items():
                if str(k).lower() == "structures" and isinstance(v, dict):
                    flat.update({f"{source}_structure_{role}": names for role, names in v.items()})
                else:
                    flat[f"{source}_{k}"] = v
        else:
            flat[key] = value
    return flat


def _structure_key(key: str) -> str | None:
    """``tumour``/``npl``/``wnl``/``tumor``/``structure_<name>`` → structure token; None otherwise."""
    lower = key.lower()
    if lower.startswith("structure_"):
        return naming.structure_token(key[len("structure_") :])
    token = naming.STRUCTURE_ALIASES.get(lower, lower)
    return token if token in naming.STANDARD_STRUCTURES else None


def patient_from_record(record: dict, base_dir: Path | str = ".", defaults: dict | None = None) -> PatientSpec:
    """One manifest entry (flat or nested) → :class:`PatientSpec`; paths resolved against ``base_dir``."""
    merged = _flatten(defaults or {})
    merged.update({k: v for k, v in _flatten(record).items() if not _empty(v)})
    base_dir = Path(base_dir)
    patient_id = merged.pop("patient_id", None)
    if _empty(patient_id):
        raise ManifestError(f"a manifest entry has no patient_id: {record!r}")
    patient_id = str(patient_id).strip()
    where = f"patient {patient_id!r}"
    clinical: dict[str, Any] = {}
    shared: dict[str, tuple[str, ...]] = {}
    per_source: dict[str, dict[str, Any]] = {}
    unknown = []
    for key, value in merged.items():
        if _empty(value):
            continue
        if key.lower().startswith(naming.CLINICAL_PREFIX):
            clinical[key[len(naming.CLINICAL_PREFIX) :]] = value
            continue
        role = _structure_key(key)
        if role is not None:
            shared[role] = _to_names(value)
            continue
        head, _, rest = key.partition("_")
        source = naming.SOURCE_ALIASES.get(head.lower())
        if source is None or not rest:
            unknown.append(key)
            continue
        entry = per_source.setdefault(source, {"images": {}, "dosimetry": {}, "structures": {}, "segmentation": None})
        field_name = rest.lower()
        role = _structure_key(rest)
        try:
            if field_name in IMAGE_FIELDS:
                entry["images"][field_name] = str((base_dir / str(value).strip()).resolve())
            elif field_name == "segmentation":
                entry["segmentation"] = str((base_dir / str(value).strip()).resolve())
            elif field_name in DOSIMETRY_FIELDS:
                entry["dosimetry"][field_name] = DOSIMETRY_FIELDS[field_name](value)
            elif role is not None:
                entry["structures"][role] = _to_names(value)
            else:
                unknown.append(key)
        except (TypeError, ValueError) as exc:
            raise ManifestError(f"{where}: {key} = {value!r}: {exc}") from None
    if unknown:
        raise ManifestError(
            f"{where}: unknown manifest keys {sorted(unknown)}; use patient_id, clinical_<name>, tumour/npl/wnl/"
            f"structure_<name>, or <maa|y90>_<field> with field in {', '.join((*IMAGE_FIELDS, 'segmentation', *DOSIMETRY_FIELDS))}"
        )
    studies = {}
    for source in naming.SOURCES:
        entry = per_source.get(source)
        if entry is None or not entry["images"]:
            if entry is not None and entry["segmentation"]:
                raise ManifestError(f"{where}: {source} has a segmentation but no image")
            continue
        if entry["segmentation"] is None:
            raise ManifestError(f"{where}: {source} images need {source}_segmentation")
        structures = {**shared, **entry["structures"]}
        studies[source] = StudySpec(source, entry["segmentation"], entry["images"], entry["dosimetry"], structures)
    if not studies:
        raise ManifestError(f"{where}: no images (give e.g. maa_spect or y90_dose with its segmentation)")
    return PatientSpec(patient_id, studies, clinical)


def read_manifest(path: str | Path) -> list[PatientSpec]:
    """Read a CSV or YAML manifest; patient ids must be unique."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"manifest not found: {path}")
    defaults: dict = {}
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            defaults = data.get("defaults") or {}
            records = data.get("patients")
        else:
            records = data
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ManifestError(f"{path}: expected a list of patients (or 'patients:' with a list)")
    else:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            records = [dict(r) for r in csv.DictReader(handle)]
    patients = [patient_from_record(r, path.parent, defaults) for r in records]
    seen: dict[str, int] = {}
    for p in patients:
        seen[p.patient_id] = seen.get(p.patient_id, 0) + 1
    repeated = sorted(k for k, n in seen.items() if n > 1)
    if repeated:
        raise ManifestError(f"{path}: patient ids must be unique, repeated: {', '.join(repeated)}")
    if not patients:
        raise ManifestError(f"{path}: no patients")
    return patients


# ---------------------------------------------------------------------------------------------
# Preparing one patient (runs in a worker)


@dataclass
class Prepared:
    patient_id: str
    row: dict[str, Any]  # id, clinical and DVC columns
    feature_sets: dict  # prefix -> extract.FeatureSetInfo
    tasks: list  # extract.Task
    seconds: float
    notes: list[str] = field(default_factory=list)


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _dose_parameters(dosimetry: dict, activity_units: str | None, segments: tuple[str, ...]):
    from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration, RelativeCalibration
    from SIRTDosimetryLib.dose.engine import DoseParameters
    from SIRTDosimetryLib.errors import SIRTInputError

    d = dosimetry
    mode = d.get("calibration") or ("relative" if "administered_activity_gbq" in d else "absolute")
    if mode == "relative":
        if "administered_activity_gbq" not in d:
            raise SIRTInputError("relative calibration needs administered_activity_gbq")
        calibration = RelativeCalibration(
            administered_activity_bq=d["administered_activity_gbq"] * 1e9,
            calibration_voi=d.get("calibration_voi", ("liver",)),
            lung_shunt_fraction=d.get("lung_shunt_fraction", 0.0),
            residual_fraction=d.get("residual_fraction", 0.0),
            lungs_in_voi=d.get("lungs_in_voi", False),
        )
    elif mode == "absolute":
        units = activity_units
        if units is None:
            raise SIRTInputError("absolute calibration needs the image units (units: bq_per_ml, kbq_per_ml, counts…)")
        calibration = AbsoluteCalibration(
            units=units,
            administration_time=d.get("administration_time"),
            scan_time=d.get("scan_time"),
            camera_factor_cps_per_mbq=d.get("camera_factor_cps_per_mbq"),
            acquisition_duration_s=d.get("acquisition_duration_s"),
        )
    else:
        raise SIRTInputError(f"calibration must be absolute or relative, got {mode!r}")
    # partial_voxels stays "fraction": the DVCs use fractional weights and the masks take the majority of them.
    extra = {k: d[k] for k in ("method", "kernel", "radionuclide", "half_life_h") if k in d}
    if "density_g_per_ml" in d:
        extra["density_g_per_ml"] = d["density_g_per_ml"]
    return DoseParameters(calibration=calibration, clamp_invalid=d.get("clamp_negative", False), segments=segments, **extra)


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
    from .extract import StructureMask, _grid_key, bed_functions, combine_structures, masks_from_segmentation

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
        key = _grid_key(image)
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
            if activity is not None and _grid_key(activity.image) == _grid_key(dose_image):
                counts = sitk.GetArrayViewFromImage(activity.image)
        else:
            segment_names = tuple(dict.fromkeys(n for names in named.values() for n in names))
            params = _dose_parameters(study.dosimetry, activity.units, segment_names)
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
                    grid_masks[_grid_key(activity.image)] = _with_unnamed(
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
            row[naming.dvc_status_column(source, "error")] = f"dose-volume constraints: {_message(exc)}"

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


# ---------------------------------------------------------------------------------------------
# Executors


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextlib.contextmanager
def single_threaded_children():
    """Worker processes started inside this block use one BLAS/OpenMP thread (no oversubscription)."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _worker_init() -> None:
    import logging

    logging.getLogger("radiomics").setLevel(logging.ERROR)


def warm_up() -> bool:
    """Import the engine in a worker (call once per worker to start a pool before timing it)."""
    import radiomics  # noqa: F401
    import SimpleITK  # noqa: F401
    from radiomics import featureextractor  # noqa: F401
    from SIRTDosimetryLib.dose import engine  # noqa: F401

    return True


class InlineExecutor:
    """Runs each call at once in this process (``workers=1``)."""

    def submit(self, fn, *args):
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        return future

    def wait(self, futures):
        return set(futures)

    def restart(self) -> None:
        pass

    def close(self) -> None:
        pass


class LocalExecutor:
    """A pool of spawned worker processes."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = self._new()

    def _new(self):
        return cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init)

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    def wait(self, futures):
        done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return done

    def restart(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Tasks on a Dask distributed cluster (``distributed.Client(address)``)."""

    def __init__(self, address: str):
        try:
            from distributed import Client
        except ImportError:
            raise ManifestError("a Dask scheduler address needs dask[distributed] installed") from None
        self.client = Client(address)

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, pure=False)

    def wait(self, futures):
        from distributed import wait

        done, _ = wait(list(futures), return_when="FIRST_COMPLETED")
        return done

    def restart(self) -> None:
        pass

    def close(self) -> None:
        self.client.close()


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def make_executor(workers: int | None = None, scheduler: str | None = None):
    if scheduler:
        return DaskExecutor(scheduler)
    workers = default_workers() if workers is None else workers
    return InlineExecutor() if workers <= 1 else LocalExecutor(workers)


# ---------------------------------------------------------------------------------------------
# Cache


def software_key() -> dict[str, str]:
    from importlib import metadata

    from SIRTDosimetryLib import __version__

    versions = {"slicer-sirt": __version__, "cache": CACHE_SCHEMA}
    for name in ("pyradiomics-bhklab", "pyradiomics", "numpy", "SimpleITK"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def cache_key(spec: PatientSpec, preset: Preset, file_hash: Callable[[str], str] | None = None) -> str:
    """SHA-256 of the input files' contents, the manifest entry, the preset and the software versions."""
    from SIRTDosimetryLib.provenance import sha256_of

    file_hash = file_hash or sha256_of
    files = {}
    for study in spec.studies.values():
        for path in (*study.images.values(), study.segmentation):
            if path is not None:
                files[path] = file_hash(path) if Path(path).exists() else "missing"
    payload = {"patient": spec.to_dict(), "files": files, "preset": preset.to_dict(), "software": software_key()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def cache_path(cache_dir: Path, patient_id: str, key: str) -> Path:
    return Path(cache_dir) / f"{naming.slug(patient_id)}-{key[:20]}.json"


def load_cached(cache_dir: Path, patient_id: str, key: str) -> dict | None:
    path = cache_path(cache_dir, patient_id, key)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if data.get("key") == key and data.get("schema") == CACHE_SCHEMA else None


def store_cached(cache_dir: Path, patient_id: str, key: str, row: dict, seconds: float) -> None:
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_path(cache_dir, patient_id, key)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    payload = {"schema": CACHE_SCHEMA, "key": key, "patient_id": patient_id, "seconds": seconds, "row": row}
    tmp.write_text(json.dumps(payload, default=_json_default), encoding="utf-8")
    os.replace(tmp, path)


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------------------------------------
# Running a cohort


@dataclass
class PatientOutcome:
    patient_id: str
    row: dict[str, Any]
    status: str  # "done", "cached" or "failed"
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def write(self, text: str) -> None:
        import sys

        print(text, file=sys.stderr)

    def close(self) -> None:
        pass


def _progress_bar(total: int, initial: int, enabled: bool):
    """A tqdm progress bar over patients; a silent stand-in without tqdm or when disabled."""
    if enabled:
        try:
            from tqdm import tqdm

            return tqdm(total=total, initial=initial, desc="patients", unit="patient")
        except ImportError:
            pass
    return _NoBar()


@dataclass
class _Active:
    spec: PatientSpec
    key: str
    prepared: Prepared | None = None
    results: dict = field(default_factory=dict)
    remaining: set = field(default_factory=set)
    started: float = field(default_factory=time.perf_counter)


def _failed_row(spec: PatientSpec, message: str) -> dict[str, Any]:
    row: dict[str, Any] = {naming.ID_COLUMN: spec.patient_id, naming.PATIENT_ERROR_COLUMN: message}
    row.update({naming.clinical_column(k): v for k, v in spec.clinical.items()})
    return row


def extract_cohort(
    patients: Iterable[PatientSpec],
    preset: Preset | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    cache_dir: Path | str | None = None,
    progress: bool = True,
    executor=None,
    on_patient: Callable[[PatientOutcome], None] | None = None,
    sparse_mcc: bool = True,
) -> list[PatientOutcome]:
    """Extract every patient; returns one outcome per patient, in manifest order.

    Cached patients (same cache key) are loaded, not recomputed. A failure of one patient is
    recorded in its outcome and does not stop the others. ``executor`` (an object with
    ``submit``/``wait``/``restart``/``close``, e.g. :class:`LocalExecutor`) reuses a running pool;
    ``sparse_mcc=False`` keeps pyradiomics' own (slower, identical) MCC computation.
    """
    from .extract import TaskResult, run_task

    preset = preset or load_preset()
    patients = list(patients)
    outcomes: dict[str, PatientOutcome] = {}
    todo: list[tuple[PatientSpec, str]] = []
    for spec in patients:
        try:
            key = cache_key(spec, preset)
        except Exception as exc:
            outcomes[spec.patient_id] = PatientOutcome(spec.patient_id, _failed_row(spec, _message(exc)), "failed", error=_message(exc))
            continue
        cached = load_cached(Path(cache_dir), spec.patient_id, key) if cache_dir is not None else None
        if cached is not None:
            outcomes[spec.patient_id] = PatientOutcome(spec.patient_id, cached["row"], "cached", cached.get("seconds", 0.0))
        else:
            todo.append((spec, key))

    bar = _progress_bar(len(patients), len(outcomes), progress)
    own_executor = executor is None
    active: dict[str, _Active] = {}
    futures: dict[Any, tuple[str, str, Any]] = {}  # future -> (kind, patient, payload)
    attempts: dict[tuple[str, str], int] = {}
    futures_to_resubmit: list = []
    queue = list(todo)
    max_active = 2 * (workers or default_workers()) if scheduler is None else 64

    def finish(pid: str, outcome: PatientOutcome) -> None:
        outcomes[pid] = outcome
        active.pop(pid, None)
        if outcome.status == "done" and cache_dir is not None:
            store_cached(Path(cache_dir), pid, state_keys[pid], outcome.row, outcome.seconds)
        if outcome.status == "failed":
            bar.write(f"patient {pid}: failed: {outcome.error}")
        bar.update(1)
        if on_patient is not None:
            on_patient(outcome)

    state_keys = {spec.patient_id: key for spec, key in todo}

    def submit_prepare(spec: PatientSpec) -> None:
        futures[ex.submit(prepare_patient, spec, preset, sparse_mcc)] = ("prepare", spec.patient_id, spec)

    def submit_task(pid: str, task) -> None:
        futures[ex.submit(run_task, task)] = ("task", pid, task)

    def fill() -> None:
        while queue and len(active) < max_active:
            spec, key = queue.pop(0)
            active[spec.patient_id] = _Active(spec, key)
            submit_prepare(spec)

    def complete_if_done(pid: str) -> None:
        state = active[pid]
        if state.prepared is not None and not state.remaining:
            row = finish_row(state.prepared, preset, state.results)
            finish(pid, PatientOutcome(pid, row, "done", time.perf_counter() - state.started, notes=state.prepared.notes))

    ex = executor
    with single_threaded_children():
        if own_executor:
            ex = make_executor(workers, scheduler)
        try:
            fill()
            while futures:
                done = ex.wait(list(futures))
                broken = False
                for future in done:
                    kind, pid, payload = futures.pop(future)
                    if pid not in active:
                        continue
                    try:
                        value = future.result()
                    except BrokenProcessPool:
                        broken = True
                        tries = attempts.get((kind, getattr(payload, "task_id", pid)), 0) + 1
                        attempts[(kind, getattr(payload, "task_id", pid))] = tries
                        if tries >= 2:
                            if kind == "prepare":
                                finish(pid, PatientOutcome(pid, _failed_row(active[pid].spec, "worker process crashed"), "failed",
                                                           error="worker process crashed"))
                            else:
                                active[pid].results[payload.task_id] = TaskResult(payload.task_id, {}, "worker process crashed", 0.0)
                                active[pid].remaining.discard(payload.task_id)
                                complete_if_done(pid)
                        else:
                            futures_to_resubmit.append((kind, pid, payload))
                        continue
                    except Exception as exc:  # prepare failed, or a Dask-side error
                        if kind == "prepare":
                            message = _message(exc)
                            finish(pid, PatientOutcome(pid, _failed_row(active[pid].spec, message), "failed", error=message))
                        else:
                            active[pid].results[payload.task_id] = TaskResult(payload.task_id, {}, f"{payload.part}: {_message(exc)}", 0.0)
                            active[pid].remaining.discard(payload.task_id)
                            complete_if_done(pid)
                        continue
                    state = active[pid]
                    if kind == "prepare":
                        state.prepared = value
                        state.remaining = {t.task_id for t in value.tasks}
                        for task in sorted(value.tasks, key=lambda t: -t.cost):
                            submit_task(pid, task)
                        value.tasks = []  # the crops are in flight; do not keep them twice
                    else:
                        state.results[value.task_id] = value
                        state.remaining.discard(value.task_id)
                    complete_if_done(pid)
                if broken:
                    # A worker died (out of memory, crash): everything in flight is lost; start afresh.
                    ex.restart()
                    lost = list(futures.values())
                    futures.clear()
                    for item in futures_to_resubmit + lost:
                        kind, pid, payload = item
                        if pid not in active:
                            continue
                        if kind == "prepare":
                            submit_prepare(payload)
                        else:
                            submit_task(pid, payload)
                    futures_to_resubmit.clear()
                fill()
        finally:
            if own_executor and ex is not None:
                ex.close()
            bar.close()
    return [outcomes[spec.patient_id] for spec in patients]



# ---------------------------------------------------------------------------------------------
# The table


def _column_order(columns: list[str]) -> list[str]:
    def group(name: str) -> int:
        if name == naming.ID_COLUMN:
            return 0
        if name == naming.PATIENT_ERROR_COLUMN:
            return 1
        if name.startswith(naming.CLINICAL_PREFIX):
            return 2
        parts = name.split("_")
        if len(parts) > 1 and parts[1] == "dvc":
            return 3
        return 4

    return sorted(columns, key=lambda c: (group(c), ))  # stable: keeps first-appearance order within a group


def feature_table(outcomes: list[PatientOutcome]):
    """One pandas DataFrame, one row per patient, columns in a stable order."""
    import pandas as pd

    columns: dict[str, None] = {}
    for o in outcomes:
        columns.update(dict.fromkeys(o.row))
    columns.setdefault(naming.PATIENT_ERROR_COLUMN, None)
    ordered = _column_order(list(columns))
    frame = pd.DataFrame([{c: o.row.get(c) for c in ordered} for o in outcomes], columns=ordered)
    for column in ordered:
        kind = _column_kind(column)
        if kind in ("text",):
            frame[column] = frame[column].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
        elif kind == "number":
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        else:  # clinical: numbers when every value is one, else text
            try:
                frame[column] = pd.to_numeric(frame[column]).astype("float64")
            except (TypeError, ValueError):
                frame[column] = frame[column].map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    return frame


def _column_kind(column: str) -> str:
    if column in (naming.ID_COLUMN, naming.PATIENT_ERROR_COLUMN):
        return "text"
    if column.startswith(naming.CLINICAL_PREFIX):
        return "clinical"
    if column.endswith("_error") or column.endswith("_warning"):
        return "text"
    return "number"


def write_table(frame, output_dir: Path, metadata: dict, inputs: Iterable[Path] = (), overwrite: bool = False) -> list[Path]:
    """``features.csv``, ``features.parquet`` and ``features.json`` (provenance), written atomically."""
    from SIRTDosimetryLib.io.writers import commit_outputs

    def write_csv(path: Path) -> None:
        frame.to_csv(path, index=False, float_format="%.17g")

    def write_parquet(path: Path) -> None:
        frame.to_parquet(path, index=False)

    def write_json(path: Path) -> None:
        path.write_text(json.dumps(metadata, indent=2, default=_json_default, allow_nan=False) + "\n", encoding="utf-8")

    return commit_outputs(
        Path(output_dir),
        {"features.csv": write_csv, "features.parquet": write_parquet, "features.json": write_json},
        inputs=inputs,
        overwrite=overwrite,
    )


def run_manifest(
    manifest: Path | str,
    output_dir: Path | str,
    preset: Preset | str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    cache_dir: Path | str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    sparse_mcc: bool = True,
):
    """Read a manifest, extract every patient (resuming from the cache), write the table; returns (frame, outcomes)."""
    from SIRTDosimetryLib.errors import SIRTInputError
    from SIRTDosimetryLib.provenance import describe_input, software_versions

    from .extract import expected_columns
    from .radiomics_engine import ENGINE_KEY, radiomics_engine

    try:
        preset = load_preset(preset)
        patients = read_manifest(manifest)
    except (ManifestError, ValueError) as exc:
        raise SIRTInputError(str(exc)) from None
    output_dir = Path(output_dir)
    for name in ("features.csv", "features.parquet", "features.json"):
        if (output_dir / name).exists() and not overwrite:
            raise SIRTInputError(f"output {output_dir / name} already exists; choose another folder or pass --overwrite")
    cache_dir = Path(cache_dir) if cache_dir is not None else output_dir / ".sirt-features-cache"
    start = time.perf_counter()
    outcomes = extract_cohort(patients, preset, workers=workers, scheduler=scheduler, cache_dir=cache_dir, progress=progress,
                              sparse_mcc=sparse_mcc)
    frame = feature_table(outcomes)
    metadata = {
        "schema": TABLE_SCHEMA,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "manifest": describe_input(manifest),
        "preset": preset.to_dict(),
        "features_per_structure": len(expected_columns(preset)),
        "columns": len(frame.columns),
        "execution": {"workers": workers or default_workers(), "scheduler": scheduler, "cache": str(cache_dir), "sparse_mcc": sparse_mcc,
                      "seconds": round(time.perf_counter() - start, 3)},
        "patients": [
            {"patient_id": o.patient_id, "status": o.status, "seconds": round(o.seconds, 3), "error": o.error, "notes": o.notes}
            for o in outcomes
        ],
        "software": software_versions(),
        ENGINE_KEY: radiomics_engine(),
    }
    inputs = [Path(manifest)] + [Path(p) for s in patients for st in s.studies.values() for p in (*st.images.values(), st.segmentation) if p]
    write_table(frame, output_dir, metadata, inputs=inputs, overwrite=overwrite)
    return frame, outcomes


def extract_patient(spec: PatientSpec, preset: Preset | None = None, workers: int | None = 1, executor=None,
                    sparse_mcc: bool = True) -> dict[str, Any]:
    """One patient's row (no cache); ``workers``/``executor`` as for :func:`extract_cohort`.

    Raises ``SIRTInputError`` when the patient fails as a whole.
    """
    from SIRTDosimetryLib.errors import SIRTInputError

    outcome = extract_cohort([spec], preset, workers=workers, progress=False, executor=executor, sparse_mcc=sparse_mcc)[0]
    if outcome.status == "failed":
        raise SIRTInputError(f"patient {spec.patient_id}: {outcome.error}")
    return outcome.row
