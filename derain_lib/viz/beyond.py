"""Figures of chapter 07 from the rows :mod:`derain_lib.study.beyond` saves; None when empty."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from .attention import scale_label
from .results import photo_grid


def density_figure(record: dict) -> Figure | None:
    """A panel per model: the PSNR gain of every image (dots) at each rain level and the median
    (line), tone-shifted outputs ringed; the title gives the images and the calibration."""
    rows = pd.DataFrame(record["rows"])
    models = [m for m in rows.get("model", pd.Series()).unique() if m != "input"]
    if not models:
        return None
    images = list(rows.image.unique())
    levels = rows[["level", "level_name"]].drop_duplicates().sort_values("level")
    inputs = rows[rows.model == "input"].groupby("level").input_psnr.median()
    ticks = [f"{name}\nInput {inputs[lv]:.1f} dB" for lv, name in levels.itertuples(index=False)]
    ncol, nrow = min(2, len(models)), math.ceil(len(models) / 2)
    fig = Figure(figsize=(6.2 * ncol, 3.6 * nrow + 1.0), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False, sharey=True)
    jitter = np.linspace(-0.18, 0.18, len(images)) if len(images) > 1 else np.zeros(1)
    for ax, m in zip(axes.ravel(), models, strict=False):
        mine = rows[rows.model == m]
        for r in mine.itertuples():
            x = r.level + jitter[images.index(r.image)]
            ax.plot(x, r.gain, "o", color="tab:blue", ms=3.5, alpha=0.6)
            if r.tone_shifted:
                ax.plot(x, r.gain, "o", mfc="none", mec="tab:red", ms=8, mew=1.2)
        med = mine.groupby("level").gain.median()
        ax.plot(med.index, med.to_numpy(), "-", color="k", lw=1.5, label="median")
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_xticks(levels.level.tolist(), ticks, fontsize=6.5)
        ax.set_title(m, fontsize=9)
        ax.set_ylabel("PSNR gain over the input (dB)", fontsize=8)
    for ax in axes.ravel()[len(models) :]:
        ax.set_axis_off()
    axes[0, 0].plot([], [], "o", color="tab:blue", ms=3.5, label="one image")
    axes[0, 0].plot([], [], "o", mfc="none", mec="tab:red", ms=8, label="global tone shift")
    axes[0, 0].legend(fontsize=7, loc="best")
    real = rows[~rows.stand_in].image.nunique()
    cal = [
        f"{c['benchmark']}-like: x{c['factor']:.2f} density, Input {c['synthetic_input_psnr']:.2f} "
        f"vs real {c['real_input_psnr']:.2f} dB"
        for c in record["calibration"].values()
        if c["real_input_psnr"] is not None
    ]
    fig.suptitle(
        f"Released models under more synthetic rain: n = {len(images)} clean test images "
        f"({real} real)\n" + ("; ".join(cal) or "levels uncalibrated (no real pairs)"),
        fontsize=9,
    )
    return fig


def auc_figure(rows: list[dict]) -> Figure | None:
    """A row per (weights, data) source, a column per scale: the mean ROC-AUC of every mask
    channel (dots), the |DoG| control (crosses) per stage, and the edge control (dashed)."""
    if not rows:
        return None
    df = pd.DataFrame(rows)
    sources, scales = list(df.source.unique()), sorted(df.scale.unique())
    fig = Figure(figsize=(3.6 * len(scales) + 0.6, 2.9 * len(sources) + 0.8), layout="constrained")
    axes = fig.subplots(len(sources), len(scales), squeeze=False, sharey=True)
    for (i, j), ax in np.ndenumerate(axes):
        mine = df[df.source == sources[i]]
        here = mine[mine.scale == scales[j]]
        masks = here[here.what == "mask"].groupby(["stage", "channel"]).auc.mean().reset_index()
        jitter = (masks.channel % 16 - 7.5) * 0.02
        ax.plot(masks.stage + jitter, masks.auc, "o", color="tab:blue", ms=2.5, alpha=0.6)
        dog = here[here.what == "dog"].groupby("stage").auc.mean()
        ax.plot(dog.index, dog.to_numpy(), "x", color="tab:orange", ms=6)
        edge = here[here.what == "edge"].auc
        if len(edge):
            ax.axhline(float(np.mean(edge)), color="tab:green", ls="--", lw=1)
        ax.axhline(0.5, color="grey", lw=0.6)
        ax.set_ylim(0, 1)
        ax.set_xticks(sorted(masks.stage.unique()))
        ax.set_xlabel("stage", fontsize=7)
        cells, n = here.cells.iloc[0], mine.image.nunique()
        ax.set_title(f"scale {scale_label(scales[j])}, {cells} cells, n={n}", fontsize=8)
        if j == 0:
            ax.set_ylabel(f"{sources[i]}\nROC-AUC", fontsize=7)
    axes[0, 0].plot([], [], "o", color="tab:blue", ms=3, label="mask channel")
    axes[0, 0].plot([], [], "x", color="tab:orange", label="|DoG| control")
    axes[0, 0].plot([], [], "--", color="tab:green", label="edge control")
    axes[0, 0].legend(fontsize=6, loc="lower left")
    title = "Attention masks as rain detectors: ROC-AUC per channel at each mask's resolution"
    fig.suptitle(f"{title} (0.5 = chance)", fontsize=9)
    return fig


def generalisation_figure(cells: list[dict]) -> Figure | None:
    """Released weights x test sets coloured by the mean PSNR gain over the input, each cell
    written as gain [95 % interval] and output PSNR (rows of ``generalisation.cells``)."""
    if not cells:
        return None
    df = pd.DataFrame(cells)
    gain = df.pivot(index="model", columns="test_set", values="gain")
    gain = gain.loc[df.model.unique(), df.test_set.unique()]
    val = gain.to_numpy()
    top = float(np.nanmax(np.abs(val))) or 1.0
    size = (2.0 * len(gain.columns) + 3.0, 0.75 * len(gain) + 2.2)
    ax = (fig := Figure(figsize=size, layout="constrained")).subplots()
    im = ax.imshow(val, cmap="RdBu", norm=TwoSlopeNorm(0.0, -top, top), aspect="auto")
    for r in df.itertuples():
        a, b = gain.index.get_loc(r.model), gain.columns.get_loc(r.test_set)
        iv = "" if math.isnan(r.gain_lo) else f"\n[{r.gain_lo:+.2f}, {r.gain_hi:+.2f}]"
        colour = "white" if abs(r.gain) > 0.6 * top else "k"  # a dark cell: white text
        text = f"{r.gain:+.2f}{iv}\n{r.psnr:.2f} dB"
        ax.text(b, a, text, ha="center", va="center", fontsize=6.5, color=colour)
    scenes = df.groupby("test_set", sort=False).scenes.last()
    labels = [f"{s}\n(n={scenes[s]} scenes)" for s in gain.columns]
    ax.set_xticks(range(len(gain.columns)), labels, fontsize=6.5, rotation=20, ha="right")
    ax.set_yticks(range(len(gain)), list(gain.index), fontsize=7)
    title = "Released weights x test sets: gain over the input (dB) [95 % interval], output PSNR"
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="PSNR gain (dB)")
    return fig


def photos_figure(folder: str | Path) -> Figure | None:
    """Real photographs (``rainy/``) and each model's output (one folder per model)."""
    title = "Real rainy photographs derained by each released model (no ground truth)"
    return photo_grid(folder, title=title)
