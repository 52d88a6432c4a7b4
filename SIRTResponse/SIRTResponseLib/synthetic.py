"""Synthetic cohorts with SIRTDosiomics column names, for tests, benchmarks and demonstrations.

Columns are spread over the default strategy groups (:mod:`.strategies`): radiomics of CT and
SPECT and dosiomics of dose and BED for both sources, dose-volume metrics of dose and BED, and
five clinical columns. Within each image group, features are noisy copies of a few latent
factors (radiomic features are strongly inter-correlated), so the redundancy filter has work.

A planted signal shifts chosen columns by ``effect`` standard deviations in responders; with
``effect = 0`` the labels are independent of every feature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from SIRTDosimetryLib.analysis.constraints import QUANTITIES
from SIRTDosiomicsLib.naming import SOURCES, STANDARD_STRUCTURES, clinical_column, dvc_column, feature_column, parse_column

_IMAGES = ("ct", "spect", "dose", "bed")
_CLASSES = ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm", "shape")
CLINICAL = tuple(clinical_column(name) for name in ("age", "afp", "bilirubin", "albumin", "child pugh"))
SIGNAL_COLUMNS = (feature_column("y90", "dose", "tumour", "firstorder", "Feature0"), dvc_column("y90", "tumour", "dose_mean_gy"))


def _column_names(n_features: int) -> list[str]:
    n_dvc_per_quantity = max(2, n_features // 50)
    dvc = [dvc_column(s, "tumour", f"{q}_v{i}_pct") for s in SOURCES for q in QUANTITIES for i in range(n_dvc_per_quantity)]
    for s in SOURCES:
        dvc[dvc.index(dvc_column(s, "tumour", "dose_v0_pct"))] = dvc_column(s, "tumour", "dose_mean_gy")
    n_image = max(len(SOURCES) * len(_IMAGES), n_features - len(dvc) - len(CLINICAL))
    image_groups = [(s, img) for s in SOURCES for img in _IMAGES]
    names = []
    for g, (source, image) in enumerate(image_groups):
        count = n_image // len(image_groups) + (g < n_image % len(image_groups))
        names += [feature_column(source, image, STANDARD_STRUCTURES[i % 3], _CLASSES[i % 7], f"Feature{i}") for i in range(count)]
    return names + dvc + list(CLINICAL)


def _family(name: str) -> str:
    """The latent-factor family of a column: its source and image (``maa_ct``, ``y90_dvc``) or clinical name."""
    column = parse_column(name)
    if column.kind == "clinical":
        return f"clinical_{column.name.split('_')[0]}"
    return f"{column.source}_{column.image or 'dvc'}"


def synthetic_cohort(
    n_patients: int = 40,
    n_features: int = 200,
    *,
    effect: float = 1.5,
    signal_columns: tuple[str, ...] = SIGNAL_COLUMNS,
    responder_fraction: float = 0.5,
    n_factors: int = 10,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A feature table (``patient_id`` + features) and a label table (``patient_id``, ``response``).

    Responses are mRECIST categories: responders CR or PR, non-responders SD or PD.
    """
    rng = np.random.default_rng(seed)
    names = _column_names(n_features)
    n_responders = int(round(responder_fraction * n_patients))
    y = np.zeros(n_patients, dtype=int)
    y[rng.choice(n_patients, n_responders, replace=False)] = 1
    values = np.zeros((n_patients, len(names)))
    family = [_family(n) for n in names]  # maa_ct, y90_dvc, clinical_age, ...
    for prefix in sorted(set(family)):
        idx = [i for i, f in enumerate(family) if f == prefix]
        factors = rng.normal(size=(n_patients, n_factors))
        loadings = rng.uniform(0.5, 1.5, size=len(idx)) * rng.choice([-1, 1], size=len(idx))
        which = rng.integers(0, n_factors, size=len(idx))
        values[:, idx] = factors[:, which] * loadings + rng.normal(scale=0.5, size=(n_patients, len(idx)))
    for column in signal_columns:
        values[:, names.index(column)] += effect * y
    values = values * rng.uniform(1, 100, size=len(names)) + rng.uniform(0, 50, size=len(names))
    ids = [f"P{i:03d}" for i in range(n_patients)]
    features = pd.DataFrame(values, columns=names)
    features.insert(0, "patient_id", ids)
    categories = np.where(y == 1, rng.choice(["CR", "PR"], n_patients), rng.choice(["SD", "PD"], n_patients))
    labels = pd.DataFrame({"patient_id": ids, "response": categories})
    return features, labels
