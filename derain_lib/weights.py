"""Checkpoints, the authors' released ones (fetched by sha256, never redistributed) and
ours: resolve, verify, convert, load (``weights_only``); each problem one line naming the file."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from .data.fetch import FetchError, Item, Tree, fetch_items, sha256_file
from .device import resolve_device
from .errors import DerainError
from .info import RELEASED, cache_dir, find_released, missing_released
from .models import MODELS, PReNet, build_model


class WeightsError(DerainError):
    """A checkpoint that cannot be found, verified, read or fitted to the model."""


#: Keys of the released SIAN file that the authors' forward() never uses.
SIAN_UNUSED_PREFIX = "body.conv_m."
#: Marker of checkpoints written by this project (training runs, exported models).
OUR_FORMAT = "derain-model"


def weight_items() -> list[Item]:
    """The released weight files at their pinned commits (what ``derain fetch weights`` gets)."""
    items = []
    for w in RELEASED.values():  # https://github.com/{owner}/{repo}/raw/{commit}/{path}
        owner, repo, _, commit, path = urlparse(w.url).path.lstrip("/").split("/", 4)
        items.append(Item(Tree(owner, repo, commit), path, w.sha256, w.filename))
    return items


def resolve(
    spec: str | Path, weights_dir: str | Path | None = None, allow_download: bool = True
) -> Path:
    """A weights file from a path or a released name (local copy first, then upstream)."""
    p, w = Path(spec), RELEASED.get(str(spec))
    if p.is_file():
        return p
    if w is None:
        if p.exists():
            raise WeightsError(f"{p}: is not a file")
        raise WeightsError(
            f"{spec}: no such file, and not a released weights name ({', '.join(RELEASED)})"
        )
    if (local := find_released(w.name, weights_dir)) is not None:
        return local
    if not allow_download:
        raise WeightsError(f"{spec}: {missing_released(w.name, weights_dir)}")
    item = next(i for i in weight_items() if i.local == w.filename)
    try:  # as `derain fetch weights` does
        fetch_items([item], cache_dir(), lambda _: None)
    except FetchError as e:
        raise WeightsError(
            f"{spec}: not found locally and could not be downloaded ({e}); download it by hand "
            f"and pass --weights FILE or put it in --weights-dir/DERAIN_WEIGHTS_DIR as {w.filename}"
        ) from None
    return cache_dir() / w.filename


def read_checkpoint(path: str | Path, expected_sha256: str | None = None) -> dict:
    """``torch.load(weights_only=True)``, a one-line error for every way a file can be bad."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: file is empty")
    if expected_sha256 is not None and (got := sha256_file(path)) != expected_sha256:
        raise WeightsError(
            f"{path}: sha256 {got} does not match the expected {expected_sha256} "
            "(a different or damaged file)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated/corrupt pickles and zips
        if "unsupported global" in str(e).lower():
            raise WeightsError(
                f"{path}: refused: it holds Python objects other than tensors and plain "
                "containers, which torch.load(weights_only=True) will not run; the file may "
                "be unsafe (only load it if you trust its source, and re-save its state_dict)"
            ) from None
        raise WeightsError(
            f"{path}: not a torch checkpoint: torch cannot read it as a saved file "
            "(truncated or corrupt, or another kind of file)"
        ) from None
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    return obj


def _convert(state: dict, path: Path) -> tuple[str, OrderedDict, list[str]]:
    """The authors' SIAN (``RPDNet``) or PReNet state in our keys, and the keys ignored (SIAN's
    ``body.conv_m``, never called). Their scales run coarse to fine, ours fine to coarse."""
    out: OrderedDict = OrderedDict()

    def put(ours: str, *theirs: str) -> None:  # several: concatenated, gate after gate
        for t in ("weight", "bias"):
            out[f"{ours}.{t}"] = torch.cat([state[f"{k}.{t}"] for k in theirs])

    try:
        if "body.tran_conv.weight" in state:
            family = "sian"
            put("cfa.stem", "body.tran_conv")
            for j, i in enumerate((2, 1, 0)):  # theirs j = 0 is the 1/4 scale
                src, dst = f"body.scale_conv.{j}", f"cfa.branches.{i}"
                for theirs, ours in (("conv_f", "feat"), ("conv_m", "mask"), ("conv_z", "fuse")):
                    put(f"{dst}.{ours}", f"{src}.{theirs}.0")
                x, h = f"body.lstm.{j}.conv_x", f"body.lstm.{j}.conv_h"  # h convs have no bias
                w = [
                    torch.cat([state[f"{x}{g}.weight"], state[f"{h}{g}.weight"]], 1) for g in "fioj"
                ]
                out[f"{dst}.lstm.gates.weight"] = torch.cat(w)
                out[f"{dst}.lstm.gates.bias"] = torch.cat([state[f"{x}{g}.bias"] for g in "fioj"])
                if i:  # their up_conv[j] merges scale j into j + 1: our merges[i - 1]
                    put(f"cfa.merges.{i - 1}.conv", f"body.up_conv.{j}.conv_m.0")
            for b in range(2):
                put(f"head.{b}.conv1", f"body_end.{b}.body.0")
                put(f"head.{b}.conv2", f"body_end.{b}.body.2")
            put("head.2", "body_end.2")
        elif "conv0.0.weight" in state and "conv_i.0.weight" in state:
            family = "prenet"
            put("stem", "conv0.0")
            put("lstm.gates", *(f"conv_{g}.0" for g in "fiog"))
            for n in range(5):
                put(f"body.{n}.conv1", f"res_conv{n + 1}.0")
                put(f"body.{n}.conv2", f"res_conv{n + 1}.2")
            put("out", "conv.0")
        else:
            sample = ", ".join(list(state)[:3])
            raise WeightsError(f"{path}: not SIAN, PReNet or derain weights (keys: {sample}, ...)")
    except KeyError as e:
        raise WeightsError(f"{path}: {family} checkpoint is missing key {e.args[0]}") from None
    return family, out, sorted(k for k in state if k.startswith(SIAN_UNUSED_PREFIX))


@dataclass
class LoadedWeights:
    model: nn.Module
    model_name: str
    path: Path
    sha256: str
    source: str  # "released:<name>" or "checkpoint"
    ignored_keys: list[str]
    config_override: str | None = None  # set when strict_config=False let a mismatch pass

    def describe(self) -> str:
        s = f"{self.model_name} from {self.path} ({self.source}, sha256 {self.sha256[:12]}...)"
        if self.ignored_keys:
            s += f"; ignored {len(self.ignored_keys)} unused tensors ({SIAN_UNUSED_PREFIX}*)"
        if self.config_override:
            s += f"; config mismatch allowed (strict_config=False): {self.config_override}"
        return s


def model_config(model: nn.Module) -> dict:
    """What a model's weights compute (config less initialisation, stages resolved)."""
    cfg = model.config
    d = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    d.pop("init_std", None)
    if hasattr(cfg, "n_stages"):
        d["stages"] = cfg.n_stages
    return d


def _describe(name: str, config: dict) -> str:
    """``sian (official preset, full, K=6)``."""
    parts = [f"{config['preset']} preset"] if "preset" in config else []
    parts += [str(config["variant"])] if "variant" in config else []
    parts.append(f"K={config.get('stages')}")
    return f"{name} ({', '.join(parts)})"


def config_mismatch(
    path: str | Path, have_name: str, have: dict, want_name: str, want: dict, strict: bool = True
) -> str | None:
    """None when config ``have`` is ``want``; else a WeightsError, or (not ``strict``) its text."""
    if have == want:
        return None
    keys = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
    diff = ", ".join(f"{k} {have.get(k)!r} vs {want.get(k)!r}" for k in keys)
    file, model = _describe(have_name, have), _describe(want_name, want)
    if strict:
        raise WeightsError(
            f"{path}: holds {file} weights, but the model is {model} ({diff}); pass "
            "--no-strict-config (strict_config=False in Python) to load them anyway "
            "(fine-tuning only)"
        )
    return f"{file} weights loaded into {model} ({diff})"


def _load_into(model: nn.Module, state: dict, path: Path) -> None:
    """``load_state_dict(strict=True)``, its problems as one line."""
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise WeightsError(f"{path}: entry {k!r} is a {type(v).__name__}, not a tensor")
    own = model.state_dict()
    problems = {
        "missing keys": [k for k in own if k not in state],
        "unexpected keys": [k for k in state if k not in own],
        "shape mismatches": [
            f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
            for k in own
            if k in state and state[k].shape != own[k].shape
        ],
    }
    if parts := [f"{len(v)} {what} (e.g. {v[0]})" for what, v in problems.items() if v]:
        raise WeightsError(f"{path}: weights do not fit the model: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def _build(name: str, kwargs: dict, path: Path) -> nn.Module:
    """``build_model`` with bad arguments from a checkpoint as one line naming the file."""
    try:
        return build_model(name, **kwargs)
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{path}: cannot build model {name!r}: {e}") from None


def load_model(
    spec: str | Path,
    model: str | None = None,
    weights_dir: str | Path | None = None,
    allow_download: bool = True,
    strict_config: bool = True,
    device: str | torch.device = "cpu",
    **model_kwargs: object,
) -> LoadedWeights:
    """The model ``spec`` (a released name or a file) holds, on ``device``; another ``model``
    config than the file's is an error unless ``strict_config=False`` (fine-tuning)."""
    target = resolve_device(device)
    path = resolve(spec, weights_dir, allow_download)
    released = RELEASED.get(str(spec))
    state = read_checkpoint(path, released.sha256 if released else None)
    sha = released.sha256 if released else sha256_file(path)
    released = released or next((w for w in RELEASED.values() if w.sha256 == sha), None)
    ours = state.get("format") == OUR_FORMAT
    if ours:  # model name and arguments, state dict, model config (None: the name's defaults)
        file_name, file_kwargs = state.get("model"), state.get("model_kwargs", {})
        sd, file_config, ignored = state.get("state_dict"), state.get("model_config"), []
        if not isinstance(file_name, str) or file_name not in MODELS:
            raise WeightsError(
                f"{path}: derain checkpoint names no known model (its 'model' entry is "
                f"{file_name!r}; known: {', '.join(MODELS)})"
            )
        for key, v in (("model_kwargs", file_kwargs), ("state_dict", sd)):
            if not isinstance(v, dict):
                raise WeightsError(f"{path}: {key!r} is a {type(v).__name__}, not a mapping")
    else:
        (file_name, sd, ignored), file_kwargs, file_config = _convert(state, path), {}, None
    if model is not None:
        if model not in MODELS:
            raise WeightsError(
                f"--model {model!r}: unknown model; known models: {', '.join(MODELS)}"
            )
        want, have = (("prenet" if MODELS[m] is PReNet else "sian") for m in (model, file_name))
        if want != have:
            raise WeightsError(
                f"{path}: holds {have} weights, but --model {model} is a {want} model"
            )
        if ours and model != file_name and strict_config:
            raise WeightsError(f"{path}: holds weights for model {file_name!r}, not {model!r}")
    name = model or file_name
    kwargs = {**file_kwargs, **model_kwargs}
    net = _build(name, kwargs, path)
    if file_config is None:  # the defaults of the model the file was made for
        same = (name, kwargs) == (file_name, file_kwargs)
        file_config = model_config(net if same else _build(file_name, file_kwargs, path))
    override = config_mismatch(path, file_name, file_config, name, model_config(net), strict_config)
    _load_into(net, sd, path)
    net.eval().to(target)
    source = f"released:{released.name}" if released else "checkpoint"
    return LoadedWeights(net, name, path, sha, source, ignored, override)
