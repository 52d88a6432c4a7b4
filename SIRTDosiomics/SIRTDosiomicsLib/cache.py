"""Resuming a cohort: each finished patient's row is kept in the cache folder under a key of everything
that determines it, through the one result store of ``SIRTDosimetryLib.parallel``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from SIRTDosimetryLib.parallel import ResultStore, task_key

from . import naming
from .manifest import PatientSpec
from .presets import Preset

CACHE_SCHEMA = "slicer-sirt/dosiomics-cache/2"


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
    return task_key({"patient": spec.to_dict(), "files": files, "preset": preset.to_dict(), "software": software_key()})


def cohort_store(cache_dir: str | Path) -> ResultStore:
    """The cache folder of a cohort's finished rows."""
    return ResultStore(cache_dir, CACHE_SCHEMA)


def cache_name(patient_id: str, key: str) -> str:
    """File name (without ``.json``) of a patient's cached row."""
    return f"{naming.slug(patient_id)}-{key[:20]}"
