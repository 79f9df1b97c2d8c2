"""What a run found, as Markdown generated from its saved numbers (never hand-written).

Each notebook ends with one of these, displayed with ``IPython.display.Markdown``. Every
sentence is built from ``results/<profile>/`` files, so it says what *this* run, on *this*
profile's data, measured: stand-in data is named as such and not compared with the paper.
"""

from __future__ import annotations

import json

import pandas as pd

from ..tables import benchmark_label
from .beyond import attention_findings, density_findings
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


def figures(profile: str) -> str:
    """Step 05: which figures this run drew, with their captions."""
    index = results_dir(profile) / "figures.json"
    figs = json.loads(index.read_text()) if index.is_file() else []
    lines = [f"- `{f['path']}`: {f['caption']}" for f in figs]
    return (
        _head(profile)
        + f"{len(figs)} figures drawn from `results/{profile}/`:\n\n"
        + ("\n".join(lines))
    )


def explorer(profile: str, weights: str, shape: tuple[int, ...] | None, message: str) -> str:
    """Step 06: what the explorer opened, or why it did not (how fast a view re-renders is
    a run fact, kept in ``provenance.json``)."""
    if shape is None:
        return _head(profile) + f"The explorer did not open a model: {message}"
    return _head(profile) + (
        f"Weights `{weights}` on a {shape[1]}x{shape[0]} image (the forward pass runs once "
        "per image and weights; the last re-render's time is in `provenance.json`)."
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


def beyond(profile: str) -> str:
    """Step 07: the density and attention sentences, how many generalisation, cost and
    protocol rows were measured, from ``results/<profile>/beyond/`` (the chapter's time is
    a run fact: ``provenance.json``)."""
    folder = results_dir(profile) / "beyond"

    def rows(name: str) -> list[dict]:
        path = folder / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else []

    gen, protocols = rows("generalisation"), rows("protocols")
    cost_file = folder / "cost.json"
    cost = json.loads(cost_file.read_text())["rows"] if cost_file.is_file() else []
    measured = [r for r in cost if r.get("status") == "ok"]
    lines = [
        f"- **Rain density**: {density_findings(rows('density'))}",
        f"- **Attention vs rain pixels**: {attention_findings(rows('attention_auc'))}",
        f"- **Generalisation**: {len(gen)} (weights, test set) cells scored"
        + (f", best {max(gen, key=lambda r: r['psnr'])['psnr']:.2f} dB." if gen else "."),
        f"- **Cost**: {len(measured)} of {len(cost)} models measured"
        + "".join(
            f"; {r['model']} {r['gflop_per_mp']:.0f} GFLOP/MP, {r['cpu_s']:.2f} CPU s"
            for r in measured
        )
        + ".",
        f"- **Protocols**: {len(protocols)} (outputs, protocol) rows scored.",
    ]
    return _head(profile) + "\n".join(lines)
