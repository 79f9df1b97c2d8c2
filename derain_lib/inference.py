"""Derain images with a loaded model: tensors in, quantised uint8 images out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.io import (
    IMAGE_SUFFIXES,
    ImageReadError,
    list_images,
    read_image,
    write_image,
)
from .errors import DerainError
from .evaluate import check_inference_options, tiled_forward
from .metrics import quantize

#: The tile size and overlap ``derain_files`` uses for large images.
AUTO_TILE, AUTO_OVERLAP = 512, 64
#: Images above this many pixels run in tiles, so memory stays that of one 512x512 tile
#: (SIAN full needs about 8 kB per pixel: ~1.5 GiB peak RSS for a 448x336 photo).
MAX_WHOLE_PIXELS = AUTO_TILE * AUTO_TILE


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """HWC float image -> 1CHW tensor."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()


@torch.inference_mode()
def derain_array(
    model: nn.Module,
    img: np.ndarray,
    tile: int | None = None,
    overlap: int = AUTO_OVERLAP,
    stages: int | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """The last stage's output for one float RGB image, as float32 HWC (not clamped).

    ``tile``: run in overlapping tiles of this size; ``stages``: stop after this many
    stages; ``precision``: fp32, bf16 or auto (see ``evaluate.tiled_forward``)."""
    out = tiled_forward(model, to_tensor(img), tile, overlap, stages, precision)
    return out[0].permute(1, 2, 0).float().numpy()


def auto_tile(height: int, width: int) -> int | None:
    """The tile size :func:`derain_files` uses for an image: None (whole) up to 512x512 px."""
    return AUTO_TILE if height * width > MAX_WHOLE_PIXELS else None


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
    """``OUT`` is a folder (PNG under each input's stem) or, for one input, an image file name.

    Refused (one line): an output that is one of the inputs, an existing file unless
    ``overwrite``, a non-image file given as ``OUT``."""
    out = Path(out)
    if out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir():
        if len(files) != 1:
            raise DerainError(f"{out}: a single output file needs a single input, got {len(files)}")
        targets = [out]
    elif out.is_file():
        raise DerainError(f"{out}: exists and is not an image file name or a folder; not touched")
    else:
        stems = [f.stem for f in files]
        dup = sorted({s for s in stems if stems.count(s) > 1})
        if dup:
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
    model: nn.Module,
    inputs: list[str | Path],
    out: str | Path,
    quantize_mode: str = "round",
    tile: int | None = None,
    overwrite: bool = False,
    stages: int | None = None,
    precision: str = "fp32",
) -> Iterator[tuple[Path, Path | None, str | None]]:
    """Derain every input image, yielding ``(input, written PNG, None)`` as each is written,
    or ``(input, None, why)`` for an input that could not be read or is too small.

    A bad file does not stop the batch. ``stages``/``precision``: as in
    :func:`derain_array`, checked before any image is read. ``tile=None``: whole images up
    to ``MAX_WHOLE_PIXELS``, tiles of ``AUTO_TILE`` above, so a photo of any size fits in
    memory; an integer tiles every image larger than it. Outputs are written atomically."""
    check_inference_options(model, stages, precision)
    files = expand_inputs(inputs)
    targets = output_paths(files, out, overwrite)
    for src, dst in zip(files, targets, strict=True):
        try:
            img = read_image(src)
        except ImageReadError as e:
            yield src, None, str(e)
            continue
        if min(img.shape[:2]) < 8:
            yield src, None, f"{src}: image is {img.shape[1]}x{img.shape[0]}, at least 8x8 needed"
            continue
        size = tile if tile is not None else auto_tile(*img.shape[:2])
        overlap = min(AUTO_OVERLAP, size // 2) if size else 0
        out_img = derain_array(model, img, size, overlap, stages, precision)
        write_image(dst, quantize(out_img, quantize_mode))
        yield src, dst, None
