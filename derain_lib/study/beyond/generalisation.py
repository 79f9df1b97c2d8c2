"""Section 3 of chapter 07: every released model on every test set as the gain over the input
(with its 95 % interval over the scenes); the chapter's real photographs derained too."""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import numpy as np
from torch import nn

from ...data.datasets import PairedDataset
from ...inference import predict
from ...metrics import score_pair
from ..figures import derain_photos
from ..plan import Params, TestSet, real_photos, results_dir
from ..stats import hierarchical_interval
from .common import beyond_size, centre_crop, chapter_sets, groups, scene_pairs


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
    """Every model's outputs on ``scenes`` scenes of every test set, cut to ``crop``."""
    kept = []
    for t, picked in groups(scene_pairs(sets, scenes), itemgetter(0)):
        pairs = [[centre_crop(a, crop) for a in ds.load(i)] for _, ds, i, _ in picked]
        names = [Path(ds.pairs[i].name).name for _, ds, i, _ in picked]
        rainy, clean = [p[0] for p in pairs], [p[1] for p in pairs]
        facts = (t.label, t.benchmark, t.stand_in, names, [k for *_, k in picked], rainy, clean)
        kept += [Outputs(m, *facts, [predict(net, r) for r in rainy]) for m, net in models.items()]
    return kept


def generalisation(kept: list[Outputs]) -> list[dict]:
    """One row per (model, test set, image): scene, Input PSNR/SSIM, the output's, gain."""
    rows = []
    for o in kept:
        facts = {k: getattr(o, k) for k in ("model", "test_set", "benchmark", "stand_in")}
        for n, scene, r, c, d in zip(o.names, o.scenes, o.rainy, o.clean, o.derained, strict=True):
            (ip, iss), (p, s) = score_pair(r, c), score_pair(d, c)
            rows.append(
                {**facts, "image": n, "scene": scene, "input_psnr": ip, "input_ssim": iss,
                 "psnr": p, "ssim": s, "gain": p - ip}
            )  # fmt: skip
    return rows


def cells(rows: list[dict]) -> list[dict]:
    """Per (model, test set): mean PSNR/SSIM and gain with its 95 % interval over the scenes."""
    out = []
    for _, mine in groups(rows, itemgetter("model", "test_set")):
        iv = hierarchical_interval([r["gain"] for r in mine], [r["scene"] for r in mine])
        means = {k: float(np.mean([r[k] for r in mine])) for k in ("input_psnr", "psnr", "ssim")}
        out.append(
            {k: mine[0][k] for k in ("model", "test_set", "benchmark", "stand_in")}
            | {"n": iv.images, "scenes": iv.scenes, **means}
            | {"gain": iv.mean, "gain_lo": iv.lo, "gain_hi": iv.hi}
        )
    return out


def run(params: Params, models: dict[str, nn.Module]) -> list[dict]:
    """The profile's rows; its real photographs derained go to ``beyond/photos/``."""
    size = beyond_size(params.profile)
    rows = generalisation(outputs(models, chapter_sets(params), size.test_images, size.test_crop))
    out = results_dir(params.profile) / "beyond" / "photos"
    derain_photos(models, real_photos(params.data_root)[: size.photos], out, size.photo_side)
    return rows
