"""Figures of the study's results, drawn from files under ``results/`` only.

Each function takes what the study saved (a table as a DataFrame, score records, the
``runs.json`` rows, a folder of PNGs, an ``.npz``) and returns a matplotlib ``Figure``.
Data are named with :func:`~derain_lib.tables.benchmark_label` (``embedded light (stand-in
for Rain100L)`` for the synthetic sets), and what did not run is named, never drawn blank.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..attention_maps import Attention
from ..data.io import read_image
from ..runs import Run, restored
from ..tables import MethodId as M
from ..tables import Score, benchmark_label
from .attention import attention_panel

#: Columns of the Fig. 7-9 analogues.
FIGURE_METHODS = (M.INPUT, M.PRENET_RELEASED, M.SIAN_RELEASED, M.SIAN)
METHOD_LABELS = {
    M.INPUT: "rainy",
    M.PRENET_RELEASED: "PReNet (released)",
    M.SIAN_RELEASED: "SIAN (released)",
    M.SIAN: "SIAN (trained here)",
}
#: Training losses (``runs.json`` ``loss``): panel title and y label. Every loss is summed
#: over the model's stage outputs (Eq. 13), images in [0, 1]; the curves divide it by the
#: model's stages (:data:`MODEL_STAGES`), so a one-stage baseline and six-stage models share
#: one scale.
LOSS_AXES = {
    "ssim": ("negative SSIM loss", "−SSIM per stage (Σ stages / stages; −1 = perfect)"),
    "l1": ("MAE loss", "mean |X_k − B| per stage (intensity, 0-1)"),
    "mse": ("MSE loss", "mean (X_k − B)² per stage (intensity², 0-1)"),
}
#: Stage outputs the training loss sums over, per model (docs: ``derain info``): six for
#: every model but the one-stage baseline.
MODEL_STAGES = {"sian-baseline": 1}


def _message(text: str) -> Figure:
    fig = Figure(figsize=(6, 1.2))
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, wrap=True)
    return fig


def _wrap(text: str, width: int = 16) -> str:
    """``text`` on lines of about ``width`` characters, broken at spaces only (a longer word,
    e.g. ``Baseline+SIAN+LSTM``, keeps its line)."""
    return "\n".join(textwrap.wrap(text, width, break_long_words=False)) or text


def table_bars(table: pd.DataFrame, title: str, metric: str = "psnr") -> Figure:
    """Our value (solid) beside the paper's (hatched) for every measured row of a table
    (``tableN.csv`` as a DataFrame), one panel per benchmark column (the stand-in data
    apart from the real benchmark); the rows not run are named under the panels."""
    ours = table[table.kind != "paper"]
    measured = ours[ours[metric].notna()]
    missed = ours[ours[metric].isna()]
    benches = list(dict.fromkeys(measured.benchmark))
    if not benches:
        return _message(f"{title}: no row measured (reasons in the table's provenance)")
    fig = Figure(figsize=(max(4.2 * len(benches), 6.5), 4.6), layout="constrained")
    axes = fig.subplots(1, len(benches), squeeze=False)[0]
    for ax, bench in zip(axes, benches, strict=True):
        rows = measured[measured.benchmark == bench].reset_index(drop=True)
        sets = list(dict.fromkeys(rows.test_set.fillna("")))
        labels = [
            _wrap(m) + (f"\n{_wrap(str(t), 22)}" if len(sets) > 1 else "")
            for m, t in zip(rows.method, rows.test_set, strict=True)
        ]
        x = np.arange(len(rows))
        ours_bars = ax.bar(x - 0.2, rows[metric], 0.4, label="this run")
        paper_bars = ax.bar(
            x + 0.2,
            rows[f"paper_{metric}"].fillna(0),
            0.4,
            hatch="//",
            alpha=0.5,
            label="paper (its own test set)",
        )
        fmt = "{:.2f}" if metric == "psnr" else "{:.3f}"
        ax.bar_label(ours_bars, [fmt.format(v) for v in rows[metric]], fontsize=6, padding=1)
        ax.bar_label(
            paper_bars,
            ["" if pd.isna(v) else fmt.format(v) for v in rows[f"paper_{metric}"]],
            fontsize=6,
            padding=1,
            color="dimgrey",
        )
        ax.set_xticks(x, labels, fontsize=6)
        ax.set_ylabel(metric.upper() + (" (dB)" if metric == "psnr" else ""))
        ax.margins(y=0.12)
        head = bench if len(sets) != 1 else f"{bench}\ntest set: {sets[0]}"
        ax.set_title(head, fontsize=8)
    # one legend under the panels: inside one it covered the last bars
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
    foot = ""
    if len(missed):
        where: dict[str, list[str]] = {}
        for m, b in zip(missed.method, missed.benchmark, strict=True):
            where.setdefault(m, []).append(b)
        entries = [f"{m} ({', '.join(bs)})" for m, bs in where.items()]
        foot = "\nnot run (reasons in the table): " + ";\n".join(entries)
    fig.suptitle(title + foot, fontsize=9)
    return fig


def _val_images(run: dict) -> int | None:
    """How many test images a training run validated on (its config), or None."""
    cfg = Run.load(restored(run["run_dir"])).config
    return cfg.train.val_images if cfg is not None else None


def training_curves(runs: list[dict], methods: tuple[str, ...] | None = None) -> Figure:
    """Per training set (rows): the training loss per step divided by the model's stages
    (:data:`MODEL_STAGES`), one panel per loss kind (:data:`LOSS_AXES`: the losses have
    different scales), then the validation PSNR per
    evaluation: a curve where a run validated more than once, else one dot with its value
    written (``runs.json`` rows, each log read from its run folder)."""
    done = [r for r in runs if r["status"] == "ok" and (methods is None or r["method"] in methods)]
    sets = list(dict.fromkeys(r["dataset"] for r in done))
    if not sets:
        return _message("no finished training run")
    kinds = [k for k in LOSS_AXES if any(r["loss"] == k for r in done)]
    colours = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(r["method"] for r in done))}
    ncol = len(kinds) + 1
    fig = Figure(figsize=(4.0 * ncol, 3.4 * len(sets)), layout="constrained")
    axes = fig.subplots(len(sets), ncol, squeeze=False)
    for i, d in enumerate(sets):
        mine = [r for r in done if r["dataset"] == d]
        data = benchmark_label(mine[0]["benchmark"], mine[0]["stand_in"])
        val_ax = axes[i, -1]
        single = []
        for r in mine:
            log = pd.read_csv(restored(r["run_dir"]) / "log.csv")
            loss = log.dropna(subset=["loss"])
            val = log.dropna(subset=["val_psnr"])
            ax = axes[i, kinds.index(r["loss"])]
            c = colours[r["method"]]
            per_stage = loss["loss"] / MODEL_STAGES.get(r.get("model", ""), 6)
            ax.plot(loss["step"], per_stage, ".-", color=c, label=r["method"], lw=0.8, ms=2)
            if len(val) > 1:
                val_ax.plot(val["step"], val["val_psnr"], "o-", color=c, label=r["method"], ms=3)
            elif len(val) == 1:
                single.append((r["method"], val.iloc[0]))
        for j, (m, v) in enumerate(single):
            val_ax.plot(j, v["val_psnr"], "o", color=colours[m], ms=6)
            val_ax.annotate(
                f"{v['val_psnr']:.2f} dB\nSSIM {v['val_ssim']:.3f}",
                (j, v["val_psnr"]),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=6,
            )
        if single:
            steps = sorted({int(v["step"]) for _, v in single})
            # model over loss, tilted: long ablation names stay apart
            names = [m.replace("/", "\n") for m, _ in single]
            val_ax.set_xticks(range(len(single)), names, fontsize=6, rotation=30, ha="right")
            val_ax.set_xlim(-0.6, len(single) - 0.4)
            val_ax.margins(y=0.25)
            n_val = sorted({_val_images(r) for r in mine} - {None})
            on = f" on {'/'.join(map(str, n_val))} test images" if n_val else ""
            val_ax.set_title(
                f"{data}\nvalidation PSNR{on}, one evaluation (step {', '.join(map(str, steps))})",
                fontsize=8,
            )
        else:
            val_ax.set_xlabel("step")
            val_ax.set_title(f"{data}\nvalidation PSNR per evaluation", fontsize=8)
            if val_ax.get_legend_handles_labels()[0]:  # none when no run validated
                val_ax.legend(fontsize=6)
        val_ax.set_ylabel("validation PSNR (dB)", fontsize=8)
        for k, ax in zip(kinds, axes[i, :-1], strict=True):
            name, ylabel = LOSS_AXES[k]
            ax.set_title(f"{data}\n{name} per step, per stage", fontsize=8)
            ax.set_xlabel("step", fontsize=8)
            ax.set_ylabel(ylabel, fontsize=7)
            if ax.lines:
                ax.legend(fontsize=6)
            else:
                ax.text(0.5, 0.5, "no run with this loss", ha="center", transform=ax.transAxes)
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


def figure_test_sets(scores: list[Score], benchmark: str | None = None) -> list[Score]:
    """The Input score of every test set the comparison figures can show (one per
    benchmark and kind of data, the real benchmark before its stand-in), optionally of one
    ``benchmark``. Its ``per_image_csv`` folder holds the kept ground truths."""
    inputs = sorted(
        (s for s in scores if s.method == "input" and s.ran),
        key=lambda s: (s.benchmark, s.stand_in),
    )
    out: dict[tuple[str, bool], Score] = {}
    for s in inputs:
        if benchmark in (None, s.benchmark):
            out.setdefault((s.benchmark, s.stand_in), s)
    return list(out.values())


def comparison_methods(
    scores: list[Score], test: Score, methods: tuple[str, ...] = FIGURE_METHODS
) -> tuple[list[Score], list[str]]:
    """The scores of ``methods`` on the test set of ``test`` (an Input score), and the
    methods that did not run there."""
    ran = {
        s.method: s
        for s in scores
        if s.ran and s.test_set == test.test_set and s.benchmark == test.benchmark
    }
    return [ran[m] for m in methods if m in ran], [m for m in methods if m not in ran]


def comparison_caption(
    scores: list[Score], test: Score, paper_figure: str, methods: tuple[str, ...] = FIGURE_METHODS
) -> str:
    """The caption of :func:`comparison` for the test set of ``test``: the data, which
    methods are shown and which did not run."""
    shown, missing = comparison_methods(scores, test, methods)
    text = (
        f"{paper_figure} analogue on {benchmark_label(test.benchmark, test.stand_in)} "
        f"({test.test_set}): {', '.join(METHOD_LABELS[s.method] for s in shown)}, ground truth; "
        "per-image PSNR (dB) in the titles"
    )
    if missing:
        text += f"; not run: {', '.join(METHOD_LABELS[m] for m in missing)}"
    return text + "."


def comparison(
    results_root: str | Path,
    scores: list[Score],
    test: Score,
    methods: tuple[str, ...] = FIGURE_METHODS,
    images: int | None = None,
) -> Figure:
    """Fig. 7-9 analogue on the test set of ``test`` (an Input score, see
    :func:`figure_test_sets`): rainy | each method that ran | ground truth, one row per
    test image kept with its ground truth (at most ``images``), titled with per-image PSNR;
    the title says how many of the images the table scored are shown and what did not run."""
    root = Path(results_root)
    shown, missing = comparison_methods(scores, test, methods)
    base = root / test.per_image_csv
    gt_dir = base.parent / "ground_truth"
    names = [n for n in pd.read_csv(base)["name"] if (gt_dir / f"{Path(n).stem}.png").is_file()]
    names = names[:images]
    psnr = {s.method: pd.read_csv(root / s.per_image_csv).set_index("name")["psnr"] for s in shown}
    fig = Figure(figsize=(2.4 * (len(shown) + 1), 1.75 * len(names) + 0.9), layout="constrained")
    axes = fig.subplots(len(names), len(shown) + 1, squeeze=False)
    for r, name in enumerate(names):
        stem = Path(name).stem
        for c, s in enumerate(shown):
            ax = axes[r, c]
            ax.set_axis_off()
            ax.imshow(read_image((root / s.per_image_csv).parent / "outputs" / f"{stem}.png"))
            ax.set_title(f"{METHOD_LABELS[s.method]}\n{psnr[s.method][name]:.2f} dB", fontsize=8)
        ax = axes[r, -1]
        ax.set_axis_off()
        ax.imshow(read_image(gt_dir / f"{stem}.png"))
        ax.set_title(f"ground truth\n{stem}", fontsize=8)
    title = (
        f"{benchmark_label(test.benchmark, test.stand_in)}: {test.test_set}; "
        f"{len(names)} of {test.n} scored test images shown"
    )
    if missing:
        title += f"\nnot run: {', '.join(METHOD_LABELS[m] for m in missing)}"
    fig.suptitle(title, fontsize=9)
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


def zoom_box(rainy: np.ndarray, derained: np.ndarray | None, frac: float = 0.28) -> tuple:
    """(top, left, side) of the square crop the photo figures zoom into: where the first
    model changed the photo most (mean |rainy - derained| over a sliding window), else the
    centre; ``side`` is ``frac`` of the shorter side."""
    h, w = rainy.shape[:2]
    side = max(8, int(min(h, w) * frac))
    if derained is None or derained.shape != rainy.shape:
        return (h - side) // 2, (w - side) // 2, side
    change = np.abs(rainy.astype(np.float32) - derained.astype(np.float32)).mean(axis=2)
    step = max(1, side // 4)
    best, where = -1.0, (0, 0)
    for y in range(0, h - side + 1, step):
        for x in range(0, w - side + 1, step):
            v = float(change[y : y + side, x : x + side].mean())
            if v > best:
                best, where = v, (y, x)
    return where[0], where[1], side


def photo_grid(
    folder: str | Path,
    label: Callable[[str], str] = str,
    title: str = "",
    per_row: int = 3,
    width: float = 15.0,
) -> Figure | None:
    """Rainy photos (``folder/rainy/*.png``) and their derained versions (one sub-folder
    per method): per photo, at most ``per_row`` images a row across the figure's ``width``
    (inches), each beside a zoomed crop of the same region (marked on the image; where the
    first method changed the photo most, :func:`zoom_box`), titled ``label(method)`` and
    the photo's stem. None when there are none."""
    folder = Path(folder)
    rainy = sorted((folder / "rainy").glob("*.png")) if folder.is_dir() else []
    if not rainy:
        return None
    cols = ["rainy"] + sorted(d.name for d in folder.iterdir() if d.is_dir() and d.name != "rainy")
    first = read_image(rainy[0])
    aspect = first.shape[0] / first.shape[1]
    rows_per_photo = math.ceil(len(cols) / per_row)
    nrows = rows_per_photo * len(rainy)
    cell_w = width / per_row
    fig = Figure(
        figsize=(width, nrows * (cell_w * 0.72 * aspect + 0.45) + 0.6), layout="constrained"
    )
    grid = fig.add_gridspec(nrows, 2 * per_row, width_ratios=[2.6, 1.0] * per_row)
    for p, photo in enumerate(rainy):
        images = {
            m: read_image(folder / m / photo.name)
            for m in cols
            if (folder / m / photo.name).is_file()
        }
        top, left, side = zoom_box(images["rainy"], images.get(cols[1]) if len(cols) > 1 else None)
        for k, m in enumerate(images):
            r, c = p * rows_per_photo + k // per_row, k % per_row
            ax, zx = fig.add_subplot(grid[r, 2 * c]), fig.add_subplot(grid[r, 2 * c + 1])
            img = images[m]
            ax.imshow(img)
            ax.add_patch(Rectangle((left, top), side, side, fill=False, ec="yellow", lw=1.2))
            zx.imshow(img[top : top + side, left : left + side], interpolation="nearest")
            for a in (ax, zx):
                a.set_xticks([])
                a.set_yticks([])
            ax.set_title(f"{label(m)}: {photo.stem}", fontsize=8)
            zx.set_title("zoom", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def real_rain(real: str | Path, labels: dict[str, str] = METHOD_LABELS) -> Figure | None:
    """Fig. 10 analogue: real rainy photos (``real/rainy/*.png``) and their derained
    versions (``real/<method>/``); None when there are none."""

    def label(m: str) -> str:
        return labels.get(m.replace("_", "/", 1) if m.startswith("sian_") else m, m)

    title = "Real rainy photos (no ground truth) derained by the Rain100H models"
    return photo_grid(real, label, title=title)


#: Colours of the forest plot's verdicts (any other verdict is grey).
VERDICT_COLOURS = {"supported": "tab:green", "contradicted": "tab:red"}
#: Kinds of evidence, in the forest plot's order (``claims.csv`` ``evidence``; the knock-outs'
#: kind starts with :data:`SENSITIVITY`).
EVIDENCE_KINDS = ("released, full set", "released, partial set", "trained here")
SENSITIVITY = "inference-time sensitivity"
_METRICS = (("psnr", "PSNR", "dB"), ("ssim", "SSIM", "SSIM"))


def _num(v: object) -> float:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return f


def forest_claims(rows: list[dict]) -> list[dict]:
    """``claims.csv`` rows as the forest plot's: ``label``, ``evidence``, ``verdict`` (the
    direction), ``reason`` and per metric ``diff``/``lo``/``hi``/``paper``. A pipeline check
    keeps its label and reason but no difference: it is not an effect to draw."""
    out = []
    for r in rows:
        verdict = str(r.get("direction") or "")
        evidence = "not run" if verdict == "not run" else str(r.get("evidence") or "not run")
        row = {"evidence": evidence, "verdict": verdict, "reason": str(r.get("reason") or "")}
        for m, _, _ in _METRICS:
            row[m] = {
                "diff": _num(r.get(f"diff_{m}")),
                "lo": _num(r.get(f"lo_{m}")),
                "hi": _num(r.get(f"hi_{m}")),
                "paper": _num(r.get(f"paper_diff_{m}")),
            }
        test = r.get("test_set")
        test = f"{r.get('benchmark', '')}: no test set" if not isinstance(test, str) else test
        row["label"] = f"{r['table']}: {r['claim']}\n{textwrap.shorten(test or '-', 48)}"
        measured = math.isfinite(row["psnr"]["diff"])
        if evidence == "pipeline check":
            for m, _, _ in _METRICS:
                row[m] |= {"diff": math.nan, "lo": math.nan, "hi": math.nan}
        elif measured and not evidence.startswith(SENSITIVITY) and verdict not in VERDICT_COLOURS:
            row["label"] += "\n→ " + textwrap.shorten(verdict, 64)
        out.append(row)
    return out


def claims_forest(rows: list[dict]) -> Figure:
    """A row for every claim of ``claims.csv`` (both formats, :func:`forest_claims`), grouped
    by the kind of evidence (:data:`EVIDENCE_KINDS`, then the claims not run or not
    testable, labelled with their reason); PSNR and SSIM panels with the mean paired
    difference (dot, coloured by verdict), its 95 % interval and the paper's difference
    (black cross). Each panel's x range is set by the differences and the paper's marks,
    not by the widest interval: an interval beyond it is clipped and drawn as an arrow
    with its bound written, so the paper's marks stay readable."""
    claims = forest_claims(rows)
    if not claims:
        return _message("claims.csv has no claim")
    kinds = [k for k in EVIDENCE_KINDS if any(c["evidence"] == k for c in claims)]
    kinds += [k for k in dict.fromkeys(c["evidence"] for c in claims) if k not in kinds]
    order: list[dict | str] = []
    for k in kinds:
        order.append(k)
        order += [c for c in claims if c["evidence"] == k]
    fig = Figure(figsize=(13.0, 0.5 * len(order) + 1.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (m, name, unit) in zip(axes, _METRICS, strict=True):
        # the range follows the paper's marks (the claims' sizes), not the widest interval
        paper = [abs(c[m]["paper"]) for c in claims if math.isfinite(c[m]["paper"])]
        floor = 0.5 if m == "psnr" else 0.005
        lim = max(2.5 * max(paper, default=0.0), floor)
        for y, c in enumerate(order):
            if isinstance(c, str):
                ax.axhspan(y - 0.5, y + 0.5, color="0.92", lw=0)
                continue
            v = c[m]
            if not math.isfinite(v["diff"]):
                if m == "psnr":
                    why = c["reason"] or c["verdict"] or "not measured"
                    ax.text(
                        -lim * 0.97,
                        y,
                        textwrap.shorten(why, 60),
                        va="center",
                        fontsize=6,
                        color="dimgrey",
                    )
                if math.isfinite(v["paper"]):
                    ax.plot(v["paper"], y, "kx", ms=6)
                continue
            colour = VERDICT_COLOURS.get(c["verdict"], "tab:grey")
            if c["evidence"].startswith(SENSITIVITY):
                colour = "tab:blue"
            lo = v["lo"] if math.isfinite(v["lo"]) else v["diff"]
            hi = v["hi"] if math.isfinite(v["hi"]) else v["diff"]
            ax.plot([max(lo, -lim), min(hi, lim)], [y, y], "-", color=colour, lw=1.6)
            fmt = "{:+.2f}" if m == "psnr" else "{:+.3f}"
            if abs(v["diff"]) <= lim:
                ax.plot(v["diff"], y, "o", color=colour, ms=4.5)
            else:  # the mean itself beyond the range: written at the edge
                edge = lim if v["diff"] > 0 else -lim
                ax.text(
                    edge,
                    y - 0.3,
                    f"mean {fmt.format(v['diff'])}",
                    fontsize=5.5,
                    color=colour,
                    ha="right" if v["diff"] > 0 else "left",
                )
            if lo < -lim:
                ax.plot(-lim, y, "<", color=colour, ms=6)
                ax.text(-lim, y + 0.32, fmt.format(lo), fontsize=5.5, color=colour, ha="left")
            if hi > lim:
                ax.plot(lim, y, ">", color=colour, ms=6)
                ax.text(lim, y + 0.32, fmt.format(hi), fontsize=5.5, color=colour, ha="right")
            if math.isfinite(v["paper"]):
                ax.plot(v["paper"], y, "kx", ms=6)
        ax.set_xlim(-lim * 1.02, lim * 1.02)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_xlabel(f"{name}: better − worse ({unit})", fontsize=8)
        ax.set_title(f"{name} difference", fontsize=9)
    labels = [f"— {textwrap.shorten(c, 60)} —" if isinstance(c, str) else c["label"] for c in order]
    axes[0].set_yticks(range(len(order)), labels, fontsize=6.5)
    for t, c in zip(axes[0].get_yticklabels(), order, strict=True):
        if isinstance(c, str):
            t.set_fontweight("bold")
    axes[0].set_ylim(len(order) - 0.5, -0.5)
    fig.suptitle(
        f"{len(claims)} rows of claims.csv, grouped by evidence: dot = mean paired "
        "difference, bar = 95 % interval (arrow: clipped, bound written), x = paper; "
        "green supported, red contradicted, grey inconclusive (→ why), blue knock-outs "
        "(no verdict); pipeline checks are listed, not drawn",
        fontsize=8.5,
    )
    return fig
