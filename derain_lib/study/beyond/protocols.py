"""Section 5 of chapter 07: why published numbers for the same outputs disagree: the input and
the released models scored under every protocol of :data:`derain_lib.metrics.PROTOCOLS`."""

from __future__ import annotations

from operator import attrgetter, itemgetter

import numpy as np
from torch import nn

from ...metrics import PROTOCOLS
from ..plan import TRAINED_ON, Params
from ..stats import hierarchical_interval
from .common import FAMILIES, beyond_size, chapter_sets, groups
from .generalisation import Outputs, outputs

#: Our protocol: the first of :data:`PROTOCOLS`.
OURS = next(iter(PROTOCOLS))
#: PReNet's Rain100H PSNR as published: its README (PReNet's own scripts) and the SIAN
#: paper's Table III (arXiv 2006.05049). Quoted, not reproduced.
PUBLISHED_PRENET_RAIN100H = {"PReNet README": 29.46, "SIAN paper, Table III": 30.11}


def protocol_table(kept: list[Outputs]) -> list[dict]:
    """PSNR/SSIM of the input and the released models per (test set, protocol, image)."""
    rows = []
    for _, mine in groups(kept, attrgetter("test_set")):
        released = {f"{fam}-{TRAINED_ON[mine[0].benchmark]}" for fam in FAMILIES}
        scored = [(mine[0], "input", mine[0].rainy)]
        scored += [(o, f"{o.model} (released)", o.derained) for o in mine if o.model in released]
        for o, what, preds in scored:
            for proto, fn in PROTOCOLS.items():
                for name, scene, p, g in zip(o.names, o.scenes, preds, o.clean, strict=True):
                    psnr, ssim = fn(p, g)
                    rows.append(
                        {"test_set": o.test_set, "stand_in": o.stand_in, "scored": what,
                         "protocol": proto, "image": name, "scene": scene,
                         "height": int(g.shape[0]), "width": int(g.shape[1]),
                         "psnr": psnr, "ssim": ssim}
                    )  # fmt: skip
    return rows


def protocol_effects(rows: list[dict]) -> list[dict]:
    """Per (test set, scored, other protocol): ``n``, ``scenes``, the mean paired PSNR and
    SSIM difference to :data:`OURS`, with the PSNR one's 95 % interval over the scenes."""
    out = []
    for (test_set, scored), mine in groups(rows, itemgetter("test_set", "scored")):
        ours = {r["image"]: r for r in mine if r["protocol"] == OURS}
        others = [r for r in mine if r["protocol"] != OURS]
        for proto, theirs in groups(others, itemgetter("protocol")):
            dp = [r["psnr"] - ours[r["image"]]["psnr"] for r in theirs]
            iv = hierarchical_interval(dp, [r["scene"] for r in theirs])
            ds = [r["ssim"] - ours[r["image"]]["ssim"] for r in theirs]
            out.append(
                {"test_set": test_set, "stand_in": theirs[0]["stand_in"], "scored": scored,
                 "protocol": proto, "n": iv.images, "scenes": iv.scenes, "diff_psnr": iv.mean,
                 "lo_psnr": iv.lo, "hi_psnr": iv.hi, "diff_ssim": float(np.mean(ds))}
            )  # fmt: skip
    return out


def run(params: Params, models: dict[str, nn.Module]) -> list[dict]:
    """Per-image rows on ``protocol_images`` whole scenes of every set with released models."""
    size = beyond_size(params.profile)
    rows: list[dict] = []
    for t, ds in chapter_sets(params):
        here = {m: models[m] for f in FAMILIES if (m := f"{f}-{TRAINED_ON[t.benchmark]}") in models}
        if here:
            rows += protocol_table(outputs(here, [(t, ds)], size.protocol_images))
    return rows
