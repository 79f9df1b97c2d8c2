"""The ``derain`` console command: OpenMP thread settings first, then the command line.

The OpenMP runtime reads its settings once, when torch is loaded, and :mod:`derain_lib.cli`
imports torch at its top; so :func:`derain_lib.threads.configure` must run before that
import. This is the one module that imports part of the package inside a function
(``tests/test_architecture.py`` names it).
"""

from __future__ import annotations

import sys

from .threads import configure


def main(argv: list[str] | None = None) -> int:
    """Configure the threads, then run :func:`derain_lib.cli.main`."""
    configure()
    from .cli import main as cli_main  # torch loads here, after configure()

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
