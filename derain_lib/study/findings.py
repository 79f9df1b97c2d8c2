"""What a run found, as Markdown generated from its saved numbers (never hand-written).

Each notebook ends with one of these, displayed with ``IPython.display.Markdown``. Every
sentence is built from ``results/<profile>/`` files, so it says what *this* run, on *this*
profile's data, measured: stand-in data is named as such and not compared with the paper.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..tables import TABLES, TableSpec, benchmark_label, mean_by, paper_value
from ..viz.attention import scale_label
from ..viz.beyond import generalisation_cells as gen_cells
from ..viz.results import (
    DIFFERENCE_TABLES,
    difference_rows,
    paired_differences,
    paper_difference,
)
from . import claims as judged
from .beyond.density import TONE_SHIFT_Y
from .beyond.protocols import PUBLISHED_PRENET_RAIN100H, protocol_effects
from .paths import read_json, results_dir
from .tabulate import read_table
from .training import load_runs

#: The heading every findings cell starts with (the report's test looks for it).
HEADING = "Findings of this run"
#: PSNR differences below this (dB) count as a tie: the tables print two decimals.
TIE_DB = 0.005


def _head(profile: str) -> str:
    return f"### {HEADING} (profile `{profile}`)\n\n"


def _comparable(rows: pd.DataFrame) -> bool:
    return bool(rows.diff_psnr.notna().any())


def data(profile: str) -> str:
    """Step 00: how many test and training sets, their sizes, stand-in or real, gaps."""
    rows = read_json(results_dir(profile) / "data.json", "run notebooks/00_data.ipynb first")
    lines = []
    for r in rows:  # type: ignore[union-attr]
        if r["status"] != "ok":
            lines.append(
                f"- {benchmark_label(r['benchmark'])} {r['role']}: **none** ({r['status']})"
            )
            continue
        kind = "stand-in" if r.get("stand_in") else ("partial" if r.get("partial") else "real")
        sha = r["sha256"][:12]
        lines.append(
            f"- {benchmark_label(r['benchmark'], bool(r.get('stand_in')))} {r['role']}: "
            f"`{r['set']}`, {r['n']} pairs, {kind}, sha256 {sha}"
        )
    ok = [r for r in rows if r["status"] == "ok"]  # type: ignore[union-attr]
    missing = len(rows) - len(ok)  # type: ignore[arg-type]
    return (
        _head(profile) + f"{len(ok)} data sets opened and fingerprinted, {missing} missing "
        f"({sum(r['n'] for r in ok)} pairs in all):\n\n" + "\n".join(lines)
    )


def _trained_on(run: dict) -> str:
    return benchmark_label(run["benchmark"], run["stand_in"])


def training(profile: str) -> str:
    """Step 01: which models trained, how long their training took, their own test-set
    scores."""
    runs = load_runs(profile)
    ok = [r for r in runs if r["status"] == "ok"]
    lines = []
    for r in ok:
        m = r.get("metrics", {})
        score = f"{m['psnr']:.2f} dB / {m['ssim']:.4f}" if "psnr" in m else "no test score"
        lines.append(
            f"- `{r['method']}` on {_trained_on(r)}: run `{r['run']}`, "
            f"trained in {r['train_seconds']} s, own test set {score}"
        )
    lines += [f"- `{r['method']}` on {_trained_on(r)}: {r['status']}" for r in runs if r not in ok]
    return (
        _head(profile) + f"{len(ok)} of {len(runs)} models available (training time as "
        "each run recorded it; a re-run takes finished runs from the run cache):\n\n"
        + "\n".join(lines)
    )


def _ranking(rows: pd.DataFrame, col: str) -> list[str]:
    return list(rows.sort_values(col, ascending=False).paper_row)


def ranking(profile: str, name: str) -> str:
    """Tables II and V: per test set, the order of the rows by our PSNR next to the paper's
    order, with each value (and its difference to the paper where comparable)."""
    table = read_table(profile, name, measured_only=True)
    measured = table[table.psnr.notna()]
    out = [_head(profile)]
    if measured.empty:
        why = "; ".join(sorted(set(table.provenance)))
        return out[0] + f"Nothing measured for Table {table.table.iloc[0]}: {why}"
    agree = 0
    sets = list(dict.fromkeys(measured.test_set))
    for t in sets:
        rows = measured[measured.test_set == t]
        ours, paper = _ranking(rows, "psnr"), _ranking(rows, "paper_psnr")
        spread = float(rows.psnr.max() - rows.psnr.min())
        agree += ours == paper and spread >= TIE_DB
        vals = ", ".join(
            f"{r.paper_row} {r.psnr:.2f} dB"
            + ("" if pd.isna(r.diff_psnr) else f" ({r.diff_psnr:+.2f} vs paper)")
            for r in rows.sort_values("psnr", ascending=False).itertuples()
        )
        if spread < TIE_DB:
            verdict = f"no difference between the rows (spread {spread:.3f} dB)"
        elif ours == paper:
            verdict = f"the paper's order, best to worst {spread:.2f} dB apart"
        else:
            verdict = f"not the paper's order ({' > '.join(ours)}), {spread:.2f} dB apart"
        note = "" if _comparable(rows) else " (stand-in data: values not comparable to the paper)"
        out.append(f"- **{rows.benchmark.iloc[0]}**, {t}: {vals}: {verdict}{note}.\n")
    out.append(
        f"\nOn {agree} of {len(sets)} test sets this run ranks the rows as the paper does "
        f"(paper: {' > '.join(_ranking(measured.drop_duplicates('paper_row'), 'paper_psnr'))})."
    )
    return "".join(out)


def benchmarks(profile: str) -> str:
    """Tables III and IV: per test set, the Input PSNR and what each measured method gains
    over it, and the difference to the paper where the data are the real benchmark."""
    out = [_head(profile)]
    for name in ("table3", "table4"):
        table = read_table(profile, name, measured_only=True)
        measured = table[table.psnr.notna()]
        not_run = table[table.psnr.isna()]
        for t in dict.fromkeys(measured.test_set):
            rows = measured[measured.test_set == t]
            inp = rows[rows.paper_row == "Input"].psnr
            base = float(inp.iloc[0]) if len(inp) else None
            parts = []
            for r in rows.itertuples():
                gain = "" if base is None or r.paper_row == "Input" else f", {r.psnr - base:+.2f}"
                diff = "" if pd.isna(r.diff_psnr) else f", {r.diff_psnr:+.2f} vs paper"
                parts.append(f"{r.method} {r.psnr:.2f} dB (n={int(r.n)}{gain}{diff})")
            out.append(f"- **{rows.benchmark.iloc[0]}**, {t}: " + "; ".join(parts) + ".\n")
        out.append(
            f"- Table {table.table.iloc[0]}: {len(not_run)} of {len(table)} rows of ours "
            "not run (the table gives each reason).\n"
        )
    return "".join(out)


def _difference_lines(profile: str) -> list[str]:
    """Per table and test set: each row's mean paired PSNR difference to the reference row,
    its interval and the paper's difference (:func:`derain_lib.viz.results.table_differences`)."""
    lines = []
    for table, (reference, methods) in DIFFERENCE_TABLES.items():
        rows, note = difference_rows(results_dir(profile), table)
        if rows.empty:
            continue
        for bench, test in dict.fromkeys(zip(rows.benchmark, rows.test_set, strict=True)):
            here = rows[rows.test_set == test]
            parts = []
            for m in methods:
                d = paired_differences(here, m, reference, "psnr")
                if not d["seeds"]:
                    continue
                iv = "" if pd.isna(d["lo"]) else f" [{d['lo']:+.2f}, {d['hi']:+.2f}]"
                paper = paper_difference(table, m, reference, bench)[0]
                ref = "" if pd.isna(paper) else f", paper {paper:+.2f}"
                parts.append(f"{m} − {reference} {d['mean']:+.2f} dB{iv} ({d['over']}{ref})")
            if parts:
                tail = f" ({note})" if note else ""
                lines.append(f"- Table {TABLES[table].number}, {test}: " + "; ".join(parts) + tail)
    return lines


def _attention_lines(profile: str) -> list[str]:
    """The span of the saved attention masks (mean over channels) of each exported model."""
    lines = []
    for npz in sorted((results_dir(profile) / "attention").glob("*.npz")):
        with np.load(npz) as z:
            masks = [z[k] for k in z.files if k.startswith("masks_")]
            who = str(z["provenance"])
        if masks:
            lo = min(float(m.min()) for m in masks)
            hi = max(float(m.max()) for m in masks)
            lines.append(
                f"- Attention masks of `{npz.stem}` ({who}) span {lo:.4f}-{hi:.4f} of the "
                f"sigmoid's 0-1 ({100 * (hi - lo):.1f} % of it)."
            )
    return lines


def figures(profile: str) -> str:
    """Step 05: the differences the table figures show, with numbers, how much of the
    0-1 range the attention masks use, and which figures this run drew."""
    index = results_dir(profile) / "figures.json"
    figs = json.loads(index.read_text()) if index.is_file() else []
    numbers = _difference_lines(profile) + _attention_lines(profile)
    lines = [f"- `{f['path']}`: {f['caption']}" for f in figs]
    return (
        _head(profile)
        + ("\n".join(numbers) + "\n\n" if numbers else "")
        + f"{len(figs)} figures drawn from `results/{profile}/`:\n\n"
        + "\n".join(lines)
    )


def stage_findings(rows: list[dict]) -> str:
    """The Fig. 6 claim ("improved gradually stage-by-stage") against the stage rows of
    :func:`derain_lib.study.figures.stage_by_stage`: the mean PSNR per stage, whether it
    rises at every stage, and on how many images the last stage is the best."""
    if not rows:
        return "The stage-by-stage claim was not tested (no SIAN weights or no Rain100L pairs)."
    stages = sorted({r["stage"] for r in rows})
    images = list(dict.fromkeys(r["image"] for r in rows))
    mean = [float(np.mean([r["psnr"] for r in rows if r["stage"] == k])) for k in stages]
    steps = np.diff(mean)
    best_last = sum(
        max((r for r in rows if r["image"] == im), key=lambda r: r["psnr"])["stage"] == stages[-1]
        for im in images
    )
    trend = (
        "rises at every stage"
        if (steps > 0).all()
        else f"does not rise at every stage (largest drop {steps.min():+.2f} dB)"
    )
    return (
        f"Stage by stage on {len(images)} {rows[0]['test_set']} pairs: mean PSNR "
        + ", ".join(f"{k}: {v:.2f}" for k, v in zip(stages, mean, strict=True))
        + f" dB; it {trend}, {mean[-1] - mean[0]:+.2f} dB from stage 1 to {stages[-1]}; the "
        f"last stage is the best on {best_last} of {len(images)} images."
    )


def explorer(
    profile: str,
    weights: str,
    shape: tuple[int, ...] | None,
    message: str,
    stages: list[dict] | None = None,
) -> str:
    """Step 06: what the explorer opened, or why it did not (how fast a view re-renders is
    a run fact, kept in ``provenance.json``), and the stage-by-stage test
    (:func:`stage_findings`) when ``stages`` rows are given."""
    tail = "" if stages is None else " " + stage_findings(stages)
    if shape is None:
        return _head(profile) + f"The explorer did not open a model: {message}" + tail
    return _head(profile) + (
        f"Weights `{weights}` on a {shape[1]}x{shape[0]} image (the forward pass runs once "
        "per image and weights; the last re-render's time is in `provenance.json`)." + tail
    )


def claims(profile: str) -> str:
    """The claims chapter: how many claims each verdict got, which ones, and how wide the
    intervals came out (from ``claims.csv``)."""
    rows = pd.read_csv(results_dir(profile) / "claims.csv", keep_default_na=False)
    out = [_head(profile)]
    measured = rows[rows["diff"] != ""]
    for metric in ("PSNR", "SSIM"):
        sub = rows[rows.metric == metric]
        counts = sub.verdict.str.split(":").str[0].value_counts()
        out.append(
            f"- **{metric}**: "
            + ", ".join(f"{n} × `{v}`" for v, n in counts.items())
            + f" (of {len(sub)} claim × test set rows).\n"
        )
    for r in measured.itertuples():
        if r.verdict in ("supported", "contradicted") and r.metric == "PSNR":
            out.append(
                f"- {r.verdict}: Table {r.table}, {r.claim}, {r.test_set}: "
                f"{float(r.diff):+.2f} dB [{float(r.ci_low):+.2f}, {float(r.ci_high):+.2f}] "
                f"(paper {float(r.paper_diff):+.2f}).\n"
            )
    if not measured.empty:
        width = measured.ci_high.astype(float) - measured.ci_low.astype(float)
        psnr = width[measured.metric == "PSNR"]
        ssim = width[measured.metric == "SSIM"]
        seeds = (measured.interval_from == "seeds").sum()
        out.append(
            f"\nInterval widths: PSNR median {psnr.median():.2f} dB (max {psnr.max():.2f}), "
            f"SSIM median {ssim.median():.4f} (max {ssim.max():.4f}); the seed spread was the "
            f"wider interval in {seeds} of {len(measured)} rows."
        )
    return "".join(out)


def _level_medians(rows: list[dict], model: str) -> list[dict]:
    """Per level of the sweep: median Input PSNR and gain of ``model``'s images, and how
    many of them have a tone shift."""
    out = []
    for lv in sorted({r["level"] for r in rows}):
        mine = [r for r in rows if r["model"] == model and r["level"] == lv]
        if mine:
            out.append(
                {
                    "level": lv,
                    "level_name": mine[0]["level_name"],
                    "n": len(mine),
                    "input_psnr": float(np.median([r["input_psnr"] for r in mine])),
                    "gain": float(np.median([r["gain"] for r in mine])),
                    "lost": sum(r["gain"] < 0 for r in mine),
                    "shifted": [r for r in mine if r.get("tone_shifted")],
                }
            )
    return out


def density_findings(record: dict | list[dict]) -> str:
    """Sentences from the sweep (:func:`derain_lib.study.beyond.density.run`'s record, or
    its rows alone): how many images, how close the calibrated levels are to the real
    benchmarks, each model's median gain at the lightest, best and heaviest level, the
    images whose output has a global tone shift, and whether the Rain100H models lose to
    the Rain100L ones on the lightest rain."""
    rec = record if isinstance(record, dict) else {"rows": record}
    rows = rec.get("rows", [])
    images = list(dict.fromkeys(r["image"] for r in rows))
    models = [m for m in dict.fromkeys(r["model"] for r in rows) if m != "input"]
    real = len({r["image"] for r in rows if not r.get("stand_in", True)})
    out = [f"{len(images)} clean images ({real} from real test sets, the rest stand-ins)."]
    for base, c in (rec.get("calibration") or {}).items():
        if c.get("real_input_psnr") is None:
            bench = benchmark_label(c["benchmark"])
            out.append(f"No real {bench} pairs: the {base} levels are uncalibrated.")
            continue
        out.append(
            f"{benchmark_label(c['benchmark'])}-like rain: streak density x{c['factor']:.2f} "
            f"gives a mean synthetic Input PSNR of {c['synthetic_input_psnr']:.2f} dB against "
            f"{c['real_input_psnr']:.2f} dB on the real {c['real_test_set']} ({c['real_images']} "
            f"images), {abs(c['synthetic_input_psnr'] - c['real_input_psnr']):.2f} dB apart."
        )
    if not models:
        return " ".join([*out, "No model ran, so there is no finding about the models."])
    for m in models:
        lv = _level_medians(rows, m)
        best = max(lv, key=lambda r: r["gain"])
        first, last = lv[0], lv[-1]

        def at(r: dict) -> str:
            return f"{r['gain']:+.2f} dB at '{r['level_name']}' (Input {r['input_psnr']:.2f} dB"

        s = f"{m}: median gain {at(first)}"
        s += f", {first['lost']} of {first['n']} images lose)" if first["lost"] else ")"
        if best is not first:
            s += f", largest {at(best)})"
        if last is not best:
            s += f", at the heaviest {at(last)})"
        shifted = [r for x in lv for r in x["shifted"]]
        if shifted:
            worst = max(shifted, key=lambda r: abs(r["tone_shift"]))
            s += (
                f"; a global tone shift (mean Y moved over {TONE_SHIFT_Y:g} levels beyond the "
                f"input's) in {len(shifted)} of "
                f"{sum(x['n'] for x in lv)} outputs, worst {worst['tone_shift']:+.1f} on "
                f"{worst['image']} at '{worst['level_name']}' (gain {worst['gain']:+.2f} dB)"
            )
        out.append(s + ".")
    for fam in ("sian", "prenet"):
        lo = {(r["image"], r["level"]): r for r in rows if r["model"] == f"{fam}-rain100l"}
        hi = {(r["image"], r["level"]): r for r in rows if r["model"] == f"{fam}-rain100h"}
        pairs = [(lo[k], hi[k]) for k in lo if k in hi and k[1] == 0]
        if pairs:
            d = [h["gain"] - ell["gain"] for ell, h in pairs]
            med = float(np.median(d))
            verdict = "loses" if med < 0 else "does not lose"
            out.append(
                f"On '{pairs[0][0]['level_name']}' the {fam} Rain100H model {verdict} against "
                f"the Rain100L one: median difference {med:+.2f} dB over {len(d)} images "
                f"({sum(x < 0 for x in d)} lower)."
            )
    return " ".join(out)


def attention_findings(rows: list[dict]) -> str:
    """Sentences from the AUC rows: per source the best channel (its stage, scale, AUC),
    the strongest rain-free marker (lowest AUC, i.e. 1 - AUC), the share of channels no
    better than chance either way (AUC within 0.05 of 0.5), and the edge control's AUC."""
    out = []
    for src in dict.fromkeys(r["source"] for r in rows):
        mine = [r for r in rows if r["source"] == src]
        n = len({r.get("image") for r in mine})
        masks = mean_by(
            [r for r in mine if r["what"] == "mask"],
            ("stage", "scale", "channel") if "channel" in mine[0] else ("stage", "scale"),
            ("auc",),
        )
        if not masks:
            continue
        hi, lo = max(masks, key=lambda r: r["auc"]), min(masks, key=lambda r: r["auc"])

        def where(r: dict) -> str:
            ch = "" if r.get("channel") is None else f", channel {r['channel']}"
            return f"stage {r['stage']}, scale {scale_label(r['scale'])}{ch}"

        chance = sum(abs(r["auc"] - 0.5) < 0.05 for r in masks)
        s = (
            f"{src} (mean over {n} images): best mask AUC {hi['auc']:.3f} ({where(hi)}); "
            f"lowest {lo['auc']:.3f} ({where(lo)}, i.e. it marks rain-free pixels with "
            f"AUC {1 - lo['auc']:.3f}); {100 * chance / len(masks):.0f} % of the masks are "
            "within 0.05 of chance"
        )
        for what, name in (("edge", "the edge magnitude"), ("dog", "the |DoG| magnitude")):
            ctl = mean_by([r for r in mine if r["what"] == what], ("scale",), ("auc",))
            if ctl:
                best = max(ctl, key=lambda r: r["auc"])
                beat = sum(r["auc"] > best["auc"] for r in masks)
                s += (
                    f"; {name} reaches {best['auc']:.3f} (scale {scale_label(best['scale'])}), "
                    f"{100 * beat / len(masks):.0f} % of the masks score higher"
                )
        out.append(s + ".")
    return " ".join(out) or "No attention AUC was measured."


def generalisation_findings(rows: list[dict]) -> str:
    """Per model: the mean gain over the input (dB, 95 % interval over the images) on each
    test set, its own benchmark first; and the largest and smallest gain away from it."""
    cells = gen_cells(rows)
    if not cells or "gain" not in cells[0]:
        return "No model was scored." if not cells else "Rows of an older format: no gains."
    out = []
    for m in dict.fromkeys(c["model"] for c in cells):
        mine = [c for c in cells if c["model"] == m]
        own = m.split("-", 1)[1]
        mine.sort(key=lambda c: (c.get("benchmark") != own, -c["gain"]))
        parts = [
            f"{c['gain']:+.2f} dB [{c['gain_lo']:+.2f}, {c['gain_hi']:+.2f}] on "
            f"{c['test_set']} (n={c['n']})"
            for c in mine
        ]
        out.append(f"{m}: " + "; ".join(parts) + ".")
    away = [c for c in cells if c.get("benchmark") != c["model"].split("-", 1)[1]]
    if away:
        lo = min(away, key=lambda c: c["gain"])
        out.append(
            f"Away from its own benchmark the smallest gain is {lo['model']} on {lo['test_set']}: "
            f"{lo['gain']:+.2f} dB over an Input of {lo['input_psnr']:.2f} dB."
        )
    return " ".join(out)


def protocol_findings(rows: list[dict]) -> str:
    """Each protocol as an answer: the range of its mean difference to ours over what was
    scored, then which protocol, if any, explains the gap between PReNet's two published
    Rain100H numbers (:data:`PUBLISHED_PRENET_RAIN100H`)."""
    eff = protocol_effects(rows)
    if not eff:
        return "No outputs were scored under the protocols."
    out = []
    for proto in dict.fromkeys(e["protocol"] for e in eff):
        d = [e["diff_psnr"] for e in eff if e["protocol"] == proto]
        ds = [e["diff_ssim"] for e in eff if e["protocol"] == proto]
        lo, hi = min(d), max(d)
        if max(abs(lo), abs(hi)) < 0.005:
            span = "changes PSNR by less than 0.005 dB"
        elif hi <= 0:
            span = f"scores {-hi:.2f}-{-lo:.2f} dB below ours"
        elif lo >= 0:
            span = f"scores {lo:.2f}-{hi:.2f} dB above ours"
        else:
            span = f"moves PSNR by {lo:+.2f} to {hi:+.2f} dB"
        out.append(f"{proto} {span} (SSIM {min(ds):+.4f} to {max(ds):+.4f})")
    text = "Against MATLAB Y (ours): " + "; ".join(out) + "."
    (a, va), (b, vb) = PUBLISHED_PRENET_RAIN100H.items()
    gap = va - vb
    pre = [
        e for e in eff if e["scored"].startswith("prenet-rain100h") and "Rain100H" in e["test_set"]
    ]
    if not pre:
        return text + (
            f" PReNet's Rain100H PSNR is {va:.2f} dB in the {a} and {vb:.2f} in the {b} "
            f"({gap:+.2f} dB): no released PReNet Rain100H output was scored on Rain100H here."
        )
    best = min(pre, key=lambda e: abs(e["diff_psnr"] - gap))
    ok = abs(best["diff_psnr"] - gap) <= 0.25 * abs(gap)
    return text + (
        f" PReNet's Rain100H PSNR is {va:.2f} dB in the {a} and {vb:.2f} in the {b} "
        f"({gap:+.2f} dB). On its released Rain100H outputs ({best['test_set']}, n={best['n']}) "
        f"the closest protocol change is '{best['protocol']}' at {best['diff_psnr']:+.2f} dB: "
        + ("it explains the gap." if ok else "no protocol here explains the gap.")
    )


def cost_findings(rows: list[dict]) -> str:
    """Each measured model's GFLOP per megapixel, CPU seconds and peak memory, and SIAN's
    CPU time as a multiple of PReNet's."""
    ok = [r for r in rows if r.get("status") == "ok"]
    if not ok:
        return "No model's cost was measured."
    s = f"{len(ok)} of {len(rows)} models measured: " + "; ".join(
        f"{r['model']} {r['gflop_per_mp']:.0f} GFLOP/MP, {r['cpu_s']:.2f} CPU s"
        + (f" at {r['size']}" if "size" in r else "")
        + (f", peak {r['peak_rss_mib']:.0f} MiB" if r.get("peak_rss_mib") else "")
        for r in ok
    )
    by = {r["model"]: r for r in ok}
    if "sian" in by and "prenet" in by and by["prenet"]["cpu_s"] > 0:
        s += f"; SIAN takes {by['sian']['cpu_s'] / by['prenet']['cpu_s']:.1f}x PReNet's CPU time"
    return s + "."


def beyond(profile: str) -> str:
    """Step 07: one paragraph per section, with its numbers, from the files under
    ``results/<profile>/beyond/`` (the chapter's time is a run fact: ``provenance.json``)."""
    folder = results_dir(profile) / "beyond"

    def saved(name: str) -> list | dict:
        path = folder / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else []

    cost = saved("cost")
    lines = [
        f"- **Rain density**: {density_findings(saved('density'))}",
        f"- **Attention vs rain pixels**: {attention_findings(saved('attention_auc'))}",
        "- **Generalisation** (gain over the input): "
        + generalisation_findings(saved("generalisation")),
        f"- **Cost**: {cost_findings(cost['rows'] if isinstance(cost, dict) else [])}",
        f"- **Protocols**: {protocol_findings(saved('protocols'))}",
    ]
    return _head(profile) + "\n".join(lines)


def table_claims(profile: str, spec: TableSpec) -> str:
    """The chapter's findings for ``spec``: per test set the seed means, best first, with the
    number of seeds, then chapter 08's verdict and reason for each claim of the table (the
    same rows as ``claims.csv``)."""
    head = f"### Findings of this run (profile `{profile}`)\n\n"
    means = judged.seed_means(profile, spec)
    out = [head]
    for t, g in means[means.seed == "mean"].groupby("test_set", sort=False):
        seeds = means[(means.test_set == t) & (means.seed != "mean")].seed.nunique()
        ranked = g.sort_values("psnr", ascending=False)
        order = ", ".join(f"{r.label} {r.psnr:.2f} dB" for r in ranked.itertuples())
        paper = [m.paper_row for m in sorted(spec.methods, key=lambda m: -_paper_psnr(spec, m))]
        same = list(ranked.label) == paper
        out.append(
            f"- {t}: mean over {seeds} training seed{'s' * (seeds != 1)}, best first: {order}"
            f" ({'the same order as' if same else 'not'} the paper's {' > '.join(paper)}).\n"
        )
    mine = [r for r in judged.claim_rows(profile) if r["table"] == spec.number]
    for r in mine:
        out.append(
            f"- {r['claim']} ({r.get('test_set') or r['benchmark']}): `{r['verdict']}`: "
            f"{r['reason']}.\n"
        )
    if not mine:
        out.append("- no claim of this table was judged (chapter 08).\n")
    return "".join(out)


def _paper_psnr(spec: TableSpec, m) -> float:
    v = {b: paper_value(spec.number, m.paper_row, b).value for b in spec.benchmarks}
    return float(np.mean([x[0] for x in v.values() if x]))
