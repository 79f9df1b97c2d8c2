"""What chapter 07's sections share: sizes, released models, test sets, scenes, timing."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ...data.datasets import PairedDataset
from ...data.sources import open_data
from ...tables import not_run
from ...weights import find_released, load_model, missing_released
from ..plan import Params, TestSet, test_sets
from ..probes import without_partial_copies

#: Model families and training sets of the released weights the chapter uses.
FAMILIES = ("sian", "prenet")
RELEASED_SETS = ("rain100l", "rain100h", "rain1400")
#: Stand-in test sets are pipeline checks: at most this many images of each.
STAND_IN_IMAGES = 2
#: How much of each section a profile runs (``sizes.yaml`` says what each number is).
SIZES = OmegaConf.load(Path(__file__).with_name("sizes.yaml"))


def beyond_size(profile: str) -> DictConfig:
    """The sizes of ``profile`` (unknown profiles run the quick sizes)."""
    return SIZES.get(profile, SIZES.quick)


def chapter_models(
    p: Params, device: str | torch.device | None = None
) -> tuple[dict[str, nn.Module], dict[str, str]]:
    """The released models found locally (never downloaded), and why each other is not run."""
    models, missing = {}, {}
    for name in (f"{f}-{d}" for f in FAMILIES for d in RELEASED_SETS):
        if (path := find_released(name, p.weights_dir)) is None:
            missing[name] = not_run(missing_released(name, p.weights_dir))
        else:
            models[name] = load_model(path, allow_download=False, device=device or p.device).model
    return models, missing


def chapter_sets(p: Params) -> list[tuple[TestSet, PairedDataset]]:
    """Every test set of the profile, opened, without partial copies of a complete set."""
    sets = [t for ts in test_sets(p).values() for t in without_partial_copies(ts)]
    return [(t, open_data(t.spec)) for t in sets]


def real_sets(p: Params, *benchmarks: str) -> list[tuple[TestSet, PairedDataset]]:
    """:func:`chapter_sets` of ``benchmarks`` that are real (not stand-ins)."""
    return [(t, ds) for t, ds in chapter_sets(p) if t.benchmark in benchmarks and not t.stand_in]


def clock() -> tuple[float, float]:
    """(wall, CPU) seconds now; CPU counts this process and its finished children."""
    t = os.times()
    return time.perf_counter(), t.user + t.system + t.children_user + t.children_system


def since(start: tuple[float, float]) -> dict[str, float]:
    """Wall and CPU seconds since ``start`` (a :func:`clock` reading)."""
    wall, cpu = clock()
    return {"wall_s": round(wall - start[0], 1), "cpu_s": round(cpu - start[1], 1)}


#: Thumbnails are SCENE_BLOCK-pixel block means; two closer than SCENE_TOL (mean |difference|,
#: 0..255) are one scene: a one-pixel shift moves one by 4 at most, two scenes differ by 13+.
SCENE_BLOCK = 16
SCENE_TOL = 7.0


def scene_thumbnail(img: np.ndarray) -> np.ndarray:
    """Block means (0..255) of the landscape centre of ``img``, a pixel to spare: the same for
    an image and a crop of it a pixel smaller."""
    a = np.asarray(img, np.float32) * (1.0 if np.asarray(img).dtype == np.uint8 else 255.0)
    if a.shape[0] > a.shape[1]:
        a = a.swapaxes(0, 1)
    b = SCENE_BLOCK if min(a.shape[:2]) > 2 * SCENE_BLOCK else 1
    h, w = ((n - 2) // b * b for n in a.shape[:2])
    y, x = (a.shape[0] - h) // 2, (a.shape[1] - w) // 2
    return a[y : y + h, x : x + w].reshape(h // b, b, w // b, b, -1).mean(axis=(1, 3))


def scene_keys(images: Iterable[tuple[str, np.ndarray]]) -> list[str]:
    """Per (name, image): the name of the first image whose thumbnail is within ``tol``."""
    firsts: list[tuple[str, np.ndarray]] = []
    keys = []
    for name, img in images:
        t = scene_thumbnail(img)
        same = (k for k, f in firsts if f.shape == t.shape and np.abs(f - t).mean() < SCENE_TOL)
        keys.append(next(same, None) or name)
        firsts += [(name, t)] if keys[-1] == name else []
    return keys


def pick_scenes(keys: list[str], k: int | None) -> list[int]:
    """Indices of one image of each of ``k`` scenes, spread evenly (None: every index)."""
    if k is None:
        return list(range(len(keys)))
    first = [i for i, key in enumerate(keys) if keys.index(key) == i]
    if k >= len(first):
        return first
    return [first[j] for j in sorted({round(v) for v in np.linspace(0, len(first) - 1, k)})]


def scene_pairs(
    sets: list[tuple[TestSet, PairedDataset]], k: int | None, together: bool = False
) -> list[tuple[TestSet, PairedDataset, int, str]]:
    """(test set, data, index, scene key) of ``k`` scenes of each set, or of all ``together``."""
    index = [(t, ds, i) for t, ds in sets for i in range(len(ds))]
    cleans = ((f"{t.label}: {ds.pairs[i].name}", ds.load(i)[1]) for t, ds, i in index)
    scenes = [(*ti, key) for ti, key in zip(index, scene_keys(cleans), strict=True)]
    out = []
    for group in [sets] if together else [[s] for s in sets]:
        order = [s for s in scenes if any(s[0] is t for t, _ in group)]
        n = min(k or STAND_IN_IMAGES, STAND_IN_IMAGES) if all(t.stand_in for t, _ in group) else k
        out += [order[j] for j in pick_scenes([o[3] for o in order], n)]
    return out


def centre_crop(image: np.ndarray, side: int | None) -> np.ndarray:
    """The centre of ``image``, at most ``side`` pixels high and wide (None: all of it)."""
    if side is None:
        return image
    y, x = (max(0, (n - side) // 2) for n in image.shape[:2])
    return image[y : y + side, x : x + side]


def groups(items: Iterable, key: Callable) -> list[tuple[Any, list]]:
    """``items`` grouped by ``key(item)``, groups in the order they first appear."""
    out: dict = {}
    for item in items:
        out.setdefault(key(item), []).append(item)
    return list(out.items())
