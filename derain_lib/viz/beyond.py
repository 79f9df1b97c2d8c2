"""Figures of chapter 07 (beyond the paper): saved rows in, matplotlib Figure out.

Each function reads only what :mod:`derain_lib.study.beyond` saved (rows, PNGs), so a figure can
be redrawn without running a model. None is returned when there is nothing to draw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..tables import mean_by
from .results import photo_grid


def density_figure(rows: list[dict]) -> Figure | None:
    """PSNR gain (dB) against Input PSNR per model, mean over images per rain level; the
    x axis runs from light rain (left) to heavy (right)."""
    means = mean_by(rows, ("model", "level", "level_name"), ("input_psnr", "gain"))
    models = [m for m in dict.fromkeys(r["model"] for r in means) if m != "input"]
    if not models:
        return None
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    for m in models:
        mine = sorted((r for r in means if r["model"] == m), key=lambda r: r["level"])
        ls = "-" if m.startswith("sian") else "--"
        ax.plot([r["input_psnr"] for r in mine], [r["gain"] for r in mine], "o" + ls, label=m)
    levels = sorted((r for r in means if r["model"] == models[0]), key=lambda r: r["level"])
    for r in levels:
        ax.annotate(
            r["level_name"],
            (r["input_psnr"], 0),
            fontsize=6,
            rotation=60,
            ha="left",
            va="bottom",
            color="grey",
        )
    ax.axhline(0, color="grey", lw=0.6)
    ax.invert_xaxis()
    ax.set_xlabel("Input PSNR (dB): more rain to the right")
    ax.set_ylabel("PSNR gain over the input (dB)")
    ax.set_title("Released models under more rain (synthetic rain on clean test images)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def auc_figure(rows: list[dict]) -> Figure | None:
    """Heatmaps stage x scale of the mean ROC-AUC, one row per (weights, data) source,
    columns: attention mask, DoG magnitude."""
    sources = list(dict.fromkeys(r["source"] for r in rows))
    if not sources:
        return None
    stages = sorted({r["stage"] for r in rows})
    scales = sorted({r["scale"] for r in rows})
    whats = ("mask", "dog")
    fig = Figure(figsize=(7.0, 2.6 * len(sources) + 0.4))
    axes = fig.subplots(len(sources), 2, squeeze=False)
    for i, src in enumerate(sources):
        means = mean_by(
            [r for r in rows if r["source"] == src], ("what", "stage", "scale"), ("auc",)
        )
        for j, what in enumerate(whats):
            grid = np.full((len(stages), len(scales)), np.nan)
            for r in means:
                if r["what"] == what:
                    grid[stages.index(r["stage"]), scales.index(r["scale"])] = r["auc"]
            ax = axes[i, j]
            im = ax.imshow(grid, cmap="RdBu_r", vmin=0.0, vmax=1.0, aspect="auto")
            for (a, b), v in np.ndenumerate(grid):
                ax.text(b, a, f"{v:.2f}", ha="center", va="center", fontsize=7)
            ax.set_xticks(range(len(scales)), [f"scale {s}" for s in scales], fontsize=7)
            ax.set_yticks(range(len(stages)), [f"stage {k}" for k in stages], fontsize=7)
            label = "attention mask" if what == "mask" else "|DoG| magnitude"
            ax.set_title(f"{src}\n{label}", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6, label="ROC-AUC (0.5 = chance)")
    return fig


def generalisation_figure(rows: list[dict]) -> Figure | None:
    """Matrix of mean PSNR (colour, PSNR/SSIM written) of released weights x test sets."""
    if not rows:
        return None
    models = list(dict.fromkeys(r["model"] for r in rows))
    sets = list(dict.fromkeys(r["test_set"] for r in rows))
    psnr = np.full((len(models), len(sets)), np.nan)
    ssim = np.full_like(psnr, np.nan)
    for r in rows:
        psnr[models.index(r["model"]), sets.index(r["test_set"])] = r["psnr"]
        ssim[models.index(r["model"]), sets.index(r["test_set"])] = r["ssim"]
    fig = Figure(figsize=(2.2 * len(sets) + 2.5, 0.55 * len(models) + 1.8))
    ax = fig.subplots()
    im = ax.imshow(psnr, cmap="viridis", aspect="auto")
    for (a, b), v in np.ndenumerate(psnr):
        ax.text(
            b, a, f"{v:.2f}\n{ssim[a, b]:.3f}", ha="center", va="center", fontsize=7, color="white"
        )
    ax.set_xticks(range(len(sets)), sets, fontsize=7, rotation=15, ha="right")
    ax.set_yticks(range(len(models)), models, fontsize=7)
    ax.set_title("Released weights x test sets: PSNR (dB) / SSIM, MATLAB protocol", fontsize=9)
    fig.colorbar(im, ax=ax, label="PSNR (dB)")
    fig.tight_layout()
    return fig


def photos_figure(folder: str | Path) -> Figure | None:
    """Real photographs (``rainy/``) and each model's output (one folder per model)."""
    title = "Real rainy photographs derained by each released model (no ground truth)"
    return photo_grid(folder, cell=(2.3, 1.9, 0.3), fontsize=7, title=title)
