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

:meth:`Run.load` reads a run folder once into a frozen :class:`Run`. The results root is
the argument ``root``, else env ``DERAIN_RESULTS``, else ``<project>/results``
(:func:`derain_lib.roots.results_root`, the one resolver).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy
import numpy as np
import pandas as pd
import skimage
import torch
import yaml

from . import __version__
from .backends import select
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
from .fsutil import atomic_write_text, locked, relative_within
from .metrics import score_pair
from .roots import PACKAGE_DIR, results_root, source_root
from .train import dist_info, list_checkpoints, pick_device, train
from .weights import RELEASED, load_model, resolve

CODE_FILE = "code.txt"


def stored(path: str | Path) -> str:
    """``path`` as the study's JSON records keep it: relative to :func:`results_root` (POSIX)
    when it lies inside, else absolute, so records do not depend on where the project is
    checked out. :func:`restored` reverses it."""
    return relative_within(path, results_root())


def restored(recorded: str) -> Path:
    """The path a :func:`stored` string names (an absolute one stays as it is)."""
    return results_root().resolve() / recorded


def _read_config(p: Path) -> Config:
    try:
        return config_from_dict(yaml.safe_load(p.read_text()))
    except (OSError, yaml.YAMLError, DerainError, TypeError, AttributeError) as e:
        raise DerainError(f"{p}: damaged run config ({str(e).splitlines()[0]})") from None


def _read_json(p: Path) -> dict:
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise DerainError(f"{p}: damaged ({e})") from None
    if not isinstance(m, dict):
        raise DerainError(f"{p}: damaged (not a JSON object)")
    return m


def _read_metrics(p: Path) -> dict:
    m = _read_json(p)
    if not {"n", "psnr", "ssim"} <= set(m):
        raise DerainError(f"{p}: damaged (not the metrics of a finished run)")
    return m


@dataclass(frozen=True)
class Run:
    """One run folder as :meth:`load` read it, once: a snapshot that never touches the disk
    again (but for :attr:`per_image` and :attr:`log`, read on first use). A later change to
    the folder needs a new :meth:`load`.

    ``status`` is ``finished``, ``unfinished``, ``new`` or ``damaged`` (see ``damage``)."""

    dir: Path
    #: The resolved config; None for a new run folder, or when ``config.yaml`` is damaged.
    config: Config | None = None
    #: ``metrics.json``; ``{}`` when absent or damaged.
    metrics: dict = field(default_factory=dict)
    #: ``provenance.json``; ``{}`` when absent or damaged.
    provenance: dict = field(default_factory=dict)
    #: The code fingerprint the run was made with (None: made before fingerprints).
    code: str | None = None
    #: What makes this run folder unusable (an unreadable config, metrics or provenance;
    #: completing the run again repairs it), or None.
    damage: str | None = None
    status: str = "new"

    @classmethod
    def load(cls, dir: str | Path) -> Run:
        """Read the run folder ``dir`` (which may not exist yet)."""
        d = Path(dir)
        cfg_file, metrics_file, code_file = d / "config.yaml", d / "metrics.json", d / CODE_FILE
        prov_file = d / "provenance.json"
        config, metrics, prov, damage = None, {}, {}, None
        try:
            if cfg_file.is_file():
                config = _read_config(cfg_file)
            if metrics_file.is_file():
                metrics = _read_metrics(metrics_file)
            if prov_file.is_file():
                prov = _read_json(prov_file)
        except DerainError as e:
            damage = str(e)
        if damage:
            status = "damaged"
        elif metrics_file.is_file():
            status = "finished"
        else:
            status = "unfinished" if cfg_file.is_file() else "new"
        return cls(
            dir=d,
            config=config,
            metrics=metrics,
            provenance=prov,
            code=code_file.read_text().strip() if code_file.is_file() else None,
            damage=damage,
            status=status,
        )

    @property
    def key(self) -> str:
        return self.dir.name

    @property
    def checkpoint_path(self) -> Path:
        """The final model file (``model.pt``), or the evaluated weights file."""
        if self.provenance.get("weights"):
            return Path(self.provenance["weights"]["path"])
        return self.dir / "model.pt"

    @cached_property
    def per_image(self) -> pd.DataFrame:
        """Test-set scores as a pandas DataFrame (name, psnr, ssim)."""
        return pd.read_csv(self.dir / "per_image.csv")

    @cached_property
    def log(self) -> pd.DataFrame:
        """``log.csv`` as a pandas DataFrame (empty for evaluation-only runs)."""
        p = self.dir / "log.csv"
        return pd.read_csv(p) if p.is_file() else pd.DataFrame()

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
                rows.append(f"{name},{score_pair(rainy, clean)[0]!r}")
            atomic_write_text(cache, "\n".join(rows) + "\n")
        rainy = pd.read_csv(cache).set_index("name").psnr
        common = ours.index.intersection(rainy.index)
        if len(common) and ((ours[common] - rainy[common]).abs() <= SAME_AS_INPUT_DB).all():
            return (
                f"output equals input (PSNR within {SAME_AS_INPUT_DB} dB of the input's on "
                f"all {len(common)} test images)"
            )
        return None


#: A trained run within this many dB of its input on every test image outputs its input.
SAME_AS_INPUT_DB = 0.01

#: The pipeline's own outputs: changes there do not make the code ``+dirty``.
OUTPUT_DIRS = ("results", "figures")


def git_sha() -> str:
    """HEAD of the source checkout derain runs from (:func:`derain_lib.roots.source_root`),
    ``+dirty`` when tracked files other than the pipeline's outputs (:data:`OUTPUT_DIRS`) are
    modified; ``unknown`` for an installed package or without git."""
    checkout = source_root()
    if checkout is None:
        return "unknown"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=checkout,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                *("git", "status", "--porcelain", "--untracked-files=no", "--", "."),
                *(f":(exclude){d}" for d in OUTPUT_DIRS),
            ],
            cwd=checkout,
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
    under ``derain_lib/``; None: :data:`CODE_SOURCES`, what a run's result depends on).
    Each file is read and hashed again only when its size or modification time changed."""
    files = []
    for rel in CODE_SOURCES if sources is None else sources:
        p = PACKAGE_DIR / rel
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    stamp = (__version__, *((f, f.stat().st_mtime_ns, f.stat().st_size) for f in files))
    if stamp not in _FINGERPRINTS:
        h = hashlib.sha256(__version__.encode())
        for f in files:
            h.update(f.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + f.read_bytes())
        _FINGERPRINTS[stamp] = h.hexdigest()[:12]
    return _FINGERPRINTS[stamp]


_FINGERPRINTS: dict[tuple, str] = {}


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
    cfg: Config,
    root: str | Path | None = None,
    weights_dir: str | Path | None = None,
    manifests: dict | None = None,
) -> Run:
    """The run folder ``cfg`` maps to (it may not exist yet); ``manifests``: its
    :func:`data_manifests` when the caller has them already (the data is hashed once)."""
    manifests = data_manifests(cfg) if manifests is None else manifests
    key = run_key(cfg, manifests, _weights_info(cfg, weights_dir))
    return Run.load(results_root(root) / "runs" / key)


def get_or_run(
    cfg: Config,
    root: str | Path | None = None,
    progress: bool = True,
    weights_dir: str | Path | None = None,
    wait: bool = False,
    manifests: dict | None = None,
    backend: str = "torch",
) -> Run:
    """The finished run of ``cfg``: from the cache, resumed, or computed now (``manifests``:
    as for :func:`find_run`; ``backend``: what evaluates, :func:`derain_lib.backends.select`,
    recorded in ``provenance.json``; not in the run key, since fp32 scores do not depend
    on it within 1e-4 dB).

    Training runs train (resuming from checkpoints) then evaluate on ``cfg.data.test``;
    runs with ``cfg.model.weights`` only evaluate those weights. Under ``torchrun`` every
    process trains; rank 0 evaluates and writes the results.

    One process at a time works in a run folder: it holds an exclusive lock there
    (:func:`derain_lib.fsutil.locked`); another is refused naming the holder, or waits
    (``wait``). A damaged ``metrics.json`` is set aside and the run completed again; a
    folder this call created is removed again if the config cannot train or the evaluation
    is refused.
    """
    validate(cfg)
    manifests = data_manifests(cfg) if manifests is None else manifests
    weights = _weights_info(cfg, weights_dir)
    run = Run.load(results_root(root) / "runs" / run_key(cfg, manifests, weights))
    if run.status == "finished":
        return run
    rank = dist_info()[0]
    fresh = not run.dir.exists()
    lock = locked(run.dir, wait) if rank == 0 else contextlib.nullcontext()
    try:
        with lock:
            run = Run.load(run.dir)
            if run.status == "finished":  # finished by the process we waited for
                return run
            _complete(run, cfg, manifests, weights, progress, weights_dir, backend)
            return Run.load(run.dir)
    except DerainError as e:  # a refused evaluation holds nothing worth keeping
        if fresh and rank == 0 and (isinstance(e, ConfigError) or cfg.model.weights):
            shutil.rmtree(run.dir, ignore_errors=True)
        raise


def _log(line: str) -> None:
    print(line, file=sys.stderr)


def _complete(
    run: Run,
    cfg: Config,
    manifests: dict,
    weights: dict | None,
    progress: bool,
    weights_dir: str | Path | None,
    backend: str = "torch",
) -> None:
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
            return
        model_path = outcome.model_path
        train_info = {
            "global_step": outcome.global_step,
            "epochs_done": outcome.epochs_done,
            "train_wall_s": outcome.elapsed_s,
            "resumed_from": str(outcome.resumed_from) if outcome.resumed_from else None,
            "last_val": outcome.last_val,
            "world_size": outcome.world_size,
            "training_setup": outcome.setup,
        }
    else:
        model_path = Path(weights["path"])
    device = pick_device(cfg.train.device)
    loaded = load_model(model_path, cfg.model.name, weights_dir=weights_dir)
    loaded.model.to(device)
    model, precision = select(
        loaded.model, loaded.sha256, backend, cfg.eval.precision, cfg.eval.stages, _log
    )
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
        precision=precision,
        stage_scores=weights is not None,  # an evaluation-only run: every stage's scores too
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
        "backend": f"{getattr(getattr(model, 'graph', None), 'backend', 'torch')} {precision}",
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


def list_runs(root: str | Path | None = None) -> list[Run]:
    """Every run folder under the results root, oldest first."""
    d = results_root(root) / "runs"
    if not d.is_dir():
        return []
    dirs = [p for p in d.iterdir() if (p / "config.yaml").is_file()]
    return [Run.load(p) for p in sorted(dirs, key=lambda p: p.stat().st_mtime)]


class NoSuchRun(DerainError):
    """Not exactly one run folder under ``where`` matches ``key``: ``matches`` (their keys)."""

    def __init__(self, key: str, where: Path, matches: list[str]) -> None:
        self.key, self.where, self.matches = key, where, matches
        what = "no run" if not matches else f"{len(matches)} runs"
        super().__init__(f"{where}: {what} matching {key!r}")


def open_run(key: str, root: str | Path | None = None) -> Run:
    """A run by its key (or a unique prefix of it); only that run folder is read."""
    where = results_root(root) / "runs"
    found = sorted(where.glob(f"{glob.escape(key)}*/config.yaml")) if where.is_dir() else []
    if len(found) != 1:
        raise NoSuchRun(key, where, [f.parent.name for f in found])
    return Run.load(found[0].parent)


def run_state(run: Run) -> dict:
    """What ``derain runs show`` says of a run besides its metrics: for an unfinished run
    its last logged step and its last checkpoint (``None`` when it has none yet: it
    starts from step 0 when trained again), so an interrupted run is not shown empty."""
    if run.status == "finished":
        return {}
    ckpts = list_checkpoints(run.dir)
    log = run.log
    step = int(log["step"].max()) if "step" in log and len(log) else None
    last = ckpts[0] if ckpts else None
    if last is not None:
        ckpt_step = int(last.stem.split("-")[1])
        step = ckpt_step if step is None else max(step, ckpt_step)
    return {
        "step": step or 0,
        "last_checkpoint": str(last) if last else None,
        "resumes": f"from step {int(last.stem.split('-')[1])}" if last else "from step 0",
    }
