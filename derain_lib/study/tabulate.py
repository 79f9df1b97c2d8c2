"""Tables II-V with provenance, ``tableN.csv`` and ``tables.md``: our value (the record's seed
mean) beside the paper's, the difference where comparable, a kind and provenance per row."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ..fsutil import atomic_write_text
from ..tables import BENCHMARKS, FULL_TEST_SIZE, NOT_RUN, Score, benchmark_label, load_scores
from . import record
from .paper import DATA, NOTEBOOKS, PAPER, TABLES, Method, Step, TableSpec, paper_value
from .plan import results_dir, work_dir

COLUMNS: list[str] = DATA["columns"]["tables"]
#: The texts of ``tables.md`` (``paper.yaml``).
TEXT: dict[str, str] = DATA["tables_md"]
#: Columns of ``tables.md`` shown as formatted numbers (read as numbers, the rest as text).
NUMBERS = [c for c, (_, f) in TEXT["columns"].items() if f]
_SHA = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{52}\b")


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def _paper_cells(spec: TableSpec, paper_row: str, benchmark: str) -> dict:
    pv = paper_value(spec.number, paper_row, benchmark)
    psnr, ssim = pv.value or (None, None)
    cells = {"table": spec.number, "paper_row": paper_row, "paper_source": pv.quote}
    return cells | {"paper_psnr": psnr, "paper_ssim": ssim}


def _row(spec: TableSpec, m: Method, s: Score, means: pd.DataFrame | None) -> dict:
    """Our row of ``m``: the score ``s``, or the record's seed mean where it has one."""
    row = dict.fromkeys(COLUMNS) | _paper_cells(spec, m.paper_row, s.benchmark)
    key = (str(m.id), s.test_set)
    mean = means.loc[key] if means is not None and key in means.index else None
    got = s if mean is None else mean
    row |= {"method": m.label, "method_id": str(m.id), "test_set": s.test_set, "kind": s.kind}
    row |= {"benchmark": benchmark_label(s.benchmark, s.stand_in), "provenance": s.provenance}
    if s.ran:
        row |= {"n": s.n, "psnr": _round(got.psnr), "ssim": _round(got.ssim)}
    notes = [s.note] if s.note else []
    if row["paper_psnr"] is None:
        row["paper_source"] += ": printed as '-'"
    elif s.ran and s.stand_in:
        notes.append(
            f"measured on the embedded stand-in for {BENCHMARKS[s.benchmark]}: "
            "not comparable to the paper's number, no difference given"
        )
    elif s.ran:
        row["diff_psnr"] = _round(got.psnr - row["paper_psnr"])
        row["diff_ssim"] = _round(got.ssim - row["paper_ssim"])
        if s.partial:
            full = FULL_TEST_SIZE[s.benchmark]
            notes.append(f"partial set (n={s.n} of {full}): the difference is indicative only")
    if mean is not None:
        row["n_seeds"] = int(mean.n_seeds) if m.id.trained else None
        if mean.n_seeds > 1:
            row |= {"psnr_sd": _round(mean.psnr_sd), "ssim_sd": _round(mean.ssim_sd)}
        if mean.degenerate:
            row["kind"] = "degenerate"
            notes.append(f"degenerate: {record.DEGENERATE_RULE}")
    return row | {"note": "; ".join(notes)}


def build_table(name: str, scores: list[Score], means: pd.DataFrame | None = None) -> list[dict]:
    """Rows of table ``name`` from a step's scores and the record's seed means (by method and
    test set): per (method, benchmark) our rows or a "not run" one, then the paper's others."""
    spec = TABLES[name]
    latest = {(s.method, s.benchmark, s.test_set): s for s in scores}  # a re-score replaces
    rows = []
    for m in spec.methods:
        for b in spec.benchmarks:
            mine = [s for s in latest.values() if s.method == m.id and s.benchmark == b]
            measured = [s for s in mine if s.ran]
            if not measured:
                why = mine[0].detail if mine else "no result recorded"
                measured = [Score(method=m.id, benchmark=b, kind="not_run", detail=why)]
            rows += [_row(spec, m, s, means) for s in measured]
    others = [r for r in PAPER[spec.number] if r not in {m.paper_row for m in spec.methods}]
    for r in others if spec.paper_only_rows else []:
        for b in spec.benchmarks:
            cells = _paper_cells(spec, r, b)
            printed = cells["paper_psnr"] is not None
            quote = cells["paper_source"] + ("" if printed else ": '-'")
            note = "reported in the paper; not run here" if printed else ""
            more = {"method": r, "benchmark": BENCHMARKS[b], "kind": "paper", "note": note}
            rows.append(dict.fromkeys(COLUMNS) | cells | more | {"provenance": f"paper ({quote})"})
    return rows


def write_table(
    res: str | Path, name: str, scores: list[Score], means: pd.DataFrame | None = None
) -> Path:
    """Write table ``name`` (:func:`build_table`) as ``<name>.csv`` into ``res``."""
    df = pd.DataFrame(build_table(name, scores, means), columns=COLUMNS, dtype=object)
    return atomic_write_text(Path(res) / f"{name}.csv", df.to_csv(index=False))


def build_tables(profile: str, names: tuple[str | TableSpec, ...] = ()) -> Path:
    """``tableN.csv`` for ``names`` (keys or specs), then ``tables.md`` (returned)."""
    res = results_dir(profile)
    means = record.seed_table(record.read(profile)).query("variant == ''")
    means = means.set_index(["method", "test_set"])
    for spec in (n if isinstance(n, TableSpec) else TABLES[n] for n in names):
        scores = load_scores([work_dir(profile) / "scores" / f"{spec.step}.json"])
        write_table(res, spec.key, scores, means)
    return write_markdown(res, profile)


def write_markdown(res: str | Path, profile: str) -> Path:
    """``tables.md``: the run's parameters, every tableN.csv in ``res`` as the paper rounds, the
    figure captions."""
    res = Path(res)
    lines = [f"# Tables II-V, profile `{profile}`", ""]
    if (rec := res / "provenance.json").is_file():
        q = json.loads(rec.read_text())["parameters"]
        q["overrides"] = " ".join(q["overrides"]) or "none"
        lines += [TEXT["header"].format_map(q), ""]
    lines += [TEXT["intro"], ""]
    for name, spec in TABLES.items():
        path = res / f"{name}.csv"
        lines += [f"## Table {spec.number}: {spec.title}", ""]
        if not path.exists():
            lines += [f"not run: `{path.name}` was not produced", ""]
            continue
        df = pd.read_csv(path, keep_default_na=False, na_values=dict.fromkeys(NUMBERS, [""]))
        notes = list(dict.fromkeys(n for n in df.note if n))
        df["method"] += [f" [{notes.index(n) + 1}]" if n else "" for n in df.note]
        df["provenance"] = df.provenance.str.replace(_SHA, r"\1…", regex=True)
        for c in NUMBERS:
            df[c] = df[c].map(f"{{:{TEXT['columns'][c][1]}}}".format, na_action="ignore")
        shown = df[list(TEXT["columns"])].astype(object).fillna("")
        shown.columns = [h for h, _ in TEXT["columns"].values()]
        lines += [shown.to_markdown(index=False, disable_numparse=True), ""]
        lines += [f"[{i}] {n}" for i, n in enumerate(notes, 1)] + [""]
    if (captions := res / "figures.json").exists():
        figs = json.loads(captions.read_text())
        lines += ["## Figures", "", *(f"- `{f['path']}`: {f['caption']}" for f in figs), ""]
    return atomic_write_text(res / "tables.md", "\n".join(lines))


def read_table(profile: str, name: str) -> pd.DataFrame:
    """``results/<profile>/<name>.csv``."""
    return pd.read_csv(results_dir(profile) / f"{name}.csv")


def not_run_items(profile: str) -> list[dict]:
    """What did not run, from the saved results (``not_run`` scores, degenerate seeds,
    unfinished training runs): one ``{"notebook", "what"}`` per item."""
    work, items = work_dir(profile), []
    for step, nb in NOTEBOOKS.items():
        path = work / "scores" / f"{step}.json"
        for s in load_scores([path]) if path.is_file() else []:
            if s.kind == "not_run":
                items.append((nb, f"{s.method} on {s.test_set or s.benchmark}: {s.provenance}"))
    df = record.read(profile)
    for r in df[df.degenerate].drop_duplicates(["method", "test_set", "seed"]).itertuples():
        step = Step.TABLE5 if r.method.startswith("sian-baseline") else Step.TABLE2
        what = f"{r.method} seed {r.seed} on {r.test_set}: degenerate: {record.DEGENERATE_RULE}"
        items.append((NOTEBOOKS[step], what))
    for name, nb in (("runs.json", "01_train.ipynb"), ("seeds.json", "08_claims.ipynb")):
        for r in json.loads((work / name).read_text()) if (work / name).is_file() else []:
            if r.get("status", "ok") != "ok":
                seed = f" seed {r['seed']}" if "seed" in r else ""
                why = r["status"].removeprefix(NOT_RUN)
                items.append((nb, f"{r['method']} {r['benchmark']}{seed}: {why}"))
    return [{"notebook": nb, "what": what} for nb, what in dict.fromkeys(items)]
