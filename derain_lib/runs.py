"""The run cache: every run lives in ``<results>/runs/<key>/``, its key the hash of its config,
data, weights and code; ``metrics.json``, written last, marks a finished run."""

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
from .fsutil import PACKAGE_DIR, atomic_write_text, locked, results_root, source_root
from .metrics import score_pair
from .train import dist_info, list_checkpoints, pick_device, train
from .weights import RELEASED, load_model, resolve

CODE_FILE = "code.txt"


def stored(path: str | Path) -> str:
    """``path`` as the records keep it: relative to :func:`results_root` when inside it."""
    p, root = Path(path).resolve(), results_root().resolve()
    return p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)


def restored(recorded: str) -> Path:
    """The path a :func:`stored` string names."""
    return results_root().resolve() / recorded


def _read(p: Path) -> Config | dict | None:
    """A run folder's ``config.yaml`` or JSON file; None when absent, one line when damaged."""
    if not p.is_file():
        return None
    try:
        if p.suffix == ".yaml":
            return config_from_dict(yaml.safe_load(p.read_text()))
        m = json.loads(p.read_text())
        if not isinstance(m, dict):
            raise ValueError("not a JSON object")
        if p.name == "metrics.json" and not {"n", "psnr", "ssim"} <= set(m):
            raise ValueError("not the metrics of a finished run")
        return m
    except (OSError, ValueError, yaml.YAMLError, DerainError, TypeError, AttributeError) as e:
        raise DerainError(f"{p}: damaged ({str(e).splitlines()[0]})") from None


@dataclass(frozen=True)
class Run:
    """One run folder as :meth:`load` read it. ``status``: ``finished``, ``unfinished``,
    ``new`` or ``damaged`` (``damage`` says why; completing the run again repairs it)."""

    dir: Path
    config: Config | None = None
    metrics: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    code: str | None = None
    damage: str | None = None
    status: str = "new"

    @classmethod
    def load(cls, dir: str | Path) -> Run:
        """Read the run folder ``dir`` (which may not exist yet)."""
        d = Path(dir)
        got: dict = {"dir": d}
        try:
            for name in ("config.yaml", "metrics.json", "provenance.json"):
                if (value := _read(d / name)) is not None:
                    got[name.split(".")[0]] = value
        except DerainError as e:
            got["damage"] = str(e)
        if (d / CODE_FILE).is_file():
            got["code"] = (d / CODE_FILE).read_text().strip()
        started = "unfinished" if (d / "config.yaml").is_file() else "new"
        finished = "finished" if (d / "metrics.json").is_file() else started
        return cls(**got, status="damaged" if "damage" in got else finished)

    @property
    def key(self) -> str:
        return self.dir.name

    @property
    def checkpoint_path(self) -> Path:
        """The final model file (``model.pt``), or the evaluated weights file."""
        w = self.provenance.get("weights")
        return Path(w["path"]) if w else self.dir / "model.pt"

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
        """Why a finished training run is no result, or None: its loss never moved, or its
        output equals its input (the input's scores cached as ``input_psnr.csv``)."""
        if self.status != "finished" or self.config.model.weights is not None:
            return None
        losses = self.log.get("loss", pd.Series(dtype=float)).dropna()
        if len(losses) >= 2 and np.ptp(losses) <= 1e-9 * max(1.0, abs(float(losses.iloc[0]))):
            return f"training loss did not move ({float(losses.iloc[0]):.6g} in all logs)"
        ours = self.per_image.set_index("name").psnr
        cache = self.dir / "input_psnr.csv"
        if not cache.is_file():
            ds = open_data(self.config.data.test, self.config.data.root)
            index = {p.name: i for i, p in enumerate(ds.pairs)}
            names = [n for n in ours.index if n in index]
            psnr = [score_pair(*ds.load(index[n]))[0] for n in names]
            table = pd.DataFrame({"name": names, "psnr": psnr})
            atomic_write_text(cache, table.to_csv(index=False))
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
#: The sources (under ``derain_lib/``) that determine a run's result, in every run key.
CODE_SOURCES = ("models", "losses.py", "data/patches.py", "data/synth.py", "data/embedded.py",
                "data/datasets.py", "data/io.py", "train.py", "evaluate.py", "metrics.py",
                "config.py")  # fmt: skip
_FINGERPRINTS: dict[tuple, str] = {}


def git_sha() -> str:
    """HEAD of the source checkout, ``+dirty`` when tracked files outside :data:`OUTPUT_DIRS`
    are modified; ``unknown`` without one."""
    if (checkout := source_root()) is None:
        return "unknown"
    status = ["git", "status", "--porcelain", "--untracked-files=no", "--", "."]
    status += [f":(exclude){d}" for d in OUTPUT_DIRS]
    try:
        sha, dirty = (
            subprocess.run(cmd, cwd=checkout, capture_output=True, text=True, check=True).stdout
            for cmd in (["git", "rev-parse", "HEAD"], status)
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha.strip() + ("+dirty" if dirty.strip() else "")


def data_manifests(cfg: Config) -> dict:
    """sha256 manifests of the run's test data and (training runs) training data."""
    sets = {"test": cfg.data.test} | (
        {"train": cfg.data.train} if cfg.model.weights is None else {}
    )
    return {k: open_data(name, cfg.data.root).manifest_sha256() for k, name in sets.items()}


def code_fingerprint(sources: tuple[str, ...] | None = None) -> str:
    """12 hex digits over the package version and ``sources`` (default :data:`CODE_SOURCES`),
    hashed again only when a file's size or modification time changed."""
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


def _locate(cfg: Config, root, weights_dir, manifests: dict | None) -> tuple[Run, dict, dict]:
    """The run of ``cfg``: its key is 12 hex digits over the config, the data manifests, the
    weights' sha256 and the code."""
    manifests = data_manifests(cfg) if manifests is None else manifests
    weights = None
    if (spec := cfg.model.weights) is not None:
        path, w = resolve(spec, weights_dir), RELEASED.get(spec)
        weights = {"spec": spec, "path": str(path), "sha256": w.sha256 if w else sha256_file(path)}
    parts = {"config": canonical_json(cfg), "data": manifests,
             "weights": (weights or {}).get("sha256"), "code": code_fingerprint()}  # fmt: skip
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]
    return Run.load(results_root(root) / "runs" / key), manifests, weights


def find_run(
    cfg: Config, root: str | Path | None = None, weights_dir: str | Path | None = None,
    manifests: dict | None = None,
) -> Run:  # fmt: skip
    """The run folder ``cfg`` maps to (it may not exist yet); ``manifests``: given when known."""
    return _locate(cfg, root, weights_dir, manifests)[0]


def get_or_run(
    cfg: Config, root: str | Path | None = None, progress: bool = True,
    weights_dir: str | Path | None = None, wait: bool = False, manifests: dict | None = None,
    backend: str | None = None,
) -> Run:  # fmt: skip
    """The finished run of ``cfg``: cached, resumed or computed now, one process at a time
    (``wait``: for the holder). ``backend`` (default ``$DERAIN_BACKEND``, else torch) is
    recorded, not in the key: every backend scores fp32 within 1e-4 dB of eager."""
    run, manifests, weights = _locate(validate(cfg), root, weights_dir, manifests)
    if run.status == "finished":
        return run
    rank = dist_info()[0]
    fresh = not run.dir.exists()
    try:
        with locked(run.dir, wait) if rank == 0 else contextlib.nullcontext():
            run = Run.load(run.dir)
            if run.status != "finished":  # else finished by the process we waited for
                backend = backend or os.environ.get("DERAIN_BACKEND") or "torch"
                _complete(run, cfg, manifests, weights, progress, weights_dir, backend)
            return Run.load(run.dir)
    except DerainError as e:  # a refused evaluation holds nothing worth keeping
        if fresh and rank == 0 and (isinstance(e, ConfigError) or cfg.model.weights):
            shutil.rmtree(run.dir, ignore_errors=True)
        raise


def _complete(
    run: Run, cfg: Config, manifests: dict, weights: dict | None, progress: bool,
    weights_dir: str | Path | None, backend: str,
) -> None:  # fmt: skip
    rank = dist_info()[0]
    metrics_file = run.dir / "metrics.json"
    if rank == 0:
        if metrics_file.is_file() and run.damage:
            aside = metrics_file.with_name("metrics.json.corrupt")
            os.replace(metrics_file, aside)
            print(f"derain: warning: {run.damage}; set aside as {aside}", file=sys.stderr)
        atomic_write_text(run.dir / "config.yaml", dump_config(cfg))
        atomic_write_text(run.dir / CODE_FILE, code_fingerprint() + "\n")
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.perf_counter()
    train_info = train(cfg, run.dir, progress=progress) if weights is None else {}
    if rank != 0:
        return
    model_path = Path(weights["path"]) if weights else run.dir / "model.pt"
    device = pick_device(cfg.train.device)
    loaded = load_model(model_path, cfg.model.name, weights_dir=weights_dir)
    loaded.model.to(device)
    e = cfg.eval
    model, precision = select(loaded.model, loaded.sha256, backend, e.precision, e.stages,
                              lambda line: print(line, file=sys.stderr))  # fmt: skip
    t_eval = time.perf_counter()
    result = evaluate(
        model, open_data(cfg.data.test, cfg.data.root), out_dir=run.dir, tile=e.tile,
        overlap=e.overlap, quantize_mode=e.quantize, max_images=e.max_images,
        save_images=e.save_images, progress=progress, stages=e.stages, precision=precision,
        stage_scores=weights is not None,  # an evaluation-only run: every stage's scores too
    )  # fmt: skip
    eval_s = time.perf_counter() - t_eval
    prov = {
        "run": run.key, "config_hash": config_hash(cfg), "profile": cfg.name,
        "dataset": cfg.dataset, "git_sha": git_sha(), "code_fingerprint": code_fingerprint(),
        "data_manifests": manifests, "weights": weights, "model_sha256": loaded.sha256,
        "weights_config_override": loaded.config_override,
        "packages": {"derain": __version__, "python": platform.python_version(),
                     "torch": torch.__version__, "numpy": np.__version__,
                     "scikit-image": skimage.__version__},
        "device": str(device),
        "backend": f"{getattr(getattr(model, 'graph', None), 'backend', 'torch')} {precision}",
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "host": socket.gethostname(), "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_s_this_session": time.perf_counter() - t0, "eval_wall_s": eval_s,
        "wall_s": train_info.get("train_wall_s", 0.0) + eval_s, **train_info,
    }  # fmt: skip
    atomic_write_text(run.dir / "provenance.json", json.dumps(prov, indent=1))
    if not result.n:
        raise DerainError(f"{cfg.data.test}: no test image was scored; the run is not finished")
    metrics = {**result.summary(), "test": cfg.data.test, "per_image_csv": "per_image.csv"}
    atomic_write_text(metrics_file, json.dumps(metrics, indent=1))


def list_runs(root: str | Path | None = None) -> list[Run]:
    """Every run folder under the results root, oldest first."""
    dirs = [p.parent for p in (results_root(root) / "runs").glob("*/config.yaml")]
    return [Run.load(p) for p in sorted(dirs, key=lambda p: p.stat().st_mtime)]


def open_run(key: str, root: str | Path | None = None) -> Run:
    """A run by its key (or a unique prefix of it); only that run folder is read."""
    where = results_root(root) / "runs"
    found = sorted(where.glob(f"{glob.escape(key)}*/config.yaml"))
    if len(found) != 1:
        what = f"{len(found)} runs" if found else "no run"
        raise DerainError(f"{where}: {what} matching {key!r}")
    return Run.load(found[0].parent)


def run_state(run: Run) -> dict:
    """What ``derain runs show`` says of an unfinished run: its last step and checkpoint."""
    if run.status == "finished":
        return {}
    last = next(iter(list_checkpoints(run.dir)), None)
    at = int(last.stem.split("-")[1]) if last else 0
    logged = int(run.log["step"].max()) if "step" in run.log and len(run.log) else 0
    return {"step": max(logged, at), "last_checkpoint": str(last) if last else None,
            "resumes": f"from step {at}"}  # fmt: skip
