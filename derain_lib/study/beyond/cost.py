"""Section 4 of chapter 07: each model's cost, measured in a fresh process (``python -m
derain_lib.study.beyond.cost NAME HEIGHT WIDTH THREADS``), reused while :func:`cost_key` holds."""

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
from ...fsutil import PACKAGE_DIR
from ...models import build_model, count_parameters
from ...precision import cpuinfo_field
from ...runs import code_fingerprint
from ...tables import not_run
from ...threads import configure
from ..plan import Params, results_dir, write_json
from .common import beyond_size

#: Models of the cost table (built untrained: cost does not depend on the weights).
COST_MODELS = ("sian", "sian-baseline+lstm", "sian-baseline", "prenet")
#: The code (under ``derain_lib/``) the cost table depends on.
COST_SOURCES = ("models", "study/beyond/cost.py", "threads.py", "allocator.py")


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward of ``model`` on ``x`` (2 per multiply-add)."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(x)
    return int(counter.get_total_flops())


def measure_cost(name: str, height: int, width: int) -> dict:
    """Parameters, GFLOP/MP, seconds of one forward after a warm-up and this process's peak RSS
    of one untrained ``name`` model on a ``height`` x ``width`` image."""
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.rand(1, 3, height, width)
    with torch.inference_mode():
        model(x)  # warm-up: first-call allocations and kernel selection
        t, c = time.perf_counter(), time.process_time()
        model(x)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    gflop_per_mp = count_flops(model, x) / 1e9 / (height * width / 1e6)
    return {"model": name, "params": count_parameters(model), "gflop_per_mp": gflop_per_mp,
            "size": f"{width}x{height}", "wall_s": wall, "cpu_s": cpu,
            "threads": torch.get_num_threads(), "peak_rss_mib": peak}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """The child process: the chapter's thread settings, then one row as JSON."""
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
    """:func:`measure_cost` in a fresh Python process with this one's thread settings."""
    root = str(PACKAGE_DIR.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    configure(env)  # the OpenMP settings, in the environment before the child starts
    args = map(str, (name, height, width, torch.get_num_threads()))
    cmd = [sys.executable, "-m", __name__, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"model": name, "status": not_run(f"measurement failed: {err}")}
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "status": "ok"}


def cost_key(hw: tuple[int, int]) -> dict:
    """What the cost table on ``hw`` (H, W) depends on."""
    cpu = cpuinfo_field("model name") or platform.processor() or platform.machine()
    return {"code": code_fingerprint(COST_SOURCES), "size": f"{hw[1]}x{hw[0]}",
            "models": list(COST_MODELS), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpu": cpu, "cpus": os.cpu_count()}  # fmt: skip


def cached_cost_table(path: Path, hw: tuple[int, int], remeasure: bool = False) -> dict:
    """The cost record at ``path`` while its key holds and every row is ok; else measured."""
    key = cost_key(hw)
    if not remeasure and path.is_file():
        saved = json.loads(path.read_text())
        if saved["key"] == key and all(r["status"] == "ok" for r in saved["rows"]):
            return saved
    when, load = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()
    record = {"key": key, "measured": when, "load_average": [round(v, 2) for v in load],
              "rows": [cost_in_child(n, *hw) for n in COST_MODELS]}  # fmt: skip
    write_json(path, record)
    return record


def cost_note(record: dict) -> str:
    """One line for the chapter: when and where the table was measured, when it is again."""
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
    """The profile's cost record (``beyond/cost.json``); ``models`` unused (untrained)."""
    path = results_dir(params.profile) / "beyond" / "cost.json"
    return cached_cost_table(path, beyond_size(params.profile).cost_hw, remeasure=remeasure)


if __name__ == "__main__":
    main()
