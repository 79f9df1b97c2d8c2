"""One training step's convolution work per layout, for SIAN's conv shapes at batch 18.

For each shape: forward + input gradient + weight gradient, (a) all in the standard
layout, (b) all channels_last, (c) forward and input gradient channels_last, weight
gradient in the standard layout after converting the saved input and the output
gradient. Shows why training keeps the standard layout (README "Training").

example: python -m benchmarks.conv_layouts --threads 2
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F

from benchmarks.bench import med, timed
from derain_lib.allocator import tune

SHAPES = ((32, 32), (64, 128), (160, 32))  # 3x3 convs: trunk, ConvLSTM gates, mask
CL = torch.channels_last


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    return med(timed(fn, runs)) * 1e3


def measure(cin: int, cout: int, batch: int, size: int, runs: int) -> dict[str, float]:
    """Median ms of forward + both gradients of one conv, per layout strategy."""
    bwd = torch.ops.aten.convolution_backward
    x = torch.rand(batch, cin, size, size)
    w = torch.rand(cout, cin, 3, 3)
    b = torch.rand(cout)
    g = torch.rand(batch, cout, size, size)
    xc, gc = x.contiguous(memory_format=CL), g.contiguous(memory_format=CL)
    args = ([cout], [1, 1], [1, 1], [1, 1], False, [0, 0], 1)

    def standard() -> None:
        F.conv2d(x, w, b, padding=1)
        bwd(g, x, w, *args, [True, True, True])

    def channels_last() -> None:
        F.conv2d(xc, w, b, padding=1)
        bwd(gc, xc, w, *args, [True, True, True])

    def mixed() -> None:
        F.conv2d(xc, w, b, padding=1)
        bwd(gc, xc, w, *args, [True, False, False])
        bwd(gc.contiguous(), xc.contiguous(), w, *args, [False, True, True])

    with torch.no_grad():
        return {
            "standard": _median_ms(standard, runs),
            "channels_last": _median_ms(channels_last, runs),
            "mixed": _median_ms(mixed, runs),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=18)
    ap.add_argument("--size", type=int, default=120)
    args = ap.parse_args(argv)
    tune()  # what the CLI does (DERAIN_MALLOC_TUNING=0: off)
    torch.set_num_threads(args.threads)
    print("| conv | standard | channels_last | CL forward + standard weight grad |")
    print("|---|---|---|---|")
    for cin, cout in SHAPES:
        r = measure(cin, cout, args.batch, args.size, args.runs)
        print(
            f"| {cin}->{cout} | {r['standard']:.0f} ms | {r['channels_last']:.0f} ms | "
            f"{r['mixed']:.0f} ms |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
