"""Evaluation: whole-image or tiled inference, per-image PSNR/SSIM (MATLAB Y protocol), PNGs.

Tiling keeps memory bounded on large photos: tiles overlap by ``overlap`` pixels, start
on multiples of the model's coarsest pooling factor (4 for SIAN), and each output pixel
is taken from the tile where it lies furthest from a seam. An image that fits in one tile
runs whole, so its result is the whole-image result exactly. Across seams SIAN's result
differs slightly from whole-image inference: its receptive field is large (pooling,
recurrence) and its ``align_corners=True`` upsampling depends on the input size, so a
seam cannot be made exact; the overlap bounds the difference (see the tests).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .allocator import release_free_memory
from .data.io import write_png
from .errors import DerainError
from .fsutil import atomic_path
from .metrics import quantize, score
from .precision import PRECISIONS, autocast

#: Tile starts are multiples of this (SIAN's coarsest average pooling).
TILE_ALIGN = 4


def tile_spans(n: int, tile: int, overlap: int, align: int = TILE_ALIGN) -> list[tuple[int, ...]]:
    """Along one axis of length ``n``: ``(start, end, keep_start, keep_end)`` per tile.

    Starts are multiples of ``align``; the last tile ends at ``n`` (it may be up to
    ``align - 1`` pixels longer than ``tile``); kept regions tile ``[0, n)`` exactly,
    split at the middle of each overlap.
    """
    if tile < 8 or overlap < 0 or overlap >= tile:
        raise ValueError(
            f"need tile >= 8 and 0 <= overlap < tile, got tile {tile}, overlap {overlap}"
        )
    if n <= tile:
        return [(0, n, 0, n)]
    stride = max(align, (tile - overlap) // align * align)
    last = (n - tile) // align * align
    starts = list(range(0, last, stride)) + [last]
    ends = [min(s + tile, n) for s in starts[:-1]] + [n]
    bounds = [0] + [(starts[i + 1] + ends[i]) // 2 for i in range(len(starts) - 1)] + [n]
    return [
        (s, e, bounds[i], bounds[i + 1]) for i, (s, e) in enumerate(zip(starts, ends, strict=True))
    ]


def check_inference_options(model: nn.Module, stages: int | None, precision: str) -> None:
    """A one-line ``DerainError`` for a stage count the model does not have or an
    unknown precision, before any work is done."""
    n = model_stages(model)
    if stages is not None and not 1 <= stages <= n:
        raise DerainError(f"--stages {stages}: this model has stages 1 to {n}")
    if precision not in PRECISIONS:
        raise DerainError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")


def model_stages(model: nn.Module) -> int:
    """How many stages a SIAN or PReNet model runs by default."""
    cfg = getattr(model, "config", None)
    return cfg.n_stages if hasattr(cfg, "n_stages") else int(getattr(model, "stages", 1))


def last_stage(
    model: nn.Module, x: torch.Tensor, stages: int | None = None, precision: str = "fp32"
) -> torch.Tensor:
    """The output of stage ``stages`` (default: the last) as float32, the forward run in
    ``precision`` (``fp32``, ``bf16`` or ``auto``; see :mod:`derain_lib.precision`).
    Only the first ``stages`` stages are computed."""
    with autocast(precision, x.device):
        outs = model(x) if stages is None else model(x, stages=stages)
    return outs[-1].float()


@torch.inference_mode()
def tiled_forward(
    model: nn.Module,
    x: torch.Tensor,
    tile: int | None,
    overlap: int = 32,
    stages: int | None = None,
    precision: str = "fp32",
) -> torch.Tensor:
    """Stage ``stages``' output (default: the last) for a (B, 3, H, W) batch, computed
    tile by tile in ``precision`` (see :func:`last_stage`).

    ``tile=None`` (or an image no larger than one tile) runs the whole image at once.
    The result is assembled on the input's device, one tile's activations at a time.
    """
    if tile is None or (x.shape[-2] <= tile and x.shape[-1] <= tile):
        return last_stage(model, x, stages, precision)
    out = torch.empty_like(x)
    for ys, ye, ky0, ky1 in tile_spans(x.shape[-2], tile, overlap):
        for xs, xe, kx0, kx1 in tile_spans(x.shape[-1], tile, overlap):
            y = last_stage(model, x[..., ys:ye, xs:xe], stages, precision)
            out[..., ky0:ky1, kx0:kx1] = y[..., ky0 - ys : ky1 - ys, kx0 - xs : kx1 - xs]
            del y
            release_free_memory()  # peak memory stays one tile's worth (allocator.py)
    return out


def open_data(spec: str, root: str | Path = "."):
    """A ``PairedDataset`` from ``embedded:<preset>:<split>[:<size>]`` or a folder.

    Relative folders are taken under ``root``.
    """
    if spec.startswith("embedded:"):
        from .data.embedded import embedded_dataset

        parts = spec.split(":")[1:]
        if len(parts) not in (2, 3):
            raise DerainError(
                f"data {spec!r}: expected embedded:<light|heavy>:<train|test>[:<quick|smoke>]"
            )
        return embedded_dataset(*parts)
    from .data.datasets import open_dataset

    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = Path(root).expanduser() / path
    return open_dataset(path)


def model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def predict(
    model: nn.Module,
    img: np.ndarray,
    tile: int | None = None,
    overlap: int = 32,
    stages: int | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """Derain one float HWC image: float32 HWC (not clamped); ``stages`` and
    ``precision`` as in :func:`tiled_forward`."""
    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    y = tiled_forward(model, x.to(model_device(model)), tile, overlap, stages, precision)
    return y[0].permute(1, 2, 0).float().cpu().numpy()


@dataclass
class EvalResult:
    """Per-image rows (name, psnr, ssim) and their means (the MATLAB scripts' convention)."""

    rows: list[dict] = field(default_factory=list)

    @property
    def n(self) -> int:
        return sum(1 for r in self.rows if not math.isnan(r["psnr"]))

    def _mean(self, key: str) -> float:
        vals = [r[key] for r in self.rows if not math.isnan(r[key])]
        return float(np.mean(vals)) if vals else math.nan

    @property
    def psnr(self) -> float:
        return self._mean("psnr")

    @property
    def ssim(self) -> float:
        return self._mean("ssim")

    def table(self):
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["name", "psnr", "ssim"])

    def summary(self) -> dict:
        return {"n": self.n, "psnr": self.psnr, "ssim": self.ssim}

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["name", "psnr", "ssim"])
            w.writeheader()
            w.writerows(self.rows)
        return path


def evaluate(
    model: nn.Module,
    dataset,
    out_dir: str | Path | None = None,
    tile: int | None = None,
    overlap: int = 32,
    quantize_mode: str = "round",
    max_images: int | None = None,
    save_images: bool = True,
    progress: bool = False,
    stages: int | None = None,
    precision: str = "fp32",
) -> EvalResult:
    """Derain and score every pair of ``dataset`` (a ``PairedDataset``), with the output
    of stage ``stages`` (default: the last) computed in ``precision`` (default fp32).

    With ``out_dir``: ``per_image.csv`` there, and (``save_images``) the quantised
    outputs as ``outputs/<name>.png``. Pairs without ground truth get NaN scores.
    """
    from tqdm.auto import tqdm

    check_inference_options(model, stages, precision)
    was_training = model.training
    model.eval()
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    result = EvalResult()
    out = Path(out_dir) if out_dir is not None else None
    try:
        for i in tqdm(range(n), desc="evaluate", disable=not progress, leave=False):
            name = dataset.pairs[i].name
            rainy, clean = dataset.load(i)
            if min(rainy.shape[:2]) < 8:
                raise DerainError(f"{dataset.pairs[i].rainy}: image smaller than 8x8")
            pred = predict(model, rainy, tile, overlap, stages, precision)
            ps, ss = score(pred, clean, quantize_mode) if clean is not None else (math.nan,) * 2
            result.rows.append({"name": name, "psnr": ps, "ssim": ss})
            if out is not None and save_images:
                write_png(out / "outputs" / f"{Path(name).stem}.png", quantize(pred, quantize_mode))
    finally:
        model.train(was_training)
    if out is not None:
        result.write_csv(out / "per_image.csv")
    return result
