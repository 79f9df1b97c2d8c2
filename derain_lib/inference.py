"""Derain images with a loaded model, whole or in overlapping tiles (memory bounded on large
photos); each output pixel comes from the tile where it lies furthest from a seam."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .allocator import release_free_memory
from .data.io import (
    IMAGE_SUFFIXES,
    ImageReadError,
    list_images,
    read_alpha,
    read_image,
    write_image,
)
from .device import exact_fp32
from .errors import DerainError
from .metrics import quantize
from .models import ImageTooSmall, check_image_size
from .precision import PRECISIONS, autocast

OVERLAP = 32  # the default tile overlap (``eval.overlap``, ``--overlap``)
#: The smallest tile size and the overlap ``derain_files`` uses when it tiles on its own.
AUTO_TILE, AUTO_OVERLAP = 512, 64
#: On the CPU, larger images run in tiles (SIAN full needs about 8 kB per pixel).
MAX_WHOLE_PIXELS = AUTO_TILE * AUTO_TILE
#: GPU memory one pixel of a whole-image SIAN forward takes, with a margin (H200: a 4000x3000
#: photo peaks at 28 GiB in fp32).
GPU_BYTES_PER_PIXEL = 2800
#: Tile starts are multiples of this (SIAN's coarsest average pooling).
TILE_ALIGN = 4


def tile_spans(n: int, tile: int, overlap: int) -> list[tuple[int, ...]]:
    """Along one axis of length ``n``: ``(start, end, keep_start, keep_end)`` per tile; the
    kept regions tile ``[0, n)`` exactly, split at the middle of each overlap."""
    if tile < 8 or overlap < 0 or overlap >= tile:
        raise ValueError(
            f"need tile >= 8 and 0 <= overlap < tile, got tile {tile}, overlap {overlap}"
        )
    if n <= tile:
        return [(0, n, 0, n)]
    stride = max(TILE_ALIGN, (tile - overlap) // TILE_ALIGN * TILE_ALIGN)
    last = (n - tile) // TILE_ALIGN * TILE_ALIGN
    starts = list(range(0, last, stride)) + [last]
    ends = [min(s + tile, n) for s in starts[:-1]] + [n]
    bounds = [0] + [(starts[i + 1] + ends[i]) // 2 for i in range(len(starts) - 1)] + [n]
    return list(zip(starts, ends, bounds[:-1], bounds[1:], strict=True))


def check_inference_options(model: nn.Module, stages: int | None, precision: str) -> None:
    """A one-line ``DerainError`` for a stage count the model lacks or an unknown precision."""
    cfg = getattr(model, "config", None)  # SIAN's config, or PReNet's stages
    n = cfg.n_stages if hasattr(cfg, "n_stages") else int(getattr(model, "stages", 1))
    if stages is not None and not 1 <= stages <= n:
        raise DerainError(f"--stages {stages}: this model has stages 1 to {n}")
    if precision not in PRECISIONS:
        raise DerainError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")


@torch.inference_mode()
def tiled_forward(
    model: nn.Module, x: torch.Tensor, tile: int | None, overlap: int = OVERLAP,
    stages: int | None = None, precision: str = "fp32", every_stage: bool = False,
) -> torch.Tensor:  # fmt: skip
    """Stage ``stages``' output (default: the last) for a (B, 3, H, W) batch as float32, whole
    (``tile=None``) or tile by tile; ``every_stage``: every stage's, (S, B, 3, H, W)."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        with autocast(precision, x.device):
            outs = model(x) if stages is None else model(x, stages=stages)
        return torch.stack([o.float() for o in outs]) if every_stage else outs[-1].float()

    if tile is None or (x.shape[-2] <= tile and x.shape[-1] <= tile):
        return forward(x)
    out = None
    for ys, ye, ky0, ky1 in tile_spans(x.shape[-2], tile, overlap):
        for xs, xe, kx0, kx1 in tile_spans(x.shape[-1], tile, overlap):
            y = forward(x[..., ys:ye, xs:xe])
            if out is None:  # (S, B, 3, H, W) with every_stage, else (B, 3, H, W)
                out = x.new_empty((*y.shape[:-2], *x.shape[-2:]))
            out[..., ky0:ky1, kx0:kx1] = y[..., ky0 - ys : ky1 - ys, kx0 - xs : kx1 - xs]
            del y
            release_free_memory()  # peak memory stays one tile's worth (allocator.py)
    return out


def model_device(model: nn.Module) -> torch.device:
    """Where ``model`` runs; the CPU for a model without parameters (the rainy input)."""
    p = next(model.parameters(), None)
    return torch.device("cpu") if p is None else p.device


@torch.inference_mode()
def predict(
    model: nn.Module, img: np.ndarray, tile: int | None = None, overlap: int = OVERLAP,
    stages: int | None = None, precision: str = "fp32", every_stage: bool = False,
) -> np.ndarray | list[np.ndarray]:  # fmt: skip
    """Derain one float RGB HWC image on the model's device: :func:`tiled_forward` as float32
    HWC, not clamped (a list with ``every_stage``); fp32 is exact on a GPU too (TF32 off)."""
    with exact_fp32():
        y = tiled_forward(model, to_tensor(img, model_device(model)), tile, overlap, stages,
                          precision, every_stage)  # fmt: skip
    hwc = [s[0].permute(1, 2, 0).cpu().numpy() for s in (y if every_stage else [y])]
    return hwc if every_stage else hwc[0]


def to_tensor(img: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """HWC float image -> 1CHW float32 tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().to(device)


def auto_tile(
    height: int, width: int, device: torch.device | str = "cpu", free: int | None = None
) -> int | None:
    """The tile :func:`derain_files` uses: None (whole) or a size; on CUDA whole when it fits
    the ``free`` memory (measured when not given), else the largest tile fitting half of it."""
    device = torch.device(device)
    if device.type != "cuda":
        return AUTO_TILE if height * width > MAX_WHOLE_PIXELS else None
    if free is None:  # free memory plus what torch's caching allocator holds unused
        free = torch.cuda.mem_get_info(device)[0] + torch.cuda.memory_reserved(device)
        free -= torch.cuda.memory_allocated(device)
    if height * width * GPU_BYTES_PER_PIXEL <= free:
        return None
    side = int(math.sqrt(free / 2 / GPU_BYTES_PER_PIXEL)) // TILE_ALIGN * TILE_ALIGN
    return max(AUTO_TILE, side)


def predict_fitting(
    model: nn.Module, img: np.ndarray, tile: int | None, stages: int | None, precision: str
) -> np.ndarray:
    """:func:`predict` in the tile :func:`auto_tile` chooses when ``tile`` is None; a GPU
    out-of-memory error is retried in tiles of half the side, down to ``AUTO_TILE``."""
    device = model_device(model)
    size = tile if tile is not None else auto_tile(*img.shape[:2], device)
    while True:
        overlap = min(AUTO_OVERLAP, size // 2) if size else 0
        try:
            return predict(model, img, size, overlap, stages, precision)
        except torch.OutOfMemoryError:
            longest = max(img.shape[:2]) if size is None else size
            if tile is not None or longest <= AUTO_TILE:
                raise
            torch.cuda.empty_cache()  # a no-op without CUDA
            size = max(AUTO_TILE, longest // 2 // TILE_ALIGN * TILE_ALIGN)


def expand_inputs(inputs: list[str | Path]) -> list[Path]:
    """Files and folders (their images, not recursive) to a list of image files."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise DerainError(f"{p}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise ImageReadError(f"{p}: no such file or folder")
    return files


def output_paths(files: list[Path], out: str | Path, overwrite: bool = False) -> list[Path]:
    """``OUT`` is a folder (PNG under each input's stem) or, for one input, an image file;
    one line refuses an output that is an input, exists (unless ``overwrite``) or is no image."""
    out = Path(out)
    if out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir():
        if len(files) != 1:
            raise DerainError(f"{out}: a single output file needs a single input, got {len(files)}")
        targets = [out]
    elif out.is_file():
        raise DerainError(f"{out}: exists and is not an image file name or a folder; not touched")
    else:
        stems = [f.stem for f in files]
        if dup := sorted({s for s in stems if stems.count(s) > 1}):
            raise DerainError(
                f"two inputs share the stem {dup[0]!r}; their outputs would collide in {out}"
            )
        targets = [out / f"{f.stem}.png" for f in files]
    inputs = {f.resolve() for f in files}
    for t in targets:
        if t.resolve() in inputs:
            raise DerainError(
                f"{t}: is an input image; refusing to overwrite it (choose another -o)"
            )
        if t.exists() and not overwrite:
            raise DerainError(f"{t}: exists; pass --overwrite to replace it")
    return targets


def derain_files(
    model: nn.Module, inputs: list[str | Path], out: str | Path, quantize_mode: str = "round",
    tile: int | None = None, overwrite: bool = False, stages: int | None = None,
    precision: str = "fp32",
) -> Iterator[tuple[Path, Path | None, str | None]]:  # fmt: skip
    """Derain every input, yielding ``(input, written image, None)`` or ``(input, None, why)``
    for one that cannot be (a bad file does not stop the batch)."""
    check_inference_options(model, stages, precision)
    files = expand_inputs(inputs)
    targets = output_paths(files, out, overwrite)
    for src, dst in zip(files, targets, strict=True):
        try:
            img = read_image(src)
            check_image_size(*img.shape[:2], src)
        except (ImageReadError, ImageTooSmall) as e:
            yield src, None, str(e)
            continue
        alpha = read_alpha(src)  # derained RGB, the input's alpha reattached
        if alpha is not None and dst.suffix.lower() in (".jpg", ".jpeg", ".bmp"):
            yield src, None, f"{dst}: {dst.suffix} keeps no alpha channel; name a .png output"
            continue
        out_img = quantize(predict_fitting(model, img, tile, stages, precision), quantize_mode)
        write_image(dst, out_img if alpha is None else np.dstack([out_img, alpha]))
        yield src, dst, None
