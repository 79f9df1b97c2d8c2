"""Runs named on screen (``derain runs list``, the explorer's list) by what tells them apart."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .info import RELEASED
from .runs import Run


def _fields(run: Run) -> list[str]:
    """Profile, data, model, loss, seed, status; an evaluation: test set and weights for loss."""
    if run.damage:
        return ["?"] * 5 + ["damaged"]
    c, status = run.config, run.status + (", stale" if run.stale else "")
    if c.model.weights is None:
        loss, seed = f"loss {c.train.loss}", f"seed {c.train.seed}"
        return [c.name, c.dataset, c.model.name, loss, seed, status]
    test, w = Path(c.data.test), Path(c.model.weights)
    if test.name in ("test", "train") and test.parent.name:  # .../rain100l/test: rain100l
        test = test.parent
    own = w.name == "model.pt" and c.model.weights not in RELEASED  # a run's own weights
    weights = f"run {w.parent.name[:10]}" if own else w.name
    return [c.name, f"test {test.name}", c.model.name, f"weights {weights}", "", status]


def run_labels(runs: list[Run], status: bool = True) -> list[str]:
    """One label per run: its fields (and ``status``), then where runs share those the config
    values that differ (``train.max_steps=2``), and where even those agree the run key."""
    base = [" · ".join(f for f in _fields(r)[: 6 if status else 5] if f) for r in runs]
    out = list(base)
    for label in {b for b in base if base.count(b) > 1}:
        group = [i for i, b in enumerate(base) if b == label]
        flat = {i: {} if runs[i].damage else pd.json_normalize(runs[i].config.to_dict(), sep=".")
                .to_dict("records")[0] for i in group}  # fmt: skip
        keys = sorted(set().union(*flat.values()))
        differ = [k for k in keys if len({repr(flat[i].get(k)) for i in group}) > 1]
        for i in group:
            out[i] = " · ".join([label, *(f"{k}={flat[i].get(k)}" for k in differ)])
    return [f"{o} · {r.key}" if out.count(o) > 1 else o for o, r in zip(out, runs, strict=True)]
