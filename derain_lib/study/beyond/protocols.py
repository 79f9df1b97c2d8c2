"""Section 5 of chapter 07: why published numbers for the same outputs disagree.

The same outputs (the rainy input, and the released SIAN and PReNet weights for each test
set's benchmark) scored under every protocol of :data:`derain_lib.metrics.PROTOCOLS`; one
row per (test set, what was scored, protocol, image), on whole images (``ssim.m``
downsamples by ``round(min(H, W) / 256)``: from a shorter side of 384).
:func:`protocol_effects` gives each protocol's difference to ours, with its interval over
the scenes, and
:data:`PUBLISHED_PRENET_RAIN100H` the two published PReNet Rain100H numbers that disagree
(its README and the SIAN paper's Table III), to ask which protocol, if any, explains the gap.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from ...metrics import PROTOCOLS
from ..plan import TRAINED_ON, Params
from ..stats import hierarchical_interval
from .common import FAMILIES, beyond_size, chapter_sets
from .generalisation import Outputs, outputs

#: Our protocol: the first of :data:`PROTOCOLS`.
OURS = next(iter(PROTOCOLS))
#: PReNet's Rain100H PSNR as published: its README (PReNet's own scripts) and the SIAN
#: paper's Table III (arXiv 2006.05049). Quoted, not reproduced.
PUBLISHED_PRENET_RAIN100H = {"PReNet README": 29.46, "SIAN paper, Table III": 30.11}


def protocol_table(kept: list[Outputs]) -> list[dict]:
    """Per-image PSNR/SSIM of what :func:`scored_outputs` picks of ``kept`` under every
    protocol of :data:`PROTOCOLS`: one row per (test set, scored, protocol, image)."""
    rows = []
    for o, scored, preds in scored_outputs(kept):
        for proto, fn in PROTOCOLS.items():
            for name, scene, p, g in zip(o.names, o.scenes, preds, o.clean, strict=True):
                psnr, ssim = fn(p, g)
                rows.append(
                    {
                        "test_set": o.test_set,
                        "stand_in": o.stand_in,
                        "scored": scored,
                        "protocol": proto,
                        "image": name,
                        "scene": scene,
                        "height": int(g.shape[0]),
                        "width": int(g.shape[1]),
                        "psnr": psnr,
                        "ssim": ssim,
                    }
                )
    return rows


def protocol_effects(rows: list[dict]) -> list[dict]:
    """Per (test set, scored, protocol other than ours): ``n`` images, ``scenes``, the mean
    paired PSNR and SSIM difference to :data:`OURS` on the same images, with the PSNR
    difference's 95 % interval over the scenes (:func:`hierarchical_interval`)."""
    out = []
    for key in dict.fromkeys((r["test_set"], r["scored"]) for r in rows):
        mine = [r for r in rows if (r["test_set"], r["scored"]) == key]
        ours = {r["image"]: r for r in mine if r["protocol"] == OURS}
        for proto in dict.fromkeys(r["protocol"] for r in mine if r["protocol"] != OURS):
            theirs = [r for r in mine if r["protocol"] == proto]
            dp = [r["psnr"] - ours[r["image"]]["psnr"] for r in theirs]
            iv = hierarchical_interval(dp, [r["scene"] for r in theirs])
            out.append(
                {
                    "test_set": key[0],
                    "stand_in": theirs[0]["stand_in"],
                    "scored": key[1],
                    "protocol": proto,
                    "n": iv.images,
                    "scenes": iv.scenes,
                    "diff_psnr": iv.mean,
                    "lo_psnr": iv.lo,
                    "hi_psnr": iv.hi,
                    "diff_ssim": float(
                        np.mean([r["ssim"] - ours[r["image"]]["ssim"] for r in theirs])
                    ),
                }
            )
    return out


def scored_outputs(kept: list[Outputs]) -> list[tuple[Outputs, str, list[np.ndarray]]]:
    """(outputs, what, predictions): per test set its rainy input and the released model of
    each family for its benchmark (:data:`TRAINED_ON`)."""
    out = []
    for label in dict.fromkeys(o.test_set for o in kept):
        mine = {o.model: o for o in kept if o.test_set == label}
        first = next(iter(mine.values()))
        out.append((first, "input", first.rainy))
        for fam in FAMILIES:
            o = mine.get(f"{fam}-{TRAINED_ON[first.benchmark]}")
            if o is not None:
                out.append((o, f"{o.model} (released)", o.derained))
    return out


def run(params: Params, models: dict[str, nn.Module]) -> list[dict]:
    """Per-image rows of the profile: on :attr:`BeyondSize.protocol_images` scenes of every
    test set, whole (no crop: ``ssim.m`` downsamples from a shorter side of 384), the input
    and the released models of its benchmark, every protocol. Empty without models (there
    is nothing to derain; the input alone says little)."""
    size = beyond_size(params.profile)
    sets = chapter_sets(params)
    for_sets = {t.label: [f"{f}-{TRAINED_ON[t.benchmark]}" for f in FAMILIES] for t, _ in sets}
    mine = {m: models[m] for names in for_sets.values() for m in names if m in models}
    if not mine:
        return []
    rows: list[dict] = []
    for t, ds in sets:
        here = {m: mine[m] for m in for_sets[t.label] if m in mine}
        if here:
            rows += protocol_table(outputs(here, [(t, ds)], size.protocol_images))
    return rows
