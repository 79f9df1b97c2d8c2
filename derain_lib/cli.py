"""The ``derain`` command line: ``derain COMMAND --help`` shows an example for each."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable

from . import __version__
from .config import check_tile
from .data.commands import register as _add_data
from .data.fetch import register as _add_fetch
from .errors import DerainError
from .reproduce import register as _add_reproduce
from .runs import register as _add_engine
from .threads import configure as configure_threads


def _cmd_info(args: argparse.Namespace) -> int:
    import numpy
    import skimage
    import torch

    from .models import DESCRIPTIONS, build_model, count_parameters
    from .weights import RELEASED, find_released

    print(f"derain {__version__}")
    print(
        f"python {platform.python_version()}  torch {torch.__version__}  numpy {numpy.__version__}"
        f"  scikit-image {skimage.__version__}  threads {torch.get_num_threads()}"
    )
    print("\nmodels:")
    for name, desc in DESCRIPTIONS.items():
        print(f"  {name:<20} {count_parameters(build_model(name)):>8,} params  {desc}")
    print("\nreleased weights (upstream, sha256-verified):")
    for w in RELEASED.values():
        local = find_released(w.name, args.weights_dir)
        where = f"local: {local}" if local else "not downloaded"
        print(f"  {w.name:<16} {w.family:<6} {w.dataset:<9} {w.sha256[:16]}  {where}")
    return 0


def _cmd_derain(args: argparse.Namespace) -> int:
    from .inference import derain_files
    from .weights import load_model

    if args.tile is not None:
        check_tile(args.tile, 0, "--")
    lw = load_model(args.weights, args.model, weights_dir=args.weights_dir)
    print(f"model: {lw.describe()}", file=sys.stderr)
    done, failed, first = 0, 0, ""
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
    for _, written, problem in batch:
        if written is not None:
            print(written, flush=True)
            done += 1
        else:
            print(f"derain: error: {problem}", file=sys.stderr, flush=True)
            failed, first = failed + 1, first or problem
    print(f"{done} derained, {failed} failed", file=sys.stderr)
    if failed:
        raise DerainError(
            f"{failed} of {done + failed} input image(s) could not be derained (first: {first})"
        )
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from .metrics import json_safe, score_folder, summarize

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
    configure_threads()  # before torch is imported: OpenMP reads its settings at load
    args = build_parser().parse_args(argv)
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
