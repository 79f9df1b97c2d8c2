"""What chapter 07's sections share: the profile's sizes, the released models, the test
sets, the clean images, the time taken, and a mean with its interval."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...data.datasets import PairedDataset
from ...data.io import fit_size
from ...data.sources import open_data
from ...intervals import mean_ci
from ...tables import not_run
from ...weights import find_released, load_model, missing_released
from ..plan import Params, TestSet, test_sets
from ..probes import without_partial_copies

__all__ = ["mean_ci"]  # re-exported for the sections

#: Model families and training sets of the released weights the chapter uses.
FAMILIES = ("sian", "prenet")
RELEASED_SETS = ("rain100l", "rain100h", "rain1400")
#: The released weights of the chapter, ``<family>-<training set>``.
RELEASED_MODELS = tuple(f"{f}-{d}" for f in FAMILIES for d in RELEASED_SETS)


@dataclass(frozen=True)
class BeyondSize:
    """How much of each experiment a profile runs (None: all there is)."""

    sweep_images: int  # clean images of the density sweep (real test sets first)
    sweep_side: int | None  # their longer side after resizing (None: as they are)
    synthetic_images: int  # clean images rained for the synthetic attention AUC
    real_pairs: int | None  # real pairs for the real attention AUC
    test_images: int | None  # images per test set in the generalisation matrix
    test_crop: int | None  # their centre crop, at most this many pixels a side (None: whole)
    photos: int  # real photographs in the qualitative panel
    photo_side: int  # their longer side after resizing (pixels)
    cost_hw: tuple[int, int]  # (height, width) of the cost table's input


SIZES: dict[str, BeyondSize] = {
    "smoke": BeyondSize(2, 96, 1, 1, 2, 96, 1, 96, (64, 96)),
    "quick": BeyondSize(8, 240, 2, 4, 4, 240, 3, 480, (321, 481)),
    "paper": BeyondSize(16, None, 8, None, None, None, 6, 640, (321, 481)),
}


def beyond_size(profile: str) -> BeyondSize:
    """The sizes of ``profile`` (unknown profiles run the quick sizes)."""
    return SIZES.get(profile, SIZES["quick"])


def released_models(
    names: Iterable[str], weights_dir: str | Path | None, device: str | torch.device = "cpu"
) -> tuple[dict[str, nn.Module], dict[str, str]]:
    """Released models found locally (no download) on ``device``, and a ``not run`` reason
    for the rest. ``names`` are keys of :data:`derain_lib.weights.RELEASED`."""
    models, missing = {}, {}
    for name in names:
        path = find_released(name, weights_dir)
        if path is None:
            missing[name] = not_run(missing_released(name, weights_dir))
            continue
        models[name] = load_model(path, allow_download=False, device=device).model
    return models, missing


def chapter_models(
    p: Params, device: str | torch.device | None = None
) -> tuple[dict[str, nn.Module], dict[str, str]]:
    """The chapter's released models (:data:`RELEASED_MODELS`) on ``device`` (default: the
    notebook's ``p.device``) and why the others are absent."""
    return released_models(RELEASED_MODELS, p.weights_dir, p.device if device is None else device)


def chapter_sets(p: Params) -> list[tuple[TestSet, PairedDataset]]:
    """Every test set of the profile (its own, then real ones found or fetched), opened; a
    partial real set is left out when the complete one is there (the 4 Rain100L sample
    pairs beside the fetched 100 are the same images)."""
    sets = [t for ts in test_sets(p).values() for t in without_partial_copies(ts)]
    return [(t, open_data(t.spec)) for t in sets]


def clock() -> tuple[float, float]:
    """(wall, CPU) seconds now; CPU counts this process and its finished child processes,
    so it is what the work costs whatever else loads the machine."""
    t = os.times()
    return time.perf_counter(), t.user + t.system + t.children_user + t.children_system


def since(start: tuple[float, float]) -> dict[str, float]:
    """Wall and CPU seconds spent since ``start`` (a :func:`clock` reading)."""
    wall, cpu = clock()
    return {"wall_s": round(wall - start[0], 1), "cpu_s": round(cpu - start[1], 1)}


def spread_indices(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all of them when ``k >= n``)."""
    if k >= n:
        return list(range(n))
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, k)})


def image_key(img: np.ndarray) -> str:
    """A digest of an image's pixels (to take each distinct image once)."""
    return hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()


def clean_images(
    test_sets: dict[str, PairedDataset], per_set: int, side: int | None = None
) -> list[tuple[str, np.ndarray]]:
    """(label, clean image) of ``per_set`` ground truths of each test set, spread evenly
    over it, each distinct image once (the embedded light and heavy sets share their ground
    truths), shrunk to ``side`` pixels on the longer side when given."""
    out, seen = [], set()
    for label, ds in test_sets.items():
        for i in spread_indices(len(ds), per_set):
            clean = ds.load(i)[1]
            key = image_key(clean)
            if key not in seen:
                seen.add(key)
                out.append((f"{label}: {Path(ds.pairs[i].name).name}", fit_size(clean, side)))
    return out


def centre_crop(image: np.ndarray, side: int | None) -> np.ndarray:
    """The centre of ``image``, at most ``side`` pixels high and wide (None: all of it)."""
    if side is None:
        return image
    h, w = image.shape[:2]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[y : y + side, x : x + side]
