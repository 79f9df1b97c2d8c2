"""Paired rainy/clean data sets in the benchmarks' own file layouts, found automatically
(:data:`FORMS`; docs/data.md); *partial* when pairs are missing or a file has no partner."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DerainError
from .fetch import sha256_file
from .io import IMAGE_SUFFIXES, image_size, list_images, read_image

#: layout -> forms tried in turn: (rainy folders, rainy name pattern, clean folders, clean
#: pattern, pair name prefix). "." is the folder itself, "a/b" b inside a; a rainy image pairs
#: with the clean one of its first numbers (Rain1400: N_k with N); prefix None: file names.
FORMS: dict[str, list[tuple[tuple[str, ...], str, tuple[str, ...], str, str | None]]] = {
    "rain100": [((".", "rainy", "rain"), r"rain-(\d+)", (".", "norain"), r"norain-(\d+)", "rain-")],
    "rain1400": [
        (("rainy_image", "rainy image", "rainy", "rain"), r"(\d+)_(\d+)",
         ("ground_truth", "ground truth", "groundtruth", "norain", "clean"), r"(\d+)", ""),
    ],
    "rain12": [
        ((".",), r"(\d+)_in", (".",), r"(\d+)_gt", ""),
        (("rainy", "rain", "input", "inputcrop", "rainy_image"), r"\D*(\d+)\D*",
         ("norain", "groundtruth", "ground_truth", "gt", "clean", "cleancrop"), r"\D*(\d+)\D*", ""),
    ],
    "jorder": [(("rain/x2",), r"norain-(\d+)x2", ("norain",), r"norain-(\d+)", "rain-")],
    "input-target": [(("input",), r"(.+)", ("target",), r"(.+)", None)],
}  # fmt: skip
LAYOUTS = tuple(FORMS)


class DatasetLayoutError(DerainError):
    """A folder that holds no recognisable rainy/clean pairs."""


class PairSizeError(DerainError):
    """Rainy and clean images of a pair have different sizes."""


@dataclass(frozen=True)
class Pair:
    """One rainy image and its ground truth (``clean`` is None for real rain without one)."""

    name: str
    rainy: Path
    clean: Path | None


@dataclass
class PairedDataset:
    """Rainy/clean pairs of one folder; images are read only when asked for."""

    name: str
    root: Path
    pairs: list[Pair]
    layout: str = "rain100"
    partial: bool = False
    unpaired: list[Path] = field(default_factory=list)
    _manifest: str | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(rainy, clean) float32 HWC in [0, 1]; PairSizeError names a pair whose sizes differ."""
        p = self.pairs[i]
        rainy, clean = read_image(p.rainy), p.clean and read_image(p.clean)
        if clean is not None and rainy.shape != clean.shape:
            raise PairSizeError(
                f"{p.rainy}: size {rainy.shape[1]}x{rainy.shape[0]} differs from its ground truth "
                f"{p.clean} ({clean.shape[1]}x{clean.shape[0]})"
            )
        return rainy, clean

    def sizes(self) -> list[tuple[int, int]]:
        """(height, width) of every rainy image, from file headers only."""
        return [image_size(p.rainy) for p in self.pairs]

    def files(self) -> list[Path]:
        """Every distinct file of the set (clean images shared by Rain1400 listed once)."""
        return list(dict.fromkeys(f for p in self.pairs for f in (p.rainy, p.clean) if f))

    def manifest_sha256(self) -> str:
        """sha256 over the sorted ``relative-path sha256`` lines of all files: the data hash."""
        if self._manifest is None:
            lines = sorted(
                f"{f.relative_to(self.root).as_posix()} {sha256_file(f)}" for f in self.files()
            )
            self._manifest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
        return self._manifest


def _files(root: Path, folders: tuple[str, ...]) -> dict[str, Path]:
    """Images by stem of ``root`` ("." in ``folders``) and of its first subfolder named there."""
    found = {p.stem: p for p in list_images(root)} if "." in folders else {}
    heads = {f.split("/")[0]: f.partition("/")[2] for f in folders}
    sub = next((d for d in sorted(root.iterdir()) if d.is_dir() and d.name.lower() in heads), None)
    if sub is None:
        return found
    deeper = heads[sub.name.lower()]
    return found | (_files(sub, (deeper,)) if deeper else {p.stem: p for p in list_images(sub)})


def _keyed(files: dict[str, Path], pattern: str) -> dict[tuple, Path]:
    """Files whose stem matches ``pattern``, by its groups (ints where it matches digits)."""
    matches = ((re.fullmatch(pattern, stem, re.IGNORECASE), p) for stem, p in files.items())
    num = int if r"\d" in pattern else str
    return {tuple(map(num, m.groups())): p for m, p in matches if m}


def _open(root: Path, layout: str) -> PairedDataset | None:
    for rainy_dirs, rainy_pat, clean_dirs, clean_pat, prefix in FORMS[layout]:
        rainy = _keyed(_files(root, rainy_dirs), rainy_pat)
        clean = _keyed(_files(root, clean_dirs), clean_pat)
        m = re.compile(clean_pat).groups  # how many numbers name a clean image
        keys = [k for k in rainy if k[:m] in clean]  # numbers by value, names by length, text
        keys.sort(key=lambda k: [(len(str(x)), str(x)) for x in k])
        if not keys:
            continue
        if prefix is None:
            names = [rainy[k].stem for k in keys]
        elif len(keys[0]) > m:  # Rain1400: N_k
            names = ["_".join(map(str, k)) for k in keys]
        else:
            width = max(3, len(str(keys[-1][0])))
            names = [f"{prefix}{k[0]:0{width}d}" for k in keys]
        pairs = [Pair(n, rainy[k], clean[k[:m]]) for n, k in zip(names, keys, strict=True)]
        scenes = {k[:m] for k in rainy}
        unpaired = sorted(p for k, p in rainy.items() if k[:m] not in clean)
        unpaired += sorted(p for k, p in clean.items() if k not in scenes)
        numbers = {k[0] for k in keys if isinstance(k[0], int)}
        first = min(numbers, default=1) if len(keys[0]) > m else 1
        partial = bool(unpaired) or len(numbers) not in (0, max(numbers, default=0) - first + 1)
        if len(keys[0]) > m:  # every Rain1400 scene has its 14 rain types
            partial = partial or any(
                sum(k[:m] == c for k in keys) != 14 for c in scenes & clean.keys()
            )
        return PairedDataset(root.name, root, pairs, layout, partial, unpaired)
    return None


def open_dataset(
    path: str | Path,
    layout: str = "auto",
    name: str | None = None,
    expected: int | None = None,
) -> PairedDataset:
    """The pairs of a benchmark folder (``auto``: each layout in turn), partial below expected."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: not a folder")
    if layout != "auto" and layout not in FORMS:
        raise DatasetLayoutError(f"unknown layout {layout!r}; choose auto or one of {LAYOUTS}")
    tried = LAYOUTS if layout == "auto" else (layout,)
    ds = next((d for lay in tried if (d := _open(root, lay)) is not None), None)
    if ds is None:
        n = sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        raise DatasetLayoutError(
            f"{root}: no rainy/clean pairs in the {' / '.join(tried)} layout "
            f"({n} image file(s) found); see docs/data.md for the layouts"
        )
    ds.name = name or ds.name
    ds.partial = ds.partial or (expected is not None and len(ds) < expected)
    return ds
