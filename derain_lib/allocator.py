"""Keep freed memory in the process for reuse (glibc), the largest cheap CPU speed-up.

A SIAN forward on a 481x321 image allocates hundreds of feature maps of 20-100 MB.
glibc hands every block above its mmap threshold (at most 32 MB) to a fresh ``mmap``
and returns it to the kernel on ``free``, so each new tensor is first paid for in page
faults, often more than the arithmetic that fills it. With ``mmap`` off and a high trim
threshold, freed blocks stay in the heap and the next tensor of that size reuses them.
This is what PyTorch's CPU tuning guide gets from jemalloc or tcmalloc, without a
preloaded library. Measured effect: benchmarks/RESULTS.md.

Importing ``derain_lib`` changes nothing; the CLI (``derain ...``), the notebooks' setup
cell and the benchmarks call :func:`tune` explicitly. Set ``DERAIN_MALLOC_TUNING=0`` to
leave the allocator alone. The cost: memory freed by one job stays reserved for the next job in
the same process instead of going back to the system, and the peak is higher, because a
freed block in the middle of the heap cannot always serve a larger request (one SIAN
forward on a 512x512 tile: peak RSS 1.35-1.41 GiB against 1.25-1.27 GiB with glibc's
defaults; the models free what they can early to keep this small).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD = 1 << 30  # give back a free heap top only beyond 1 GiB
ENV = "DERAIN_MALLOC_TUNING"

_state: dict = {}


def tune(force: bool = False) -> bool:
    """Apply the glibc settings once; True when they are in effect.

    Does nothing (False) off Linux/glibc, or when ``DERAIN_MALLOC_TUNING=0`` unless
    ``force`` is given.
    """
    if "applied" in _state and not force:
        return _state["applied"]
    applied = False
    if sys.platform.startswith("linux") and (force or os.environ.get(ENV, "1") != "0"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # musl and others: no mallopt
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(
                mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            )
            if applied:
                _state["libc"] = libc
    _state["applied"] = applied
    return applied


def release_free_memory() -> None:
    """Give the heap's free pages back to the system (glibc ``malloc_trim``).

    Called between the tiles of a large photo: with the setting in effect, each tile
    would otherwise leave its freed blocks resident, and the blocks' layout differs
    from tile to tile (edge tiles are smaller), so the peak would creep up. Freed pages
    come back as page faults on the next tile, once per tile rather than per tensor.
    A no-op when the setting is not in effect.
    """
    libc = _state.get("libc")
    if libc is not None:
        libc.malloc_trim(0)


def allocator_tuned() -> bool:
    """Whether :func:`tune` has put its settings in effect."""
    return _state.get("applied", False)
