"""What ``derain info`` shows (models, released weights, fetch targets, versions), torch-free."""

from __future__ import annotations

import os
import platform
import runpy
from importlib import metadata, util
from pathlib import Path
from typing import NamedTuple

from . import __version__
from .fsutil import data_root, figures_root, project_root, results_root, shown_path, user_cache
from .threads import torch_threads

#: Name -> one line, for every model of :data:`derain_lib.models.MODELS`.
DESCRIPTIONS: dict[str, str] = {
    "sian": "SIAN full (baseline+SIAN+LSTM), official preset: the released-code architecture",
    "sian-baseline": "SIAN ablation: one stage with ConvLSTMs (zero state), no attention (Table V)",
    "sian-baseline+lstm": "SIAN ablation: six stages with ConvLSTMs, no attention (Table V)",
    "sian-paper": "SIAN full, paper-literal preset (ReLU stem/mask, 3-sigma reflect blurs)",
    "prenet": "PReNet (Ren et al. 2019), six stages: the baseline of Tables III-IV",
}

#: ``--backend``'s choices (``auto``: the fastest installed one, measured) and the pip extra that
#: installs the graph backends and the exporter (here, torch-free, for the parser).
BACKENDS, BACKEND_EXTRA = ("auto", "torch", "openvino", "onnxruntime"), "cpu-fast"
#: What ``derain fetch all`` gets (Rain1400, 80.8 MB from the Git LFS host, is asked by name).
FETCH_TARGETS = ("weights", "rain100l", "rain100h-crop480")
FETCH_EXTRA = ("rain1400",)  # fetched only when named: ``derain fetch rain1400``
#: ``--data NAME``: a fetched test set by its target's or its benchmark's name -> the target.
FETCHED_SETS = {t: t for t in (*FETCH_TARGETS[1:], *FETCH_EXTRA)} | {"rain100h": FETCH_TARGETS[2]}


class ReleasedWeights(NamedTuple):
    """One of the authors' released files, ``<family>-<data set>``, pinned by sha256."""

    name: str
    family: str  # "sian" or "prenet"
    dataset: str
    filename: str  # the local file name (as in the study's weights folder)
    url: str
    sha256: str


#: Each family's upstream repository, commit and file path (``{}``: the data set's folder).
_UPSTREAM = {
    "sian": "pangbo1997/RainRemoval/raw/7efca61767f454e7ef9d4c562520b874aacce9ac/"
    "pretrained_models/{}.pth",
    "prenet": "csdwren/PReNet/raw/6d908d1e3c7ff5c26fee624112297ad1c8603ca7/"
    "logs/{}/PReNet6/net_latest.pth",
}
_SHA256 = {
    "sian-rain100l": "ab3894696b6c17c7a901ad4096dc4cdfaac835a00447ec64553df809ee143956",
    "sian-rain100h": "eafdb36506a4b087c1ccd8b6f73009284bf6daa223ecce28d713aa6472c91b91",
    "sian-rain1400": "1812bdbf0ac17d5de70f80c93f5d29e31ad57dc4e105a7b09bd17a04b48c04b8",
    "prenet-rain100l": "cb9b743bb33cf6e5c56ba45f8ade93add46266dea9fa582e1934dc5eed942333",
    "prenet-rain100h": "127c0098787c5272f1f8583f6c5202e7ef674f750cd145a1691912a6d9e96210",
    "prenet-rain1400": "d5744dc2e35d73187a3f34936b3413884d293277073ffb78b961a78e65337879",
}
RELEASED: dict[str, ReleasedWeights] = {
    name: ReleasedWeights(name, fam, ds, f"{fam}_{ds}.pth", "https://github.com/"
                          + _UPSTREAM[fam].format(ds if fam == "sian" else f"Rain{ds[4:].upper()}"),
                          sha256)
    for name, sha256 in _SHA256.items()
    for fam, ds in [name.split("-")]
}  # fmt: skip


def cache_dir() -> Path:
    """Downloaded released weights: ``<user cache>/weights`` (see :func:`fsutil.user_cache`)."""
    return user_cache() / "weights"


def search_dirs(weights_dir: str | Path | None = None) -> list[Path]:
    """Where released files are looked for, in order."""
    env = os.environ.get("DERAIN_WEIGHTS_DIR")
    return [Path(d) for d in (weights_dir, env) if d] + [cache_dir()]


def missing_released(name: str, weights_dir: str | Path | None = None) -> str:
    """One line: released weights ``name`` have no local copy in any :func:`search_dirs`."""
    where = ", ".join(map(shown_path, search_dirs(weights_dir)))
    return f"released weights {RELEASED[name].filename} not found in {where}"


def find_released(name: str, weights_dir: str | Path | None = None) -> Path | None:
    """The local copy of released weights ``name``, if one is in a search folder."""
    w = RELEASED[name]
    names = [d / n for d in search_dirs(weights_dir) for n in (w.filename, f"{w.name}.pth")]
    return next((p for p in names if p.is_file()), None)


def installed_version(dist: str) -> str:
    """The installed version of distribution ``dist`` (its metadata; nothing imported)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def torch_version() -> str:
    """``torch.__version__`` with the local label (``+cu130``) its metadata lacks; no import."""
    try:
        version_py = Path(util.find_spec("torch").origin).parent / "version.py"
        return runpy.run_path(str(version_py))["__version__"]
    except (AttributeError, OSError):  # no torch, or no version.py
        return installed_version("torch")


def info_lines(weights_dir: str | Path | None = None) -> list[str]:
    """What ``derain info`` prints: versions, threads, models, released weights, folders."""
    versions = "  ".join(f"{d} {installed_version(d)}" for d in ("numpy", "scikit-image"))
    lines = [f"derain {__version__}",
             f"python {platform.python_version()}  torch {torch_version()}  {versions}  threads "
             f"{torch_threads()}", "", "models:",
             *(f"  {name:<20} {desc}" for name, desc in DESCRIPTIONS.items()),
             "", "released weights (upstream, sha256-verified):"]  # fmt: skip
    for w in RELEASED.values():
        local = find_released(w.name, weights_dir)
        where = f"local: {local}" if local else "not downloaded"
        lines.append(f"  {w.name:<16} {w.family:<6} {w.dataset:<9} {w.sha256[:16]}  {where}")
    lines += ["", "folders (results and figures: in the project; docs/ARCHITECTURE.md):"]
    folders = {"project": project_root(), "results": results_root(), "figures": figures_root(),
               "data": data_root(), "cache": user_cache()}  # fmt: skip
    return lines + [f"  {k:<8} {v}" for k, v in folders.items()]
