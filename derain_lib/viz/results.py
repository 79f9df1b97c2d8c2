"""Figures of the study's results, drawn from files under ``results/`` only.

Each function takes what the study saved (a table as a DataFrame, score records, the
``runs.json`` rows, a folder of PNGs, an ``.npz``) and returns a matplotlib ``Figure``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..attention import Attention
from ..data.io import read_image
from ..tables import BENCHMARKS, Score
from .attention import attention_panel

#: Columns of the Fig. 7-9 analogues.
FIGURE_METHODS = ("input", "prenet-released", "sian-released", "sian/neg-ssim")
METHOD_LABELS = {
    "input": "rainy",
    "prenet-released": "PReNet (released)",
    "sian-released": "SIAN (released)",
    "sian/neg-ssim": "SIAN (trained here)",
}


def _message(text: str) -> Figure:
    fig = Figure(figsize=(6, 1.2))
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, wrap=True)
    return fig


def table_bars(table: pd.DataFrame, title: str, metric: str = "psnr") -> Figure:
    """Our value (solid) beside the paper's (hatched) for every measured row of a table
    (``tableN.csv`` as a DataFrame), one panel per benchmark; rows not run show no bar."""
    ours = table[~table.provenance.str.startswith("paper")]
    benches = list(dict.fromkeys(ours.benchmark))
    fig = Figure(figsize=(4.8 * max(len(benches), 1), 3.8))
    axes = fig.subplots(1, max(len(benches), 1), squeeze=False)[0]
    for ax, bench in zip(axes, benches, strict=False):
        rows = ours[ours.benchmark == bench].reset_index(drop=True)
        tests = rows.test_set.fillna("")
        labels = [f"{m}\n{t}" if t else m for m, t in zip(rows.method, tests, strict=True)]
        x = np.arange(len(rows))
        ax.bar(x - 0.2, rows[metric].fillna(0), 0.4, label="this run")
        paper = rows[f"paper_{metric}"].fillna(0)
        ax.bar(x + 0.2, paper, 0.4, hatch="//", alpha=0.5, label="paper")
        for i, v in enumerate(rows[metric]):
            text = "not run" if pd.isna(v) else f"{v:.2f}"
            ax.text(i - 0.2, 0 if pd.isna(v) else v, text, ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, labels, fontsize=6, rotation=20, ha="right")
        ax.set_ylabel(metric.upper() + (" (dB)" if metric == "psnr" else ""))
        ax.set_title(bench, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def training_curves(runs: list[dict], methods: tuple[str, ...] | None = None) -> Figure:
    """Loss per step and validation PSNR per epoch of the finished runs (``runs.json``
    rows, each log read from its run folder), one row of panels per training set."""
    done = [r for r in runs if r["status"] == "ok" and (methods is None or r["method"] in methods)]
    sets = list(dict.fromkeys(r["dataset"] for r in done))
    if not sets:
        return _message("no finished training run")
    fig = Figure(figsize=(10, 3.2 * len(sets)))
    axes = fig.subplots(len(sets), 2, squeeze=False)
    for i, d in enumerate(sets):
        for r in (r for r in done if r["dataset"] == d):
            log = pd.read_csv(Path(r["run_dir"]) / "log.csv")
            loss = log.dropna(subset=["loss"])
            val = log.dropna(subset=["val_psnr"])
            axes[i, 0].plot(loss["step"], loss["loss"], ".-", label=r["method"], lw=0.8, ms=3)
            axes[i, 1].plot(val["step"], val["val_psnr"], "o-", label=r["method"], ms=3)
        axes[i, 0].set_title(f"{d}: training loss (each run's own loss)", fontsize=9)
        axes[i, 1].set_title(f"{d}: validation PSNR (dB)", fontsize=9)
        for ax in axes[i]:
            ax.set_xlabel("step")
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def per_image_scatter(results_root: str | Path, scores: list[Score], x: str, y: str) -> Figure:
    """Per-image PSNR of method ``y`` against method ``x`` on every test set both were
    scored on (from their ``per_image.csv``); points above the diagonal favour ``y``."""
    root = Path(results_root)
    ran = [s for s in scores if s.ran]
    pairs = [
        (sx, sy)
        for sx in ran
        if sx.method == x
        for sy in ran
        if sy.method == y and sy.test_set == sx.test_set
    ]
    if not pairs:
        return _message(f"no test set scored with both {x} and {y}")
    fig = Figure(figsize=(3.6 * len(pairs), 3.6))
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    for ax, (sx, sy) in zip(axes, pairs, strict=True):
        a = pd.read_csv(root / sx.per_image_csv).set_index("name")["psnr"]
        b = pd.read_csv(root / sy.per_image_csv).set_index("name")["psnr"].reindex(a.index)
        ax.scatter(a, b, s=14)
        lo, hi = float(min(a.min(), b.min())) - 1, float(max(a.max(), b.max())) + 1
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.7)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(f"{x} PSNR (dB)", fontsize=8)
        ax.set_ylabel(f"{y} PSNR (dB)", fontsize=8)
        ax.set_title(f"{sx.test_set} (n={len(a)})", fontsize=8)
    fig.tight_layout()
    return fig


def comparison(
    results_root: str | Path,
    scores: list[Score],
    benchmark: str,
    methods: tuple[str, ...] = FIGURE_METHODS,
    images: int = 2,
) -> Figure | None:
    """Fig. 7-9 analogue: rainy | each method | ground truth for the first images of
    ``benchmark``'s first test set (real data before the stand-in), titled with per-image
    PSNR; None when the benchmark was not scored."""
    root = Path(results_root)
    scored = [s for s in scores if s.benchmark == benchmark and s.ran]
    inputs = sorted((s for s in scored if s.method == "input"), key=lambda s: s.stand_in)
    if not inputs:
        return None
    test = inputs[0].test_set
    cols = [
        (m, next((s for s in scored if s.method == m and s.test_set == test), None))
        for m in methods
    ]
    base = root / inputs[0].per_image_csv
    gt_dir = base.parent / "ground_truth"
    names = [n for n in pd.read_csv(base)["name"] if (gt_dir / f"{Path(n).stem}.png").is_file()]
    names = names[:images]
    fig = Figure(figsize=(2.4 * (len(cols) + 1), 1.9 * len(names) + 0.6))
    axes = fig.subplots(len(names), len(cols) + 1, squeeze=False)
    for r, name in enumerate(names):
        stem = Path(name).stem
        for c, (m, sc) in enumerate(cols):
            ax = axes[r, c]
            ax.set_axis_off()
            if sc is None:
                ax.text(0.5, 0.5, f"{METHOD_LABELS[m]}\nnot run", ha="center", va="center")
                continue
            csv_path = root / sc.per_image_csv
            psnr = pd.read_csv(csv_path).set_index("name").loc[name, "psnr"]
            ax.imshow(read_image(csv_path.parent / "outputs" / f"{stem}.png"))
            ax.set_title(f"{METHOD_LABELS[m]}\n{psnr:.2f} dB", fontsize=8)
        ax = axes[r, -1]
        ax.set_axis_off()
        ax.imshow(read_image(gt_dir / f"{stem}.png"))
        ax.set_title(f"ground truth\n{stem}", fontsize=8)
    fig.suptitle(f"{BENCHMARKS[benchmark]}: {test}", fontsize=9)
    fig.tight_layout()
    return fig


def attention_from_npz(npz: str | Path) -> Figure:
    """The mean attention mask per stage and scale (:func:`attention_panel`) from the file
    :func:`derain_lib.study.figures.export_attention` saved."""
    z = np.load(npz)
    n = sum(1 for k in z.files if k.startswith("outputs_"))
    scales = sorted({int(k.split("_")[2]) for k in z.files if k.startswith("masks_")})
    att = Attention(
        z["image"],
        [z[f"outputs_{k}"] for k in range(n)],
        [z[f"rain_{k}"] for k in range(n)],
        [{sc: z[f"masks_{k}_{sc}"] for sc in scales} for k in range(n)],
        [{} for _ in range(n)],  # DoG and octave layers are not saved (hundreds of MB)
        [{} for _ in range(n)],
    )
    return attention_panel(att, "mask", title=f"attention masks M_(s): {z['provenance']}")


def photo_grid(
    folder: str | Path,
    label: Callable[[str], str] = str,
    cell: tuple[float, float, float] = (2.8, 2.2, 0.4),
    fontsize: int = 8,
) -> Figure | None:
    """Rainy photos (``folder/rainy/*.png``, rows) beside their derained versions (one
    sub-folder per method, columns), titled ``label(method)`` and the photo's stem;
    ``cell``: inches per column, per row, and for the titles. None when there are none."""
    folder = Path(folder)
    rainy = sorted((folder / "rainy").glob("*.png")) if folder.is_dir() else []
    if not rainy:
        return None
    cols = ["rainy"] + sorted(d.name for d in folder.iterdir() if d.is_dir() and d.name != "rainy")
    fig = Figure(figsize=(cell[0] * len(cols), cell[1] * len(rainy) + cell[2]))
    axes = fig.subplots(len(rainy), len(cols), squeeze=False)
    for r, photo in enumerate(rainy):
        for c, m in enumerate(cols):
            ax = axes[r, c]
            ax.set_axis_off()
            ax.imshow(read_image(folder / m / photo.name))
            ax.set_title(f"{label(m)}\n{photo.stem}", fontsize=fontsize)
    fig.tight_layout()
    return fig


def real_rain(real: str | Path, labels: dict[str, str] = METHOD_LABELS) -> Figure | None:
    """Fig. 10 analogue: real rainy photos (``real/rainy/*.png``) and their derained
    versions (``real/<method>/``); None when there are none."""

    def label(m: str) -> str:
        return labels.get(m.replace("_", "/", 1) if m.startswith("sian_") else m, m)

    return photo_grid(real, label)


#: Colours of the forest plot's verdicts (any other verdict is grey).
VERDICT_COLOURS = {"supported": "tab:green", "contradicted": "tab:red"}


def claims_forest(rows: list[dict]) -> Figure:
    """PSNR and SSIM panels: one line per (claim, test set) measured (``claims.csv`` rows), its
    mean paired difference (dot) and 95 % interval (bar), coloured by verdict; the paper's
    difference as a black cross."""
    measured = [r for r in rows if r["diff"] not in ("", None)]
    if not measured:
        return _message("no claim measured: both methods of every claim did not run")
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
