"""Table rows with provenance: ``tableN.csv`` from the scores of the step that measured
them, and ``tables.md`` (every table, the run's record and the figure captions)."""

from __future__ import annotations

import json

import pandas as pd

from ..tables import NOT_RUN, TABLES, Step, TableSpec, load_scores, write_markdown, write_tables
from .paths import results_dir


def build_tables(profile: str, names: tuple[str | TableSpec, ...] = ()):
    """Write ``tableN.csv`` for ``names`` (table keys or specs) from the scores their step
    recorded (:attr:`~derain_lib.tables.TableSpec.step`), then re-render ``tables.md``;
    returns its path."""
    res = results_dir(profile)
    for name in names:
        spec = name if isinstance(name, TableSpec) else TABLES[name]
        write_tables(res, load_scores([res / "scores" / f"{spec.step}.json"]), [spec.key])
    rec = res / "provenance.json"
    header = ""
    if rec.is_file():
        p = json.loads(rec.read_text())
        q = p["parameters"]
        header = (
            f"Data root {q['data_root']}, weights dir {q['weights_dir']}, "
            f"overrides {' '.join(q['overrides']) or 'none'}. When, where, on which commit "
            "and how long: `provenance.json` (kept apart so that a re-run that changes no "
            "number leaves this file as it is)."
        )
    return write_markdown(res, profile, header)


def read_table(profile: str, name: str | TableSpec, measured_only: bool = False) -> pd.DataFrame:
    """``results/<profile>/<name>.csv``; ``measured_only`` drops the paper-only rows."""
    key = name.key if isinstance(name, TableSpec) else name
    df = pd.read_csv(results_dir(profile) / f"{key}.csv")
    return df[df.kind != "paper"] if measured_only else df


def not_run_items(profile: str) -> list[dict]:
    """What did not run, from the saved results (not from printed output): every score
    record of ``kind`` ``not_run`` or ``degenerate`` (``scores/<step>.json``) and every
    training run that did not finish (``runs.json``, ``seeds.json``); one
    ``{"notebook", "what"}`` per item, the notebook named by its step."""
    res = results_dir(profile)
    notebook = {
        Step.TABLE2: "02_table2_loss.ipynb",
        Step.TABLE3_4: "03_tables3_4_benchmarks.ipynb",
        Step.TABLE5: "04_table5_ablation.ipynb",
    }
    items = []
    for step in Step:
        path = res / "scores" / f"{step}.json"
        if not path.is_file():
            continue
        for s in load_scores([path]):
            if s.kind in ("not_run", "degenerate"):
                what = f"{s.method} on {s.test_set or s.benchmark}: {s.provenance}"
                items.append({"notebook": notebook[step], "what": what})
    for name, nb in (("runs.json", "01_train.ipynb"), ("seeds.json", "08_claims.ipynb")):
        path = res / name
        rows = json.loads(path.read_text()) if path.is_file() else []
        for r in rows:
            if r.get("status", "ok") != "ok":
                seed = f" seed {r['seed']}" if "seed" in r else ""
                why = r["status"].removeprefix(NOT_RUN)
                items.append(
                    {"notebook": nb, "what": f"{r['method']} {r['benchmark']}{seed}: {why}"}
                )
    return list({(i["notebook"], i["what"]): i for i in items}.values())
