"""Section 1 of chapter 07: the released models under synthetic rain at six levels, drizzle to
heavier than Rain100H, the two "-like" levels calibrated on the real benchmarks' Input PSNR."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from torch import nn

from ...data.io import fit_size
from ...data.synth import PRESETS, RainPreset, add_rain, rain_streaks
from ...inference import predict
from ...metrics import rgb_to_y, score_pair
from ..plan import Params
from .common import beyond_size, chapter_sets, real_sets, scene_pairs

#: (name, preset, streak density factor, haze) of the levels, lightest first.
LEVELS: tuple[tuple[str, str, float, float | None], ...] = (
    ("drizzle", "light", 0.3, None),
    ("light (Rain100L-like)", "light", 1.0, None),
    ("moderate", "light", 3.0, None),
    ("heavy / 2", "heavy", 0.5, 0.15),
    ("heavy (Rain100H-like)", "heavy", 1.0, None),
    ("storm", "heavy", 2.0, 0.45),
)
#: Which benchmark's real Input PSNR calibrates each preset.
CALIBRATED_BY = {"light": "rain100l", "heavy": "rain100h"}
#: An output whose mean MATLAB Y moved further from the clean image's than the input's by
#: more than this (16..235 scale) has a global tone shift: its PSNR change is not only rain.
TONE_SHIFT_Y = 3.0
#: (name, clean image) pairs the sweep rains on.
Cleans = list[tuple[str, np.ndarray]]


def scaled(base: str, name: str, density: float, haze: float | None = None) -> RainPreset:
    """Preset ``base`` renamed, with every layer's streak density times ``density``."""
    p = PRESETS[base]
    layers = tuple(replace(layer, density=layer.density * density) for layer in p.layers)
    return replace(p, name=name, layers=layers, haze=p.haze if haze is None else haze)


def levels(factors: dict[str, float] | None = None) -> tuple[RainPreset, ...]:
    """The six levels, each preset's densities times ``factors[preset]`` (default 1)."""
    f = factors or {}
    return tuple(scaled(b, n, d * f.get(b, 1.0), h) for n, b, d, h in LEVELS)


#: The levels uncalibrated (the presets the embedded stand-ins are made with).
DENSITY_LEVELS: tuple[RainPreset, ...] = levels()


def rainy_at(clean: np.ndarray, level: RainPreset, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rainy image, the exact streak layer it was screened with) of ``clean`` at ``level``."""
    return add_rain(clean, level, seed), rain_streaks(clean.shape[:2], level, seed)


def input_psnr(cleans: Cleans, level: RainPreset) -> float:
    """Mean Input PSNR of ``cleans`` rained at ``level`` (image ``i`` with seed ``i``)."""
    psnr = [score_pair(add_rain(c, level, i), c)[0] for i, (_, c) in enumerate(cleans)]
    return float(np.mean(psnr))


def calibrate(cleans: Cleans, base: str, target_psnr: float) -> tuple[float, float]:
    """(density factor, Input PSNR it gives) of ``base`` closest to ``target_psnr`` (seven
    bisection steps on the factor's logarithm, 0.1 to 10)."""
    lo, hi = math.log(0.1), math.log(10.0)
    best = (1.0, input_psnr(cleans, scaled(base, base, 1.0)))
    for _ in range(7):
        mid = (lo + hi) / 2
        got = input_psnr(cleans, scaled(base, base, math.exp(mid)))
        if abs(got - target_psnr) < abs(best[1] - target_psnr):
            best = (math.exp(mid), got)
        lo, hi = (mid, hi) if got > target_psnr else (lo, mid)
    return best


def tone_shift(out: np.ndarray, clean: np.ndarray) -> float:
    """Mean MATLAB Y of ``out`` minus that of ``clean`` (16..235 scale)."""
    return float(rgb_to_y(out).mean() - rgb_to_y(clean).mean())


def density_sweep(
    models: dict[str, nn.Module], cleans: Cleans, levels: tuple[RainPreset, ...] = DENSITY_LEVELS
) -> list[dict]:
    """One row per (image, level, model or ``input``): PSNR/SSIM, gain, tone shift and whether
    it is a shift; image ``i`` gets seed ``i`` at every level (its streaks thicken)."""
    rows = []
    for i, (name, clean) in enumerate(cleans):
        for j, level in enumerate(levels):
            rainy, _ = rainy_at(clean, level, i)
            in_psnr, in_ssim = score_pair(rainy, clean)
            in_shift = tone_shift(rainy, clean)
            base = {"image": name, "level": j, "level_name": level.name, "input_psnr": in_psnr}
            outs = {"input": rainy, **{m: predict(model, rainy) for m, model in models.items()}}
            for m, out in outs.items():
                p, s = (in_psnr, in_ssim) if m == "input" else score_pair(out, clean)
                shift = tone_shift(out, clean)
                shifted = m != "input" and abs(shift) > abs(in_shift) + TONE_SHIFT_Y
                rows.append(
                    {**base, "model": m, "psnr": p, "ssim": s, "gain": p - in_psnr,
                     "tone_shift": shift, "tone_shifted": bool(shifted)}
                )  # fmt: skip
    return rows


def sweep_images(
    p: Params, n: int | None, side: int | None
) -> list[tuple[str, str, np.ndarray, bool]]:
    """(label, scene, clean image, stand-in) of ``n`` scenes of the Rain100L/H ground truths."""
    sets = [(t, ds) for t, ds in chapter_sets(p) if t.benchmark in CALIBRATED_BY.values()]
    real = [s for s in sets if not s[0].stand_in]
    return [
        (f"{t.label}: {ds.pairs[i].name}", scene, fit_size(ds.load(i)[1], side), t.stand_in)
        for t, ds, i, scene in scene_pairs(real or sets, n, together=True)
    ]


def run(params: Params, models: dict[str, nn.Module]) -> dict:
    """The sweep with the Rain100L/H models: ``rows``, ``images``, ``scenes``, ``calibration``."""
    size = beyond_size(params.profile)
    picked = sweep_images(params, size.sweep_images, size.sweep_side)
    cleans = [(name, img) for name, _, img, _ in picked]
    calibration, factors = {}, {}
    for base, bench in CALIBRATED_BY.items():
        calibration[base] = {"benchmark": bench, "real_input_psnr": None, "factor": 1.0}
        if cleans and (real := real_sets(params, bench)):
            t, ds = max(real, key=lambda s: len(s[1]))
            target = float(np.mean([score_pair(*ds.load(i))[0] for i in range(len(ds))]))
            factors[base], got = calibrate(cleans, base, target)
            calibration[base] |= {"real_input_psnr": target, "real_images": len(ds),
                                  "real_test_set": t.label, "factor": factors[base],
                                  "synthetic_input_psnr": got}  # fmt: skip
    sweep = {m: v for m, v in models.items() if m.endswith(("rain100l", "rain100h"))}
    rows = density_sweep(sweep, cleans, levels(factors))
    facts = {name: (scene, stand_in) for name, scene, _, stand_in in picked}
    for r in rows:
        r["scene"], r["stand_in"] = facts[r["image"]]
    scenes = len({scene for _, scene, _, _ in picked})
    return {"rows": rows, "images": len(cleans), "scenes": scenes, "calibration": calibration}
