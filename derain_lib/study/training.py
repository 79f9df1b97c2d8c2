"""Step 01: train (or take from the run cache) every model the tables need; step 08: the
extra training seeds the claims need.

While a model trains, :func:`train_run` reports on the pipeline's progress channel
(:func:`~.paths.progress`): which model of how many, then every :data:`PROGRESS_EVERY`
seconds its step of total, loss, elapsed time and ETA, read from the run's ``log.csv``.
"""

from __future__ import annotations

import csv
import os
import threading
import time
from pathlib import Path

from tqdm import tqdm

from ..config import Config, profile_seeds
from ..data.sources import open_data
from ..errors import DerainError
from ..runs import Run, data_manifests, find_run, get_or_run, stored
from ..tables import not_run
from ..train import planned_steps, training_patches
from .claims import CLAIMS
from .paths import progress, read_json, results_dir, write_json
from .plan import TRAIN_PLAN, TRAINED, Params, config_for, datasets, test_spec

#: Seconds between two progress lines of a model in training (env ``DERAIN_PROGRESS_EVERY``).
PROGRESS_EVERY = float(os.environ.get("DERAIN_PROGRESS_EVERY", "30"))


def step_line(log_csv: Path, total: int) -> str | None:
    """``step/total [elapsed<ETA, rate, loss]`` from the last training row of a run's
    ``log.csv``; None before the first step is logged."""
    if not log_csv.is_file():
        return None
    lines = log_csv.read_text().splitlines()
    fields = next(csv.reader(lines[:1]), [])
    for row in csv.DictReader(reversed(lines[1:]), fieldnames=fields):
        if row.get("loss") and row.get("elapsed_s"):  # a step row (not a validation row)
            return tqdm.format_meter(
                int(row["step"]),
                total,
                float(row["elapsed_s"]),
                prefix="  train",
                ascii=True,
                unit="step",
                postfix=f"loss={float(row['loss']):.4g}",
            )
    return None


def train_run(label: str, cfg: Config) -> Run | str:
    """:func:`~derain_lib.runs.get_or_run` for ``cfg``, saying on the progress channel
    ``label`` and whether the run comes from the cache, and while it trains its
    :func:`step_line` every :data:`PROGRESS_EVERY` seconds (when it changed). Without its
    training data: the ``not run: ...`` status instead of a run (said on the channel too)."""
    try:
        train_data = open_data(cfg.data.train, cfg.data.root)
    except DerainError as e:
        status = not_run(f"no training data: {e}")
        progress(f"{label}: {status}")
        return status
    manifests = data_manifests(cfg)  # the data is hashed once, for the key and the run
    run = find_run(cfg, manifests=manifests)
    if run.status == "finished":
        progress(f"{label}: from the run cache (run {run.key})")
        return run
    total = planned_steps(cfg, len(training_patches(cfg, train_data)))
    progress(f"{label}: training, {total} steps (run {run.key})")
    stop = threading.Event()

    def watch() -> None:
        last = None
        while not stop.wait(PROGRESS_EVERY):
            line = step_line(run.dir / "log.csv", total)
            if line and line != last:
                progress(line)
                last = line

    watcher = threading.Thread(target=watch, daemon=True)
    t0 = time.perf_counter()
    watcher.start()
    try:
        run = get_or_run(cfg, progress=False, manifests=manifests)  # progress goes here
    finally:
        stop.set()
        watcher.join()
    progress(f"{label}: done in {time.perf_counter() - t0:.0f} s")
    return run


def train_all(p: Params) -> list[dict]:
    """One row per (method, training set) of :data:`~.plan.TRAIN_PLAN`: the run key, its
    folder, checkpoint, training time (the run's own, not this session's: the rows do not
    change when a re-run takes every run from the cache) and metrics, or why it did not
    run. Finished runs come from the run cache at once; unfinished ones resume. Writes
    ``runs.json``."""
    plan = [(b, d, mid) for b, d in datasets(p).items() for mid in TRAIN_PLAN.get(b, ())]
    rows = []
    for i, (b, d, mid) in enumerate(plan, 1):
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
        run = train_run(f"model {i}/{len(plan)}: {model} {loss} {d} seed {cfg.train.seed}", cfg)
        if isinstance(run, str):
            rows.append({**row, "status": run})
            continue
        rows.append(
            {
                **row,
                "status": "ok",
                "run": run.key,
                "test": test_spec(cfg),
                "run_dir": stored(run.dir),
                "checkpoint": stored(run.checkpoint_path),
                "train_seconds": round(run.provenance.get("train_wall_s", 0.0), 1),
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
    plan = [
        (b, d, method, seed)
        for b, d in datasets(p).items()
        for method in TRAINED
        if (method, b) in wanted
        for seed in profile_seeds(p.profile)
    ]
    rows = []
    for i, (b, d, method, seed) in enumerate(plan, 1):
        model, loss = TRAINED[method]
        extra = [f"model.name={model}", f"train.loss={loss}", f"train.seed={seed}"]
        cfg = config_for(p, d, extra)
        row = {"method": method, "benchmark": b, "seed": seed}
        run = train_run(f"model {i}/{len(plan)}: {model} {loss} {d} seed {seed}", cfg)
        if isinstance(run, str):
            rows.append({**row, "status": run})
            continue
        csv_path = stored(run.dir / "per_image.csv")
        rows.append({**row, "status": "ok", "run": run.key, "per_image_csv": csv_path})
    write_json(results_dir(p.profile) / "seeds.json", rows)
    return rows
