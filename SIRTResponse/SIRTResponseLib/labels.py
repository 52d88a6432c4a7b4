"""Response labels and cohort tables.

Response categories become binary labels the way published SIRT response studies do:
complete + partial response = responder (1), stable + progressive disease = non-responder (0).

=========  ===========================  ==========================
criterion  responder (1)                non-responder (0)
=========  ===========================  ==========================
mrecist    CR, PR                       SD, PD
easl       CR, PR                       SD, PD
recist     CR, PR                       SD, PD
percist    CMR, PMR                     SMD, PMD
binary     1, responder                 0, non-responder
=========  ===========================  ==========================

Full names ("complete response", "partial metabolic response", ...) are accepted too.

A cohort is per patient (one row per patient) or per lesion (one row per lesion, several rows per
patient). Every row keeps its patient id as its *group*, and every split of the study keeps a
patient's rows together (``StratifiedGroupKFold``), so that no patient is in a training and a test
fold at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from SIRTDosimetryLib.errors import SIRTInputError

from .strategies import is_bookkeeping_column

RESPONDER = 1
NON_RESPONDER = 0

_RECIST_LIKE = {
    "CR": RESPONDER,
    "COMPLETE RESPONSE": RESPONDER,
    "PR": RESPONDER,
    "PARTIAL RESPONSE": RESPONDER,
    "SD": NON_RESPONDER,
    "STABLE DISEASE": NON_RESPONDER,
    "PD": NON_RESPONDER,
    "PROGRESSIVE DISEASE": NON_RESPONDER,
}

CRITERIA: dict[str, dict[str, int]] = {
    "mrecist": _RECIST_LIKE,
    "easl": _RECIST_LIKE,
    "recist": _RECIST_LIKE,
    "percist": {
        "CMR": RESPONDER,
        "COMPLETE METABOLIC RESPONSE": RESPONDER,
        "PMR": RESPONDER,
        "PARTIAL METABOLIC RESPONSE": RESPONDER,
        "SMD": NON_RESPONDER,
        "STABLE METABOLIC DISEASE": NON_RESPONDER,
        "PMD": NON_RESPONDER,
        "PROGRESSIVE METABOLIC DISEASE": NON_RESPONDER,
    },
    "binary": {"1": RESPONDER, "RESPONDER": RESPONDER, "0": NON_RESPONDER, "NON-RESPONDER": NON_RESPONDER},
}

UNITS = ("patient", "lesion")


def _normalise(value) -> str:
    text = str(value).strip().upper().replace("_", " ")
    if text.endswith(".0") and text[:-2].isdigit():  # 1.0 read from a numeric column
        text = text[:-2]
    return " ".join(text.split())


def binary_labels(categories, criterion: str = "mrecist") -> np.ndarray:
    """Response categories → 1 (responder) / 0 (non-responder); raises for an unknown category."""
    if criterion not in CRITERIA:
        raise SIRTInputError(f"unknown response criterion {criterion!r}; use one of {', '.join(CRITERIA)}")
    table = CRITERIA[criterion]
    normalised = [_normalise(c) for c in categories]
    unknown = sorted({c for c in normalised if c not in table})
    if unknown:
        raise SIRTInputError(
            f"response categories {unknown} are not {criterion} categories; expected one of {sorted(table)}"
        )
    return np.array([table[c] for c in normalised], dtype=int)


@dataclass
class Cohort:
    """Rows (patients or lesions), their numeric features, binary labels and patient groups."""

    features: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    row_ids: list[str]
    unit: str
    criterion: str
    categories: list[str]
    bookkeeping: list[str] = field(default_factory=list)  # columns of the table that are never features

    @property
    def grouped(self) -> bool:
        """Rows share patients (per-lesion data): splits must keep groups together."""
        return self.unit == "lesion"

    def summary(self) -> dict:
        counts = pd.Series(self.categories).value_counts().sort_index()
        return {
            "unit": self.unit,
            "n_rows": int(len(self.y)),
            "n_patients": int(len(np.unique(self.groups))),
            "n_responders": int(self.y.sum()),
            "n_non_responders": int(len(self.y) - self.y.sum()),
            "criterion": self.criterion,
            "categories": {str(k): int(v) for k, v in counts.items()},
            "n_features": int(self.features.shape[1]),
        }


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV, TSV or Parquet table; ids stay text."""
    path = Path(path)
    if not path.is_file():
        raise SIRTInputError(f"table {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".tsv", ".txt"):
        # round_trip: the values written by 'sirt features' come back bit for bit (pandas 2's default parser
        # is off in the last digit for some doubles).
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", float_precision="round_trip")
    raise SIRTInputError(f"{path}: tables must be .csv, .tsv or .parquet")


def _require(table: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SIRTInputError(f"{what} has no column(s) {missing}")


def numeric_features(table: pd.DataFrame) -> pd.DataFrame:
    """The model inputs of a table: every column but ids, labels and bookkeeping, as floats.

    Booleans become 0/1; any other non-numeric column is refused (encode it first).
    """
    columns = [c for c in table.columns if not is_bookkeeping_column(c)]
    frame = table[columns]
    bad = [c for c in columns if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
    if bad:
        raise SIRTInputError(f"feature columns must be numeric; encode or drop {bad[:10]}{' ...' if len(bad) > 10 else ''}")
    return frame.astype(float)


def build_cohort(
    features: pd.DataFrame,
    labels: pd.DataFrame | None = None,
    *,
    label_column: str = "response",
    criterion: str = "mrecist",
    id_column: str = "patient_id",
    lesion_column: str | None = None,
) -> Cohort:
    """Join a feature table and a label table (or a label column of the feature table).

    Keys: ``id_column`` (per patient) or ``id_column`` + ``lesion_column`` (per lesion). Rows whose
    label is empty are left out; a feature row without a label row is left out too.
    """
    keys = [id_column] + ([lesion_column] if lesion_column else [])
    _require(features, keys, "the feature table")
    features = features.astype({k: str for k in keys})
    if labels is None:
        _require(features, [label_column], "the feature table")
        table = features.copy()
    else:
        _require(labels, [*keys, label_column], "the label table")
        if labels.duplicated(keys).any():
            raise SIRTInputError(f"the label table has duplicate {'/'.join(keys)} rows")
        labels = labels.astype({k: str for k in keys})
        table = features.drop(columns=[label_column], errors="ignore").merge(labels[[*keys, label_column]], on=keys, how="inner")
    if table.duplicated(keys).any():
        raise SIRTInputError(f"the feature table has duplicate {'/'.join(keys)} rows")
    table = table[table[label_column].notna() & (table[label_column].astype(str).str.strip() != "")]
    if table.empty:
        raise SIRTInputError("no row has both features and a response label")
    y = binary_labels(table[label_column], criterion)
    if len(np.unique(y)) < 2:
        raise SIRTInputError("the cohort has responders only or non-responders only; a model needs both")
    row_ids = ["/".join(parts) for parts in table[keys].astype(str).itertuples(index=False)]
    feature_table = numeric_features(table.drop(columns=[*keys, label_column]))
    feature_table.index = row_ids
    return Cohort(
        features=feature_table,
        y=y,
        groups=table[id_column].to_numpy(dtype=str),
        row_ids=row_ids,
        unit="lesion" if lesion_column else "patient",
        criterion=criterion,
        categories=[str(c) for c in table[label_column]],
        bookkeeping=[c for c in table.columns if c not in (*keys, label_column) and is_bookkeeping_column(c)],
    )


def load_cohort(
    features_path: str | Path,
    labels_path: str | Path | None = None,
    **kwargs,
) -> Cohort:
    """:func:`build_cohort` on tables read from files (CSV, TSV or Parquet)."""
    labels = read_table(labels_path) if labels_path is not None else None
    return build_cohort(read_table(features_path), labels, **kwargs)
