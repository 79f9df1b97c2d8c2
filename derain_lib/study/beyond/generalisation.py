"""Section 3 of chapter 07: every released model on every test set.

One row per (model, test set, image) with the Input PSNR and the gain over it: absolute
PSNR says how hard a test set is, the gain what a model does on it. :func:`cells`
(:func:`derain_lib.viz.beyond.generalisation_cells`) turns the rows into one cell per
(model, test set): mean gain with its 95 % interval over the images. The chapter's real
photographs are derained here too (:func:`derain_lib.study.figures.derain_photos`, the
study's one real-photo step).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from ...inference import predict
from ...metrics import score_pair
from ...viz.beyond import generalisation_cells as cells
from ..figures import derain_photos
from ..paths import results_dir
from ..plan import Params, real_photos
from .common import beyond_size, centre_crop, chapter_sets, spread_indices

__all__ = ["Outputs", "cells", "generalisation", "outputs", "run"]


@dataclass
class Outputs:
    """One model's float outputs on one test set, with the inputs and ground truths."""

    model: str
    test_set: str
    benchmark: str
    names: list[str]
    rainy: list[np.ndarray]
    clean: list[np.ndarray]
    derained: list[np.ndarray]


def pairs_of(ds: object, max_images: int | None, crop: int | None) -> tuple[list[str], list]:
    """(names, (rainy, clean) pairs) of ``max_images`` pairs of ``ds`` spread over it (all
    when None), each cut to its :func:`centre_crop` of ``crop`` pixels."""
    idx = spread_indices(len(ds), len(ds) if max_images is None else max_images)
    pairs = [tuple(centre_crop(a, crop) for a in ds.load(i)) for i in idx]
    return [Path(ds.pairs[i].name).name for i in idx], pairs


def outputs(
    models: dict[str, nn.Module],
    test_sets: dict[str, tuple[str, object]],
    max_images: int | None = None,
    crop: int | None = None,
) -> list[Outputs]:
    """Every model's outputs on every test set (``label -> (benchmark, PairedDataset)``)."""
    kept = []
    for label, (bench, ds) in test_sets.items():
        names, pairs = pairs_of(ds, max_images, crop)
        rainy, clean = [p[0] for p in pairs], [p[1] for p in pairs]
        for m, model in models.items():
            kept.append(
                Outputs(m, label, bench, names, rainy, clean, [predict(model, r) for r in rainy])
            )
    return kept


def generalisation(kept: list[Outputs]) -> list[dict]:
    """One row per (model, test set, image): Input PSNR/SSIM, the output's, the gain."""
    rows = []
    for o in kept:
        for name, r, c, d in zip(o.names, o.rainy, o.clean, o.derained, strict=True):
            ip, iss = score_pair(r, c)
            p, s = score_pair(d, c)
            rows.append(
                {
                    "model": o.model,
                    "test_set": o.test_set,
                    "benchmark": o.benchmark,
                    "image": name,
                    "input_psnr": ip,
                    "input_ssim": iss,
                    "psnr": p,
                    "ssim": s,
                    "gain": p - ip,
                }
            )
    return rows


def run(params: Params, models: dict[str, nn.Module]) -> list[dict]:
    """The profile's rows (:attr:`BeyondSize.test_images` images per test set, centre
    crop :attr:`BeyondSize.test_crop`), and its real photographs derained by every model
    under ``results/<profile>/beyond/photos/`` (shrunk to :attr:`BeyondSize.photo_side`)."""
    size = beyond_size(params.profile)
    sets = {t.label: (t.benchmark, ds) for t, ds in chapter_sets(params)}
    rows = generalisation(outputs(models, sets, size.test_images, size.test_crop))
    photos = real_photos(params.data_root)[: size.photos]
    derain_photos(
        models, photos, results_dir(params.profile) / "beyond" / "photos", size.photo_side
    )
    return rows
