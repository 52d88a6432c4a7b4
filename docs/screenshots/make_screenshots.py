"""Screenshots of docs/slicer.md, rendered from the real MRML nodes of the two sample patients.

The Slicer GUI cannot run where the documentation is built, so the module's logic runs on a scene of
the slicer-core wheel exactly as the module's Apply does (sample patients loaded as Sample Data loads
them, the first-Apply defaults, the settings the walkthrough types), and matplotlib draws what Slicer's
views would show from the output nodes themselves: the activity volume with the dose overlay (the
dose node's colour table, window and threshold), the DVH chart (from the DVH table node) and the
summary table node. It also writes the Sample Data thumbnails of the SIRT Dosimetry module.

    python docs/screenshots/make_screenshots.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from SIRTDosimetryLib.mrml import convert  # noqa: E402
from SIRTDosimetryLib.mrml.defaults import first_apply_settings  # noqa: E402
from SIRTDosimetryLib.mrml.logic import DoseSettings, compute_dose_from_nodes, volume_units  # noqa: E402
from SIRTDosimetryLib.mrml.outputs import table_rows  # noqa: E402
from SIRTDosimetryLib.mrml.samples import SAMPLE_PATIENTS, load_sample_patient  # noqa: E402
from SIRTDosimetryLib.mrml.scene import new_scene  # noqa: E402

HERE = Path(__file__).resolve().parent
ICONS = HERE.parents[1] / "SIRTDosimetry" / "Resources" / "Icons"

# What the walkthrough in docs/slicer.md types after picking the nodes.
USER_SETTINGS = {
    "SIRTPatient1Y90PET": dict(method="vsv", tumour_segments=[f"Tumor {i}" for i in range(1, 7)], normal_liver_segments=["Normal Tissue"]),
    "SIRTPatient2MAASPECT": dict(method="vsv", administered_activity_gbq=1.5, lung_shunt_fraction=0.05, clamp_negative=True,
                                 tumour_segments=["Tumor 1", "Tumor 2"]),
}


def colormap(display) -> ListedColormap:
    table = display.GetColorNode()
    rgba = np.zeros(4)
    colors = []
    for i in range(table.GetNumberOfColors()):
        table.GetColor(i, rgba)
        colors.append(rgba.copy())
    return ListedColormap(colors)


def hottest_voxel(outputs) -> tuple[int, int, int]:
    dose = convert.volume_array(outputs.dose_node)
    return tuple(int(i) for i in np.unravel_index(np.argmax(dose), dose.shape))


def section(node, axis: int, index: int) -> np.ndarray:
    """An axial (axis 0) or coronal (axis 1) section of a node's (k, j, i) voxels."""
    return np.asarray(np.take(convert.volume_array(node), index, axis=axis), dtype=float)


def draw_overlay(ax, outputs, axis: int, index: int) -> None:
    activity = outputs.dose_node.GetNodeReference("SIRT.activity")
    background = section(activity, axis, index)
    dose = section(outputs.dose_node, axis, index)
    display = outputs.dose_node.GetDisplayNode()
    low, high = display.GetWindowLevelMin(), display.GetWindowLevelMax()
    spacing = activity.GetSpacing()  # (i, j, k) in mm
    aspect = spacing[1] / spacing[0] if axis == 0 else spacing[2] / spacing[0]
    ax.imshow(background, cmap="gray", vmin=0, vmax=np.percentile(background, 99.5) or 1, origin="lower", aspect=aspect)
    shown = np.ma.masked_less(dose, display.GetLowerThreshold())
    image = ax.imshow(shown, cmap=colormap(display), vmin=low, vmax=high, alpha=0.6, origin="lower", aspect=aspect)
    ax.set_title(f"{outputs.dose_node.GetName()}, {'axial' if axis == 0 else 'coronal'} voxel slice {index}", fontsize=9)
    ax.axis("off")
    plt.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label=f"Gy (window 0-{high:g})")


def draw_dvh(ax, outputs) -> None:
    rows = table_rows(outputs.dvh_table_node)
    columns = list(rows[0]) if rows else []
    for x_name in [c for c in columns if c.endswith(" dose (Gy)")]:
        structure = x_name[: -len(" dose (Gy)")]
        ax.plot([r[x_name] for r in rows], [r[f"{structure} volume"] for r in rows], label=structure, lw=1.5)
    ax.set_xlabel("Dose (Gy)")
    ax.set_ylabel("Volume (%)")
    ax.set_title(outputs.dvh_chart_node.GetName(), fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def draw_summary(ax, outputs) -> None:
    rows = table_rows(outputs.table_node)
    cells = [[r["name"], f"{r['volume_ml']:.1f}", f"{r['dose_mean_gy']:.1f}", f"{r['dose_max_gy']:.0f}",
              "" if not np.isfinite(r["bed_mean_gy"]) else f"{r['bed_mean_gy']:.1f}"] for r in rows]
    table = ax.table(cellText=cells, colLabels=["Segment", "Volume (mL)", "Mean dose (Gy)", "Max dose (Gy)", "Mean BED (Gy)"],
                     loc="center", cellLoc="right")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1, 1.2)
    ax.set_title(outputs.table_node.GetName(), fontsize=9)
    ax.axis("off")


def results_figure(outputs, path: Path) -> None:
    figure = plt.figure(figsize=(11, 7.5), dpi=100)
    grid = figure.add_gridspec(2, 2, height_ratios=[1.3, 1])
    k, j, _ = hottest_voxel(outputs)
    draw_overlay(figure.add_subplot(grid[0, 0]), outputs, 0, k)
    draw_overlay(figure.add_subplot(grid[0, 1]), outputs, 1, j)
    draw_dvh(figure.add_subplot(grid[1, 0]), outputs)
    draw_summary(figure.add_subplot(grid[1, 1]), outputs)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def thumbnail(outputs, path: Path) -> None:
    figure = plt.figure(figsize=(1.28, 1.28), dpi=100)
    ax = figure.add_axes([0, 0, 1, 1])
    activity = outputs.dose_node.GetNodeReference("SIRT.activity")
    mip = np.asarray(convert.volume_array(activity), dtype=float).max(axis=1)
    ax.imshow(mip, cmap="gray_r", vmin=0, vmax=np.percentile(mip, 99.5), origin="lower", aspect="auto")
    ax.axis("off")
    figure.savefig(path)
    plt.close(figure)


def main() -> None:
    context = new_scene()
    scene = context.scene
    for patient in SAMPLE_PATIENTS:
        volume, segmentation = load_sample_patient(scene, patient.key)
        settings = DoseSettings(**{**first_apply_settings(volume, segmentation, volume_units(volume)), **USER_SETTINGS[patient.key]})
        outputs = compute_dose_from_nodes(volume, segmentation, settings.to_parameters(),
                                          display_reference_gy=settings.display_reference_gy)
        results_figure(outputs, HERE / f"{patient.key}-results.png")
        thumbnail(outputs, ICONS / f"{patient.key}.png")
        print(f"{patient.key}: {[(r['name'], round(r['dose_mean_gy'], 1)) for r in table_rows(outputs.table_node)]}")


if __name__ == "__main__":
    main()
