"""Seeded rain synthesiser, the recipe of the Rain100L/H and Rain1400 benchmarks: per layer,
sparse noise, motion blur, level clipping, screen blend; then haze. Presets: ``embedded.yaml``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

import numpy as np
import yaml
from scipy.ndimage import gaussian_filter
from scipy.signal import oaconvolve


@dataclass(frozen=True)
class RainLayer:
    """One family of streaks: how many, how long, which way, how bright."""

    density: float  # fraction of pixels seeding a streak
    length: int  # streak length in pixels (motion-blur kernel length)
    angle: float  # degrees from vertical, added to the image's random base angle
    level_low: float  # blurred seed values below this vanish (level clipping) ...
    level_high: float  # ... and above this saturate
    opacity: float  # peak streak brightness in the screen blend
    thickness: float = 0.6  # Gaussian sigma across the streak (pixels)


@dataclass(frozen=True)
class RainPreset:
    """Streak layers, the random range of the base angle, and haze (veiling light)."""

    name: str
    layers: tuple[RainLayer, ...]
    angle_range: float  # base angle drawn uniformly in [-angle_range, angle_range] degrees
    haze: float = 0.0  # blend weight of the atmospheric light
    haze_light: float = 0.85  # brightness of the atmospheric light


#: ``embedded.yaml``: the rain presets and the embedded set's recipe (:mod:`.embedded`).
SPEC = yaml.safe_load(resources.files(__package__).joinpath("embedded.yaml").read_text())
PRESETS: dict[str, RainPreset] = {
    name: RainPreset(name, tuple(RainLayer(**x) for x in p.pop("layers")), **p)
    for name, p in SPEC["presets"].items()
}


def get_preset(preset: str | RainPreset) -> RainPreset:
    """A preset by name (``light``, ``heavy``) or the preset given."""
    if isinstance(preset, RainPreset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown rain preset {preset!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[preset]


def line_kernel(length: int, angle: float) -> np.ndarray:
    """Motion-blur kernel: an anti-aliased line ``length`` px long, ``angle`` deg from vertical."""
    length = max(int(length), 1)
    size = length + 2 + (length % 2 == 0)
    k = np.zeros((size, size))
    c = size // 2
    t = np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * length)
    th = math.radians(angle)
    ys, xs = c - t * math.cos(th), c + t * math.sin(th)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    for dx, wx in ((0, 1 - fx), (1, fx)):  # bilinear weights of the four nearest pixels
        for dy, wy in ((0, 1 - fy), (1, fy)):
            np.add.at(k, (y0 + dy, x0 + dx), wy * wx)
    return k / k.sum()


def streak_layer(
    shape: tuple[int, int], layer: RainLayer, angle: float, rng: np.random.Generator
) -> np.ndarray:
    """One layer of streaks in [0, 1], (H, W): noise, motion blur, level clipping."""
    h, w = shape
    pad = layer.length  # streaks enter from outside the frame
    noise = rng.random((h + 2 * pad, w + 2 * pad))
    seeds = np.where(noise < layer.density, noise / layer.density, 0.0)  # sparse, in [0, 1)
    seeds = gaussian_filter(seeds, layer.thickness) * (2 * math.pi * layer.thickness**2)
    blurred = oaconvolve(seeds, line_kernel(layer.length, angle + layer.angle), mode="same")
    blurred *= layer.length  # a lone seed of amplitude a becomes a line of height ~a
    s = np.clip((blurred - layer.level_low) / (layer.level_high - layer.level_low), 0.0, 1.0)
    return s[pad : pad + h, pad : pad + w]


def rain_streaks(shape: tuple[int, int], preset: str | RainPreset, seed: int) -> np.ndarray:
    """The combined streak image (H, W) in [0, 1] a preset screens onto an image."""
    p = get_preset(preset)
    rng = np.random.default_rng(seed)
    base = rng.uniform(-p.angle_range, p.angle_range)
    total = np.zeros(shape)
    for layer in p.layers:
        s = layer.opacity * streak_layer(shape, layer, base, rng)
        total = 1.0 - (1.0 - total) * (1.0 - s)  # screen the layers together
    return total


def add_rain(clean: np.ndarray, preset: str | RainPreset = "light", seed: int = 0) -> np.ndarray:
    """A rainy version of ``clean`` (float HWC RGB in [0, 1]); the same seed, the same array."""
    img = np.asarray(clean, dtype=np.float64)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"add_rain takes an RGB image (H, W, 3), got shape {img.shape}")
    p = get_preset(preset)
    s = rain_streaks(img.shape[:2], p, seed)[..., None]
    out = 1.0 - (1.0 - img) * (1.0 - s)
    if p.haze:
        out = (1.0 - p.haze) * out + p.haze * p.haze_light
    return np.clip(out, 0.0, 1.0).astype(np.float32)
