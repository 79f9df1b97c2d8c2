"""Section 4 of chapter 07: what a forward pass costs on a CPU.

Parameters, GFLOP per megapixel, CPU seconds and peak memory of each model, each measured
in a fresh process (``python -m derain_lib.study.beyond.cost NAME HEIGHT WIDTH THREADS``
prints :func:`measure_cost`'s row as JSON); a saved measurement is reused while what
determines it (:func:`cost_key`) is unchanged, so a re-run rewrites no file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ...allocator import tune
from ...models import build_model, count_parameters
from ...precision import cpuinfo_field
from ...roots import PACKAGE_DIR
from ...runs import code_fingerprint
from ...tables import not_run
from ...threads import configure
from ..plan import Params, results_dir, write_json
from .common import beyond_size

#: Models of the cost table (built untrained: cost does not depend on the weights).
COST_MODELS = ("sian", "sian-baseline+lstm", "sian-baseline", "prenet")
#: The code (under ``derain_lib/``) the cost table depends on: the models, this module's
#: measurement, and the thread and allocator settings the measuring process runs with.
COST_SOURCES = ("models", "study/beyond/cost.py", "threads.py", "allocator.py")


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward of ``model`` on ``x`` as ``torch.utils.flop_counter`` counts
    them (convolutions and matrix products, 2 per multiply-add; elementwise ops are free)."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(x)
    return int(counter.get_total_flops())


def measure_cost(name: str, height: int, width: int, seed: int = 0) -> dict:
    """Cost of one untrained ``name`` model on a ``height`` x ``width`` image in this
    process: parameters, GFLOP per megapixel, wall and CPU seconds of one forward after
    a warm-up, and the process's peak RSS (meaningful in a fresh process: :func:`cost_in_child`)."""
    torch.manual_seed(seed)
    model = build_model(name).eval()
    x = torch.rand(1, 3, height, width)
    with torch.inference_mode():
        model(x)  # warm-up: first-call allocations and kernel selection
        t, c = time.perf_counter(), time.process_time()
        model(x)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    flops = count_flops(model, x)
    return {
        "model": name,
        "params": count_parameters(model),
        "gflop_per_mp": flops / 1e9 / (height * width / 1e6),
        "size": f"{width}x{height}",
        "wall_s": wall,
        "cpu_s": cpu,
        "threads": torch.get_num_threads(),
        "peak_rss_mib": peak,
    }


def main(argv: list[str] | None = None) -> None:
    """The child process: the chapter's thread, OpenMP and allocator settings, then one
    :func:`measure_cost` row printed as JSON on the last line."""
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}")
    parser.add_argument("name")
    for dim in ("height", "width", "threads"):
        parser.add_argument(dim, type=int)
    args = parser.parse_args(argv)
    configure()
    tune()
    torch.set_num_threads(args.threads)
    print(json.dumps(measure_cost(args.name, args.height, args.width)))


def cost_in_child(name: str, height: int, width: int) -> dict:
    """:func:`measure_cost` in a fresh Python process (its own peak memory) with this
    process's torch threads and OpenMP settings."""
    root = str(PACKAGE_DIR.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    configure(env)  # the OpenMP settings, in the environment before the child starts
    cmd = [sys.executable, "-m", __name__, name, str(height), str(width)]
    cmd.append(str(torch.get_num_threads()))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"model": name, "status": not_run(f"measurement failed: {err}")}
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "status": "ok"}


def cost_key(hw: tuple[int, int], names: tuple[str, ...] = COST_MODELS) -> dict:
    """What the cost table of ``names`` on ``hw`` (H, W) depends on: the code of
    :data:`COST_SOURCES`, the size and models, torch's version and threads, and the CPU."""
    return {
        "code": code_fingerprint(COST_SOURCES),
        "size": f"{hw[1]}x{hw[0]}",
        "models": list(names),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpuinfo_field("model name") or platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }


def cached_cost_table(
    path: Path, hw: tuple[int, int], names: tuple[str, ...] = COST_MODELS, remeasure: bool = False
) -> dict:
    """The cost record saved at ``path`` when its key is :func:`cost_key`'s and every model
    was measured; else (or with ``remeasure``) measured now and saved there: ``key``, when
    it was ``measured`` (UTC), the load average then, and the ``rows``."""
    key = cost_key(hw, names)
    if not remeasure and path.is_file():
        saved = json.loads(path.read_text())
        if saved["key"] == key and all(r["status"] == "ok" for r in saved["rows"]):
            return saved
    measured = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    record = {
        "key": key,
        "measured": measured,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "rows": [cost_in_child(n, *hw) for n in names],
    }
    write_json(path, record)
    return record


def cost_note(record: dict) -> str:
    """One line for the chapter: when and where the cost table was measured, and when it is
    measured again (the same words whether this run measured it or reused it)."""
    k = record["key"]
    return (
        f"Measured {record['measured']} on {k['cpu']} ({k['cpus']} CPUs, {k['threads']} torch "
        f"threads, torch {k['torch']}, code {k['code']}, load average "
        f"{', '.join(f'{v:.2f}' for v in record['load_average'])}); reused by every run with "
        "the same code, size, torch, threads and CPU. Pass `remeasure=True` (a parameter of "
        "this notebook) to measure again."
    )


def run(
    params: Params, models: dict[str, nn.Module] | None = None, remeasure: bool = False
) -> dict:
    """The profile's cost record (``results/<profile>/beyond/cost.json``, reused while its
    key holds); ``models`` is not used: cost is measured on untrained models."""
    path = results_dir(params.profile) / "beyond" / "cost.json"
    return cached_cost_table(path, beyond_size(params.profile).cost_hw, remeasure=remeasure)


if __name__ == "__main__":
    main()
