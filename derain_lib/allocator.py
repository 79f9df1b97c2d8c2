"""Keep freed memory in the process for reuse (glibc ``mallopt``): SIAN's 20-100 MB feature
maps stay in the heap instead of being mapped and unmapped one by one (benchmarks/RESULTS.md).
Only an explicit :func:`tune` changes anything; ``DERAIN_MALLOC_TUNING=0`` opts out."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
TRIM_THRESHOLD = 1 << 30  # give back a free heap top only beyond 1 GiB
ENV = "DERAIN_MALLOC_TUNING"

_state: dict = {}


def tune(force: bool = False) -> bool:
    """Apply the glibc settings once; True when they are in effect (False off glibc, or
    with ``DERAIN_MALLOC_TUNING=0`` unless ``force``)."""
    if "applied" in _state and not force:
        return _state["applied"]
    _state["applied"] = False
    if sys.platform.startswith("linux") and (force or os.environ.get(ENV, "1") != "0"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # musl and others: no mallopt
            return False
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        if mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD):
            _state.update(applied=True, libc=libc)
    return _state["applied"]


def release_free_memory() -> None:
    """Give the heap's free pages back (between tiles) when :func:`tune` is in effect."""
    libc = _state.get("libc")
    if libc is not None:
        libc.malloc_trim(0)


def allocator_tuned() -> bool:
    """Whether :func:`tune` has put its settings in effect."""
    return _state.get("applied", False)
