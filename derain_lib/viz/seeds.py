"""Every training seed as a dot beside the seed mean (chapters 02 and 04)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from .results import message_figure


def seed_dots(means: pd.DataFrame, title: str, metric: str = "psnr") -> Figure:
    """One panel per test set: each method's per-seed means (dots) and their mean (a bar),
    from :func:`derain_lib.study.record.seed_table` with ``per_seed=True``."""
    sets = list(dict.fromkeys(means.test_set))
    if not sets:
        return message_figure(f"{title}: nothing scored")
    fig = Figure(figsize=(max(4.2 * len(sets), 5.0), 3.8), layout="constrained")
    for ax, (t, g) in zip(
        fig.subplots(1, len(sets), squeeze=False)[0],
        means.groupby("test_set", sort=False, dropna=False),
        strict=True,
    ):
        labels = list(dict.fromkeys(g.label))
        for x, label in enumerate(labels):
            rows = g[g.label == label]
            for mean in rows[rows.seed == "mean"][metric][:1]:
                ax.bar(x, mean, width=0.6, color="tab:blue", alpha=0.35)
                ax.text(x, mean, f"{mean:.2f}", ha="center", va="bottom", fontsize=8)
            seeds = rows[rows.seed != "mean"][metric]
            ax.plot([x] * len(seeds), seeds, "o", color="k", ms=4)
        ax.set_ylim(g[metric].min() - (0.5 if metric == "psnr" else 0.02), None)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_title(t, fontsize=9)
        ax.set_ylabel("PSNR (dB)" if metric == "psnr" else "SSIM")
    fig.suptitle(f"{title}: bar = mean over seeds, dots = each seed", fontsize=10)
    return fig
