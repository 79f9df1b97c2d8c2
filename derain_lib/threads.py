"""OpenMP threads that wait asleep, not spinning, on a shared machine (spinning beside another
job made a SIAN run cost 9x its CPU: ``benchmarks/busy.py``); ``DERAIN_THREAD_TUNING=0``: off."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

ENV = "DERAIN_THREAD_TUNING"
SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; ``os.cpu_count`` elsewhere)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def configure(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Set :data:`SETTINGS` where unset (read when torch is first imported, so ``derain`` calls
    this first) and cap torch's threads at the usable CPUs; returns what was set."""
    env = os.environ if environ is None else environ
    if env.get(ENV, "1") == "0":
        return {}
    applied = {k: v for k, v in SETTINGS.items() if k not in env}
    env.update(applied)
    torch = sys.modules.get("torch")
    if environ is None and torch is not None and torch.get_num_threads() > usable_cpus():
        torch.set_num_threads(usable_cpus())
        applied["torch.set_num_threads"] = str(usable_cpus())
    return applied


def torch_threads(environ: dict[str, str] | None = None) -> int:
    """The intra-op threads torch uses in a ``derain`` process, found without importing it
    (``derain info``): ``MKL/OMP_NUM_THREADS``, else the physical cores, capped."""
    env = os.environ if environ is None else environ
    given = (env.get(v, "").split(",")[0].strip() for v in ("MKL_NUM_THREADS", "OMP_NUM_THREADS"))
    n = next((int(g) for g in given if g.isdigit() and int(g) > 0), 0)
    if n == 0:  # the physical cores, from the /sys topology
        cores = set()
        for topo in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology"):
            with contextlib.suppress(OSError):
                cores.add(tuple((topo / f).read_text() for f in ("physical_package_id", "core_id")))
        n = len(cores) or os.cpu_count() or 1
    return n if env.get(ENV, "1") == "0" else min(n, usable_cpus())
