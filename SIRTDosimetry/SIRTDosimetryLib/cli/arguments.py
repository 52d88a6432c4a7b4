"""Parsing helpers shared by the ``sirt`` subcommands: their errors are ``SIRTInputError``s.

``NAME=VALUE`` items, numbers and LQ parameters are read by the dose-parameter builder's helpers
(``dose.parameters``), so the command line, the Slicer module and manifests read them alike.
"""

from __future__ import annotations

import csv

from ..dose.parameters import name_value_pairs, to_number
from ..errors import SIRTInputError


def label_names(items: list[str]) -> dict[int, str]:
    """``VALUE=NAME`` items naming labelmap labels."""
    return {int(to_number(v, "label value")): n for v, n in name_value_pairs(items, "--labels")}


def name_list(items: list[str], what: str) -> list[str]:
    """Names from repeated options, each a comma-separated list in which a name holding a comma is
    double-quoted (CSV rules: ``"Tumor 1,2",Liver``); surrounding spaces are dropped."""
    names = []
    for item in items:
        try:
            rows = list(csv.reader([item], skipinitialspace=True))
        except csv.Error as exc:
            raise SIRTInputError(f"{what} {item!r}: {exc}") from None
        names += [n.strip() for row in rows for n in row if n.strip()]
    if not names:
        raise SIRTInputError(f"{what} names no segment")
    return list(dict.fromkeys(names))
