"""CPU benchmark of SIAN and PReNet: optimised models against the reference formulation.

Everything is measured in one run on the same inputs and weights, so every speed-up is
a ratio of two numbers taken minutes apart on the same machine. Prints a report and
writes it to ``benchmarks/RESULTS.md`` (machine, versions, date, command).

example: python -m benchmarks.bench --threads 2 --runs 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from derain_lib.threads import configure

configure()  # as `derain` runs: OpenMP threads wait passively (set before torch loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from benchmarks.busy import section_of  # noqa: E402
from benchmarks.reference import reference_like  # noqa: E402
from derain_lib import backends  # noqa: E402
from derain_lib.allocator import tune  # noqa: E402
from derain_lib.inference import predict_fitting, tile_spans, tiled_forward  # noqa: E402
from derain_lib.info import installed_version  # noqa: E402
from derain_lib.models import ScaleSpace, build_model, gaussian_blur  # noqa: E402
from derain_lib.models.scale_space import gaussian_kernel1d  # noqa: E402
from derain_lib.precision import cpu_flags, cpu_native_bf16, resolve_precision  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
H, W = 321, 481  # Rain100L test images
ALLOCATORS = ("tuned", "default")  # derain_lib.allocator applied / glibc left alone


def timed(fn: Callable[[], object], runs: int, warmup: int = 1) -> list[float]:
    """Wall times (s) of ``runs`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def med(ts: list[float]) -> float:
    return statistics.median(ts)


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "platform": platform.platform(),
    }


def conv_peak(runs: int, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of a large channels_last 3x3 convolution (256 -> 256, 128x128) in ``dtype``."""
    x = torch.rand(1, 256, 128, 128).contiguous(memory_format=torch.channels_last).to(dtype)
    w = torch.rand(256, 256, 3, 3).contiguous(memory_format=torch.channels_last).to(dtype)
    flops = 2 * 256 * 256 * 9 * 128 * 128
    with torch.inference_mode():
        t = min(timed(lambda: F.conv2d(x, w, padding=1), runs))
    return flops / t / 1e9


def conv_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of every convolution in one forward (depthwise blurs included)."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(x)
    return sum(v for k, v in counter.get_flop_counts()["Global"].items() if "conv" in str(k))


class _ConvRecorder(TorchDispatchMode):
    """Records every 2-D convolution call of a forward (``aten.conv2d`` under inference mode,
    ``aten.convolution`` otherwise): the op, its input's shape and strides, its weights and
    settings, so the same convolutions can be replayed on their own."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if func in (torch.ops.aten.conv2d.default, torch.ops.aten.convolution.default):
            x = args[0]
            self.calls.append((func, tuple(x.shape), tuple(x.stride()), *args[1:]))
        return func(*args, **(kwargs or {}))


def own_conv_bound(runs: int, seed: int = 0, size: tuple[int, int] = (H, W)) -> dict:
    """The throughput SIAN full's own convolutions reach alone: every convolution of one
    forward (same shapes, strides, weights, groups) replayed back to back on random inputs,
    nothing else in between. The forward cannot beat this, whatever the rest of its work
    costs; the 256->256 peak is out of reach of its 32-channel convolutions.
    ``replay_flops`` (counted from the replayed shapes) equals ``flops`` (the flop counter
    on the forward) when the replay covers all of the forward's convolution work."""
    torch.manual_seed(seed)
    model = build_model("sian").eval()
    x = torch.rand(1, 3, *size)
    rec = _ConvRecorder()
    with torch.inference_mode():
        with rec:
            model(x)
        inputs = [torch.empty_strided(shape, st).uniform_() for _, shape, st, *_ in rec.calls]

        def replay() -> list[torch.Tensor]:
            return [
                op(inp, *rest) for inp, (op, _, _, *rest) in zip(inputs, rec.calls, strict=True)
            ]

        replay_flops = 0
        kinds: dict[str, dict] = {}
        for out, (_, shape, _, w, *_rest) in zip(replay(), rec.calls, strict=True):
            flops = 2 * out.numel() * w[0].numel()  # (C_in/groups) * kh * kw MACs
            replay_flops += flops
            k = kinds.setdefault(conv_kind(shape, w), {"calls": 0, "flops": 0, "s": 0.0})
            k["calls"] += 1
            k["flops"] += flops
        t = med(timed(replay, runs))
        forward = med(timed(lambda: model(x), runs))
        for _ in range(runs):  # each call timed on its own, summed per kind over the runs
            for inp, (op, shape, _, w, *rest) in zip(inputs, rec.calls, strict=True):
                t0 = time.perf_counter()
                op(inp, w, *rest)
                kinds[conv_kind(shape, w)]["s"] += (time.perf_counter() - t0) / runs
    return {
        "convs": len(rec.calls),
        "replay_s": t,
        "forward_s": forward,
        "flops": conv_flops(model, x),
        "replay_flops": replay_flops,
        "kinds": kinds,
    }


def conv_kind(shape: tuple[int, ...], weight: torch.Tensor) -> str:
    """``"160->32 3x3 at 321x481"`` (``dw`` for a depthwise blur): one row of the replay's
    breakdown, from the input shape and the weights (out, in/groups, kh, kw)."""
    c_out, c_in_g, kh, kw = weight.shape
    c_in = shape[1]
    kind = f"{c_in}->{c_out}" if c_in_g == c_in else f"{c_in}->{c_out} dw"
    return f"{kind} {kh}x{kw} at {shape[2]}x{shape[3]}"


def interleaved(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    """Wall times (s) of each function, one warm-up call each, then ``runs`` rounds that
    call every function once in turn (slow drifts of the machine hit all alike)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return times


def inference(name: str, runs: int, seed: int = 0) -> dict:
    """Median times (s): optimised (inference_mode), reference with and without autograd."""
    torch.manual_seed(seed)
    model = build_model(name).eval()
    ref = reference_like(model).eval()
    x = torch.rand(1, 3, H, W)

    def opt() -> None:
        with torch.inference_mode():
            model(x)

    def ref_nograd() -> None:
        with torch.no_grad():
            ref(x)

    # reference with autograd on: the straightforward way
    times = interleaved({"opt": opt, "ref": lambda: ref(x), "ref_nograd": ref_nograd}, runs)
    with torch.inference_mode():
        out = model(x)[-1]
    with torch.no_grad():
        ref_out = ref(x)[-1]
    return {
        **times,
        "maxdiff": (out - ref_out).abs().max().item(),
        "flops": conv_flops(model, x),
    }


def train_throughput(steps: int, batch: int = 18, patch: int = 120) -> dict:
    """Patches/s of Adam steps on SIAN full (loss: negative SSIM summed over stages),
    optimised and reference steps alternating."""
    from derain_lib.losses import stage_loss

    torch.manual_seed(0)
    model = build_model("sian").train()
    ref = reference_like(model).train()
    x = torch.rand(batch, 3, patch, patch)
    y = torch.rand(batch, 3, patch, patch)
    fns = {}
    for key, net in (("opt", model), ("ref", ref)):
        opt = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.0, 0.999))

        def step(net: nn.Module = net, opt: torch.optim.Optimizer = opt) -> None:
            opt.zero_grad(set_to_none=True)
            stage_loss(net(x), y, "ssim").backward()
            opt.step()

        fns[key] = step
    return {k: [batch / t for t in ts] for k, ts in interleaved(fns, steps).items()}


def tiled_peak(tile: int, overlap: int, tiles: int | None) -> dict:
    """Tiled SIAN on a 4000x3000 image and this process's peak RSS (MiB); meant to run
    in a fresh process (:func:`in_child`), whose ``VmHWM`` is the tiled run's own.

    ``tiles``: only the first tiles' strip, written into a full-size output as
    ``tiled_forward`` does (peak memory is per tile); None: every tile.
    """
    model = build_model("sian").eval()
    x = torch.rand(1, 3, 3000, 4000)
    n_all = len(tile_spans(3000, tile, overlap)) * len(tile_spans(4000, tile, overlap))
    t = time.perf_counter()
    if tiles is None:
        tiled_forward(model, x, tile, overlap)
        n = n_all
    else:
        out = torch.empty_like(x)
        sub = x[..., :tile, : tile + (tiles - 1) * (tile - overlap)]
        out[..., : sub.shape[-2], : sub.shape[-1]] = tiled_forward(model, sub, tile, overlap)
        n = len(tile_spans(sub.shape[-1], tile, overlap))
    secs = time.perf_counter() - t
    # VmHWM: this process's own peak (ru_maxrss would carry the forking parent's peak)
    hwm = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if "VmHWM" in ln)
    return {"rss_mib": int(hwm.split()[1]) / 1024, "tiles": n, "tiles_all": n_all, "s": secs}


def in_child(call: str, allocator: str) -> dict:
    """``call`` (an expression over this module) evaluated in a fresh process.

    ``allocator="default"`` leaves glibc as it is (``DERAIN_MALLOC_TUNING=0``);
    ``"tuned"`` calls :func:`derain_lib.allocator.tune` first.
    """
    code = (
        "import json, torch\n"
        f"torch.set_num_threads({torch.get_num_threads()})\n"
        "import benchmarks.bench as b\n"
        "b.tune()\n"
        f"print(json.dumps(b.{call}))\n"
    )
    env = {**os.environ, "DERAIN_MALLOC_TUNING": "0" if allocator == "default" else "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, check=False
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def composed_blur_error(size: int = 64) -> dict:
    """Max |direct - incremental| of the official 3x3 zero-padded octave-1 layers.

    ``direct`` convolves the base once with the composition of the incremental kernels
    (one batched conv could do all layers at once); with zero padding the two differ at
    the borders, which is why the incremental blurs stay sequential.
    """
    torch.manual_seed(0)
    f = torch.randn(1, 32, size, size)
    ss = ScaleSpace()
    inc = ss.forward(f)[0][0]
    base = gaussian_blur(f, ss.init_sigma)
    k = torch.ones(1, dtype=torch.float64)
    diffs = []
    for layer, s in enumerate([None, *ss.step_sigma]):
        if s is not None:
            k = torch.from_numpy(np.convolve(k.numpy(), gaussian_kernel1d(s, 1, torch.float64)))
        r = (len(k) - 1) // 2
        k2 = torch.outer(k, k).float().expand(32, 1, 2 * r + 1, 2 * r + 1)
        direct = F.conv2d(base, k2.contiguous(), padding=r, groups=32)
        diffs.append((direct - inc[layer]).abs())
    d = torch.stack(diffs)
    m = 8  # away from the borders (composed radius 5, plus margin)
    return {"max": d.max().item(), "interior": d[..., m:-m, m:-m].max().item()}


def bf16_check(runs: int, crop: int) -> dict:
    """Time of a bf16-autocast forward vs fp32, and the PSNR change on the sample pairs."""
    from derain_lib.data.io import read_image
    from derain_lib.metrics import quantize, score_pair
    from derain_lib.weights import load_model

    shared = Path(os.environ.get("DERAIN_SHARED", ROOT.parent / "shared"))
    model = build_model("sian").eval()
    x = torch.rand(1, 3, crop, crop)
    with torch.inference_mode():
        fp32 = med(timed(lambda: model(x), runs))
        with torch.autocast("cpu", torch.bfloat16):
            bf16 = med(timed(lambda: model(x), runs))
    res: dict = {"fp32_s": fp32, "bf16_s": bf16, "crop": crop}
    weights = shared / "weights" / "sian_rain100l.pth"
    sample = shared / "data" / "rain100l_sample"
    if not weights.is_file():
        return res
    model = load_model(weights, "sian").model.eval()
    deltas = []
    for rainy in sorted((sample / "rainy").glob("*.png")):
        clean = sample / "norain" / rainy.name.replace("rain-", "norain-")
        img, gt = read_image(rainy), read_image(clean)
        top, left = (img.shape[0] - crop) // 2, (img.shape[1] - crop) // 2
        img = img[top : top + crop, left : left + crop]
        gt = gt[top : top + crop, left : left + crop]
        xi = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
        psnr = []
        for enabled in (False, True):
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=enabled):
                out = model(xi)[-1].float()[0].permute(1, 2, 0).numpy()
            psnr.append(score_pair(quantize(out), quantize(gt))[0])
        deltas.append(psnr[1] - psnr[0])
    res["psnr_delta"] = deltas
    return res


def stages_check(crop: int | None) -> dict:
    """PSNR per stage count K (1-6) of the released SIAN Rain100L and Rain100H weights on
    the rain100l_sample pairs, and the time of one ``stages=K`` forward per K (on the
    first pair). The PSNRs come from one full run per image: its K-th output is the
    ``stages=K`` output (tests/test_precision_stages.py)."""
    from derain_lib.data.io import read_image
    from derain_lib.metrics import quantize, score_pair
    from derain_lib.weights import load_model

    shared = Path(os.environ.get("DERAIN_SHARED", ROOT.parent / "shared"))
    sample = shared / "data" / "rain100l_sample"
    pairs = []
    for rainy in sorted((sample / "rainy").glob("*.png")):
        img = read_image(rainy)
        gt = read_image(sample / "norain" / rainy.name.replace("rain-", "norain-"))
        if crop:
            img, gt = img[:crop, :crop], gt[:crop, :crop]
        pairs.append((torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None], gt))
    res: dict = {"crop": crop, "n": len(pairs)}
    for name in ("sian_rain100l", "sian_rain100h"):
        weights = shared / "weights" / f"{name}.pth"
        if not weights.is_file() or not pairs:
            continue
        model = load_model(weights, "sian").model.eval()
        psnr = [[] for _ in range(6)]
        with torch.inference_mode():
            for x, gt in pairs:
                for k, out in enumerate(model(x)):
                    psnr[k].append(
                        score_pair(quantize(out[0].permute(1, 2, 0).numpy()), quantize(gt))[0]
                    )
            x0 = pairs[0][0]
            secs = [
                med(timed(lambda k=k, m=model, x=x0: m(x, stages=k), 1, 0)) for k in range(1, 7)
            ]
        res[name] = {"psnr": [float(np.mean(p)) for p in psnr], "s": secs}
    return res


def backends_check(runs: int, photos: int) -> dict:
    """Every installed backend x precision on the released SIAN Rain100L weights, in this
    one process: seconds per 481x321 forward (rain-001, interleaved, best of ``runs``)
    beside eager fp32, the reference formulation (no_grad) and the conv peak; max abs
    against eager fp32; the PSNR change on the 4 sample pairs; what ``auto`` picks for
    ``derain derain`` (precision auto) and ``evaluate`` (fp32); and ``derain derain``'s
    path (:func:`~derain_lib.inference.predict_fitting`: tiles above 512x512) over the
    first ``photos`` real rain photos, default choice vs eager fp32, every shape's first
    run (compile/reshape) included."""
    from derain_lib.data.io import read_image
    from derain_lib.metrics import quantize, score_pair
    from derain_lib.precision import autocast
    from derain_lib.weights import load_model

    shared = Path(os.environ.get("DERAIN_SHARED", ROOT.parent / "shared"))
    lw = load_model(shared / "weights" / "sian_rain100l.pth", "sian")
    model = lw.model.eval()
    t = time.perf_counter()
    graph = backends.cached_graph(model, lw.sha256, None)
    res: dict = {"graph_s": time.perf_counter() - t}  # 0 when the graph was cached already
    rows = {}
    for b, p in backends.candidates("auto", "auto", True):
        if b == "torch":
            rows[f"{b} {p}"] = (model, p)
        else:
            rows[f"{b} {p}"] = (backends.GraphModel(model, backends.Graph(graph, b, p), None), p)
    sample = shared / "data" / "rain100l_sample"
    pairs = [
        (read_image(r), read_image(sample / "norain" / r.name.replace("rain-", "norain-")))
        for r in sorted((sample / "rainy").glob("*.png"))
    ]
    x = torch.from_numpy(np.ascontiguousarray(pairs[0][0])).permute(2, 0, 1)[None].contiguous()
    ref = reference_like(model).eval()

    def fwd(m: nn.Module, p: str) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with torch.inference_mode(), autocast(p if m is model else "fp32"):
                return m(x)[-1].float()

        return run

    fns = {k: fwd(m, p) for k, (m, p) in rows.items()}

    def reference() -> None:
        with torch.no_grad():
            ref(x)

    fns["reference"] = reference
    res["times"] = interleaved(fns, runs)
    res["peak_gflops"] = conv_peak(runs)
    if cpu_native_bf16():
        res["peak_bf16_gflops"] = conv_peak(runs, torch.bfloat16)
    res["flops"] = conv_flops(model, x)
    eager = fns["torch fp32"]()
    res["maxabs"] = {k: float((fns[k]() - eager).abs().max()) for k in rows}
    psnr = {k: [] for k in rows}
    for img, gt in pairs:
        for k, (m, p) in rows.items():
            psnr[k].append(score_pair(quantize(predict_fitting(m, img, None, None, p)), gt)[0])
    res["psnr"] = psnr
    lines: list[str] = []
    _, res["derain_precision"] = backends.select(
        model, lw.sha256, "auto", "auto", None, lines.append
    )
    _, res["evaluate_precision"] = backends.select(
        model, lw.sha256, "auto", "fp32", None, lines.append
    )
    res["choices"] = lines
    res["cli"] = cli_sample_pairs(sample / "rainy", runs)
    chosen = lines[0].split(": ", 1)[1].split(" (")[0]  # "openvino bf16"
    res["derain_choice"], res["evaluate_choice"] = chosen, lines[1].split(": ", 1)[1].split(" (")[0]
    files = sorted(
        f for f in (shared / "data" / "real_rain").iterdir() if f.suffix.lower() in (".png", ".jpg")
    )[:photos]
    if files and chosen in rows:
        m, p = rows[chosen]
        tot = {"torch fp32": 0.0, chosen: 0.0}
        for f in files:
            img = read_image(f)
            for k, (mm, pp) in (("torch fp32", (model, "fp32")), (chosen, (m, p))):
                t = time.perf_counter()
                predict_fitting(mm, img, None, None, pp)
                tot[k] += time.perf_counter() - t
        res["photos"] = {
            "n": len(files),
            "s": tot,
            "sizes": [read_image(f).shape[:2] for f in files],
        }
    return res


def cli_sample_pairs(folder: Path, runs: int) -> dict[str, list[float]]:
    """Wall seconds of whole ``derain derain FOLDER`` commands (fresh processes: start-up,
    model load, backend choice from the cache, every image), the default against
    ``--backend torch --precision fp32``, interleaved, ``runs`` each."""
    import tempfile

    cmds = {"default": [], "torch fp32": ["--backend", "torch", "--precision", "fp32"]}
    times: dict[str, list[float]] = {k: [] for k in cmds}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs + 1):  # the first round fills the backend cache, untimed
            for k, extra in cmds.items():
                out = f"{tmp}/{i}{k[0]}"
                argv = [sys.executable, "-m", "derain_lib.cli", "derain", str(folder),
                        "--weights", "sian-rain100l", "-o", out, "--no-progress"]  # fmt: skip
                t = time.perf_counter()
                subprocess.run(argv + extra, check=True, capture_output=True)
                if i:
                    times[k].append(time.perf_counter() - t)
    return times


def backends_report(r: dict) -> str:
    """The ``backends_check`` section of RESULTS.md (between markers: rewritten alone
    by ``--backends-only``)."""
    b = r["backends"]
    peak, flops = b["peak_gflops"], b["flops"]
    best = {k: min(v) for k, v in b["times"].items()}
    base, ref = best["torch fp32"], best["reference"]
    lines = [
        BACKENDS_BEGIN,
        "## CPU backends (`--backend`, `--precision`), SIAN full, released Rain100L weights",
        "",
        f"Command: `{r['command']}`; {r['date']}; {r['machine']['cpu']}, "
        f"{r['machine']['logical_cpus']} logical CPUs, {r['machine']['capability']}; CPU flags "
        f"with bf16: {', '.join(sorted(f for f in cpu_flags() if 'bf16' in f)) or 'none'}"
        f"; load average at start {r['load'][0]:.2f}. Versions: "
        + ", ".join(f"{k} {installed_version(k)}" for k in ("torch", "openvino", "onnxruntime"))
        + ".",
        "",
        f"481x321 (rain-001), best of {len(b['times']['torch fp32'])} interleaved runs in one "
        f"process; conv peak {peak:.1f} GFLOP/s measured in the same process; SIAN's "
        f"forward is {flops / 1e9:.1f} GFLOP of convolution. PSNR change: each row's output "
        "against eager fp32's on the 4 rain100l_sample pairs (whole images, MATLAB Y protocol). "
        "The peak is fp32's: a bf16 row can exceed it.",
        "",
        "| backend | precision | s / image | vs eager fp32 | vs reference | of conv peak "
        "| max abs vs eager | PSNR change (dB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ps0 = b["psnr"]["torch fp32"]
    for k, s in best.items():
        if k == "reference":
            continue
        d = [a - e for a, e in zip(b["psnr"][k], ps0, strict=True)]
        lines.append(
            f"| {k.split()[0]} | {k.split()[1]} | {s:.2f} | {base / s:.2f}x | {ref / s:.2f}x | "
            f"{flops / s / 1e9 / peak:.0%} | {b['maxabs'][k]:.1e} | "
            f"{', '.join(f'{v:+.3f}' for v in d)} |"
        )
    lines += [
        f"| reference formulation (no_grad) | fp32 | {ref:.2f} | {base / ref:.2f}x | 1.00x | "
        f"{flops / ref / 1e9 / peak:.0%} | | |",
        "",
        f"- `derain derain` default (`--backend auto --precision auto`): **{b['derain_choice']}**"
        f"; `derain evaluate` (fp32 protocol): **{b['evaluate_choice']}**. What they said: "
        + " / ".join(f"`{line}`" for line in b["choices"]),
        f"- Graph export (first use, then cached): {b['graph_s']:.0f} s in this run "
        "(0 when it was cached already).",
    ]
    if "peak_bf16_gflops" in b:
        p16 = b["peak_bf16_gflops"]
        lines.append(
            f"- bf16 conv peak (the same convolution in bf16) {p16:.1f} GFLOP/s, "
            f"{p16 / peak:.2f}x the fp32 peak: a bf16 forward doing nothing but its "
            f"{flops / 1e9:.1f} GFLOP of convolution at that peak takes {flops / p16 / 1e9:.2f} s"
            f", {base / (flops / p16 / 1e9):.2f}x eager fp32: the ceiling of bf16 on this CPU."
        )
    if "cli" in b:
        c = {k: min(v) for k, v in b["cli"].items()}
        lines.append(
            f"- Whole `derain derain` commands on the 4 sample pairs (fresh processes; start-up, "
            f"model load and the cached backend choice included; best of "
            f"{len(b['cli']['default'])}): `--backend torch --precision fp32` "
            f"{c['torch fp32']:.1f} s, default {c['default']:.1f} s: "
            f"{c['torch fp32'] / c['default']:.2f}x."
        )
    ph = b.get("photos")
    if ph:
        s0, s1 = ph["s"]["torch fp32"], ph["s"][b["derain_choice"]]
        sizes = ", ".join(f"{w}x{h}" for h, w in ph["sizes"])
        lines.append(
            f"- `derain derain`'s path over the first {ph['n']} real rain photos ({sizes}; "
            f"tiles of 512 above 512x512; every new shape's first run included): eager fp32 "
            f"{s0:.1f} s, default ({b['derain_choice']}) {s1:.1f} s: {s0 / s1:.2f}x."
        )
    return "\n".join(lines) + "\n" + BACKENDS_END + "\n"


BACKENDS_BEGIN, BACKENDS_END = "<!-- backends: begin -->", "<!-- backends: end -->"


def profile_top(n: int = 8) -> list[tuple[str, float]]:
    """Share of self CPU time per op in one optimised SIAN full forward at 481x321."""
    from torch.profiler import ProfilerActivity, profile

    model = build_model("sian").eval()
    x = torch.rand(1, 3, H, W)
    with torch.inference_mode():
        model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model(x)
    rows = [(e.key, e.self_cpu_time_total) for e in prof.key_averages()]
    total = sum(t for _, t in rows)
    rows.sort(key=lambda r: -r[1])
    return [(k, t / total) for k, t in rows[:n]]


def fmt_s(ts: list[float]) -> str:
    return f"{med(ts):.2f} s (runs: {', '.join(f'{t:.2f}' for t in ts)})"


def report(r: dict, args: argparse.Namespace) -> str:
    m = r["machine"]
    s = r["sian_tuned"]
    peak = r["peak_gflops"]
    sian_gf = s["flops"] / med(s["opt"]) / 1e9
    ref_gf = s["flops"] / med(s["ref"]) / 1e9
    ref_ng_gf = s["flops"] / med(s["ref_nograd"]) / 1e9
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{r['command']}`  ",
        f"Date: {r['date']}  ",
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, {m['capability']}; "
        f"{m['platform']}  ",
        f"Versions: Python {m['python']}, torch {m['torch']}, numpy {m['numpy']}  ",
        f"Threads: {args.threads}; load average at start {r['load'][0]:.2f}, at end "
        f"{r['load'][1]:.2f} (other jobs' load makes times noisy; ratios are taken within "
        "this one run, each pair in one process)",
        "",
        "Optimised = `derain_lib.models` (inference under `torch.inference_mode()`: "
        "channels_last, one-pass DoG, 2-D 3x3 blurs, one gate conv, zero-state LSTM skip, "
        "LSTM activations in place; training in the standard layout with split/chunk "
        "gates). Reference = `benchmarks/reference.py` (NCHW, one 2-D grouped conv per "
        "blur, eight per-gate LSTM convs, autograd on), same input and weights, same "
        "process. Allocator: `tuned` = `derain_lib.allocator` in effect (what `import "
        "derain_lib` does), `default` = glibc left alone (`DERAIN_MALLOC_TUNING=0`); "
        "each allocator's pair runs in its own fresh process.",
        "",
        "## Inference, 481x321, fp32 (median of runs)",
        "",
        "| model | allocator | optimised | reference (autograd on) | speed-up "
        "| reference (no_grad) | speed-up vs no_grad | max abs diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, key in (("SIAN full", "sian"), ("PReNet", "prenet")):
        for alloc in ALLOCATORS:
            d = r[f"{key}_{alloc}"]
            if "error" in d:
                lines.append(f"| {name} | {alloc} | failed: {d['error']} | | | | | |")
                continue
            lines.append(
                f"| {name} | {alloc} | {fmt_s(d['opt'])} | {fmt_s(d['ref'])} | "
                f"{med(d['ref']) / med(d['opt']):.2f}x | {fmt_s(d['ref_nograd'])} | "
                f"{med(d['ref_nograd']) / med(d['opt']):.2f}x | {d['maxdiff']:.1e} |"
            )
    sd = r.get("sian_default", {})
    if "opt" in sd:
        lines += [
            "",
            f"Whole-tool effect on SIAN full (optimised + tuned allocator vs reference with "
            f"autograd on + default allocator, two processes of this run): "
            f"{med(sd['ref']) / med(s['opt']):.2f}x; vs the reference under no_grad with "
            f"the default allocator: {med(sd['ref_nograd']) / med(s['opt']):.2f}x.",
        ]
    lines += [
        "",
        "## Convolution throughput (tuned allocator)",
        "",
        f"- Measured conv peak (1x256x128x128, 256->256 3x3, channels_last): {peak:.1f} GFLOP/s",
        f"- SIAN full conv work per 481x321 forward: {s['flops'] / 1e9:.1f} GFLOP",
        f"- Optimised: {sian_gf:.1f} GFLOP/s = {sian_gf / peak:.0%} of the measured peak; "
        f"reference (autograd on): {ref_gf:.1f} GFLOP/s = {ref_gf / peak:.0%}; "
        f"reference (no_grad): {ref_ng_gf:.1f} GFLOP/s = {ref_ng_gf / peak:.0%}",
    ]
    oc = r.get("own_convs", {})
    if "replay_s" in oc:
        own_gf = oc["flops"] / oc["replay_s"] / 1e9
        fwd_gf = oc["flops"] / oc["forward_s"] / 1e9
        lines += [
            f"- The forward's own {oc['convs']} convolutions replayed alone (same shapes, "
            f"strides, weights; random inputs; nothing in between), one fresh process: "
            f"{oc['replay_s']:.2f} s = {own_gf:.1f} GFLOP/s = {own_gf / peak:.0%} of the "
            f"256->256 peak: the ceiling of any forward made of these convolutions. The "
            f"whole forward in the same process: {oc['forward_s']:.2f} s = {fwd_gf:.1f} "
            f"GFLOP/s = {fwd_gf / peak:.0%} of the peak, {fwd_gf / own_gf:.0%} of that "
            f"ceiling (the rest is the LSTM gates, DoG differences, concatenations).",
        ]
        kinds = sorted(oc.get("kinds", {}).items(), key=lambda kv: -kv[1]["s"])
        if kinds:
            lines += [
                "",
                "The replay per kind of convolution (each call timed on its own, summed; "
                "GFLOP/s against the peak above):",
                "",
                "| convolution | calls | GFLOP | time (s) | share of replay time | GFLOP/s "
                "| of the peak |",
                "|---|---|---|---|---|---|---|",
            ]
            total = sum(k["s"] for _, k in kinds)
            for name, k in kinds:
                gf = k["flops"] / k["s"] / 1e9
                lines.append(
                    f"| {name} | {k['calls']} | {k['flops'] / 1e9:.1f} | {k['s']:.3f} "
                    f"| {k['s'] / total:.0%} | {gf:.1f} | {gf / peak:.0%} |"
                )
    elif oc:
        lines.append(f"- Own-convolution replay failed: {oc.get('error')}")
    lines += [
        "",
        "## Training throughput, SIAN full, 120x120 patches, batch 18, Adam, -SSIM loss",
        "",
        "| allocator | optimised (patches/s) | reference (patches/s) | speed-up |",
        "|---|---|---|---|",
    ]
    for alloc in ALLOCATORS:
        t = r[f"train_{alloc}"]
        if "error" in t:
            lines.append(f"| {alloc} | failed: {t['error']} | | |")
            continue
        lines.append(
            f"| {alloc} | {med(t['opt']):.3f} (steps: {', '.join(f'{v:.3f}' for v in t['opt'])})"
            f" | {med(t['ref']):.3f} (steps: {', '.join(f'{v:.3f}' for v in t['ref'])}) | "
            f"{med(t['opt']) / med(t['ref']):.2f}x |"
        )
    lines += [
        "",
        "## Tiled inference, SIAN full, 4000x3000",
        "",
    ]
    tr = r["tiled"]
    if "error" in tr:
        lines.append(f"- not measured: {tr['error']}")
    else:
        scope = (
            "all tiles"
            if tr["tiles"] == tr["tiles_all"]
            else f"the first {tr['tiles']} of {tr['tiles_all']} tiles (peak memory is per "
            "tile: tiles run one at a time; the full-size input and output are allocated)"
        )
        lines.append(
            f"- `derain_lib.inference.tiled_forward`, tile {args.tile}, overlap {args.overlap}, "
            f"{scope}: peak RSS {tr['rss_mib']:.0f} MiB ({tr['rss_mib'] / 1024:.2f} GiB), "
            f"{tr['s']:.1f} s"
        )
    c = r["composed"]
    lines += [
        "",
        "## Exactness of batching the blurs",
        "",
        "Composing the official incremental 3x3 zero-padded blurs into one kernel per layer "
        "(so all layers of an octave could be one conv) differs from the incremental result "
        f"by up to {c['max']:.2e} (at the borders; {c['interior']:.1e} in the interior), "
        "far above 1e-4, so the incremental blurs stay sequential.",
    ]
    b = r.get("bf16")
    if b:
        lines += [
            "",
            "## bf16 autocast (`--precision bf16`; `auto` only with native bf16)",
            "",
            f"- {b['crop']}x{b['crop']} forward: fp32 {b['fp32_s']:.2f} s, bf16 autocast "
            f"{b['bf16_s']:.2f} s ({b['bf16_s'] / b['fp32_s']:.1f}x the fp32 time; "
            f"native bf16 on this CPU: {r['native_bf16']}, so `--precision auto` picks "
            f"{r['auto_precision']})",
        ]
        if "psnr_delta" in b:
            d = ", ".join(f"{v:+.3f}" for v in b["psnr_delta"])
            worst = max(abs(v) for v in b["psnr_delta"])
            lines.append(
                f"- PSNR change bf16 - fp32 on the 4 rain100l_sample pairs (released Rain100L "
                f"weights, centre {b['crop']}x{b['crop']} crops): {d} dB; largest "
                f"{worst:.3f} dB against the target < 0.05 dB: "
                f"{'met' if worst < 0.05 else 'NOT met'}"
            )
    st = r.get("stages")
    if st and any(k in st for k in ("sian_rain100l", "sian_rain100h")):
        where = f"{st['crop']}x{st['crop']} top-left crops" if st["crop"] else "whole images"
        lines += [
            "",
            "## Fewer stages (`--stages K`)",
            "",
            f"Mean PSNR (dB, MATLAB Y protocol) on the {st['n']} rain100l_sample pairs "
            f"({where}; Rain100H weights on Rain100L images, the only sample pairs at "
            "hand) and the time of one `stages=K` forward on the first pair:",
            "",
            "| weights | " + " | ".join(f"K={k}" for k in range(1, 7)) + " |",
            "|---|" + "---|" * 6,
        ]
        for name in ("sian_rain100l", "sian_rain100h"):
            if name in st:
                cells = [
                    f"{p:.2f} dB, {t:.2f} s"
                    for p, t in zip(st[name]["psnr"], st[name]["s"], strict=True)
                ]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Target: SIAN full inference at 481x321 at >= 80 % of the conv peak: {sian_gf / peak:.0%}"
        f" measured ({'met' if sian_gf / peak >= 0.8 else 'NOT met'}).",
    ]
    lines += ["", "## Where the optimised forward spends its time (torch.profiler)", ""]
    lines += ["| op | share of self CPU time |", "|---|---|"]
    lines += [f"| `{k}` | {v:.0%} |" for k, v in r["profile"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="example: python -m benchmarks.bench --threads 2 --runs 3",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per inference measure")
    ap.add_argument("--train-steps", type=int, default=2, help="timed training steps")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--overlap", type=int, default=32)
    ap.add_argument(
        "--tiles", type=int, default=2, help="tiles to run of the 4000x3000 image (0: all)"
    )
    ap.add_argument("--bf16-crop", type=int, default=128, help="0 skips the bf16 check")
    ap.add_argument(
        "--stages-crop",
        type=int,
        default=0,
        help="per-K check on crops of this size (0: whole images, -1: skip)",
    )
    ap.add_argument("--photos", type=int, default=36, help="real rain photos timed (backends)")
    ap.add_argument(
        "--backends-only",
        action="store_true",
        help="run only the CPU backends section and replace it in --out",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = ap.parse_args(argv)
    tune()  # what the CLI does (DERAIN_MALLOC_TUNING=0: off)
    torch.set_num_threads(args.threads)
    r: dict = {
        "command": "python -m benchmarks.bench " + " ".join(argv or sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load": [os.getloadavg()[0]],
        "native_bf16": cpu_native_bf16(),
        "auto_precision": resolve_precision("auto", "cpu"),
    }
    old = args.out.read_text() if args.out.is_file() else ""
    if args.backends_only:
        r["backends"] = backends_check(args.runs, args.photos)
        r["load"].append(os.getloadavg()[0])
        section = backends_report(r)
        if BACKENDS_BEGIN in old:
            head, rest = old.split(BACKENDS_BEGIN, 1)
            text = head + section + rest.split(BACKENDS_END, 1)[1].lstrip("\n")
        else:
            text = old + "\n" + section
        args.out.write_text(text)
        print(section)
        return 0
    steps = [
        ("backends", lambda: backends_check(args.runs, args.photos)),
        ("peak_gflops", lambda: conv_peak(args.runs)),
        ("own_convs", lambda: in_child(f"own_conv_bound({args.runs})", "tuned")),
    ]
    for alloc in ALLOCATORS:  # each in a fresh process: glibc's state is per process
        steps += [
            (f"sian_{alloc}", lambda a=alloc: in_child(f"inference('sian', {args.runs})", a)),
            (f"prenet_{alloc}", lambda a=alloc: in_child(f"inference('prenet', {args.runs})", a)),
            (
                f"train_{alloc}",
                lambda a=alloc: in_child(f"train_throughput({args.train_steps})", a),
            ),
        ]
    steps += [
        (
            "tiled",
            lambda: in_child(
                f"tiled_peak({args.tile}, {args.overlap}, {args.tiles or None})", "tuned"
            ),
        ),
        ("composed", composed_blur_error),
        ("profile", profile_top),
    ]
    if args.bf16_crop:
        steps.append(("bf16", lambda: bf16_check(args.runs, args.bf16_crop)))
    if args.stages_crop >= 0:
        steps.append(("stages", lambda: stages_check(args.stages_crop or None)))
    for key, fn in steps:
        t = time.perf_counter()
        r[key] = fn()
        print(f"{key}: {json.dumps(r[key], default=str)[:300]} ({time.perf_counter() - t:.0f} s)")
    r["load"].append(os.getloadavg()[0])
    text = report(r, args) + "\n" + backends_report(r)
    args.out.write_text(text + ("\n" + section_of(old) if section_of(old) else ""))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
