"""Structures derived on the dose grid: segment arithmetic, margins, threshold contours, lesions.

All operations work on voxel weights (the fraction of each dose-grid voxel inside a structure, see
``structures.py``). Where two structures share a voxel only partly, their sub-voxel layout is
unknown; the rules below are exact in the stated cases and bounds otherwise:

- ``union(a, b) = min(1, a + b)``: exact when a and b do not overlap (separate lesions).
- ``subtract(a, b) = max(0, a - b)``: exact when b lies inside a (tumours inside the liver).
- ``intersect(a, b) = min(a, b)``: exact when one lies inside the other.

Every derived structure that comes out empty is an error (``SIRTInputError``), never a silent
empty row.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..errors import SIRTInputError
from ..vocabulary import NORMAL_LIVER, OTHER, role

DEFAULT_TUMOUR_PATTERNS: tuple[str, ...] = ("*tumor*", "*tumour*", "*lesion*")
DEFAULT_THRESHOLD_FRACTION = 0.10
DEFAULT_MIN_LESION_VOLUME_ML = 5.0
DEFAULT_HEALTHY_LIVER_MARGIN_MM = 10.0


@dataclass(frozen=True)
class AnalysisStructure:
    """A structure on the dose grid as analysed: weights, role and how it was made.

    ``activity_weights`` (optional) is a second VOI in which the activity (energy) is measured
    while the volume/mass is that of ``weights`` — the expanded-VOI healthy-liver convention.
    """

    name: str
    weights: np.ndarray
    role: str = OTHER  # a role of ``vocabulary.ROLES`` (aliases accepted)
    definition: str = ""
    activity_weights: np.ndarray | None = None
    source: str = "segment"  # segment | derived | threshold | healthy_liver | lesion
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "role", role(self.role))
        except SIRTInputError as error:
            raise SIRTInputError(f"structure {self.name!r}: {error}") from None

    def volume_ml(self, voxel_volume_ml: float) -> float:
        return float(np.sum(self.weights, dtype=np.float64) * voxel_volume_ml)


# --- weight arithmetic -------------------------------------------------------------------------


def _as_weights(w: np.ndarray) -> np.ndarray:
    return np.asarray(w, dtype=np.float32)


def _same_shape(arrays: Sequence[np.ndarray]) -> None:
    shapes = {np.shape(a) for a in arrays}
    if len(shapes) > 1:
        raise SIRTInputError(f"structures are on different grids (shapes {sorted(shapes)}); map them onto the dose grid first")


def union(*weights: np.ndarray) -> np.ndarray:
    """min(1, sum of weights): exact for non-overlapping structures."""
    if not weights:
        raise SIRTInputError("union of no structures")
    _same_shape(weights)
    return np.minimum(1.0, np.sum([_as_weights(w) for w in weights], axis=0, dtype=np.float32)).astype(np.float32)


def subtract(a: np.ndarray, *others: np.ndarray) -> np.ndarray:
    """max(0, a - union(others)): exact when the others lie inside a."""
    if not others:
        return _as_weights(a).copy()
    _same_shape([a, *others])
    return np.maximum(0.0, _as_weights(a) - union(*others)).astype(np.float32)


def intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """min(a, b): exact when one structure lies inside the other."""
    _same_shape([a, b])
    return np.minimum(_as_weights(a), _as_weights(b))


def require_nonempty(weights: np.ndarray, name: str, definition: str = "") -> np.ndarray:
    if not np.any(weights > 0):
        how = f" (= {definition})" if definition else ""
        raise SIRTInputError(f"derived structure {name!r}{how} is empty on the dose grid")
    return weights


# --- names and expressions ----------------------------------------------------------------------


def match_names(pattern: str, names: Sequence[str]) -> list[str]:
    """Names matching ``pattern``: exact, then case-insensitive, then a glob (``Tumor*``), in order."""
    if pattern in names:
        return [pattern]
    lowered = [n for n in names if n.lower() == pattern.lower()]
    if lowered:
        return lowered
    if any(c in pattern for c in "*?["):
        return [n for n in names if fnmatch.fnmatchcase(n.lower(), pattern.lower())]
    return []


def resolve_names(patterns: Sequence[str], names: Sequence[str], what: str = "structure") -> list[str]:
    """All names matching any of the patterns (order of ``names``); an unmatched pattern is an error."""
    found: list[str] = []
    for pattern in patterns:
        matched = match_names(pattern.strip(), names)
        if not matched:
            raise SIRTInputError(f"{what} {pattern!r} matches none of: {', '.join(map(repr, names))}")
        found.extend(m for m in matched if m not in found)
    return [n for n in names if n in found]


_OPERATOR = re.compile(r"\s+([+\-&])\s+")


def parse_expression(expression: str) -> list[tuple[str, str]]:
    """Split ``"A - B + C*"`` into [("+", "A"), ("-", "B"), ("+", "C*")].

    Operators ``+`` (union), ``-`` (difference), ``&`` (intersection) need spaces around them, so
    that names such as ``Tumor-1`` stay whole. Evaluation is left to right.
    """
    parts = _OPERATOR.split(" " + expression.strip() + " ")
    first = parts[0].strip()
    if not first:
        raise SIRTInputError(f"expression {expression!r} must start with a structure name")
    terms = [("+", first)]
    for op, name in zip(parts[1::2], parts[2::2]):
        if not name.strip():
            raise SIRTInputError(f"expression {expression!r}: operator {op!r} without a structure after it")
        terms.append((op, name.strip()))
    return terms


def evaluate_expression(expression: str, weights: Mapping[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """Weights of a structure expression over named weights; returns them and the expanded definition."""
    names = list(weights)
    result: np.ndarray | None = None
    expanded = []
    for op, pattern in parse_expression(expression):
        matched = match_names(pattern, names)
        if not matched:
            raise SIRTInputError(f"in {expression!r}: {pattern!r} matches no structure; structures are: {', '.join(map(repr, names))}")
        term = union(*(weights[m] for m in matched))
        label = matched[0] if len(matched) == 1 else "(" + " + ".join(matched) + ")"
        if result is None:
            result, expanded = term.copy(), [label]
            continue
        result = {"+": lambda a, b: union(a, b), "-": subtract, "&": intersect}[op](result, term)
        expanded.append(f"{op} {label}")
    return result, " ".join(expanded)


def derive(name: str, expression: str, weights: Mapping[str, np.ndarray], role: str = OTHER) -> AnalysisStructure:
    """A derived structure such as ``normal perfused liver = perfused volume - Tumor*``."""
    w, definition = evaluate_expression(expression, weights)
    require_nonempty(w, name, definition)
    return AnalysisStructure(name, w, role, definition, source="derived")


# --- margins, thresholds, lesions -----------------------------------------------------------------


def expand(weights: np.ndarray, spacing_zyx_mm: Sequence[float], margin_mm: float) -> np.ndarray:
    """Expand a structure by ``margin_mm``: weight 1 for voxels whose centre lies within the margin
    of the centre of a voxel at least half inside the structure (Euclidean distance in mm, with the
    voxel spacing); other voxels keep their weight."""
    if not (margin_mm >= 0 and math.isfinite(margin_mm)):
        raise SIRTInputError(f"margin must be a non-negative number of mm, got {margin_mm!r}")
    weights = _as_weights(weights)
    core = weights >= 0.5
    if margin_mm == 0 or not core.any():
        return weights.copy()
    spacing = np.asarray(spacing_zyx_mm, dtype=np.float64)
    pad = np.ceil(margin_mm / spacing).astype(int) + 1
    nz = [np.flatnonzero(core.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    lo = [max(0, n[0] - p) for n, p in zip(nz, pad)]
    hi = [min(s, n[-1] + p + 1) for n, s, p in zip(nz, core.shape, pad)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    distance = ndimage.distance_transform_edt(~core[box], sampling=spacing)
    result = weights.copy()
    result[box] = np.where(distance <= margin_mm + 1e-9, 1.0, weights[box])
    return result


def threshold_structure(
    values: np.ndarray, voi_weights: np.ndarray, fraction: float = DEFAULT_THRESHOLD_FRACTION, name: str = "threshold"
) -> np.ndarray:
    """Voxels of the VOI whose value is at least ``fraction`` × the VOI maximum (they keep their VOI weight).

    Used for perfusion-based targets on 99mTc-MAA SPECT or 90Y PET (default 10 % of the maximum).
    The maximum is taken over voxels with a positive VOI weight.
    """
    if not (isinstance(fraction, (int, float)) and 0.0 < fraction < 1.0):
        raise SIRTInputError(f"threshold fraction must be in (0, 1), got {fraction!r}")
    values = np.asarray(values)
    voi = _as_weights(voi_weights)
    _same_shape([values, voi])
    inside = voi > 0
    if not inside.any():
        raise SIRTInputError(f"{name}: the threshold VOI is empty on the image grid")
    peak = float(np.nanmax(values[inside]))
    if not peak > 0:
        raise SIRTInputError(f"{name}: no positive value inside the threshold VOI")
    result = np.where(inside & (values >= fraction * peak), voi, 0.0).astype(np.float32)
    return require_nonempty(result, name, f"{100 * fraction:g} % of max")


def healthy_liver(
    liver: np.ndarray,
    lesions: Sequence[np.ndarray],
    spacing_zyx_mm: Sequence[float],
    margin_mm: float = DEFAULT_HEALTHY_LIVER_MARGIN_MM,
    name: str = "healthy liver",
) -> AnalysisStructure:
    """Healthy liver with the expanded-VOI convention (Kafrouni et al., J Nucl Med 2018;59:1289).

    Volume/mass: liver − lesions. Activity: measured in (liver expanded by ``margin_mm``) − lesions,
    which recovers the counts blurred outside the liver contour by resolution and breathing. The
    feature ``dose_mean_expanded_voi_gy`` = sum over the expanded VOI of w·D divided by the sum of
    the weights of the original structure (energy in the expanded VOI over the original mass, for a
    uniform density); the DVH and all other features use the original structure.
    """
    lesion_union = union(*lesions) if lesions else np.zeros_like(_as_weights(liver))
    weights = require_nonempty(subtract(liver, lesion_union), name, "liver - lesions")
    activity_weights = subtract(expand(liver, spacing_zyx_mm, margin_mm), lesion_union)
    return AnalysisStructure(
        name,
        weights,
        NORMAL_LIVER,
        f"liver - lesions; activity in liver + {margin_mm:g} mm - lesions",
        activity_weights=activity_weights,
        source="healthy_liver",
        details={"margin_mm": margin_mm},
    )


@dataclass(frozen=True)
class Lesion:
    name: str
    source_structure: str
    weights: np.ndarray
    volume_ml: float
    included: bool  # volume at least the minimum
    component: int | None  # connected-component index when a segment was split, else None


def split_components(weights: np.ndarray, connectivity: int = 26) -> list[np.ndarray]:
    """Connected components (voxels with a positive weight), largest first; each keeps its weights."""
    if connectivity not in (6, 18, 26):
        raise SIRTInputError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    structure = ndimage.generate_binary_structure(3, {6: 1, 18: 2, 26: 3}[connectivity])
    weights = _as_weights(weights)
    labels, n = ndimage.label(weights > 0, structure=structure)
    if n == 0:
        return []
    sizes = ndimage.sum_labels(weights, labels, index=np.arange(1, n + 1))
    order = np.argsort(-sizes, kind="stable")
    return [np.where(labels == k + 1, weights, 0.0).astype(np.float32) for k in order]


def lesions_from_structures(
    tumours: Mapping[str, np.ndarray],
    voxel_volume_ml: float,
    min_volume_ml: float = DEFAULT_MIN_LESION_VOLUME_ML,
    split: bool = False,
    connectivity: int = 26,
) -> list[Lesion]:
    """One lesion per tumour structure, or per connected component with ``split``; flagged as
    included when at least ``min_volume_ml`` (e.g. 5 mL, below which partial-volume effects make
    lesion doses unreliable on SPECT/PET)."""
    if not (min_volume_ml >= 0 and math.isfinite(min_volume_ml)):
        raise SIRTInputError(f"minimum lesion volume must be a non-negative number of mL, got {min_volume_ml!r}")
    lesions = []
    for name, w in tumours.items():
        parts = split_components(w, connectivity) if split else [_as_weights(w)]
        for k, part in enumerate(parts):
            volume = float(part.sum(dtype=np.float64) * voxel_volume_ml)
            label = f"{name} #{k + 1}" if split and len(parts) > 1 else name
            lesions.append(Lesion(label, name, part, volume, volume >= min_volume_ml, k + 1 if split else None))
    return lesions
