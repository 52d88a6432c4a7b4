"""Univariate analysis: Mann–Whitney U per feature with Benjamini–Hochberg FDR.

For each feature, responders' values are compared with non-responders' by the two-sided
Mann–Whitney U test (SciPy, exact or asymptotic as SciPy chooses for the sample sizes; missing
values left out). The p-values of all tested features are adjusted by Benjamini & Hochberg (1995,
JRSS B 57:289) — SciPy's ``false_discovery_control(method="bh")`` — and a feature is significant
when its q-value ≤ ``q`` (0.05).

``auc`` = U / (n₁ n₀) with U the statistic of the responders: the probability that a responder's
value exceeds a non-responder's (0.5 = no difference; < 0.5 = lower in responders).

Per-lesion tables: the test assumes independent rows; lesions of one patient are not. Use the
mixed model of :mod:`.survival` for lesion-level dose–response.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

COLUMNS = (
    "feature",
    "n_responders",
    "n_non_responders",
    "median_responders",
    "median_non_responders",
    "u_statistic",
    "auc",
    "p_value",
    "q_value",
    "significant",
)


def mann_whitney_table(features: pd.DataFrame, y, q: float = 0.05) -> pd.DataFrame:
    """One row per feature (columns :data:`COLUMNS`), sorted by p-value.

    Features with fewer than two values in a class, or constant ones, get no p-value and take no
    part in the FDR adjustment.
    """
    y = np.asarray(y).astype(bool)
    rows = []
    for name in features.columns:
        values = features[name].to_numpy(dtype=float)
        responders = values[y & np.isfinite(values)]
        others = values[~y & np.isfinite(values)]
        row = {
            "feature": name,
            "n_responders": len(responders),
            "n_non_responders": len(others),
            "median_responders": float(np.median(responders)) if len(responders) else np.nan,
            "median_non_responders": float(np.median(others)) if len(others) else np.nan,
            "u_statistic": np.nan,
            "auc": np.nan,
            "p_value": np.nan,
        }
        if len(responders) >= 2 and len(others) >= 2 and np.ptp(np.concatenate([responders, others])) > 0:
            test = stats.mannwhitneyu(responders, others, alternative="two-sided")
            row |= {"u_statistic": float(test.statistic), "auc": float(test.statistic) / (len(responders) * len(others)), "p_value": float(test.pvalue)}
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(COLUMNS[:-2]))
    tested = table["p_value"].notna()
    table["q_value"] = np.nan
    if tested.any():
        table.loc[tested, "q_value"] = stats.false_discovery_control(table.loc[tested, "p_value"].to_numpy(), method="bh")
    table["significant"] = table["q_value"] <= q
    return table.sort_values(["p_value", "feature"], na_position="last", kind="stable").reset_index(drop=True)
