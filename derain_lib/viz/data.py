"""Figures of the data: sample pairs of the study's test sets, synthetic vs real rain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..data.io import read_image, read_image_uint8
from ..data.synth import add_rain
from ..metrics import quantize, score_pair

#: Real photos shown (files of ../shared/data/real_rain), chosen for visible streaks.
REAL_PHOTOS = ("2.jpg", "40.jpg", "113.jpg", "137.jpg")
CROP = 200


def synthetic_vs_real(shared: str | Path, seed: int = 0) -> Figure:
    """docs/img/synthetic_vs_real.png: a Rain100L clean image, its benchmark rain, our light
    and heavy rain on it (with Input PSNR), then real rainy photographs; centre crops."""
    sample, real = Path(shared) / "data" / "rain100l_sample", Path(shared) / "data" / "real_rain"
    clean = read_image(sample / "norain" / "norain-001.png")
    bench = read_image(sample / "rainy" / "rain-001.png")

    def psnr(x: np.ndarray) -> str:
        return f"Input PSNR {score_pair(quantize(x), quantize(clean))[0]:.1f} dB"

    light, heavy = add_rain(clean, "light", seed), add_rain(clean, "heavy", seed)
    panels = [
        (clean, "clean (Rain100L norain-001)"),
        (bench, f"Rain100L rain-001\n{psnr(bench)}"),
        (light, f"ours, light preset\n{psnr(light)}"),
        (heavy, f"ours, heavy preset\n{psnr(heavy)}"),
        *((read_image_uint8(real / name), f"real rain photo: {name}") for name in REAL_PHOTOS),
    ]
    fig = Figure(figsize=(12, 7), dpi=100)
    for ax, (img, title) in zip(fig.subplots(2, 4).ravel(), panels, strict=True):
        s = min(CROP, *img.shape[:2])
        y, x = ((n - s) // 2 for n in img.shape[:2])
        ax.imshow(img[y : y + s, x : x + s], interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"Synthetic vs real rain ({CROP}x{CROP} centre crops at full resolution)")
    fig.tight_layout()
    return fig


def sample_pairs(results: str | Path) -> Figure:
    """The first pair of each test set (rainy above, clean below), from ``samples.json``."""
    results = Path(results)
    panels = json.loads((results / "samples.json").read_text())
    fig = Figure(figsize=(3.2 * max(len(panels), 1), 4.6))
    axes = fig.subplots(2, max(len(panels), 1), squeeze=False)
    for c, p in enumerate(panels):
        for r, key in enumerate(("rainy", "clean")):
            axes[r, c].set_axis_off()
            if p[key]:
                axes[r, c].imshow(read_image(results / p[key]))
        axes[0, c].set_title(p["label"], fontsize=8)
        axes[1, c].set_title("ground truth" if p["clean"] else "", fontsize=8)
        if not p["clean"]:
            axes[1, c].text(0.5, 0.5, "no ground truth\n(real photo)", ha="center", fontsize=8)
    fig.tight_layout()
    return fig
