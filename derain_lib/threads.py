"""Thread settings for a shared machine: OpenMP threads that wait asleep, not spinning.

PyTorch's CPU kernels run in OpenMP parallel regions (GNU libgomp in the pip wheels).
Between regions libgomp's threads spin-wait for the next one (by default up to 300 000
spins, about a millisecond, at every barrier). On an idle machine that saves a few
microseconds per region; when another CPU-bound job shares the cores, a thread that is
descheduled makes all the others spin at the next barrier for their whole spin count,
burning the CPU time the descheduled thread needs. SIAN's step runs thousands of small
regions, so beside one competing job a run took several times the CPU work of an idle
run (issue 17: 3398 s and 3126 CPU-s against 363 s). With ``OMP_WAIT_POLICY=PASSIVE``
(``KMP_BLOCKTIME=0`` for Intel's OpenMP) waiting threads sleep at once; the intra-op
thread count is also capped at the CPUs this process may run on
(``os.sched_getaffinity``), since a container may allow fewer than the machine has.
Measured effect: ``benchmarks/busy.py`` (benchmarks/RESULTS.md).

The OpenMP runtime reads its environment when it is loaded, that is, when torch is first
imported: :func:`configure` must run before that to affect this process (``derain``'s
``main`` calls it first); child processes (papermill kernels, DataLoader workers,
``torchrun`` workers) inherit the settings either way. ``DERAIN_THREAD_TUNING=0``
leaves everything as it is. Explicit values of the variables are never overridden.
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
    """Apply the settings; returns what was set (empty when off).

    Sets ``OMP_WAIT_POLICY=PASSIVE`` and ``KMP_BLOCKTIME=0`` where the environment does
    not set them and, if torch is already imported, caps its intra-op threads at the
    usable CPUs. ``environ`` defaults to
    ``os.environ`` (tests pass a dict)."""
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


def physical_cores() -> int:
    """The machine's physical cores (``/sys`` topology; ``os.cpu_count`` where there is none):
    the intra-op thread count torch starts with when no variable sets one."""
    cores = set()
    for topo in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology"):
        try:
            package = (topo / "physical_package_id").read_text().strip()
            cores.add((package, (topo / "core_id").read_text().strip()))
        except OSError:
            continue
    return len(cores) or os.cpu_count() or 1


def torch_threads(environ: dict[str, str] | None = None) -> int:
    """The intra-op threads torch uses in a ``derain`` process, found without importing it.

    torch starts with ``MKL_NUM_THREADS``, else ``OMP_NUM_THREADS``, else the physical
    cores; :func:`configure` then caps that at :func:`usable_cpus` (unless
    ``DERAIN_THREAD_TUNING=0``). ``derain info`` shows this; ``tests/test_threads.py``
    compares it with ``torch.get_num_threads()``."""
    env = os.environ if environ is None else environ
    n = 0
    for var in ("MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        try:
            n = int(env.get(var, "").split(",")[0])
        except ValueError:
            continue
        if n > 0:
            break
    n = n if n > 0 else physical_cores()
    return n if env.get(ENV, "1") == "0" else min(n, usable_cpus())
