"""The forest plot of the claims: each claim's difference with its interval, the paper's
difference marked. Reads ``claims.csv`` rows only (a pure function: rows -> Figure)."""

from __future__ import annotations

from matplotlib.figure import Figure

VERDICT_COLOURS = {"supported": "tab:green", "contradicted": "tab:red"}


def forest_figure(rows: list[dict]) -> Figure | None:
    """PSNR and SSIM panels: one line per (claim, test set) that was measured, its mean
    paired difference (dot) and 95 % interval (bar), coloured by verdict; the paper's
    difference as a black cross. None when no claim was measured."""
    measured = [r for r in rows if r["diff"] not in ("", None)]
    if not measured:
        return None
    metrics = [m for m in ("PSNR", "SSIM") if any(r["metric"] == m for r in measured)]
    labels = list(dict.fromkeys(f"{r['table']}: {r['claim']}\n{r['test_set']}" for r in measured))
    fig = Figure(figsize=(6.5 * len(metrics), 0.55 * len(labels) + 1.4))
    axes = fig.subplots(1, len(metrics), squeeze=False, sharey=True)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        for r in (r for r in measured if r["metric"] == metric):
            y = labels.index(f"{r['table']}: {r['claim']}\n{r['test_set']}")
            d, lo, hi = float(r["diff"]), float(r["ci_low"]), float(r["ci_high"])
            colour = VERDICT_COLOURS.get(str(r["verdict"]), "tab:grey")
            ax.errorbar(d, y, xerr=[[d - lo], [hi - d]], fmt="o", color=colour, capsize=3, ms=4)
            if r["paper_diff"] not in ("", None):
                ax.plot(float(r["paper_diff"]), y, "kx", ms=6)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_xlabel(f"{metric}: better − worse ({'dB' if metric == 'PSNR' else 'SSIM'})")
        ax.set_title(
            f"{metric} (green supported, red contradicted, grey other; x: paper)", fontsize=8
        )
    axes[0].set_yticks(range(len(labels)), labels, fontsize=7)
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig
