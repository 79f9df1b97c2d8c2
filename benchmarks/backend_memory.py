"""Peak RSS of tiled 4000x3000 SIAN inference through one backend, in this fresh process.

Runs the first ``--tiles`` tiles (a strip, as ``bench.tiled_peak``: peak memory is per tile)
of a random 4000x3000 image with the released Rain100L weights through
``derain_lib.inference.tiled_forward``, as ``derain derain`` tiles a large photo, and prints
one JSON line: backend, precision, tiles, peak RSS (GiB, ``VmHWM``), seconds.

example: python -m benchmarks.backend_memory openvino bf16 --tiles 2
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from derain_lib import backends
from derain_lib.allocator import tune
from derain_lib.inference import tiled_forward
from derain_lib.weights import load_model

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("backend", choices=backends.BACKENDS[1:])
    ap.add_argument("precision", choices=["fp32", "bf16"])
    ap.add_argument("--tiles", type=int, default=2)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--overlap", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    tune()  # as the CLI does
    torch.set_num_threads(args.threads)
    shared = Path(os.environ.get("DERAIN_SHARED", ROOT.parent / "shared"))
    lw = load_model(shared / "weights" / "sian_rain100l.pth", "sian")
    model, precision = lw.model, args.precision
    if args.backend != "torch":
        graph = backends.Graph(
            backends.cached_graph(model, lw.sha256, None), args.backend, precision
        )
        model, precision = backends.GraphModel(model, graph, None), "fp32"
    x = torch.rand(1, 3, 3000, 4000)
    out = torch.empty_like(x)
    t, step = args.tile, args.tile - args.overlap
    sub = x[..., :t, : t + (args.tiles - 1) * step]
    start = time.perf_counter()
    y = tiled_forward(model, sub, t, args.overlap, precision=precision)
    out[..., : sub.shape[-2], : sub.shape[-1]] = y
    secs = time.perf_counter() - start
    status = Path("/proc/self/status").read_text().splitlines()
    hwm = int(next(ln for ln in status if ln.startswith("VmHWM")).split()[1])
    print(json.dumps({"backend": args.backend, "precision": args.precision, "tiles": args.tiles,
                      "rss_gib": round(hwm / 2**20, 3), "s": round(secs, 1)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
