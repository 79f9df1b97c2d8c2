"""Every training seed as a dot beside the seed mean (chapters 02 and 04)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from .results import message_figure


def seed_dots(means: pd.DataFrame, title: str, metric: str = "psnr") -> Figure:
    """One panel per test set: each method's per-seed means (dots) and their mean (a bar)."""
    sets = list(dict.fromkeys(means.test_set))
    if not sets:
        return message_figure(f"{title}: nothing scored")
    fig = Figure(figsize=(max(4.2 * len(sets), 5.0), 3.8), layout="constrained")
    axes = fig.subplots(1, len(sets), squeeze=False)[0]
    for ax, (t, g) in zip(axes, means.groupby("test_set", sort=False, dropna=False), strict=True):
        labels = list(dict.fromkeys(g.label))
        g = g.assign(x=g.label.map(labels.index))
        bar, dots = g[g.seed == "mean"].drop_duplicates("label"), g[g.seed != "mean"]
        bars = ax.bar(bar.x, bar[metric], width=0.6, color="tab:blue", alpha=0.35)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.plot(dots.x, dots[metric], "o", color="k", ms=4)
        ax.set_ylim(g[metric].min() - (0.5 if metric == "psnr" else 0.02), None)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_title(t, fontsize=9)
        ax.set_ylabel("PSNR (dB)" if metric == "psnr" else "SSIM")
    fig.suptitle(f"{title}: bar = mean over seeds, dots = each seed", fontsize=10)
    return fig
