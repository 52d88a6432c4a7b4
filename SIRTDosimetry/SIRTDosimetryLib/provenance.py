"""Provenance recorded in every output: inputs (with SHA-256), parameters and software versions."""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import sys
from datetime import date, datetime, timezone
from enum import Enum
from importlib import metadata
from pathlib import Path

from . import __version__

_PACKAGES = (
    "numpy", "scipy", "SimpleITK", "pynrrd", "pydicom", "slicer-core", "pyradiomics-bhklab", "scikit-learn",
    "imbalanced-learn", "xgboost", "skops", "joblib", "threadpoolctl", "pandas", "statsmodels", "lifelines", "itk-elastix",
)


def software_versions() -> dict[str, str]:
    versions = {"slicer-sirt": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file, or of a folder's files (sorted relative names and contents)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def describe_input(path: str | Path) -> dict:
    path = Path(path)
    return {"path": str(path.resolve()), "sha256": sha256_of(path)}


def to_jsonable(value):
    """Dataclasses, datetimes, paths, tuples and numpy scalars to plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return value.item()
    return value


def provenance(inputs: dict[str, str | Path | None], parameters) -> dict:
    return {
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": {k: describe_input(v) for k, v in inputs.items() if v is not None},
        "parameters": to_jsonable(parameters),
        "software": software_versions(),
        "command_line": sys.argv,
    }
