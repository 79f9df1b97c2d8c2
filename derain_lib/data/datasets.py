"""Paired rainy/clean data sets in the benchmarks' own file layouts, found automatically.

Layouts (``open_dataset(path, layout=...)``; docs/data.md shows each): ``rain100``
(Rain100L/H: ``rain-N.png`` + ``norain-N.png``, flat, in ``rainy/`` + ``norain/``, or
PReNet's ``rainy/`` beside the clean files), ``rain1400`` (DDN: ``rainy_image/N_k.jpg``,
k = 1..14, for each ``ground_truth/N.jpg``; also with spaces), ``rain12`` (by number:
``N_in.png`` + ``N_GT.png``, or a rainy-like and a clean-like folder: Rain12, the cropped
Rain100H, PromptIR), ``jorder`` (``rain/X2/norain-Nx2.png`` + ``norain/norain-N.png``) and
``input-target`` (Restormer, MPRNet: same file names). A set is *partial* when a file has no
partner, numbers are missing, a Rain1400 scene has fewer than 14 rainy images, or fewer
than ``expected`` pairs were found.
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
RAINY_DIRS = ("rainy", "rain", "input", "inputcrop", "rainy_image")
CLEAN_DIRS = ("norain", "groundtruth", "ground_truth", "gt", "clean", "cleancrop")

_RAIN100_RAINY = re.compile(r"^rain-(\d+)$", re.IGNORECASE)
_RAIN100_CLEAN = re.compile(r"^norain-(\d+)$", re.IGNORECASE)
_RAIN1400_RAINY = re.compile(r"^(\d+)_(\d+)$")
_RAIN1400_CLEAN = re.compile(r"^(\d+)$")
_RAIN12_RAINY = re.compile(r"^(\d+)_in$", re.IGNORECASE)
_RAIN12_CLEAN = re.compile(r"^(\d+)_gt$", re.IGNORECASE)
_INDEX = re.compile(r"^\D*(\d+)\D*$")
_JORDER_RAINY = re.compile(r"^norain-(\d+)x2$", re.IGNORECASE)


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

    def check_sizes(self) -> None:
        """Raise one PairSizeError naming every pair whose two images differ in size
        (headers only)."""
        bad = [p.name for p in self.pairs if p.clean and image_size(p.rainy) != image_size(p.clean)]
        if bad:
            raise PairSizeError(
                f"{self.root}: {len(bad)} pair(s) whose rainy and clean sizes differ: "
                + ", ".join(bad)
            )

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


def _stems(root: Path, names: tuple[str, ...] = ()) -> dict[str, Path]:
    """Images of ``root`` (``names`` given: of its first subfolder so named) by stem."""
    if names:
        subs = [d for d in sorted(root.iterdir()) if d.is_dir() and d.name.lower() in names]
        if not subs:
            return {}
        root = subs[0]
    return {p.stem: p for p in list_images(root)}


def _numbered(files: dict[str, Path], pattern: re.Pattern) -> dict[int, Path]:
    return {int(m.group(1)): p for s, p in files.items() if (m := pattern.match(s))}


def _has_gaps(keys: set[int], first: int | None = 1) -> bool:
    """Numbers missing from the sequence (before ``first`` too, unless it is None)."""
    return bool(keys) and len(keys) != max(keys) - (min(keys) if first is None else first) + 1


def _unpaired(rainy: dict, clean: dict) -> list[Path]:
    return sorted(rainy[k] for k in rainy.keys() - clean) + sorted(
        clean[k] for k in clean.keys() - rainy
    )


def _by_number(
    root: Path, rainy: dict[int, Path], clean: dict[int, Path], prefix: str, layout: str
) -> PairedDataset | None:
    common = sorted(rainy.keys() & clean)
    if not common:
        return None
    width = max(3, len(str(common[-1])))
    pairs = [Pair(f"{prefix}{k:0{width}d}", rainy[k], clean[k]) for k in common]
    unpaired = _unpaired(rainy, clean)
    return PairedDataset(
        root.name, root, pairs, layout, bool(unpaired) or _has_gaps(set(common)), unpaired
    )


def _open_rain100(root: Path) -> PairedDataset | None:
    top = _stems(root)
    rainy = _numbered(top | _stems(root, ("rainy", "rain")), _RAIN100_RAINY)
    clean = _numbered(top | _stems(root, ("norain",)), _RAIN100_CLEAN)
    return _by_number(root, rainy, clean, "rain-", "rain100")


def _open_rain1400(root: Path) -> PairedDataset | None:
    rdir = _stems(root, ("rainy_image", "rainy image", "rainy", "rain"))
    clean = _numbered(
        _stems(root, ("ground_truth", "ground truth", "groundtruth", "norain", "clean")),
        _RAIN1400_CLEAN,
    )
    rainy = {
        (int(m.group(1)), int(m.group(2))): p
        for s, p in rdir.items()
        if (m := _RAIN1400_RAINY.match(s))
    }
    pairs = [Pair(f"{n}_{k}", rainy[n, k], clean[n]) for n, k in sorted(rainy) if n in clean]
    if not pairs:
        return None
    scenes = {n for n, _ in rainy}
    unpaired = sorted(p for (n, _), p in rainy.items() if n not in clean)
    unpaired += sorted(p for n, p in clean.items() if n not in scenes)
    per_scene = [sum(n2 == n for n2, _ in rainy) for n in scenes & clean.keys()]
    partial = bool(unpaired) or any(c != 14 for c in per_scene)
    partial = partial or _has_gaps(scenes & clean.keys(), None)
    return PairedDataset(root.name, root, pairs, "rain1400", partial, unpaired)


def _open_rain12(root: Path) -> PairedDataset | None:
    top = _stems(root)
    rainy, clean = _numbered(top, _RAIN12_RAINY), _numbered(top, _RAIN12_CLEAN)
    if not (rainy and clean):
        rainy = _numbered(_stems(root, RAINY_DIRS), _INDEX)
        clean = _numbered(_stems(root, CLEAN_DIRS), _INDEX)
    return _by_number(root, rainy, clean, "", "rain12")


def _open_jorder(root: Path) -> PairedDataset | None:
    rain = root / "rain"
    rainy = _numbered(_stems(rain, ("x2",)), _JORDER_RAINY) if rain.is_dir() else {}
    clean = _numbered(_stems(root, ("norain",)), _RAIN100_CLEAN)
    return _by_number(root, rainy, clean, "rain-", "jorder")


def _open_input_target(root: Path) -> PairedDataset | None:
    rainy, clean = _stems(root, ("input",)), _stems(root, ("target",))
    common = sorted(rainy.keys() & clean, key=lambda k: (len(k), k))
    if not common:
        return None
    pairs = [Pair(k, rainy[k], clean[k]) for k in common]
    unpaired = _unpaired(rainy, clean)
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
    ds = next((d for lay in tried if (d := _OPENERS[lay](root)) is not None), None)
    if ds is None:
        n = sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        raise DatasetLayoutError(
            f"{root}: no rainy/clean pairs in the {' / '.join(tried)} layout "
            f"({n} image file(s) found); see docs/data.md for the layouts"
        )
    ds.name = name or ds.name
    ds.partial = ds.partial or (expected is not None and len(ds) < expected)
    return ds
