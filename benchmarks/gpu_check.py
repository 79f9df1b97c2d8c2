"""The GPU check: SIAN training and inference speed, memory, accuracy and determinism on
one device in one short run (at most 8 minutes on one GPU), written to ``GPU_RESULTS.md``
and ``gpu_check.json`` in ``--out``.

Besides fixed batches it runs the library's own training loop (``derain_lib.train.train``)
on real-sized images with the old input pipeline (images decoded on demand, no workers)
and the new one (decoded once, workers, pinned memory), and the whole test set through the
CLI path (``derain evaluate --device``). ``--profile-hours`` prints the paper profile's
training time per table and in all, on 1 and N GPUs, from a measured rate (``--rate``, or
the best library-loop rate of an earlier run's ``gpu_check.json`` in ``--out``).

Runs with PyTorch, NumPy, scikit-image, Pillow and PyYAML only (no papermill, jupyter or
ipywidgets are imported; the JSON records that). ``--device cpu --tiny`` runs every
measurement at toy size, which is what ``tests/test_gpu_check.py`` does.

example: PYTHONPATH=. python3 -m benchmarks.gpu_check --out gpu_out
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from derain_lib.threads import configure

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
configure()  # OpenMP threads wait passively (before torch is imported)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from derain_lib import train as train_module  # noqa: E402
from derain_lib.config import load_config  # noqa: E402
from derain_lib.data.embedded import embedded_dataset  # noqa: E402
from derain_lib.data.io import read_image  # noqa: E402
from derain_lib.data.patches import (  # noqa: E402
    PAPER_HFLIP,
    PAPER_PATCH,
    PAPER_STRIDES,
    PatchSet,
    count_patches,
)
from derain_lib.errors import DerainError  # noqa: E402
from derain_lib.fsutil import atomic_write_text  # noqa: E402
from derain_lib.inference import predict, tiled_forward, to_tensor  # noqa: E402
from derain_lib.losses import stage_loss  # noqa: E402
from derain_lib.metrics import quantize, score_pair  # noqa: E402
from derain_lib.models import build_model  # noqa: E402
from derain_lib.weights import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "tf32", "bf16")
#: Modules that must not be imported on this path (the GPU machine does not have them).
NOTEBOOK_MODULES = ("papermill", "jupyter_client", "nbformat", "ipywidgets", "IPython")
#: patch, batch, timed steps, inference sizes (h, w), sample crop (None: whole images),
#: SIAN channels of the speed and determinism runs (the released weights have 32)
SIZES = {
    "full": (120, 18, 8, [(321, 481), (3000, 4000)], None, 32),
    "tiny": (16, 2, 1, [(16, 24), (24, 32)], 16, 8),
}


def set_precision(precision: str) -> contextlib.AbstractContextManager:
    """TF32 on only for ``tf32``; bf16 autocast for ``bf16``; the context to run in."""
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    if precision == "bf16":
        return torch.autocast(DEVICE.type, torch.bfloat16)
    return contextlib.nullcontext()


DEVICE = torch.device("cpu")


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def reset_peak() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float | None:
    """Peak GPU memory allocated since :func:`reset_peak` (None on CPU)."""
    return torch.cuda.max_memory_allocated() / 2**30 if DEVICE.type == "cuda" else None


def training_batch(patch: int, batch: int, tiny: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` patches of the embedded light training set (rainy, clean), on the device."""

    ds = embedded_dataset("light", "train", "smoke" if tiny else "quick")
    ps = PatchSet(ds, patch, stride=patch, hflip=True)
    pairs = [ps[i % len(ps)] for i in range(batch)]
    return tuple(torch.stack([p[k] for p in pairs]).to(DEVICE) for k in (0, 1))


def train_step_fn(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Callable
) -> Callable[[], float]:
    """One Adam step of the paper's configuration (lr 2e-4, betas (0, 0.999), -SSIM)."""

    opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.0, 0.999))

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with ctx():
            outs = model(x)
        loss = stage_loss([o.float() for o in outs], y, "ssim")
        loss.backward()
        opt.step()
        return loss.item()

    return step


def train_speed(
    precision: str, channels_last: bool, size: tuple, tiny: bool, compiled: bool = False
) -> dict:
    """Patches/s of SIAN full training steps and the peak GPU memory."""

    patch, batch, steps, _, _, channels = size
    torch.manual_seed(0)
    model = build_model("sian", channels=channels).to(DEVICE).train()
    x, y = training_batch(patch, batch, tiny)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    net = torch.compile(model) if compiled else model
    step = train_step_fn(net, x, y, lambda: set_precision(precision))
    reset_peak()
    t = time.perf_counter()
    step()  # warm-up (and compilation)
    sync()
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync()
    secs = time.perf_counter() - t
    return {
        "patches_per_s": batch * steps / secs,
        "first_step_s": first,
        "peak_gib": peak_gib(),
        "loss": loss,
    }


def compiled_speed(precision: str, args: argparse.Namespace, limit: float) -> dict:
    """:func:`train_speed` with ``torch.compile``, in a child process stopped after
    ``limit`` seconds (compilation included)."""
    cmd = [sys.executable, "-m", "benchmarks.gpu_check", "--compile-worker", precision,
           "--device", args.device, "--out", str(args.out)]  # fmt: skip
    cmd += ["--tiny"] if args.tiny else []
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=ROOT, timeout=limit, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"did not compile and run within {limit:.0f} s"}
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def inference_speed(precision: str, hw: tuple[int, int], channels: int) -> dict:
    """Seconds and peak memory of one whole-image (untiled) SIAN full forward."""

    torch.manual_seed(0)
    model = build_model("sian", channels=channels).to(DEVICE).eval()
    x = torch.rand(1, 3, *hw, device=DEVICE)
    try:
        with torch.inference_mode(), set_precision(precision):
            model(x[..., :64, :64])  # warm-up
            reset_peak()
            sync()
            t = time.perf_counter()
            model(x)
            sync()
            return {"s": time.perf_counter() - t, "peak_gib": peak_gib()}
    except torch.OutOfMemoryError:
        return {"error": "out of memory"}


def sample_scores(precision: str, crop: int | None, shared: Path) -> dict:
    """PSNR of the released Rain100L weights on the sample pairs on the device."""

    model = load_model(shared / "weights" / "sian_rain100l.pth", "sian").model.to(DEVICE).eval()
    out = {}
    sample = shared / "data" / "rain100l_sample"
    for rainy in sorted((sample / "rainy").glob("*.png")):
        img = read_image(rainy)
        gt = read_image(sample / "norain" / rainy.name.replace("rain-", "norain-"))
        if crop:
            img, gt = img[:crop, :crop], gt[:crop, :crop]
        if precision == "tf32":  # predict() itself keeps fp32 exact (TF32 off): bypass it
            with torch.inference_mode(), set_precision("tf32"):
                pred = tiled_forward(model, to_tensor(img, DEVICE), None)
            pred = pred[0].permute(1, 2, 0).cpu().numpy()
        else:
            pred = predict(model, img, precision=precision)
        out[rainy.name] = score_pair(quantize(pred), quantize(gt))[0]
    return out


def reference_scores(crop: int | None, shared: Path) -> dict:
    """The CPU fp32 reference PSNR per sample: the shared reference values for whole
    images; computed here on the CPU for crops."""
    if crop is None:
        ref = json.loads((shared / "weights" / "reference" / "reference.json").read_text())
        return {k: v["sian_rain100l"]["psnr"] for k, v in ref["per_image"].items()}
    global DEVICE
    device, DEVICE = DEVICE, torch.device("cpu")
    try:
        return sample_scores("fp32", crop, shared)
    finally:
        DEVICE = device


def determinism(size: tuple, tiny: bool, steps: int = 5) -> dict:
    """Losses of ``steps`` seeded fp32 training steps, twice, deterministic algorithms on."""

    patch, batch = (size[0], 2 if tiny else 4)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    runs = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            torch.manual_seed(0)
            model = build_model("sian", channels=size[5]).to(DEVICE).train()
            x, y = training_batch(patch, batch, tiny)
            step = train_step_fn(model, x, y, lambda: set_precision("fp32"))
            runs.append([step() for _ in range(steps)])
    torch.use_deterministic_algorithms(False)
    nondet = sorted(
        {str(w.message).split(".")[0][:120] for w in caught if "determinis" in str(w.message)}
    )
    diff = max(abs(a - b) for a, b in zip(*runs, strict=True))
    return {
        "losses": runs,
        "identical": runs[0] == runs[1],
        "max_diff": diff,
        "nondeterministic_ops": nondet,
    }


class OnDemand(PatchSet):
    """The input pipeline as it was: each patch's image pair read and decoded when asked."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        k, y, x, flip = self.locate(i)
        pair = [a[:, ::-1] if flip else a for a in self.dataset.load(k)]
        p = [a[y : y + self.patch, x : x + self.patch].transpose(2, 0, 1) for a in pair]
        return tuple(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in p)


#: The library loop's settings: (label, input pipeline, overrides).
LOOP_SETTINGS = (
    ("old: decoded on demand, workers 0, TF32, no channels_last", "old",
     ["data.workers=0", "train.channels_last=false", "train.tf32=true"]),
    ("new: decoded once, workers auto, TF32 + channels_last (the CUDA default)", "new", []),
    ("new + bf16", "new", ["train.bf16=true"]),
)  # fmt: skip


def loop_speed(pipeline: str, overrides: list[str], size: tuple, tiny: bool, shared: Path) -> dict:
    """Patches/s of ``derain_lib.train.train`` itself (data loading, copies, logging
    included) on real-sized images: the Rain100L sample pairs (481x321) at the paper's
    patch, stride and flips (toy sizes: the embedded smoke set), after a few warm-up steps."""
    patch, batch, steps, _, _, channels = size
    warm = 1 if tiny else 5
    data = "embedded:light:train:smoke" if tiny else str(shared / "data" / "rain100l_sample")
    stride = patch if tiny else PAPER_STRIDES["rain100l"]
    cfg = load_config("smoke", [
        "model.name=sian", f"model.kwargs.channels={channels}", f"data.train={data}",
        f"data.patch={patch}", f"data.stride={stride}", "data.hflip=true",
        f"train.batch_size={batch}", "train.epochs=1000", f"train.max_steps={warm + steps * 4}",
        "train.val_images=0", "train.checkpoint_every=1000000", f"train.device={DEVICE}",
        *overrides,
    ])  # fmt: skip
    original = train_module.training_patches
    if pipeline == "old":
        d = cfg.data
        train_module.training_patches = lambda c, ds: OnDemand(ds, d.patch, d.stride, d.hflip)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            out = train_module.train(cfg, Path(tmp), progress=False)
            wall = time.perf_counter() - t
            with open(Path(tmp) / "log.csv") as f:
                rows = [r for r in csv.DictReader(f) if r["loss"]]
    finally:
        train_module.training_patches = original
    t0, t1 = float(rows[warm - 1]["elapsed_s"]), float(rows[-1]["elapsed_s"])
    return {
        "patches_per_s": (len(rows) - warm) * batch / max(t1 - t0, 1e-9),
        "steps": len(rows),
        "wall_s": wall,
        "setup": out["training_setup"],
        "loss": float(rows[-1]["loss"]),
    }


def cli_inference(weights: Path, test_set: Path, tiny: bool) -> dict:
    """The whole test set through the CLI path: ``derain evaluate --device`` in a fresh
    process (its wall time, start-up included, and the evaluation's own time)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "derain_lib.cli", "evaluate", "--weights", str(weights),
               "--data", str(test_set), "--device", str(DEVICE), "--results", tmp,
               "--no-progress", "--set", "eval.save_images=false"]  # fmt: skip
        cmd += ["--max-images", "1"] if tiny else []
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
        (run,) = (Path(tmp) / "runs").iterdir()
        prov = json.loads((run / "provenance.json").read_text())
        metrics = json.loads((run / "metrics.json").read_text())
    return {
        "test_set": str(test_set),
        "images": metrics["n"],
        "psnr": metrics["psnr"],
        "wall_s": wall,
        "eval_s": prov["eval_wall_s"],
        "device": prov["device"],
    }


#: Rain12600's images vary in size; the hours assume this (h, w) for each (an assumption).
RAIN1400_ASSUMED_HW = (384, 512)
#: The paper profile's tables: (title, methods, benchmarks, extra seeds only).
PROFILE_TABLES = (
    ("Table II (losses)", ("sian/neg-ssim", "sian/mae", "sian/mse"), ("rain100l", "rain100h")),
    ("Tables III-IV (benchmarks)", ("sian/neg-ssim",), ("rain100l", "rain100h", "rain1400")),
    ("Table V (ablation)", ("sian/neg-ssim", "sian-baseline/neg-ssim",
                            "sian-baseline+lstm/neg-ssim"), ("rain100l", "rain100h")),
)  # fmt: skip


def profile_patches(benchmark: str) -> int:
    """Training patches per epoch of the paper's full training set for ``benchmark``."""
    images, (h, w) = {"rain100l": (200, (321, 481)), "rain100h": (1800, (321, 481)),
                      "rain1400": (12600, RAIN1400_ASSUMED_HW)}[benchmark]  # fmt: skip
    n = images * count_patches(h, w, PAPER_PATCH, PAPER_STRIDES[benchmark])
    return n * (2 if PAPER_HFLIP[benchmark] else 1)


def profile_hours(patches_per_s: float, gpus: list[int]) -> dict:
    """Training wall time of the paper profile at ``patches_per_s`` per GPU: per table
    (its runs alone) and in all (every run once), on each GPU count in ``gpus``, the runs
    dealt out as ``torchrun`` does (:func:`derain_lib.study.training.deal`). Every model is
    costed at the same rate (the baselines are cheaper: an upper bound); evaluation
    (~31 ms per Rain100L image on an H200) is left out."""
    from derain_lib.study.plan import Params
    from derain_lib.study.training import deal, main_plan, planned_runs, seed_plan

    p = Params("paper")
    hours = {}
    for _, cfg in planned_runs(p):
        steps = train_module.planned_steps(cfg, profile_patches(cfg.dataset))
        hours[canonical(cfg)] = steps * cfg.train.batch_size / patches_per_s / 3600
    first = [c for _, _, _, c in main_plan(p)]
    groups: dict[str, list[str]] = {}
    main = main_plan(p)
    for title, methods, benchmarks in PROFILE_TABLES:
        groups[title] = [canonical(c) for b, _, m, c in main if m in methods and b in benchmarks]
    extra = {canonical(c) for *_, c in seed_plan(p)} - {canonical(c) for c in first}
    groups["claims: the extra seeds (08)"] = [k for k in hours if k in extra]
    groups["all (each run once)"] = list(hours)

    def wall(keys: list[str], n: int) -> float:
        owner = deal([hours[k] for k in keys], n)
        return max(sum(hours[k] for k, o in zip(keys, owner, strict=True) if o == r)
                   for r in range(n))  # fmt: skip

    return {
        "patches_per_s": patches_per_s,
        "rain1400_assumed_hw": list(RAIN1400_ASSUMED_HW),
        "runs": len(hours),
        "tables": {
            t: {str(n): wall(keys, n) for n in gpus} | {"runs": len(keys)}
            for t, keys in groups.items()
        },  # fmt: skip
    }


def canonical(cfg) -> str:  # noqa: ANN001
    return json.dumps(cfg.to_dict(), sort_keys=True)


def hours_table(h: dict) -> str:
    gpus = [k for k in next(iter(h["tables"].values())) if k != "runs"]
    lines = [f"At {h['patches_per_s']:.1f} patches/s per GPU; {h['runs']} training runs; "
             f"Rain12600 images assumed {h['rain1400_assumed_hw'][1]}x"
             f"{h['rain1400_assumed_hw'][0]}; every model at the same rate (an upper bound).",
             "", "| what | runs | " + " | ".join(f"{n} GPU{'s' * (n != '1')} (h)" for n in gpus)
             + " |", "|---|---|" + "---|" * len(gpus)]  # fmt: skip
    for title, row in h["tables"].items():
        cells = " | ".join(f"{row[n]:.1f}" for n in gpus)
        lines.append(f"| {title} | {row['runs']} | {cells} |")
    return "\n".join(lines) + "\n"


def paper_hours(patches_per_s: float) -> dict:
    """Hours of training per table of the paper profile at ``patches_per_s``: patches per
    model = epochs x patches per epoch (``count_patches`` at the paper's strides, flips);
    Table II and V train 3 models on each of Rain100L/H (the full model counted in each),
    Tables III/IV one on each of Rain100L/H (Rain1400's image sizes vary: not counted)."""

    per_model = {}
    for name, images, epochs in (("rain100l", 200, 100), ("rain100h", 1800, 100)):
        n = count_patches(321, 481, PAPER_PATCH, PAPER_STRIDES[name]) * images
        per_model[name] = n * (2 if PAPER_HFLIP[name] else 1) * epochs
    both = sum(per_model.values())
    hours = {k: v / patches_per_s / 3600 for k, v in per_model.items()}
    return {
        "patches_per_model": per_model,
        "hours_per_model": hours,
        "table_II_h": 3 * both / patches_per_s / 3600,
        "table_V_h": 3 * both / patches_per_s / 3600,
        "tables_III_IV_h (without Rain1400)": both / patches_per_s / 3600,
    }


def fmt(v: object, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec) if isinstance(v, float) else str(v)


def report(r: dict) -> str:
    lines = [
        "# GPU check",
        "",
        f"Command: `{r['command']}`  ",
        f"Date: {r['date']}; device: {r['device_name']}; torch {r['torch']}, "
        f"Python {r['python']}; {'toy sizes (--tiny)' if r['tiny'] else 'paper sizes'}; "
        f"took {r['elapsed_s']:.0f} s",
        "",
        "## Training, SIAN full, paper configuration "
        f"({r['patch']}x{r['patch']}, batch {r['batch']}, Adam, -SSIM), embedded patches",
        "",
        "| precision | channels_last | compiled | patches/s | first step (s) "
        "| peak GPU memory (GiB) |",
        "|---|---|---|---|---|---|",
    ]
    for key, t in r["train"].items():
        prec, cl, comp = key.split("/")
        if "error" in t:
            lines.append(f"| {prec} | {cl} | {comp} | {t['error']} | | |")
        else:
            lines.append(
                f"| {prec} | {cl} | {comp} | {t['patches_per_s']:.2f} | "
                f"{t['first_step_s']:.1f} | {fmt(t['peak_gib'])} |"
            )
    lines += ["", "## Inference, whole image (no tiles)", "",
              "| precision | size | time (s) | peak GPU memory (GiB) |",
              "|---|---|---|---|"]  # fmt: skip
    for key, t in r["inference"].items():
        prec, hw = key.split("/")
        val = t["error"] if "error" in t else f"{t['s']:.3f} | {fmt(t['peak_gib'])}"
        lines.append(f"| {prec} | {hw} | {val} |" + (" |" if "error" in t else ""))
    s = r["samples"]
    lines += ["", "## Released Rain100L weights on the sample pairs", "",
              f"Reference: {s['reference_source']}. fp32 must agree within 0.01 dB.", "",
              "| image | reference | " + " | ".join(f"{p} (diff)" for p in PRECISIONS) + " |",
              "|---|---|" + "---|" * len(PRECISIONS)]  # fmt: skip
    for name, ref in s["reference"].items():
        cells = [f"{s[p][name]:.4f} ({s[p][name] - ref:+.4f})" for p in PRECISIONS]
        lines.append(f"| {name} | {ref:.4f} | " + " | ".join(cells) + " |")
    lines.append(f"\nfp32 within 0.01 dB of the reference: {s['fp32_within_0.01dB']}")
    d = r["determinism"]
    lines += ["", "## Determinism (5 seeded fp32 steps, twice, deterministic algorithms on)", "",
              f"- identical losses: {d['identical']}; largest difference {d['max_diff']:.3g}",
              "- ops without a deterministic implementation: "
              f"{', '.join(d['nondeterministic_ops']) or 'none'}"]  # fmt: skip
    p = r["paper_profile"]
    lines += ["", "## Paper profile, training time per table (from the measured patches/s)", "",
              f"At the fastest measured setting ({p['setting']}, {p['patches_per_s']:.2f} "
              f"patches/s): Rain100L model {p['hours_per_model']['rain100l']:.1f} h, Rain100H "
              f"model {p['hours_per_model']['rain100h']:.1f} h; Table II "
              f"{p['table_II_h']:.1f} h, Table V {p['table_V_h']:.1f} h, Tables III/IV "
              f"{p['tables_III_IV_h (without Rain1400)']:.1f} h without Rain1400 "
              "(the full model is shared between tables; baselines cost less)."]  # fmt: skip
    lines += ["", "## The library's training loop (`derain_lib.train.train`), real-sized images",
              "", f"{r['loop_data']}; patches/s after the warm-up steps; ratio: to the "
              "fixed-batch rate of the same precision with channels_last.", "",
              "| input pipeline and settings | patches/s | ratio to fixed batch | workers |",
              "|---|---|---|---|"]  # fmt: skip
    for label, t in r["loop"].items():
        if "error" in t:
            lines.append(f"| {label} | {t['error']} | | |")
            continue
        ratio = t.get("ratio_to_fixed_batch")
        lines.append(f"| {label} | {t['patches_per_s']:.2f} | {fmt(ratio)} | "
                     f"{t['setup']['workers']} |")  # fmt: skip
    c = r["cli_inference"]
    lines += ["", "## Whole test set through the CLI (`derain evaluate --device`)", ""]
    if "error" in c:
        lines.append(f"error: {c['error']}")
    else:
        lines.append(f"{c['images']} images of {c['test_set']} on {c['device']}: "
                     f"{c['eval_s']:.2f} s of evaluation, {c['wall_s']:.2f} s for the whole "
                     f"command (start-up included); mean PSNR {c['psnr']:.4f} dB")  # fmt: skip
    lines += ["", "## Paper profile on 1 and N GPUs (`--profile-hours`, from the best "
              "library-loop rate above)", "", hours_table(r["profile_hours"])]  # fmt: skip
    lines.append(f"\nNotebook modules imported: {r['notebook_modules_imported'] or 'none'}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    global DEVICE
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog=__doc__.splitlines()[-1]
    )
    ap.add_argument("--out", type=Path, required=True, help="folder for GPU_RESULTS.md + JSON")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--tiny", action="store_true", help="toy sizes (the CPU test)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile runs")
    ap.add_argument("--compile-limit", type=float, default=120.0, help="seconds per compile run")
    ap.add_argument("--compile-worker", choices=PRECISIONS, help=argparse.SUPPRESS)
    ap.add_argument("--test-set", type=Path, help="the CLI inference's test set (default: "
                    "the Rain100L sample pairs of DERAIN_SHARED)")  # fmt: skip
    ap.add_argument(
        "--profile-hours",
        action="store_true",
        help="print the paper profile's training hours per table for 1 and N GPUs "
        "and exit (rate: --rate, else --out/gpu_check.json's best loop rate)",
    )
    ap.add_argument("--rate", type=float, help="patches/s per GPU for --profile-hours")
    ap.add_argument("--gpus", type=int, nargs="+", default=[1, 2, 4, 8],
                    help="GPU counts for the hours (default 1 2 4 8)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.profile_hours:
        rate = args.rate
        if rate is None:
            saved = args.out / "gpu_check.json"
            if not saved.is_file():
                print(f"gpu_check: error: {saved}: no earlier run; pass --rate", file=sys.stderr)
                return 2
            loops = json.loads(saved.read_text())["loop"].values()
            rate = max(t["patches_per_s"] for t in loops if "patches_per_s" in t)
        print(hours_table(profile_hours(rate, args.gpus)))
        return 0

    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    size = SIZES["tiny" if args.tiny else "full"]
    if args.compile_worker:
        print(json.dumps(train_speed(args.compile_worker, False, size, args.tiny, compiled=True)))
        return 0
    shared = Path(os.environ.get("DERAIN_SHARED", ROOT.parent / "shared"))
    t0 = time.perf_counter()
    r: dict = {
        "command": "python3 -m benchmarks.gpu_check "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "device_name": torch.cuda.get_device_name(DEVICE)
        if DEVICE.type == "cuda"
        else platform.processor() or "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "tiny": args.tiny,
        "patch": size[0],
        "batch": size[1],
        "train": {},
        "inference": {},
    }  # fmt: skip
    try:
        for prec in PRECISIONS:
            for cl in (False, True):
                r["train"][f"{prec}/{cl}/False"] = train_speed(prec, cl, size, args.tiny)
                print(
                    f"train {prec} channels_last={cl}: {r['train'][f'{prec}/{cl}/False']}",
                    flush=True,
                )
            if args.no_compile or args.tiny:
                r["train"][f"{prec}/False/True"] = {"error": "not run (--tiny or --no-compile)"}
            else:
                r["train"][f"{prec}/False/True"] = compiled_speed(prec, args, args.compile_limit)
        for prec in PRECISIONS:
            for hw in size[3]:
                key = f"{prec}/{hw[1]}x{hw[0]}"
                r["inference"][key] = inference_speed(prec, hw, size[5])
                print(f"inference {key}: {r['inference'][key]}", flush=True)
        ref = reference_scores(size[4], shared)
        r["samples"] = {
            "reference": ref,
            "reference_source": "reference.json (CPU, official code)" if size[4] is None
            else f"this run's CPU fp32 on {size[4]}x{size[4]} crops",
            **{p: sample_scores(p, size[4], shared) for p in PRECISIONS},
        }  # fmt: skip
        r["samples"]["fp32_within_0.01dB"] = all(
            abs(r["samples"]["fp32"][k] - v) < 0.01 for k, v in ref.items()
        )
        print(f"samples: {r['samples']}", flush=True)
        r["determinism"] = determinism(size, args.tiny)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        r["loop_data"] = ("embedded smoke set, toy sizes" if args.tiny else
                          "the 4 Rain100L sample pairs (481x321), 120x120 patches at stride 40 "
                          "with flips, batch 18, SIAN full")  # fmt: skip
        r["loop"] = {}
        for label, pipeline, overrides in LOOP_SETTINGS:
            t = loop_speed(pipeline, overrides, size, args.tiny, shared)
            prec = "bf16" if t["setup"]["bf16"] else "tf32" if t["setup"]["tf32"] else "fp32"
            fixed = r["train"].get(f"{prec}/True/False", {}).get("patches_per_s")
            t["ratio_to_fixed_batch"] = t["patches_per_s"] / fixed if fixed else None
            r["loop"][label] = t
            print(f"loop {label}: {t}", flush=True)
        test_set = args.test_set or shared / "data" / "rain100l_sample"
        r["cli_inference"] = cli_inference(shared / "weights" / "sian_rain100l.pth", test_set,
                                           args.tiny)  # fmt: skip
        print(f"cli inference: {r['cli_inference']}", flush=True)
    except DerainError as e:
        print(f"gpu_check: error: {e}", file=sys.stderr)
        return 2
    best_key, best = max(
        ((k, v) for k, v in r["train"].items() if "patches_per_s" in v),
        key=lambda kv: kv[1]["patches_per_s"],
    )
    r["paper_profile"] = {"setting": best_key, "patches_per_s": best["patches_per_s"],
                          **paper_hours(best["patches_per_s"])}  # fmt: skip
    loop_rate = max(t["patches_per_s"] for t in r["loop"].values())
    r["profile_hours"] = profile_hours(loop_rate, args.gpus)
    r["notebook_modules_imported"] = [m for m in NOTEBOOK_MODULES if m in sys.modules]
    r["elapsed_s"] = time.perf_counter() - t0

    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "gpu_check.json", json.dumps(r, indent=1))
    atomic_write_text(args.out / "GPU_RESULTS.md", report(r))
    print(report(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
