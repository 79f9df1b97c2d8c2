"""Section 2 of chapter 07: each attention-mask channel scored as a rain detector by its ROC-AUC,
beside controls that know nothing of rain: the Sobel gradient magnitude and the mean |DoG|."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.stats import rankdata
from torch import nn

from ...metrics import rgb_to_y
from ...viz.attention import compute_attention, upsample
from ..plan import Params
from .common import beyond_size, centre_crop, real_sets, scene_pairs
from .density import DENSITY_LEVELS, rainy_at, sweep_images

#: Synthetic rain pixels: streak layer above this (the layer is in [0, 1]).
TAU_STREAK = 0.1
#: Real rain pixels: Y(rainy) - Y(clean) above this (MATLAB Y, 16..235 scale).
TAU_Y = 10.0
#: A mask cell is a rain cell when more than this fraction of its pixels are rain.
CELL_FRACTION = 0.5
#: The released SIAN weights and the synthetic rain level each reads.
SIANS = ("sian-rain100l", "sian-rain100h")


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC of ``scores`` detecting ``labels`` (Mann-Whitney rank sum); NaN for one class."""
    y = np.asarray(labels, dtype=bool).ravel()
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return math.nan
    r = rankdata(np.asarray(scores, dtype=np.float64).ravel())
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def real_rain_mask(rainy: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """Rain pixels of a real pair: Y(rainy) - Y(clean) > :data:`TAU_Y` (MATLAB Y)."""
    return rgb_to_y(rainy) - rgb_to_y(clean) > TAU_Y


def attention_auc(model: nn.Module, image: np.ndarray, rain: np.ndarray) -> list[dict]:
    """AUC against the ``rain`` pixels of every mask channel, channel mean and mean |DoG| per
    stage and scale, and of the edges (stage 0), at the mask's resolution."""
    att = compute_attention(model, image)
    y = rgb_to_y(image).astype(np.float64)
    edges = np.hypot(ndimage.sobel(y, axis=0), ndimage.sobel(y, axis=1))
    rows = []
    for sc in att.scales:
        shape = att.masks[0][sc].shape[1:]
        labels = upsample(rain.astype(np.float32), shape, "area") > CELL_FRACTION
        base = {"scale": sc, "cells": int(labels.size), "rain_cells": int(labels.sum())}
        maps = [(0, "edge", None, upsample(edges, shape, "area"))]
        for stage in range(1, att.n_stages + 1):
            masks = att.masks[stage - 1][sc]
            maps += [(stage, "mask", c, m) for c, m in enumerate(masks)]
            maps.append((stage, "mask mean", None, masks.mean(axis=0)))
            maps.append((stage, "dog", None, np.abs(att.dog[stage - 1][sc]).mean(axis=(0, 1))))
        rows += [
            {**base, "stage": k, "what": w, "channel": c, "auc": roc_auc(v, labels)}
            for k, w, c, v in maps
        ]
    return rows


def run(params: Params, models: dict[str, nn.Module]) -> list[dict]:
    """AUC rows: synthetic light/heavy rain on the sweep's scenes (the streak layer as truth)
    read by the released Rain100L/H SIAN, and real Rain100L pairs by the Rain100L one."""
    size, read_by = beyond_size(params.profile), dict(zip(SIANS, DENSITY_LEVELS[1::3], strict=True))
    if not read_by.keys() & models.keys():
        return []
    synthetic, out = sweep_images(params, size.synthetic_images, size.sweep_side), []
    for w, level in read_by.items():
        for i, (name, scene, clean, stand_in) in enumerate(synthetic if w in models else []):
            rainy, streaks = rainy_at(clean, level, i)
            facts = {"source": f"{w} on synthetic {level.name}", "image": name, "scene": scene}
            rows = attention_auc(models[w], rainy, streaks > TAU_STREAK)
            out += [{**r, **facts, "stand_in": stand_in} for r in rows]
    real = real_sets(params, "rain100l")
    for t, ds, i, scene in scene_pairs(real, size.real_pairs) if "sian-rain100l" in models else []:
        rainy, clean = (centre_crop(a, size.test_crop) for a in ds.load(i))
        facts = {"source": f"sian-rain100l on {t.label}", "image": ds.pairs[i].name, "scene": scene}
        rows = attention_auc(models["sian-rain100l"], rainy, real_rain_mask(rainy, clean))
        out += [{**r, **facts, "stand_in": False} for r in rows]
    return out


def saved(rows: list[dict]) -> list[dict]:
    """What ``attention_auc.json`` keeps: the controls, and each channel's mean AUC (``n``)."""
    keys = ["source", "stand_in", "scale", "cells", "stage", "what", "channel"]
    masks = pd.DataFrame([r for r in rows if r["what"] == "mask"], columns=[*keys, "auc"])
    means = masks.groupby(keys, sort=False).auc.agg(auc="mean", n="count").reset_index()
    means = means.assign(auc=means.auc.round(5), image=None)
    return [r for r in rows if r["what"] != "mask"] + means.to_dict("records")
