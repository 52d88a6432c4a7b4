"""Checkerboard picture of a registration for the report: fixed and resampled moving image, with contours.

Three orthogonal slices through the centre of the checked contour (or of the image): axial,
coronal and sagittal, shown in patient orientation (radiological: the patient's left on the
picture's right; superior up) with true millimetre proportions. Squares alternate between the
fixed image and the moving image resampled onto the fixed grid, each scaled to its own 1st-99.9th
percentile so that modalities with different units can be compared by eye; misregistration shows
as broken edges at the squares' borders. The carried contour is drawn solid, the reference dashed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..analysis.plots import agg_pyplot

CHECKER_SQUARE_MM = 20.0


def _scaled(array: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(array, [1.0, 99.9])
    return np.clip((array - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(array)


def write_checkerboard_png(
    fixed: sitk.Image,
    moving_on_fixed: sitk.Image,
    path: Path,
    title: str,
    carried: sitk.Image | None = None,
    reference: sitk.Image | None = None,
) -> None:
    """Write the checkerboard PNG. ``carried`` and ``reference`` are masks on ``fixed``'s grid."""
    # Reorient so that array axes run (S, P, L) = (z, y, x) increasing: display needs no direction logic.
    images = [sitk.DICOMOrient(image, "LPS") for image in (fixed, moving_on_fixed)]
    masks = [sitk.DICOMOrient(m, "LPS") if m is not None else None for m in (carried, reference)]
    fixed_a, moving_a = (_scaled(sitk.GetArrayFromImage(i).astype(np.float32)) for i in images)
    mask_a = [sitk.GetArrayViewFromImage(m) > 0 if m is not None else None for m in masks]
    sx, sy, sz = images[0].GetSpacing()
    focus = next((m for m in mask_a if m is not None and m.any()), None)
    centre = np.round(np.argwhere(focus).mean(axis=0)).astype(int) if focus is not None else np.array(fixed_a.shape) // 2
    zz, yy, xx = np.indices(fixed_a.shape, sparse=True)
    checker = ((zz * sz // CHECKER_SQUARE_MM + yy * sy // CHECKER_SQUARE_MM + xx * sx // CHECKER_SQUARE_MM) % 2).astype(bool)
    board = np.where(checker, moving_a, fixed_a)
    nz, ny, nx = fixed_a.shape
    # (slice of the volume, extent in mm, origin): anterior up in axial, anterior left in sagittal.
    views = {
        "axial": (lambda a: a[centre[0]], (0, nx * sx, ny * sy, 0), "upper"),
        "coronal": (lambda a: a[:, centre[1], :], (0, nx * sx, 0, nz * sz), "lower"),
        "sagittal": (lambda a: a[:, :, centre[2]], (0, ny * sy, 0, nz * sz), "lower"),
    }
    plt = agg_pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.8), dpi=100)
    try:
        for ax, (name, (cut, extent, origin)) in zip(axes, views.items()):
            ax.imshow(cut(board), cmap="gray", extent=extent, origin=origin, interpolation="nearest", vmin=0, vmax=1)
            for mask, style, colour in zip(mask_a, ("solid", "dashed"), ("#ffb000", "#00c8ff")):
                if mask is not None and cut(mask).any():
                    ax.contour(cut(mask).astype(np.uint8), levels=[0.5], colors=colour, linestyles=style, linewidths=1.2,
                               extent=extent, origin=origin)
            ax.set_title(name)
            ax.set_axis_off()
        fig.suptitle(title + "\ncheckerboard fixed / moving; contour carried (solid), reference (dashed)", fontsize=10)
        fig.tight_layout()
        fig.savefig(str(path), format="png")
    finally:
        plt.close(fig)
