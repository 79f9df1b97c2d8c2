"""Table rows with provenance: ``tableN.csv`` from the scores of the step that measured
them, and ``tables.md`` (every table, the run's record and the figure captions)."""

from __future__ import annotations

import json

import pandas as pd

from ..tables import load_scores, write_markdown, write_tables
from .paths import results_dir

#: The notebook step (scores/<step>.json) each table is built from.
TABLE_STEPS = {"table2": "table2", "table3": "table3_4", "table4": "table3_4", "table5": "table5"}


def build_tables(profile: str, names: tuple[str, ...] = ()):
    """Write ``tableN.csv`` for ``names`` from the scores their step recorded
    (:data:`TABLE_STEPS`), then re-render ``tables.md``; returns its path."""
    res = results_dir(profile)
    for name in names:
        write_tables(res, load_scores([res / "scores" / f"{TABLE_STEPS[name]}.json"]), [name])
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


def read_table(profile: str, name: str, measured_only: bool = False) -> pd.DataFrame:
    """``results/<profile>/<name>.csv``; ``measured_only`` drops the paper-only rows."""
    df = pd.read_csv(results_dir(profile) / f"{name}.csv")
    return df[~df.provenance.str.startswith("paper")] if measured_only else df
