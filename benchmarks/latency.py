"""Latency budgets that used to be timing asserts inside unit tests (issue 24: a unit test
checks behaviour; time is measured here, on a machine whose load is reported beside it).

Each row is the worst of ``--runs`` timings of one step, against the budget the tests once
held: the synthesiser on a 512x512 image (1 s), building the embedded smoke (10 s) and quick
(60 s) sets, one attention-view re-render + PNG encode at Rain100L size, 481x321 (0.5 s),
and the explorer widget's first render of a 64-px image (1 s). Prints a Markdown table;
exit status 1 when a step is over its budget.

example: python -m benchmarks.latency --runs 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from derain_lib import viz, widgets
from derain_lib.data.embedded import build_embedded
from derain_lib.data.io import write_png
from derain_lib.data.synth import add_rain


def synthetic_attention(h: int, w: int, stages: int = 6, c: int = 32) -> viz.Attention:
    """Random arrays with the shapes of a full SIAN forward pass on an h x w image."""
    rng = np.random.default_rng(0)

    def per_scale(layers: int | None) -> list[dict[int, np.ndarray]]:
        def one(s: int) -> np.ndarray:
            shape = (c, h // s, w // s) if layers is None else (layers, c, h // s, w // s)
            return rng.random(shape, dtype=np.float32)

        return [{s: one(s) for s in (1, 2, 4)} for _ in range(stages)]

    img = rng.random((h, w, 3), dtype=np.float32)
    return viz.Attention(
        image=img,
        outputs=[img * 0.9] * stages,
        rain=[img * 0.1] * stages,
        masks=per_scale(None),
        dog=per_scale(5),
        octaves=per_scale(6),
    )


def _worst(step: Callable[[], object], runs: int) -> float:
    worst = 0.0
    for _ in range(runs):
        t = time.perf_counter()
        step()
        worst = max(worst, time.perf_counter() - t)
    return worst


def measure(runs: int, tmp: Path) -> list[tuple[str, float, float]]:
    """(step, worst seconds, budget seconds) per step."""
    img = np.random.default_rng(0).random((512, 512, 3)).astype(np.float32)
    att = synthetic_attention(321, 481)
    views = [("mask", 1), ("dog", 2), ("octave", 4), ("rain", 1), ("derained", 1)]
    photo = tmp / "photo.png"
    write_png(photo, (np.random.default_rng(1).random((64, 96, 3)) * 255).astype(np.uint8))
    counter = iter(range(10**6))
    rows = [
        (f"synthesise rain ({p}), 512x512", _worst(lambda p=p: add_rain(img, p, seed=3), runs), 1.0)
        for p in ("light", "heavy")
    ]
    for size, budget in (("smoke", 10.0), ("quick", 60.0)):
        build = lambda size=size: build_embedded(size, tmp / f"{size}-{next(counter)}")  # noqa: E731
        rows.append((f"build the embedded {size} set", _worst(build, runs), budget))
    rows.append(
        (
            "re-render one attention view + PNG, 481x321 (slowest of 5 views)",
            max(
                _worst(
                    lambda w=w, s=s: viz.png_bytes(
                        viz.render_view(att, 6, s, w, layer=1, upsample_mode="bilinear")
                    ),
                    runs,
                )
                for w, s in views
            ),
            0.5,
        )
    )
    e = widgets.AttentionExplorer(photo, widgets.RANDOM_INIT, with_runs=False, max_side=64)
    rows.append(("explorer widget: render of a 64-px view", e.last_render_seconds, 1.0))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="timings per step (the worst counts)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(args.runs, Path(tmp))
    print(f"threads {args.threads}, runs {args.runs}, load average at start {load[0]:.2f}\n")
    print("| step | worst | budget | within |\n|---|---|---|---|")
    for name, took, budget in rows:
        print(f"| {name} | {took:.3f} s | {budget:g} s | {'yes' if took <= budget else 'NO'} |")
    return 0 if all(took <= budget for _, took, budget in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
