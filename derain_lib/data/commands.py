"""``derain data ...``: list the catalog, prepare (verify + index) a set, scan, count patches."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import DerainError
from .datasets import data_root


def _cmd_list(args: argparse.Namespace) -> int:
    from .catalog import CATALOG

    for e in CATALOG.values():
        print(f"{e.name:<17} {e.title}")
        for split, s in e.splits.items():
            man = f"manifest {s.manifest}" if s.manifest else "no manifest"
            print(
                f"  {split:<5} {s.pairs:>6} pairs, {s.pairs + s.clean:>6} files, "
                f"{s.image_size}; folder {s.folder}; {man}"
            )
        print(f"  layout: {e.layout}: {e.description}")
        for src in e.sources:
            print(f"  source: {src.label}: {src.url}")
    return 0


def _prepare_embedded(args: argparse.Namespace) -> int:
    from ..metrics import score
    from .embedded import SIZES, build_embedded, embedded_dataset

    root = Path(args.source) if args.source else None
    for size in [args.size] if args.size else list(SIZES):
        t = time.perf_counter()
        folder = build_embedded(size, root)
        print(f"embedded {size}: {folder} ready in {time.perf_counter() - t:.1f} s")
        for preset in ("light", "heavy"):
            for split in ("train", "test"):
                ds = embedded_dataset(preset, split, size, root)
                psnr = sum(score(*ds.load(i))[0] for i in range(len(ds))) / len(ds)
                print(f"  {preset} {split} {len(ds)} pairs, mean Input PSNR {psnr:.2f} dB")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from .catalog import prepare

    if args.name.lower() == "embedded":
        return _prepare_embedded(args)
    report = prepare(
        args.name,
        args.source,
        split=args.split,
        download_missing=args.download,
        index_out=args.index_out,
        allow_mismatch=args.allow_mismatch,
        decode=not args.headers_only,
    )
    for line in report.lines():
        print(line)
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from .io import scan_images

    problems = scan_images(Path(args.folder), decode=not args.headers_only)
    for _, msg in problems:
        print(msg)
    if problems:
        raise DerainError(f"{args.folder}: {len(problems)} unreadable image file(s)")
    print(f"{args.folder}: every image reads")
    return 0


def _cmd_patches(args: argparse.Namespace) -> int:
    from .datasets import open_dataset
    from .patches import PAPER_HFLIP, PAPER_PATCH, PAPER_STRIDES, PatchSet

    ds = open_dataset(args.folder)
    key = (args.paper or "").lower()
    if key and key not in PAPER_STRIDES:
        raise DerainError(f"--paper takes one of {', '.join(PAPER_STRIDES)}, got {args.paper!r}")
    stride = args.stride or PAPER_STRIDES.get(key, 40)
    hflip = args.hflip or PAPER_HFLIP.get(key, False)
    print(PatchSet(ds, args.patch or PAPER_PATCH, stride, hflip).summary())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``derain data`` with its sub-commands."""
    p = sub.add_parser(
        "data",
        help="data sets: catalog, prepare (verify + index), scan, patch counts",
        epilog="example: derain data prepare rain100l --from ../shared/data/rain100l_sample",
    )
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    q = dsub.add_parser(
        "list",
        help="the catalogued data sets and their sources",
        epilog="example: derain data list",
    )
    q.set_defaults(func=_cmd_list)

    q = dsub.add_parser(
        "prepare",
        help="verify a copy against the catalog and write an index (embedded: build it)",
        epilog="example: derain data prepare rain100l --from ../shared/data/rain100l_sample",
    )
    q.add_argument("name", help="rain100l, rain100h, rain100h-crop480, rain1400, rain12, embedded")
    q.add_argument(
        "--from",
        dest="source",
        help="your copy of the set (never modified); for embedded: the cache root",
    )
    q.add_argument("--split", default="test", choices=["test", "train"], help="default: test")
    q.add_argument(
        "--download",
        action="store_true",
        help="fetch missing files where a public per-file mirror exists, else say where to get it",
    )
    q.add_argument(
        "--index-out",
        help="index JSON path (default: $DERAIN_DATA/index/NAME-SPLIT.json, else "
        f"{data_root() / 'index'}/NAME-SPLIT.json)",
    )
    q.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="index a copy whose files differ from the catalog's sha256 manifest",
    )
    q.add_argument(
        "--headers-only",
        action="store_true",
        help="check image headers instead of decoding every image (faster on Rain1400)",
    )
    q.add_argument("--size", choices=["smoke", "quick"], help="embedded only: build one size")
    q.set_defaults(func=_cmd_prepare)

    q = dsub.add_parser(
        "scan",
        help="report every unreadable image of a folder (recursive) at once",
        epilog="example: derain data scan ~/datasets/Rain1400",
    )
    q.add_argument("folder")
    q.add_argument("--headers-only", action="store_true", help="check headers only (fast)")
    q.set_defaults(func=_cmd_scan)

    q = dsub.add_parser(
        "patches",
        help="count the training patches of a folder",
        epilog="example: derain data patches ~/datasets/RainTrainL --paper rain100l",
    )
    q.add_argument("folder")
    q.add_argument("--paper", help="use the paper's stride/flip for rain100l, rain100h or rain1400")
    q.add_argument("--patch", type=int, help="patch size (default 120)")
    q.add_argument("--stride", type=int, help="stride (default: the paper's, else 40)")
    q.add_argument("--hflip", action="store_true", help="count horizontal-flip copies too")
    q.set_defaults(func=_cmd_patches)
