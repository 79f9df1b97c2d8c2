"""Tables II-V with provenance: ``tableN.csv`` and ``tables.md``.

:func:`build_table` turns the :class:`~derain_lib.tables.Score` records of a step into the
rows of one paper table: our value next to the paper's (:mod:`.paper`), the difference
where the two are comparable, a provenance on every row (``reproduced (profile, run
hash)``, ``released weights (file, sha256)``, ``computed (...)``, ``paper (Table, row,
column)`` for methods we do not run, ``not run: <reason>``, ``degenerate: <reason>``) and its
kind. A measured row's PSNR and SSIM are the mean over the training seeds of each seed's
mean over the images, from the record ``scores.csv`` (:func:`.record.seed_table`), with
``n_seeds``, ``psnr_sd`` and ``ssim_sd`` beside them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ..fsutil import atomic_write_text
from ..tables import (
    BENCHMARKS,
    FULL_TEST_SIZE,
    NOT_RUN,
    Score,
    benchmark_label,
    load_scores,
    missing,
)
from . import record
from .paper import PAPER, TABLES, Method, Step, TableSpec, paper_value
from .plan import results_dir, work_dir

COLUMNS = [
    *("table", "method", "method_id", "benchmark", "test_set", "n", "psnr", "ssim"),
    *("kind", "provenance", "paper_row", "paper_psnr", "paper_ssim", "paper_source"),
    *("diff_psnr", "diff_ssim", "note", "n_seeds", "psnr_sd", "ssim_sd"),
]


def _round(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(float(v), digits)


def _row(spec: TableSpec, m: Method, s: Score, means: pd.DataFrame | None) -> dict:
    pv = paper_value(spec.number, m.paper_row, s.benchmark)
    paper = pv.value
    row = dict.fromkeys(COLUMNS) | {
        "table": spec.number,
        "method": m.label,
        "method_id": str(m.id),
        "benchmark": benchmark_label(s.benchmark, s.stand_in),
        "test_set": s.test_set,
        "n": s.n if s.ran else None,
        "psnr": _round(s.psnr) if s.ran else None,
        "ssim": _round(s.ssim) if s.ran else None,
        "kind": s.kind,
        "provenance": s.provenance,
        "paper_row": m.paper_row,
        "paper_psnr": paper[0] if paper else None,
        "paper_ssim": paper[1] if paper else None,
        "paper_source": pv.quote if paper else f"{pv.quote}: printed as '-'",
    }
    notes = [s.note] if s.note else []
    if s.kind == "degenerate":
        notes.append(f"degenerate run ({s.detail}): scored, not a result")
    comparable = s.ran and paper is not None
    if comparable and s.stand_in:
        notes.append(
            f"measured on the embedded stand-in for {BENCHMARKS[s.benchmark]}: "
            "not comparable to the paper's number, no difference given"
        )
    elif comparable and s.partial:
        notes.append(
            f"partial set (n={s.n} of {FULL_TEST_SIZE[s.benchmark]}): "
            "the difference is indicative only"
        )
    key = (str(m.id), s.test_set)
    mean = means.loc[key] if means is not None and key in means.index else None
    psnr, ssim = (s.psnr, s.ssim) if mean is None else (mean.psnr, mean.ssim)
    if mean is not None:  # the seed mean of the record replaces the step's own number
        row |= {"psnr": _round(psnr), "ssim": _round(ssim)}
        row["n_seeds"] = int(mean.n_seeds) if m.id.trained else None
        if mean.n_seeds > 1:
            row |= {"psnr_sd": _round(mean.psnr_sd), "ssim_sd": _round(mean.ssim_sd)}
        if mean.degenerate:
            row["kind"] = "degenerate"
    if comparable and not s.stand_in:
        row["diff_psnr"] = _round(psnr - paper[0])
        row["diff_ssim"] = _round(ssim - paper[1])
    if mean is not None and mean.degenerate:
        notes.append(f"degenerate: {record.DEGENERATE_RULE}")
    row["note"] = "; ".join(notes)
    return row


def _paper_row(spec: TableSpec, paper_row: str, benchmark: str) -> dict:
    pv = paper_value(spec.number, paper_row, benchmark)
    quote = pv.quote if pv.value else f"{pv.quote}: '-'"
    return dict.fromkeys(COLUMNS) | {
        "table": spec.number,
        "method": paper_row,
        "benchmark": BENCHMARKS[benchmark],
        "kind": "paper",
        "provenance": f"paper ({quote})",
        "paper_row": paper_row,
        "paper_psnr": pv.value[0] if pv.value else None,
        "paper_ssim": pv.value[1] if pv.value else None,
        "paper_source": pv.quote,
        "note": "reported in the paper; not run here" if pv.value else "",
    }


def build_table(
    name: str | TableSpec, scores: list[Score], means: pd.DataFrame | None = None
) -> list[dict]:
    """Rows of table ``name`` ("table2".."table5", or its spec) from the recorded scores and
    the record's seed means (:func:`.record.seed_table` indexed by method and test set).

    Every (method, benchmark) cell gets our measured rows (one per test set), or a "not
    run" row (``no result recorded`` when nothing was recorded at all).
    """
    spec = name if isinstance(name, TableSpec) else TABLES[name]
    latest = {(s.method, s.benchmark, s.test_set): s for s in scores}  # a re-score replaces
    rows = []
    for m in spec.methods:
        for b in spec.benchmarks:
            mine = [s for s in latest.values() if s.method == m.id and s.benchmark == b]
            measured = [s for s in mine if s.ran]
            if not measured:
                why = mine[0].detail if mine else "no result recorded"
                measured = [Score(method=m.id, benchmark=b, **missing(why))]
            rows += [_row(spec, m, s, means) for s in measured]
    if spec.paper_only_rows:
        ours = {m.paper_row for m in spec.methods}
        rows += [
            _paper_row(spec, r, b)
            for r in PAPER[spec.number]
            if r not in ours
            for b in spec.benchmarks
        ]
    return rows


def write_tables(
    res: str | Path, scores: list[Score], names: list[str], means: pd.DataFrame | None = None
) -> list[Path]:
    """Write ``<name>.csv`` for each table in ``names`` into ``res``."""
    return [
        atomic_write_text(
            Path(res) / f"{n}.csv",
            pd.DataFrame(build_table(n, scores, means), columns=COLUMNS, dtype=object).to_csv(
                index=False
            ),
        )
        for n in names
    ]


def build_tables(profile: str, names: tuple[str | TableSpec, ...] = ()) -> Path:
    """Write ``tableN.csv`` for ``names`` (table keys or specs) from the scores their step
    recorded and the record's seed means, then re-render ``tables.md``; returns its path."""
    res = results_dir(profile)
    means = record.seed_table(record.read(profile)).query("variant == ''")
    means = means.set_index(["method", "test_set"])
    for name in names:
        spec = name if isinstance(name, TableSpec) else TABLES[name]
        scores = load_scores([work_dir(profile) / "scores" / f"{spec.step}.json"])
        write_tables(res, scores, [spec.key], means)
    rec = res / "provenance.json"
    header = ""
    if rec.is_file():
        q = json.loads(rec.read_text())["parameters"]
        header = (
            f"Data root {q['data_root']}, weights dir {q['weights_dir']}, "
            f"overrides {' '.join(q['overrides']) or 'none'}. When, where, on which commit "
            "and how long: `provenance.json` (kept apart so that a re-run that changes no "
            "number leaves this file as it is)."
        )
    return write_markdown(res, profile, header)


_SHA = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{52}\b")
NUMERIC = ("n", "psnr", "ssim", "paper_psnr", "paper_ssim", "diff_psnr", "diff_ssim")


def _fmt(spec: str):
    """A formatter of one number for the markdown ("" for a missing one)."""
    return lambda v: "" if pd.isna(v) else format(v, spec)


def write_markdown(res: str | Path, profile: str, header: str = "") -> Path:
    """``tables.md``: every tableN.csv present in ``res`` (PSNR rounded to 2 decimals and
    SSIM to 3, as the paper prints them; a cell's note as a footnote) and the figure
    captions."""
    res = Path(res)
    lines = [f"# Tables II-V, profile `{profile}`", "", *([header, ""] if header else [])]
    lines += [
        "PSNR (dB) / SSIM on the luminance channel (MATLAB protocol); a model trained here is "
        "the mean over its training seeds (`seeds`). `paper` columns quote the paper; "
        "differences are given only where our test set is the benchmark itself. Full sha256s "
        "and per-cell notes are in the CSV files.",
        "",
    ]
    for name, spec in TABLES.items():
        path = res / f"{name}.csv"
        lines += [f"## Table {spec.number}: {spec.title}", ""]
        if not path.exists():
            lines += [f"not run: `{path.name}` was not produced", ""]
            continue
        df = pd.read_csv(path, keep_default_na=False, na_values={c: [""] for c in NUMERIC})
        notes = list(dict.fromkeys(n for n in df.note if n))
        marks = [f" [{notes.index(n) + 1}]" if n else "" for n in df.note]
        shown = pd.DataFrame(
            {
                "method": df.method + marks,
                "benchmark": df.benchmark,
                "test set": df.test_set,
                "n": df.n.astype(str).str.removesuffix(".0"),
                "seeds": df.get("n_seeds", pd.Series("", index=df.index)).astype(str),
                "PSNR": df.psnr.map(_fmt(".2f")),
                "SSIM": df.ssim.map(_fmt(".3f")),
                "paper PSNR": df.paper_psnr.map(_fmt(".2f")),
                "paper SSIM": df.paper_ssim.map(_fmt(".3f")),
                "Δ PSNR": df.diff_psnr.map(_fmt("+.2f")),
                "provenance": df.provenance.str.replace(_SHA, r"\1…", regex=True),
            }
        )
        lines += [shown.to_markdown(index=False, disable_numparse=True), ""]
        lines += [f"[{i}] {n}" for i, n in enumerate(notes, 1)] + [""]
    captions = res / "figures.json"
    if captions.exists():
        figs = json.loads(captions.read_text())
        lines += ["## Figures", "", *(f"- `{f['path']}`: {f['caption']}" for f in figs), ""]
    return atomic_write_text(res / "tables.md", "\n".join(lines))


def read_table(profile: str, name: str | TableSpec, measured_only: bool = False) -> pd.DataFrame:
    """``results/<profile>/<name>.csv``; ``measured_only`` drops the paper-only rows."""
    key = name.key if isinstance(name, TableSpec) else name
    df = pd.read_csv(results_dir(profile) / f"{key}.csv")
    return df[df.kind != "paper"] if measured_only else df


NOTEBOOKS = {
    Step.TABLE2: "02_table2_loss.ipynb",
    Step.TABLE3_4: "03_tables3_4_benchmarks.ipynb",
    Step.TABLE5: "04_table5_ablation.ipynb",
}


def not_run_items(profile: str) -> list[dict]:
    """What did not run, from the saved results: every score record of kind ``not_run`` or
    ``degenerate`` (``scores/<step>.json``), every degenerate seed of the record and every
    training run that did not finish (``runs.json``, ``seeds.json``); one ``{"notebook",
    "what"}`` per item."""
    items = []  # (notebook, what)
    for step, nb in NOTEBOOKS.items():
        path = work_dir(profile) / "scores" / f"{step}.json"
        for s in load_scores([path]) if path.is_file() else []:
            if s.kind in ("not_run", "degenerate"):
                items.append((nb, f"{s.method} on {s.test_set or s.benchmark}: {s.provenance}"))
    df = record.read(profile)
    for r in df[df.degenerate].drop_duplicates(["method", "test_set", "seed"]).itertuples():
        step = Step.TABLE5 if r.method.startswith("sian-baseline") else Step.TABLE2
        what = f"{r.method} seed {r.seed} on {r.test_set}: degenerate: {record.DEGENERATE_RULE}"
        items.append((NOTEBOOKS[step], what))
    for name, nb in (("runs.json", "01_train.ipynb"), ("seeds.json", "08_claims.ipynb")):
        path = work_dir(profile) / name
        for r in json.loads(path.read_text()) if path.is_file() else []:
            if r.get("status", "ok") != "ok":
                seed = f" seed {r['seed']}" if "seed" in r else ""
                why = r["status"].removeprefix(NOT_RUN)
                items.append((nb, f"{r['method']} {r['benchmark']}{seed}: {why}"))
    return [{"notebook": nb, "what": what} for nb, what in dict.fromkeys(items)]
