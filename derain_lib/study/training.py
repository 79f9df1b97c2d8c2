"""Step 01: train (or take from the run cache) every model the tables need."""

from __future__ import annotations

import time

from ..data.sources import open_data
from ..errors import DerainError
from ..runs import get_or_run
from ..tables import not_run
from .paths import read_json, results_dir, write_json
from .plan import TRAIN_PLAN, TRAINED, Params, config_for, datasets, test_spec


def train_all(p: Params) -> list[dict]:
    """One row per (method, training set) of :data:`~.plan.TRAIN_PLAN`: the run key, its
    folder, checkpoint and metrics, or why it did not run. Finished runs come from the run
    cache at once; unfinished ones resume. Writes ``runs.json``."""
    rows = []
    for b, d in datasets(p).items():
        for mid in TRAIN_PLAN.get(b, ()):
            model, loss = TRAINED[mid]
            cfg = config_for(p, d, [f"model.name={model}", f"train.loss={loss}"])
            row = {
                "method": mid,
                "benchmark": b,
                "dataset": d,
                "model": model,
                "loss": loss,
                "stand_in": cfg.data.train.startswith("embedded:"),
            }
            try:
                open_data(cfg.data.train, cfg.data.root)
            except DerainError as e:
                rows.append({**row, "status": not_run(f"no training data: {e}")})
                continue
            t0 = time.perf_counter()
            run = get_or_run(cfg)
            rows.append(
                {
                    **row,
                    "status": "ok",
                    "run": run.key,
                    "test": test_spec(cfg),
                    "run_dir": str(run.dir),
                    "checkpoint": str(run.checkpoint_path),
                    "seconds_this_session": round(time.perf_counter() - t0, 1),
                    "metrics": run.metrics,
                }
            )
    write_json(results_dir(p.profile) / "runs.json", rows)
    return rows


def load_runs(profile: str) -> list[dict]:
    """The rows :func:`train_all` wrote for ``profile``."""
    hint = "run notebooks/01_train.ipynb first"
    return read_json(results_dir(profile) / "runs.json", hint)  # type: ignore[return-value]
