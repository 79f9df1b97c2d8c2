"""Paired rainy/clean data sets in the benchmarks' own file layouts, detected automatically.

Layouts (``open_dataset(path, layout=...)``):

- ``rain100``: Rain100L / Rain100H (and the training sets RainTrainL / RainTrainH):
  ``rain-NNN.png`` + ``norain-NNN.png`` in one folder (JORDER's and PReNet's training form,
  other files such as ``rainstreak-NNN.png`` ignored), in ``rainy/`` + ``norain/`` folders,
  or ``rainy/rain-NNN.png`` next to ``norain-NNN.png`` (PReNet's test form).
- ``rain1400``: DDN's Rain1400 / Rain12600: ``rainy_image/N_k.jpg`` (k = 1..14) for each
  clean ``ground_truth/N.jpg``.
  DDN's own copies name the folders with spaces: ``rainy image/`` + ``ground truth/``.
- ``rain12``: pairs by index: ``N_in.png`` + ``N_GT.png`` in one folder, or two folders
  (rainy-like: ``rainy``, ``rain``, ``input``, ``inputcrop``; clean-like: ``groundtruth``,
  ``ground_truth``, ``gt``, ``clean``, ``cleancrop``, ``norain``) with the same numbers;
  this is also how the cropped Rain100H (``inputcrop/`` + ``cleancrop/``) and PromptIR's
  ``rainy/rain-N.png`` + ``gt/norain-N.png`` are read.
- ``jorder``: JORDER's training zips: ``rain/X2/norain-Nx2.png`` (the rainy image, despite
  its name) + ``norain/norain-N.png``.
- ``input-target``: Restormer's and MPRNet's ``input/`` + ``target/`` folders, pairs by
  the same file name.

A data set is *partial* when some files have no partner, numbers are missing from the
sequence (the Rain100L sample holds 001, 025, 050, 100), a Rain1400 scene has fewer than 14
rainy images, or fewer pairs than ``expected`` were found.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DerainError
from .fetch import sha256_file
from .io import IMAGE_SUFFIXES, image_size, list_images, read_image

LAYOUTS = ("rain100", "rain1400", "rain12", "jorder", "input-target")

_RAIN100_RAINY = re.compile(r"^rain-(\d+)$", re.IGNORECASE)
_RAIN100_CLEAN = re.compile(r"^norain-(\d+)$", re.IGNORECASE)
_RAIN1400_RAINY = re.compile(r"^(\d+)_(\d+)$")
_RAIN1400_CLEAN = re.compile(r"^(\d+)$")
_RAIN12_RAINY = re.compile(r"^(\d+)_in$", re.IGNORECASE)
_RAIN12_CLEAN = re.compile(r"^(\d+)_gt$", re.IGNORECASE)
_INDEX = re.compile(r"^\D*(\d+)\D*$")
_JORDER_RAINY = re.compile(r"^norain-(\d+)x2$", re.IGNORECASE)

RAINY_DIRS = ("rainy", "rain", "input", "inputcrop", "rainy_image")
CLEAN_DIRS = ("norain", "groundtruth", "ground_truth", "gt", "clean", "cleancrop")


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
        rainy = read_image(p.rainy)
        if p.clean is None:
            return rainy, None
        clean = read_image(p.clean)
        if rainy.shape != clean.shape:
            raise PairSizeError(
                f"{p.rainy}: size {rainy.shape[1]}x{rainy.shape[0]} differs from its ground truth "
                f"{p.clean} ({clean.shape[1]}x{clean.shape[0]})"
            )
        return rainy, clean

    def sizes(self) -> list[tuple[int, int]]:
        """(height, width) of every rainy image, from file headers only."""
        return [image_size(p.rainy) for p in self.pairs]

    def size_mismatches(self) -> list[str]:
        """Names of the pairs whose rainy and clean sizes differ (headers only)."""
        return [
            p.name
            for p in self.pairs
            if p.clean is not None and image_size(p.rainy) != image_size(p.clean)
        ]

    def check_sizes(self) -> None:
        """Raise one PairSizeError naming every pair whose two images differ in size."""
        bad = self.size_mismatches()
        if bad:
            raise PairSizeError(
                f"{self.root}: {len(bad)} pair(s) whose rainy and clean sizes differ: "
                + ", ".join(bad)
            )

    def files(self) -> list[Path]:
        """Every distinct file of the set (clean images shared by Rain1400 listed once)."""
        seen: dict[Path, None] = {}
        for p in self.pairs:
            seen[p.rainy] = None
            if p.clean is not None:
                seen[p.clean] = None
        return list(seen)

    def manifest_sha256(self) -> str:
        """sha256 over the sorted ``relative-path sha256`` lines of all files: the data hash."""
        if self._manifest is None:
            lines = sorted(
                f"{f.relative_to(self.root).as_posix()} {sha256_file(f)}" for f in self.files()
            )
            self._manifest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
        return self._manifest


def _stems(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in list_images(folder)}


def _match(files: dict[str, Path], pattern: re.Pattern) -> dict[int, Path]:
    out = {}
    for stem, path in files.items():
        m = pattern.match(stem)
        if m:
            out[int(m.group(1))] = path
    return out


def _subdir(root: Path, names: tuple[str, ...]) -> Path | None:
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name.lower() in names:
            return child
    return None


def _has_gaps(keys: set[int], first: int | None = 1) -> bool:
    """Numbers missing from the sequence (before ``first`` too, unless it is None)."""
    if not keys:
        return False
    start = min(keys) if first is None else first
    return len(keys) != max(keys) - start + 1


def _by_index(
    root: Path, rainy: dict[int, Path], clean: dict[int, Path], prefix: str, layout: str
) -> PairedDataset:
    common = sorted(set(rainy) & set(clean))
    width = max(3, len(str(max(common)))) if common else 3
    pairs = [Pair(f"{prefix}{k:0{width}d}", rainy[k], clean[k]) for k in common]
    unpaired = sorted(rainy[k] for k in set(rainy) - set(clean)) + sorted(
        clean[k] for k in set(clean) - set(rainy)
    )
    partial = bool(unpaired) or _has_gaps(set(common))
    return PairedDataset(root.name, root, pairs, layout, partial, unpaired)


def _open_rain100(root: Path) -> PairedDataset | None:
    top = _stems(root)
    rainy = _match(top, _RAIN100_RAINY)
    clean = _match(top, _RAIN100_CLEAN)
    rdir = _subdir(root, ("rainy", "rain"))
    cdir = _subdir(root, ("norain",))
    if rdir is not None:
        rainy |= _match(_stems(rdir), _RAIN100_RAINY)
    if cdir is not None:
        clean |= _match(_stems(cdir), _RAIN100_CLEAN)
    if not rainy or not clean:
        return None
    return _by_index(root, rainy, clean, "rain-", "rain100")


def _open_rain1400(root: Path) -> PairedDataset | None:
    rdir = _subdir(root, ("rainy_image", "rainy image", "rainy", "rain"))
    cdir = _subdir(root, ("ground_truth", "ground truth", "groundtruth", "norain", "clean"))
    if rdir is None or cdir is None:
        return None
    clean = _match(_stems(cdir), _RAIN1400_CLEAN)
    rainy: dict[tuple[int, int], Path] = {}
    for stem, path in _stems(rdir).items():
        m = _RAIN1400_RAINY.match(stem)
        if m:
            rainy[int(m.group(1)), int(m.group(2))] = path
    if not rainy or not clean:
        return None
    pairs = [Pair(f"{n}_{k}", rainy[n, k], clean[n]) for n, k in sorted(rainy) if n in clean]
    unpaired = sorted(rainy[n, k] for n, k in rainy if n not in clean)
    used = {n for n, _ in rainy}
    unpaired += sorted(p for n, p in clean.items() if n not in used)
    per_scene = [sum(1 for n2, _ in rainy if n2 == n) for n in used & set(clean)]
    partial = (
        bool(unpaired) or any(c != 14 for c in per_scene) or _has_gaps(used & set(clean), None)
    )
    return PairedDataset(root.name, root, pairs, "rain1400", partial, unpaired)


def _open_rain12(root: Path) -> PairedDataset | None:
    top = _stems(root)
    rainy = _match(top, _RAIN12_RAINY)
    clean = _match(top, _RAIN12_CLEAN)
    if not (rainy and clean):
        rdir = _subdir(root, RAINY_DIRS)
        cdir = _subdir(root, CLEAN_DIRS)
        if rdir is None or cdir is None:
            return None
        rainy = _match(_stems(rdir), _INDEX)
        clean = _match(_stems(cdir), _INDEX)
    if not rainy or not clean:
        return None
    return _by_index(root, rainy, clean, "", "rain12")


def _open_jorder(root: Path) -> PairedDataset | None:
    rdir, cdir = root / "rain" / "X2", _subdir(root, ("norain",))
    if not rdir.is_dir() or cdir is None:
        return None
    rainy = _match(_stems(rdir), _JORDER_RAINY)
    clean = _match(_stems(cdir), _RAIN100_CLEAN)
    if not rainy or not clean:
        return None
    return _by_index(root, rainy, clean, "rain-", "jorder")


def _open_input_target(root: Path) -> PairedDataset | None:
    rdir, cdir = _subdir(root, ("input",)), _subdir(root, ("target",))
    if rdir is None or cdir is None:
        return None
    rainy, clean = _stems(rdir), _stems(cdir)
    common = sorted(set(rainy) & set(clean), key=lambda k: (len(k), k))
    if not common:
        return None
    pairs = [Pair(k, rainy[k], clean[k]) for k in common]
    unpaired = sorted(rainy[k] for k in set(rainy) - set(clean)) + sorted(
        clean[k] for k in set(clean) - set(rainy)
    )
    return PairedDataset(root.name, root, pairs, "input-target", bool(unpaired), unpaired)


_OPENERS = {
    "rain100": _open_rain100,
    "rain1400": _open_rain1400,
    "rain12": _open_rain12,
    "jorder": _open_jorder,
    "input-target": _open_input_target,
}


def open_dataset(
    path: str | Path,
    layout: str = "auto",
    name: str | None = None,
    expected: int | None = None,
) -> PairedDataset:
    """The pairs of a benchmark folder; ``layout="auto"`` tries each of :data:`LAYOUTS`.

    ``expected`` (the full set's pair count) marks the set partial when fewer were found."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: not a folder")
    if layout != "auto" and layout not in _OPENERS:
        raise DatasetLayoutError(f"unknown layout {layout!r}; choose auto or one of {LAYOUTS}")
    tried = LAYOUTS if layout == "auto" else (layout,)
    for lay in tried:
        ds = _OPENERS[lay](root)
        if ds is not None and ds.pairs:
            break
    else:
        n = sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        raise DatasetLayoutError(
            f"{root}: no rainy/clean pairs in the {' / '.join(tried)} layout "
            f"({n} image file(s) found); see docs/data.md for the layouts"
        )
    if name:
        ds.name = name
    if expected is not None and len(ds) < expected:
        ds.partial = True
    return ds
