"""The ``derain`` command line: the parser (``cli.yaml``), the argument checks and :func:`main`;
torch-free, so that ``--help``, ``derain info`` and argument errors answer at once."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources, util
from pathlib import Path

import yaml

from . import __version__
from .allocator import tune
from .config import DEVICE_PATTERN
from .errors import DerainError
from .fsutil import IMAGE_SUFFIXES, RESULTS_DEFAULT, data_root, path_problem
from .info import (
    BACKEND_EXTRA,
    BACKENDS,
    FETCH_EXTRA,
    FETCH_TARGETS,
    FETCHED_SETS,
    RELEASED,
    info_lines,
)
from .threads import configure

INSTALL = f"pip install 'derain[{BACKEND_EXTRA}]'"


def _device(text: str) -> str:  # --device: auto, cpu, cuda or cuda:N (else argparse's error)
    if not DEVICE_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"{text!r}: choose auto, cpu, cuda or cuda:N")
    return text


def build_parser() -> argparse.ArgumentParser:
    """Every command of ``cli.yaml``, its options, help and example."""
    spec = yaml.safe_load(resources.files(__package__).joinpath("cli.yaml").read_text())
    values = {"$path": os.path.expanduser, "$int": int, "$lower": str.lower, "$device": _device,
              "$bool": argparse.BooleanOptionalAction, "$backends": BACKENDS,
              "$backend": os.environ.get("DERAIN_BACKEND", "auto"),
              "$fetch": ("all", *FETCH_TARGETS, *FETCH_EXTRA),
              "$version": f"derain {__version__}"}  # fmt: skip
    folders = {"results": RESULTS_DEFAULT, "index": data_root() / "index"}

    def fill(p: argparse.ArgumentParser, cmd: dict, name: str = "") -> None:
        shared = {k: v for g in cmd.get("use", []) for k, v in spec["groups"][g].items()}
        for flags, kw in (shared | cmd.get("options", {})).items():  # the command's own win
            kw = {k: values.get(v, v) if isinstance(v, str) else v for k, v in kw.items()}
            p.add_argument(*flags.split(), **kw | {"help": kw.get("help", "").format(**folders)})
        p.set_defaults(command=name)  # the innermost wins: "data scan", a key of COMMANDS
        if "commands" in cmd:
            sub = p.add_subparsers(required=True, metavar=cmd["metavar"])
            for n, c in cmd["commands"].items():
                epilog = f"example: {c['example']}"
                fill(sub.add_parser(n, help=c["help"], epilog=epilog), c, f"{name} {n}".strip())

    parser = argparse.ArgumentParser(prog="derain", description=spec["description"])
    fill(parser, spec)
    return parser


def check_args(args: argparse.Namespace) -> None:
    """The input errors found without torch (missing files, unknown weights, bad ``-o``)."""
    name, images, spec = args.command, ", ".join(IMAGE_SUFFIXES), getattr(args, "weights", "")
    backend = getattr(args, "backend", "auto")
    if backend not in ("auto", "torch") and util.find_spec(backend) is None:
        raise DerainError(f"--backend {backend}: not installed; {INSTALL}")
    if spec and spec not in RELEASED and not Path(spec).is_file():
        names = ", ".join(RELEASED)
        why = f"no such file, and not a released weights name ({names}; see derain info)"
        raise DerainError(f"--weights {spec}: {'is not a file' if Path(spec).exists() else why}")
    if name == "evaluate":  # a fetched set by name (rain100h), else a folder
        target = FETCHED_SETS.get(args.data.lower())
        if target and not Path(args.data).is_dir():
            folder = data_root() / target / "test"
            if not folder.is_dir():
                raise DerainError(
                    f"--data {args.data}: not fetched yet (no {folder}): derain fetch {target}"
                )
            args.data = str(folder)
    folders = {"--weights-dir ": "weights_dir", "--data-root ": "data_root", "--data ": "data"}
    for flag, attr in (folders | {"": "folder"}).items():  # the folders a command reads
        value = getattr(args, attr, None)
        if value and not value.startswith("embedded:") and not Path(value).is_dir():
            problem = path_problem(value, "folder") or f"{value}: a file, not a folder"
            raise DerainError(flag + problem)
    if name in ("derain", "score"):  # what is read: there, no special file
        for item in args.inputs if name == "derain" else (args.pred_dir, args.gt_dir):
            if problem := path_problem(item):
                raise DerainError(problem)
    if name == "derain":
        for item in (Path(i) for i in args.inputs if Path(i).is_dir()):
            if not any(f.suffix.lower() in IMAGE_SUFFIXES for f in item.glob("[!.]*")):
                raise DerainError(f"{item}: folder holds no images ({images})")
        out = Path(args.output)  # an existing file: the writer names it ("not an image file name")
        if out.suffix and out.suffix.lower() not in IMAGE_SUFFIXES and not out.exists():
            raise DerainError(
                f"-o {args.output}: {out.suffix!r} is no image format ({images}); "
                "name an image file, or a folder without an extension"
            )
        parent = out if out.is_dir() else out.parent
        parent = next(p for p in (parent, *parent.parents) if p.exists())  # what would hold it
        if not parent.is_dir():
            raise DerainError(f"-o {args.output}: {parent} is a file, not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise DerainError(f"-o {args.output}: {parent} is not writable")
        if args.overwrite and args.skip_existing:
            raise DerainError("--overwrite and --skip-existing exclude each other: choose one")
    elif name == "score" and Path(args.pred_dir).is_dir() != Path(args.gt_dir).is_dir():
        raise DerainError(f"{args.pred_dir} and {args.gt_dir}: give two folders or two image files")
    elif name == "export":
        if Path(args.output).suffix.lower() != ".onnx":
            raise DerainError(f"-o {args.output}: name an .onnx file")
        if Path(args.output).exists() and not args.overwrite:
            raise DerainError(f"{args.output}: exists; pass --overwrite to replace it")
        for package in ("onnx", "onnxscript", "onnxruntime|openvino"):  # the last: the check
            if all(util.find_spec(p) is None for p in package.split("|")):
                raise DerainError(f"export needs {package}: {INSTALL}")


def main(argv: list[str] | None = None) -> int:
    """The ``derain`` command: its exit status (2 with one ``derain: error:`` line)."""
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
        commands.COMMANDS[args.command](args)
        return 0
    except (DerainError, OSError) as e:  # OSError: a file system refusal not caught nearer
        why = e if isinstance(e, DerainError) else f"{e.filename or ''}: {e.strerror or e}"
        print(f"derain: error: {why}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("derain: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
