"""Planning versus verification: a pre-treatment (99mTc-MAA) and a post-treatment (90Y) dose map.

The two maps must already be registered (same physical space); ``resample_like`` brings the
second onto the grid of the first with an identity transform (linear interpolation), which is a
change of grid, not a registration.

Per patient: dose difference map (post - pre), per-structure feature differences, isodose-volume
Dice within a structure. Across a cohort, for one feature: Wilcoxon signed-rank test,
Spearman's rank correlation and Bland-Altman agreement (bias, SD of the differences, 95 % limits
of agreement bias ± 1.96 SD; Bland & Altman, Lancet 1986;i:307), as used to compare MAA- and
90Y-based dosimetry (e.g. Kafrouni et al., EJNMMI Res 2019; Gnesin et al., J Nucl Med 2016;57:1672).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import stats

from ..errors import SIRTInputError
from .dvh import check_weights


def same_grid(a: sitk.Image, b: sitk.Image, tolerance_mm: float = 1e-3) -> bool:
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tolerance_mm)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=tolerance_mm)
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)
    )


def resample_like(image: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """``image`` on the grid of ``reference`` (identity transform, linear interpolation, 0 outside)."""
    if same_grid(image, reference):
        return image
    return sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)


def dose_difference(pre_gy: np.ndarray, post_gy: np.ndarray) -> np.ndarray:
    """post - pre (Gy), voxel by voxel."""
    pre, post = np.asarray(pre_gy, dtype=np.float64), np.asarray(post_gy, dtype=np.float64)
    if pre.shape != post.shape:
        raise SIRTInputError(f"dose maps on different grids: {pre.shape} and {post.shape}")
    return (post - pre).astype(np.float32)


def isodose_dice(pre_gy: np.ndarray, post_gy: np.ndarray, weights: np.ndarray, levels_gy: Sequence[float]) -> dict[float, float | None]:
    """Dice of the isodose volumes {D >= L} of the two maps inside a structure, per level L.

    Dice = 2 |P ∩ Q| / (|P| + |Q|) with volumes weighted by the structure weights; None where both
    isodose volumes are empty.
    """
    pre, post = np.asarray(pre_gy), np.asarray(post_gy)
    if pre.shape != post.shape:
        raise SIRTInputError(f"dose maps on different grids: {pre.shape} and {post.shape}")
    w = check_weights(weights, pre.shape).astype(np.float64)
    out: dict[float, float | None] = {}
    for level in levels_gy:
        p, q = pre >= level, post >= level
        denominator = float(np.sum(w * p) + np.sum(w * q))
        out[float(level)] = 2.0 * float(np.sum(w * (p & q))) / denominator if denominator > 0 else None
    return out


def feature_differences(pre: Mapping[str, float | None], post: Mapping[str, float | None]) -> list[dict]:
    """For every feature in both: pre, post, post - pre and (post - pre)/pre (None when pre is 0 or missing)."""
    rows = []
    for name in pre:
        if name not in post:
            continue
        a, b = pre[name], post[name]
        if a is None or b is None:
            rows.append({"feature": name, "pre": a, "post": b, "difference": None, "relative_difference": None})
            continue
        rows.append({"feature": name, "pre": a, "post": b, "difference": b - a, "relative_difference": (b - a) / a if a != 0 else None})
    return rows


@dataclass(frozen=True)
class BlandAltman:
    n: int
    bias: float  # mean of post - pre
    sd: float
    lower_loa: float  # bias - 1.96 SD
    upper_loa: float


@dataclass(frozen=True)
class CohortComparison:
    feature: str
    n: int
    wilcoxon_statistic: float | None
    wilcoxon_p: float | None
    spearman_rho: float | None
    spearman_p: float | None
    bland_altman: BlandAltman


def _paired(pre: Sequence[float], post: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(pre, dtype=np.float64), np.asarray(post, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise SIRTInputError(f"paired values need two lists of the same length, got {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise SIRTInputError("paired values must be finite numbers")
    if a.size < 2:
        raise SIRTInputError("a cohort comparison needs at least 2 pairs")
    return a, b


def bland_altman(pre: Sequence[float], post: Sequence[float]) -> BlandAltman:
    a, b = _paired(pre, post)
    d = b - a
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    return BlandAltman(int(d.size), bias, sd, bias - 1.96 * sd, bias + 1.96 * sd)


def cohort_comparison(feature: str, pre: Sequence[float], post: Sequence[float]) -> CohortComparison:
    """Wilcoxon signed-rank (two-sided; None when all differences are zero), Spearman, Bland-Altman."""
    a, b = _paired(pre, post)
    w_stat = w_p = None
    if np.any(b - a != 0):
        result = stats.wilcoxon(b, a)
        w_stat, w_p = float(result.statistic), float(result.pvalue)
    rho = rho_p = None
    if np.ptp(a) > 0 and np.ptp(b) > 0:
        result = stats.spearmanr(a, b)
        rho, rho_p = float(result.statistic), float(result.pvalue)
    return CohortComparison(feature, int(a.size), w_stat, w_p, rho, rho_p, bland_altman(a, b))


def none_if_nan(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
