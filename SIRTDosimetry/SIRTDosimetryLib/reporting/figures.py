"""Pictures of the dose on the anatomy for the patient report (matplotlib, Agg backend).

Each picture is a :class:`ReportFigure`: PNG bytes, a caption, and the legend entries actually
drawn (so that tests and readers can check which isodose levels and segments it shows).

Display conventions (radiological, as in Slicer's slice views): axial slices are seen from the feet
with the patient's right on the left of the image and anterior at the top; coronal slices from the
front, superior at the top; sagittal slices from the patient's left, anterior on the left. Images
are first reoriented to LPS index order with SimpleITK, so direction cosines and negative axes of
the input (e.g. a SPECT stored head-first with a negative z step) do not flip the pictures.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..analysis.plots import agg_pyplot
from ..errors import SIRTInputError

DEFAULT_ISODOSE_LEVELS_GY: tuple[float, ...] = (50.0, 100.0, 120.0, 205.0, 400.0)
"""Isodose lines drawn by default: 50 Gy (a normal-liver reference), 100/120 Gy (resin/glass tumour
response thresholds), 205 Gy (glass tumour target, DOSISPHERE-01, Garin et al. Lancet Gastroenterol
Hepatol 2021;6:17-29) and 400 Gy (high-dose region)."""

ISODOSE_COLOURS = ("#00e5ff", "#76ff03", "#ffea00", "#ff9100", "#ff1744", "#d500f9", "#ffffff")
SEGMENT_COLOURS = ("#ffffff", "#ff80ab", "#b388ff", "#82b1ff", "#a7ffeb", "#ccff90", "#ffd180", "#cfd8dc")
DOSE_WASH_CMAP = "turbo"
DOSE_WASH_ALPHA = 0.6
WASH_FLOOR_FRACTION = 0.02
"""Dose below this fraction of the display maximum is not washed, so the anatomy stays visible."""
DPI = 110
CROP_MARGIN_MM = 20.0


@dataclass(frozen=True)
class ReportFigure:
    """One picture of the report."""

    key: str  # short stable identifier, e.g. "slices_tumor_1"
    title: str
    caption: str
    png: bytes
    legend: tuple[str, ...]  # legend entries as drawn


@dataclass(frozen=True)
class DoseView:
    """A dose map with its background image and structures, all on the dose grid in LPS order.

    ``dose_gy``, ``background`` and every mask are numpy arrays indexed (z, y, x) with z increasing
    toward superior, y toward posterior and x toward the patient's left; ``spacing_mm`` is (x, y, z).
    """

    dose_gy: np.ndarray
    background: np.ndarray
    background_label: str
    masks: dict[str, np.ndarray]
    spacing_mm: tuple[float, float, float]


def cropped(view: DoseView, margin_mm: float = CROP_MARGIN_MM) -> DoseView:
    """The view cut to the box around all its structures plus ``margin_mm``: the pictures show the liver,
    not the whole field of view."""
    union = np.zeros(view.dose_gy.shape, dtype=bool)
    for m in view.masks.values():
        union |= m
    if not union.any():
        return view
    margin = [int(np.ceil(margin_mm / s)) for s in view.spacing_mm[::-1]]  # (z, y, x) voxels
    points = np.argwhere(union)
    lo = np.maximum(points.min(axis=0) - margin, 0)
    hi = np.minimum(points.max(axis=0) + 1 + np.asarray(margin), union.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    return DoseView(view.dose_gy[box], view.background[box], view.background_label,
                    {n: m[box] for n, m in view.masks.items()}, view.spacing_mm)


def to_lps(image: sitk.Image) -> sitk.Image:
    """The image resampled without interpolation into LPS index order (identity-like direction)."""
    return sitk.DICOMOrient(image, "LPS")


def segment_colour(index: int) -> str:
    return SEGMENT_COLOURS[index % len(SEGMENT_COLOURS)]


def centre_of(mask: np.ndarray) -> tuple[int, int, int]:
    """Voxel index (z, y, x) of a structure's centroid, rounded; the mask's own voxel nearest to it
    when the centroid falls outside the structure (a C-shaped lesion)."""
    points = np.argwhere(mask)
    centroid = points.mean(axis=0)
    nearest = points[np.argmin(((points - centroid) ** 2).sum(axis=1))]
    rounded = tuple(int(round(c)) for c in centroid)
    return rounded if mask[rounded] else tuple(int(c) for c in nearest)


def display_max_gy(dose_gy: np.ndarray, masks: Mapping[str, np.ndarray]) -> float:
    """Top of the colour scale: the 99.5th percentile of the dose inside the structures (the whole
    image when there are none), so that a few hot voxels do not wash out the scale."""
    inside = np.zeros(dose_gy.shape, dtype=bool)
    for m in masks.values():
        inside |= m
    values = dose_gy[inside] if inside.any() else dose_gy.ravel()
    values = values[np.isfinite(values)]
    top = float(np.percentile(values, 99.5)) if values.size else 0.0
    return top if top > 0 else 1.0


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


# Every 2D picture is an array whose row 0 is drawn at the bottom (origin "lower"), with an extent in mm.
_AXIS = {"axial": 0, "coronal": 1, "sagittal": 2}


def _oriented(picture: np.ndarray, plane: str) -> np.ndarray:
    """Axial rows run along y (anterior first): flipped so that anterior is at the top. Coronal and
    sagittal rows run along z (inferior first), already bottom-up."""
    return picture[::-1] if plane == "axial" else picture


def _plane(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
    return _oriented(np.take(volume, index, axis=_AXIS[plane]), plane)


def _projection(volume: np.ndarray, plane: str) -> np.ndarray:
    return _oriented(volume.max(axis=_AXIS[plane]), plane)


def _extent(shape2d: tuple[int, int], plane: str, spacing_mm: Sequence[float]) -> tuple[float, float, float, float]:
    sx, sy, sz = spacing_mm
    row_step, col_step = {"axial": (sy, sx), "coronal": (sz, sx), "sagittal": (sz, sy)}[plane]
    rows, cols = shape2d
    return (0.0, cols * col_step, 0.0, rows * row_step)


def _draw_panel(ax, view: DoseView, plane: str, index: int | None, levels_gy: Sequence[float], vmax: float, mip: bool = False):
    """Background, dose wash, isodose lines and segment contours of one plane; returns the wash image."""
    if mip:
        background = _projection(view.background, plane)
        dose = _projection(view.dose_gy, plane)
        masks = {n: _projection(m, plane) for n, m in view.masks.items()}
    else:
        background = _plane(view.background, plane, index)
        dose = _plane(view.dose_gy, plane, index)
        masks = {n: _plane(m, plane, index) for n, m in view.masks.items()}
    extent = _extent(dose.shape, plane, view.spacing_mm)
    origin = "lower"
    finite = background[np.isfinite(background)]
    bg_top = float(np.percentile(finite, 99.5)) if finite.size and np.percentile(finite, 99.5) > 0 else 1.0
    ax.imshow(background, cmap="gray", vmin=0.0, vmax=bg_top, extent=extent, origin=origin, interpolation="nearest")
    wash = np.ma.masked_less(np.nan_to_num(dose), WASH_FLOOR_FRACTION * vmax)
    image = ax.imshow(wash, cmap=DOSE_WASH_CMAP, vmin=0.0, vmax=vmax, alpha=DOSE_WASH_ALPHA, extent=extent,
                      origin=origin, interpolation="nearest")
    for level, colour in zip(levels_gy, ISODOSE_COLOURS):
        if np.nanmax(dose) >= level:
            ax.contour(np.nan_to_num(dose), levels=[level], colors=[colour], linewidths=1.2, extent=extent, origin=origin)
    for i, (name, mask) in enumerate(masks.items()):
        if mask.any() and not mask.all():
            ax.contour(mask.astype(np.float32), levels=[0.5], colors=[segment_colour(i)], linewidths=0.9,
                       linestyles="dashed", extent=extent, origin=origin)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_facecolor("black")
    return image


def _legend_handles(view: DoseView, levels_gy: Sequence[float], reached_max_gy: float):
    from matplotlib.lines import Line2D

    handles = []
    for level, colour in zip(levels_gy, ISODOSE_COLOURS):
        suffix = "" if reached_max_gy >= level else " (not reached)"
        handles.append(Line2D([], [], color=colour, linewidth=1.6, label=f"{level:g} Gy{suffix}"))
    for i, name in enumerate(view.masks):
        handles.append(Line2D([], [], color=segment_colour(i), linewidth=1.2, linestyle="dashed", label=name))
    return handles


def _finish(fig, image, view: DoseView, levels_gy: Sequence[float], title: str, reached_max_gy: float) -> tuple[str, ...]:
    """Title, colour bar in Gy on the right and the legend (isodose levels, then segments) below the panels."""
    fig.subplots_adjust(left=0.01, right=0.9, top=0.9, bottom=0.15, wspace=0.04, hspace=0.12)
    fig.suptitle(title, fontsize=10)
    bar = fig.colorbar(image, cax=fig.add_axes([0.915, 0.18, 0.014, 0.68]))
    bar.set_label("absorbed dose (Gy)")
    bar.solids.set_alpha(1.0)
    legend = fig.legend(handles=_legend_handles(view, levels_gy, reached_max_gy), loc="lower center",
                        ncol=min(7, len(levels_gy) + len(view.masks)), fontsize=7.5, facecolor="#303030",
                        edgecolor="#303030", labelcolor="white", framealpha=1.0)
    return tuple(t.get_text() for t in legend.get_texts())


def check_levels(levels_gy: Sequence[float]) -> tuple[float, ...]:
    """Isodose levels as floats; ``SIRTInputError`` unless positive, distinct, increasing and at most one per colour."""
    levels = tuple(float(v) for v in levels_gy)
    if not levels or any(not np.isfinite(v) or v <= 0 for v in levels) or list(levels) != sorted(set(levels)):
        raise SIRTInputError(f"isodose levels must be positive, distinct and increasing, got {list(levels_gy)}")
    if len(levels) > len(ISODOSE_COLOURS):
        raise SIRTInputError(f"at most {len(ISODOSE_COLOURS)} isodose levels, got {len(levels)}")
    return levels


def slices_figure(view: DoseView, structure: str, label: str, levels_gy: Sequence[float] = DEFAULT_ISODOSE_LEVELS_GY) -> ReportFigure:
    """Axial, coronal and sagittal slices through the centre of ``structure``."""
    levels = check_levels(levels_gy)
    z, y, x = centre_of(view.masks[structure])
    vmax = display_max_gy(view.dose_gy, view.masks)
    plt = agg_pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 5.2))
    try:
        fig.patch.set_facecolor("white")
        image = None
        for ax, plane, index in zip(axes, ("axial", "coronal", "sagittal"), (z, y, x)):
            image = _draw_panel(ax, view, plane, index, levels, vmax)
            ax.set_title(plane, fontsize=9)
        title = f"{label} | {structure}: slices through its centre"
        legend = _finish(fig, image, view, levels, title, float(np.nanmax(view.dose_gy)))
        png = _png(fig)
    finally:
        plt.close(fig)
    caption = (f"Dose colour wash (0-{vmax:.0f} Gy) over the {view.background_label}, isodose lines at "
               f"{', '.join(f'{v:g}' for v in levels)} Gy, segment contours dashed. Axial: patient right on the left; "
               "coronal and sagittal: superior at the top.")
    return ReportFigure(f"slices_{_key(structure)}", f"{structure}: axial, coronal and sagittal slices", caption, png, legend)


def mip_figure(view: DoseView, label: str, levels_gy: Sequence[float] = DEFAULT_ISODOSE_LEVELS_GY) -> ReportFigure:
    """Coronal and sagittal maximum intensity projections of the dose over those of the background."""
    levels = check_levels(levels_gy)
    vmax = display_max_gy(view.dose_gy, view.masks)
    plt = agg_pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.6))
    try:
        image = None
        for ax, plane in zip(axes, ("coronal", "sagittal")):
            image = _draw_panel(ax, view, plane, None, levels, vmax, mip=True)
            ax.set_title(f"{plane} MIP", fontsize=9)
        legend = _finish(fig, image, view, levels, f"{label} | maximum intensity projections", float(np.nanmax(view.dose_gy)))
        png = _png(fig)
    finally:
        plt.close(fig)
    caption = (f"Maximum intensity projection of the dose (colour wash and isodose lines) over that of the {view.background_label}; "
               "segment outlines are the projections of the segments.")
    return ReportFigure("mip", "Maximum intensity projections", caption, png, legend)


def comparison_figure(views: Mapping[str, DoseView], structure: str, label: str,
                      levels_gy: Sequence[float] = DEFAULT_ISODOSE_LEVELS_GY) -> ReportFigure:
    """The same axial and coronal slices through ``structure`` for two dose maps on one grid, side by side
    on one colour scale (e.g. MAA-predicted and 90Y post-treatment dose)."""
    levels = check_levels(levels_gy)
    names = list(views)
    first = views[names[0]]
    z, y, _ = centre_of(first.masks[structure])
    vmax = max(display_max_gy(v.dose_gy, v.masks) for v in views.values())
    plt = agg_pyplot()
    fig, axes = plt.subplots(2, len(names), figsize=(4.6 * len(names) + 1, 8.4), squeeze=False)
    try:
        image = None
        for col, name in enumerate(names):
            for row, (plane, index) in enumerate((("axial", z), ("coronal", y))):
                image = _draw_panel(axes[row][col], views[name], plane, index, levels, vmax)
                axes[row][col].set_title(f"{name}, {plane}", fontsize=9)
        reached = max(float(np.nanmax(v.dose_gy)) for v in views.values())
        legend = _finish(fig, image, first, levels, f"{label} | {' vs '.join(names)} through {structure}", reached)
        png = _png(fig)
    finally:
        plt.close(fig)
    caption = f"{' and '.join(names)} on one colour scale (0-{vmax:.0f} Gy), same slices, same isodose levels."
    return ReportFigure(f"comparison_{_key(structure)}", f"{' vs '.join(names)}: {structure}", caption, png, legend)


def _key(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
