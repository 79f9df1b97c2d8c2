"""Section 5 of chapter 07: why published numbers for the same outputs disagree.

The same outputs (the rainy input, and the released SIAN and PReNet weights for each test
set's benchmark) scored under every protocol of :data:`derain_lib.metrics.PROTOCOLS`; one
row per (test set, what was scored, protocol, image). :func:`protocol_effects` gives each
protocol's difference to ours, and :data:`PUBLISHED_PRENET_RAIN100H` the two published
PReNet Rain100H numbers that disagree (its README and the SIAN paper's Table III), to ask
which protocol, if any, explains the gap.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from ...metrics import PROTOCOLS
from ..plan import TRAINED_ON, Params
from .common import FAMILIES, beyond_size, chapter_sets, mean_ci
from .generalisation import Outputs, outputs

#: Our protocol: the first of :data:`PROTOCOLS`.
OURS = next(iter(PROTOCOLS))
#: PReNet's Rain100H PSNR as published: its README (PReNet's own scripts) and the SIAN
#: paper's Table III (arXiv 2006.05049). Quoted, not reproduced.
PUBLISHED_PRENET_RAIN100H = {"PReNet README": 29.46, "SIAN paper, Table III": 30.11}


def protocol_table(images: list[tuple[str, str, list[np.ndarray], list[np.ndarray]]]) -> list[dict]:
    """Per-image PSNR/SSIM of each (test set, what was scored, predictions, ground
    truths) under every protocol of :data:`PROTOCOLS`: one row per image and protocol."""
    rows = []
    for test_set, scored, preds, gts in images:
        for proto, fn in PROTOCOLS.items():
            for i, (p, g) in enumerate(zip(preds, gts, strict=True)):
                psnr, ssim = fn(p, g)
                rows.append(
                    {
                        "test_set": test_set,
                        "scored": scored,
                        "protocol": proto,
                        "image": i,
                        "psnr": psnr,
                        "ssim": ssim,
                    }
                )
    return rows


def protocol_means(rows: list[dict]) -> list[dict]:
    """One row per (test set, scored, protocol): ``n`` and the mean PSNR/SSIM (per-image
    rows in; rows already of this form pass through)."""
    if rows and "image" not in rows[0]:
        return rows
    out = []
    for key in dict.fromkeys((r["test_set"], r["scored"], r["protocol"]) for r in rows):
        mine = [r for r in rows if (r["test_set"], r["scored"], r["protocol"]) == key]
        out.append(
            {
                **dict(zip(("test_set", "scored", "protocol"), key, strict=True)),
                "n": len(mine),
                "psnr": float(np.mean([r["psnr"] for r in mine])),
                "ssim": float(np.mean([r["ssim"] for r in mine])),
            }
        )
    return out


def protocol_effects(rows: list[dict]) -> list[dict]:
    """Per (test set, scored, protocol other than ours): the mean paired PSNR and SSIM
    difference to :data:`OURS` on the same images, with the PSNR difference's 95 %
    interval (per-image rows needed: older mean rows give the difference of means)."""
    out = []
    per_image = bool(rows) and "image" in rows[0]
    for key in dict.fromkeys((r["test_set"], r["scored"]) for r in rows):
        mine = [r for r in rows if (r["test_set"], r["scored"]) == key]
        ours = {r.get("image"): r for r in mine if r["protocol"] == OURS}
        for proto in dict.fromkeys(r["protocol"] for r in mine):
            if proto == OURS:
                continue
            theirs = [r for r in mine if r["protocol"] == proto and r.get("image") in ours]
            dp = [r["psnr"] - ours[r.get("image")]["psnr"] for r in theirs]
            ds = [r["ssim"] - ours[r.get("image")]["ssim"] for r in theirs]
            m, lo, hi = mean_ci(dp) if per_image else (float(np.mean(dp)), np.nan, np.nan)
            out.append(
                {
                    "test_set": key[0],
                    "scored": key[1],
                    "protocol": proto,
                    "n": len(theirs),
                    "diff_psnr": m,
                    "lo_psnr": lo,
                    "hi_psnr": hi,
                    "diff_ssim": float(np.mean(ds)),
                }
            )
    return out


def scored_outputs(kept: list[Outputs]) -> list[tuple[str, str, list, list]]:
    """(test set, what, predictions, ground truths): per test set its rainy input and the
    released model of each family for its benchmark (:data:`TRAINED_ON`)."""
    out = []
    for label in dict.fromkeys(o.test_set for o in kept):
        mine = {o.model: o for o in kept if o.test_set == label}
        first = next(iter(mine.values()))
        out.append((label, "input", first.rainy, first.clean))
        for fam in FAMILIES:
            o = mine.get(f"{fam}-{TRAINED_ON[first.benchmark]}")
            if o is not None:
                out.append((label, f"{o.model} (released)", o.derained, o.clean))
    return out


def run(params: Params, models: dict[str, nn.Module]) -> list[dict]:
    """Per-image rows of the profile: on every test set (the generalisation section's
    images and crop), the input and the released models of its benchmark, every protocol.
    Empty without models (there is nothing to derain; the input alone says little)."""
    size = beyond_size(params.profile)
    rows: list[dict] = []
    for t, ds in chapter_sets(params):
        names = [f"{f}-{TRAINED_ON[t.benchmark]}" for f in FAMILIES]
        mine = {m: models[m] for m in names if m in models}
        if not mine:
            continue
        kept = outputs(mine, {t.label: (t.benchmark, ds)}, size.test_images, size.test_crop)
        rows += protocol_table(scored_outputs(kept))
    return rows
