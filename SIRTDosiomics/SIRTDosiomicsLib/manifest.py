"""The cohort manifest: which images, segmentation, dosimetry parameters, structures and clinical values
each patient has.

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
        register: {fixed: maa, moving: y90, transform: rigid, mask_segment: liver}   # optional, see sirt/registration_step.py
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import naming

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

REGISTRATION_FIELDS: dict[str, Callable[[Any], Any]] = {
    "fixed": lambda v: naming.SOURCE_ALIASES.get(str(v).strip().lower(), str(v).strip().lower()),  # maa | y90
    "moving": lambda v: naming.SOURCE_ALIASES.get(str(v).strip().lower(), str(v).strip().lower()),
    "transform": lambda v: str(v).strip().lower(),  # rigid | affine | deformable
    "preset": lambda v: str(v).strip().lower(),  # spect | pet | ct | mri
    "mask_segment": lambda v: str(v).strip(),
    "qa_segment": lambda v: str(v).strip(),
    "min_dice": float,
    "iterations": int,
}
"""Keys of a patient's ``register:`` block (CSV: ``register_<key>``): the moving study registered onto the fixed one."""


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
    registration: dict[str, Any] = field(default_factory=dict)  # REGISTRATION_FIELDS; empty: no registration

    def to_dict(self) -> dict:
        from SIRTDosimetryLib.provenance import to_jsonable

        return to_jsonable(self)


class ManifestError(ValueError):
    pass


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
        elif lower == "register" and isinstance(value, dict):
            flat.update({f"register_{k}": v for k, v in value.items()})
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
    registration: dict[str, Any] = {}
    unknown = []
    for key, value in merged.items():
        if _empty(value):
            continue
        if key.lower().startswith(naming.CLINICAL_PREFIX):
            clinical[key[len(naming.CLINICAL_PREFIX) :]] = value
            continue
        if key.lower().startswith("register_"):
            name = key[len("register_"):].lower()
            if name not in REGISTRATION_FIELDS:
                unknown.append(key)
                continue
            try:
                registration[name] = REGISTRATION_FIELDS[name](value)
            except (TypeError, ValueError) as exc:
                raise ManifestError(f"{where}: {key} = {value!r}: {exc}") from None
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
            f"structure_<name>, or <maa|y90>_<field> with field in {', '.join((*IMAGE_FIELDS, 'segmentation', *DOSIMETRY_FIELDS))}, "
            f"or register_<field> with field in {', '.join(REGISTRATION_FIELDS)}"
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
    if registration:
        pair = (registration.get("fixed"), registration.get("moving"))
        if any(source not in studies for source in pair) or pair[0] == pair[1]:
            raise ManifestError(f"{where}: register needs 'fixed' and 'moving': two different studies of the patient "
                                f"({', '.join(studies)}), got fixed={pair[0]!r}, moving={pair[1]!r}")
    return PatientSpec(patient_id, studies, clinical, registration)


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
