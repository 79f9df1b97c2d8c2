"""Every training seed as a dot beside the seed mean (chapters 02 and 04)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure


def seed_dots(means: pd.DataFrame, title: str, metric: str = "psnr") -> Figure:
    """One panel per test set: each method's per-seed means (dots) and their mean (a bar),
    from :func:`derain_lib.study.record.seed_table` with ``per_seed=True``."""
    sets = list(dict.fromkeys(means.test_set))
    fig = Figure(figsize=(max(4.2 * len(sets), 5.0), 3.8), layout="constrained")
    if not sets:
        ax = fig.subplots()
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"{title}: nothing scored", ha="center", va="center")
        return fig
    axes = fig.subplots(1, len(sets), squeeze=False)[0]
    for ax, t in zip(axes, sets, strict=True):
        g = means[means.test_set == t]
        labels = list(dict.fromkeys(g.label))
        for x, label in enumerate(labels):
            rows = g[g.label == label]
            seeds = rows[rows.seed != "mean"]
            mean = rows[rows.seed == "mean"][metric]
            if not mean.empty:
                ax.bar(x, float(mean.iloc[0]), width=0.6, color="tab:blue", alpha=0.35)
                ax.text(
                    x,
                    float(mean.iloc[0]),
                    f"{float(mean.iloc[0]):.2f}",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
            ax.plot([x] * len(seeds), seeds[metric], "o", color="k", ms=4)
        low = float(g[metric].min())
        ax.set_ylim(low - 0.5 if metric == "psnr" else low - 0.02, None)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_title(t, fontsize=9)
        ax.set_ylabel("PSNR (dB)" if metric == "psnr" else "SSIM")
    fig.suptitle(f"{title}: bar = mean over seeds, dots = each seed", fontsize=10)
    return fig
