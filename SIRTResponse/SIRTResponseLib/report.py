"""Plots (PNG) and the HTML summary of a study or of an outcome analysis.

Every ``plot_*`` function writes one PNG to the path it is given (so that it can be a writer of
``commit_outputs``). Figures are built with ``matplotlib.figure.Figure``, not pyplot: no GUI
backend and no global state, so plotting is safe in workers and inside Slicer.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix, roc_curve

from .metrics import METRICS
from .roc import SingleMetricROC
from .survival import DichotomisedSurvival

_DPI = 110


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=_DPI, format="png", bbox_inches="tight")


def plot_heatmap(table: pd.DataFrame, metric: str, path: Path) -> None:
    """Strategies (rows) × selector/classifier (columns) coloured by ``metric``."""
    ok = table[table["status"] == "ok"].assign(model=lambda t: t["selector"] + " / " + t["classifier"])
    grid = ok.pivot_table(index="strategy", columns="model", values=metric, aggfunc="first")
    grid = grid.reindex(index=list(dict.fromkeys(table["strategy"])), columns=sorted(grid.columns))
    fig = Figure(figsize=(max(6, 0.32 * grid.shape[1] + 3), max(3, 0.3 * grid.shape[0] + 1.5)))
    ax = fig.add_subplot()
    image = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(grid.shape[0]), grid.index, fontsize=7)
    if grid.size <= 400:
        for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6, color="white" if value < 0.6 else "black")
    fig.colorbar(image, ax=ax, label=metric)
    ax.set_title(f"{metric} (pooled out-of-fold)")
    _save(fig, path)


def plot_rocs(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: Path, title: str = "ROC") -> None:
    """ROC curves from ``{label: (y, score, auc)}``, with the chance diagonal."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    for label, (y, score, auc) in curves.items():
        fpr, tpr, _ = roc_curve(y, score)
        ax.plot(fpr, tpr, label=f"{label} (AUC {auc:.2f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(fontsize=6, loc="lower right")
    _save(fig, path)


def plot_confusions(matrices: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, threshold: float = 0.5) -> None:
    """Confusion matrices at ``threshold`` from ``{label: (y, score)}``."""
    fig = Figure(figsize=(3.2 * len(matrices), 3.4))
    for k, (label, (y, score)) in enumerate(matrices.items(), start=1):
        ax = fig.add_subplot(1, len(matrices), k)
        matrix = confusion_matrix(y, (np.asarray(score) >= threshold).astype(int), labels=[0, 1])
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center")
        ax.set_xticks([0, 1], ["non-resp.", "resp."])
        ax.set_yticks([0, 1], ["non-resp.", "resp."])
        ax.set(xlabel="predicted", ylabel="observed")
        ax.set_title(label, fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def plot_boxplots(features: pd.DataFrame, y, names: list[str], path: Path) -> None:
    """Box plots (with the points) of the given features, responders vs non-responders."""
    y = np.asarray(y).astype(bool)
    columns = min(4, max(1, len(names)))
    rows = int(np.ceil(len(names) / columns)) or 1
    fig = Figure(figsize=(3 * columns, 2.8 * rows))
    for k, name in enumerate(names, start=1):
        ax = fig.add_subplot(rows, columns, k)
        values = features[name].to_numpy(dtype=float)
        data = [values[~y & np.isfinite(values)], values[y & np.isfinite(values)]]
        ax.boxplot(data, tick_labels=["non-resp.", "resp."])
        for position, group in enumerate(data, start=1):
            ax.plot(np.full(len(group), position) + np.linspace(-0.08, 0.08, len(group)), group, ".", color="black", alpha=0.6)
        ax.set_title(name, fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def plot_single_roc(result: SingleMetricROC, path: Path) -> None:
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    ax.plot(1 - np.r_[1.0, result.specificity], np.r_[0.0, result.sensitivity], label=f"AUC {result.auc.value:.2f}")
    points = {"Youden": result.youden, "best accuracy": result.best_accuracy, f"specificity ≥ {result.target:.2f}": result.target_specificity}
    for label, point in points.items():
        if point is not None:
            ax.plot(1 - point.specificity, point.sensitivity, "o", label=f"{label}: {point.threshold:.4g}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", title=result.name, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(fontsize=7, loc="lower right")
    _save(fig, path)


def plot_km(result: DichotomisedSurvival, path: Path) -> None:
    fig = Figure(figsize=(6, 4.2))
    ax = fig.add_subplot()
    for curve in (result.high, result.low):
        ax.step(curve.timeline, curve.survival, where="post", label=f"{curve.label} (n={curve.n})")
    ax.set(xlabel="time", ylabel=f"{result.endpoint} probability", ylim=(0, 1.02))
    ax.set_title(f"{result.endpoint} by {result.metric}: log-rank p = {result.logrank_p:.3g}, HR {result.hazard_ratio:.2f}", fontsize=9)
    ax.legend(fontsize=7)
    _save(fig, path)


def plot_permutation(null_aucs, observed: float, path: Path, title: str, label: str = "permuted labels") -> None:
    fig = Figure(figsize=(5.5, 3.5))
    ax = fig.add_subplot()
    ax.hist(null_aucs, bins=min(50, max(5, len(null_aucs) // 2)), range=(0, 1), color="lightgrey", edgecolor="grey", label=label)
    ax.axvline(observed, color="crimson", label=f"observed AUC {observed:.2f}")
    ax.axvline(0.5, color="black", linestyle=":")
    ax.set(xlabel="AUC", ylabel="count", title=title)
    ax.legend(fontsize=7)
    _save(fig, path)


def format_table(table: pd.DataFrame, digits: int = 3) -> str:
    """A data frame as an HTML table, numbers rounded."""
    return table.to_html(index=False, float_format=lambda v: f"{v:.{digits}f}", border=0, classes="results", na_rep="")


def intervals_table(table: pd.DataFrame, level: float, digits: int = 3) -> pd.DataFrame:
    """Each metric with its ``level`` interval in one readable column ("0.778 [0.604, 0.929]"); other columns kept.

    For reading on a page; the results CSV keeps the separate columns."""
    shown = table.copy()
    for metric in METRICS:
        if metric in shown:
            low, high = shown.pop(f"{metric}_ci_low"), shown.pop(f"{metric}_ci_high")
            shown[metric] = [
                f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]" if np.isfinite(v) else ""
                for v, lo, hi in zip(shown[metric], low, high)
            ]
    return shown.rename(columns={m: f"{m} [{level:.0%} CI]" for m in METRICS})


def html_page(title: str, sections: list[tuple[str, str]]) -> str:
    """A self-contained page: ``sections`` are (heading, HTML body) pairs; images are linked by file name."""
    body = "\n".join(f"<h2>{html.escape(heading)}</h2>\n{content}" for heading, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1200px; }}
table.results {{ border-collapse: collapse; font-size: 12px; display: block; overflow-x: auto; max-width: 100%; }}
table.results th, table.results td {{ padding: 2px 6px; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }}
img {{ max-width: 100%; }}
.note {{ color: #555; font-size: 13px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">Research use only. Cross-validated estimates from small cohorts are uncertain: read the intervals, the
permutation check and the DeLong tests before the point estimates.</p>
{body}
</body></html>
"""


def image(name: str, alt: str = "") -> str:
    return f'<p><img src="{html.escape(name)}" alt="{html.escape(alt or name)}"></p>'


def metric_columns() -> list[str]:
    """The metric columns of a results table, in display order."""
    return [f"{m}{s}" for m in METRICS for s in ("", "_ci_low", "_ci_high")]
