"""The claims' statistics (docs/evidence.md): one interval for the two noises that move a
mean paired difference ``d[seed, image]``, the training seed and the sample of test scenes,
and the power to see an effect. Why Student-t rather than a percentile or BCa bootstrap:
over 3 seeds the percentile interval is far too narrow and BCa's jackknife needs more than
3 values; ``tests/test_stats.py`` checks the coverage on simulated crossed data."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Confidence level of every interval, and the power at which the MDE is given.
LEVEL = 0.95
POWER = 0.80
RESAMPLES = 4000
SEED = 0
#: Where the seed part is at least this share of the variance, the degrees of freedom are
#: the seeds' (n - 1), not Satterthwaite's (which undercovers, 92.9 % in 2,000 simulations
#: of 3 seeds, because it grows exactly when 3 seeds happen to agree).
SEED_SHARE = 0.25


def mde(se: float, df: float = math.inf, level: float = LEVEL, power: float = POWER) -> float:
    """Minimum detectable effect, ``(t_{1-alpha/2, df} + t_{power, df}) * se``: the true
    difference a two-sided test at ``1 - level`` finds with probability ``power`` (``df``
    infinite: normal quantiles)."""
    if se < 0 or not 0 < power < 1 or not 0 < level < 1:
        raise ValueError(f"bad arguments: se={se}, level={level}, power={power}")
    dist = stats.norm if math.isinf(df) else stats.t(df)
    return float((dist.ppf(0.5 + level / 2) + dist.ppf(power)) * se)


@dataclass(frozen=True)
class Interval:
    """Mean paired difference, its 95 % interval, standard error and degrees of freedom, over
    ``seeds`` seeds and ``images`` images of ``scenes`` scenes."""

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
    d: np.ndarray,
    scenes: list[str] | None = None,
    seed: int = SEED,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Interval:
    """The mean of ``d`` (seeds, images) with a 95 % interval from a seeded two-level
    bootstrap: seeds resampled (every image kept), then scenes (one draw shared by every
    seed; ``scenes`` labels each image, None: every image its own), each part's variance
    corrected for the ``(n-1)/n`` shrinkage and the two added; Student-t with
    Satterthwaite's degrees of freedom, or the seeds' ``n - 1`` (:data:`SEED_SHARE`)."""
    d = np.atleast_2d(np.asarray(d, float))
    n_seeds, n_images = d.shape
    if n_images < 1 or not np.isfinite(d).all():
        raise ValueError(f"paired differences must be finite with images, got shape {d.shape}")
    if scenes is not None and len(scenes) != n_images:
        raise ValueError(f"{len(scenes)} scene labels for {n_images} images")
    labels = np.arange(n_images) if scenes is None else np.asarray(scenes, dtype=str)
    _, idx = np.unique(labels, return_inverse=True)
    n_scenes = int(idx.max()) + 1
    totals = np.zeros((n_seeds, n_scenes))  # per seed and scene: sum of d
    np.add.at(totals, (slice(None), idx), d)
    counts = np.bincount(idx, minlength=n_scenes).astype(float)
    mean = float(d.mean())
    rng = np.random.default_rng(seed)

    def weights(n: int) -> np.ndarray:  # how often each unit is drawn, per resample
        return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(float)

    var_seeds = var_scenes = 0.0
    if n_seeds >= 2:
        boot = weights(n_seeds) @ d.mean(axis=1) / n_seeds
        var_seeds = float(boot.var()) * n_seeds / (n_seeds - 1)
    if n_scenes >= 2:
        w = weights(n_scenes)
        boot = (w @ totals.sum(axis=0)) / (w @ counts) / n_seeds
        var_scenes = float(boot.var()) * n_scenes / (n_scenes - 1)
    var = var_seeds + var_scenes
    se = math.sqrt(var)
    parts = [(var_seeds, n_seeds - 1), (var_scenes, n_scenes - 1)]
    denom = sum(v * v / k for v, k in parts if k > 0 and v > 0)
    df = var * var / denom if denom > 0 else math.inf
    if n_seeds >= 2 and var_seeds >= SEED_SHARE * var:
        df = n_seeds - 1.0
    if se == 0:
        lo = hi = mean
        if n_seeds < 2 and n_scenes < 2:  # one value: nothing is known of its spread
            lo, hi, se, df = -math.inf, math.inf, math.inf, 0.0
    else:
        half = float(stats.t.ppf(0.5 + level / 2, df)) * se
        lo, hi = mean - half, mean + half
    return Interval(mean, lo, hi, se, df, n_seeds, n_images, n_scenes)
