"""Figures of chapter 07 (beyond the paper): saved rows in, matplotlib Figure out.

Each function reads only what :mod:`derain_lib.study.beyond` saved (rows, PNGs), so a figure can
be redrawn without running a model. None is returned when there is nothing to draw.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from ..intervals import mean_ci
from ..tables import mean_by
from .attention import scale_label
from .results import photo_grid


def _density_rows(record: dict | list[dict]) -> tuple[list[dict], dict]:
    if isinstance(record, dict):
        return record.get("rows", []), record.get("calibration") or {}
    return record, {}


def density_figure(record: dict | list[dict]) -> Figure | None:
    """One panel per model: the PSNR gain over the input (dB) of every image (dots) at each
    rain level (x, lightest left, the levels' median Input PSNR under their names), the
    median per level (line); outputs with a global tone shift drawn as red rings. The title
    gives the number of images and how the "-like" levels were calibrated."""
    rows, calibration = _density_rows(record)
    models = [m for m in dict.fromkeys(r["model"] for r in rows) if m != "input"]
    if not models:
        return None
    levels = sorted({(r["level"], r["level_name"]) for r in rows})
    images = list(dict.fromkeys(r["image"] for r in rows))
    ncol = min(2, len(models))
    nrow = math.ceil(len(models) / ncol)
    fig = Figure(figsize=(6.2 * ncol, 3.6 * nrow + 1.0), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False, sharey=True)
    ticks = []
    for lv, name in levels:
        inp = [r["input_psnr"] for r in rows if r["level"] == lv and r["model"] == "input"]
        ticks.append(f"{name}\nInput {np.median(inp):.1f} dB")
    jitter = np.linspace(-0.18, 0.18, len(images)) if len(images) > 1 else np.zeros(1)
    for ax, m in zip(axes.ravel(), models, strict=False):
        mine = [r for r in rows if r["model"] == m]
        for r in mine:
            x = r["level"] + jitter[images.index(r["image"])]
            ax.plot(x, r["gain"], "o", color="tab:blue", ms=3.5, alpha=0.6)
            if r.get("tone_shifted"):
                ax.plot(x, r["gain"], "o", mfc="none", mec="tab:red", ms=8, mew=1.2)
        med = [np.median([r["gain"] for r in mine if r["level"] == lv]) for lv, _ in levels]
        ax.plot([lv for lv, _ in levels], med, "-", color="k", lw=1.5, label="median")
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_xticks([lv for lv, _ in levels], ticks, fontsize=6.5)
        ax.set_title(m, fontsize=9)
        ax.set_ylabel("PSNR gain over the input (dB)", fontsize=8)
    for ax in axes.ravel()[len(models) :]:
        ax.set_axis_off()
    axes.ravel()[0].plot([], [], "o", color="tab:blue", ms=3.5, label="one image")
    axes.ravel()[0].plot([], [], "o", mfc="none", mec="tab:red", ms=8, label="global tone shift")
    axes.ravel()[0].legend(fontsize=7, loc="best")
    real = len({r["image"] for r in rows if not r.get("stand_in", True)})
    cal = [
        f"{c['benchmark']}-like: x{c['factor']:.2f} density, Input {c['synthetic_input_psnr']:.2f} "
        f"vs real {c['real_input_psnr']:.2f} dB"
        for c in calibration.values()
        if c.get("real_input_psnr") is not None
    ]
    fig.suptitle(
        f"Released models under more synthetic rain: n = {len(images)} clean test images "
        f"({real} real)\n" + ("; ".join(cal) if cal else "levels uncalibrated (no real pairs)"),
        fontsize=9,
    )
    return fig


def auc_figure(rows: list[dict]) -> Figure | None:
    """One row per (weights, data) source, one column per scale: the ROC-AUC of every mask
    channel (dots, mean over the images) per stage, the |DoG| control per stage (crosses)
    and the edge-magnitude control (dashed line); 0.5 = chance, below 0.5 = the channel is
    lower on rain. Each title gives the scale, the mask cells and n images."""
    sources = list(dict.fromkeys(r["source"] for r in rows))
    if not sources:
        return None
    scales = sorted({r["scale"] for r in rows})
    fig = Figure(figsize=(3.6 * len(scales) + 0.6, 2.9 * len(sources) + 0.8), layout="constrained")
    axes = fig.subplots(len(sources), len(scales), squeeze=False, sharey=True)
    for i, src in enumerate(sources):
        mine = [r for r in rows if r["source"] == src]
        n = len({r.get("image") for r in mine} - {None})
        for j, sc in enumerate(scales):
            ax = axes[i, j]
            here = [r for r in mine if r["scale"] == sc]
            keys = ("stage", "channel") if "channel" in here[0] else ("stage",)
            masks = mean_by([r for r in here if r["what"] == "mask"], keys, ("auc",))
            stages = sorted({r["stage"] for r in masks})
            for r in masks:
                c = r.get("channel") or 0
                x = r["stage"] + (c % 16 - 7.5) * 0.02
                ax.plot(x, r["auc"], "o", color="tab:blue", ms=2.5, alpha=0.6)
            dog = mean_by([r for r in here if r["what"] == "dog"], ("stage",), ("auc",))
            ax.plot(
                [r["stage"] for r in dog], [r["auc"] for r in dog], "x", color="tab:orange", ms=6
            )
            edge = [r["auc"] for r in here if r["what"] == "edge"]
            if edge:
                ax.axhline(float(np.mean(edge)), color="tab:green", ls="--", lw=1)
            ax.axhline(0.5, color="grey", lw=0.6)
            ax.set_ylim(0, 1)
            ax.set_xticks(stages, [str(s) for s in stages], fontsize=7)
            ax.set_xlabel("stage", fontsize=7)
            cells = here[0].get("cells")
            ax.set_title(
                f"scale {scale_label(sc)}" + (f", {cells} cells" if cells else "") + f", n={n}",
                fontsize=8,
            )
            if j == 0:
                ax.set_ylabel(f"{src}\nROC-AUC", fontsize=7)
    ax0 = axes[0, 0]
    ax0.plot([], [], "o", color="tab:blue", ms=3, label="mask channel")
    ax0.plot([], [], "x", color="tab:orange", label="|DoG| control")
    ax0.plot([], [], "--", color="tab:green", label="edge control")
    ax0.legend(fontsize=6, loc="lower left")
    fig.suptitle(
        "Attention masks as rain detectors: ROC-AUC per channel at each mask's resolution "
        "(0.5 = chance)",
        fontsize=9,
    )
    return fig


def generalisation_cells(rows: list[dict]) -> list[dict]:
    """One cell per (model, test set): ``n`` images, mean PSNR/SSIM, mean ``gain`` with
    its 95 % t-interval ``gain_lo``..``gain_hi`` over the images (per-image rows in; cells
    already made, e.g. by :func:`derain_lib.study.beyond.generalisation.cells`, and rows of
    the older format, one per cell, pass through)."""
    out = []
    keys = list(dict.fromkeys((r["model"], r["test_set"]) for r in rows))
    for m, t in keys:
        mine = [r for r in rows if r["model"] == m and r["test_set"] == t]
        if "gain" not in mine[0] or "gain_lo" in mine[0]:
            out += mine
            continue
        g, lo, hi = mean_ci(r["gain"] for r in mine)
        out.append(
            {
                "model": m,
                "test_set": t,
                "benchmark": mine[0].get("benchmark"),
                "n": len(mine),
                "input_psnr": float(np.mean([r["input_psnr"] for r in mine])),
                "psnr": float(np.mean([r["psnr"] for r in mine])),
                "ssim": float(np.mean([r["ssim"] for r in mine])),
                "gain": g,
                "gain_lo": lo,
                "gain_hi": hi,
            }
        )
    return out


def generalisation_figure(rows: list[dict]) -> Figure | None:
    """Matrix of released weights x test sets coloured by the mean PSNR gain over the input
    (dB, 0 white), each cell written as gain [95 % interval] and the output PSNR; n images
    under each test set's name. Older rows (one per cell, no gain) are coloured by PSNR."""
    cells = generalisation_cells(rows)
    if not cells:
        return None
    models = list(dict.fromkeys(r["model"] for r in cells))
    sets = list(dict.fromkeys(r["test_set"] for r in cells))
    has_gain = "gain" in cells[0]
    val = np.full((len(models), len(sets)), np.nan)
    text = np.full(val.shape, "", dtype=object)
    ns = {}
    for r in cells:
        a, b = models.index(r["model"]), sets.index(r["test_set"])
        ns[r["test_set"]] = f"{r['scenes']} scenes" if "scenes" in r else r["n"]
        if has_gain:
            val[a, b] = r["gain"]
            iv = "" if math.isnan(r["gain_lo"]) else f"\n[{r['gain_lo']:+.2f}, {r['gain_hi']:+.2f}]"
            text[a, b] = f"{r['gain']:+.2f}{iv}\n{r['psnr']:.2f} dB"
        else:
            val[a, b] = r["psnr"]
            text[a, b] = f"{r['psnr']:.2f}\n{r['ssim']:.3f}"
    fig = Figure(figsize=(2.0 * len(sets) + 3.0, 0.75 * len(models) + 2.2), layout="constrained")
    ax = fig.subplots()
    if has_gain:
        top = float(np.nanmax(np.abs(val))) or 1.0
        im = ax.imshow(val, cmap="RdBu", norm=TwoSlopeNorm(0.0, -top, top), aspect="auto")
    else:
        im = ax.imshow(val, cmap="viridis", aspect="auto")
    far = 0.6 * float(np.nanmax(np.abs(val))) if has_gain else math.inf
    for (a, b), t in np.ndenumerate(text):
        dark = not has_gain or abs(val[a, b]) > far  # a dark cell: white text
        ax.text(b, a, t, ha="center", va="center", fontsize=6.5, color="white" if dark else "k")
    labels = [f"{s}\n(n={ns[s]})" for s in sets]
    ax.set_xticks(range(len(sets)), labels, fontsize=6.5, rotation=20, ha="right")
    ax.set_yticks(range(len(models)), models, fontsize=7)
    what = "gain over the input (dB) [95 % interval], output PSNR" if has_gain else "PSNR / SSIM"
    ax.set_title(f"Released weights x test sets: {what}", fontsize=9)
    fig.colorbar(im, ax=ax, label="PSNR gain (dB)" if has_gain else "PSNR (dB)")
    return fig


def photos_figure(folder: str | Path) -> Figure | None:
    """Real photographs (``rainy/``) and each model's output (one folder per model)."""
    title = "Real rainy photographs derained by each released model (no ground truth)"
    return photo_grid(folder, title=title)
