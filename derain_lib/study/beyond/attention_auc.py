"""Section 2 of chapter 07: do SIAN's attention masks mark rain pixels?

Each channel of each stage's and scale's mask, at the mask's own resolution (the rain
pixels are averaged over the block each mask cell covers, a cell is rain when more than
half of it is), is scored as a detector of rain by its ROC-AUC (:func:`roc_auc`). The
channel mean would hide polarity: a channel low on rain is as informative as one high on
it, and the two cancel in the mean. Two controls that know nothing of rain: the magnitude
of the rainy image's luminance gradient (Sobel, ``edge``), and the mean |DoG| response.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.stats import rankdata
from torch import nn

from ...attention_maps import compute_attention
from ...metrics import rgb_to_y
from ..plan import Params
from .common import beyond_size, centre_crop, chapter_sets, scene_pairs
from .density import DENSITY_LEVELS, rainy_at, sweep_images

#: Synthetic rain pixels: streak layer above this (the layer is in [0, 1]).
TAU_STREAK = 0.1
#: Real rain pixels: Y(rainy) - Y(clean) above this (MATLAB Y, 16..235 scale).
TAU_Y = 10.0
#: A mask cell is a rain cell when more than this fraction of its pixels are rain.
CELL_FRACTION = 0.5


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC of ``scores`` as a detector of ``labels`` (bool), by the Mann-Whitney rank
    sum (ties count one half); NaN when one class is empty."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in size: {s.shape} vs {y.shape}")
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return math.nan
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def real_rain_mask(rainy: np.ndarray, clean: np.ndarray, tau: float = TAU_Y) -> np.ndarray:
    """Rain pixels of a real pair: Y(rainy) - Y(clean) > ``tau`` (MATLAB Y)."""
    return rgb_to_y(rainy) - rgb_to_y(clean) > tau


def area(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 2-D map averaged down to ``size`` (H, W) (area interpolation)."""
    if values.shape == tuple(size):
        return values.astype(np.float32)
    t = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[None, None]
    return F.interpolate(t, size=size, mode="area")[0, 0].numpy()


def edge_magnitude(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude (Sobel) of the image's MATLAB Y."""
    y = rgb_to_y(image).astype(np.float64)
    return np.hypot(ndimage.sobel(y, axis=0), ndimage.sobel(y, axis=1))


def attention_auc(model: nn.Module, image: np.ndarray, rain: np.ndarray) -> list[dict]:
    """AUC of every channel of every stage's and scale's attention mask (``what`` "mask"),
    of their channel mean ("mask mean"), of the mean |DoG| ("dog", per stage and scale)
    and of the edge magnitude ("edge", per scale, stage 0), each at the mask's resolution,
    as detectors of the ``rain`` pixels (bool H x W) of ``image``. Rows carry the mask
    cells' count ``cells`` and rain cells' ``rain_cells``."""
    att = compute_attention(model, image)
    edges = edge_magnitude(image)
    rows = []
    for sc in att.scales:
        shape = att.masks[0][sc].shape[1:]
        labels = area(rain.astype(np.float32), shape) > CELL_FRACTION
        base = {"scale": sc, "cells": int(labels.size), "rain_cells": int(labels.sum())}
        rows.append(
            {
                **base,
                "stage": 0,
                "what": "edge",
                "channel": None,
                "auc": roc_auc(area(edges, shape), labels),
            }
        )
        for stage in range(1, att.n_stages + 1):
            masks = att.masks[stage - 1][sc]
            for c in range(masks.shape[0]):
                auc = roc_auc(masks[c], labels)
                rows.append({**base, "stage": stage, "what": "mask", "channel": c, "auc": auc})
            auc = roc_auc(masks.mean(axis=0), labels)
            rows.append({**base, "stage": stage, "what": "mask mean", "channel": None, "auc": auc})
            dog = np.abs(att.dog[stage - 1][sc]).mean(axis=(0, 1))
            rows.append(
                {
                    **base,
                    "stage": stage,
                    "what": "dog",
                    "channel": None,
                    "auc": roc_auc(dog, labels),
                }
            )
    return rows


def run(params: Params, models: dict[str, nn.Module]) -> list[dict]:
    """The AUC rows of the profile: synthetic light rain read by the released Rain100L
    SIAN, synthetic heavy rain by the Rain100H one (on the density sweep's clean images,
    :attr:`BeyondSize.synthetic_images` scenes at ``sweep_side``, the exact streak layer as
    truth), and the real Rain100L pairs by the Rain100L SIAN (:attr:`BeyondSize.real_pairs`
    scenes, cut to ``test_crop``). Each row names its ``source``, ``image``, ``scene`` and
    ``stand_in``; empty when the SIAN weights are absent."""
    size = beyond_size(params.profile)
    if not {"sian-rain100l", "sian-rain100h"} & set(models):
        return []
    synthetic = sweep_images(params, size.synthetic_images, size.sweep_side)
    light, heavy = DENSITY_LEVELS[1], DENSITY_LEVELS[4]
    out = []
    for weights, level in (("sian-rain100l", light), ("sian-rain100h", heavy)):
        if weights not in models:
            continue
        for i, (name, scene, clean, stand_in) in enumerate(synthetic):
            rainy, streaks = rainy_at(clean, level, i)
            rows = attention_auc(models[weights], rainy, streaks > TAU_STREAK)
            facts = {"source": f"{weights} on synthetic {level.name}", "image": name}
            out += [{**r, **facts, "scene": scene, "stand_in": stand_in} for r in rows]
    real = [(t, ds) for t, ds in chapter_sets(params) if t.benchmark == "rain100l"]
    real = [s for s in real if not s[0].stand_in]
    if "sian-rain100l" in models and real:
        for t, ds, i, scene in scene_pairs(real, size.real_pairs):
            rainy, clean = (centre_crop(a, size.test_crop) for a in ds.load(i))
            rows = attention_auc(models["sian-rain100l"], rainy, real_rain_mask(rainy, clean))
            facts = {"source": f"sian-rain100l on {t.label}", "image": ds.pairs[i].name}
            out += [{**r, **facts, "scene": scene, "stand_in": False} for r in rows]
    return out


def saved(rows: list[dict]) -> list[dict]:
    """What ``attention_auc.json`` keeps of ``rows``: every control and channel-mean row per
    image, and each mask channel as its mean AUC over the images of its source (``n`` of
    them; ``image`` None): one row per channel and image would be some 60,000 rows."""
    keep = [r for r in rows if r["what"] != "mask"]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["what"] == "mask":
            key = (r["source"], r["stand_in"], r["scale"], r["stage"], r["channel"])
            groups.setdefault(key, []).append(r)
    for (source, stand_in, scale, stage, channel), g in groups.items():
        aucs = [r["auc"] for r in g if r["auc"] is not None and not math.isnan(r["auc"])]
        keep.append(
            {
                "scale": scale,
                "cells": g[0]["cells"],
                "stage": stage,
                "what": "mask",
                "channel": channel,
                "auc": round(float(np.mean(aucs)), 5) if aucs else math.nan,
                "source": source,
                "image": None,
                "n": len(aucs),
                "stand_in": stand_in,
            }
        )
    return keep
