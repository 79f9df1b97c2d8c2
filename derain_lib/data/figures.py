"""The data documentation's figure: our synthetic rain next to benchmark and real rain.

``python -m derain_lib.data.figures SHARED_DIR OUT.png`` regenerates docs/img/synthetic_vs_real.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..fsutil import atomic_path
from .io import read_image, read_image_uint8
from .synth import add_rain

#: Real photos shown (files of ../shared/data/real_rain), chosen for visible streaks.
REAL_PHOTOS = ("2.jpg", "40.jpg", "113.jpg", "137.jpg")
CROP = 200


def _center(a: np.ndarray, size: int = CROP) -> np.ndarray:
    h, w = a.shape[:2]
    s = min(size, h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return a[y : y + s, x : x + s]


def synthetic_vs_real(shared: str | Path, out: str | Path, seed: int = 0) -> Path:
    """Top row: a Rain100L clean image, its benchmark rain, and our light and heavy rain on it
    (with Input PSNR); bottom row: real rainy photographs. Centre crops at full resolution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..metrics import quantize, score

    shared = Path(shared)
    sample = shared / "data" / "rain100l_sample"
    clean = read_image(sample / "norain" / "norain-001.png")
    bench = read_image(sample / "rainy" / "rain-001.png")
    light = add_rain(clean, "light", seed)
    heavy = add_rain(clean, "heavy", seed)

    def psnr(x: np.ndarray) -> str:
        return f"Input PSNR {score(quantize(x), quantize(clean))[0]:.1f} dB"

    top = [
        (clean, "clean (Rain100L norain-001)"),
        (bench, f"Rain100L rain-001\n{psnr(bench)}"),
        (light, f"ours, light preset\n{psnr(light)}"),
        (heavy, f"ours, heavy preset\n{psnr(heavy)}"),
    ]
    real = shared / "data" / "real_rain"
    bottom = [(read_image_uint8(real / name), f"real rain photo: {name}") for name in REAL_PHOTOS]

    fig, axes = plt.subplots(2, 4, figsize=(12, 7))
    for ax, (img, title) in zip(axes.ravel(), top + bottom, strict=True):
        ax.imshow(_center(img), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"Synthetic vs real rain ({CROP}x{CROP} centre crops at full resolution)")
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(synthetic_vs_real(sys.argv[1], sys.argv[2]))
