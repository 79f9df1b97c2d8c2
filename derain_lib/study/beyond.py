"""Beyond the paper: what the released models do under more rain, where attention looks,
what they cost, and why published numbers disagree (chapter 07, issue 16).

Chapter 07's computing side. Every function takes models and images as arguments and
returns plain rows (dicts); the chapter saves them under ``results/<profile>/beyond/``
(:func:`derain_lib.study.paths.write_json`), :mod:`derain_lib.viz.beyond` draws from them
and :func:`derain_lib.study.findings.beyond` writes the findings from them:

* :func:`density_sweep`: the synthesiser's rain at :data:`DENSITY_LEVELS` (drizzle to
  heavier than Rain100H) on clean images, derained by each model; PSNR gain vs Input PSNR.
* :func:`attention_auc`: ROC-AUC of each stage's and scale's attention mask (and of the
  DoG response magnitude) as a detector of rain pixels (:func:`roc_auc`, Mann-Whitney).
* :func:`generalisation`: every model on every test set (PSNR/SSIM, MATLAB protocol).
* :func:`cost_table`: parameters, GFLOP per megapixel, CPU seconds and peak memory,
  each model measured in a fresh process (:func:`measure_cost`); :func:`cached_cost_table`
  reuses a saved measurement while what determines it (:func:`cost_key`) is unchanged, so
  a re-run rewrites no file.
* :func:`protocol_table`: the same outputs scored under the protocols in use
  (:data:`PROTOCOLS`, see docs/metrics.md).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..attention import compute_attention
from ..data.io import fit_size, read_image, write_png
from ..data.synth import PRESETS, RainPreset, add_rain, rain_streaks
from ..inference import predict
from ..metrics import psnr_y, quantize, rgb_to_y, score
from ..models import build_model, count_parameters
from ..precision import cpuinfo_field
from ..roots import PACKAGE_DIR
from ..runs import code_fingerprint
from ..tables import mean_by, not_run
from ..viz import upsample, view_map
from ..weights import find_released, load_model, missing_released
from .paths import write_json


def _scaled(base: str, name: str, density: float, haze: float | None = None) -> RainPreset:
    """Preset ``base`` renamed, with every layer's streak density times ``density``."""
    p = PRESETS[base]
    layers = tuple(replace(layer, density=layer.density * density) for layer in p.layers)
    return replace(p, name=name, layers=layers, haze=p.haze if haze is None else haze)


#: Rain intensities from drizzle to heavier than Rain100H, lightest first. Levels 2 and 5
#: are the presets the embedded Rain100L / Rain100H stand-ins are made with.
DENSITY_LEVELS: tuple[RainPreset, ...] = (
    _scaled("light", "drizzle", 0.3),
    _scaled("light", "light (Rain100L-like)", 1.0),
    _scaled("light", "moderate", 3.0),
    _scaled("heavy", "heavy / 2", 0.5, haze=0.15),
    _scaled("heavy", "heavy (Rain100H-like)", 1.0),
    _scaled("heavy", "storm", 2.0, haze=0.45),
)
#: Synthetic rain pixels: streak layer above this (the layer is in [0, 1]).
TAU_STREAK = 0.1
#: Real rain pixels: Y(rainy) - Y(clean) above this (MATLAB Y, 16..235 scale).
TAU_Y = 10.0
#: Models of the cost table (built untrained: cost does not depend on the weights).
COST_MODELS = ("sian", "sian-baseline+lstm", "sian-baseline", "prenet")
#: The code (under ``derain_lib/``) the cost table depends on: the models, this module's
#: measurement, and the thread and allocator settings the measuring process runs with.
COST_SOURCES = ("models", "study/beyond.py", "threads.py", "allocator.py")


@dataclass(frozen=True)
class BeyondSize:
    """How much of each experiment a profile runs (None: all there is)."""

    clean_per_set: int  # clean images per test set in the density sweep
    sweep_side: int | None  # their longer side after resizing (None: as they are)
    synthetic_images: int  # clean images rained for the synthetic attention AUC
    real_pairs: int | None  # real pairs for the real attention AUC
    test_images: int | None  # images per test set in the generalisation matrix
    test_crop: int | None  # their centre crop, at most this many pixels a side (None: whole)
    photos: int  # real photographs in the qualitative panel
    photo_side: int  # their longer side after resizing (pixels)
    cost_hw: tuple[int, int]  # (height, width) of the cost table's input


SIZES: dict[str, BeyondSize] = {
    "smoke": BeyondSize(1, 96, 1, 1, 1, 96, 1, 96, (64, 96)),
    "quick": BeyondSize(1, 240, 2, 4, 2, 240, 2, 240, (321, 481)),
    "paper": BeyondSize(8, None, 8, None, None, None, 6, 640, (321, 481)),
}


def beyond_size(profile: str) -> BeyondSize:
    """The sizes of ``profile`` (unknown profiles run the quick sizes)."""
    return SIZES.get(profile, SIZES["quick"])


# --- models ------------------------------------------------------------------------------


def released_models(
    names: Iterable[str], weights_dir: str | Path | None, device: str = "auto"
) -> tuple[dict[str, nn.Module], dict[str, str]]:
    """Released models found locally (no download), on ``device``, and a ``not run``
    reason for the rest.

    ``names`` are keys of :data:`derain_lib.weights.RELEASED` (``sian-rain100l`` ...)."""
    models, missing = {}, {}
    for name in names:
        path = find_released(name, weights_dir)
        if path is None:
            missing[name] = not_run(missing_released(name, weights_dir))
            continue
        models[name] = load_model(path, allow_download=False, device=device).model
    return models, missing


# --- 1. rain density ---------------------------------------------------------------------


def rainy_at(clean: np.ndarray, level: RainPreset, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rainy image, streak layer) of ``clean`` at one level: :func:`add_rain` and the exact
    streak layer it screens on (same preset and seed)."""
    return add_rain(clean, level, seed), rain_streaks(clean.shape[:2], level, seed)


def density_sweep(
    models: dict[str, nn.Module],
    cleans: list[tuple[str, np.ndarray]],
    levels: tuple[RainPreset, ...] = DENSITY_LEVELS,
    seed: int = 0,
) -> list[dict]:
    """Rain each clean image at every level, derain it with every model; one row per
    (image, level, model) with the Input PSNR/SSIM, the output's and the PSNR gain.

    Image ``i`` gets rain seed ``seed + i`` at every level (the same streak positions
    thicken as the density rises). ``models`` may be empty: rows for the input only."""
    rows = []
    for i, (name, clean) in enumerate(cleans):
        for j, level in enumerate(levels):
            rainy, _ = rainy_at(clean, level, seed + i)
            in_psnr, in_ssim = score(rainy, clean)
            base = {"image": name, "level": j, "level_name": level.name}
            rows.append(
                {
                    **base,
                    "model": "input",
                    "input_psnr": in_psnr,
                    "psnr": in_psnr,
                    "ssim": in_ssim,
                    "gain": 0.0,
                }
            )
            for m, model in models.items():
                p, s = score(predict(model, rainy), clean)
                rows.append(
                    {
                        **base,
                        "model": m,
                        "input_psnr": in_psnr,
                        "psnr": p,
                        "ssim": s,
                        "gain": p - in_psnr,
                    }
                )
    return rows


def density_findings(rows: list[dict]) -> str:
    """Sentences from the sweep's numbers: where each model's gain peaks and falls off, and
    whether the Rain100H models lose to the Rain100L ones on the lightest rain."""
    means = mean_by(rows, ("model", "level", "level_name"), ("input_psnr", "gain"))
    models = [m for m in dict.fromkeys(r["model"] for r in means) if m != "input"]
    if not models:
        return "No model ran, so there is no finding about the models."
    out = []
    for m in models:
        mine = sorted((r for r in means if r["model"] == m), key=lambda r: r["level"])
        best = max(mine, key=lambda r: r["gain"])
        worst = mine[-1]
        lost = [r for r in mine if r["gain"] <= 0]
        s = (
            f"{m}: largest gain {best['gain']:+.2f} dB at '{best['level_name']}' "
            f"(Input {best['input_psnr']:.2f} dB)"
        )
        if worst is not best:
            s += (
                f"; {worst['gain']:+.2f} dB at the heaviest, '{worst['level_name']}' "
                f"(Input {worst['input_psnr']:.2f} dB)"
            )
        if lost:
            s += "; no gain or a loss at " + ", ".join(f"'{r['level_name']}'" for r in lost)
        out.append(s + ".")
    for fam in ("sian", "prenet"):
        lo = {r["level"]: r for r in means if r["model"] == f"{fam}-rain100l"}
        hi = {r["level"]: r for r in means if r["model"] == f"{fam}-rain100h"}
        if 0 in lo and 0 in hi:
            d = hi[0]["gain"] - lo[0]["gain"]
            verdict = "loses" if d < 0 else "does not lose"
            out.append(
                f"On '{lo[0]['level_name']}' the {fam} Rain100H model {verdict} against the "
                f"Rain100L one ({hi[0]['gain']:+.2f} vs {lo[0]['gain']:+.2f} dB gain)."
            )
    return " ".join(out)


# --- 2. does attention look at rain? -----------------------------------------------------


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC of ``scores`` as a detector of ``labels`` (bool), by the Mann-Whitney rank
    sum (ties count one half); NaN when one class is empty."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in size: {s.shape} vs {y.shape}")
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return math.nan
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def real_rain_mask(rainy: np.ndarray, clean: np.ndarray, tau: float = TAU_Y) -> np.ndarray:
    """Rain pixels of a real pair: Y(rainy) - Y(clean) > ``tau`` (MATLAB Y)."""
    return rgb_to_y(rainy) - rgb_to_y(clean) > tau


def attention_auc(model: nn.Module, image: np.ndarray, rain: np.ndarray) -> list[dict]:
    """AUC of every stage's and scale's attention mask (mean over channels) and DoG
    magnitude (mean |DoG| over layers and channels), upsampled with nearest, as detectors
    of the ``rain`` pixels (bool H x W) of ``image``; one row per (stage, scale, what)."""
    att = compute_attention(model, image)
    size = image.shape[:2]
    rows = []
    for stage in range(1, att.n_stages + 1):
        for sc in att.scales:
            maps = {
                "mask": view_map(att, stage, sc, "mask"),
                "dog": np.abs(att.dog[stage - 1][sc]).mean(axis=(0, 1)),
            }
            for what, m in maps.items():
                auc = roc_auc(upsample(m, size, "nearest"), rain)
                rows.append({"stage": stage, "scale": sc, "what": what, "auc": auc})
    return rows


def attention_findings(rows: list[dict]) -> str:
    """Sentences from the AUC table: best and worst (stage, scale) of the masks per
    source, how the DoG magnitude compares, masks that mark rain-free rather than rain
    pixels (AUC below 0.45), and where a mask is no better than chance."""
    out = []
    for src in dict.fromkeys(r["source"] for r in rows):
        means = mean_by(
            [r for r in rows if r["source"] == src], ("what", "stage", "scale"), ("auc",)
        )
        masks = [r for r in means if r["what"] == "mask"]
        dogs = [r for r in means if r["what"] == "dog"]
        if not masks:
            continue
        hi, lo = max(masks, key=lambda r: r["auc"]), min(masks, key=lambda r: r["auc"])
        s = (
            f"{src}: the attention masks' AUC ranges from {lo['auc']:.3f} (stage {lo['stage']}, "
            f"scale {lo['scale']}) to {hi['auc']:.3f} (stage {hi['stage']}, scale {hi['scale']})"
        )
        if dogs:
            s += (
                f"; the DoG magnitude alone reaches {max(r['auc'] for r in dogs):.3f} at best, "
                f"the masks' mean is {np.mean([r['auc'] for r in masks]):.3f}"
            )
        below = [r for r in masks if r["auc"] < 0.45]
        if below:
            worst = min(below, key=lambda r: r["auc"])
            s += (
                f". {len(below)} of {len(masks)} masks have an AUC below 0.45: they are lower on "
                f"rain pixels than elsewhere, so they mark rain-free pixels (1 - AUC up to "
                f"{1 - worst['auc']:.3f}), not rain"
            )
        chance = [r for r in masks if abs(r["auc"] - 0.5) < 0.05]
        if chance:
            where = ", ".join(f"stage {r['stage']} scale {r['scale']}" for r in chance)
            s += f". No better than chance (AUC within 0.05 of 0.5) at {where}"
        out.append(s + ".")
    return " ".join(out) or "No attention AUC was measured."


# --- 3. generalisation -------------------------------------------------------------------


@dataclass
class Outputs:
    """One model's float outputs on one test set, with the inputs and ground truths."""

    model: str
    test_set: str
    names: list[str]
    rainy: list[np.ndarray]
    clean: list[np.ndarray]
    derained: list[np.ndarray]


def centre_crop(image: np.ndarray, side: int | None) -> np.ndarray:
    """The centre of ``image``, at most ``side`` pixels high and wide (None: all of it)."""
    if side is None:
        return image
    h, w = image.shape[:2]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[y : y + side, x : x + side]


def generalisation(
    models: dict[str, nn.Module],
    test_sets: dict[str, object],
    max_images: int | None = None,
    crop: int | None = None,
) -> tuple[list[dict], list[Outputs]]:
    """Every model on every test set (``label -> PairedDataset``), first ``max_images``
    images, each pair cut to its :func:`centre_crop` of ``crop`` pixels (the quick
    profile's time budget): rows of mean PSNR/SSIM (MATLAB protocol), and the float
    outputs kept for the protocol table."""
    rows, kept = [], []
    for label, ds in test_sets.items():
        n = len(ds) if max_images is None else min(max_images, len(ds))
        pairs = [tuple(centre_crop(a, crop) for a in ds.load(i)) for i in range(n)]
        names = [Path(ds.pairs[i].name).name for i in range(n)]
        for m, model in models.items():
            outs = [predict(model, rainy) for rainy, _ in pairs]
            scores = [score(o, clean) for o, (_, clean) in zip(outs, pairs, strict=True)]
            rows.append(
                {
                    "model": m,
                    "test_set": label,
                    "n": n,
                    "crop": crop,
                    "psnr": float(np.mean([s[0] for s in scores])),
                    "ssim": float(np.mean([s[1] for s in scores])),
                }
            )
            kept.append(
                Outputs(m, label, names, [p[0] for p in pairs], [p[1] for p in pairs], outs)
            )
    return rows, kept


# --- 4. cost -----------------------------------------------------------------------------


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward of ``model`` on ``x`` as ``torch.utils.flop_counter`` counts
    them (convolutions and matrix products, 2 per multiply-add; elementwise ops are free)."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(x)
    return int(counter.get_total_flops())


def _peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM), MiB; Linux only, else NaN."""
    status = Path("/proc/self/status")
    if not status.is_file():
        return math.nan
    line = next(ln for ln in status.read_text().splitlines() if ln.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


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
    peak = _peak_rss_mib()
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


def cost_in_child(name: str, height: int, width: int) -> dict:
    """:func:`measure_cost` in a fresh Python process (own peak memory), with the chapter's
    settings: the same torch threads, OpenMP environment (:func:`derain_lib.threads.configure`)
    and allocator tuning (:func:`derain_lib.allocator.tune`)."""
    code = (
        "from derain_lib.allocator import tune\n"
        "from derain_lib.threads import configure\n"
        "configure()\n"
        "tune()\n"
        "import json, torch\n"
        f"torch.set_num_threads({torch.get_num_threads()})\n"
        "from derain_lib.study.beyond import measure_cost\n"
        f"print(json.dumps(measure_cost({name!r}, {height}, {width})))\n"
    )
    root = str(PACKAGE_DIR.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"model": name, "status": not_run(f"measurement failed: {err}")}
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "status": "ok"}


def cost_table(hw: tuple[int, int], names: tuple[str, ...] = COST_MODELS) -> list[dict]:
    """One :func:`cost_in_child` row per model, on a random image of ``hw`` (H, W)."""
    return [cost_in_child(n, *hw) for n in names]


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
    """The cost record saved at ``path`` when its :func:`cost_key` is this one's and every
    model was measured; else (or with ``remeasure``) :func:`cost_table` measured now and
    saved there. The record holds the ``key``, when it was ``measured`` (UTC) with the load
    average then, and the ``rows``: timings vary from run to run, so an unchanged
    measurement is reused rather than redone and rewritten."""
    key = cost_key(hw, names)
    if not remeasure and path.is_file():
        saved = json.loads(path.read_text())
        same = isinstance(saved, dict) and saved.get("key") == key and saved.get("rows")
        if same and all(r.get("status") == "ok" for r in saved["rows"]):
            return saved
    measured = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    record = {
        "key": key,
        "measured": measured,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "rows": cost_table(hw, names),
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


# --- 5. why numbers disagree -------------------------------------------------------------


def _rgb_matlab_window(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """PSNR and SSIM (Gaussian 11x11 window, mean over channels) on uint8 RGB."""
    a, b = quantize(pred).astype(np.float64), quantize(gt).astype(np.float64)
    ssim = structural_similarity(
        a,
        b,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        channel_axis=2,
    )
    return psnr_y(a, b), float(ssim)


def _skimage_defaults(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """``peak_signal_noise_ratio`` and ``structural_similarity`` with their defaults
    (7x7 uniform window, sample covariance) on uint8 RGB."""
    a, b = quantize(pred), quantize(gt)
    p = peak_signal_noise_ratio(b, a)
    return float(p), float(structural_similarity(b, a, channel_axis=2))


#: Scoring protocols in use, ours first: name -> (pred float/uint8 RGB, gt) -> (PSNR, SSIM).
PROTOCOLS: dict[str, Callable[[np.ndarray, np.ndarray], tuple[float, float]]] = {
    "MATLAB Y (ours)": score,
    "Y rounded to uint8": lambda p, g: score(p, g, y_round=True),
    "RGB": _rgb_matlab_window,
    "scikit-image defaults (RGB)": _skimage_defaults,
    "ssim.m 2009 auto-downsampling": lambda p, g: score(p, g, ssim_downsample=True),
    "outputs truncated, not rounded": lambda p, g: score(p, g, quantize_mode="truncate"),
}


def protocol_table(images: list[tuple[str, str, list[np.ndarray], list[np.ndarray]]]) -> list[dict]:
    """Mean PSNR/SSIM of each (test set, what was scored, predictions, ground truths)
    under every protocol of :data:`PROTOCOLS`."""
    rows = []
    for test_set, scored, preds, gts in images:
        for proto, fn in PROTOCOLS.items():
            vals = [fn(p, g) for p, g in zip(preds, gts, strict=True)]
            rows.append(
                {
                    "test_set": test_set,
                    "scored": scored,
                    "protocol": proto,
                    "n": len(vals),
                    "psnr": float(np.mean([v[0] for v in vals])),
                    "ssim": float(np.mean([v[1] for v in vals])),
                }
            )
    return rows


# --- chapter plumbing: inputs, derained photographs, time --------- ------------------


def clock() -> tuple[float, float]:
    """(wall, CPU) seconds now; CPU counts this process and its finished child processes,
    so it is what the work costs whatever else loads the machine."""
    t = os.times()
    return time.perf_counter(), t.user + t.system + t.children_user + t.children_system


def since(start: tuple[float, float]) -> dict[str, float]:
    """Wall and CPU seconds spent since ``start`` (a :func:`clock` reading)."""
    wall, cpu = clock()
    return {"wall_s": round(wall - start[0], 1), "cpu_s": round(cpu - start[1], 1)}


def clean_images(
    test_sets: dict[str, object], per_set: int, side: int | None = None
) -> list[tuple[str, np.ndarray]]:
    """(label, clean image) of the first ``per_set`` ground truths of each test set, each
    distinct image once (the embedded light and heavy sets share their ground truths),
    shrunk to ``side`` pixels on the longer side when given."""
    out, seen = [], set()
    for label, ds in test_sets.items():
        for i in range(min(per_set, len(ds))):
            clean = ds.load(i)[1]
            key = hashlib.sha256(np.ascontiguousarray(clean).tobytes()).hexdigest()
            if key not in seen:
                seen.add(key)
                out.append((f"{label}: {Path(ds.pairs[i].name).name}", fit_size(clean, side)))
    return out


def derain_photos(
    models: dict[str, nn.Module], photos: list[Path], side: int, out_dir: str | Path
) -> list[Path]:
    """Each photo shrunk to ``side`` pixels (longer side), saved as ``rainy/<stem>.png``
    and derained by every model as ``<model>/<stem>.png`` under ``out_dir``."""
    out_dir = Path(out_dir)
    written = []
    for p in photos:
        img = fit_size(read_image(p), side)
        written.append(write_png(out_dir / "rainy" / f"{p.stem}.png", quantize(img)))
        for m, model in models.items():
            out = quantize(predict(model, img))
            written.append(write_png(out_dir / m / f"{p.stem}.png", out))
    return written
