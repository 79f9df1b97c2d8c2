"""The claims' statistics (docs/evidence.md): one interval for the two noises of a mean paired
difference ``d[seed, image]``, training seed and test scene (Student-t: over 3 seeds a
percentile bootstrap is far too narrow), and the power to see an effect."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Confidence level of every interval, and the power at which the MDE is given.
LEVEL, POWER = 0.95, 0.80
#: Bootstrap resamples and their seed (every interval is reproducible).
RESAMPLES, SEED = 4000, 0
#: Where the seed part is at least this share of the variance, the degrees of freedom are the
#: seeds' (n - 1): Satterthwaite's undercover (92.9 % in 2,000 simulations of 3 seeds).
SEED_SHARE = 0.25


def mde(se: float, df: float = math.inf) -> float:
    """Minimum detectable effect: the true difference a two-sided test at 1 - :data:`LEVEL`
    finds with probability :data:`POWER` (``df`` infinite: normal quantiles)."""
    if se < 0:
        raise ValueError(f"a standard error is not negative: {se}")
    dist = stats.norm if math.isinf(df) else stats.t(df)
    return float((dist.ppf(0.5 + LEVEL / 2) + dist.ppf(POWER)) * se)


@dataclass(frozen=True)
class Interval:
    """A mean paired difference with its 95 % interval, standard error and degrees of freedom."""

    mean: float
    lo: float
    hi: float
    se: float
    df: float
    seeds: int
    images: int
    scenes: int

    @property
    def mde(self) -> float:
        """Minimum detectable effect at :data:`POWER` for this estimate."""
        return mde(self.se, self.df)


def hierarchical_interval(
    d: np.ndarray, scenes: list[str] | None = None, seed: int = SEED, resamples: int = RESAMPLES
) -> Interval:
    """The mean of ``d`` (seeds, images) with a 95 % interval: seeds and scenes (``scenes``
    labels each image) bootstrapped, the two variances added; Student-t (:data:`SEED_SHARE`)."""
    d = np.atleast_2d(np.asarray(d, float))
    n_seeds, n_images = d.shape
    if n_images < 1 or not np.isfinite(d).all():
        raise ValueError(f"paired differences must be finite with images, got shape {d.shape}")
    labels = np.arange(n_images) if scenes is None else np.asarray(scenes, dtype=str)
    _, idx = np.unique(labels, return_inverse=True)
    n_scenes = int(idx.max()) + 1
    totals = np.zeros((n_seeds, n_scenes))  # per seed and scene: sum of d
    np.add.at(totals, (slice(None), idx), d)
    counts = np.bincount(idx, minlength=n_scenes).astype(float)
    mean = float(d.mean())
    if n_seeds < 2 and n_scenes < 2:  # one value: nothing is known of its spread
        return Interval(mean, -math.inf, math.inf, math.inf, 0.0, n_seeds, n_images, n_scenes)
    rng = np.random.default_rng(seed)

    def var(n: int, value) -> float:  # bootstrap variance over n units, corrected by n/(n-1)
        if n < 2:
            return 0.0
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(float)
        return float(value(w).var()) * n / (n - 1)

    var_seeds = var(n_seeds, lambda w: w @ d.mean(axis=1) / n_seeds)
    var_scenes = var(n_scenes, lambda w: (w @ totals.sum(axis=0)) / (w @ counts) / n_seeds)
    total = var_seeds + var_scenes
    se = math.sqrt(total)
    parts = [(var_seeds, n_seeds - 1), (var_scenes, n_scenes - 1)]
    denom = sum(v * v / k for v, k in parts if k > 0 and v > 0)
    df = total * total / denom if denom > 0 else math.inf
    if n_seeds >= 2 and var_seeds >= SEED_SHARE * total:
        df = n_seeds - 1.0
    half = float(stats.t.ppf(0.5 + LEVEL / 2, df)) * se
    return Interval(mean, mean - half, mean + half, se, df, n_seeds, n_images, n_scenes)
