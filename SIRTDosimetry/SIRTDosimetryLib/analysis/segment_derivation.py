"""Derived segments on the activity grid: what is derived and how, without any MRML.

What is derived (segment names are fixed, so that scripts and the dose-volume analysis find them):

======================================  ======================================================================
segment                                 definition
======================================  ======================================================================
``normal perfused liver``               union of the perfused-volume segments − union of the tumours
``whole normal liver``                  union of the liver segments − union of the tumours
``threshold 10 % of <VOI>``             voxels of the VOI whose activity (or dose) is at least the fraction
                                        (default 10 %) of the maximum inside the VOI; one segment per VOI,
                                        the percentage in the name is the fraction used
======================================  ======================================================================

Tumours are the segments given, or by default those named like a tumour (``*tumor*``, ``*tumour*``,
``*lesion*``, as ``sirt dvh``) other than the liver/perfused segments themselves; names may be globs
(``Tumor*``) and match case-insensitively. A normal liver asked for with no tumour segment is an error.

How
---
The operand segments are mapped onto the activity grid as the dose computation maps them
(``structures.map_segments``, same partial-voxel mode: each activity voxel gets the fraction of it
inside the segment) and combined with ``analysis/derived.py`` (difference = max(0, a − union(b)),
threshold = ``threshold_structure``). A derived segment holds the activity voxels whose derived
weight is **at least 0.5** (at least half of the voxel inside): its volume equals the weighted volume
to within voxel rounding, and both are recorded.

The Slicer adapter ``mrml/derived_segments.py`` maps the operand segments from their nodes and adds
the result to a new segmentation node.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import SIRTInputError
from ..vocabulary import NORMAL_PERFUSED_NAME, WHOLE_NORMAL_NAME
from . import derived
from .derived import DEFAULT_THRESHOLD_FRACTION, DEFAULT_TUMOUR_PATTERNS

THRESHOLD_IMAGES: tuple[str, ...] = ("activity", "dose")
MIN_WEIGHT = 0.5
"""A voxel is in a derived segment when its derived weight is at least this."""

NORMAL_PERFUSED_COLOR = (0.30, 0.78, 0.42)  # green
WHOLE_NORMAL_COLOR = (0.33, 0.55, 0.92)  # blue
THRESHOLD_COLORS = ((0.95, 0.36, 0.18), (0.88, 0.22, 0.66), (0.96, 0.80, 0.16), (0.58, 0.32, 0.86), (0.18, 0.80, 0.84))
"""Orange-red, magenta, yellow, violet, cyan; further threshold targets get golden-ratio hues."""


def threshold_segment_name(voi: str, fraction: float) -> str:
    """``threshold 10 % of liver``: the percentage is ``100 × fraction`` with up to 6 significant digits."""
    return f"threshold {100 * fraction:g} % of {voi}"


def threshold_color(index: int) -> tuple[float, float, float]:
    if index < len(THRESHOLD_COLORS):
        return THRESHOLD_COLORS[index]
    return colorsys.hsv_to_rgb((0.05 + index * 0.618034) % 1.0, 0.75, 0.92)


def _names(value, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    names = tuple(str(v).strip() for v in (value or ()))
    if any(not n for n in names):
        raise SIRTInputError(f"{what}: empty segment name")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class DerivedSegmentsSpec:
    """What to derive; empty lists derive nothing of that kind. Checked on construction."""

    normal_perfused_from: tuple[str, ...] = ()  # "normal perfused liver" = union(these) - tumours
    whole_normal_from: tuple[str, ...] = ()  # "whole normal liver" = union(these) - tumours
    tumours: tuple[str, ...] = ()  # names or globs; empty: segments named like a tumour
    threshold_vois: tuple[str, ...] = ()  # one threshold target per VOI
    threshold_fraction: float = DEFAULT_THRESHOLD_FRACTION
    threshold_image: str = "activity"  # activity | dose

    def __post_init__(self) -> None:
        for name in ("normal_perfused_from", "whole_normal_from", "tumours", "threshold_vois"):
            object.__setattr__(self, name, _names(getattr(self, name), name.replace("_", " ")))
        fraction = self.threshold_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not (math.isfinite(fraction) and 0.0 < fraction < 1.0):
            raise SIRTInputError(f"threshold fraction must be a number in (0, 1), e.g. 0.1 for 10 % of the maximum; got {fraction!r}")
        object.__setattr__(self, "threshold_fraction", float(fraction))
        if self.threshold_image not in THRESHOLD_IMAGES:
            raise SIRTInputError(f"threshold image must be one of {', '.join(THRESHOLD_IMAGES)}, got {self.threshold_image!r}")

    @property
    def requested(self) -> bool:
        return bool(self.normal_perfused_from or self.whole_normal_from or self.threshold_vois)

    @property
    def needs_tumours(self) -> bool:
        return bool(self.normal_perfused_from or self.whole_normal_from)


@dataclass
class DerivedStructure:
    name: str
    weights: np.ndarray  # float32 (z, y, x) on the activity grid, in [0, 1]
    mask: np.ndarray  # weights >= MIN_WEIGHT: the segment's voxels
    color: tuple[float, float, float]
    record: dict  # how it was derived (JSON-ready)
    image_role: str | None = None  # "activity" or "dose" for a threshold target


def resolve_operands(spec: DerivedSegmentsSpec, segment_names: Sequence[str]) -> dict[str, list[str]]:
    """Segment names each part of ``spec`` refers to (exact, case-insensitive, then glob matches)."""
    names = list(segment_names)
    operands = {
        "normal_perfused": derived.resolve_names(spec.normal_perfused_from, names, "perfused-volume segment"),
        "whole_normal": derived.resolve_names(spec.whole_normal_from, names, "liver segment"),
        "threshold_vois": derived.resolve_names(spec.threshold_vois, names, "threshold VOI"),
        "tumours": [],
    }
    if spec.needs_tumours:
        if spec.tumours:
            tumours = derived.resolve_names(spec.tumours, names, "tumour segment")
        else:
            bases = set(operands["normal_perfused"]) | set(operands["whole_normal"])
            tumours = [n for n in names if n not in bases and any(derived.match_names(p, [n]) for p in DEFAULT_TUMOUR_PATTERNS)]
        if not tumours:
            raise SIRTInputError(
                "the normal liver is the liver (or perfused volume) minus the tumours, but no segment is a tumour: "
                f"choose the tumour segments (segments are: {', '.join(map(repr, names))})"
            )
        for kind in ("normal_perfused", "whole_normal"):
            both = [n for n in operands[kind] if n in tumours]
            if both:
                raise SIRTInputError(f"segment(s) {', '.join(map(repr, both))} cannot be both a tumour and a liver/perfused volume")
        operands["tumours"] = tumours
    return operands


def needed_segments(operands: Mapping[str, list[str]]) -> list[str]:
    return list(dict.fromkeys(n for names in operands.values() for n in names))


def _binary(weights: np.ndarray, name: str, definition: str) -> np.ndarray:
    mask = weights >= MIN_WEIGHT
    if not mask.any():
        raise SIRTInputError(
            f"derived segment {name!r} (= {definition}) has no voxel at least half inside it on the activity grid"
        )
    return mask


def _volumes(weights: np.ndarray, mask: np.ndarray, voxel_ml: float) -> dict:
    return {
        "voxels": int(np.count_nonzero(mask)),
        "volume_ml": float(np.count_nonzero(mask) * voxel_ml),
        "weighted_volume_ml": float(np.sum(weights, dtype=np.float64) * voxel_ml),
    }


def compute_derived(
    spec: DerivedSegmentsSpec,
    operands: Mapping[str, list[str]],
    weights: Mapping[str, np.ndarray],
    images: Mapping[str, np.ndarray],
    voxel_ml: float,
) -> list[DerivedStructure]:
    """The derived structures of ``spec`` from segment weights on one grid; ``images`` maps
    ``"activity"``/``"dose"`` to voxel arrays on that grid (only the one thresholded is needed)."""
    structures: list[DerivedStructure] = []
    tumours = list(operands.get("tumours", ()))
    for kind, name, color in (
        ("normal_perfused", NORMAL_PERFUSED_NAME, NORMAL_PERFUSED_COLOR),
        ("whole_normal", WHOLE_NORMAL_NAME, WHOLE_NORMAL_COLOR),
    ):
        bases = list(operands.get(kind, ()))
        if not bases:
            continue
        w = derived.subtract(derived.union(*(weights[b] for b in bases)), *(weights[t] for t in tumours))
        base_label = bases[0] if len(bases) == 1 else "(" + " + ".join(bases) + ")"
        definition = base_label + "".join(f" - {t}" for t in tumours)
        derived.require_nonempty(w, name, definition)
        mask = _binary(w, name, definition)
        record = {
            "name": name, "kind": "difference", "definition": definition,
            "operands": {"union_of": bases, "minus": tumours}, **_volumes(w, mask, voxel_ml),
        }
        structures.append(DerivedStructure(name, w, mask, color, record))
    if operands.get("threshold_vois"):
        role = spec.threshold_image
        if role not in images or images[role] is None:
            raise SIRTInputError(f"a threshold on the {role} needs the {role} image")
        values = np.asarray(images[role])
        for index, voi in enumerate(operands["threshold_vois"]):
            name = threshold_segment_name(voi, spec.threshold_fraction)
            w = derived.threshold_structure(values, weights[voi], spec.threshold_fraction, name)
            peak = float(np.nanmax(values[weights[voi] > 0]))
            definition = f"{voi} where {role} >= {100 * spec.threshold_fraction:g} % of its maximum in {voi}"
            mask = _binary(w, name, definition)
            record = {
                "name": name, "kind": "threshold", "definition": definition,
                "operands": {"voi": voi, "fraction": spec.threshold_fraction, "image": {"role": role}},
                "voi_maximum": peak, "threshold_value": spec.threshold_fraction * peak, **_volumes(w, mask, voxel_ml),
            }
            structures.append(DerivedStructure(name, w, mask, threshold_color(index), record, image_role=role))
    return structures
