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

import re
from collections.abc import Iterable
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
        order = list(CRITERIA.get(self.criterion, {}))  # the criterion's own order: CR, PR, SD, PD
        counts = pd.Series(self.categories).value_counts()
        counts = counts.reindex(sorted(counts.index, key=lambda c: (order.index(c) if c in order else len(order), str(c))))
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


def read_table(path: str | Path, text_columns: Iterable[str] = ()) -> pd.DataFrame:
    """A CSV, TSV or Parquet table; the ``text_columns`` (ids) of a CSV/TSV are read as text, so
    that ids "1" and "01" stay two different patients."""
    path = Path(path)
    if not path.is_file():
        raise SIRTInputError(f"table {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".tsv", ".txt"):
        # round_trip: the values written by 'sirt features' come back bit for bit (pandas 2's default parser
        # is off in the last digit for some doubles).
        dtype = {c: str for c in text_columns if c}
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", float_precision="round_trip", dtype=dtype)
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
        raise SIRTInputError(f"feature columns must be numeric; declare text columns categorical (--categorical "
                             f"COLUMN=one_hot or COLUMN=ordinal:A,B,C) or drop {bad[:10]}{' ...' if len(bad) > 10 else ''}")
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
    keys = (kwargs.get("id_column", "patient_id"), kwargs.get("lesion_column"))
    labels = read_table(labels_path, keys) if labels_path is not None else None
    return build_cohort(read_table(features_path, keys), labels, **kwargs)


# --- clinical text variables -----------------------------------------------------------------------

CATEGORICAL_KINDS = ("one_hot", "ordinal")


@dataclass(frozen=True)
class Categorical:
    """How a text column becomes numbers: ``ordinal`` (levels in order → 0, 1, 2, ...) or ``one_hot``
    (one 0/1 column per level; the levels are those given, else those present, sorted)."""

    kind: str
    levels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in CATEGORICAL_KINDS:
            raise SIRTInputError(f"categorical kind must be one of {', '.join(CATEGORICAL_KINDS)}, got {self.kind!r}")
        if self.kind == "ordinal" and len(self.levels) < 2:
            raise SIRTInputError("an ordinal variable needs its levels in order, e.g. ordinal:A,B,C")
        if len(set(self.levels)) != len(self.levels):
            raise SIRTInputError(f"repeated categorical levels in {list(self.levels)}")


def parse_categorical(spec) -> Categorical:
    """``"one_hot"``, ``"ordinal:A,B,C"`` or a mapping ``{ordinal: [A, B, C]}`` / ``{one_hot: [x, y]}``."""
    if isinstance(spec, dict) and len(spec) == 1:
        kind, levels = next(iter(spec.items()))
        levels = levels if isinstance(levels, (list, tuple)) else str(levels).split(",")
    else:
        kind, _, text = str(spec).partition(":")
        levels = text.split(",") if text else []
    return Categorical(str(kind).strip().lower().replace("-", "_"), tuple(str(v).strip() for v in levels if str(v).strip()))


def encode_categorical(table: pd.DataFrame, declared: dict[str, Categorical]) -> pd.DataFrame:
    """The table with each declared text column replaced by numbers; empty cells stay empty (NaN).

    A value that is not one of the declared levels is an error (a typo must not become a new category).
    """
    table = table.copy()
    for column, spec in declared.items():
        _require(table, [column], "the table")
        values = table[column].map(lambda v: None if pd.isna(v) or str(v).strip() == "" else _normalise_level(v))
        present = sorted({v for v in values if v is not None})
        levels = list(spec.levels) or present
        unknown = sorted(set(present) - set(levels))
        if unknown:
            raise SIRTInputError(f"column {column!r}: values {unknown} are not among the declared levels {levels}")
        position = table.columns.get_loc(column)
        table = table.drop(columns=[column])
        if spec.kind == "ordinal":
            table.insert(position, column, [np.nan if v is None else float(levels.index(v)) for v in values])
        else:
            for offset, level in enumerate(levels):
                name = f"{column}_{re.sub(r'[^a-z0-9]+', '_', level.lower()).strip('_')}"
                table.insert(position + offset, name, [np.nan if v is None else float(v == level) for v in values])
    return table


def _normalise_level(value) -> str:
    text = str(value).strip()
    return text[:-2] if text.endswith(".0") and text[:-2].isdigit() else text
