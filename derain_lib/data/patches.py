"""Training patches exactly as the paper cuts them (Sec. III-E).

120x120 patches on a regular grid at stride 40 / 80 / 100 for Rain100L / Rain100H /
Rain1400 (PReNet's ``Im2Patch``: top-left corners ``0, s, 2s, ...`` while the patch fits),
plus horizontally flipped copies for Rain100L, cut as the authors cut them: the whole image
is flipped and the same top-left-anchored grid is cut from the flipped image. Patch ``i``
is found arithmetically (image, row, column, flip). There is no hidden randomness:
shuffling belongs to the trainer's seeded sampler.

Two ways to serve them, with the same patches in the same order (``tests/
test_patch_pipeline.py``): :class:`PatchSet` reads an image on demand through a small LRU
cache (what ``derain data patches`` counts; little memory, but with shuffled batches it
decodes an image for almost every patch), and :class:`DecodedPatchSet`, what training
uses, decodes every image once into uint8 (in memory, or for sets above
:data:`RAM_BUDGET` bytes a memory-mapped cache file under ``<data root>/cache``, beside the
data indexes) and cuts patches by index, converting to float32 exactly as
:func:`~derain_lib.data.io.read_image` does.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
from collections import OrderedDict
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


def _as_uint8(a: np.ndarray) -> np.ndarray | None:
    """The uint8 image whose :data:`TO_FLOAT` is exactly ``a``, or None (not 8-bit data)."""
    u = np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)
    return u if np.array_equal(TO_FLOAT[u], a) else None


class DecodedPatchSet(PatchSet):
    """:class:`PatchSet`'s patches (same index layout, same values) from images decoded
    once: call :meth:`decode` (in the training process, before any DataLoader worker
    starts, so workers share the arrays) or let the first patch do it.

    Images are kept as uint8 (float32 only for an image that is not 8-bit data); a set
    larger than ``ram_budget`` bytes is written once to a memory-mapped cache file
    ``<cache_dir>/patches-<key>.u8`` (``cache_dir``: ``<data root>/cache``; the key hashes
    the files' paths, sizes and modification times) and read from it afterwards."""

    def __init__(
        self,
        dataset: PairedDataset,
        patch: int = PAPER_PATCH,
        stride: int = 40,
        hflip: bool = False,
        ram_budget: int | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__(dataset, patch, stride, hflip)
        self.ram_budget = RAM_BUDGET if ram_budget is None else ram_budget
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._images: list[tuple[np.ndarray, np.ndarray]] | None = None
        self.storage = "not decoded"

    def _nbytes(self) -> int:
        return sum(2 * h * w * 3 for h, w in self.dataset.sizes())

    def _key(self) -> str:
        h = hashlib.sha256()
        for p in self.dataset.pairs:
            for f in (p.rainy, p.clean):
                st = Path(f).stat()
                h.update(f"{Path(f).resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    def decode(self) -> DecodedPatchSet:
        """Decode every image (once); returns ``self``."""
        if self._images is not None:
            return self
        if self._nbytes() > self.ram_budget:
            self._images = self._mapped()
            return self
        images = []
        for k in range(len(self.dataset)):
            pair = self.dataset.load(k)
            images.append(tuple(_as_uint8(a) if _as_uint8(a) is not None else a for a in pair))
        self._images = images  # type: ignore[assignment]
        self.storage = "memory"
        return self

    def _mapped(self) -> list[tuple[np.ndarray, np.ndarray]]:
        folder = self.cache_dir or data_root() / "cache"
        path = folder / f"patches-{self._key()}.u8"
        sizes = self.dataset.sizes()
        offsets = list(accumulate((2 * h * w * 3 for h, w in sizes), initial=0))
        meta = path.with_suffix(".json")
        if not (
            path.is_file() and meta.is_file() and json.loads(meta.read_text()) == sizes_json(sizes)
        ):
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                raw = np.memmap(tmp, np.uint8, "w+", shape=(offsets[-1],))
                for k, (h, w) in enumerate(sizes):
                    rainy, clean = self.dataset.load(k)
                    for j, a in enumerate((rainy, clean)):
                        u = _as_uint8(a)
                        if u is None:
                            raise DerainError(
                                f"{self.dataset.pairs[k].rainy}: not 8-bit image data; "
                                "the decoded-image cache holds 8-bit images only"
                            )
                        start = offsets[k] + j * h * w * 3
                        raw[start : start + h * w * 3] = u.reshape(-1)
                raw.flush()
                del raw
            with atomic_path(meta) as tmp:
                Path(tmp).write_text(json.dumps(sizes_json(sizes)))
        raw = np.memmap(path, np.uint8, "r", shape=(offsets[-1],))
        self.storage = f"memory-mapped {path}"
        return [
            tuple(
                raw[offsets[k] + j * h * w * 3 : offsets[k] + (j + 1) * h * w * 3].reshape(h, w, 3)
                for j in range(2)
            )
            for k, (h, w) in enumerate(sizes)
        ]  # type: ignore[misc]

    def _image(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.decode()._images[k]  # type: ignore[index]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        k, y, x, flip = self.locate(i)
        out = []
        for a in self._image(k):
            if flip:
                a = a[:, ::-1]
            p = a[y : y + self.patch, x : x + self.patch].transpose(2, 0, 1)
            p = TO_FLOAT[p] if p.dtype == np.uint8 else np.ascontiguousarray(p)
            out.append(torch.from_numpy(p))
        return out[0], out[1]


def sizes_json(sizes: list[tuple[int, int]]) -> list[list[int]]:
    """The image sizes a decoded-image cache file was written for (its ``.json``)."""
    return [[int(h), int(w)] for h, w in sizes]


def paper_patchset(dataset: PairedDataset, benchmark: str) -> PatchSet:
    """The paper's patches for ``benchmark`` (rain100l, rain100h, rain1400)."""
    key = benchmark.lower()
    if key not in PAPER_STRIDES:
        raise ValueError(
            f"no paper patch setting for {benchmark!r}; known: {sorted(PAPER_STRIDES)}"
        )
    return PatchSet(dataset, PAPER_PATCH, PAPER_STRIDES[key], PAPER_HFLIP[key])
