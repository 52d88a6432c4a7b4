"""Extraction presets: how each image kind is prepared and discretised, and which features are computed.

The default preset, ``sirt-dosiomics-2025``, is the published SIRT dosiomics protocol (99mTc-MAA and
90Y SPECT/CT, tumour / normal perfused liver / whole normal liver; PubMed 40064820):

============  ====================================================================  ==============
image         preparation                                                            bin width
============  ====================================================================  ==============
CT            resample to 1.5 × 1.5 × 1.5 mm (B-spline), then clip to −500…500 HU    20 HU
SPECT         clip to 0…99.9th percentile of the whole image                         50 (image units)
dose, BED     clip to 0…a fixed upper value per structure and source (table below)   1 Gy
============  ====================================================================  ==============

Published upper values (Gy): 99mTc-MAA tumour 650.34, NPL 158.02, WNL 127.08; 90Y tumour 416.25,
NPL 133.16, WNL 123.08. The issue states one table for "dose and BED maps", so BED maps are clipped
at the same numbers by default (``bed_upper_gy: same``); ``bed_upper_gy: lq`` instead maps each
dose value through the structure's LQ parameters, so that exactly the voxels saturated in the dose
map saturate in the BED map.

*Clip* means the voxel values are limited to the range (``numpy.clip``); the voxels stay in the
structure. ``range_mode: resegment`` uses pyradiomics' ``resegmentRange`` instead, which removes
voxels outside the range from every class but shape.

Features: pyradiomics' default set, all non-deprecated features of the seven 3D classes: 18
first-order, 14 shape (3D), 24 GLCM, 16 GLRLM, 16 GLSZM, 14 GLDM, 5 NGTDM = **107 per structure**,
321 for three structures. (The issue's per-class list, 19 + 16 + 10 shape-2D + 24 + 16 + 16 + 5 +
14, adds up to 120, not 107; 107 is what pyradiomics computes by default and what the published
count is.) ``shape2d: true`` adds the 9 non-deprecated 2D shape features of the axial slice with the
largest cross-section (pyradiomics only computes shape2D on a single-slice mask).

PET (``pet``) is not in the published protocol; its preset is an SlicerSIRT choice: clip to
0…99.9th percentile, bin width 20 000 Bq/mL (images are converted to Bq/mL first when their units
are known).

Any field can be overridden from a YAML file (see :func:`load_preset`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from SIRTDosimetryLib.vocabulary import ROLE_OF_STRUCTURE

from .naming import SOURCES, STANDARD_STRUCTURES, image_token, source_token, structure_token

DEFAULT_PRESET_NAME = "sirt-dosiomics-2025"

FEATURE_CLASSES: tuple[str, ...] = ("firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
"""The seven 3D classes, in column order."""

EXPECTED_FEATURE_COUNTS: dict[str, int] = {
    "firstorder": 18,
    "shape": 14,
    "glcm": 24,
    "glrlm": 16,
    "glszm": 16,
    "gldm": 14,
    "ngtdm": 5,
}
"""Non-deprecated features per class in pyradiomics 3.x; 107 in all. Checked by the tests."""

SHAPE2D_FEATURE_COUNT = 9
FEATURES_PER_STRUCTURE = sum(EXPECTED_FEATURE_COUNTS.values())  # 107

PUBLISHED_UPPER_GY: dict[str, dict[str, float]] = {
    "maa": {"tumour": 650.34, "npl": 158.02, "wnl": 127.08},
    "y90": {"tumour": 416.25, "npl": 133.16, "wnl": 123.08},
}
"""Upper clip values of dose (and BED) maps per source and structure, from the published protocol."""

RANGE_MODES = ("clip", "resegment")
MASK_MODES = ("majority", "center")


@dataclass(frozen=True)
class ImageSettings:
    """How one image kind is prepared before pyradiomics discretises it with a fixed bin width."""

    bin_width: float
    clip_low: float | None = None
    clip_high: float | str | None = None  # a number, "p<percentile>" of the whole image, or "structure" (table)
    resample_mm: tuple[float, float, float] | None = None
    interpolator: str = "sitkBSpline"
    range_mode: str = "clip"  # "clip" values, or "resegment" (pyradiomics resegmentRange)
    units: str = ""  # for documentation and provenance only

    def __post_init__(self) -> None:
        if not (isinstance(self.bin_width, (int, float)) and self.bin_width > 0):
            raise ValueError(f"bin_width must be a positive number, got {self.bin_width!r}")
        if self.range_mode not in RANGE_MODES:
            raise ValueError(f"range_mode must be one of {RANGE_MODES}, got {self.range_mode!r}")
        if isinstance(self.clip_high, str) and self.clip_high != "structure":
            percentile_value(self.clip_high)  # validates "p99.9"
        if self.resample_mm is not None:
            if len(self.resample_mm) != 3 or not all(float(v) >= 0 for v in self.resample_mm):
                raise ValueError(f"resample_mm must be three non-negative spacings (mm), got {self.resample_mm!r}")


def percentile_value(spec: str) -> float:
    """``"p99.9"`` → 99.9."""
    try:
        value = float(spec[1:]) if spec.startswith("p") else float("nan")
    except ValueError:
        value = float("nan")
    if not 0 < value <= 100:
        raise ValueError(f"clip_high {spec!r}: give a number, 'structure', or a percentile such as 'p99.9'")
    return value


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    images: dict[str, ImageSettings]
    upper_gy: dict[str, dict[str, float]] = field(default_factory=lambda: copy.deepcopy(PUBLISHED_UPPER_GY))
    bed_upper_gy: str | dict[str, dict[str, float]] = "same"  # "same" (dose table), "lq" (dose table through LQ), or a table
    lq: dict[str, str | tuple[float, float]] = field(
        default_factory=lambda: dict(ROLE_OF_STRUCTURE)  # each standard structure gets its role's LQ preset
    )
    classes: tuple[str, ...] = FEATURE_CLASSES
    shape2d: bool = False
    mask_mode: str = "majority"
    structures: tuple[str, ...] = STANDARD_STRUCTURES
    pyradiomics: dict[str, Any] = field(default_factory=dict)  # extra settings passed to every extraction

    def __post_init__(self) -> None:
        for kind in self.images:
            image_token(kind)
        for cls in self.classes:
            if cls not in FEATURE_CLASSES:
                raise ValueError(f"unknown feature class {cls!r}; choose from {', '.join(FEATURE_CLASSES)}")
        if self.mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {self.mask_mode!r}")
        if isinstance(self.bed_upper_gy, str) and self.bed_upper_gy not in ("same", "lq"):
            raise ValueError(f"bed_upper_gy must be 'same', 'lq' or a table, got {self.bed_upper_gy!r}")
        for key in ("binWidth", "binCount", "resampledPixelSpacing", "resegmentRange", "label", "force2D"):
            if key in self.pyradiomics:
                raise ValueError(f"pyradiomics setting {key!r} is set per image kind by the preset, not under 'pyradiomics'")

    def image(self, kind: str) -> ImageSettings:
        if kind not in self.images:
            raise ValueError(f"preset {self.name!r} has no settings for {kind!r} images")
        return self.images[kind]

    def upper_gy_for(self, image_kind: str, source: str, structure: str) -> float | None:
        """The published-style per-structure upper clip value of a dose or BED map, or None if the table has none."""
        table = self.upper_gy
        if image_kind == "bed" and isinstance(self.bed_upper_gy, dict):
            table = self.bed_upper_gy
        return table.get(source, {}).get(structure)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["images"] = {k: asdict(v) for k, v in self.images.items()}
        return json.loads(json.dumps(data))  # tuples -> lists, plain JSON

    @property
    def feature_count(self) -> int:
        return sum(EXPECTED_FEATURE_COUNTS[c] for c in self.classes) + (SHAPE2D_FEATURE_COUNT if self.shape2d else 0)


def _published() -> Preset:
    return Preset(
        name=DEFAULT_PRESET_NAME,
        description=(
            "Published SIRT dosiomics protocol (99mTc-MAA and 90Y SPECT/CT; tumour, normal perfused liver, "
            "whole normal liver): 107 pyradiomics features per structure"
        ),
        images={
            "ct": ImageSettings(bin_width=20.0, clip_low=-500.0, clip_high=500.0, resample_mm=(1.5, 1.5, 1.5), units="HU"),
            "spect": ImageSettings(bin_width=50.0, clip_low=0.0, clip_high="p99.9", units="counts/s (image values as stored)"),
            "pet": ImageSettings(bin_width=20000.0, clip_low=0.0, clip_high="p99.9", units="Bq/mL (SlicerSIRT choice)"),
            "dose": ImageSettings(bin_width=1.0, clip_low=0.0, clip_high="structure", units="Gy"),
            "bed": ImageSettings(bin_width=1.0, clip_low=0.0, clip_high="structure", units="Gy"),
        },
    )


PRESETS: dict[str, Preset] = {DEFAULT_PRESET_NAME: _published()}


def default_preset() -> Preset:
    return PRESETS[DEFAULT_PRESET_NAME]


def _merge(base: dict, changes: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def preset_from_dict(data: dict, base: Preset | None = None) -> Preset:
    """Overlay ``data`` (same keys as :class:`Preset`, nested dicts merged) onto ``base``."""
    data = dict(data)
    if "base" in data:
        base_name = data.pop("base")
        if base_name not in PRESETS:
            raise ValueError(f"unknown base preset {base_name!r}; known: {', '.join(PRESETS)}")
        base = PRESETS[base_name]
    base = base or default_preset()
    known = {f.name for f in fields(Preset)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown preset keys {unknown}; known: {sorted(known)}")
    # Normalise the keys of the overrides first, so that "90Y: {Tumor: 500}" merges into y90/tumour.
    for table in ("upper_gy", "bed_upper_gy"):
        if isinstance(data.get(table), dict):
            data[table] = _normalise_table(data[table])
    if isinstance(data.get("lq"), dict):
        data["lq"] = {structure_token(k): v for k, v in data["lq"].items()}
    if isinstance(data.get("images"), dict):
        data["images"] = {image_token(k): v for k, v in data["images"].items()}
    merged = _merge(base.to_dict(), data)
    image_fields = {f.name for f in fields(ImageSettings)}
    images = {}
    for kind, settings in merged["images"].items():
        bad = sorted(set(settings) - image_fields)
        if bad:
            raise ValueError(f"unknown settings {bad} for {kind!r} images; known: {sorted(image_fields)}")
        if settings.get("resample_mm") is not None:
            settings["resample_mm"] = tuple(float(v) for v in settings["resample_mm"])
        images[image_token(kind)] = ImageSettings(**settings)
    merged["images"] = images
    merged["upper_gy"] = _normalise_table(merged["upper_gy"])
    if isinstance(merged["bed_upper_gy"], dict):
        merged["bed_upper_gy"] = _normalise_table(merged["bed_upper_gy"])
    merged["lq"] = {structure_token(k): (tuple(v) if isinstance(v, list) else v) for k, v in merged["lq"].items()}
    merged["classes"] = tuple(merged["classes"])
    merged["structures"] = tuple(structure_token(s) for s in merged["structures"])
    if "name" not in data and data:
        merged["name"] = f"{base.name}+custom"
    return Preset(**merged)


def _normalise_table(table: dict) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for source, values in table.items():
        out[source_token(source)] = {structure_token(k): float(v) for k, v in values.items()}
    return out


def load_preset(spec: str | Path | dict | Preset | None = None) -> Preset:
    """A preset from its name, a YAML/JSON file of overrides, a dict of overrides, or None (the default).

    Example override file::

        base: sirt-dosiomics-2025
        name: my-protocol
        shape2d: true
        images:
          dose: {bin_width: 2.0}
          spect: {clip_high: p99.5}
        upper_gy: {y90: {tumour: 500}}
    """
    if spec is None:
        return default_preset()
    if isinstance(spec, Preset):
        return spec
    if isinstance(spec, dict):
        return preset_from_dict(spec)
    if str(spec) in PRESETS:
        return PRESETS[str(spec)]
    path = Path(spec)
    if not path.exists():
        raise ValueError(f"preset {str(spec)!r} is neither a known preset ({', '.join(PRESETS)}) nor a file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"preset file {path} must hold a mapping of settings")
    return preset_from_dict(data)


def with_changes(preset: Preset, **changes) -> Preset:
    """A copy of ``preset`` with top-level fields replaced (e.g. ``shape2d=True``)."""
    return replace(preset, **changes)


def pyradiomics_settings(preset: Preset, kind: str, clip: tuple[float | None, float | None] | None = None) -> dict:
    """The settings handed to ``RadiomicsFeatureExtractor`` for one image kind.

    ``clip`` is the resolved (low, high) range; it becomes ``resegmentRange`` when the image kind's
    ``range_mode`` is ``resegment`` (in ``clip`` mode values are clipped before pyradiomics sees them).
    """
    image = preset.image(kind)
    settings: dict[str, Any] = {
        "binWidth": float(image.bin_width),
        "label": 1,
        "additionalInfo": False,
        "interpolator": image.interpolator,
        "resampledPixelSpacing": list(image.resample_mm) if image.resample_mm is not None else None,
        "padDistance": 5,
    }
    settings.update(preset.pyradiomics)
    if image.range_mode == "resegment" and clip is not None and any(v is not None for v in clip):
        low = clip[0] if clip[0] is not None else float("-inf")
        high = clip[1] if clip[1] is not None else float("inf")
        settings["resegmentRange"] = [float(low), float(high)]
    return settings


__all__ = [
    "DEFAULT_PRESET_NAME",
    "EXPECTED_FEATURE_COUNTS",
    "FEATURES_PER_STRUCTURE",
    "FEATURE_CLASSES",
    "ImageSettings",
    "PRESETS",
    "PUBLISHED_UPPER_GY",
    "Preset",
    "SHAPE2D_FEATURE_COUNT",
    "SOURCES",
    "default_preset",
    "load_preset",
    "pyradiomics_settings",
    "with_changes",
]
