"""Section 3 of chapter 07: every released model on every test set.

One row per (model, test set, image) with its scene, the Input PSNR and the gain over it:
absolute PSNR says how hard a test set is, the gain what a model does on it. :func:`cells`
turns the rows into one cell per (model, test set): mean gain with its 95 % interval over
the scenes. The chapter's real
photographs are derained here too (:func:`derain_lib.study.figures.derain_photos`, the
study's one real-photo step).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from ...data.datasets import PairedDataset
from ...inference import predict
from ...metrics import score_pair
from ..figures import derain_photos
from ..paths import results_dir
from ..plan import Params, TestSet, real_photos
from ..stats import hierarchical_interval
from .common import beyond_size, centre_crop, chapter_sets, scene_pairs

__all__ = ["Outputs", "cells", "generalisation", "outputs", "run"]


@dataclass
class Outputs:
    """One model's float outputs on one test set, with the inputs, ground truths, scenes."""

    model: str
    test_set: str
    benchmark: str
    stand_in: bool
    names: list[str]
    scenes: list[str]
    rainy: list[np.ndarray]
    clean: list[np.ndarray]
    derained: list[np.ndarray]


def outputs(
    models: dict[str, nn.Module],
    sets: list[tuple[TestSet, PairedDataset]],
    scenes: int | None = None,
    crop: int | None = None,
) -> list[Outputs]:
    """Every model's outputs on ``scenes`` distinct scenes of every test set, one image each
    (:func:`scene_pairs`; None: every image), cut to their :func:`centre_crop` of ``crop``."""
    kept, every = [], scene_pairs(sets, scenes)
    for t, _ in sets:
        picked = [s for s in every if s[0] is t]
        pairs = [tuple(centre_crop(a, crop) for a in ds.load(i)) for _, ds, i, _ in picked]
        names = [Path(ds.pairs[i].name).name for _, ds, i, _ in picked]
        keys = [scene for *_, scene in picked]
        rainy, clean = [p[0] for p in pairs], [p[1] for p in pairs]
        for m, model in models.items():
            derained = [predict(model, r) for r in rainy]
            kept.append(
                Outputs(m, t.label, t.benchmark, t.stand_in, names, keys, rainy, clean, derained)
            )
    return kept


def generalisation(kept: list[Outputs]) -> list[dict]:
    """One row per (model, test set, image): its scene, Input PSNR/SSIM, the output's, the
    gain."""
    rows = []
    for o in kept:
        for name, scene, r, c, d in zip(
            o.names, o.scenes, o.rainy, o.clean, o.derained, strict=True
        ):
            ip, iss = score_pair(r, c)
            p, s = score_pair(d, c)
            rows.append(
                {
                    "model": o.model,
                    "test_set": o.test_set,
                    "benchmark": o.benchmark,
                    "stand_in": o.stand_in,
                    "image": name,
                    "scene": scene,
                    "input_psnr": ip,
                    "input_ssim": iss,
                    "psnr": p,
                    "ssim": s,
                    "gain": p - ip,
                }
            )
    return rows


def cells(rows: list[dict]) -> list[dict]:
    """One cell per (model, test set): ``n`` images, ``scenes``, mean PSNR/SSIM, and the
    mean ``gain`` with its 95 % interval ``gain_lo``..``gain_hi`` over the scenes
    (:func:`hierarchical_interval`, scenes resampled)."""
    out = []
    for m, t in dict.fromkeys((r["model"], r["test_set"]) for r in rows):
        mine = [r for r in rows if r["model"] == m and r["test_set"] == t]
        iv = hierarchical_interval([r["gain"] for r in mine], [r["scene"] for r in mine])
        out.append(
            {
                "model": m,
                "test_set": t,
                "benchmark": mine[0]["benchmark"],
                "stand_in": mine[0]["stand_in"],
                "n": iv.images,
                "scenes": iv.scenes,
                "input_psnr": float(np.mean([r["input_psnr"] for r in mine])),
                "psnr": float(np.mean([r["psnr"] for r in mine])),
                "ssim": float(np.mean([r["ssim"] for r in mine])),
                "gain": iv.mean,
                "gain_lo": iv.lo,
                "gain_hi": iv.hi,
            }
        )
    return out


def run(params: Params, models: dict[str, nn.Module]) -> list[dict]:
    """The profile's rows (:attr:`BeyondSize.test_images` scenes per test set, centre
    crop :attr:`BeyondSize.test_crop`), and its real photographs derained by every model
    under ``results/<profile>/beyond/photos/`` (shrunk to :attr:`BeyondSize.photo_side`)."""
    size = beyond_size(params.profile)
    rows = generalisation(outputs(models, chapter_sets(params), size.test_images, size.test_crop))
    photos = real_photos(params.data_root)[: size.photos]
    derain_photos(
        models, photos, results_dir(params.profile) / "beyond" / "photos", size.photo_side
    )
    return rows
