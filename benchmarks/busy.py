"""A busy machine: SIAN training steps idle and beside 1 and 2 CPU-bound processes.

Runs a fixed workload (SIAN full training steps at the quick profile's size: batch 4 of
48x48, Adam, -SSIM) in a fresh process, idle and beside ``n`` competing CPU-bound
processes (``python -c "while True: pass"``, started and killed here, each ending by
itself after ``--limit`` seconds anyway), with the OpenMP settings of
:mod:`derain_lib.threads` off (``DERAIN_THREAD_TUNING=0``: libgomp's default spin-wait)
and on (passive wait). Reports wall time and CPU-seconds of the steps, the ratios to the
idle run, and the load average around each run; writes a section of
``benchmarks/RESULTS.md`` (the rest of the file is kept).

example: python -m benchmarks.busy --steps 4
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- busy.py: begin -->", "<!-- busy.py: end -->"


def worker(steps: int, batch: int, patch: int) -> dict:
    """``steps`` timed training steps after one warm-up step, in this process:
    wall seconds and CPU seconds (all threads) of the timed steps."""
    from derain_lib.threads import configure

    configure()  # as `derain` does, before torch is imported; off with DERAIN_THREAD_TUNING=0
    import torch

    from derain_lib.losses import stage_loss
    from derain_lib.models import build_model

    torch.manual_seed(0)
    model = build_model("sian").train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.0, 0.999))
    x, y = torch.rand(batch, 3, patch, patch), torch.rand(batch, 3, patch, patch)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = stage_loss(model(x), y, "ssim")
        loss.backward()
        opt.step()
        return loss.item()

    step()
    wall, cpu = time.perf_counter(), time.process_time()
    losses = [step() for _ in range(steps)]
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "last_loss": losses[-1],
    }


def measure(fix: bool, competitors: int, args: argparse.Namespace) -> dict:
    """The worker in a fresh process beside ``competitors`` busy loops."""
    env = {**os.environ, "DERAIN_THREAD_TUNING": "1" if fix else "0"}
    for k in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME", "GOMP_SPINCOUNT"):
        env.pop(k, None)  # each mode's own settings, not the caller's
    spin = f"import time\nt = time.time() + {args.limit}\nwhile time.time() < t: pass"
    busy = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(competitors)]
    try:
        time.sleep(0.5 if busy else 0)
        load = os.getloadavg()[0]
        cmd = [sys.executable, "-m", "benchmarks.busy", "--worker", "--steps", str(args.steps),
               "--batch", str(args.batch), "--patch", str(args.patch)]  # fmt: skip
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=args.limit
        )
    except subprocess.TimeoutExpired:
        return {"error": f"over {args.limit} s", "load": load}
    finally:
        for p in busy:
            p.kill()
            p.wait()
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1], "load": load}
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "load": load}


def report(rows: dict, args: argparse.Namespace, load: tuple[float, float]) -> str:
    lines = [
        BEGIN,
        "## A busy machine (`benchmarks/busy.py`)",
        "",
        f"Command: `{args.command}`  ",
        f"Date: {args.date}; {os.cpu_count()} logical CPUs; load average (1 min) at start "
        f"{load[0]:.2f}, at end {load[1]:.2f}; the column `load` is the 1-minute load "
        "average just before each run (competitors included; it lags)",
        "",
        f"Workload: {args.steps} SIAN full training steps (batch {args.batch} of "
        f"{args.patch}x{args.patch}, Adam, -SSIM) after one warm-up step, in a fresh "
        'process; competitors: `python -c "while True: pass"`. `off` = libgomp\'s default '
        "spin-wait (`DERAIN_THREAD_TUNING=0`), `on` = `derain_lib.threads.configure()` "
        "(`OMP_WAIT_POLICY=PASSIVE`).",
        "",
        "| OpenMP settings | competitors | load | wall (s) | CPU (s) | wall / idle | CPU / idle |",
        "|---|---|---|---|---|---|---|",
    ]
    for fix in (False, True):
        idle = rows.get((fix, 0), {})
        for n in args.competitors:
            r = rows[(fix, n)]
            mode = "on" if fix else "off"
            if "error" in r:
                lines.append(f"| {mode} | {n} | {r['load']:.2f} | failed: {r['error']} | | | |")
                continue
            ratio = (
                f"{r['wall_s'] / idle['wall_s']:.2f}x | {r['cpu_s'] / idle['cpu_s']:.2f}x"
                if "wall_s" in idle
                else "- | -"
            )
            lines.append(
                f"| {mode} | {n} | {r['load']:.2f} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                f"{ratio} |"
            )
    return "\n".join(lines + ["", END]) + "\n"


def replace_section(text: str, section: str) -> str:
    """``text`` with its busy.py section replaced by ``section`` (appended if absent)."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + section.rstrip("\n") + rest.split(END, 1)[1]
    return text.rstrip("\n") + "\n\n" + section


def section_of(text: str) -> str:
    """The busy.py section of ``text`` ('' if none): ``bench.py`` keeps it when rewriting."""
    if BEGIN in text and END in text:
        return BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END + "\n"
    return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="example: python -m benchmarks.busy --steps 4"
    )
    ap.add_argument("--steps", type=int, default=4, help="timed training steps per run")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--patch", type=int, default=48)
    ap.add_argument("--competitors", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--limit", type=int, default=300, help="seconds: bound on each run")
    ap.add_argument("--out", type=Path, default=RESULTS, help="Markdown file to update")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.steps, args.batch, args.patch)))
        return 0
    args.command = "python -m benchmarks.busy " + " ".join(argv or sys.argv[1:])
    args.date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    start = os.getloadavg()[0]
    rows = {}
    for fix in (False, True):
        for n in args.competitors:
            rows[(fix, n)] = r = measure(fix, n, args)
            print(f"threads {'on' if fix else 'off'}, {n} competitors: {json.dumps(r)}", flush=True)
    section = report(rows, args, (start, os.getloadavg()[0]))
    old = args.out.read_text() if args.out.is_file() else ""
    args.out.write_text(replace_section(old, section))
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
