"""The ``derain`` command line: the parser (read from ``cli.yaml``), the argument checks and
:func:`main`. No torch here, so that ``--help``, ``derain info`` and argument errors answer at
once; :func:`main` imports :mod:`derain_lib.commands` (and torch) for the other commands, after
the OpenMP settings (:func:`derain_lib.threads.configure`), which the runtime reads once."""

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
from .info import FETCH_EXTRA, FETCH_TARGETS, FETCHED_SETS, RELEASED, info_lines
from .threads import configure

#: ``--backend``'s choices (``derain_lib.backends.BACKENDS``) and the pip extra that
#: installs the graph backends (``derain_lib.backends.EXTRA``; tests/test_backends.py).
BACKENDS, BACKEND_EXTRA = ("auto", "torch", "openvino", "onnxruntime"), "cpu-fast"
INSTALL = f"pip install 'derain[{BACKEND_EXTRA}]'"


def _device(text: str) -> str:
    """``--device``'s value: auto, cpu, cuda or cuda:N (else argparse's one-line error)."""
    if not DEVICE_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"{text!r}: choose auto, cpu, cuda or cuda:N")
    return text


def build_parser() -> argparse.ArgumentParser:
    """Every command of ``cli.yaml``, its options, help and example."""
    spec = yaml.safe_load(resources.files(__package__).joinpath("cli.yaml").read_text())
    values = {"$path": os.path.expanduser, "$int": int, "$device": _device,
              "$bool": argparse.BooleanOptionalAction, "$backends": BACKENDS,
              "$backend": os.environ.get("DERAIN_BACKEND", "auto"),
              "$fetch": ("all", *FETCH_TARGETS, *FETCH_EXTRA),
              "$version": f"derain {__version__}"}  # fmt: skip
    folders = {"results": RESULTS_DEFAULT, "index": data_root() / "index"}

    def fill(p: argparse.ArgumentParser, cmd: dict, dest: str) -> None:
        shared = {k: v for g in cmd.get("use", []) for k, v in spec["groups"][g].items()}
        for flags, kw in (shared | cmd.get("options", {})).items():  # the command's own win
            kw = {k: values.get(v, v) if isinstance(v, str) else v for k, v in kw.items()}
            p.add_argument(*flags.split(), **kw | {"help": kw.get("help", "").format(**folders)})
        if "commands" in cmd:
            sub = p.add_subparsers(dest=dest, required=True, metavar=cmd["metavar"])
            for name, c in cmd["commands"].items():
                epilog = f"example: {c['example']}"
                fill(sub.add_parser(name, help=c["help"], epilog=epilog), c, f"{name}_command")

    parser = argparse.ArgumentParser(prog="derain", description=spec["description"])
    fill(parser, spec, "command")
    return parser


def command_of(args: argparse.Namespace) -> str:
    """Which command ``args`` names: ``info``, ``data prepare``, ... (``commands.COMMANDS``)."""
    sub = getattr(args, "data_command", None)
    return f"{args.command} {sub}" if sub else args.command


def fetched_set(data: str) -> str:
    """``--data``: a folder as given, or a fetched test set's folder by name (``rain100h``)."""
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
    if spec in RELEASED or Path(spec).is_file():
        return
    if Path(spec).exists():
        raise DerainError(f"--weights {spec}: is not a file")
    raise DerainError(
        f"--weights {spec}: no such file, and not a released weights name "
        f"({', '.join(RELEASED)}; see derain info)"
    )


def check_args(args: argparse.Namespace) -> None:
    """The argument and input errors that need no torch, as one-line :class:`DerainError` s
    before any command loads it: missing inputs or folders, a ``--weights`` that is neither
    a file nor a released name, an ``-o`` that cannot be written, a backend not installed."""
    name, images = command_of(args), ", ".join(IMAGE_SUFFIXES)
    _folder(getattr(args, "weights_dir", None), "--weights-dir ")
    backend = getattr(args, "backend", "auto")
    if backend not in ("auto", "torch") and util.find_spec(backend) is None:
        raise DerainError(f"--backend {backend}: not installed; {INSTALL}")
    if name == "derain":
        for item in args.inputs:
            if path_problem(item):
                raise DerainError(path_problem(item))
            if Path(item).is_dir() and not any(
                f.suffix.lower() in IMAGE_SUFFIXES
                for f in Path(item).iterdir()
                if not f.name.startswith(".")
            ):
                raise DerainError(f"{item}: folder holds no images ({images})")
        out = Path(args.output)  # an existing file: the writer names it ("not an image file name")
        if out.suffix and out.suffix.lower() not in IMAGE_SUFFIXES and not out.exists():
            raise DerainError(
                f"-o {args.output}: {out.suffix!r} is no image format ({images}); "
                "name an image file, or a folder without an extension"
            )
        parent = out if out.is_dir() else out.parent
        while not parent.exists() and parent != parent.parent:  # the folder that would hold it
            parent = parent.parent
        if parent.exists() and not parent.is_dir():
            raise DerainError(f"-o {args.output}: {parent} is a file, not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise DerainError(f"-o {args.output}: {parent} is not writable")
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
                raise DerainError(f"export needs {package}: {INSTALL}")
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
        commands.COMMANDS[command_of(args)](args)
        return 0
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
