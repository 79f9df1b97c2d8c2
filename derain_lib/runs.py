"""The run cache: every training or evaluation run lives in ``<results>/runs/<key>/``.

A run's key hashes its whole config, the manifests (file names + sha256) of its data,
for evaluation-only runs the sha256 of the weights, and the fingerprint of the code that
determines its result (:func:`code_fingerprint`), so asking again for the same run returns
the finished one without recomputing, an unfinished one resumes from its checkpoints, and
a run made by other code (say, before a bug fix) is never reused: it is *stale*
(``derain runs list`` says so, ``derain runs prune --stale`` removes it). A run folder
holds::

    config.yaml        the resolved config
    code.txt           the code fingerprint the run was made with
    log.csv            training loss per step, validation PSNR/SSIM per epoch
    checkpoints/       the last two training checkpoints
    model.pt           the final model (loadable by derain_lib.weights.load_model)
    per_image.csv      test-set scores (name, psnr, ssim); outputs/*.png when saved
    metrics.json       test-set means; written last: its presence marks a finished run
    provenance.json    git SHA, config hash, data manifests, package versions, device, times

The results root is the argument ``root``, else env ``DERAIN_RESULTS``, else
``<project>/results`` (the folder holding ``pyproject.toml`` above the working directory).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy
import numpy as np
import pandas as pd
import skimage
import torch
import yaml

from . import __version__
from .config import (
    Config,
    ConfigError,
    canonical_json,
    config_from_dict,
    config_hash,
    dump_config,
    validate,
)
from .data.fetch import sha256_file
from .data.sources import open_data
from .errors import DerainError
from .evaluate import evaluate
from .fsutil import atomic_write_text, locked, project_root, relative_within
from .metrics import score
from .train import dist_info, pick_device, train
from .weights import RELEASED, load_model, resolve

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CODE_FILE = "code.txt"


def results_root(root: str | Path | None = None) -> Path:
    if root is not None:
        return Path(root)
    return Path(os.environ.get("DERAIN_RESULTS") or project_root() / "results")


def stored(path: str | Path) -> str:
    """``path`` as the study's JSON records keep it: relative to :func:`results_root` (POSIX)
    when it lies inside, else absolute, so records do not depend on where the project is
    checked out. :func:`restored` reverses it."""
    return relative_within(path, results_root())


def restored(recorded: str) -> Path:
    """The path a :func:`stored` string names (an absolute one stays as it is)."""
    return results_root().resolve() / recorded


@dataclass
class Run:
    """One run folder. ``status`` is ``finished``, ``unfinished`` or ``new``."""

    dir: Path

    @property
    def key(self) -> str:
        return self.dir.name

    @property
    def config(self) -> Config:
        p = self.dir / "config.yaml"
        try:
            return config_from_dict(yaml.safe_load(p.read_text()))
        except (OSError, yaml.YAMLError, DerainError, TypeError, AttributeError) as e:
            raise DerainError(f"{p}: damaged run config ({str(e).splitlines()[0]})") from None

    @property
    def checkpoint_path(self) -> Path:
        """The final model file (``model.pt``), or the evaluated weights file."""
        prov = self.provenance
        if prov.get("weights"):
            return Path(prov["weights"]["path"])
        return self.dir / "model.pt"

    @property
    def metrics(self) -> dict:
        """``metrics.json``; ``{}`` when absent, a :class:`DerainError` when unreadable."""
        p = self.dir / "metrics.json"
        if not p.is_file():
            return {}
        try:
            m = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise DerainError(f"{p}: damaged ({e})") from None
        if not isinstance(m, dict) or not {"n", "psnr", "ssim"} <= set(m):
            raise DerainError(f"{p}: damaged (not the metrics of a finished run)")
        return m

    @property
    def damage(self) -> str | None:
        """What makes this run folder unusable (an unreadable config or metrics), or None."""
        for check in ("config", "metrics"):
            if (self.dir / ("config.yaml" if check == "config" else "metrics.json")).is_file():
                try:
                    getattr(self, check)
                except DerainError as e:
                    return str(e)
        return None

    @property
    def provenance(self) -> dict:
        p = self.dir / "provenance.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    @property
    def per_image(self):
        """Test-set scores as a pandas DataFrame (name, psnr, ssim)."""
        return pd.read_csv(self.dir / "per_image.csv")

    @property
    def log(self):
        """``log.csv`` as a pandas DataFrame (empty for evaluation-only runs)."""
        p = self.dir / "log.csv"
        return pd.read_csv(p) if p.is_file() else pd.DataFrame()

    @property
    def code(self) -> str | None:
        """The code fingerprint the run was made with (None: made before fingerprints)."""
        p = self.dir / CODE_FILE
        return p.read_text().strip() if p.is_file() else None

    @property
    def stale(self) -> bool:
        """Made by other code than the current: its key can no longer be asked for."""
        return self.code != code_fingerprint()

    @property
    def degenerate(self) -> str | None:
        """Why a finished training run is no result, or None: its training loss never moved,
        or its test output equals its input (PSNR within :data:`SAME_AS_INPUT_DB` of the
        rainy input's on every test image; the input's scores cached as ``input_psnr.csv``
        in the run folder)."""
        if self.status != "finished" or self.config.model.weights is not None:
            return None
        log = self.log
        losses = log["loss"].dropna() if "loss" in log else pd.Series(dtype=float)
        if len(losses) >= 2 and np.ptp(losses) <= 1e-9 * max(1.0, abs(float(losses.iloc[0]))):
            return f"training loss did not move ({float(losses.iloc[0]):.6g} in all logs)"
        ours = self.per_image.set_index("name").psnr
        cache = self.dir / "input_psnr.csv"
        if not cache.is_file():
            c = self.config
            ds = open_data(c.data.test, c.data.root)
            index = {p.name: i for i, p in enumerate(ds.pairs)}
            rows = ["name,psnr"]
            for name in (n for n in ours.index if n in index):
                rainy, clean = ds.load(index[name])
                rows.append(f"{name},{score(rainy, clean)[0]!r}")
            atomic_write_text(cache, "\n".join(rows) + "\n")
        rainy = pd.read_csv(cache).set_index("name").psnr
        common = ours.index.intersection(rainy.index)
        if len(common) and ((ours[common] - rainy[common]).abs() <= SAME_AS_INPUT_DB).all():
            return (
                f"output equals input (PSNR within {SAME_AS_INPUT_DB} dB of the input's on "
                f"all {len(common)} test images)"
            )
        return None

    @property
    def status(self) -> str:
        """``finished``, ``unfinished``, ``new``, or ``damaged`` (see :attr:`damage`)."""
        if self.damage:
            return "damaged"
        if (self.dir / "metrics.json").is_file():
            return "finished"
        return "unfinished" if (self.dir / "config.yaml").is_file() else "new"


#: A trained run within this many dB of its input on every test image outputs its input.
SAME_AS_INPUT_DB = 0.01

#: The pipeline's own outputs: changes there do not make the code ``+dirty``.
OUTPUT_DIRS = ("results", "figures")


def git_sha() -> str:
    """HEAD of the project's repository, ``+dirty`` when tracked files other than the
    pipeline's outputs (:data:`OUTPUT_DIRS`) are modified."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                *("git", "status", "--porcelain", "--untracked-files=no", "--", "."),
                *(f":(exclude){d}" for d in OUTPUT_DIRS),
            ],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions() -> dict:
    return {
        "derain": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scikit-image": skimage.__version__,
    }


def _weights_info(cfg: Config, weights_dir: str | Path | None) -> dict | None:
    if cfg.model.weights is None:
        return None
    path = resolve(cfg.model.weights, weights_dir)
    w = RELEASED.get(cfg.model.weights)
    return {
        "spec": cfg.model.weights,
        "path": str(path),
        "sha256": w.sha256 if w else sha256_file(path),
    }


def data_manifests(cfg: Config) -> dict:
    """sha256 manifests of the run's test data and (training runs) training data."""
    out = {"test": open_data(cfg.data.test, cfg.data.root).manifest_sha256()}
    if cfg.model.weights is None:
        out["train"] = open_data(cfg.data.train, cfg.data.root).manifest_sha256()
    return out


#: The sources (under ``derain_lib/``) that determine a run's result: model, loss, data,
#: training, scoring and config code. Their fingerprint is part of every run key.
CODE_SOURCES = (
    "models",
    "losses.py",
    "data/patches.py",
    "data/synth.py",
    "data/embedded.py",
    "data/datasets.py",
    "data/io.py",
    "train.py",
    "evaluate.py",
    "metrics.py",
    "config.py",
)


def code_fingerprint(sources: tuple[str, ...] | None = None) -> str:
    """12 hex digits over the package version and the bytes of ``sources`` (files or folders
    under ``derain_lib/``; None: :data:`CODE_SOURCES`, what a run's result depends on)."""
    pkg = Path(__file__).resolve().parent
    h = hashlib.sha256(__version__.encode())
    for rel in CODE_SOURCES if sources is None else sources:
        p = pkg / rel
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(f.relative_to(pkg).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def run_key(cfg: Config, manifests: dict, weights: dict | None = None) -> str:
    """12 hex digits over the canonical config, the data manifests, the weights' sha256 and
    the code fingerprint."""
    parts = {
        "config": canonical_json(cfg),
        "data": manifests,
        "weights": (weights or {}).get("sha256"),
        "code": code_fingerprint(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def find_run(
    cfg: Config, root: str | Path | None = None, weights_dir: str | Path | None = None
) -> Run:
    """The run folder ``cfg`` maps to (it may not exist yet)."""
    key = run_key(cfg, data_manifests(cfg), _weights_info(cfg, weights_dir))
    return Run(results_root(root) / "runs" / key)


def get_or_run(
    cfg: Config,
    root: str | Path | None = None,
    progress: bool = True,
    weights_dir: str | Path | None = None,
    wait: bool = False,
) -> Run:
    """The finished run of ``cfg``: from the cache, resumed, or computed now.

    Training runs train (resuming from checkpoints) then evaluate on ``cfg.data.test``;
    runs with ``cfg.model.weights`` only evaluate those weights. Under ``torchrun`` every
    process trains; rank 0 evaluates and writes the results.

    One process at a time works in a run folder: it holds an exclusive lock there
    (:func:`derain_lib.fsutil.locked`); another is refused naming the holder, or waits
    (``wait``). A damaged ``metrics.json`` is set aside and the run completed again; a
    folder this call created is removed again if the config cannot train.
    """
    validate(cfg)
    manifests = data_manifests(cfg)
    weights = _weights_info(cfg, weights_dir)
    run = Run(results_root(root) / "runs" / run_key(cfg, manifests, weights))
    if run.status == "finished":
        return run
    rank = dist_info()[0]
    fresh = not run.dir.exists()
    lock = locked(run.dir, wait) if rank == 0 else contextlib.nullcontext()
    try:
        with lock:
            if run.status == "finished":  # finished by the process we waited for
                return run
            return _complete(run, cfg, manifests, weights, progress, weights_dir)
    except ConfigError:
        if fresh and rank == 0:
            shutil.rmtree(run.dir, ignore_errors=True)
        raise


def _complete(
    run: Run,
    cfg: Config,
    manifests: dict,
    weights: dict | None,
    progress: bool,
    weights_dir: str | Path | None,
) -> Run:
    """Train (or resume) and evaluate ``run``; the caller holds its lock."""
    rank = dist_info()[0]
    metrics_file = run.dir / "metrics.json"
    if rank == 0 and metrics_file.is_file() and run.damage:
        aside = metrics_file.with_name("metrics.json.corrupt")
        os.replace(metrics_file, aside)
        print(f"derain: warning: {run.damage}; set aside as {aside}", file=sys.stderr)
    if rank == 0:
        atomic_write_text(run.dir / "config.yaml", dump_config(cfg))
        atomic_write_text(run.dir / CODE_FILE, code_fingerprint() + "\n")
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.perf_counter()
    train_info: dict = {}
    if weights is None:
        outcome = train(cfg, run.dir, progress=progress)
        if rank != 0:
            return run
        model_path = outcome.model_path
        train_info = {
            "global_step": outcome.global_step,
            "epochs_done": outcome.epochs_done,
            "train_wall_s": outcome.elapsed_s,
            "resumed_from": str(outcome.resumed_from) if outcome.resumed_from else None,
            "last_val": outcome.last_val,
            "world_size": outcome.world_size,
        }
    else:
        model_path = Path(weights["path"])
    device = pick_device(cfg.train.device)
    loaded = load_model(model_path, cfg.model.name, weights_dir=weights_dir)
    model = loaded.model.to(device)
    test = open_data(cfg.data.test, cfg.data.root)
    t_eval = time.perf_counter()
    result = evaluate(
        model,
        test,
        out_dir=run.dir,
        tile=cfg.eval.tile,
        overlap=cfg.eval.overlap,
        quantize_mode=cfg.eval.quantize,
        max_images=cfg.eval.max_images,
        save_images=cfg.eval.save_images,
        progress=progress,
        stages=cfg.eval.stages,
        precision=cfg.eval.precision,
    )
    eval_s = time.perf_counter() - t_eval
    prov = {
        "run": run.key,
        "config_hash": config_hash(cfg),
        "profile": cfg.name,
        "dataset": cfg.dataset,
        "git_sha": git_sha(),
        "code_fingerprint": code_fingerprint(),
        "data_manifests": manifests,
        "weights": weights,
        "model_sha256": loaded.sha256,
        "weights_config_override": loaded.config_override,
        "packages": package_versions(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_s_this_session": time.perf_counter() - t0,
        "eval_wall_s": eval_s,
        "wall_s": train_info.get("train_wall_s", 0.0) + eval_s,
        **train_info,
    }
    atomic_write_text(run.dir / "provenance.json", json.dumps(prov, indent=1))
    if not result.n:
        raise DerainError(f"{cfg.data.test}: no test image was scored; the run is not finished")
    metrics = {**result.summary(), "test": cfg.data.test, "per_image_csv": "per_image.csv"}
    atomic_write_text(run.dir / "metrics.json", json.dumps(metrics, indent=1))
    return run


def list_runs(root: str | Path | None = None) -> list[Run]:
    """Every run folder under the results root, oldest first."""
    d = results_root(root) / "runs"
    if not d.is_dir():
        return []
    dirs = [p for p in d.iterdir() if (p / "config.yaml").is_file()]
    return [Run(p) for p in sorted(dirs, key=lambda p: p.stat().st_mtime)]


def _flat(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _weights_name(spec: str) -> str:
    """A weights spec as a reader knows it: a released name, ``run <key>`` for a run's own
    ``model.pt``, else the file name."""
    p = Path(spec)
    if spec in RELEASED or p.name != "model.pt":
        return p.name
    return f"run {p.parent.name[:10]}"


def run_fields(run: Run) -> dict[str, str]:
    """What tells runs apart, as display strings: ``profile``, ``data`` (the training data
    set; for an evaluation-only run its test data), ``model``, ``loss`` (for an
    evaluation-only run: the weights it evaluated), ``seed`` (empty for evaluation-only
    runs) and ``status`` (:attr:`Run.status`, ``, stale`` added when made by other code)."""
    if run.damage:
        return dict.fromkeys(("profile", "data", "model", "loss", "seed"), "?") | {
            "status": "damaged"
        }
    c = run.config
    status = run.status + (", stale" if run.stale else "")
    if c.model.weights is None:
        data, loss, seed = c.dataset, f"loss {c.train.loss}", f"seed {c.train.seed}"
    else:
        test = c.data.test if c.data.test.startswith("embedded:") else Path(c.data.test).name
        data, loss, seed = f"test {test}", f"weights {_weights_name(c.model.weights)}", ""
    return {"profile": c.name, "data": data, "model": c.model.name, "loss": loss,
            "seed": seed, "status": status}  # fmt: skip


def run_labels(runs: list[Run], status: bool = True) -> list[str]:
    """One label per run (``derain runs list`` and the explorer's weights list): the
    :func:`run_fields` joined (``status``: with the status); where runs share those, the
    config values that differ between them (``train.max_steps=2``) are added, and where
    even those agree (same config, other data or code), the run key."""
    keep = [
        k for k in ("profile", "data", "model", "loss", "seed", "status") if status or k != "status"
    ]
    fields = [run_fields(r) for r in runs]
    base = [" · ".join(f[k] for k in keep if f[k]) for f in fields]
    out = list(base)
    for label in {b for b in base if base.count(b) > 1}:
        group = [i for i, b in enumerate(base) if b == label]
        flat = {i: {} if runs[i].damage else _flat(runs[i].config.to_dict()) for i in group}
        keys = sorted({k for i in group for k in flat[i]})
        differ = [k for k in keys if len({repr(flat[i].get(k)) for i in group}) > 1]
        for i in group:
            out[i] = " · ".join([label, *(f"{k}={flat[i].get(k)}" for k in differ)])
    return [f"{o} · {r.key}" if out.count(o) > 1 else o for o, r in zip(out, runs, strict=True)]


def open_run(key: str, root: str | Path | None = None) -> Run:
    """A run by its key (or a unique prefix of it)."""
    matches = [r for r in list_runs(root) if r.key.startswith(key)]
    if len(matches) != 1:
        where = results_root(root) / "runs"
        what = "no run" if not matches else f"{len(matches)} runs"
        raise DerainError(f"{where}: {what} matching {key!r}")
    return matches[0]
