"""The data catalog (``catalog.yaml``): ``prepare`` verifies a user's copy of a set (never
changing it; the index goes elsewhere); ``derain fetch`` gets the test sets with a public copy."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from importlib import resources
from itertools import islice
from pathlib import Path
from typing import NamedTuple

import yaml

from ..errors import DerainError
from ..fsutil import atomic_write_text, data_root
from .datasets import Pair, PairedDataset, PairSizeError, open_dataset
from .fetch import RAW_HOST, Item, Tree, fetch_items, sha256_file
from .io import ImageReadError, image_size, scan_images
from .patches import PAPER_HFLIP, PAPER_PATCH, PAPER_STRIDES, count_patches

INDEX_FORMAT = "derain-data-index"


class Source(NamedTuple):
    label: str
    url: str


@dataclass(frozen=True)
class Split:
    pairs: int
    clean: int
    folder: str  # the distribution's folder name
    image_size: str
    manifest: str | None = None  # file in derain_lib/data/manifests/
    variants: dict[int, str] = field(default_factory=dict)  # known complete copies by count


@dataclass(frozen=True)
class Entry:
    name: str
    title: str
    layout: str
    description: str
    sources: tuple[Source, ...]
    splits: dict[str, Split] = field(default_factory=dict)
    train_layouts: tuple[str, ...] = ()  # layouts its training set may come in


def _entry(name: str, e: dict) -> Entry:
    splits = {k: Split(**s) for k, s in e.pop("splits", {}).items()}
    return Entry(name, sources=tuple(Source(*s) for s in e.pop("sources")), splits=splits, **e)


_SPEC = yaml.safe_load(resources.files(__package__).joinpath("catalog.yaml").read_text())
CATALOG: dict[str, Entry] = {name: _entry(name, e) for name, e in _SPEC["sets"].items()}
#: The layouts a training set is distributed in, by what :func:`open_dataset` calls them.
TRAIN_LAYOUTS: dict[str, str] = _SPEC["train_layouts"]
#: Test set -> its tree, manifest, manifest name -> tree path rules, benchmark (``derain fetch``).
DATASETS: dict[str, dict] = _SPEC["fetch"]


def get_entry(name: str, split: str) -> tuple[Entry, Split]:
    """A catalogued set and its split, or one line naming what there is."""
    if (entry := CATALOG.get(name.lower())) is None:
        raise DerainError(f"unknown data set {name!r}; known: {', '.join(CATALOG)}")
    if split not in entry.splits:  # the embedded set has none: it is built, not verified
        has = ", ".join(entry.splits) or "none (it is built: embedded_dataset)"
        raise DerainError(f"{entry.name} has no {split!r} split; it has: {has}")
    return entry, entry.splits[split]


def load_manifest(filename: str) -> dict[str, str]:
    """``relative path -> sha256`` of a manifest shipped with the package."""
    text = resources.files(__package__).joinpath("manifests", filename).read_text()
    return {rel.lstrip("*"): h for h, rel in (x.split(maxsplit=1) for x in text.splitlines())}


def _numbers(name: str) -> tuple[int, ...]:
    """The numbers in a name: how ``norain/norain-001.png`` matches ``cleancrop/1.png``."""
    return tuple(map(int, re.findall(r"\d+", name)))


def where_to_get(entry: Entry, split: str) -> str:
    """The instructions printed when a set is not available locally."""
    s = entry.splits[split]
    return "\n".join(
        [f"{entry.name} {split} ({s.folder}, {s.pairs} pairs) is not available here."]
        + [f"  get it from: {src.label}: {src.url}" for src in entry.sources]
        + [f"  then run: derain data prepare {entry.name} --split {split} --from PATH/{s.folder}"]
    )


def _some(what: str, names: list[str], n: int) -> str:
    """``what`` with the count of ``names``, then the first ``n`` of them."""
    return f"{what.format(len(names))}: {', '.join(names[:n])}{', ...' * (len(names) > n)}"


@dataclass
class Report:
    """What ``prepare`` found: ``index``, written to ``index_path``; ``lines()``, printed."""

    dataset: PairedDataset
    index: dict
    index_path: Path

    def lines(self) -> list[str]:
        x, ds, p = self.index, self.dataset, self.index["patches"]
        n, expected = x["pairs_found"], x["pairs_expected"]
        state = f"PARTIAL set ({expected - n} pairs missing)" if x["partial"] else "complete"
        state = f"complete as a known variant: {x['variant']}" if x["variant"] else state
        out = [f"{x['dataset']} {x['split']}: {ds.root} ({ds.layout} layout)"]
        out += [f"layout found: {x['layout_found']}"] if x["layout_found"] else []
        out.append(f"verified {n} of {expected} pairs: {state}")
        if x["missing"] and not x["variant"]:
            out.append(_some("missing {} pair(s) by the set's naming rule", x["missing"], 10))
        sha = f"{x['sha256_matched']} of {x['sha256_checked']} files match the catalog manifest"
        none = "no manifest known for this split (counts, sizes and decoding checked)"
        out.append(f"sha256: {sha if x['sha256_checked'] else none}")
        out += [f"  differs from catalog: {r}" for r in x["sha256_differ"]]
        out += [f"  not in catalog manifest: {r}" for r in x["not_in_manifest"]]
        if ds.unpaired:
            out.append(f"unpaired files: {len(ds.unpaired)} (e.g. {ds.unpaired[0]})")
        if x["ignored"]:
            out.append(_some("ignored {} non-image or unused file(s)", x["ignored"], 5))
        if p:
            flip = " x2 with h-flip" if p["hflip"] else ""
            out.append(f"training patches {p['patch']}x{p['patch']} at stride {p['stride']}"
                       f"{flip}: {p['count']}")  # fmt: skip
        return [*out, f"index written: {self.index_path}"]


def open_training_copy(entry: Entry, root: Path) -> tuple[PairedDataset, str]:
    """A user's copy of ``entry``'s training set (in ``root`` or a wrapper folder), its layout."""
    split = entry.splits["train"]
    width = 2 if entry.name == "rain1400" else 1  # pair names: N (Rain100L/H) or N_k (Rain12600)
    todo = [root]
    for here in islice(todo, 12):  # the list grows while it is read: wrapper folders
        try:
            ds = open_dataset(here, "auto", expected=split.pairs)
        except DerainError:
            ds = None
        widths = {len(_numbers(p.name)) for p in ds.pairs} if ds else ()
        if ds and ds.layout in entry.train_layouts and widths == {width}:
            ddn = ds.layout == "rain1400" and " " in ds.pairs[0].rainy.parent.name
            return ds, TRAIN_LAYOUTS["ddn" if ddn else ds.layout]
        subs = sorted(d for d in here.iterdir() if d.is_dir())
        named = [d for d in subs if d.name.lower() == split.folder.lower()]
        todo += named or (subs if len(subs) == 1 else [])
    looked = "; ".join(v for k, v in TRAIN_LAYOUTS.items() if k in entry.train_layouts)
    raise DerainError(f"{root}: no {entry.name} training pairs recognised; layouts tried: {looked}")


def missing_pairs(entry: Entry, ds: PairedDataset) -> list[str]:
    """The pair names of a complete training set (``rain-NNN``; Rain12600: ``N_k``) ``ds`` lacks."""
    s, have = entry.splits["train"], {_numbers(p.name) for p in ds.pairs}
    names = [f"rain-{n:03d}" for n in range(1, s.pairs + 1)]
    if entry.name == "rain1400":
        names = [f"{n}_{k}" for n in range(1, s.clean + 1) for k in range(1, 15)]
    return [name for name in names if _numbers(name) not in have]


def prepare(
    name: str,
    source: str | Path | None,
    split: str = "test",
    index_out: str | Path | None = None,
    allow_mismatch: bool = False,
    decode: bool = True,
) -> Report:
    """Verify a copy of a catalogued set and write its index (``source`` None: where to get it)."""
    (entry, s), root = get_entry(name, split), Path(source or ".")
    if source is None or not root.is_dir():
        where = where_to_get(entry, split)
        raise DerainError(where if source is None else f"{root}: no such folder\n{where}")
    if split == "train":
        ds, layout_found = open_training_copy(entry, root)
    else:
        ds, layout_found = open_dataset(root, entry.layout, expected=s.pairs), None
    ds.name, root, files = f"{entry.name}-{split}", ds.root, ds.files()
    if problems := scan_images(files, decode):
        lines = "\n  ".join(msg for _, msg in problems)
        raise ImageReadError(f"{len(problems)} unreadable image file(s):\n  {lines}")
    sizes = {f: image_size(f) for f in files}  # from the headers
    if bad := [p.name for p in ds.pairs if p.clean and sizes[p.rainy] != sizes[p.clean]]:
        raise PairSizeError(
            f"{root}: {len(bad)} pair(s) whose rainy and clean sizes differ: {', '.join(bad)}"
        )

    def rel(f: Path) -> str:
        return f.relative_to(root).as_posix()

    used = {f.resolve() for f in files} | {Path(f).resolve() for f in ds.unpaired}
    ignored = sorted(rel(f) for f in root.rglob("*") if f.is_file() and f.resolve() not in used)
    variant = None if ds.unpaired else s.variants.get(len(ds))

    hashes = {f: sha256_file(f) for f in files}
    known = {  # a manifest's file by (clean?, its numbers): how cleancrop/1.png is norain-001
        (Path(rel).name.lower().startswith("norain"), _numbers(Path(rel).stem)): (rel, digest)
        for rel, digest in (load_manifest(s.manifest) if s.manifest else {}).items()
    }
    clean = {p.clean for p in ds.pairs}
    hits = [(f, known.get((f in clean, _numbers(f.stem)))) for f in files if s.manifest]
    unknown = [rel(f) for f, hit in hits if hit is None]
    differ = [f"{rel(f)} (catalog: {hit[0]})" for f, hit in hits if hit and hit[1] != hashes[f]]
    matched = len(hits) - len(unknown) - len(differ)
    if differ and not allow_mismatch:
        raise DerainError(
            f"{root}: {len(differ)} file(s) differ from the {entry.name} {split} manifest, "
            f"e.g. {differ[0]}; this is another version of the set "
            "(use --allow-mismatch to index it anyway)"
        )

    patches = None
    if split == "train" and entry.name in PAPER_STRIDES:
        stride, hflip = PAPER_STRIDES[entry.name], PAPER_HFLIP[entry.name]
        count = sum(count_patches(*sizes[p.rainy], PAPER_PATCH, stride) for p in ds.pairs)
        count *= 2 if hflip else 1
        patches = {"patch": PAPER_PATCH, "stride": stride, "hflip": hflip, "count": count}

    index_path = Path(index_out or data_root() / "index" / f"{entry.name}-{split}.json")
    if (path := index_path.resolve()).is_relative_to(root.resolve()):
        raise DerainError(f"{path}: the index must not be written inside the data folder {root}")
    try:
        ours = not path.exists() or json.loads(path.read_text()).get("format") == INDEX_FORMAT
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise DerainError(f"{path}: exists and is not a derain data index; refusing to overwrite")
    index = {
        "format": INDEX_FORMAT,
        "dataset": entry.name,
        "split": split,
        "root": str(root.resolve()),
        "layout": ds.layout,
        "pairs_found": len(ds),
        "pairs_expected": s.pairs,
        "partial": not variant and (ds.partial or len(ds) < s.pairs),
        "layout_found": layout_found,
        "missing": missing_pairs(entry, ds) if split == "train" else [],
        "variant": variant,
        "sha256_checked": matched + len(differ),
        "sha256_matched": matched,
        "sha256_differ": differ,
        "not_in_manifest": unknown,
        "ignored": ignored,
        "patches": patches,
        "unpaired": [str(p) for p in ds.unpaired],
        "manifest_sha256": ds.manifest_sha256(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pairs": [
            {
                "name": p.name,
                "rainy": rel(p.rainy),
                "clean": rel(p.clean) if p.clean else None,
                "height": sizes[p.rainy][0],
                "width": sizes[p.rainy][1],
                "rainy_sha256": hashes[p.rainy],
                "clean_sha256": hashes[p.clean] if p.clean else None,
            }
            for p in ds.pairs
        ],
    }
    atomic_write_text(index_path, json.dumps(index, indent=1))
    return Report(ds, index, index_path)


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
        Pair(p["name"], root / p["rainy"], p["clean"] and root / p["clean"]) for p in index["pairs"]
    ]
    missing = [str(f) for p in pairs for f in (p.rainy, p.clean) if f and not f.is_file()]
    if missing:
        raise DerainError(f"{path}: {len(missing)} indexed file(s) are gone, e.g. {missing[0]}")
    name = f"{index['dataset']}-{index['split']}"
    return PairedDataset(name, root, pairs, index["layout"], index["partial"])


def prepared_dataset(name: str, split: str = "test") -> PairedDataset:
    """A catalogued set prepared earlier (its index under ``data_root()/index``)."""
    entry, _ = get_entry(name, split)
    path = data_root() / "index" / f"{entry.name}-{split}.json"
    if not path.is_file():
        where = where_to_get(entry, split)
        raise DerainError(f"{entry.name} {split} is not prepared ({path} missing)\n{where}")
    return open_index(path)


def dataset_dir(name: str) -> Path:
    """Where ``derain fetch`` puts test set ``name``."""
    return data_root() / name / "test"


def dataset_items(name: str) -> list[Item]:
    """Every file of test set ``name``, from its shipped manifest (local names without spaces)."""
    d = DATASETS[name]
    tree = Tree(*d["tree"], d.get("host", RAW_HOST))
    return [
        Item(tree, reduce(lambda r, s: re.sub(s[0], s[1], r), d["path"], rel), sha,
             rel.replace(" ", "_"))
        for rel, sha in load_manifest(d["manifest"]).items()
    ]  # fmt: skip


def fetch_dataset(name: str, log: Callable[[str], None] = print) -> str:
    """Fetch, verify and index test set ``name`` as its benchmark's; returns one summary line."""
    dest, items, benchmark = dataset_dir(name), dataset_items(name), DATASETS[name]["benchmark"]
    n = fetch_items(items, dest, log)
    index = data_root() / "index" / f"{benchmark}-test.json"
    report = prepare(name, dest, "test", index_out=index)
    return (
        f"{name}: {n} downloaded, {len(items)} files verified in {dest}; "
        f"indexed as the {benchmark} test set ({len(report.dataset)} pairs): {index}"
    )
