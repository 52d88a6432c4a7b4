"""Parsing helpers shared by the ``sirt`` subcommands: their errors are ``SIRTInputError``s."""

from __future__ import annotations

import csv

from ..dose.radiobiology import PRESETS, LQParameters
from ..errors import SIRTInputError


def pairs(items: list[str], what: str) -> list[tuple[str, str]]:
    """``NAME=VALUE`` items as (name, value); the last ``=`` separates, so names may contain ``=``-free spaces."""
    result = []
    for item in items:
        name, sep, value = item.rpartition("=")
        if not sep or not name or not value:
            raise SIRTInputError(f"{what} must look like NAME=VALUE, got {item!r}")
        result.append((name, value))
    return result


def to_float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SIRTInputError(f"{what}: {text!r} is not a number") from None


def parse_lq(items: list[str]) -> dict[str, LQParameters]:
    """``NAME=PRESET`` or ``NAME=ALPHA_BETA_GY,T_REP_H`` items as LQ parameters per segment, in the order given."""
    result = {}
    for name, value in pairs(items, "--bed-params"):
        if value in PRESETS:
            result[name] = PRESETS[value]
        else:
            parts = value.split(",")
            if len(parts) != 2:
                raise SIRTInputError(f"--bed-params {name}: give a preset ({', '.join(PRESETS)}) or 'alpha_beta_gy,t_rep_h'")
            result[name] = LQParameters(to_float(parts[0], "alpha/beta"), to_float(parts[1], "repair half-time"))
    return result


def label_names(items: list[str]) -> dict[int, str]:
    """``VALUE=NAME`` items naming labelmap labels."""
    return {int(to_float(v, "label value")): n for v, n in pairs(items, "--labels")}


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
