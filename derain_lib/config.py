"""Typed run configurations: YAML profiles, ``--set key=value`` overrides, a stable hash.

A config is four dataclasses (model, data, train, eval) under :class:`Config`. Profile
files (``derain_lib/profiles/*.yaml``) hold a base config plus an optional ``datasets:``
mapping of per-data-set overrides; the top-level ``dataset`` key picks one, so "model M
on data set D under profile P" is::

    profile_config("paper", dataset="rain100h", overrides=["model.name=sian-baseline"])

Unknown keys and values of the wrong type are :class:`ConfigError`\\ s naming the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import DerainError
from .roots import package_file

PROFILES_DIR = package_file("profiles")  # inside the package: a wheel has them too
PROFILES = ("smoke", "quick", "paper")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class ConfigError(DerainError):
    """A config file or override that names an unknown key or holds a bad value."""


@dataclass
class ModelConfig:
    """The architecture (a name of ``derain_lib.models``) and its keyword arguments.

    ``weights`` (a released name or a file) makes the run evaluation-only.
    ``kwargs.init_std: null`` gives PyTorch's default init instead of N(0, 0.02).
    """

    name: str = "sian"
    kwargs: dict = field(default_factory=dict)
    weights: str | None = None


@dataclass
class DataConfig:
    """Training and test data: ``embedded:<preset>:<split>:<size>`` or a folder.

    Relative folders are taken under ``root``.
    """

    train: str = "embedded:light:train:smoke"
    test: str = "embedded:light:test:smoke"
    root: str = "data"
    patch: int = 120
    stride: int = 40
    hflip: bool = False
    workers: int | str = "auto"  # DataLoader workers; auto: 0 on the CPU, several on CUDA


@dataclass
class TrainConfig:
    """Optimisation (MODEL_SPEC §5; official defaults) and the bookkeeping of a run."""

    loss: str = "ssim"  # ssim (authors') | ssim-valid | l1 | mse, summed over stages (Eq. 13)
    lr: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.999)
    scheduler: str = "constant"  # constant | multistep
    milestones: tuple[int, ...] = ()
    gamma: float = 0.2
    batch_size: int = 18  # the global batch (split over DDP processes)
    epochs: int = 100
    max_steps: int | None = None  # stop earlier, after this many optimiser steps
    seed: int = 0
    checkpoint_every: int = 500  # steps; also at every epoch end
    val_images: int = 4  # test images scored after each epoch (0: none)
    channels_last: bool | str = "auto"  # auto: on CUDA only (what cuDNN prefers)
    tf32: bool | str = "auto"  # TF32 matmuls/convolutions in training; auto: on CUDA only
    bf16: bool = False  # bf16 autocast in training (opt-in)
    device: str = "auto"  # auto | cpu | cuda | cuda:N


@dataclass
class EvalConfig:
    """Test-set evaluation: tiling, output quantisation, how many images, saved PNGs,
    precision and how many stages run."""

    tile: int | None = None
    overlap: int = 32
    quantize: str = "round"  # round | truncate
    max_images: int | None = None
    save_images: bool = True
    precision: str = "fp32"  # fp32 | bf16 | auto (the tables stay fp32 unless asked)
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
        return _plain(asdict(self))


_CHOICES = {
    "train.loss": ("ssim", "ssim-valid", "l1", "mse"),
    "train.scheduler": ("constant", "multistep"),
    "eval.quantize": ("round", "truncate"),
    "eval.precision": ("fp32", "bf16", "auto"),
}


def _plain(obj: Any) -> Any:
    """Tuples to lists, recursively: the JSON/YAML form."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against (and gently converted to) the annotation ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {value!r}")
        return tuple(
            _coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 2e-4 as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {tp}")


def _build(cls: type, data: dict, prefix: str = "") -> Any:
    """A dataclass from a nested mapping; unknown keys are errors naming the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for k in data:
        if k not in known:
            raise ConfigError(
                f"unknown config key {prefix + str(k)!r} (known under "
                f"{prefix.rstrip('.') or 'the top level'}: {', '.join(sorted(known))})"
            )
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        tp, key = hints[f.name], prefix + f.name
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = _build(tp, data[f.name] or {}, key + ".")
        else:
            kwargs[f.name] = _coerce(data[f.name], tp, key)
        if key in _CHOICES and kwargs[f.name] not in _CHOICES[key]:
            raise ConfigError(f"{key}: {kwargs[f.name]!r} is not one of {', '.join(_CHOICES[key])}")
    return cls(**kwargs)


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"train.lr=1e-3"`` -> (["train", "lr"], 0.001); the value is read as YAML."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r}: expected key=value (e.g. train.lr=1e-3)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override {item!r}: value is not valid YAML ({e})") from None
    return key.strip().split("."), value


def _apply_overrides(data: dict, overrides: list[str]) -> dict:
    for item in overrides:
        keys, value = parse_override(item)
        nested: Any = value
        for k in reversed(keys):
            nested = {k: nested}
        data = _merge(data, nested)
    return data


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def resolve_config_path(spec: str | Path) -> Path:
    """A config file path, or a profile name (``smoke``, ``quick``, ``paper``)."""
    p = Path(spec)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    if str(spec) in PROFILES or (PROFILES_DIR / f"{spec}.yaml").is_file():
        return PROFILES_DIR / f"{spec}.yaml"
    raise ConfigError(f"{spec}: no such config file or profile ({', '.join(PROFILES)})")


def config_from_dict(data: dict, overrides: list[str] | None = None, source: str = "") -> Config:
    """A :class:`Config` from a mapping that may hold a ``datasets:`` section."""
    data = dict(data)
    datasets = data.pop("datasets", None) or {}
    seeds = data.pop("seeds", [0])  # the profile's list of training seeds: see profile_seeds()
    _check_seeds(seeds, source or "config")
    overrides = list(overrides or [])
    chosen = data.get("dataset")
    for item in overrides:
        keys, value = parse_override(item)
        if keys == ["dataset"]:
            chosen = value
    if datasets:
        if chosen not in datasets:
            raise ConfigError(
                f"{source or 'config'}: unknown dataset {chosen!r}; "
                f"this profile knows {', '.join(map(str, datasets))}"
            )
        data = _merge(data, datasets[chosen] or {})
    data = _apply_overrides(data, overrides)
    try:
        return validate(_build(Config, data))
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}" if source else str(e)) from None


def check_tile(tile: int | None, overlap: int, prefix: str = "") -> None:
    """A tile size (None: whole image) and overlap the tiled forward accepts, else one line
    naming ``<prefix>tile`` / ``<prefix>overlap`` (e.g. ``eval.`` or ``--``)."""
    if tile is not None and tile < 8:
        raise ConfigError(f"{prefix}tile: {tile} is too small; allowed: an integer >= 8")
    if overlap < 0 or (tile is not None and overlap >= tile):
        raise ConfigError(
            f"{prefix}overlap: {overlap} is out of range; allowed: 0 <= overlap < tile ({tile})"
        )


def validate(cfg: Config) -> Config:
    """Range checks run before any run folder exists: one line naming the key and the
    allowed range. Returns ``cfg``."""
    t, d, e = cfg.train, cfg.data, cfg.eval
    limits: list[tuple[str, float | None, bool, str]] = [
        ("train.batch_size", t.batch_size, t.batch_size >= 1, "an integer >= 1"),
        ("train.checkpoint_every", t.checkpoint_every, t.checkpoint_every >= 1, "an integer >= 1"),
        ("train.lr", t.lr, math.isfinite(t.lr) and t.lr > 0, "a finite number > 0"),
        ("train.epochs", t.epochs, t.epochs >= 1, "an integer >= 1"),
        ("train.max_steps", t.max_steps, t.max_steps is None or t.max_steps >= 1,
         "an integer >= 1 (or null)"),
        ("train.val_images", t.val_images, t.val_images >= 0, "an integer >= 0"),
        ("data.patch", d.patch, d.patch >= 8, "an integer >= 8"),
        ("data.stride", d.stride, d.stride >= 1, "an integer >= 1"),
        ("data.workers", d.workers, d.workers == "auto" or (type(d.workers) is int and
         d.workers >= 0), "auto or an integer >= 0"),
        ("train.channels_last", t.channels_last, t.channels_last in ("auto", True, False),
         "auto, true or false"),
        ("train.tf32", t.tf32, t.tf32 in ("auto", True, False), "auto, true or false"),
        ("train.device", t.device, _DEVICE.match(str(t.device)) is not None,
         "auto, cpu, cuda or cuda:N"),
        ("eval.max_images", e.max_images, e.max_images is None or e.max_images >= 1,
         "an integer >= 1 (or null)"),
    ]  # fmt: skip
    for key, value, ok, allowed in limits:
        if not ok:
            raise ConfigError(f"{key}: {value!r} is out of range; allowed: {allowed}")
    check_tile(e.tile, e.overlap, "eval.")
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or profile name) and apply ``key=value`` overrides."""
    p = resolve_config_path(path)
    return config_from_dict(_read_yaml(p), overrides, source=str(p))


def profile_config(
    profile: str, dataset: str | None = None, overrides: list[str] | None = None
) -> Config:
    """The config for ``dataset`` under ``profile``, plus overrides (e.g. ``model.name=...``)."""
    extra = [f"dataset={dataset}"] if dataset is not None else []
    return load_config(profile, extra + list(overrides or []))


def profile_datasets(profile: str) -> list[str]:
    """The data set names a profile has settings for."""
    return list((_read_yaml(resolve_config_path(profile)).get("datasets") or {}).keys())


def profile_seeds(profile: str) -> list[int]:
    """The training seeds a profile's study repeats each trained model with (``seeds:``;
    default ``[0]``, the config's own seed)."""
    seeds = _read_yaml(resolve_config_path(profile)).get("seeds", [0])
    _check_seeds(seeds, profile)
    return seeds


def _check_seeds(seeds: object, where: str) -> None:
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        raise ConfigError(f"{where}: seeds must be a non-empty list of integers, got {seeds!r}")


def canonical_json(cfg: Config) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))


def config_hash(cfg: Config) -> str:
    """12 hex digits of the sha256 of the canonical JSON of the whole config."""
    return hashlib.sha256(canonical_json(cfg).encode()).hexdigest()[:12]


def dump_config(cfg: Config) -> str:
    """The YAML form; ``config_from_dict(yaml.safe_load(...))`` gives the same config."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
