"""The embedded default data set, offline: seeded crops of scikit-image's photos (split by
source) rained by :mod:`.synth`, under ``<root>/<size>-<recipe>/<preset>/<split>/``."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
from filelock import FileLock
from PIL import Image

from ..errors import DerainError
from ..fsutil import atomic_write_text, data_root
from .datasets import PairedDataset, open_dataset
from .fetch import sha256_file
from .io import write_png
from .synth import PRESETS, SPEC, add_rain

RECIPE_VERSION, SEED = SPEC["recipe_version"], SPEC["seed"]
TRAIN_SOURCES, TEST_SOURCES = tuple(SPEC["train_sources"]), tuple(SPEC["test_sources"])
SPLITS = ("train", "test")


#: size -> pairs per split and the landscape image size: {train, test, height, width}
SIZES: dict[str, dict[str, int]] = SPEC["sizes"]


def recipe_key(size: str) -> str:
    """Hash of everything that determines the files of ``size`` (short hex)."""
    spec = {
        "version": RECIPE_VERSION,
        "seed": SEED,
        "size": SIZES[size],
        "train": TRAIN_SOURCES,
        "test": TEST_SOURCES,
        "presets": {k: repr(v) for k, v in sorted(PRESETS.items())},
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]


def _source(name: str) -> Image.Image:
    import skimage.data

    a = getattr(skimage.data, name)()
    a = a[0] if isinstance(a, tuple) else a  # stereo_motorcycle: (left, right, disparity)
    return Image.fromarray(np.asarray(a, dtype=np.uint8)).convert("RGB")


def _crop(img: Image.Image, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A random h:w crop, 50-100 % of the largest one, resized (Lanczos) to h x w."""
    W, H = img.size
    scale = min(H / h, W / w) * rng.uniform(0.5, 1.0)
    ch, cw = max(1, round(h * scale)), max(1, round(w * scale))
    y, x = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))
    return np.asarray(img.resize((w, h), Image.Resampling.LANCZOS, box=(x, y, x + cw, y + ch)))


def _build(size: str, dest: Path) -> None:
    spec = SIZES[size]
    files: dict[str, str] = {}
    for s_id, split in enumerate(SPLITS):
        sources = TRAIN_SOURCES if split == "train" else TEST_SOURCES
        images = {name: _source(name) for name in sources}
        for i in range(spec[split]):
            rng = np.random.default_rng([SEED, s_id, i])
            img = images[sources[i % len(sources)]]
            h, w = spec["height"], spec["width"]
            h, w = (h, w) if rng.random() < 0.75 else (w, h)
            clean = _crop(img, h, w, rng)
            for p_id, preset in enumerate(sorted(PRESETS)):
                folder = dest / preset / split
                rain_seed = int(np.random.SeedSequence([SEED, s_id, i, p_id]).generate_state(1)[0])
                rainy = add_rain(clean.astype(np.float64) / 255.0, preset, rain_seed)
                rainy = np.clip(np.rint(rainy * 255.0), 0, 255).astype(np.uint8)
                for name, arr in (("norain/norain", clean), ("rainy/rain", rainy)):
                    path = write_png(folder / f"{name}-{i + 1:03d}.png", arr, compress_level=1)
                    files[path.relative_to(dest).as_posix()] = sha256_file(path)
    manifest = {
        "format": "derain-embedded",
        "size": size,
        "recipe": recipe_key(size),
        "spec": spec,
        "seed": SEED,
        "train_sources": TRAIN_SOURCES,
        "test_sources": TEST_SOURCES,
        "files": files,
    }
    atomic_write_text(dest / "manifest.json", json.dumps(manifest, indent=1))


def _valid(folder: Path) -> bool:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        return all((folder / rel).is_file() for rel in manifest["files"])
    except (OSError, ValueError, KeyError):
        return False


def build_embedded(size: str = "quick", root: Path | None = None) -> Path:
    """The folder of the embedded set of ``size``, built once (the manifest, last, marks it)."""
    if size not in SIZES:
        raise DerainError(f"unknown embedded size {size!r}; choose one of {sorted(SIZES)}")
    root = Path(root) if root is not None else data_root() / "embedded"
    final = root / f"{size}-{recipe_key(size)}"
    if not _valid(final):
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(root / f".{final.name}.lock"):
            if not _valid(final):  # not built meanwhile by another process
                shutil.rmtree(final, ignore_errors=True)  # a damaged or half-built copy
                _build(size, final)
    return final


def embedded_dataset(
    preset: str, split: str, size: str = "quick", root: Path | None = None
) -> PairedDataset:
    """The embedded pairs of one preset (``light``/``heavy``) and split (``train``/``test``)."""
    if preset not in PRESETS:
        raise DerainError(f"unknown rain preset {preset!r}; choose one of {sorted(PRESETS)}")
    if split not in SPLITS:
        raise DerainError(f"unknown split {split!r}; choose one of {SPLITS}")
    folder = build_embedded(size, root) / preset / split
    return open_dataset(folder, layout="rain100", name=f"embedded-{size}-{preset}-{split}")
