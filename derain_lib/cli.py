"""The ``derain`` command line: the parser, the torch-free argument checks and :func:`main`.

The application layer: it sits above the engine and :mod:`derain_lib.study`. This module
imports no torch, so that ``--help``, ``derain info`` and every argument or input error
(:func:`check_args`) answer at once; :func:`main` imports :mod:`derain_lib.commands` (torch
and what each command does) only for the other commands, after the OpenMP settings
(:func:`derain_lib.threads.configure`: the runtime reads them once, when torch loads).
``derain COMMAND --help`` shows an example for each command.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import util
from pathlib import Path

from . import __version__
from .allocator import tune
from .config import DEVICE_PATTERN
from .errors import DerainError
from .fsutil import IMAGE_SUFFIXES, data_root, path_problem
from .info import FETCH_EXTRA, FETCH_TARGETS, FETCHED_SETS, RELEASED, info_lines
from .roots import RESULTS_DEFAULT
from .threads import configure

#: ``--backend``'s choices (``derain_lib.backends.BACKENDS``) and the pip extra that
#: installs the graph backends (``derain_lib.backends.EXTRA``; tests/test_backends.py).
BACKENDS, BACKEND_EXTRA = ("auto", "torch", "openvino", "onnxruntime"), "cpu-fast"
#: A path argument: ``~`` expanded.
PATH = os.path.expanduser
RESULTS_HELP = f"results root (default: {RESULTS_DEFAULT})"


def _device(text: str) -> str:
    """``--device``'s value: auto, cpu, cuda or cuda:N (else argparse's one-line error)."""
    if not DEVICE_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"{text!r}: choose auto, cpu, cuda or cuda:N")
    return text


def _model_options(p: argparse.ArgumentParser, model_help: str) -> None:
    """``--weights``, ``--model``, ``--weights-dir`` and ``--strict-config``."""
    p.add_argument(
        "--weights",
        required=True,
        type=PATH,
        help="released name (see `derain info`) or a model file",
    )
    p.add_argument("--model", help=model_help)
    p.add_argument("--weights-dir", type=PATH, help="folder with released weight files")
    p.add_argument(
        "--strict-config",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="refuse weights made for another configuration of the model (default); "
        "--no-strict-config loads them anyway (fine-tuning only)",
    )


def _inference_options(p: argparse.ArgumentParser) -> None:
    """``--stages``, ``--precision``, ``--backend`` and ``--device``: how a model runs."""
    p.add_argument(
        "--stages",
        type=int,
        metavar="K",
        help="stop after K stages (1-6; fewer is faster; default: all)",
    )
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "auto"],
        default="auto",
        help="fp32, bf16, or auto: bf16 only where the CPU has it natively and it is measured "
        "faster on this machine, never for scores (evaluate); the choice is said on stderr "
        "(default auto)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=os.environ.get("DERAIN_BACKEND", "auto"),
        help="CPU inference: torch (eager), openvino or onnxruntime (an exported graph, "
        "cached), or auto: the fastest installed, measured once per machine and model "
        "(cached; said on stderr); torch on CUDA (default: $DERAIN_BACKEND, else auto)",
    )
    _device_option(p)


def _device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        type=_device,
        default="auto",
        metavar="auto|cpu|cuda|cuda:N",
        help="where the model runs (default auto: the first CUDA device when there is one)",
    )


def _run_options(p: argparse.ArgumentParser, example: str) -> None:
    """The options of every command that goes through the run cache."""
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help=f"override, e.g. {example}")
    p.add_argument("--results", type=PATH, help=RESULTS_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--wait", action="store_true", help="wait while another process holds the run")


def build_parser() -> argparse.ArgumentParser:
    """Every command, its options, help and example."""
    parser = argparse.ArgumentParser(
        prog="derain", description="A reproducible study of the SIAN deraining network."
    )
    parser.add_argument("--version", action="version", version=f"derain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, example: str, where=sub) -> argparse.ArgumentParser:
        return where.add_parser(name, help=help, epilog=f"example: {example}")

    p = command("info", "versions, models and known weights", "derain info")
    p.add_argument("--weights-dir", type=PATH, help="folder with released weight files")

    p = command(
        "derain",
        "derain your own images or folders",
        "derain derain photo.jpg rainy_folder/ -o out/ --weights sian-rain100h",
    )
    p.add_argument("inputs", nargs="+", type=PATH, help="image files or folders of images")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=PATH,
        help="output folder, or an image file name (.png, .jpg, ...) for one input",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave existing output files as they are and derain the rest (after a Ctrl-C)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (on stderr)")
    _model_options(p, "the architecture expected (default: taken from the weights)")
    p.add_argument(
        "--quantize",
        choices=["round", "truncate"],
        default="round",
        help="float -> uint8: round (the authors' cv2.imwrite, default) or truncate (PReNet)",
    )
    p.add_argument(
        "--tile",
        type=int,
        help="tile size in px (default: whole image where it "
        "fits: up to 512x512 on the CPU, by free memory on a GPU; tiles above)",
    )
    _inference_options(p)

    p = command(
        "score",
        "PSNR/SSIM (MATLAB Y protocol) of a folder (or one image) against ground truth",
        "derain score out/ data/rain100l/norain --json",
    )
    p.add_argument("pred_dir", type=PATH)
    p.add_argument("gt_dir", type=PATH)
    p.add_argument("--json", action="store_true", help="one JSON object: n, psnr, ssim, per_image")

    example = "derain data prepare rain100l --from ../shared/data/rain100l_sample"
    data = command(
        "data", "data sets: catalog, prepare (verify + index), scan, patch counts", example
    ).add_subparsers(dest="data_command", required=True, metavar="ACTION")
    command("list", "the catalogued data sets and their sources", "derain data list", data)
    p = command(
        "prepare",
        "verify a copy against the catalog and write an index (embedded: build it)",
        example,
        data,
    )
    p.add_argument("name", help="rain100l, rain100h, rain100h-crop480, rain1400, rain12, embedded")
    p.add_argument(
        "--from",
        dest="source",
        type=PATH,
        help="your copy of the set (never modified); for embedded: the cache root",
    )
    p.add_argument("--split", default="test", choices=["test", "train"], help="default: test")
    p.add_argument(
        "--index-out",
        type=PATH,
        help="index JSON path (default: $DERAIN_DATA/"
        f"index/NAME-SPLIT.json, else {data_root() / 'index'}/NAME-SPLIT.json)",
    )
    p.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="index a copy whose files differ from the catalog's sha256 manifest",
    )
    p.add_argument(
        "--headers-only",
        action="store_true",
        help="check image headers instead of decoding every image (faster on Rain1400)",
    )
    p.add_argument("--size", choices=["smoke", "quick"], help="embedded only: build one size")
    p = command(
        "scan",
        "report every unreadable image of a folder (recursive) at once",
        "derain data scan ~/datasets/Rain1400",
        data,
    )
    p.add_argument("folder", type=PATH)
    p.add_argument("--headers-only", action="store_true", help="check headers only (fast)")
    p = command(
        "patches",
        "count the training patches of a folder",
        "derain data patches ~/datasets/RainTrainL --paper rain100l",
        data,
    )
    p.add_argument("folder", type=PATH)
    p.add_argument("--paper", help="use the paper's stride/flip for rain100l, rain100h or rain1400")
    p.add_argument("--patch", type=int, help="patch size (default 120)")
    p.add_argument("--stride", type=int, help="stride (default: the paper's, else 40)")
    p.add_argument("--hflip", action="store_true", help="count horizontal-flip copies too")

    p = command(
        "fetch",
        "download the released weights and the Rain100L / Rain100H (cropped) test sets",
        "derain fetch all; derain fetch rain1400   (DERAIN_MIRROR=URL, "
        "file:// URL or folder: a mirror of the raw file trees)",
    )
    p.add_argument(
        "target", nargs="?", default="all", choices=("all", *FETCH_TARGETS, *FETCH_EXTRA)
    )
    p.add_argument(
        "--stand-ins",
        action="store_true",
        help="offline: go on with the embedded stand-in data instead of refusing",
    )

    p = command(
        "reproduce",
        "run the study's notebooks in order (papermill), write Tables II-V and the report",
        "derain reproduce --profile quick --data-root "
        "../shared/data --weights-dir ../shared/weights",
    )
    p.add_argument("--profile", default="quick", help="smoke | quick | paper (default quick)")
    p.add_argument("--data-root", type=PATH, help="folder holding real benchmark data (optional)")
    p.add_argument(
        "--weights-dir", type=PATH, help="folder holding released weight files (optional)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run of the profile, e.g. train.lr=1e-3",
    )
    p.add_argument(
        "--use-prepared",
        action="store_true",
        help="smoke: also score the test sets "
        "prepared with `derain data prepare`/`derain fetch` (the other profiles "
        "always do)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="wait while another reproduce of this profile runs (default: refuse)",
    )
    _device_option(p)
    p.add_argument(
        "--launcher",
        choices=["local", "slurm"],
        help="train each planned run as "
        "one job of a job array (submitit: the cluster extra), then run the "
        "notebooks; local: processes on this machine",
    )
    p.add_argument(
        "--launcher-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a submitit job parameter, e.g. slurm_partition=gpu, timeout_min=600, gpus_per_node=1",
    )

    p = command(
        "claims",
        "recompute claims.csv / claims.md from the committed per-image scores",
        "derain claims --profile quick   (reads results/quick/scores/)",
    )
    p.add_argument("--profile", default="quick", help="smoke | quick | paper (default quick)")

    p = command(
        "train",
        "train a model from a config or profile (cached run; resumes if interrupted)",
        "derain train --config smoke --set train.max_steps=20 (several "
        "processes: torchrun --nproc_per_node 2 -m derain_lib.cli train --config quick)",
    )
    p.add_argument(
        "--config", required=True, type=PATH, help="a YAML file or a profile: smoke, quick, paper"
    )
    p.add_argument("--dataset", help="the profile's data set section (e.g. rain100h, heavy)")
    _run_options(p, "train.lr=1e-3")

    p = command(
        "evaluate",
        "score weights on a paired data set (PSNR/SSIM, MATLAB Y protocol; cached run)",
        "derain evaluate --weights sian-rain100l --data ../shared/data/rain100l_sample --tile 256",
    )
    p.add_argument(
        "--data",
        required=True,
        type=PATH,
        help="a data set folder, a fetched set "
        "(rain100l, rain100h, rain1400) or embedded:light:test:smoke",
    )
    p.add_argument(
        "--ignore-unpaired",
        action="store_true",
        help="score the pairs of a folder that also holds images without a pair",
    )
    _model_options(p, "the architecture (default: from the weights)")
    p.add_argument("--tile", type=int, help="tile size for large images (default: whole image)")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels (default 32)")
    p.add_argument("--max-images", type=int, help="only the first N images")
    _inference_options(p)
    _run_options(p, "eval.save_images=false")

    p = command(
        "runs",
        "list cached runs (stale: made by other code), show one, or prune stale ones",
        "derain runs list; derain runs show 3fa2; derain runs prune --stale",
    )
    p.add_argument("action", nargs="?", default="list", choices=["list", "show", "prune"])
    p.add_argument("key", nargs="?", default="", help="run key (or prefix) for show")
    p.add_argument("--stale", action="store_true", help="prune: remove the runs made by other code")
    p.add_argument("--results", type=PATH, help=RESULTS_HELP)

    p = command(
        "export",
        "write a model as an ONNX graph (dynamic size), checked against eager",
        "derain export --weights sian-rain100l -o sian.onnx",
    )
    p.add_argument("-o", "--output", required=True, type=PATH, help="the .onnx file to write")
    _model_options(p, "the architecture expected (default: taken from the weights)")
    p.add_argument("--stages", type=int, metavar="K", help="only the first K stages")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    return parser


def command_of(args: argparse.Namespace) -> str:
    """Which command ``args`` names: ``info``, ``train``, ``data prepare``, ... (the keys of
    :data:`derain_lib.commands.COMMANDS`)."""
    sub = getattr(args, "data_command", None)
    return f"{args.command} {sub}" if sub else args.command


def fetched_set(data: str) -> str:
    """``--data``: a folder as given, or a fetched test set by name (``rain100l``,
    ``rain100h``, ``rain1400``) as its folder under the data root; one not fetched yet is a
    one-line error saying what to fetch."""
    target = FETCHED_SETS.get(data.lower()) or (data if data in FETCHED_SETS.values() else None)
    if target is None or Path(data).is_dir():
        return data
    folder = data_root() / target / "test"
    if not folder.is_dir():
        raise DerainError(f"--data {data}: not fetched yet (no {folder}): derain fetch {target}")
    return str(folder)


def _folder(value: str | None, what: str) -> None:
    problem = value and path_problem(value, "folder")
    if problem:
        raise DerainError(f"{what}{problem}")
    if value and not Path(value).is_dir():
        raise DerainError(f"{what}{value}: a file, not a folder")


def _weights(spec: str) -> None:
    p = Path(spec)
    if spec not in RELEASED and not p.is_file():
        if p.exists():
            raise DerainError(f"--weights {spec}: is not a file")
        raise DerainError(
            f"--weights {spec}: no such file, and not a released weights name "
            f"({', '.join(RELEASED)}; see derain info)"
        )


def _output(out: str) -> None:
    """``-o OUT`` for ``derain``: a new name needs an image extension, its folder writable."""
    p = Path(out)  # an existing file: the writer names it ("not an image file name")
    if p.suffix and p.suffix.lower() not in IMAGE_SUFFIXES and not p.exists():
        raise DerainError(
            f"-o {out}: {p.suffix!r} is no image format "
            f"({', '.join(IMAGE_SUFFIXES)}); name an image file, or a folder "
            "without an extension"
        )
    parent = p if p.is_dir() else p.parent
    while not parent.exists() and parent != parent.parent:  # the folder that would hold it
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise DerainError(f"-o {out}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DerainError(f"-o {out}: {parent} is not writable")


def check_args(args: argparse.Namespace) -> None:
    """The argument and input errors that need no torch, as one-line :class:`DerainError` s
    before any command loads it: missing inputs or folders, a ``--weights`` that is neither
    a file nor a released name, an ``-o`` that cannot be written, a backend not installed."""
    name = command_of(args)
    _folder(getattr(args, "weights_dir", None), "--weights-dir ")
    backend = getattr(args, "backend", "auto")
    if backend not in ("auto", "torch") and util.find_spec(backend) is None:
        raise DerainError(
            f"--backend {backend}: not installed; pip install 'derain[{BACKEND_EXTRA}]'"
        )
    if name == "derain":
        for item in args.inputs:
            p = Path(item)
            if path_problem(item):
                raise DerainError(path_problem(item))
            if p.is_dir() and not any(
                f.suffix.lower() in IMAGE_SUFFIXES
                for f in p.iterdir()
                if not f.name.startswith(".")
            ):
                raise DerainError(f"{item}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        _output(args.output)
        if args.overwrite and args.skip_existing:
            raise DerainError("--overwrite and --skip-existing exclude each other: choose one")
        _weights(args.weights)
    elif name == "score":
        for value in (args.pred_dir, args.gt_dir):
            if path_problem(value):
                raise DerainError(path_problem(value))
        if Path(args.pred_dir).is_dir() != Path(args.gt_dir).is_dir():
            raise DerainError(
                f"{args.pred_dir} and {args.gt_dir}: give two folders or two image files"
            )
    elif name == "evaluate":
        _weights(args.weights)
        args.data = fetched_set(args.data)
        if not args.data.startswith("embedded:"):
            _folder(args.data, "--data ")
    elif name == "reproduce":
        _folder(args.data_root, "--data-root ")
    elif name == "export":
        _weights(args.weights)
        if Path(args.output).suffix.lower() != ".onnx":
            raise DerainError(f"-o {args.output}: name an .onnx file")
        if Path(args.output).exists() and not args.overwrite:
            raise DerainError(f"{args.output}: exists; pass --overwrite to replace it")
        for package in ("onnx", "onnxscript", "onnxruntime|openvino"):  # the last: the check
            if all(util.find_spec(p) is None for p in package.split("|")):
                raise DerainError(f"export needs {package}: pip install 'derain[{BACKEND_EXTRA}]'")
    elif name in ("data scan", "data patches"):
        _folder(args.folder, "")


def main(argv: list[str] | None = None) -> int:
    """The ``derain`` console command (also ``python -m derain_lib.cli``): its exit status,
    2 with one ``derain: error:`` line for a :class:`DerainError` or a file system refusal."""
    configure()  # the OpenMP variables, before torch loads
    args = build_parser().parse_args(argv)
    tune()  # glibc keeps freed tensors' memory for reuse; DERAIN_MALLOC_TUNING=0 opts out
    try:
        check_args(args)  # argument and input errors: before torch loads
        if args.command == "info":  # torch-free: answers at once
            print("\n".join(info_lines(args.weights_dir)))
            return 0
        from . import commands  # torch loads here, after configure()

        configure()  # torch is loaded now: caps its intra-op threads at the usable CPUs
        return commands.run(command_of(args), args)
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
