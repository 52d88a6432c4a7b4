"""Parsing helpers shared by the ``sirt`` subcommands: their errors are ``SIRTInputError``s.

``NAME=VALUE`` items, numbers and LQ parameters are read by the dose-parameter builder's helpers
(``dose.parameters``), so the command line, the Slicer module and manifests read them alike.
"""

from __future__ import annotations

from ..dose.parameters import name_value_pairs, to_number


def label_names(items: list[str]) -> dict[int, str]:
    """``VALUE=NAME`` items naming labelmap labels."""
    return {int(to_number(v, "label value")): n for v, n in name_value_pairs(items, "--labels")}
