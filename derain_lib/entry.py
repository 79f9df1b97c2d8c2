"""The ``derain`` console command: OpenMP thread settings first, then the command.

:func:`main` parses and checks with :mod:`derain_lib.cli` (no torch), answers ``info``
from the torch-free :mod:`derain_lib.info`, and imports :mod:`derain_lib.commands` (torch and
every command's code) only for the other commands, inside the function: the OpenMP runtime
reads its settings once, when torch is loaded, so :func:`derain_lib.threads.configure`
must run before that import, and ``derain info`` / ``--help`` answer without paying for it.
This is the one module that imports part of the package inside a function
(``tests/test_architecture.py`` checks it). Tests and ``python -m derain_lib.entry``
call :func:`main` as the console command does. Imports go one
way: ``entry`` -> ``cli`` (parser, checks) and ``entry`` -> ``commands``; neither of those
imports ``entry`` or the other.
"""

from __future__ import annotations

import sys

from .allocator import tune
from .cli import check_args, command_of, parse_args
from .errors import DerainError
from .info import info_lines
from .threads import configure


def main(argv: list[str] | None = None) -> int:
    """Run one ``derain`` command; its exit status (2 with one ``derain: error:`` line for a
    :class:`~derain_lib.errors.DerainError` or a file system refusal)."""
    configure()  # the OpenMP variables, before torch loads
    args = parse_args(argv)
    tune()  # glibc keeps freed tensors' memory for reuse; DERAIN_MALLOC_TUNING=0 opts out
    try:
        name = command_of(args)
        check_args(args)  # argument and input errors: before torch loads (issue 23 row 17)
        if name == "info":  # torch-free: answers at once
            print("\n".join(info_lines(args.weights_dir)))
            return 0
        from .commands import run  # torch loads here, after configure()

        configure()  # torch is loaded now: caps its intra-op threads at the usable CPUs
        return run(name, args)
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
