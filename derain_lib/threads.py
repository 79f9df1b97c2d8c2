"""Thread settings for a shared machine: OpenMP threads that wait asleep, not spinning.

Between parallel regions libgomp's threads spin-wait (about a millisecond at every
barrier); beside another CPU-bound job a descheduled thread makes the others spin for the
CPU time it needs, so a SIAN run took several times the CPU work of an idle one (issue 17:
3398 s against 363 s). :func:`configure` sets ``OMP_WAIT_POLICY=PASSIVE`` (and
``KMP_BLOCKTIME=0`` for Intel's OpenMP) and caps torch's threads at the CPUs this process may
use (measured: ``benchmarks/busy.py``). OpenMP reads the variables when torch is first
imported, so ``derain`` calls it first; child processes inherit them. Explicit values are
kept; ``DERAIN_THREAD_TUNING=0`` leaves everything as it is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "DERAIN_THREAD_TUNING"
#: What :func:`configure` puts into the environment (unless already set there).
SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; ``os.cpu_count`` elsewhere)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def configure(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Apply the settings to ``environ`` (default ``os.environ``; then torch's intra-op
    threads too, if torch is imported); returns what was set (empty when off)."""
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
    (``derain info`` shows it): ``MKL_NUM_THREADS``, else ``OMP_NUM_THREADS``, else the
    physical cores, capped by :func:`configure` at :func:`usable_cpus`."""
    env = os.environ if environ is None else environ
    n = 0
    for var in ("MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        try:
            n = int(env.get(var, "").split(",")[0])
        except ValueError:
            continue
        if n > 0:
            break
    if n <= 0:  # the physical cores, from the /sys topology
        cores = set()
        for topo in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology"):
            try:
                cores.add(
                    ((topo / "physical_package_id").read_text(), (topo / "core_id").read_text())
                )
            except OSError:
                continue
        n = len(cores) or os.cpu_count() or 1
    return n if env.get(ENV, "1") == "0" else min(n, usable_cpus())
