"""Dose-volume constraints (DVCs) per structure for the feature table, from the dosimetry module.

:func:`dose_volume_columns` is the single hook between cohort extraction and
``SIRTDosimetryLib.analysis.constraints``: it turns this package's structures (union weights per
role on the dose grid) into ``AnalysisStructure`` objects, calls ``compute_constraints`` and names
the results ``<source>_dvc_<structure>_<feature>`` (feature names are the constraints module's own,
e.g. ``dose_d70_gy``, ``bed_v120_pct``, ``tnr_wnl``). Patient-level values (lung shunt fraction,
injected activity) become ``<source>_dvc_patient_<name>``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from SIRTDosimetryLib.vocabulary import OTHER, ROLE_OF_STRUCTURE

from . import naming



def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def dose_volume_columns(
    source: str,
    dose_gy: np.ndarray,
    weights: dict[str, np.ndarray],
    voxel_volume_ml: float,
    bed_gy: dict[str, np.ndarray] | None = None,
    counts: np.ndarray | None = None,
    lung_shunt_fraction: float | None = None,
    injected_activity_gbq: float | None = None,
) -> tuple[dict[str, float], list[str]]:
    """DVC columns of one source; returns (columns, warnings).

    ``weights`` maps a structure token to its weights on the dose grid (fraction of each voxel),
    ``bed_gy`` a structure token to the BED map computed with that structure's LQ parameters, and
    ``counts`` is the activity/counts image on the dose grid (for tumour-to-normal ratios).
    """
    from SIRTDosimetryLib.analysis.constraints import compute_constraints, patient_features
    from SIRTDosimetryLib.analysis.derived import AnalysisStructure

    structures = {
        name: AnalysisStructure(name=name, weights=w, role=ROLE_OF_STRUCTURE.get(name, OTHER), source="segment")
        for name, w in weights.items()
    }
    results = compute_constraints(
        np.asarray(dose_gy),
        list(structures.values()),
        voxel_volume_ml,
        bed=bed_gy,
        counts=counts,
        normal_perfused=structures.get("npl"),
        whole_normal=structures.get("wnl"),
    )
    columns: dict[str, float] = {}
    warnings: list[str] = []
    for r in results:
        for feature, value in r.features.items():
            columns[naming.dvc_column(source, r.name, feature)] = _number(value)
        warnings += r.warnings
    for feature, value in patient_features(lung_shunt_fraction, injected_activity_gbq).items():
        columns[naming.dvc_column(source, naming.PATIENT_STRUCTURE, feature)] = _number(value)
    return columns, warnings
