"""Which feature columns each modelling strategy uses: every column rule lives here.

A *group* is a named regular expression over column names; a *strategy* is a list of groups
whose columns it pools. The default groups are built from SIRTDosiomics' column grammar
(``SIRTDosiomicsLib.naming``: ``feature_pattern``, ``dvc_pattern``, ``clinical_pattern``,
``BOOKKEEPING_PATTERN``), so the two packages cannot drift apart::

    <source>_<image>_<structure>_<class>_<feature>   maa_spect_tumour_glcm_JointEnergy
    <source>_dvc_<structure>_<metric>                y90_dvc_tumour_dose_mean_gy
    <source>_dvc_patient_<value>                     y90_dvc_patient_lsf
    clinical_<name>                                  clinical_child_pugh_score

with source ``maa`` or ``y90`` and image ``ct``, ``spect``, ``pet``, ``dose`` or ``bed``.
Dose-volume metrics (SIRTDosimetryLib ``analysis/constraints.py``, also written by ``sirt dvh``)
start with ``dose_`` or ``bed_``; the structure metrics (``volume_ml``, the tumour-to-normal ratios
``tnr_*``) and the patient-level values (lung shunt fraction ``lsf``, ``injected_activity_gbq``)
join every DVH strategy of their source. Bookkeeping columns (``*_error``, ``*_warning``,
``*_diagnostics_*``, ``patient_error``, ``*_n_voxels``) are never features.

Default strategies, named ``<source>_<category>_<subset>[+clinical]``:

==========  ===================================  ==================================================
category    subsets                              groups
==========  ===================================  ==================================================
radiomics   ct, spect, ct+spect, pet, ct+pet     ``<source>_ct``, ``<source>_spect``, ``<source>_pet``
dosiomics   dose, bed, dose+bed                  ``<source>_dose``, ``<source>_bed``
dvh         dose, bed, dose+bed                  ``<source>_dvc_dose|bed`` + ``<source>_dvc_structure?``
                                                 + ``<source>_dvc_patient?``
==========  ===================================  ==================================================

for each source (``maa``, ``y90``), each subset with and without the ``clinical`` group: 44
strategies. The published design (SPECT, no PET) resolves to its 36; the PET subsets run when the
table has PET features (90Y PET/CT).

A strategy is left out of a study when one of its groups matches no column of the table (a
group name ending in ``?`` is optional: ``<source>_dvc_structure?``), or when it would use exactly
the columns of a strategy listed before it. :meth:`StrategyRules.unused` lists the columns that no
strategy of a study uses, with the reason, for ``strategies.json`` and the report.

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

from SIRTDosimetryLib.analysis.constraints import PATIENT_FEATURES, QUANTITIES, STRUCTURE_META, TNR_FEATURES
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosiomicsLib.naming import (
    BOOKKEEPING_PATTERN,
    METRIC_PATTERN,
    PATIENT_STRUCTURE,
    SOURCES,
    clinical_pattern,
    dvc_pattern,
    feature_pattern,
)

IMAGE_GROUPS = ("ct", "spect", "pet", "dose", "bed")
RADIOMICS_SUBSETS: dict[str, tuple[str, ...]] = {"ct": ("ct",), "spect": ("spect",), "ct+spect": ("ct", "spect"), "pet": ("pet",), "ct+pet": ("ct", "pet")}
DOSIOMICS_SUBSETS: dict[str, tuple[str, ...]] = {"dose": ("dose",), "bed": ("bed",), "dose+bed": ("dose", "bed")}

EXCLUDE_DEFAULT = BOOKKEEPING_PATTERN
"""Bookkeeping columns of SIRTDosiomics feature tables; never model inputs."""

UNUSED_BOOKKEEPING = "bookkeeping (error, warning, diagnostics, voxel count)"
UNUSED_NO_GROUP = "matches no group of the strategy rules"
UNUSED_NOT_RUN = "its strategies are not part of this study"


def _structure_metrics() -> str:
    return "|".join([m for m in STRUCTURE_META if m != "n_voxels"] + list(TNR_FEATURES))


def _default_groups() -> dict[str, str]:
    groups = {}
    for source in SOURCES:
        for image in IMAGE_GROUPS:
            groups[f"{source}_{image}"] = feature_pattern(source, image)
        for quantity in QUANTITIES:
            groups[f"{source}_dvc_{quantity}"] = dvc_pattern(source, rf"{quantity}_{METRIC_PATTERN}")
        groups[f"{source}_dvc_structure"] = dvc_pattern(source, _structure_metrics())
        groups[f"{source}_dvc_patient"] = dvc_pattern(source, "|".join(PATIENT_FEATURES), structure=PATIENT_STRUCTURE)
    groups["clinical"] = clinical_pattern()
    return groups


def _default_strategies() -> dict[str, tuple[str, ...]]:
    strategies: dict[str, tuple[str, ...]] = {}
    for s in SOURCES:
        context = (f"{s}_dvc_structure?", f"{s}_dvc_patient?")
        subsets = {
            "radiomics": {name: tuple(f"{s}_{image}" for image in images) for name, images in RADIOMICS_SUBSETS.items()},
            "dosiomics": {name: tuple(f"{s}_{image}" for image in images) for name, images in DOSIOMICS_SUBSETS.items()},
            "dvh": {name: (*(f"{s}_dvc_{q}" for q in quantities), *context) for name, quantities in DOSIOMICS_SUBSETS.items()},
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

    def unused(self, available: list[str], resolved: dict[str, list[str]]) -> dict[str, str]:
        """Every column of ``available`` that no strategy in ``resolved`` uses → why (in table order)."""
        used = {c for columns in resolved.values() for c in columns}
        grouped = {c for g in self.groups for c in self.group_columns(g, available)}
        reasons = {}
        for column in available:
            if column in used:
                continue
            if is_bookkeeping_column(column, self.exclude):
                reasons[column] = UNUSED_BOOKKEEPING
            else:
                reasons[column] = UNUSED_NOT_RUN if column in grouped else UNUSED_NO_GROUP
        return reasons

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
