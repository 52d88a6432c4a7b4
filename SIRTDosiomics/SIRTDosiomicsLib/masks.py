"""Structures as masks on an image grid: segments mapped and combined per structure (tumour, npl, wnl…).

A structure whose segments cannot be mapped (absent, empty, outside the image) gets an error instead
of a mask; the others are unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from SIRTDosimetryLib.errors import error_line

from . import naming
from .presets import Preset


@dataclass
class StructureMask:
    """A structure on one image grid: a boolean mask (z, y, x) and its union weights, or why there is none."""

    mask: np.ndarray | None
    error: str | None = None
    weights: np.ndarray | None = None  # float32 fraction of each voxel (union of the segments), when known


def grid_key(image: sitk.Image) -> tuple:
    """Size, spacing, origin and direction, rounded: equal for images on the same voxel grid."""
    return (
        tuple(image.GetSize()),
        tuple(round(v, 6) for v in image.GetSpacing()),
        tuple(round(v, 4) for v in image.GetOrigin()),
        tuple(round(v, 6) for v in image.GetDirection()),
    )


def masks_from_segmentation(segmentation, reference: sitk.Image, structures: dict[str, tuple[str, ...]],
                            mask_mode: str = "majority") -> dict[str, StructureMask]:
    """Map named segments onto ``reference`` and combine them per structure (union).

    A structure whose segments cannot be mapped (absent, empty, outside the image) gets an error
    instead of a mask; the others are unaffected.
    """
    from SIRTDosimetryLib.structures import map_segments

    mode = "fraction" if mask_mode == "majority" else "center"
    if all(grid_key(layer) == grid_key(reference) for layer in segmentation.layers):
        # Same grid (a CT and its own segmentation): every voxel is fully in or out, so the centre
        # rule gives exactly the majority masks, without supersampling a 512² grid 27 times.
        mode = "center"
    failures: dict[str, str] = {}
    canonical: dict[str, tuple[str, ...]] = {}
    for structure, names in structures.items():
        found = []
        for name in names:
            try:
                found.append(segmentation.segment(name).name)
            except Exception as exc:
                failures[name] = error_line(exc)
                found.append(name)
        canonical[structure] = tuple(found)
    wanted = list(dict.fromkeys(n for names in canonical.values() for n in names if n not in failures))
    mapped: dict[str, Any] = {}
    try:
        mapped = map_segments(segmentation, reference, wanted, mode=mode)
    except Exception:
        for name in wanted:  # isolate the failing segment(s)
            try:
                mapped.update(map_segments(segmentation, reference, [name], mode=mode))
            except Exception as exc:
                failures[name] = error_line(exc)
    return combine_structures(canonical, {k: v.weights for k, v in mapped.items()}, failures, mask_mode)


def combine_structures(structures: dict[str, tuple[str, ...]], weights: dict[str, np.ndarray], failures: dict[str, str],
                       mask_mode: str = "majority") -> dict[str, StructureMask]:
    """Structure masks from per-segment weights: union weight clip(Σw, 0, 1), then ≥ 0.5 (majority) or > 0 (center)."""
    out: dict[str, StructureMask] = {}
    for structure, names in structures.items():
        bad = [failures[n] if n in failures[n] else f"{n!r}: {failures[n]}" for n in names if n in failures]
        if bad:
            out[structure] = StructureMask(None, "; ".join(bad))
            continue
        if not names:
            out[structure] = StructureMask(None, "no segment named for this structure")
            continue
        union = np.clip(sum(weights[n].astype(np.float32) for n in names), 0.0, 1.0)
        mask = union >= 0.5 if mask_mode == "majority" else union > 0
        out[structure] = StructureMask(mask, None, union)
    return out


def structure_segments(structures: dict[str, str | tuple[str, ...] | list[str]]) -> dict[str, tuple[str, ...]]:
    """``{"Tumor": "Tumor 1"}`` → ``{"tumour": ("Tumor 1",)}``: structure tokens and their segment names."""
    return {naming.structure_token(k): ((v,) if isinstance(v, str) else tuple(v)) for k, v in structures.items()}


def structure_masks(image: sitk.Image, segmentation, segments: dict[str, tuple[str, ...]], preset: Preset) -> dict[str, StructureMask]:
    """The structures' masks on ``image``'s grid, from a ``Segmentation`` (``segments``: structure token →
    segment names) or a dict of boolean masks."""
    if isinstance(segmentation, dict):
        return {naming.structure_token(k): StructureMask(np.asarray(v, dtype=bool)) for k, v in segmentation.items()}
    return masks_from_segmentation(segmentation, image, segments, preset.mask_mode)
