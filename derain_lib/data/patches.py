"""Training patches as the paper cuts them (Sec. III-E): 120x120 on PReNet's ``Im2Patch`` grid
at stride 40 / 80 / 100 for Rain100L / H / Rain1400, plus (Rain100L) the flipped image's grid."""

from __future__ import annotations

import bisect
import hashlib
import os
from itertools import accumulate
from pathlib import Path

import numpy as np
import torch

from ..errors import DerainError
from ..fsutil import atomic_path, data_root
from .datasets import PairedDataset

#: Decoded images up to this many bytes stay in memory, more go to a memory-mapped cache file.
RAM_BUDGET = int(float(os.environ.get("DERAIN_DECODE_RAM_MB", "4096")) * 2**20)
#: uint8 value -> the float32 :func:`~derain_lib.data.io.read_image` gives for it.
TO_FLOAT = np.arange(256, dtype=np.uint8).astype(np.float32) / np.float32(255)

PAPER_STRIDES = {"rain100l": 40, "rain100h": 80, "rain1400": 100}
PAPER_HFLIP = {"rain100l": True, "rain100h": False, "rain1400": False}
PAPER_PATCH = 120


def grid_positions(length: int, patch: int, stride: int) -> int:
    """Number of patch positions along one side."""
    if patch <= 0 or stride <= 0:
        raise ValueError(f"patch and stride must be positive, got {patch}, {stride}")
    return 0 if length < patch else (length - patch) // stride + 1


def count_patches(h: int, w: int, patch: int = PAPER_PATCH, stride: int = 40) -> int:
    """Patches a (h, w) image gives on the grid (without flip copies)."""
    return grid_positions(h, patch, stride) * grid_positions(w, patch, stride)


def _as_uint8(a: np.ndarray) -> np.ndarray:
    """The uint8 image whose :data:`TO_FLOAT` is exactly ``a``, else ``a`` (not 8-bit data)."""
    u = np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)
    return u if np.array_equal(TO_FLOAT[u], a) else a


class PatchSet(torch.utils.data.Dataset):
    """All grid patches of a paired set, ``ps[i] -> (rainy, clean)`` float32 3xPxP, image by
    image, then (``hflip``) those of the flipped images; decoded once, in memory or mem-mapped."""

    def __init__(
        self,
        dataset: PairedDataset,
        patch: int = PAPER_PATCH,
        stride: int = 40,
        hflip: bool = False,
        ram_budget: int | None = None,
        cache_dir: str | Path | None = None,
    ):
        self.dataset, self.patch, self.stride, self.hflip = dataset, patch, stride, hflip
        if any(p.clean is None for p in dataset.pairs):
            raise DerainError(f"{dataset.root}: training patches need ground truth for every image")
        self._sizes = dataset.sizes()
        self._grid = [
            (grid_positions(h, patch, stride), grid_positions(w, patch, stride))
            for h, w in self._sizes
        ]
        self._ends = list(accumulate((ny * nx for ny, nx in self._grid), initial=0))
        self.base_count = self._ends[-1]
        if self.base_count == 0:
            raise DerainError(
                f"{dataset.root}: no image is at least {patch}x{patch}, so there are no "
                f"{patch}x{patch} patches (use a smaller patch size)"
            )
        self.ram_budget = RAM_BUDGET if ram_budget is None else ram_budget
        self.cache_dir = Path(cache_dir) if cache_dir is not None else data_root() / "cache"
        self._images: list[tuple[np.ndarray, ...]] | None = None
        self.storage = "not decoded"

    def __len__(self) -> int:
        return self.base_count * (2 if self.hflip else 1)

    def locate(self, i: int) -> tuple[int, int, int, bool]:
        """(image index, top y, left x, flipped) of patch ``i``."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"patch index {i} out of range for {n} patches")
        flip, j = divmod(i % n, self.base_count)
        img = bisect.bisect_right(self._ends, j) - 1
        row, col = divmod(j - self._ends[img], self._grid[img][1])
        return img, row * self.stride, col * self.stride, bool(flip)

    def decode(self) -> PatchSet:
        """Decode every image (once); returns ``self``."""
        if self._images is not None:
            return self
        ends = list(accumulate((2 * h * w * 3 for h, w in self._sizes), initial=0))
        pairs = (list(map(_as_uint8, self.dataset.load(k))) for k in range(len(self.dataset)))
        if ends[-1] <= self.ram_budget:
            self._images = [tuple(pair) for pair in pairs]
            self.storage = "memory"
            return self
        key = hashlib.sha256()
        for f in self.dataset.files():
            key.update(f"{f.resolve()}|{f.stat().st_size}|{f.stat().st_mtime_ns}\n".encode())
        path = self.cache_dir / f"patches-{key.hexdigest()[:16]}.npy"
        if not path.is_file():
            with atomic_path(path) as tmp:
                raw = np.lib.format.open_memmap(tmp, "w+", np.uint8, (ends[-1],))
                for k, pair in enumerate(pairs):
                    if any(u.dtype != np.uint8 for u in pair):
                        raise DerainError(
                            f"{self.dataset.pairs[k].rainy}: not 8-bit image data; "
                            "the decoded-image cache holds 8-bit images only"
                        )
                    raw[ends[k] : ends[k + 1]] = np.stack(pair).reshape(-1)
                raw.flush()
                del raw
        raw = np.load(path, mmap_mode="r")
        self.storage = f"memory-mapped {path}"
        self._images = [
            tuple(raw[ends[k] : ends[k + 1]].reshape(2, h, w, 3))
            for k, (h, w) in enumerate(self._sizes)
        ]
        return self

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        k, y, x, flip = self.locate(i)
        out = []
        for a in self.decode()._images[k]:  # type: ignore[index]
            a = a[:, ::-1] if flip else a  # the whole image (a view), then the same grid
            p = a[y : y + self.patch, x : x + self.patch].transpose(2, 0, 1)
            p = TO_FLOAT[p] if p.dtype == np.uint8 else np.ascontiguousarray(p)
            out.append(torch.from_numpy(p))
        return out[0], out[1]

    def summary(self) -> str:
        """One line: images, patches (and the flip copies), patch size and stride."""
        flips = f" x2 with h-flip = {len(self)}" if self.hflip else ""
        return (
            f"{self.dataset.name}: {len(self.dataset)} images -> {self.base_count} patches "
            f"{self.patch}x{self.patch} at stride {self.stride}{flips}"
        )
