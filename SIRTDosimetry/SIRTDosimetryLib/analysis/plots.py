"""PNG plots of DVHs (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .dvh import DVH


def agg_pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_dvhs(dvhs: Sequence[DVH], path: Path, title: str, overlay: Sequence[DVH] = (), overlay_label: str = "reference") -> None:
    """Cumulative DVHs (volume % vs Gy), one line per structure; ``overlay`` curves dashed in the same colours."""
    plt = agg_pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    try:
        colours = {}
        for d in dvhs:
            (line,) = ax.plot(d.levels_gy, d.cumulative_volume_pct, label=f"{d.name} ({d.total_volume_ml:.1f} mL)", linewidth=1.6)
            colours[d.name] = line.get_color()
        for d in overlay:
            ax.plot(d.levels_gy, d.cumulative_volume_pct, linestyle="--", linewidth=1.2, color=colours.get(d.name), label=f"{d.name} ({overlay_label})")
        quantity = dvhs[0].quantity if dvhs else "dose"
        ax.set_xlabel("BED (Gy)" if quantity == "bed" else "absorbed dose (Gy)")
        ax.set_ylabel("volume (%)")
        ax.set_ylim(0, 102)
        ax.set_xlim(left=0)
        ax.grid(True, alpha=0.3)
        ax.set_title(title)
        ax.legend(fontsize=7, loc="upper right")
        fig.tight_layout()
        fig.savefig(str(path), format="png")
    finally:
        plt.close(fig)
