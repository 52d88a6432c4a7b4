"""Which pyradiomics build computes the features, recorded with every feature table and model card.

On the command line the engine is the ``pyradiomics-bhklab`` distribution; in 3D Slicer it is the
pyradiomics that the SlicerRadiomics extension builds. Both import as ``radiomics``, and feature values
can differ between pyradiomics versions, so a feature table records the engine (version, distribution,
where it came from), a model card records the engine of its training features, and a prediction warns
when the engine of the patient's features differs from the training one.

A feature table written to ``features.csv`` (or ``x.csv``) keeps its provenance beside it in
``features.json`` (``x.json``); ``table_engine`` reads the engine back from there.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

ENGINE_KEY = "radiomics_engine"
"""Key of the engine record in a feature table's metadata and in a model card's ``feature_extraction``."""
ENGINE_ATTRIBUTE = "SIRT.Dosiomics.RadiomicsEngine"
"""Attribute of a SIRT Dosiomics feature table node: the JSON of ``radiomics_engine()``."""


def radiomics_engine() -> dict[str, str | None]:
    """``{"package": "pyradiomics", "version", "distribution", "source", "location"}`` of the importable
    ``radiomics``: ``distribution`` is the pip distribution that installed it (None when none did),
    ``source`` is ``"SlicerRadiomics"`` for the extension's build, else the distribution's name."""
    import radiomics

    location = Path(radiomics.__file__).resolve().parent
    distribution = None
    for name in metadata.packages_distributions().get("radiomics", []):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if Path(dist.locate_file("radiomics")).resolve() == location:
            distribution = dist.metadata["Name"]
            version = dist.version
            break
    else:
        version = str(getattr(radiomics, "__version__", "unknown"))
    in_slicer_radiomics = "slicerradiomics" in str(location).lower()
    return {
        "package": "pyradiomics",
        "version": version,
        "distribution": distribution,
        "source": "SlicerRadiomics" if in_slicer_radiomics else (distribution or "unregistered build"),
        "location": str(location),
    }


def engine_label(engine: dict | None) -> str:
    if not engine:
        return "an unrecorded pyradiomics"
    return f"pyradiomics {engine.get('version')} ({engine.get('source')})"


def engine_mismatch(training: dict | None, used: dict | None) -> str | None:
    """A warning when the features of a prediction come from another pyradiomics than the training
    features (version or source differ), or when either engine is unknown; None when they match."""
    if training is None and used is None:
        return None
    if training is None or used is None:
        which = "training" if training is None else "these"
        return (f"the pyradiomics build of the {which} features is not recorded (training: {engine_label(training)}, "
                f"these features: {engine_label(used)}); radiomic feature values may differ between builds")
    same = (training.get("version"), training.get("source")) == (used.get("version"), used.get("source"))
    if same:
        return None
    return (f"features computed with {engine_label(used)}, the model was trained on features of {engine_label(training)}: "
            "radiomic feature values may differ between pyradiomics versions")


def sidecar_path(table_path: str | Path) -> Path:
    """``features.json`` beside ``features.csv`` / ``features.parquet``."""
    return Path(table_path).with_suffix(".json")


def table_engine(table_path: str | Path) -> dict | None:
    """The engine recorded beside a feature table file, or None when there is no record."""
    path = sidecar_path(table_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    engine = data.get(ENGINE_KEY) if isinstance(data, dict) else None
    return engine if isinstance(engine, dict) else None


def card_engine(card: dict) -> dict | None:
    """The engine of a model card's training features (``feature_extraction.radiomics_engine``)."""
    engine = (card.get("feature_extraction") or {}).get(ENGINE_KEY)
    return engine if isinstance(engine, dict) else None


def uses_radiomic_features(columns) -> bool:
    """True when a column is a pyradiomics feature (``<source>_<image>_<structure>_<class>_<feature>``);
    dose-volume constraints and clinical variables do not depend on the engine."""
    from .naming import NamingError, parse_column

    for column in columns:
        try:
            if parse_column(column).kind == "feature":
                return True
        except NamingError:
            continue
    return False


def prediction_warning(card: dict, used: dict | None) -> str | None:
    """The engine warning for a prediction with features of engine ``used`` (None: unrecorded), only for
    a model that reads radiomic features."""
    if not uses_radiomic_features(card.get("required_features") or []):
        return None
    return engine_mismatch(card_engine(card), used)
