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

from ..data.io import read_image
from ..runs import Run, restored
from ..tables import MethodId as M
from ..tables import Score, benchmark_label
from .attention import Attention, attention_panel

#: Columns of the Fig. 7-9 analogues.
FIGURE_METHODS = (M.INPUT, M.PRENET_RELEASED, M.SIAN_RELEASED, M.SIAN)
METHOD_LABELS = {
    M.INPUT: "rainy",
    M.PRENET_RELEASED: "PReNet (released)",
    M.SIAN_RELEASED: "SIAN (released)",
    M.SIAN: "SIAN (trained here)",
}
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


PAPER = "paper (its own test set)"


def table_bars(table: pd.DataFrame, title: str, metric: str = "psnr") -> Figure:
    """Our value beside the paper's (hatched) for every measured row of ``tableN.csv``, a panel
    per benchmark; the rows not run are named in the title."""
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
        paper = rows[f"paper_{metric}"]
        ours_bars = ax.bar(x - 0.2, rows[metric], 0.4, label="this run")
        paper_bars = ax.bar(x + 0.2, paper.fillna(0), 0.4, hatch="//", alpha=0.5, label=PAPER)
        ax.bar_label(ours_bars, [fmt.format(v) for v in rows[metric]], fontsize=6, padding=1)
        paper_text = ["" if pd.isna(v) else fmt.format(v) for v in paper]
        ax.bar_label(paper_bars, paper_text, fontsize=6, padding=1, color="dimgrey")
        labels = [
            _wrap(m) + (f"\n{_wrap(str(t), 22)}" if len(sets) > 1 else "")
            for m, t in zip(rows.method, rows.test_set, strict=True)
        ]
        ax.set_xticks(x, labels, fontsize=6)
        ax.set_ylabel(metric.upper() + (" (dB)" if metric == "psnr" else ""))
        ax.margins(y=0.12)
        ax.set_title(bench if len(sets) != 1 else f"{bench}\ntest set: {sets[0]}", fontsize=8)
    # one legend under the panels: inside one it covered the last bars
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
    if len(missed):
        where = missed.groupby("method", sort=False).benchmark.agg(", ".join)
        title += "\nnot run (reasons in the table): " + ";\n".join(
            f"{m} ({bs})" for m, bs in where.items()
        )
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
    axes = fig.subplots(len(sets), len(kinds) + 1, squeeze=False)
    for row, d in zip(axes, sets, strict=True):
        mine = [r for r in done if r["dataset"] == d]
        data = benchmark_label(mine[0]["benchmark"], mine[0]["stand_in"])
        val_ax, single = row[-1], []
        for r in mine:
            log = pd.read_csv(restored(r["run_dir"]) / "log.csv")
            loss, val = log.dropna(subset=["loss"]), log.dropna(subset=["val_psnr"])
            c, stages = colours[r["method"]], MODEL_STAGES.get(r.get("model", ""), 6)
            row[kinds.index(r["loss"])].plot(
                loss["step"], loss["loss"] / stages, ".-", color=c, label=r["method"], lw=0.8, ms=2
            )
            if len(val) > 1:
                val_ax.plot(val["step"], val["val_psnr"], "o-", color=c, label=r["method"], ms=3)
            elif len(val) == 1:
                single.append((r, val.iloc[0]))
        for j, (r, v) in enumerate(single):
            val_ax.plot(j, v["val_psnr"], "o", color=colours[r["method"]], ms=6)
            text = f"{v['val_psnr']:.2f} dB\nSSIM {v['val_ssim']:.3f}"
            at = {"textcoords": "offset points", "xytext": (0, 6), "ha": "center", "fontsize": 6}
            val_ax.annotate(text, (j, v["val_psnr"]), **at)
        if single:
            steps = ", ".join(map(str, sorted({int(v["step"]) for _, v in single})))
            # model over loss, tilted: long ablation names stay apart
            names = [r["method"].replace("/", "\n") for r, _ in single]
            val_ax.set_xticks(range(len(single)), names, fontsize=6, rotation=30, ha="right")
            val_ax.set_xlim(-0.6, len(single) - 0.4)
            val_ax.margins(y=0.25)
            configs = (Run.load(restored(r["run_dir"])).config for r, _ in single)
            n_val = sorted({c.train.val_images for c in configs if c is not None} - {None})
            on = f" on {'/'.join(map(str, n_val))} test images" if n_val else ""
            head = f"validation PSNR{on}, one evaluation (step {steps})"
        else:
            val_ax.set_xlabel("step")
            head = "validation PSNR per evaluation"
            if val_ax.lines:  # none when no run validated
                val_ax.legend(fontsize=6)
        val_ax.set_title(f"{data}\n{head}", fontsize=8)
        val_ax.set_ylabel("validation PSNR (dB)", fontsize=8)
        for k, ax in zip(kinds, row[:-1], strict=True):
            name, ylabel = LOSS_AXES[k]
            ax.set_title(f"{data}\n{name} per step, per stage", fontsize=8)
            ax.set_xlabel("step", fontsize=8)
            ax.set_ylabel(ylabel, fontsize=7)
            if ax.lines:
                ax.legend(fontsize=6)
            else:
                ax.text(0.5, 0.5, "no run with this loss", ha="center", transform=ax.transAxes)
    return fig


def _psnr(root: Path, s: Score) -> pd.Series:
    """Per-image PSNR of score ``s`` (its ``per_image.csv``), by image name."""
    return pd.read_csv(root / s.per_image_csv).set_index("name")["psnr"]


def per_image_scatter(results_root: str | Path, scores: list[Score], x: str, y: str) -> Figure:
    """Per-image PSNR of ``y`` against ``x`` on every test set both were scored on."""
    root, ran = Path(results_root), [s for s in scores if s.ran]
    pairs = [
        (sx, sy)
        for sx in ran
        for sy in ran
        if sx.method == x and sy.method == y and sy.test_set == sx.test_set
    ]
    if not pairs:
        return message_figure(f"no test set scored with both {x} and {y}")
    fig = Figure(figsize=(3.6 * len(pairs), 3.6), layout="tight")
    for ax, (sx, sy) in zip(fig.subplots(1, len(pairs), squeeze=False)[0], pairs, strict=True):
        a = _psnr(root, sx)
        b = _psnr(root, sy).reindex(a.index)
        ax.scatter(a, b, s=14)
        lo, hi = float(min(a.min(), b.min())) - 1, float(max(a.max(), b.max())) + 1
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.7)
        ax.set(xlim=(lo, hi), ylim=(lo, hi))
        ax.set_xlabel(f"{x} PSNR (dB)", fontsize=8)
        ax.set_ylabel(f"{y} PSNR (dB)", fontsize=8)
        ax.set_title(f"{sx.test_set} (n={len(a)})", fontsize=8)
    return fig


def figure_test_sets(scores: list[Score], benchmark: str | None = None) -> list[Score]:
    """The Input score of each test set the comparison figures show (one per benchmark and
    kind of data, real first), optionally of one ``benchmark``."""
    out: dict[tuple[str, bool], Score] = {}
    for s in sorted(scores, key=lambda s: (s.benchmark, s.stand_in)):
        if s.method == "input" and s.ran and benchmark in (None, s.benchmark):
            out.setdefault((s.benchmark, s.stand_in), s)
    return list(out.values())


def _shown(scores: list[Score], test: Score, methods: tuple[str, ...]) -> tuple[list[Score], str]:
    """The scores of ``methods`` on the test set of ``test``, and ``not run: ...``."""
    ran = {
        s.method: s
        for s in scores
        if s.ran and (s.test_set, s.benchmark) == (test.test_set, test.benchmark)
    }
    missing = ", ".join(METHOD_LABELS[m] for m in methods if m not in ran)
    return [ran[m] for m in methods if m in ran], missing and f"not run: {missing}"


def comparison_caption(
    scores: list[Score], test: Score, paper_figure: str, methods: tuple[str, ...] = FIGURE_METHODS
) -> str:
    """The caption of :func:`comparison` for the test set of ``test``."""
    shown, missing = _shown(scores, test, methods)
    return (
        f"{paper_figure} analogue on {benchmark_label(test.benchmark, test.stand_in)} "
        f"({test.test_set}): {', '.join(METHOD_LABELS[s.method] for s in shown)}, ground truth; "
        "per-image PSNR (dB) in the titles" + (f"; {missing}" if missing else "") + "."
    )


def comparison(
    results_root: str | Path,
    scores: list[Score],
    test: Score,
    methods: tuple[str, ...] = FIGURE_METHODS,
    images: int | None = None,
) -> Figure:
    """Fig. 7-9 analogue on the test set of ``test`` (an Input score): rainy | each method
    that ran | ground truth, a row per image kept with its ground truth (at most ``images``)."""
    root = Path(results_root)
    shown, missing = _shown(scores, test, methods)
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
    title = (
        f"{benchmark_label(test.benchmark, test.stand_in)}: {test.test_set}; "
        f"{len(names)} of {test.n} scored test images shown"
    )
    fig.suptitle(title + (f"\n{missing}" if missing else ""), fontsize=9)
    return fig


def attention_from_npz(npz: str | Path) -> Figure:
    """:func:`attention_panel` of the masks :func:`~derain_lib.study.figures.export_attention`
    saved."""
    z = np.load(npz)
    n = sum(k.startswith("outputs_") for k in z.files)
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


def _zoom_box(rainy: np.ndarray, derained: np.ndarray | None) -> tuple:
    """(top, left, side) of the square crop, 0.28 of the shorter side, where ``derained``
    differs most from ``rainy`` (window sums of an integral image), else the centre."""
    h, w = rainy.shape[:2]
    side = max(8, int(min(h, w) * 0.28))
    if derained is None or derained.shape != rainy.shape:
        return (h - side) // 2, (w - side) // 2, side
    change = np.abs(rainy.astype(np.float64) - derained.astype(np.float64)).mean(axis=2)
    c = np.pad(change.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    step = max(1, side // 4)
    ys, xs = np.arange(0, h - side + 1, step)[:, None], np.arange(0, w - side + 1, step)
    sums = c[ys + side, xs + side] - c[ys, xs + side] - c[ys + side, xs] + c[ys, xs]
    y, x = np.unravel_index(np.argmax(sums), sums.shape)
    return int(ys[y, 0]), int(xs[x]), side


def photo_grid(
    folder: str | Path, label: Callable[[str], str] = str, title: str = ""
) -> Figure | None:
    """Rainy photos (``folder/rainy/*.png``) and their derained versions (a sub-folder per
    method), at most three a row across 15 inches, each beside a zoomed crop of the region the
    first method changed most; None without photos."""
    per_row, width = 3, 15.0
    folder = Path(folder)
    rainy = sorted((folder / "rainy").glob("*.png")) if folder.is_dir() else []
    if not rainy:
        return None
    cols = ["rainy"] + sorted(d.name for d in folder.iterdir() if d.is_dir() and d.name != "rainy")
    aspect = np.divide(*read_image(rainy[0]).shape[:2])
    rows_per_photo = math.ceil(len(cols) / per_row)
    nrows = rows_per_photo * len(rainy)
    fig = Figure(
        figsize=(width, nrows * (width / per_row * 0.72 * aspect + 0.45) + 0.6),
        layout="constrained",
    )
    grid = fig.add_gridspec(nrows, 2 * per_row, width_ratios=[2.6, 1.0] * per_row)
    for p, photo in enumerate(rainy):
        images = {
            m: read_image(folder / m / photo.name)
            for m in cols
            if (folder / m / photo.name).is_file()
        }
        top, left, side = _zoom_box(images["rainy"], images.get(cols[1]) if len(cols) > 1 else None)
        for k, (m, img) in enumerate(images.items()):
            r, c = p * rows_per_photo + k // per_row, k % per_row
            ax, zx = fig.add_subplot(grid[r, 2 * c]), fig.add_subplot(grid[r, 2 * c + 1])
            ax.imshow(img)
            ax.add_patch(Rectangle((left, top), side, side, fill=False, ec="yellow", lw=1.2))
            zx.imshow(img[top : top + side, left : left + side], interpolation="nearest")
            for a in (ax, zx):
                a.set(xticks=[], yticks=[])
            ax.set_title(f"{label(m)}: {photo.stem}", fontsize=8)
            zx.set_title("zoom", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def real_rain(real: str | Path, labels: dict[str, str] = METHOD_LABELS) -> Figure | None:
    """Fig. 10 analogue: real rainy photos and their derained versions (``real/<method>/``,
    ``/`` as ``_``); None when there are none."""
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
    """``claims.csv`` rows as the forest plot's: ``label``, ``evidence``, ``verdict``, ``reason``
    and per metric ``diff``/``lo``/``hi``/``paper_diff`` (a pipeline check: the paper's only)."""
    out = []
    for r in rows:
        verdict = str(r.get("direction") or "")
        evidence = "not run" if verdict == "not run" else str(r.get("evidence") or "not run")
        check = evidence == "pipeline check"
        row = {"evidence": evidence, "verdict": verdict, "reason": str(r.get("reason") or "")}
        for m in _METRICS:  # a pipeline check keeps the paper's difference only
            row[m] = {
                k: math.nan
                if check and k != "paper_diff"
                else float(pd.to_numeric(r.get(f"{k}_{m}"), errors="coerce"))
                for k in ("diff", "lo", "hi", "paper_diff")
            }
        test = r.get("test_set")
        test = test if isinstance(test, str) else f"{r.get('benchmark', '')}: no test set"
        row["label"] = f"{r['table']}: {r['claim']}\n{textwrap.shorten(test or '-', 48)}"
        judged = math.isfinite(row["psnr"]["diff"]) and not evidence.startswith(SENSITIVITY)
        if judged and verdict not in VERDICT_COLOURS:
            row["label"] += "\n→ " + textwrap.shorten(verdict, 64)
        out.append(row)
    return out


def _forest_row(ax, y: float, c: dict, m: str, lim: float) -> None:  # noqa: ANN001
    """One claim's mean, interval (clipped to ±``lim``: an arrow, the bound written) and the
    paper's difference; its reason where it has no difference."""
    v, fmt = c[m], _METRICS[m][2]
    if not math.isfinite(v["diff"]) and m == "psnr":
        why = textwrap.shorten(c["reason"] or c["verdict"] or "not measured", 60)
        ax.text(-lim * 0.97, y, why, va="center", fontsize=6, color="dimgrey")
    elif math.isfinite(v["diff"]):
        colour = VERDICT_COLOURS.get(c["verdict"], "tab:grey")
        colour = "tab:blue" if c["evidence"].startswith(SENSITIVITY) else colour
        lo = v["lo"] if math.isfinite(v["lo"]) else v["diff"]
        hi = v["hi"] if math.isfinite(v["hi"]) else v["diff"]
        ax.plot([max(lo, -lim), min(hi, lim)], [y, y], "-", color=colour, lw=1.6)
        if abs(v["diff"]) <= lim:
            ax.plot(v["diff"], y, "o", color=colour, ms=4.5)
        else:  # the mean itself beyond the range: written at the edge
            right = v["diff"] > 0
            where = (lim if right else -lim, y - 0.3)
            text = f"mean {fmt.format(v['diff'])}"
            ax.text(*where, text, fontsize=5.5, color=colour, ha="right" if right else "left")
        for out, bound, edge, marker, ha in (
            (lo < -lim, lo, -lim, "<", "left"),
            (hi > lim, hi, lim, ">", "right"),
        ):
            if out:
                ax.plot(edge, y, marker, color=colour, ms=6)
                ax.text(edge, y + 0.32, fmt.format(bound), fontsize=5.5, color=colour, ha=ha)
    if math.isfinite(v["paper_diff"]):
        ax.plot(v["paper_diff"], y, "kx", ms=6)


def claims_forest(rows: list[dict]) -> Figure:
    """A row per claim of ``claims.csv`` grouped by evidence; PSNR and SSIM panels with the
    mean paired difference (dot, coloured by verdict), its 95 % interval and the paper's
    difference (cross); the x range follows the paper's marks."""
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
