"""Figures of the study's results, drawn from files under ``results/`` only; what did not run
is named, never drawn blank."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from numpy.lib.stride_tricks import sliding_window_view

from ..data.io import read_image
from ..runs import Run, restored
from ..tables import MethodId as M
from ..tables import Score, benchmark_label
from .attention import Attention, attention_panel

#: Columns of the Fig. 7-9 analogues, in order, and their labels.
METHOD_LABELS = {M.INPUT: "rainy", M.PRENET_RELEASED: "PReNet (released)",
                 M.SIAN_RELEASED: "SIAN (released)", M.SIAN: "SIAN (trained here)"}  # fmt: skip
#: Training losses (``runs.json`` ``loss``): panel title and y label. A loss sums the stage
#: outputs (Eq. 13): the curves divide it by the stages, one scale for every model.
LOSS_AXES = {
    "ssim": ("negative SSIM loss", "−SSIM per stage (Σ stages / stages; −1 = perfect)"),
    "l1": ("MAE loss", "mean |X_k − B| per stage (intensity, 0-1)"),
    "mse": ("MSE loss", "mean (X_k − B)² per stage (intensity², 0-1)"),
}
#: Stage outputs a model's training loss sums over: six but for the one-stage baseline.
MODEL_STAGES = {"sian-baseline": 1}


def message_figure(text: str) -> Figure:
    """A figure that only says ``text`` (what there is nothing to draw for)."""
    fig = Figure(figsize=(6, 1.2))
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, wrap=True)
    return fig


def _wrap(text: str, width: int = 16) -> str:
    """``text`` broken at spaces only (``Baseline+SIAN+LSTM`` keeps its line)."""
    return "\n".join(textwrap.wrap(text, width, break_long_words=False)) or text


def table_bars(table: pd.DataFrame, title: str, metric: str = "psnr") -> Figure:
    """Our value beside the paper's for every measured row of a table; rows not run named."""
    ours = table[table.kind != "paper"]
    measured, missed = ours[ours[metric].notna()], ours[ours[metric].isna()]
    if measured.empty:
        return message_figure(f"{title}: no row measured (reasons in the table's provenance)")
    groups = list(measured.groupby("benchmark", sort=False))
    fig = Figure(figsize=(max(4.2 * len(groups), 6.5), 4.6), layout="constrained")
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    fmt = "{:.2f}" if metric == "psnr" else "{:.3f}"
    for ax, (bench, rows) in zip(axes, groups, strict=True):
        sets = list(dict.fromkeys(rows.test_set.fillna("")))
        x = np.arange(len(rows))
        for dx, col, label, style in (
            (-0.2, metric, "this run", {}),
            (0.2, f"paper_{metric}", "paper (its own test set)", {"hatch": "//", "alpha": 0.5}),
        ):
            bars = ax.bar(x + dx, rows[col].fillna(0), 0.4, label=label, **style)
            text = ["" if pd.isna(v) else fmt.format(v) for v in rows[col]]
            ax.bar_label(bars, text, fontsize=6, padding=1, color="dimgrey" if style else "k")
        labels = [
            _wrap(m) + (f"\n{_wrap(str(t), 22)}" if len(sets) > 1 else "")
            for m, t in zip(rows.method, rows.test_set, strict=True)
        ]
        ax.set_xticks(x, labels, fontsize=6)
        ax.set_ylabel(metric.upper() + (" (dB)" if metric == "psnr" else ""))
        ax.margins(y=0.12)
        ax.set_title(bench if len(sets) != 1 else f"{bench}\ntest set: {sets[0]}", fontsize=8)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
    where = missed.groupby("method", sort=False).benchmark.agg(", ".join)
    if notes := ";\n".join(f"{m} ({bs})" for m, bs in where.items()):
        title += f"\nnot run (reasons in the table): {notes}"
    fig.suptitle(title, fontsize=9)
    return fig


def training_curves(runs: list[dict], methods: tuple[str, ...] | None = None) -> Figure:
    """Per training set (rows of ``runs.json``): the loss per step and stage, a panel per loss
    kind, then the validation PSNR (a curve, or one written dot per run validated once)."""
    done = [r for r in runs if r["status"] == "ok" and (methods is None or r["method"] in methods)]
    sets = list(dict.fromkeys(r["dataset"] for r in done))
    if not sets:
        return message_figure("no finished training run")
    kinds = [k for k in LOSS_AXES if any(r["loss"] == k for r in done)]
    colours = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(r["method"] for r in done))}
    fig = Figure(figsize=(4.0 * (len(kinds) + 1), 3.4 * len(sets)), layout="constrained")
    for row, d in zip(fig.subplots(len(sets), len(kinds) + 1, squeeze=False), sets, strict=True):
        mine = [r for r in done if r["dataset"] == d]
        data = benchmark_label(mine[0]["benchmark"], mine[0]["stand_in"])
        val_ax, single = row[-1], []
        for r in mine:
            log = pd.read_csv(restored(r["run_dir"]) / "log.csv")
            loss, val = log.dropna(subset=["loss"]), log.dropna(subset=["val_psnr"])
            c, stages = colours[r["method"]], MODEL_STAGES.get(r.get("model", ""), 6)
            line = {"color": c, "label": r["method"]}
            ax = row[kinds.index(r["loss"])]
            ax.plot(loss.step, loss.loss / stages, ".-", lw=0.8, ms=2, **line)
            if len(val) > 1:
                val_ax.plot(val.step, val.val_psnr, "o-", ms=3, **line)
            single += [(r, val.iloc[0])] if len(val) == 1 else []
        for j, (r, v) in enumerate(single):
            val_ax.plot(j, v.val_psnr, "o", color=colours[r["method"]], ms=6)
            text = f"{v.val_psnr:.2f} dB\nSSIM {v.val_ssim:.3f}"
            at = {"textcoords": "offset points", "xytext": (0, 6), "ha": "center", "fontsize": 6}
            val_ax.annotate(text, (j, v.val_psnr), **at)
        head = "validation PSNR per evaluation"
        if single:  # model over loss, tilted: long ablation names stay apart
            names = [r["method"].replace("/", "\n") for r, _ in single]
            val_ax.set_xticks(range(len(single)), names, fontsize=6, rotation=30, ha="right")
            val_ax.set(xlim=(-0.6, len(single) - 0.4))
            val_ax.margins(y=0.25)
            steps = ", ".join(map(str, sorted({int(v.step) for _, v in single})))
            configs = (Run.load(restored(r["run_dir"])).config for r, _ in single)
            n_val = sorted({c.train.val_images for c in configs if c is not None} - {None})
            on = f" on {'/'.join(map(str, n_val))} test images" if n_val else ""
            head = f"validation PSNR{on}, one evaluation (step {steps})"
        val_ax.set_title(f"{data}\n{head}", fontsize=8)
        val_ax.set_ylabel("validation PSNR (dB)", fontsize=8)
        for k, ax in zip(kinds, row[:-1], strict=True):
            ax.set_title(f"{data}\n{LOSS_AXES[k][0]} per step, per stage", fontsize=8)
            ax.set_ylabel(LOSS_AXES[k][1], fontsize=7)
        for ax in row[: -1 if single else None]:
            ax.set_xlabel("step", fontsize=8)
            if ax.lines:
                ax.legend(fontsize=6)
            elif ax is not val_ax:
                ax.text(0.5, 0.5, "no run with this loss", ha="center", transform=ax.transAxes)
    return fig


def _psnr(root: Path, s: Score) -> pd.Series:
    """Per-image PSNR of score ``s`` (its ``per_image.csv``), by image name."""
    return pd.read_csv(root / s.per_image_csv).set_index("name")["psnr"]


def per_image_scatter(results_root: str | Path, scores: list[Score], x: str, y: str) -> Figure:
    """Per-image PSNR of ``y`` against ``x`` on every test set both were scored on."""
    root, ran = Path(results_root), [s for s in scores if s.ran]
    xs = {s.test_set: s for s in ran if s.method == x}
    pairs = [(xs[s.test_set], s) for s in ran if s.method == y and s.test_set in xs]
    if not pairs:
        return message_figure(f"no test set scored with both {x} and {y}")
    fig = Figure(figsize=(3.6 * len(pairs), 3.6), layout="tight")
    for ax, (sx, sy) in zip(fig.subplots(1, len(pairs), squeeze=False)[0], pairs, strict=True):
        a = _psnr(root, sx)
        b = _psnr(root, sy).reindex(a.index)
        ax.scatter(a, b, s=14)
        lo, hi = float(min(a.min(), b.min())) - 1, float(max(a.max(), b.max())) + 1
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.7)
        ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel=f"{x} PSNR (dB)", ylabel=f"{y} PSNR (dB)")
        ax.set_title(f"{sx.test_set} (n={len(a)})", fontsize=8)
    return fig


def figure_test_sets(scores: list[Score], benchmark: str | None = None) -> list[Score]:
    """The Input score of each test set the comparison figures show (real data first)."""
    out: dict[tuple[str, bool], Score] = {}
    for s in sorted(scores, key=lambda s: (s.benchmark, s.stand_in)):
        if s.method == "input" and s.ran and benchmark in (None, s.benchmark):
            out.setdefault((s.benchmark, s.stand_in), s)
    return list(out.values())


def _shown(scores: list[Score], test: Score) -> tuple[list[Score], str]:
    """The scores of each figure method on the test set of ``test``, and ``not run: ...``."""
    here = (test.test_set, test.benchmark)
    ran = {s.method: s for s in scores if s.ran and (s.test_set, s.benchmark) == here}
    missing = ", ".join(label for m, label in METHOD_LABELS.items() if m not in ran)
    return [ran[m] for m in METHOD_LABELS if m in ran], missing and f"not run: {missing}"


def comparison_caption(scores: list[Score], test: Score, paper_figure: str) -> str:
    """The caption of :func:`comparison` for the test set of ``test``."""
    shown, missing = _shown(scores, test)
    return (
        f"{paper_figure} analogue on {benchmark_label(test.benchmark, test.stand_in)} "
        f"({test.test_set}): {', '.join(METHOD_LABELS[s.method] for s in shown)}, ground truth; "
        "per-image PSNR (dB) in the titles" + (f"; {missing}" if missing else "") + "."
    )


def comparison(
    results_root: str | Path, scores: list[Score], test: Score, images: int | None = None
) -> Figure:
    """Fig. 7-9 analogue on the test set of ``test`` (an Input score): rainy | each method that
    ran | ground truth, a row per image (at most ``images``)."""
    root = Path(results_root)
    shown, missing = _shown(scores, test)
    gt_dir = (root / test.per_image_csv).parent / "ground_truth"
    folders = [(root / s.per_image_csv).parent / "outputs" for s in shown] + [gt_dir]
    names = [n for n in _psnr(root, test).index if (gt_dir / f"{Path(n).stem}.png").is_file()]
    names, psnr = names[:images], {s.method: _psnr(root, s) for s in shown}
    fig = Figure(figsize=(2.4 * len(folders), 1.75 * len(names) + 0.9), layout="constrained")
    for row, name in zip(fig.subplots(len(names), len(folders), squeeze=False), names, strict=True):
        stem = Path(name).stem
        titles = [f"{METHOD_LABELS[s.method]}\n{psnr[s.method][name]:.2f} dB" for s in shown]
        for ax, folder, title in zip(row, folders, [*titles, f"ground truth\n{stem}"], strict=True):
            ax.set_axis_off()
            ax.imshow(read_image(folder / f"{stem}.png"))
            ax.set_title(title, fontsize=8)
    title = f"{benchmark_label(test.benchmark, test.stand_in)}: {test.test_set}; {len(names)} of "
    fig.suptitle(f"{title}{test.n} scored test images shown\n{missing}".strip(), fontsize=9)
    return fig


def attention_from_npz(npz: str | Path) -> Figure:
    """:func:`attention_panel` of the masks ``study.figures.export_attention`` saved."""
    z = np.load(npz)
    ks = range(sum(k.startswith("outputs_") for k in z.files))
    scales = sorted({int(k.split("_")[2]) for k in z.files if k.startswith("masks_")})
    masks = [{sc: z[f"masks_{k}_{sc}"] for sc in scales} for k in ks]
    none = [{} for _ in ks]  # DoG and octave layers are not saved (hundreds of MB)
    outputs, rain = ([z[f"{key}_{k}"] for k in ks] for key in ("outputs", "rain"))
    att = Attention(z["image"], outputs, rain, masks, none, none)
    return attention_panel(att, "mask", title=f"attention masks M_(s): {z['provenance']}")


def _zoom_box(rainy: np.ndarray, derained: np.ndarray | None) -> tuple:
    """(top, left, side) of the square crop where ``derained`` differs most from ``rainy``."""
    h, w = rainy.shape[:2]
    side = max(8, int(min(h, w) * 0.28))
    step = side // 4
    if derained is None or derained.shape != rainy.shape:
        return (h - side) // 2, (w - side) // 2, side
    change = np.abs(rainy.astype(np.float64) - derained).mean(axis=2)
    sums = sliding_window_view(change, (side, side))[::step, ::step].sum(axis=(2, 3))
    y, x = np.unravel_index(np.argmax(sums), sums.shape)
    return int(y * step), int(x * step), side


def photo_grid(
    folder: str | Path, label: Callable[[str], str] = str, title: str = ""
) -> Figure | None:
    """Rainy photos (``folder/rainy/``) and their derained versions (a folder per method), each
    beside a zoomed crop of the region the first method changed most; None without photos."""
    folder = Path(folder)
    rainy = sorted((folder / "rainy").glob("*.png")) if folder.is_dir() else []
    if not rainy:
        return None
    cols = ["rainy"] + sorted(d.name for d in folder.iterdir() if d.is_dir() and d.name != "rainy")
    aspect = np.divide(*read_image(rainy[0]).shape[:2])
    per_photo = math.ceil(len(cols) / 3)
    nrows = per_photo * len(rainy)
    fig = Figure(figsize=(15, nrows * (3.6 * aspect + 0.45) + 0.6), layout="constrained")
    grid = fig.add_gridspec(nrows, 6, width_ratios=[2.6, 1.0] * 3)
    for p, photo in enumerate(rainy):
        images = {m: read_image(f) for m in cols if (f := folder / m / photo.name).is_file()}
        top, left, side = _zoom_box(images["rainy"], images.get(cols[1]) if len(cols) > 1 else None)
        for k, (m, img) in enumerate(images.items()):
            r, c = p * per_photo + k // 3, 2 * (k % 3)
            ax, zx = fig.add_subplot(grid[r, c]), fig.add_subplot(grid[r, c + 1])
            ax.imshow(img)
            ax.add_patch(Rectangle((left, top), side, side, fill=False, ec="yellow", lw=1.2))
            zx.imshow(img[top : top + side, left : left + side], interpolation="nearest")
            for a, text, size in ((ax, f"{label(m)}: {photo.stem}", 8), (zx, "zoom", 7)):
                a.set(xticks=[], yticks=[])
                a.set_title(text, fontsize=size)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def real_rain(real: str | Path, labels: dict[str, str] = METHOD_LABELS) -> Figure | None:
    """Fig. 10 analogue: real rainy photos and their derained versions; None without photos."""
    return photo_grid(
        real,
        lambda m: labels.get(m.replace("_", "/", 1) if m.startswith("sian_") else m, m),
        title="Real rainy photos (no ground truth) derained by the Rain100H models",
    )


#: Colours of the forest plot's verdicts (any other verdict is grey).
VERDICT_COLOURS = {"supported": "tab:green", "contradicted": "tab:red"}
#: Kinds of evidence (``claims.csv`` ``evidence``), in the forest plot's order.
EVIDENCE_KINDS = ("released, full set", "released, partial set", "trained here")
SENSITIVITY = "inference-time sensitivity"
#: Per metric: name, unit, number format, smallest half-range of the x axis.
_METRICS = {"psnr": ("PSNR", "dB", "{:+.2f}", 0.5), "ssim": ("SSIM", "SSIM", "{:+.3f}", 0.005)}


def forest_claims(rows: list[dict]) -> list[dict]:
    """``claims.csv`` rows as the forest plot's (a pipeline check keeps the paper's only)."""
    out, keys = [], ("diff", "lo", "hi", "paper_diff")
    for r in rows:
        verdict = str(r.get("direction") or "")
        evidence = "not run" if verdict == "not run" else str(r.get("evidence") or "not run")
        check = evidence == "pipeline check"
        row = {"evidence": evidence, "verdict": verdict, "reason": str(r.get("reason") or "")}
        for m in _METRICS:  # a pipeline check keeps the paper's difference only
            row[m] = {k: float(pd.to_numeric(r.get(f"{k}_{m}"), errors="coerce")) for k in keys}
            row[m] |= dict.fromkeys(keys[:3], math.nan) if check else {}
        test = r.get("test_set")
        test = test if isinstance(test, str) else f"{r.get('benchmark', '')}: no test set"
        row["label"] = f"{r['table']}: {r['claim']}\n{textwrap.shorten(test or '-', 48)}"
        judged = math.isfinite(row["psnr"]["diff"]) and not evidence.startswith(SENSITIVITY)
        if judged and verdict not in VERDICT_COLOURS:
            row["label"] += "\n→ " + textwrap.shorten(verdict, 64)
        out.append(row)
    return out


def _forest_row(ax, y: float, c: dict, m: str, lim: float) -> None:  # noqa: ANN001
    """One claim's paper difference, mean and interval (clipped to ±``lim``: an arrow, the
    bound written); its reason where it has no difference."""
    v, fmt = c[m], _METRICS[m][2]
    if math.isfinite(v["paper_diff"]):
        ax.plot(v["paper_diff"], y, "kx", ms=6)
    if not math.isfinite(v["diff"]):
        why = textwrap.shorten(c["reason"] or c["verdict"] or "not measured", 60)
        if m == "psnr":
            ax.text(-lim * 0.97, y, why, va="center", fontsize=6, color="dimgrey")
        return
    colour = VERDICT_COLOURS.get(c["verdict"], "tab:grey")
    colour = "tab:blue" if c["evidence"].startswith(SENSITIVITY) else colour
    lo, hi = (v[k] if math.isfinite(v[k]) else v["diff"] for k in ("lo", "hi"))
    ax.plot([max(lo, -lim), min(hi, lim)], [y, y], "-", color=colour, lw=1.6)
    if abs(v["diff"]) <= lim:
        ax.plot(v["diff"], y, "o", color=colour, ms=4.5)
    else:  # the mean itself beyond the range: written at the edge
        edge = math.copysign(lim, v["diff"])
        text, ha = f"mean {fmt.format(v['diff'])}", "right" if edge > 0 else "left"
        ax.text(edge, y - 0.3, text, fontsize=5.5, color=colour, ha=ha)
    for bound, edge, marker, ha in ((lo, -lim, "<", "left"), (hi, lim, ">", "right")):
        if bound / edge > 1:  # beyond the edge on its side
            ax.plot(edge, y, marker, color=colour, ms=6)
            ax.text(edge, y + 0.32, fmt.format(bound), fontsize=5.5, color=colour, ha=ha)


def claims_forest(rows: list[dict]) -> Figure:
    """A row per claim of ``claims.csv`` grouped by evidence; PSNR and SSIM panels with the mean
    paired difference, its 95 % interval and the paper's; the x range follows the paper's."""
    claims = forest_claims(rows)
    if not claims:
        return message_figure("claims.csv has no claim")
    kinds = list(dict.fromkeys([*EVIDENCE_KINDS, *(c["evidence"] for c in claims)]))
    order: list[dict | str] = []
    for k in kinds:
        group = [c for c in claims if c["evidence"] == k]
        order += [k, *group] if group else []
    fig = Figure(figsize=(13.0, 0.5 * len(order) + 1.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (m, (name, unit, _, floor)) in zip(axes, _METRICS.items(), strict=True):
        paper = [abs(c[m]["paper_diff"]) for c in claims if math.isfinite(c[m]["paper_diff"])]
        lim = max(2.5 * max(paper, default=0.0), floor)
        for y, c in enumerate(order):
            if isinstance(c, str):
                ax.axhspan(y - 0.5, y + 0.5, color="0.92", lw=0)
            else:
                _forest_row(ax, y, c, m, lim)
        ax.set_xlim(-lim * 1.02, lim * 1.02)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_xlabel(f"{name}: better − worse ({unit})", fontsize=8)
        ax.set_title(f"{name} difference", fontsize=9)
    labels = [f"— {textwrap.shorten(c, 60)} —" if isinstance(c, str) else c["label"] for c in order]
    axes[0].set_yticks(range(len(order)), labels, fontsize=6.5)
    for t, c in zip(axes[0].get_yticklabels(), order, strict=True):
        t.set_fontweight("bold" if isinstance(c, str) else "normal")
    axes[0].set_ylim(len(order) - 0.5, -0.5)
    fig.suptitle(
        f"{len(claims)} rows of claims.csv, grouped by evidence: dot = mean paired "
        "difference, bar = 95 % interval (arrow: clipped, bound written), x = paper; "
        "green supported, red contradicted, grey inconclusive (→ why), blue knock-outs "
        "(no verdict); pipeline checks are listed, not drawn",
        fontsize=8.5,
    )
    return fig
