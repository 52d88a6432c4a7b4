"""Which feature columns each modelling strategy uses: every column rule lives here.

A *group* is a named regular expression over column names; a *strategy* is a list of groups
whose columns it pools. The defaults follow SIRTDosiomics' naming scheme
(``SIRTDosiomicsLib.naming``)::

    <source>_<image>_<structure>_<class>_<feature>   maa_spect_tumour_glcm_JointEnergy
    <source>_dvc_<structure>_<metric>                y90_dvc_tumour_dose_mean_gy
    clinical_<name>                                  clinical_child_pugh_score

with source ``maa`` or ``y90`` and image ``ct``, ``spect``, ``dose`` or ``bed``. Dose-volume
metrics (SIRTDosimetryLib ``analysis/constraints.py``) start with ``dose_`` or ``bed_``; the
remaining structure metrics (``volume_ml``, the tumour-to-normal ratios ``tnr_*``) describe the
structure rather than one quantity and join both the Dose and the BED DVH strategies.
Bookkeeping columns (``*_error``, ``*_warning``, ``*_diagnostics_*``, ``patient_error``) and
``n_voxels`` are never features.

Default strategies: 6 feature categories × 6 input subsets = 36, named
``<source>_<category>_<subset>[+clinical]``:

==========  ==========================  ===================================
category    subsets                     groups
==========  ==========================  ===================================
radiomics   ct, spect, ct+spect         ``<source>_ct``, ``<source>_spect``
dosiomics   dose, bed, dose+bed         ``<source>_dose``, ``<source>_bed``
dvh         dose, bed, dose+bed         ``<source>_dvc_dose|bed`` + ``<source>_dvc_structure?``
==========  ==========================  ===================================

for each source (``maa``, ``y90``), each subset with and without the ``clinical`` group.

A strategy is left out of a study when one of its groups matches no column of the table (a
group name ending in ``?`` is optional: ``<source>_dvc_structure?``), or when it would use exactly
the columns of a strategy listed before it.

Both tables can be replaced from a JSON file (:func:`load_rules`)::

    {"groups": {"maa_ct": "^maa_ct_...", ...},
     "strategies": {"my_strategy": ["maa_ct", "clinical"], ...},
     "exclude": "..."}

Keys that are left out keep their defaults.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from SIRTDosimetryLib.errors import SIRTInputError

SOURCES = ("maa", "y90")
IMAGE_GROUPS = ("ct", "spect", "dose", "bed")

_STRUCTURE = r"[a-z0-9][a-z0-9-]*"
_TOKEN = r"[A-Za-z0-9]+"

EXCLUDE_DEFAULT = r"(_error|_warning)$|_diagnostics_|^patient_error$|_dvc_[a-z0-9-]+_n_voxels$"
"""Bookkeeping columns of SIRTDosiomics feature tables; never model inputs."""


def _default_groups() -> dict[str, str]:
    groups = {}
    for source in SOURCES:
        for image in IMAGE_GROUPS:
            groups[f"{source}_{image}"] = rf"^{source}_{image}_{_STRUCTURE}_(?!diagnostics_){_TOKEN}_{_TOKEN}$"
        groups[f"{source}_dvc_dose"] = rf"^{source}_dvc_{_STRUCTURE}_dose_[a-z0-9_]+$"
        groups[f"{source}_dvc_bed"] = rf"^{source}_dvc_{_STRUCTURE}_bed_[a-z0-9_]+$"
        groups[f"{source}_dvc_structure"] = rf"^{source}_dvc_{_STRUCTURE}_(volume_ml|tnr_[a-z0-9_]+)$"
    groups["clinical"] = r"^clinical_"
    return groups


def _default_strategies() -> dict[str, tuple[str, ...]]:
    strategies: dict[str, tuple[str, ...]] = {}
    for source in SOURCES:
        s = source
        subsets = {
            "radiomics": {"ct": (f"{s}_ct",), "spect": (f"{s}_spect",), "ct+spect": (f"{s}_ct", f"{s}_spect")},
            "dosiomics": {"dose": (f"{s}_dose",), "bed": (f"{s}_bed",), "dose+bed": (f"{s}_dose", f"{s}_bed")},
            "dvh": {
                "dose": (f"{s}_dvc_dose", f"{s}_dvc_structure?"),
                "bed": (f"{s}_dvc_bed", f"{s}_dvc_structure?"),
                "dose+bed": (f"{s}_dvc_dose", f"{s}_dvc_bed", f"{s}_dvc_structure?"),
            },
        }
        for category, by_subset in subsets.items():
            for subset, groups in by_subset.items():
                strategies[f"{s}_{category}_{subset}"] = groups
                strategies[f"{s}_{category}_{subset}+clinical"] = (*groups, "clinical")
    return strategies


DEFAULT_GROUPS: dict[str, str] = _default_groups()
DEFAULT_STRATEGIES: dict[str, tuple[str, ...]] = _default_strategies()


def _group_name(entry: str) -> str:
    return entry.removesuffix("?")


def is_bookkeeping_column(column: str, exclude: str = EXCLUDE_DEFAULT) -> bool:
    return re.search(exclude, column) is not None


@dataclass(frozen=True)
class StrategyRules:
    """Groups (name → regex), strategies (name → groups) and the columns never used."""

    groups: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_GROUPS))
    strategies: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_STRATEGIES))
    exclude: str = EXCLUDE_DEFAULT

    def __post_init__(self) -> None:
        for name, pattern in (*self.groups.items(), ("exclude", self.exclude)):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise SIRTInputError(f"column rule {name!r}: bad regular expression {pattern!r}: {exc}") from None
        for name, groups in self.strategies.items():
            unknown = [g for g in groups if _group_name(g) not in self.groups]
            if unknown or not groups:
                raise SIRTInputError(f"strategy {name!r} uses unknown group(s) {unknown or '(none)'}")

    def group_columns(self, group: str, available: list[str]) -> list[str]:
        pattern = re.compile(self.groups[_group_name(group)])
        return [c for c in available if not is_bookkeeping_column(c, self.exclude) and pattern.search(c)]

    def columns(self, strategy: str, available: list[str]) -> list[str]:
        """The columns of ``available`` that ``strategy`` uses, in table order."""
        if strategy not in self.strategies:
            raise SIRTInputError(f"unknown strategy {strategy!r}")
        chosen = {c for g in self.strategies[strategy] for c in self.group_columns(g, available)}
        return [c for c in available if c in chosen]

    def select(self, patterns: list[str] | None) -> list[str]:
        """Strategy names matching shell-style patterns (``maa_*``, ``y90_dvh_dose``); all when None."""
        if not patterns:
            return list(self.strategies)
        chosen = [s for s in self.strategies if any(fnmatch.fnmatchcase(s, p) for p in patterns)]
        unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(s, p) for s in self.strategies)]
        if unmatched:
            raise SIRTInputError(f"no strategy matches {unmatched}; known: {', '.join(self.strategies)}")
        return chosen

    def resolve(self, strategies: list[str], available: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
        """Columns per strategy, and the strategies left out with the reason.

        A strategy is left out when one of its required groups matches no column, or when it would
        use exactly the columns of a strategy before it.
        """
        resolved: dict[str, list[str]] = {}
        skipped: dict[str, str] = {}
        seen: dict[tuple[str, ...], str] = {}
        for name in strategies:
            columns = self.columns(name, available)
            key = tuple(columns)
            empty = [g for g in self.strategies[name] if not g.endswith("?") and not self.group_columns(g, available)]
            if empty:
                skipped[name] = f"no column of the feature table matches group(s) {', '.join(empty)}"
            elif key in seen:
                skipped[name] = f"uses the same columns as {seen[key]}"
            else:
                resolved[name] = columns
                seen[key] = name
        return resolved, skipped

    def to_dict(self) -> dict:
        return {"groups": self.groups, "strategies": {k: list(v) for k, v in self.strategies.items()}, "exclude": self.exclude}


def load_rules(path: str | Path | None = None) -> StrategyRules:
    """The default rules, or those of a JSON file (keys left out keep their defaults)."""
    if path is None:
        return StrategyRules()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SIRTInputError(f"cannot read strategy rules {path}: {exc}") from None
    unknown = set(data) - {"groups", "strategies", "exclude"}
    if unknown:
        raise SIRTInputError(f"strategy rules {path}: unknown keys {sorted(unknown)}")
    groups = {**DEFAULT_GROUPS, **data.get("groups", {})}
    strategies = {k: tuple(v) for k, v in data["strategies"].items()} if "strategies" in data else dict(DEFAULT_STRATEGIES)
    return StrategyRules(groups=groups, strategies=strategies, exclude=data.get("exclude", EXCLUDE_DEFAULT))
