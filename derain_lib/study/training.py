"""Steps 01 and 08: every model trained or taken from the run cache (shared under torchrun)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pandas as pd
import torch.distributed as dist
from tqdm import tqdm

from ..config import Config, canonical_json, profile_seeds
from ..data.catalog import CATALOG
from ..data.sources import open_data
from ..device import device_name
from ..errors import DerainError
from ..runs import Run, data_manifests, find_run, get_or_run, stored
from ..tables import not_run
from ..train import dist_info, pick_device, planned_steps, training_patches
from . import plan
from .paper import CLAIMS
from .plan import Params, progress

PROGRESS_EVERY = float(os.environ.get("DERAIN_PROGRESS_EVERY", "30"))  # s between progress lines
ALONE = {"RANK": "0", "WORLD_SIZE": "1"}  # a process that trains alone (LOCAL_RANK kept: its GPU)


def step_line(log_csv: Path, total: int) -> str | None:
    """``step/total [elapsed<ETA, rate, loss]`` from a run's ``log.csv`` (None before a step)."""
    with contextlib.suppress(OSError, LookupError, ValueError):  # no step yet, half a line
        r = pd.read_csv(log_csv).dropna(subset=["loss", "elapsed_s"]).iloc[-1]  # the last step
        return tqdm.format_meter(int(r.step), total, r.elapsed_s, prefix="  train", ascii=True,
                                 unit="step", postfix=f"loss={r.loss:.4g}")  # fmt: skip
    return None


def train_run(label: str, cfg: Config) -> Run | str:
    """:func:`~derain_lib.runs.get_or_run` with progress lines (``not run: ...`` without data)."""
    try:
        train_data = open_data(cfg.data.train, cfg.data.root)
    except DerainError as e:
        progress(f"{label}: {(status := not_run(f'no training data: {e}'))}")
        return status
    manifests = data_manifests(cfg)  # the data is hashed once, for the key and the run
    if (run := find_run(cfg, manifests=manifests)).status == "finished":
        progress(f"{label}: from the run cache (run {run.key})")
        return run
    total = planned_steps(cfg, len(training_patches(cfg, train_data)))
    device = device_name(pick_device(cfg.train.device, dist_info()[2]))
    progress(f"{label}: training, {total} steps on {device} (run {run.key})")
    stop, t0 = threading.Event(), time.perf_counter()

    def watch(last: str | None = None) -> None:
        while not stop.wait(PROGRESS_EVERY):
            if (line := step_line(run.dir / "log.csv", total)) and line != last:
                progress(last := line)

    (watcher := threading.Thread(target=watch, daemon=True)).start()
    try:
        run = get_or_run(cfg, progress=False, manifests=manifests)  # progress goes here
    finally:
        stop.set()
        watcher.join()
    progress(f"{label}: done in {time.perf_counter() - t0:.0f} s")
    return run


def training_data(p: Params) -> list[dict]:
    """Per benchmark: its training set, found or missing (what it blocks): training_data.json."""
    rows, needed = [], plan.PLAN["needed_for"]
    for b, d in plan.datasets(p).items():
        cfg = plan.config_for(p, d)
        row = {"benchmark": b, "train": cfg.data.train, "needed_for": needed.get(b, "")}
        try:
            ds = open_data(cfg.data.train, cfg.data.root)
        except DerainError as e:
            rows.append(row | {"status": "missing", "why": str(e).splitlines()[0]})
            progress(f"training data {b}: missing ({rows[-1]['why']}); not run without it: "
                     f"{row['needed_for']}")  # fmt: skip
            continue
        expected = (split := CATALOG[b].splits.get("train")) and split.pairs
        partial = ds.partial or bool(expected and len(ds) < expected)
        rows.append(row | {"status": "found", "pairs": len(ds), "expected": expected,
                           "partial": partial})  # fmt: skip
        part = f" of {expected}, partial" if partial and expected else ""
        progress(f"training data {b}: {cfg.data.train} ({len(ds)} pairs{part})")
    plan.write_json(plan.results_dir(p.profile) / "training_data.json", rows)
    return rows


def _config(p: Params, d: str, method: str, *extra: str) -> Config:
    model, loss = plan.TRAINED[method]
    return plan.config_for(p, d, [f"model.name={model}", f"train.loss={loss}", *extra])


def main_plan(p: Params) -> list[tuple[str, str, str, Config]]:
    """(benchmark, data set, method, config) of every run :func:`train_all` takes."""
    return [(b, d, m, _config(p, d, m)) for b, d in plan.datasets(p).items()
            for m in plan.PLAN["train_plan"].get(b, ())]  # fmt: skip


def seed_plan(p: Params) -> list[tuple[str, str, str, Config]]:
    """The same of :func:`train_seeds`: the claims' trained methods, once per training seed."""
    wanted = {(m, c.benchmark) for c in CLAIMS if c.trained for m in (c.better, c.worse)}
    return [(b, d, m, _config(p, d, m, f"train.seed={seed}"))
            for b, d in plan.datasets(p).items() for m in plan.TRAINED if (m, b) in wanted
            for seed in profile_seeds(p.profile)]  # fmt: skip


def planned_runs(p: Params) -> list[tuple[str, Config]]:
    """(label, config) of every training run the notebooks need (01's, then 08's), once each."""
    out: dict[str, tuple[str, Config]] = {}
    for _, d, m, cfg in main_plan(p) + seed_plan(p):
        out.setdefault(canonical_json(cfg), (f"{m} {d} seed {cfg.train.seed}", cfg))
    return list(out.values())


def deal(costs: list[float], world: int) -> list[int]:
    """The process each run goes to: longest first, to the least loaded (then fewest runs)."""
    loads, counts, owner = [0.0] * world, [0] * world, [0] * len(costs)
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        r = min(range(world), key=lambda r: (loads[r], counts[r], r))
        owner[i], loads[r], counts[r] = r, loads[r] + costs[i], counts[r] + 1
    return owner


def run_cost(cfg: Config) -> float:
    """Patches a run trains on (its planned steps times the batch; 0 without its data)."""
    try:
        n = len(training_patches(cfg, open_data(cfg.data.train, cfg.data.root)))
        return float(planned_steps(cfg, n) * cfg.train.batch_size)
    except DerainError:
        return 0.0


def share_training(p: Params, log: Callable[[str], None] = progress) -> list[dict]:
    """This process's share of :func:`planned_runs` (:func:`deal`) trained, one row per run."""
    (rank, world, _), runs = dist_info(), planned_runs(p)
    owner = deal([run_cost(cfg) for _, cfg in runs], world) if world > 1 else [0] * len(runs)
    mine = [(i, label, cfg) for i, (label, cfg) in enumerate(runs) if owner[i] == rank]
    log(f"process {rank} of {world}: {len(mine)} of the {len(runs)} training runs")
    if owns := world > 1 and not dist.is_initialized():  # the slowest share may take hours
        dist.init_process_group("gloo", timeout=timedelta(days=30))
    rows = []
    try:
        with mock.patch.dict(os.environ, ALONE):
            for n, (i, label, cfg) in enumerate(mine, 1):
                before = find_run(cfg).status == "finished"
                run = train_run(f"process {rank} run {n}/{len(mine)} (#{i + 1}): {label}", cfg)
                row = {"index": i, "label": label, "rank": rank, "status": run}
                if isinstance(run, Run):
                    row |= {"status": "ok", "run": run.key, "trained": not before}
                rows.append(row)
        if world > 1:
            dist.barrier()
    finally:
        if owns:
            dist.destroy_process_group()
    return rows


def _trained(p: Params, todo: list[tuple[str, str, str, Config]], name: str) -> list[dict]:
    """Each run of ``todo`` trained (or from the run cache), as rows of ``run-state/<name>``."""
    rows = []
    for i, (b, d, m, cfg) in enumerate(todo, 1):
        model, loss = plan.TRAINED[m]
        run = train_run(f"model {i}/{len(todo)}: {model} {loss} {d} seed {cfg.train.seed}", cfg)
        row = {"method": m, "benchmark": b, "dataset": d, "model": model, "loss": loss,
               "seed": cfg.train.seed, "stand_in": cfg.data.train.startswith("embedded:"),
               "status": run if isinstance(run, str) else "ok"}  # fmt: skip
        if isinstance(run, Run):
            row |= {"run": run.key, "test": plan.test_spec(cfg), "run_dir": stored(run.dir),
                    "checkpoint": stored(run.checkpoint_path), "metrics": run.metrics,
                    "per_image_csv": stored(run.dir / "per_image.csv"),
                    "train_seconds": round(run.provenance.get("train_wall_s", 0.0), 1)}  # fmt: skip
        rows.append(row)
    plan.write_json(plan.work_dir(p.profile) / name, rows)
    return rows


def train_all(p: Params) -> list[dict]:
    """Step 01: the training data found, then every run of :func:`main_plan` (``runs.json``)."""
    training_data(p)
    return _trained(p, main_plan(p), "runs.json")


def load_runs(profile: str) -> list[dict]:
    """The rows :func:`train_all` wrote for ``profile``."""
    if not (path := plan.work_dir(profile) / "runs.json").is_file():
        raise DerainError(f"{path}: missing; run notebooks/01_train.ipynb first")
    return json.loads(path.read_text())


def train_seeds(p: Params) -> list[dict]:
    """Every run of :func:`seed_plan`, for the claims' seeds (``seeds.json``)."""
    return _trained(p, seed_plan(p), "seeds.json")
