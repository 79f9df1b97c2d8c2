"""Training patches exactly as the paper cuts them (Sec. III-E).

120x120 patches on a regular grid at stride 40 / 80 / 100 for Rain100L / Rain100H /
Rain1400 (PReNet's ``Im2Patch``: top-left corners ``0, s, 2s, ...`` while the patch fits),
plus, for Rain100L, the same grid cut from the left-right flipped image. Patch ``i`` is
found arithmetically (image, row, column, flip); shuffling is the trainer's seeded sampler.

:class:`PatchSet` reads an image when a patch needs it (through a small cache);
:class:`DecodedPatchSet`, what training uses, decodes every image once into uint8 (in
memory, or above :data:`RAM_BUDGET` bytes a memory-mapped ``.npy`` under
``<data root>/cache``) and gives the same patches in the same order, converted to float32
exactly as :func:`~derain_lib.data.io.read_image` does.
"""

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

#: Decoded training images up to this many bytes stay in memory; larger sets go to a
#: memory-mapped cache file (env ``DERAIN_DECODE_RAM_MB``; default 4 GiB).
RAM_BUDGET = int(float(os.environ.get("DERAIN_DECODE_RAM_MB", "4096")) * 2**20)
#: uint8 value -> the float32 :func:`~derain_lib.data.io.read_image` gives for it.
TO_FLOAT = np.arange(256, dtype=np.uint8).astype(np.float32) / np.float32(255)

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
    """All grid patches of a paired data set; ``ps[i] -> (rainy 3xPxP, clean 3xPxP)``.

    Index layout: the patches of image 0, 1, ... in row-major grid order, then (with
    ``hflip``) the same grid cut from the left-right flipped images, in the same order: a
    flipped patch is ``fliplr(image)[grid crop]``, not a mirrored unflipped crop (the two
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
        self._cache: dict[int, tuple[np.ndarray, ...]] = {}  # the last images read
        self._cache_size = max(1, cache_images)

    def __len__(self) -> int:
        return self.base_count * (2 if self.hflip else 1)

    def locate(self, i: int) -> tuple[int, int, int, bool]:
        """(image index, top y, left x, flipped) of patch ``i``."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"patch index {i} out of range for {n} patches")
        flip, j = divmod(i % n, self.base_count)
        img = bisect.bisect_right(self._ends, j)
        row, col = divmod(j - (self._ends[img - 1] if img else 0), self._grid[img][1])
        return img, row * self.stride, col * self.stride, bool(flip)

    def _image(self, k: int) -> tuple[np.ndarray, ...]:
        if k not in self._cache:
            if len(self._cache) >= self._cache_size:
                del self._cache[next(iter(self._cache))]
            self._cache[k] = self.dataset.load(k)  # type: ignore[assignment]
        return self._cache[k]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        k, y, x, flip = self.locate(i)
        out = []
        for a in self._image(k):
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


def _as_uint8(a: np.ndarray) -> np.ndarray | None:
    """The uint8 image whose :data:`TO_FLOAT` is exactly ``a``, or None (not 8-bit data)."""
    u = np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)
    return u if np.array_equal(TO_FLOAT[u], a) else None


class DecodedPatchSet(PatchSet):
    """:class:`PatchSet`'s patches (same index layout, same values) from images decoded
    once: call :meth:`decode` (in the training process, before any DataLoader worker
    starts, so workers share the arrays) or let the first patch do it.

    Images are kept as uint8 (float32 only for an image that is not 8-bit data); a set
    larger than ``ram_budget`` bytes is written once to a memory-mapped
    ``<cache_dir>/patches-<key>.npy`` (``cache_dir``: ``<data root>/cache``; the key hashes
    the files' paths, sizes and modification times) and read from it afterwards."""

    def __init__(
        self,
        *args: object,
        ram_budget: int | None = None,
        cache_dir: str | Path | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.ram_budget = RAM_BUDGET if ram_budget is None else ram_budget
        self.cache_dir = Path(cache_dir) if cache_dir is not None else data_root() / "cache"
        self._images: list[tuple[np.ndarray, ...]] | None = None
        self.storage = "not decoded"

    def decode(self) -> DecodedPatchSet:
        """Decode every image (once); returns ``self``."""
        if self._images is not None:
            return self
        sizes = self.dataset.sizes()
        ends = list(accumulate((2 * h * w * 3 for h, w in sizes), initial=0))
        if ends[-1] <= self.ram_budget:
            self._images = []
            for k in range(len(self.dataset)):
                pair = self.dataset.load(k)
                self._images.append(tuple(a if (u := _as_uint8(a)) is None else u for a in pair))
            self.storage = "memory"
            return self
        key = hashlib.sha256()
        for f in self.dataset.files():
            st = f.stat()
            key.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        path = self.cache_dir / f"patches-{key.hexdigest()[:16]}.npy"
        if not path.is_file():
            with atomic_path(path) as tmp:
                raw = np.lib.format.open_memmap(tmp, "w+", np.uint8, (ends[-1],))
                for k in range(len(self.dataset)):
                    for j, a in enumerate(self.dataset.load(k)):
                        if (u := _as_uint8(a)) is None:
                            raise DerainError(
                                f"{self.dataset.pairs[k].rainy}: not 8-bit image data; "
                                "the decoded-image cache holds 8-bit images only"
                            )
                        start = ends[k] + j * u.size
                        raw[start : start + u.size] = u.reshape(-1)
                raw.flush()
                del raw
        raw = np.load(path, mmap_mode="r")
        self.storage = f"memory-mapped {path}"
        self._images = []
        for k, (h, w) in enumerate(sizes):
            rainy, clean = raw[ends[k] : ends[k + 1]].reshape(2, h, w, 3)
            self._images.append((rainy, clean))
        return self

    def _image(self, k: int) -> tuple[np.ndarray, ...]:
        return self.decode()._images[k]  # type: ignore[index]


def paper_patchset(dataset: PairedDataset, benchmark: str) -> PatchSet:
    """The paper's patches for ``benchmark`` (rain100l, rain100h, rain1400)."""
    key = benchmark.lower()
    if key not in PAPER_STRIDES:
        raise ValueError(
            f"no paper patch setting for {benchmark!r}; known: {sorted(PAPER_STRIDES)}"
        )
    return PatchSet(dataset, PAPER_PATCH, PAPER_STRIDES[key], PAPER_HFLIP[key])
