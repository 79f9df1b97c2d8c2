"""Typed run configurations (OmegaConf structured configs): YAML profiles with ``seeds:`` and
per-data-set ``datasets:``, ``--set key=value`` overrides, a stable hash; one-line errors."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Literal

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import DerainError
from .fsutil import PACKAGE_DIR

PROFILES_DIR = PACKAGE_DIR / "profiles"  # package data: a wheel has them too
PROFILES = ("smoke", "quick", "paper")
#: What ``train.device`` and ``--device`` accept (``cuda:N`` for any N), checked without torch.
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class ConfigError(DerainError):
    """A config file or override that names an unknown key or holds a bad value."""


@dataclass
class ModelConfig:
    """The architecture and its keyword arguments; ``weights`` (a released name or a file)
    makes the run evaluation-only."""

    name: str = "sian"
    kwargs: dict = field(default_factory=dict)
    weights: str | None = None


@dataclass
class DataConfig:
    """Training and test data: ``embedded:<preset>:<split>:<size>`` or a folder under ``root``."""

    train: str = "embedded:light:train:smoke"
    test: str = "embedded:light:test:smoke"
    root: str = "data"
    patch: int = 120
    stride: int = 40
    hflip: bool = False
    workers: int | Literal["auto"] = "auto"  # DataLoader workers; auto: 0 on CPU, several on CUDA


@dataclass
class TrainConfig:
    """Optimisation (MODEL_SPEC §5; official defaults) and the bookkeeping of a run."""

    loss: Literal["ssim", "ssim-valid", "l1", "mse"] = "ssim"  # summed over stages (Eq. 13)
    lr: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.999)
    scheduler: Literal["constant", "multistep"] = "constant"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.2
    batch_size: int = 18  # the global batch (split over DDP processes)
    epochs: int = 100
    max_steps: int | None = None  # stop earlier, after this many optimiser steps
    seed: int = 0
    checkpoint_every: int = 500  # steps; also at every epoch end
    val_images: int = 4  # test images scored after each epoch (0: none)
    channels_last: Literal["auto", True, False] = "auto"  # auto: on CUDA only
    tf32: Literal["auto", True, False] = "auto"  # TF32 in training; auto: on CUDA only
    bf16: bool = False  # bf16 autocast in training (opt-in)
    device: str = "auto"  # auto | cpu | cuda | cuda:N


@dataclass
class EvalConfig:
    """Test-set evaluation: tiling, quantisation, images, saved PNGs, precision, stages."""

    tile: int | None = None
    overlap: int = 32
    quantize: Literal["round", "truncate"] = "round"
    max_images: int | None = None
    save_images: bool = True
    precision: Literal["fp32", "bf16", "auto"] = "fp32"  # the tables stay fp32 unless asked
    stages: int | None = None  # stop after this many stages (None: all)


@dataclass
class Config:
    name: str = "custom"
    dataset: str = "default"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        """The plain JSON/YAML form (tuples as lists)."""
        return json.loads(json.dumps(asdict(self)))


def _read_yaml(spec: str | Path) -> tuple[Path, dict]:
    """A config file (or profile name) as a mapping, its ``seeds:`` checked."""
    path = resolve_config_path(spec)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        raise ConfigError(f"{path}: seeds must be a non-empty list of integers, got {seeds!r}")
    return path, data


def resolve_config_path(spec: str | Path) -> Path:
    """A config file path, or a profile name (``smoke``, ``quick``, ``paper``)."""
    p = Path(spec)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    if (PROFILES_DIR / f"{spec}.yaml").is_file():
        return PROFILES_DIR / f"{spec}.yaml"
    raise ConfigError(f"{spec}: no such config file or profile ({', '.join(PROFILES)})")


@contextlib.contextmanager
def _named(where: str) -> Iterator[None]:
    """OmegaConf's and YAML's errors as one :class:`ConfigError` line naming ``where``."""
    try:
        yield
    except (OmegaConfBaseException, yaml.YAMLError) as e:
        key = f"{e.full_key}: " if getattr(e, "full_key", None) else ""
        raise ConfigError(f"{where}: {key}{str(e).splitlines()[0]}") from None


def config_from_dict(data: dict, overrides: list[str] | None = None, source: str = "") -> Config:
    """A :class:`Config` from a mapping that may hold ``datasets:`` and ``seeds:``, with
    ``key=value`` overrides (values read as YAML) applied last."""
    where, overrides = source or "config", list(overrides or [])
    data = dict(data)
    datasets = data.pop("datasets", None) or {}
    data.pop("seeds", None)  # the study's (profile_seeds), not the run's
    extra = []
    for item in overrides:
        with _named(f"override {item}"):
            extra.append(OmegaConf.from_dotlist([item]))
    chosen = next((e.dataset for e in reversed(extra) if "dataset" in e), data.get("dataset"))
    if datasets and chosen not in datasets:
        known = ", ".join(map(str, datasets))
        raise ConfigError(f"{where}: unknown dataset {chosen!r}; this profile knows {known}")
    with _named(where):
        cfg = OmegaConf.merge(OmegaConf.structured(Config), data, datasets.get(chosen) or {})
    for item, e in zip(overrides, extra, strict=True):
        with _named(f"override {item}"):
            cfg = OmegaConf.merge(cfg, e)
    with _named(where):
        return validate(OmegaConf.to_object(cfg))


#: The keys with a lower bound (None also allowed); the choices are ``Literal`` types.
_AT_LEAST = {"train.batch_size": 1, "train.checkpoint_every": 1, "train.epochs": 1,
             "train.max_steps": 1, "train.val_images": 0, "data.patch": 8, "data.stride": 1,
             "eval.max_images": 1, "data.workers": 0}  # fmt: skip


def check_tile(tile: int | None, overlap: int, prefix: str = "") -> None:
    """A tile size (None: whole image) and overlap the tiled forward accepts, else one line
    naming ``<prefix>tile`` / ``<prefix>overlap``."""
    if tile is not None and tile < 8:
        raise ConfigError(f"{prefix}tile: {tile} is too small; allowed: an integer >= 8")
    if overlap < 0 or (tile is not None and overlap >= tile):
        raise ConfigError(
            f"{prefix}overlap: {overlap} is out of range; allowed: 0 <= overlap < tile ({tile})"
        )


def validate(cfg: Config) -> Config:
    """``cfg`` with its ranges checked: one line naming the key and what is allowed."""
    problems = [(k, f"an integer >= {low}") for k, low in _AT_LEAST.items()
                if type(v := attrgetter(k)(cfg)) is int and v < low]  # fmt: skip
    if not (math.isfinite(cfg.train.lr) and cfg.train.lr > 0):
        problems.append(("train.lr", "a finite number > 0"))
    if not DEVICE_PATTERN.match(cfg.train.device):
        problems.append(("train.device", "auto, cpu, cuda or cuda:N"))
    for key, allowed in problems:
        raise ConfigError(f"{key}: {attrgetter(key)(cfg)!r} is out of range; allowed: {allowed}")
    check_tile(cfg.eval.tile, cfg.eval.overlap, "eval.")
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or profile name) and apply ``key=value`` overrides."""
    p, data = _read_yaml(path)
    return config_from_dict(data, overrides, source=str(p))


def profile_config(
    profile: str, dataset: str | None = None, overrides: list[str] | None = None
) -> Config:
    """The config for ``dataset`` under ``profile``, plus overrides (e.g. ``model.name=...``)."""
    extra = [f"dataset={dataset}"] if dataset is not None else []
    return load_config(profile, extra + list(overrides or []))


def profile_datasets(profile: str) -> list[str]:
    """The data set names a profile has settings for."""
    return list(_read_yaml(profile)[1].get("datasets") or {})


def profile_seeds(profile: str) -> list[int]:
    """The training seeds a profile's study repeats each trained model with (default ``[0]``)."""
    return _read_yaml(profile)[1].get("seeds", [0])


def canonical_json(cfg: Config) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))


def config_hash(cfg: Config) -> str:
    """12 hex digits of the sha256 of the canonical JSON of the whole config."""
    return hashlib.sha256(canonical_json(cfg).encode()).hexdigest()[:12]


def dump_config(cfg: Config) -> str:
    """The YAML form; ``config_from_dict(yaml.safe_load(...))`` gives the same config."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
