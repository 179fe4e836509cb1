"""The figure of a simulator fit: each clip statistic's distribution on real clips, on the default
simulator and on the fitted one (box plots; the axis spans the pooled 1st-99th percentiles, so a
few extreme clips fall outside it), and the median depth profiles (`lungus sim-fit --figure`;
docs/images/sim_vs_real_stats.png)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from lungus.sim.clip_stats import DEPTH_NAMES, STATISTICS
from lungus.sim.fitting import Rows, column

COLOURS = {"real": "#333333", "default": "#d95f02", "fitted": "#1b9e77"}


def statistics_figure(groups: dict[str, Rows], path: str | os.PathLike, title: str = "") -> Path:
    """Write the figure of ``groups`` (name -> per-clip statistics, e.g. real, default, fitted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(STATISTICS)
    columns = 6
    rows = math.ceil((len(names) + 1) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 2.6 * rows))
    axes = axes.ravel()
    labels = list(groups)
    for ax, name in zip(axes, names):
        data = [column(groups[g], name) for g in labels]
        shown = [d if d.size else np.array([np.nan]) for d in data]
        box = ax.boxplot(shown, vert=True, patch_artist=True, widths=0.6, showfliers=True,
                         flierprops={"markersize": 2})
        for patch, label in zip(box["boxes"], labels):
            patch.set_facecolor(COLOURS.get(label, "#7570b3"))
            patch.set_alpha(0.55)
        pooled = np.concatenate([d for d in data if d.size]) if any(d.size for d in data) else np.array([0.0])
        low, high = np.percentile(pooled, [1, 99])
        pad = 0.1 * (high - low) or 1.0
        ax.set_ylim(low - pad, high + pad)  # the boxes, not a few extreme clips, set the scale
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    profile_ax = axes[len(names)]
    depth = (np.arange(len(DEPTH_NAMES)) + 0.5) / len(DEPTH_NAMES)
    for label in labels:
        medians = [np.median(column(groups[label], n)) if column(groups[label], n).size else np.nan
                   for n in DEPTH_NAMES]
        profile_ax.plot(depth, medians, marker="o", markersize=3, color=COLOURS.get(label, "#7570b3"), label=label)
    profile_ax.set_title("depth profile (median grey)", fontsize=9)
    profile_ax.set_xlabel("relative depth", fontsize=7)
    profile_ax.tick_params(labelsize=7)
    profile_ax.legend(fontsize=7)
    for ax in axes[len(names) + 1:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=80)
    plt.close(fig)
    return target
