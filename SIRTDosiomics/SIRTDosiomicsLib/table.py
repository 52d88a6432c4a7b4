"""The cohort's feature table: one row per patient, columns in a stable order, written as CSV, Parquet and JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

from SIRTDosimetryLib.provenance import to_jsonable

from . import naming

TABLE_SCHEMA = "slicer-sirt/features/1"


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


def feature_table(outcomes: list):
    """One pandas DataFrame, one row per patient (``cohort.PatientOutcome.row``), columns in a stable order."""
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
        path.write_text(json.dumps(to_jsonable(metadata), indent=2, default=str, allow_nan=False) + "\n", encoding="utf-8")

    return commit_outputs(
        Path(output_dir),
        {"features.csv": write_csv, "features.parquet": write_parquet, "features.json": write_json},
        inputs=inputs,
        overwrite=overwrite,
    )
