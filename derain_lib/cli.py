"""The ``derain`` command line: ``derain COMMAND --help`` shows an example for each."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy
import skimage
import torch
from tqdm import tqdm

from . import __version__
from .allocator import tune
from .config import Config, EvalConfig, ModelConfig, check_tile, config_from_dict, load_config
from .data.catalog import CATALOG, prepare
from .data.datasets import data_root, open_dataset
from .data.embedded import SIZES, build_embedded, embedded_dataset
from .data.fetch import Offline
from .data.io import scan_images
from .data.patches import PAPER_HFLIP, PAPER_PATCH, PAPER_STRIDES, PatchSet
from .data.remote import DATASETS, fetch_dataset, fetch_items
from .errors import DerainError
from .inference import derain_files, expand_inputs
from .metrics import json_safe, score, score_folder, summarize
from .models import DESCRIPTIONS
from .runs import Run, get_or_run, list_runs, open_run, results_root, run_labels
from .study.pipeline import run_pipeline
from .threads import configure as configure_threads
from .train import dist_info
from .weights import RELEASED, cache_dir, find_released, load_model, weight_items

#: What ``--results`` defaults to, as ``--help`` shows it.
RESULTS_HELP = (
    "results root (default: env DERAIN_RESULTS, else results/ in the project: the folder "
    "holding pyproject.toml at or above the working directory, else the working directory)"
)


def _cmd_data_list(args: argparse.Namespace) -> int:
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


def _cmd_data_prepare(args: argparse.Namespace) -> int:
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


def _cmd_data_scan(args: argparse.Namespace) -> int:
    problems = scan_images(Path(args.folder), decode=not args.headers_only)
    for _, msg in problems:
        print(msg)
    if problems:
        raise DerainError(f"{args.folder}: {len(problems)} unreadable image file(s)")
    print(f"{args.folder}: every image reads")
    return 0


def _cmd_data_patches(args: argparse.Namespace) -> int:
    ds = open_dataset(args.folder)
    key = (args.paper or "").lower()
    if key and key not in PAPER_STRIDES:
        raise DerainError(f"--paper takes one of {', '.join(PAPER_STRIDES)}, got {args.paper!r}")
    stride = args.stride or PAPER_STRIDES.get(key, 40)
    hflip = args.hflip or PAPER_HFLIP.get(key, False)
    print(PatchSet(ds, args.patch or PAPER_PATCH, stride, hflip).summary())
    return 0


def _add_data(sub: argparse._SubParsersAction) -> None:
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
    q.set_defaults(func=_cmd_data_list)

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
    q.set_defaults(func=_cmd_data_prepare)

    q = dsub.add_parser(
        "scan",
        help="report every unreadable image of a folder (recursive) at once",
        epilog="example: derain data scan ~/datasets/Rain1400",
    )
    q.add_argument("folder")
    q.add_argument("--headers-only", action="store_true", help="check headers only (fast)")
    q.set_defaults(func=_cmd_data_scan)

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
    q.set_defaults(func=_cmd_data_patches)


#: What ``derain fetch`` can get (``all``: every one of them).
FETCH_TARGETS = ("weights", *DATASETS)


def fetch_targets(target: str, log: Callable[[str], None] = print) -> list[str]:
    """Fetch ``target`` (``all`` or one of :data:`FETCH_TARGETS`): the released weights into
    their cache, a test set into the data root, verified and indexed as its benchmark's
    prepared test set. Returns one summary line per part. When the first request cannot
    connect, logs one ``offline: ...; using the embedded stand-ins`` line and returns what
    was done so far, so that ``make reproduce`` goes on without the network."""
    done = []
    try:
        for t in FETCH_TARGETS if target == "all" else (target,):
            if t == "weights":
                n = fetch_items(weight_items(), cache_dir(), log)
                done.append(
                    f"weights: {n} downloaded, all {len(RELEASED)} verified in {cache_dir()}"
                )
            else:
                done.append(fetch_dataset(t, log))
    except Offline as e:
        log(f"offline: {e}; using the embedded stand-ins")
    return done


def _cmd_fetch(args: argparse.Namespace) -> int:
    for line in fetch_targets(args.target):
        print(line)
    return 0


def _add_fetch(sub: argparse._SubParsersAction) -> None:
    """``derain fetch``: released weights and real test sets, sha256-verified, cached."""
    p = sub.add_parser(
        "fetch",
        help="download the released weights and the Rain100L / Rain100H (cropped) test sets",
        epilog="example: derain fetch all   (DERAIN_MIRROR=URL: a mirror of the raw file trees)",
    )
    p.add_argument("target", nargs="?", default="all", choices=("all", *FETCH_TARGETS))
    p.set_defaults(func=_cmd_fetch)


def _print_result(run: Run) -> None:
    m = run.metrics
    print(f"run {run.key}: {run.dir}")
    for r in run.per_image.itertuples():
        print(f"  {r.name:<28} {r.psnr:9.4f} {r.ssim:7.4f}")
    print(f"  {'mean of ' + str(m['n']):<28} {m['psnr']:9.4f} {m['ssim']:7.4f}")


def _cmd_train(args) -> int:
    overrides = ([f"dataset={args.dataset}"] if args.dataset else []) + list(args.set or [])
    cfg = load_config(args.config, overrides)
    run = get_or_run(cfg, args.results, progress=not args.no_progress, wait=args.wait)
    if dist_info()[0] == 0:
        _print_result(run)
    return 0


def _cmd_evaluate(args) -> int:
    name = args.model or load_model(args.weights, weights_dir=args.weights_dir).model_name
    base = Config(
        name="evaluate",
        dataset=args.data,
        model=ModelConfig(name=name, weights=args.weights),
        eval=EvalConfig(
            tile=args.tile,
            overlap=args.overlap,
            max_images=args.max_images,
            precision=args.precision,
            stages=args.stages,
        ),
    )
    base.data.test = args.data
    base.data.root = "."
    cfg = config_from_dict(base.to_dict(), args.set)
    _print_result(
        get_or_run(cfg, args.results, not args.no_progress, args.weights_dir, wait=args.wait)
    )
    return 0


def _cmd_runs(args) -> int:
    if args.action == "show":
        run = open_run(args.key, args.results)
        print(json.dumps({"dir": str(run.dir), "status": run.status, "metrics": run.metrics,
                          "provenance": run.provenance}, indent=1))  # fmt: skip
        return 0
    runs = list_runs(args.results)
    if not runs:
        print(f"no runs under {results_root(args.results) / 'runs'}")
        return 0
    if args.action == "prune":
        if not args.stale:
            raise DerainError("runs prune: say what to remove: --stale")
        stale = [r for r in runs if r.stale]
        for r in stale:
            shutil.rmtree(r.dir)
            print(f"removed stale run {r.key}: {r.dir}")
        print(f"{len(stale)} stale runs removed, {len(runs) - len(stale)} kept")
        return 0
    head = ("run", "status", "code", "PSNR", "SSIM", "profile · data · model · loss · seed")
    print("{:<12} {:<10} {:<7} {:>8} {:>7}  {}".format(*head))
    for r, label in zip(runs, run_labels(runs, status=False), strict=True):
        if r.damage:
            print(f"{r.key:<12} {'damaged':<10} {r.damage}")
            continue
        m = r.metrics
        ps = f"{m['psnr']:8.3f}" if m else f"{'-':>8}"
        ss = f"{m['ssim']:7.4f}" if m else f"{'-':>7}"
        code = "stale" if r.stale else "current"
        print(f"{r.key:<12} {r.status:<10} {code:<7} {ps} {ss}  {label}")
    return 0


def _add_run_options(p: argparse.ArgumentParser, example: str) -> None:
    """``--set``, ``--results``, ``--no-progress`` and ``--wait``: the options of every
    command that goes through the run cache."""
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help=f"override, e.g. {example}")
    p.add_argument("--results", help=RESULTS_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--wait", action="store_true", help="wait while another process holds the run")


def _add_engine(sub: argparse._SubParsersAction) -> None:
    """Add ``train``, ``evaluate`` and ``runs`` to the ``derain`` command line."""
    p = sub.add_parser(
        "train",
        help="train a model from a config or profile (cached run; resumes if interrupted)",
        epilog="example: derain train --config smoke --set train.max_steps=20 "
        "(several processes: torchrun --nproc_per_node 2 -m derain_lib.entry train --config quick)",
    )
    p.add_argument("--config", required=True, help="a YAML file or a profile: smoke, quick, paper")
    p.add_argument("--dataset", help="the profile's data set section (e.g. rain100h, heavy)")
    _add_run_options(p, "train.lr=1e-3")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="score weights on a paired data set (PSNR/SSIM, MATLAB Y protocol; cached run)",
        epilog="example: derain evaluate --weights sian-rain100l --data ../shared/data/"
        "rain100l_sample --tile 256",
    )
    p.add_argument("--weights", required=True, help="released name or a model file")
    p.add_argument("--data", required=True, help="a data set folder or embedded:light:test:smoke")
    p.add_argument("--model", help="the architecture (default: from the weights)")
    p.add_argument("--weights-dir", help="folder with released weight files")
    p.add_argument("--tile", type=int, help="tile size for large images (default: whole image)")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels (default 32)")
    p.add_argument("--max-images", type=int, help="only the first N images")
    add_inference_options(p)
    _add_run_options(p, "eval.save_images=false")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "runs",
        help="list cached runs (stale: made by other code), show one, or prune stale ones",
        epilog="example: derain runs list; derain runs show 3fa2; derain runs prune --stale",
    )
    p.add_argument("action", choices=["list", "show", "prune"])
    p.add_argument("key", nargs="?", default="", help="run key (or prefix) for show")
    p.add_argument("--stale", action="store_true", help="prune: remove the runs made by other code")
    p.add_argument("--results", help=RESULTS_HELP)
    p.set_defaults(func=_cmd_runs)


#: Parameter count of each model of :data:`~derain_lib.models.DESCRIPTIONS`, so that
#: ``derain info`` builds no model (``tests/test_cli.py`` builds each and checks this table).
PARAMETERS = {
    "sian": 491_939,
    "sian-baseline": 353_603,
    "sian-baseline+lstm": 353_603,
    "sian-paper": 491_939,
    "prenet": 168_963,
}


def _cmd_info(args: argparse.Namespace) -> int:
    print(f"derain {__version__}")
    print(
        f"python {platform.python_version()}  torch {torch.__version__}  numpy {numpy.__version__}"
        f"  scikit-image {skimage.__version__}  threads {torch.get_num_threads()}"
    )
    print("\nmodels:")
    for name, desc in DESCRIPTIONS.items():
        print(f"  {name:<20} {PARAMETERS[name]:>8,} params  {desc}")
    print("\nreleased weights (upstream, sha256-verified):")
    for w in RELEASED.values():
        local = find_released(w.name, args.weights_dir)
        where = f"local: {local}" if local else "not downloaded"
        print(f"  {w.name:<16} {w.family:<6} {w.dataset:<9} {w.sha256[:16]}  {where}")
    return 0


def _cmd_derain(args: argparse.Namespace) -> int:
    if args.tile is not None:
        check_tile(args.tile, 0, "--")
    lw = load_model(args.weights, args.model, weights_dir=args.weights_dir)
    print(f"model: {lw.describe()}", file=sys.stderr)
    done, failed, first = 0, 0, ""
    files = expand_inputs(args.inputs)  # for the bar's total
    batch = derain_files(
        lw.model,
        args.inputs,
        args.output,
        args.quantize,
        args.tile,
        args.overwrite,
        stages=args.stages,
        precision=args.precision,
    )
    bar = tqdm(batch, total=len(files), desc="derain", unit="image", disable=args.no_progress)
    for _, written, problem in bar:
        if written is not None:
            bar.write(str(written), file=sys.stdout)  # each output named as it is written
            sys.stdout.flush()
            done += 1
        else:
            bar.write(f"derain: error: {problem}", file=sys.stderr)
            failed, first = failed + 1, first or problem
    print(f"{done} derained, {failed} failed", file=sys.stderr)
    if failed:
        raise DerainError(
            f"{failed} of {done + failed} input image(s) could not be derained (first: {first})"
        )
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    rows, pairing = score_folder(args.pred_dir, args.gt_dir, quantize_mode="round")
    summary = summarize(rows)
    summary["unpaired_pred"] = [str(p) for p in pairing.unpaired_pred]
    summary["unpaired_gt"] = [str(p) for p in pairing.unpaired_gt]
    skipped = pairing.skipped
    summary["skipped"] = skipped
    if args.json:
        print(json.dumps(json_safe(summary), indent=1, allow_nan=False))
    else:
        print(f"{'image':<28} {'ground truth':<28} {'PSNR':>9} {'SSIM':>7}")
        for r in rows:
            print(f"{r.name:<28} {r.gt:<28} {r.psnr:9.4f} {r.ssim:7.4f}")
        print(f"{'mean of ' + str(summary['n']):<57} {summary['psnr']:9.4f} {summary['ssim']:7.4f}")
        for p in pairing.unpaired_pred + pairing.unpaired_gt:
            print(f"unpaired: {p}")
    for why in skipped:
        print(f"derain: error: skipped: {why}", file=sys.stderr)
    if not rows:
        raise DerainError(f"no image pairs scored between {args.pred_dir} and {args.gt_dir}")
    if skipped:
        raise DerainError(f"{len(skipped)} pair(s) skipped, {len(rows)} scored")
    return 0


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info", help="versions, models and known weights", epilog="example: derain info"
    )
    p.add_argument("--weights-dir", help="folder with released weight files")
    p.set_defaults(func=_cmd_info)


def _add_derain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "derain",
        help="derain your own images or folders",
        epilog="example: derain derain photo.jpg rainy_folder/ -o out/ --weights sian-rain100h",
    )
    p.add_argument("inputs", nargs="+", help="image files or folders of images")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output folder, or an image file name (.png, .jpg, ...) for one input",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (on stderr)")
    p.add_argument("--weights", required=True, help="released name (see `derain info`) or a file")
    p.add_argument("--model", help="the architecture expected (default: taken from the weights)")
    p.add_argument("--weights-dir", help="folder with released weight files")
    p.add_argument(
        "--quantize",
        choices=["round", "truncate"],
        default="round",
        help="float -> uint8: round (the authors' cv2.imwrite, default) or truncate (PReNet)",
    )
    p.add_argument(
        "--tile",
        type=int,
        help="tile size in px (default: whole image up to 512x512, tiles of 512 above)",
    )
    add_inference_options(p, precision="auto")
    p.set_defaults(func=_cmd_derain)


def add_inference_options(p: argparse.ArgumentParser, precision: str = "fp32") -> None:
    """``--stages K`` and ``--precision`` for the commands that run a model."""
    p.add_argument(
        "--stages",
        type=int,
        metavar="K",
        help="stop after K stages (1-6; fewer is faster; default: all)",
    )
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "auto"],
        default=precision,
        help=f"fp32, bf16 autocast, or auto: bf16 only on CPUs/GPUs with native bf16 "
        f"(default {precision})",
    )


def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="PSNR/SSIM (MATLAB Y protocol) of a folder against ground truth",
        epilog="example: derain score out/ data/rain100l/norain --json",
    )
    p.add_argument("pred_dir")
    p.add_argument("gt_dir")
    p.add_argument("--json", action="store_true", help="one JSON object: n, psnr, ssim, per_image")
    p.set_defaults(func=_cmd_score)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    if args.data_root and not Path(args.data_root).is_dir():
        raise DerainError(f"--data-root {args.data_root}: no such folder")
    if args.weights_dir and not Path(args.weights_dir).is_dir():
        raise DerainError(f"--weights-dir {args.weights_dir}: no such folder")
    run_pipeline(args.profile, args.data_root, args.weights_dir, args.set)
    return 0


def _add_reproduce(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="run the study's notebooks in order (papermill), write Tables II-V and the report",
        epilog="example: derain reproduce --profile quick --data-root ../shared/data "
        "--weights-dir ../shared/weights",
    )
    p.add_argument("--profile", default="quick", help="smoke | quick | paper (default quick)")
    p.add_argument("--data-root", help="folder holding real benchmark data (optional)")
    p.add_argument("--weights-dir", help="folder holding released weight files (optional)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run of the profile, e.g. train.device=cuda",
    )
    p.set_defaults(func=_cmd_reproduce)


#: Each adds one sub-command. Feature modules append theirs here.
REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_info,
    _add_derain,
    _add_score,
    _add_data,
    _add_fetch,
    _add_reproduce,
    _add_engine,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="derain", description="A reproducible study of the SIAN deraining network."
    )
    parser.add_argument("--version", action="version", version=f"derain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_threads()  # caps torch's threads; the OpenMP variables: derain_lib.entry
    args = build_parser().parse_args(argv)
    tune()  # glibc keeps freed tensors' memory for reuse; DERAIN_MALLOC_TUNING=0 opts out
    try:
        return int(args.func(args) or 0)
    except DerainError as e:
        print(f"derain: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file system refusal not caught nearer its cause
        print(f"derain: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("derain: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
