"""The ``derain`` command line's parser: ``derain COMMAND --help`` shows an example for each.

This module only parses and checks: it imports no torch and no command's code (neither
:mod:`derain_lib.entry` nor :mod:`derain_lib.commands`), so that ``derain --help``,
``derain info`` and every argument or input error (:func:`check_args`) answer at once.
What each command does is in :mod:`derain_lib.commands`; :func:`derain_lib.entry.main`
(the ``derain`` console command, also ``python -m derain_lib.entry``) parses with
:func:`parse_args`, checks with :func:`check_args`, runs ``info`` from
:mod:`derain_lib.info` and every other command through
:func:`derain_lib.commands.run`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from importlib import util
from pathlib import Path

from . import __version__
from .errors import DerainError
from .fsutil import IMAGE_SUFFIXES, data_root, path_problem
from .info import FETCH_EXTRA, FETCH_TARGETS, FETCHED_SETS, RELEASED
from .roots import RESULTS_DEFAULT

#: What ``--results`` defaults to, as ``--help`` shows it.
RESULTS_HELP = f"results root (default: {RESULTS_DEFAULT})"


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

    q = dsub.add_parser(
        "scan",
        help="report every unreadable image of a folder (recursive) at once",
        epilog="example: derain data scan ~/datasets/Rain1400",
    )
    q.add_argument("folder")
    q.add_argument("--headers-only", action="store_true", help="check headers only (fast)")

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


def _add_fetch(sub: argparse._SubParsersAction) -> None:
    """``derain fetch``: released weights and real test sets, sha256-verified, cached."""
    p = sub.add_parser(
        "fetch",
        help="download the released weights and the Rain100L / Rain100H (cropped) test sets",
        epilog="example: derain fetch all; derain fetch rain1400   (DERAIN_MIRROR=URL, "
        "file:// URL or folder: a mirror of the raw file trees)",
    )
    choices = ("all", *FETCH_TARGETS, *FETCH_EXTRA)
    p.add_argument("target", nargs="?", default="all", choices=choices)
    p.add_argument(
        "--stand-ins",
        action="store_true",
        help="offline: go on with the embedded stand-in data instead of refusing",
    )


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

    p = sub.add_parser(
        "evaluate",
        help="score weights on a paired data set (PSNR/SSIM, MATLAB Y protocol; cached run)",
        epilog="example: derain evaluate --weights sian-rain100l --data ../shared/data/"
        "rain100l_sample --tile 256",
    )
    p.add_argument("--weights", required=True, help="released name or a model file")
    p.add_argument(
        "--data",
        required=True,
        help="a data set folder, a fetched set (rain100l, rain100h, rain1400) or "
        "embedded:light:test:smoke",
    )
    p.add_argument(
        "--ignore-unpaired",
        action="store_true",
        help="score the pairs of a folder that also holds images without a pair",
    )
    p.add_argument("--model", help="the architecture (default: from the weights)")
    p.add_argument("--weights-dir", help="folder with released weight files")
    add_strict_config(p)
    p.add_argument("--tile", type=int, help="tile size for large images (default: whole image)")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels (default 32)")
    p.add_argument("--max-images", type=int, help="only the first N images")
    add_inference_options(p)
    add_backend_option(p)
    add_device_option(p)
    _add_run_options(p, "eval.save_images=false")

    p = sub.add_parser(
        "runs",
        help="list cached runs (stale: made by other code), show one, or prune stale ones",
        epilog="example: derain runs list; derain runs show 3fa2; derain runs prune --stale",
    )
    p.add_argument("action", nargs="?", default="list", choices=["list", "show", "prune"])
    p.add_argument("key", nargs="?", default="", help="run key (or prefix) for show")
    p.add_argument("--stale", action="store_true", help="prune: remove the runs made by other code")
    p.add_argument("--results", help=RESULTS_HELP)


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info", help="versions, models and known weights", epilog="example: derain info"
    )
    p.add_argument("--weights-dir", help="folder with released weight files")


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
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave existing output files as they are and derain the rest (after a Ctrl-C)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (on stderr)")
    p.add_argument("--weights", required=True, help="released name (see `derain info`) or a file")
    p.add_argument("--model", help="the architecture expected (default: taken from the weights)")
    p.add_argument("--weights-dir", help="folder with released weight files")
    add_strict_config(p)
    p.add_argument(
        "--quantize",
        choices=["round", "truncate"],
        default="round",
        help="float -> uint8: round (the authors' cv2.imwrite, default) or truncate (PReNet)",
    )
    p.add_argument(
        "--tile",
        type=int,
        help="tile size in px (default: whole image where it fits: up to 512x512 on the CPU, "
        "by free memory on a GPU; tiles above)",
    )
    add_inference_options(p)
    add_backend_option(p)
    add_device_option(p)


def add_strict_config(p: argparse.ArgumentParser) -> None:
    """``--strict-config`` / ``--no-strict-config``: whether weights made for another
    configuration of the architecture are refused (the default) or loaded anyway."""
    p.add_argument(
        "--strict-config",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="refuse weights made for another configuration of the model (default); "
        "--no-strict-config loads them anyway (fine-tuning only)",
    )


#: ``--backend``'s choices (``derain_lib.backends.BACKENDS``) and the pip extra that
#: installs the graph backends (``derain_lib.backends.EXTRA``; tests/test_backends.py).
BACKENDS, BACKEND_EXTRA = ("auto", "torch", "openvino", "onnxruntime"), "cpu-fast"


def add_backend_option(p: argparse.ArgumentParser) -> None:
    """``--backend`` for the commands that run a model (default ``$DERAIN_BACKEND`` or auto)."""
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=os.environ.get("DERAIN_BACKEND", "auto"),
        help="CPU inference: torch (eager), openvino or onnxruntime (an exported graph, "
        "cached), or auto: the fastest installed, measured once per machine and model "
        "(cached; said on stderr); torch on CUDA (default: $DERAIN_BACKEND, else auto)",
    )


def backend_problem(backend: str) -> str | None:
    """Why ``--backend`` cannot be used here, or None: its package is not installed."""
    if backend in ("auto", "torch") or util.find_spec(backend) is not None:
        return None
    return f"--backend {backend}: not installed; pip install 'derain[{BACKEND_EXTRA}]'"


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a model as an ONNX graph (dynamic size), checked against eager",
        epilog="example: derain export --weights sian-rain100l -o sian.onnx",
    )
    p.add_argument("--weights", required=True, help="released name (see `derain info`) or a file")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--model", help="the architecture expected (default: taken from the weights)")
    p.add_argument("--weights-dir", help="folder with released weight files")
    add_strict_config(p)
    p.add_argument("--stages", type=int, metavar="K", help="only the first K stages")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")


def add_inference_options(p: argparse.ArgumentParser, precision: str = "auto") -> None:
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
        help=f"fp32, bf16, or auto: bf16 only where the CPU has it natively and it is "
        f"measured faster on this machine, never for scores (evaluate); the choice is said "
        f"on stderr (default {precision})",
    )


#: What ``--device`` accepts; checked here without torch (``cuda:N`` for any N).
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def device_arg(text: str) -> str:
    """``--device``'s value: auto, cpu, cuda or cuda:N (else argparse's one-line error)."""
    if not DEVICE_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"{text!r}: choose auto, cpu, cuda or cuda:N")
    return text


def add_device_option(p: argparse.ArgumentParser) -> None:
    """``--device`` for the commands that run a model."""
    p.add_argument(
        "--device",
        type=device_arg,
        default="auto",
        metavar="auto|cpu|cuda|cuda:N",
        help="where the model runs (default auto: the first CUDA device when there is one)",
    )


def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="PSNR/SSIM (MATLAB Y protocol) of a folder (or one image) against ground truth",
        epilog="example: derain score out/ data/rain100l/norain --json",
    )
    p.add_argument("pred_dir")
    p.add_argument("gt_dir")
    p.add_argument("--json", action="store_true", help="one JSON object: n, psnr, ssim, per_image")


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
        help="config override for every run of the profile, e.g. train.lr=1e-3",
    )
    p.add_argument(
        "--use-prepared",
        action="store_true",
        help="smoke: also score the test sets prepared with `derain data prepare`/`derain "
        "fetch` (the other profiles always do)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="wait while another reproduce of this profile runs (default: refuse)",
    )
    add_device_option(p)
    p.add_argument(
        "--launcher",
        choices=["local", "slurm"],
        help="train each planned run as one job of a job array (submitit: the cluster "
        "extra), then run the notebooks; local: processes on this machine",
    )
    p.add_argument(
        "--launcher-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a submitit job parameter, e.g. slurm_partition=gpu, timeout_min=600, gpus_per_node=1",
    )


def _add_claims(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "claims",
        help="recompute claims.csv / claims.md from the committed per-image scores",
        epilog="example: derain claims --profile quick   (reads results/quick/scores/)",
    )
    p.add_argument("--profile", default="quick", help="smoke | quick | paper (default quick)")


#: Each adds one sub-command. Feature modules append theirs here (and what runs it to
#: :data:`derain_lib.commands.COMMANDS`).
REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_info,
    _add_derain,
    _add_score,
    _add_data,
    _add_fetch,
    _add_reproduce,
    _add_claims,
    _add_engine,
    _add_export,
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line (``--help``, ``--version`` and usage errors exit here),
    ``~`` expanded in every path (:data:`PATH_OPTIONS`)."""
    args = build_parser().parse_args(argv)
    for name in PATH_OPTIONS:
        value = getattr(args, name, None)
        if isinstance(value, list):
            setattr(args, name, [os.path.expanduser(v) for v in value])
        elif isinstance(value, str):
            setattr(args, name, os.path.expanduser(value))
    return args


#: The options that name a file or folder: ``~`` is expanded in each.
PATH_OPTIONS = (
    "inputs", "output", "weights", "weights_dir", "pred_dir", "gt_dir", "data", "results",
    "data_root", "source", "index_out", "folder", "config",
)  # fmt: skip


def _folder(value: str | None, what: str) -> None:
    if not value:
        return
    problem = path_problem(value, "folder")
    if problem:
        raise DerainError(f"{what}{problem}")
    if not Path(value).is_dir():
        raise DerainError(f"{what}{value}: a file, not a folder")


def _weights_spec(spec: str) -> None:
    p = Path(spec)
    if spec not in RELEASED and not p.is_file():
        if p.exists():
            raise DerainError(f"--weights {spec}: is not a file")
        raise DerainError(
            f"--weights {spec}: no such file, and not a released weights name "
            f"({', '.join(RELEASED)}; see derain info)"
        )


def fetched_set(data: str) -> str:
    """``--data``: a folder as given, or a fetched test set by name (``rain100l``,
    ``rain100h``, ``rain1400``; :data:`FETCHED_SETS`) as its folder under the data root;
    a name not fetched yet is a one-line error saying what to fetch."""
    target = FETCHED_SETS.get(data.lower()) or (data if data in FETCHED_SETS.values() else None)
    if target is None or Path(data).is_dir():
        return data
    folder = data_root() / target / "test"
    if not folder.is_dir():
        raise DerainError(f"--data {data}: not fetched yet (no {folder}): derain fetch {target}")
    return str(folder)


def output_problem(out: str) -> str | None:
    """Why ``-o OUT`` cannot be used, or None: a new name with an extension that is no
    image format (``out.xyz``)."""
    p = Path(out)  # an existing file: the writer names it ("not an image file name")
    if p.suffix and p.suffix.lower() not in IMAGE_SUFFIXES and not p.exists():
        return (
            f"-o {out}: {p.suffix!r} is no image format ({', '.join(IMAGE_SUFFIXES)}); name "
            "an image file, or a folder without an extension"
        )
    parent = p if p.is_dir() else p.parent
    while not parent.exists() and parent != parent.parent:  # the folder that would hold it
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        return f"-o {out}: {parent} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"-o {out}: {parent} is not writable"
    return None


def _inputs(items: list[str]) -> None:
    """Each input a file or a folder holding images; named otherwise."""
    for item in items:
        problem = path_problem(item)
        if problem:
            raise DerainError(problem)
        p = Path(item)
        if p.is_dir() and not any(
            f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir() if not f.name.startswith(".")
        ):
            raise DerainError(f"{item}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")


def check_args(args: argparse.Namespace) -> None:
    """The argument and input errors that need no torch, raised as one-line
    :class:`DerainError` s before any command loads it: inputs that do not exist, a
    ``--weights-dir``/``--data-root``/data folder that does not exist, a ``--weights`` that
    is neither a file nor a released name, an ``-o`` with an unknown extension."""
    name = command_of(args)
    _folder(getattr(args, "weights_dir", None), "--weights-dir ")
    problem = backend_problem(getattr(args, "backend", "auto"))
    if problem:
        raise DerainError(problem)
    if name == "derain":
        _inputs(args.inputs)
        problem = output_problem(args.output)
        if problem:
            raise DerainError(problem)
        if args.overwrite and args.skip_existing:
            raise DerainError("--overwrite and --skip-existing exclude each other: choose one")
        _weights_spec(args.weights)
    elif name == "score":
        for value in (args.pred_dir, args.gt_dir):
            if path_problem(value):
                raise DerainError(path_problem(value))
        if Path(args.pred_dir).is_dir() != Path(args.gt_dir).is_dir():
            raise DerainError(
                f"{args.pred_dir} and {args.gt_dir}: give two folders or two image files"
            )
    elif name == "evaluate":
        _weights_spec(args.weights)
        args.data = fetched_set(args.data)
        if not args.data.startswith("embedded:"):
            _folder(args.data, "--data ")
    elif name == "reproduce":
        _folder(args.data_root, "--data-root ")
    elif name == "export":
        _weights_spec(args.weights)
        if Path(args.output).suffix.lower() != ".onnx":
            raise DerainError(f"-o {args.output}: name an .onnx file")
        if Path(args.output).exists() and not args.overwrite:
            raise DerainError(f"{args.output}: exists; pass --overwrite to replace it")
        for package in ("onnx", "onnxscript", "onnxruntime|openvino"):  # the last: the check
            if all(util.find_spec(p) is None for p in package.split("|")):
                raise DerainError(f"export needs {package}: pip install 'derain[{BACKEND_EXTRA}]'")
    elif name in ("data scan", "data patches"):
        _folder(args.folder, "")


def command_of(args: argparse.Namespace) -> str:
    """Which command ``args`` names: ``info``, ``train``, ``data prepare``, ... (the keys of
    :data:`derain_lib.commands.COMMANDS`)."""
    sub = getattr(args, "data_command", None)
    return f"{args.command} {sub}" if sub else args.command


if __name__ == "__main__":  # the parser alone runs nothing: say what does
    print("derain: error: derain_lib.cli only parses; run `derain ...` or "
          "`python -m derain_lib.entry ...`", file=sys.stderr)  # fmt: skip
    sys.exit(2)
