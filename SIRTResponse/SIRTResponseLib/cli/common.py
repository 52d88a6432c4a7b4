"""Arguments shared by the response subcommands: the cohort table(s) and how labels are read."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from SIRTDosimetryLib.errors import SIRTInputError


def add_cohort_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cohort")
    g.add_argument("--features", required=True, type=Path, help="feature table (.csv, .tsv or .parquet), one row per patient or lesion")
    g.add_argument("--labels", type=Path, help="label table joined on the id column(s) (default: the label column of the feature table)")
    g.add_argument("--label-column", default="response", help="column with the response category (default response)")
    g.add_argument("--criterion", default="mrecist", choices=("mrecist", "easl", "recist", "percist", "binary"), help="response criterion (default mrecist): CR+PR responders, SD+PD non-responders")
    g.add_argument("--id-column", default="patient_id", help="patient id column (default patient_id)")
    g.add_argument("--lesion-column", help="lesion id column: rows are lesions, grouped by patient in every split")
    g.add_argument("--categorical", action="append", default=[], metavar="COLUMN=one_hot|ordinal:A,B,C",
                   help="encode a text column (e.g. clinical_child_pugh=ordinal:A,B,C) instead of refusing it (repeatable)")


def categorical_declarations(items: list[str]) -> dict:
    """``COLUMN=SPEC`` items as :class:`~SIRTResponseLib.labels.Categorical` per column."""
    from ..labels import parse_categorical

    declared = {}
    for item in items:
        column, sep, spec = item.partition("=")
        if not sep or not column.strip():
            raise SIRTInputError(f"--categorical must look like COLUMN=one_hot or COLUMN=ordinal:A,B,C, got {item!r}")
        declared[column.strip()] = parse_categorical(spec)
    return declared


def load_cohort_from_args(args: argparse.Namespace):
    from ..labels import build_cohort, encode_categorical, read_table

    labels = read_table(args.labels) if args.labels is not None else None
    return build_cohort(
        encode_categorical(read_table(args.features), categorical_declarations(getattr(args, "categorical", []))),
        labels,
        label_column=args.label_column,
        criterion=args.criterion,
        id_column=args.id_column,
        lesion_column=args.lesion_column,
    )


def comma_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise SIRTInputError(f"empty list {text!r}")
    return items


def int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in comma_list(text) or [])
    except ValueError:
        raise SIRTInputError(f"expected comma-separated integers, got {text!r}") from None


def file_stem(name: str) -> str:
    """A column or model name as a safe file name."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)
