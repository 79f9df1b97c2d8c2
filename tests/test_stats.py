"""The claims' statistics: MDE and power against closed forms, and the hierarchical
bootstrap's coverage on simulated crossed (seed x scene) data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from derain_lib.study.stats import hierarchical_interval, mde


def test_mde_and_power_match_the_closed_form():
    # normal case: (z_0.975 + z_0.80) * se = (1.959964 + 0.841621) * se
    assert mde(1.0) == pytest.approx(2.801585, abs=1e-6)
    assert mde(0.25) == pytest.approx(0.25 * 2.801585, abs=1e-6)
    # a true difference of one MDE is found with 80 % power (normal estimate, z critical value)
    crit = sps.norm.ppf(0.975)
    assert sps.norm.sf(crit - mde(1.0)) + sps.norm.cdf(-crit - mde(1.0)) == pytest.approx(
        0.80, abs=1e-4
    )
    # t case, df = 4: t_0.975 = 2.776445, t_0.80 = 0.940965
    assert mde(1.0, df=4) == pytest.approx(2.776445 + 0.940965, abs=1e-5)
    assert mde(2.0, df=4) == pytest.approx(2 * mde(1.0, df=4))
    with pytest.raises(ValueError):
        mde(-1.0)


def test_one_released_model_interval_is_the_t_interval_over_scenes():
    rng = np.random.default_rng(3)
    d = rng.normal(0.4, 1.0, (1, 30))
    iv = hierarchical_interval(d, resamples=20000)
    se = d.std(ddof=1) / math.sqrt(30)
    assert iv.mean == pytest.approx(d.mean())
    assert iv.df == pytest.approx(29)
    assert iv.se == pytest.approx(se, rel=0.03)  # bootstrap variance, corrected by n/(n-1)
    half = sps.t.ppf(0.975, 29) * iv.se
    assert (iv.lo, iv.hi) == pytest.approx((d.mean() - half, d.mean() + half))
    assert iv.mde == pytest.approx(mde(iv.se, 29))


def test_duplicate_images_count_once_as_a_scene():
    rng = np.random.default_rng(4)
    base = rng.normal(0, 1, 10)
    d = np.concatenate([base, base[:5]])[None, :]  # 5 images are repeats of 5 scenes
    scenes = [f"s{i}" for i in range(10)] + [f"s{i}" for i in range(5)]
    iv = hierarchical_interval(d, scenes)
    assert iv.scenes == 10 and iv.images == 15 and iv.df == pytest.approx(9)
    naive = hierarchical_interval(d)
    assert naive.scenes == 15 and naive.hi - naive.lo < iv.hi - iv.lo


def _simulate(rng, seeds, scenes, sd_seed, sd_scene, sd_noise, true=0.5):
    labels = np.repeat(np.arange(scenes), rng.integers(1, 3, scenes))
    d = (
        true
        + rng.normal(0, sd_seed, (seeds, 1))
        + rng.normal(0, sd_scene, scenes)[labels][None, :]
        + rng.normal(0, sd_noise, (seeds, labels.size))
    )
    return d, [str(s) for s in labels]


@pytest.mark.parametrize(
    "design",
    [
        (3, 30, 1.0, 0.3, 0.5),  # the seed noise dominates (trained here, 3 seeds)
        (3, 30, 0.1, 1.0, 0.5),  # the scene noise dominates
        (3, 30, 0.25, 0.6, 0.5),  # both
        (1, 60, 0.0, 1.0, 0.3),  # released weights: one model, scenes only (Rain100L: 91)
    ],
)
def test_coverage_on_simulated_nested_data(design):
    rng = np.random.default_rng(2020)
    covered = 0
    for k in range(200):
        d, labels = _simulate(rng, *design)
        iv = hierarchical_interval(d, labels, seed=k, resamples=1000)
        covered += iv.lo <= 0.5 <= iv.hi
    assert covered / 200 >= 0.93, covered


def test_a_percentile_bootstrap_over_three_seeds_undercovers():
    """What the t quantile is for: the same data, a percentile interval of the seed means."""
    rng = np.random.default_rng(2020)
    covered = 0
    for _ in range(200):
        d, _labels = _simulate(rng, 3, 30, 1.0, 0.3, 0.5)
        per_seed = d.mean(axis=1)
        boot = rng.choice(per_seed, (2000, 3)).mean(axis=1)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        covered += lo <= 0.5 <= hi
    assert covered / 200 < 0.85
