"""Training patches exactly as the paper cuts them (Sec. III-E), streamed from disk.

120x120 patches on a regular grid at stride 40 / 80 / 100 for Rain100L / Rain100H /
Rain1400 (PReNet's ``Im2Patch``: top-left corners ``0, s, 2s, ...`` while the patch fits),
plus horizontally flipped copies for Rain100L, cut as the authors cut them: the whole image
is flipped and the same top-left-anchored grid is cut from the flipped image. Patch ``i``
is found arithmetically (image, row, column, flip) and its image is read on demand through
a small LRU cache, so Rain1400's 12,600 training images never need to be in memory at
once. There is no hidden randomness: shuffling belongs to the trainer's seeded sampler.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from itertools import accumulate

import numpy as np
import torch

from ..errors import DerainError
from .datasets import PairedDataset

#: The paper's patch strides per training set (patch size 120, Sec. III-E).
PAPER_STRIDES = {"rain100l": 40, "rain100h": 80, "rain1400": 100}
#: Rain100L is the one set trained with horizontal-flip copies.
PAPER_HFLIP = {"rain100l": True, "rain100h": False, "rain1400": False}
PAPER_PATCH = 120


def grid_positions(length: int, patch: int, stride: int) -> int:
    """Number of patch positions along one side: ``floor((length - patch) / stride) + 1``."""
    if patch <= 0 or stride <= 0:
        raise ValueError(f"patch and stride must be positive, got {patch}, {stride}")
    return 0 if length < patch else (length - patch) // stride + 1


def count_patches(h: int, w: int, patch: int = PAPER_PATCH, stride: int = 40) -> int:
    """Patches a (h, w) image gives on the grid (without flip copies)."""
    return grid_positions(h, patch, stride) * grid_positions(w, patch, stride)


class PatchSet(torch.utils.data.Dataset):
    """All grid patches of a paired data set; ``ps[i] -> (rainy 3xPxP, clean 3xPxP)`` tensors.

    Index layout: the patches of image 0, 1, ... in row-major grid order, then (with
    ``hflip``) the same grid cut from the left-right flipped images, in the same order.
    A flipped patch is ``fliplr(image)[grid crop]``, not a mirrored unflipped crop (the two
    differ by ``(W - patch) mod stride`` pixels; MODEL_SPEC §5)."""

    def __init__(
        self,
        dataset: PairedDataset,
        patch: int = PAPER_PATCH,
        stride: int = 40,
        hflip: bool = False,
        cache_images: int = 4,
    ):
        self.dataset, self.patch, self.stride, self.hflip = dataset, patch, stride, hflip
        if any(p.clean is None for p in dataset.pairs):
            raise DerainError(f"{dataset.root}: training patches need ground truth for every image")
        self._grid = [
            (grid_positions(h, patch, stride), grid_positions(w, patch, stride))
            for h, w in dataset.sizes()
        ]
        self._ends = list(accumulate(ny * nx for ny, nx in self._grid))
        self.base_count = self._ends[-1] if self._ends else 0
        if self.base_count == 0:
            raise DerainError(
                f"{dataset.root}: no image is at least {patch}x{patch}, so there are no "
                f"{patch}x{patch} patches (use a smaller patch size)"
            )
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_size = max(1, cache_images)

    def __len__(self) -> int:
        return self.base_count * (2 if self.hflip else 1)

    def locate(self, i: int) -> tuple[int, int, int, bool]:
        """(image index, top y, left x, flipped) of patch ``i``."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"patch index {i} out of range for {n} patches")
        i %= n
        flip, j = divmod(i, self.base_count)
        img = bisect.bisect_right(self._ends, j)
        local = j - (self._ends[img - 1] if img else 0)
        row, col = divmod(local, self._grid[img][1])
        return img, row * self.stride, col * self.stride, bool(flip)

    def _image(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        pair = self.dataset.load(k)
        self._cache[k] = pair  # type: ignore[assignment]
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return pair  # type: ignore[return-value]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        k, y, x, flip = self.locate(i)
        rainy, clean = self._image(k)
        out = []
        for a in (rainy, clean):
            if flip:
                a = a[:, ::-1]  # the whole image (a view), then the same grid
            p = a[y : y + self.patch, x : x + self.patch]
            out.append(torch.from_numpy(np.ascontiguousarray(p.transpose(2, 0, 1))))
        return out[0], out[1]

    def summary(self) -> str:
        """One line: images, patches (and the flip copies), patch size and stride."""
        flips = f" x2 with h-flip = {len(self)}" if self.hflip else ""
        return (
            f"{self.dataset.name}: {len(self.dataset)} images -> {self.base_count} patches "
            f"{self.patch}x{self.patch} at stride {self.stride}{flips}"
        )


def paper_patchset(dataset: PairedDataset, benchmark: str) -> PatchSet:
    """The paper's patches for ``benchmark`` (rain100l, rain100h, rain1400)."""
    key = benchmark.lower()
    if key not in PAPER_STRIDES:
        raise ValueError(
            f"no paper patch setting for {benchmark!r}; known: {sorted(PAPER_STRIDES)}"
        )
    return PatchSet(dataset, PAPER_PATCH, PAPER_STRIDES[key], PAPER_HFLIP[key])
