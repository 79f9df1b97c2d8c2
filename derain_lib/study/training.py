"""Step 01: train (or take from the run cache) every model the tables need; step 08: the
extra training seeds the claims need."""

from __future__ import annotations

import time

from ..config import profile_seeds
from ..data.sources import open_data
from ..errors import DerainError
from ..runs import get_or_run
from ..tables import not_run
from .claims import CLAIMS
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


def train_seeds(p: Params) -> list[dict]:
    """Train every method a claim on trained models compares once per training seed of the
    profile (``seeds:`` in its YAML; the first seed's runs are :func:`train_all`'s, from the
    run cache). One row per (method, benchmark, seed): the run and its per-image scores on the
    profile's own test set, or why it did not run. Writes ``seeds.json``."""
    wanted = {(m, c.benchmark) for c in CLAIMS if c.trained for m in (c.better, c.worse)}
    rows = []
    for b, d in datasets(p).items():
        for method in (m for m in TRAINED if (m, b) in wanted):
            model, loss = TRAINED[method]
            for seed in profile_seeds(p.profile):
                extra = [f"model.name={model}", f"train.loss={loss}", f"train.seed={seed}"]
                cfg = config_for(p, d, extra)
                row = {"method": method, "benchmark": b, "seed": seed}
                try:
                    open_data(cfg.data.train, cfg.data.root)
                except DerainError as e:
                    rows.append({**row, "status": not_run(f"no training data: {e}")})
                    continue
                run = get_or_run(cfg)
                csv = str(run.dir / "per_image.csv")
                rows.append({**row, "status": "ok", "run": run.key, "per_image_csv": csv})
    write_json(results_dir(p.profile) / "seeds.json", rows)
    return rows
