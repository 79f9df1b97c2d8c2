"""The data catalog: what each benchmark is, where to get it, and checking a user's copy.

``prepare(name, source)`` verifies a copy the user has against the catalog (pair count,
layout, readable images, equal pair sizes, sha256 where a manifest is known) and writes a
JSON index elsewhere; it never changes anything inside the user's folder. Downloads are
``derain fetch``'s (:mod:`.remote`); without a copy, ``prepare`` says where to get one.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from itertools import islice
from pathlib import Path

from ..errors import DerainError
from ..fsutil import atomic_write_text, data_root
from .datasets import Pair, PairedDataset, open_dataset
from .fetch import sha256_file
from .io import check_images, image_size
from .patches import PAPER_HFLIP, PAPER_PATCH, PAPER_STRIDES, count_patches

INDEX_FORMAT = "derain-data-index"


@dataclass(frozen=True)
class Source:
    """Where a set can be obtained, as its authors or PReNet's README document it."""

    label: str
    url: str


@dataclass(frozen=True)
class Split:
    """One split of a benchmark: counts, image size, distribution folder, manifest."""

    pairs: int
    clean: int
    folder: str
    image_size: str
    manifest: str | None = None  # file in derain_lib/data/manifests/
    variants: tuple[tuple[int, str], ...] = ()  # (pair count, what it is): known complete copies


@dataclass(frozen=True)
class Entry:
    """A catalogued data set."""

    name: str
    title: str
    layout: str
    description: str
    sources: tuple[Source, ...]
    splits: dict[str, Split] = field(default_factory=dict)


_PRENET = Source(
    "PReNet's BaiduYun share (the versions the papers used)",
    "https://pan.baidu.com/s/1J0q6Mrno9aMCsaWZUtmbkg",
)
_RAIN100 = (
    _PRENET,
    Source(
        "Yang et al., JORDER project page (original; PReNet notes it was modified)",
        "https://www.icst.pku.edu.cn/struct/Projects/joint_rain_removal.html",
    ),
    Source("PReNet README", "https://github.com/csdwren/PReNet#datasets"),
)
_SIZE100 = "481x321 or 321x481"
_PRENET_1254 = (1254, "PReNet's copy, without 546 pairs whose backgrounds recur in the test set")
_CROP = Split(100, 100, "Rain100H (cropped)", "480x320", "rain100h_test_crop480x320_renamed.sha256")
_DDN = Source("Fu et al., DDN project page", "https://xueyangfu.github.io/projects/cvpr2017.html")

CATALOG: dict[str, Entry] = {
    "rain100l": Entry(
        "rain100l",
        "Rain100L (Yang et al., CVPR 2017): light rain, one streak type",
        "rain100",
        "rain-NNN.png / norain-NNN.png; test in PReNet's form rainy/rain-NNN.png + norain-NNN.png",
        _RAIN100,
        {
            "test": Split(100, 100, "Rain100L", _SIZE100, "rain100l_test.sha256"),
            "train": Split(200, 200, "RainTrainL", _SIZE100),
        },
    ),
    "rain100h": Entry(
        "rain100h",
        "Rain100H (Yang et al., CVPR 2017): heavy rain, many streak types",
        "rain100",
        "rain-NNN.png / norain-NNN.png (same clean images as Rain100L at the same indices)",
        _RAIN100,
        {
            "test": Split(100, 100, "Rain100H", _SIZE100),
            "train": Split(1800, 1800, "RainTrainH", _SIZE100, variants=(_PRENET_1254,)),
        },
    ),
    "rain100h-crop480": Entry(
        "rain100h-crop480",
        "Rain100H test, the widely mirrored cropped 480x320 variant",
        "auto",
        "upstream inputcrop/N.png + cleancrop/N.png; also accepted renamed to rain-/norain-NNN.png",
        (_PRENET,),
        {"test": _CROP},
    ),
    "rain1400": Entry(
        "rain1400",
        "Rain1400 (Fu et al., CVPR 2017, DDN): 14 rain types per clean image",
        "rain1400",
        "rainy_image/N_k.jpg (k = 1..14) + ground_truth/N.jpg; test N = 901..1000",
        (_DDN, _PRENET),
        {
            "test": Split(1400, 100, "Rain1400", "JPEG, sizes vary"),
            "train": Split(12600, 900, "Rain12600", "JPEG, sizes vary"),
        },
    ),
    "rain12": Entry(
        "rain12",
        "Rain12 (Li et al., CVPR 2016): 12 test images only",
        "rain12",
        "pairs by index: N_in.png + N_GT.png, or a rainy folder + groundtruth/N.png (PReNet)",
        (Source("Li et al., project page", "https://yu-li.github.io/"), _PRENET),
        {"test": Split(12, 12, "test12", "PNG, sizes vary")},
    ),
    "embedded": Entry(
        "embedded",
        "Embedded: scikit-image's bundled photos with synthetic light/heavy rain (offline)",
        "rain100",
        "<size>-<recipe>/<preset>/<split>/rainy/rain-NNN.png + norain/norain-NNN.png",
        (
            Source(
                "built locally from scikit-image's data (no download)",
                "derain data prepare embedded",
            ),
        ),
    ),  # fmt: skip
}

#: The layouts a training set is distributed in, by what :func:`open_dataset` calls them.
TRAIN_LAYOUTS = {
    "rain100": "PReNet's RainTrainL/RainTrainH: rain-N.png + norain-N.png in one folder",
    "jorder": "JORDER's zip: rain/X2/norain-Nx2.png (rainy) + norain/norain-N.png",
    "rain1400": "PReNet's Rain12600: rainy_image/N_k.jpg + ground_truth/N.jpg",
    "ddn": "DDN's folders: 'rainy image/N_k.jpg' + 'ground truth/N.jpg'",
    "input-target": "Restormer's / MPRNet's input/ + target/ (same file names)",
    "rain12": "PromptIR's rainy/rain-N.png + gt/norain-N.png (pairs by number)",
}
#: Which of them each catalogued training set may come in (its naming rule must hold).
TRAIN_LAYOUTS_OF = {
    "rain100l": ("rain100", "jorder", "input-target", "rain12"),
    "rain100h": ("rain100", "jorder", "input-target", "rain12"),
    "rain1400": ("rain1400", "ddn", "input-target"),
}
_NUMS = re.compile(r"\d+")


def get_entry(name: str) -> Entry:
    try:
        return CATALOG[name.lower()]
    except KeyError:
        raise DerainError(f"unknown data set {name!r}; known: {', '.join(CATALOG)}") from None


def load_manifest(filename: str) -> dict[str, str]:
    """``relative path -> sha256`` of a manifest shipped with the package."""
    text = resources.files("derain_lib.data").joinpath("manifests", filename).read_text()
    pairs = (line.split(maxsplit=1) for line in text.splitlines() if line.strip())
    return {rel.strip().lstrip("*"): digest for digest, rel in pairs}


def _numbers(name: str) -> tuple[int, ...]:
    """The numbers in a name: how ``norain/norain-001.png`` matches ``cleancrop/1.png``."""
    return tuple(int(n) for n in _NUMS.findall(name))


def where_to_get(entry: Entry, split: str) -> str:
    """The instructions printed when a set is not available locally."""
    s = entry.splits[split]
    lines = [f"{entry.name} {split} ({s.folder}, {s.pairs} pairs) is not available here."]
    lines += [f"  get it from: {src.label}: {src.url}" for src in entry.sources]
    lines.append(
        f"  then run: derain data prepare {entry.name} --split {split} --from PATH/{s.folder}"
    )
    return "\n".join(lines)


@dataclass
class Report:
    """What ``prepare`` found; ``lines()`` is what the CLI prints."""

    name: str
    split: str
    dataset: PairedDataset
    expected: int
    layout_found: str | None = None  # training sets: which distributed layout was recognised
    missing: list[str] = field(default_factory=list)  # expected pair names not found
    variant: str | None = None
    sha256_checked: int = 0
    sha256_matched: int = 0
    sha256_differ: list[str] = field(default_factory=list)
    not_in_manifest: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    patches: dict | None = None
    index_path: Path | None = None

    @property
    def partial(self) -> bool:
        return not self.variant and (self.dataset.partial or len(self.dataset) < self.expected)

    def lines(self) -> list[str]:
        n, ds = len(self.dataset), self.dataset
        state = f"PARTIAL set ({self.expected - n} pairs missing)" if self.partial else "complete"
        if self.variant:
            state = f"complete as a known variant: {self.variant}"
        out = [f"{self.name} {self.split}: {ds.root} ({ds.layout} layout)"]
        out += [f"layout found: {self.layout_found}"] if self.layout_found else []
        out.append(f"verified {n} of {self.expected} pairs: {state}")
        if self.missing and not self.variant:
            out.append(
                f"missing {len(self.missing)} pair(s) by the set's naming rule: "
                + _some(self.missing, 10)
            )
        if self.sha256_checked:
            n, of = self.sha256_matched, self.sha256_checked
            out.append(f"sha256: {n} of {of} files match the catalog manifest")
        else:
            out.append(
                "sha256: no manifest known for this split (counts, sizes and decoding checked)"
            )
        out += [f"  differs from catalog: {r}" for r in self.sha256_differ]
        out += [f"  not in catalog manifest: {r}" for r in self.not_in_manifest]
        if ds.unpaired:
            out.append(f"unpaired files: {len(ds.unpaired)} (e.g. {ds.unpaired[0]})")
        if self.ignored:
            out.append(
                f"ignored {len(self.ignored)} non-image or unused file(s): {_some(self.ignored, 5)}"
            )
        if p := self.patches:
            flip = " x2 with h-flip" if p["hflip"] else ""
            out.append(
                f"training patches {p['patch']}x{p['patch']} at stride {p['stride']}{flip}: "
                f"{p['count']}"
            )
        if self.index_path:
            out.append(f"index written: {self.index_path}")
        return out


#: What an index records of its :class:`Report`, by the same names.
_INDEXED = ("layout_found", "missing", "variant", "sha256_checked", "sha256_matched")
_INDEXED += ("sha256_differ", "not_in_manifest", "ignored", "patches")


def _some(names: list[str], n: int) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def _check_index_target(path: Path, source: Path) -> None:
    path, source = path.resolve(), source.resolve()
    if path.is_relative_to(source):
        raise DerainError(f"{path}: the index must not be written inside the data folder {source}")
    if path.exists():
        try:
            ok = json.loads(path.read_text()).get("format") == INDEX_FORMAT
        except (OSError, ValueError, AttributeError):
            ok = False
        if not ok:
            raise DerainError(
                f"{path}: exists and is not a derain data index; refusing to overwrite"
            )


def open_training_copy(entry: Entry, root: Path) -> tuple[PairedDataset, str]:
    """A user's copy of ``entry``'s training set in a layout of :data:`TRAIN_LAYOUTS` it may
    come in, at ``root`` or in a wrapper folder below (the set's distribution folder name,
    or a lone subfolder; two levels), with its layout's description; else a one-line error
    listing the layouts looked for."""
    allowed = TRAIN_LAYOUTS_OF.get(entry.name, ())
    split = entry.splits["train"]
    width = 2 if entry.name == "rain1400" else 1  # pair names: N (Rain100L/H) or N_k (Rain12600)
    todo = [root]
    for here in islice(todo, 12):  # the list grows while it is read: wrapper folders
        try:
            ds = open_dataset(here, "auto", expected=split.pairs)
        except DerainError:
            ds = None
        if (
            ds is not None
            and ds.layout in allowed
            and all(len(_numbers(p.name)) == width for p in ds.pairs)
        ):
            ddn = ds.layout == "rain1400" and " " in ds.pairs[0].rainy.parent.name
            return ds, TRAIN_LAYOUTS["ddn" if ddn else ds.layout]
        subs = sorted(d for d in here.iterdir() if d.is_dir())
        named = [d for d in subs if d.name.lower() == split.folder.lower()]
        todo += named or (subs if len(subs) == 1 else [])
    looked = "; ".join(TRAIN_LAYOUTS[k] for k in TRAIN_LAYOUTS if k in allowed)
    raise DerainError(
        f"{root}: no {entry.name} training pairs recognised; layouts looked for: {looked}"
    )


def missing_pairs(entry: Entry, split: str, ds: PairedDataset) -> list[str]:
    """The pair names of a complete copy (``rain-NNN`` for N = 1..pairs; Rain1400: ``N_k``
    for its scenes and k = 1..14) that ``ds`` lacks, matched by number."""
    s = entry.splits[split]
    if entry.name == "rain1400":
        first = 1 if split == "train" else 901
        names = [f"{n}_{k}" for n in range(first, first + s.clean) for k in range(1, 15)]
    else:
        names = [f"rain-{n:03d}" for n in range(1, s.pairs + 1)]
    have = {_numbers(p.name) for p in ds.pairs}
    return [name for name in names if _numbers(name) not in have]


def prepare(
    name: str,
    source: str | Path | None,
    split: str = "test",
    index_out: str | Path | None = None,
    allow_mismatch: bool = False,
    decode: bool = True,
) -> Report:
    """Verify a copy of a catalogued set and write its index (``source`` None: say where
    to get it; ``derain fetch`` downloads the sets that have a public per-file copy)."""
    entry = get_entry(name)
    if entry.name == "embedded":
        raise DerainError("the embedded set is built, not verified: use build_embedded()")
    if split not in entry.splits:
        raise DerainError(f"{entry.name} has no {split!r} split; it has: {', '.join(entry.splits)}")
    s = entry.splits[split]
    if source is None:
        raise DerainError(where_to_get(entry, split))
    root = Path(source)
    if not root.is_dir():
        raise DerainError(f"{root}: no such folder\n" + where_to_get(entry, split))

    layout_found = None
    if split == "train":
        ds, layout_found = open_training_copy(entry, root)
        ds.name, root = f"{entry.name}-{split}", ds.root
    else:
        ds = open_dataset(root, entry.layout, name=f"{entry.name}-{split}", expected=s.pairs)
    files = ds.files()
    check_images(files, decode=decode)
    ds.check_sizes()
    report = Report(entry.name, split, ds, s.pairs, layout_found)
    if split == "train":
        report.missing = missing_pairs(entry, split, ds)
    used = {f.resolve() for f in files} | {Path(f).resolve() for f in ds.unpaired}
    report.ignored = sorted(
        f.relative_to(root).as_posix()
        for f in root.rglob("*")
        if f.is_file() and f.resolve() not in used
    )
    if not ds.unpaired:
        report.variant = dict(s.variants).get(len(ds))

    hashes = {f: sha256_file(f) for f in files}
    if s.manifest:
        known = {
            (Path(rel).name.lower().startswith("norain"), _numbers(Path(rel).stem)): (rel, digest)
            for rel, digest in load_manifest(s.manifest).items()
        }
        for f, clean in [(f, p.clean == f) for p in ds.pairs for f in (p.rainy, p.clean)]:
            rel, hit = f.relative_to(root).as_posix(), known.get((clean, _numbers(f.stem)))
            if hit is None:
                report.not_in_manifest.append(rel)
            elif hit[1] == hashes[f]:
                report.sha256_matched += 1
            else:
                report.sha256_differ.append(f"{rel} (catalog: {hit[0]})")
        report.sha256_checked = report.sha256_matched + len(report.sha256_differ)
        if (differ := report.sha256_differ) and not allow_mismatch:
            raise DerainError(
                f"{root}: {len(differ)} file(s) differ from the {entry.name} {split} manifest, "
                f"e.g. {differ[0]}; this is another version of the set "
                "(use --allow-mismatch to index it anyway)"
            )

    sizes = {p.rainy: image_size(p.rainy) for p in ds.pairs}
    key = entry.name.split("-")[0]
    if split == "train" and key in PAPER_STRIDES:
        stride, hflip = PAPER_STRIDES[key], PAPER_HFLIP[key]
        count = sum(count_patches(h, w, PAPER_PATCH, stride) for h, w in sizes.values())
        count *= 2 if hflip else 1
        report.patches = {"patch": PAPER_PATCH, "stride": stride, "hflip": hflip, "count": count}

    index_path = Path(index_out or data_root() / "index" / f"{entry.name}-{split}.json")
    _check_index_target(index_path, root)
    index = {
        "format": INDEX_FORMAT,
        "dataset": entry.name,
        "split": split,
        "root": str(root.resolve()),
        "layout": ds.layout,
        "pairs_found": len(ds),
        "pairs_expected": s.pairs,
        "partial": report.partial,
        **{k: getattr(report, k) for k in _INDEXED},
        "unpaired": [str(p) for p in ds.unpaired],
        "manifest_sha256": ds.manifest_sha256(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pairs": [
            {
                "name": p.name,
                "rainy": p.rainy.relative_to(root).as_posix(),
                "clean": p.clean.relative_to(root).as_posix() if p.clean else None,
                "height": sizes[p.rainy][0],
                "width": sizes[p.rainy][1],
                "rainy_sha256": hashes[p.rainy],
                "clean_sha256": hashes[p.clean] if p.clean else None,
            }
            for p in ds.pairs
        ],
    }
    atomic_write_text(index_path, json.dumps(index, indent=1))
    report.index_path = index_path
    return report


def open_index(path: str | Path) -> PairedDataset:
    """The data set an index describes (files are not re-hashed; a missing file is an error)."""
    path = Path(path)
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DerainError(f"{path}: not a readable data index ({e})") from None
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        raise DerainError(f"{path}: not a derain data index")
    root = Path(index["root"])
    pairs = [
        Pair(p["name"], root / p["rainy"], root / p["clean"] if p["clean"] else None)
        for p in index["pairs"]
    ]
    missing = [str(f) for p in pairs for f in (p.rainy, p.clean) if f and not f.is_file()]
    if missing:
        raise DerainError(f"{path}: {len(missing)} indexed file(s) are gone, e.g. {missing[0]}")
    name = f"{index['dataset']}-{index['split']}"
    return PairedDataset(name, root, pairs, index["layout"], index["partial"])


def prepared_dataset(name: str, split: str = "test") -> PairedDataset:
    """A catalogued set prepared earlier (its index under ``data_root()/index``)."""
    entry = get_entry(name)
    if entry.name == "embedded":
        raise DerainError("use derain_lib.data.embedded.embedded_dataset for the embedded set")
    path = data_root() / "index" / f"{entry.name}-{split}.json"
    if not path.is_file():
        raise DerainError(
            f"{entry.name} {split} is not prepared ({path} missing)\n" + where_to_get(entry, split)
        )
    return open_index(path)
