"""The claims registry, the paired bootstrap and the verdicts, on constructed samples."""

from __future__ import annotations

import numpy as np
import pytest

from derain_lib.config import ConfigError, profile_seeds
from derain_lib.study import plan
from derain_lib.study.claims import (
    CLAIMS,
    Sample,
    judge,
    not_run_rows,
    paired_interval,
    render_claims_markdown,
    verdict,
    write_claims_csv,
)
from derain_lib.study.scoring import eval_settings
from derain_lib.viz.results import claims_forest

RNG = np.random.default_rng(42)


def _paired(diff: float, n: int = 60, seeds: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """b: per-image scores; a = b + diff + noise whose mean is exactly zero."""
    b = 30 + 3 * RNG.standard_normal((seeds, n))
    noise = RNG.standard_normal((seeds, n))
    noise -= noise.mean()
    return b + diff + noise, b


def _claim(trained: bool):
    return next(c for c in CLAIMS if c.trained == trained and c.benchmark == "rain100l")


def _sample(claim, method, psnr, stand_in=True, names=None):
    names = names or [f"{i:03d}.png" for i in range(psnr.shape[1])]
    return Sample(method, "set", names, psnr, psnr / 40, stand_in, claim.benchmark)


def test_registry_holds_every_claim_with_the_papers_numbers():
    assert len(CLAIMS) == 12
    assert {c.table for c in CLAIMS} == {"II", "III", "IV", "V"}
    assert len({c.id for c in CLAIMS}) == 12
    for c in CLAIMS:
        for metric in ("psnr", "ssim"):
            a, b = c.paper(metric)
            assert a >= b, (c.id, metric)  # the paper's direction: better >= worse
    t2 = next(c for c in CLAIMS if c.table == "II" and c.worse_row == "MAE")
    assert t2.paper("psnr") == (38.80, 38.54)
    assert not next(c for c in CLAIMS if c.table == "III").trained


def test_bootstrap_interval_contains_a_known_difference_and_verdicts_flip():
    a, b = _paired(0.5)
    iv = paired_interval(a, b)
    assert iv.mean == pytest.approx(0.5)
    assert iv.lo < 0.5 < iv.hi
    assert iv.lo > 0  # 60 images, noise sd 1: the interval excludes zero
    assert verdict(iv, +0.3) == "supported"
    assert verdict(iv, -0.3) == "contradicted"
    flipped = paired_interval(b, a)
    assert (flipped.lo, flipped.hi) == pytest.approx((-iv.hi, -iv.lo))
    assert verdict(flipped, +0.3) == "contradicted"
    assert verdict(flipped, -0.3) == "supported"
    same = paired_interval(*_paired(0.0))
    assert verdict(same, 0.3) == "inconclusive"
    assert paired_interval(a, b) == iv  # seeded: the same interval every time


def test_the_seed_spread_is_used_when_wider():
    a, b = _paired(0.5, seeds=2)
    a[1] += 2.0  # the second training run is 2 dB better: a large seed spread
    iv = paired_interval(a, b)
    assert iv.seeds == 2 and iv.seed_ci is not None
    assert iv.source == "seeds" and (iv.lo, iv.hi) == iv.seed_ci
    assert iv.hi - iv.lo > iv.image_ci[1] - iv.image_ci[0]


def test_one_seed_claim_on_trained_methods_is_refused():
    claim = _claim(trained=True)
    a, b = _paired(0.5, seeds=1)
    rows = judge(claim, _sample(claim, claim.better, a), _sample(claim, claim.worse, b))
    assert [r["verdict"][:8] for r in rows] == ["refused:", "refused:"]
    a2, b2 = _paired(0.5, seeds=2)
    rows = judge(claim, _sample(claim, claim.better, a2), _sample(claim, claim.worse, b2))
    assert all(r["seeds"] == 2 and not r["verdict"].startswith("refused") for r in rows)
    released = _claim(trained=False)  # released weights: one file, no seeds to ask for
    rows = judge(released, _sample(released, "x", a), _sample(released, "y", b))
    assert rows[0]["verdict"] == "supported" and rows[0]["seeds"] == "released"


def test_absolute_comparison_only_on_the_benchmark_itself():
    claim = _claim(trained=False)
    a, b = _paired(1.35, n=8)
    a += 37.45 + 1.35 - a.mean()  # ours at the paper's means
    b += 37.45 - b.mean()
    stand_in = judge(claim, _sample(claim, "x", a), _sample(claim, "y", b))
    assert stand_in[0]["absolute"].startswith("not comparable")
    real = judge(claim, _sample(claim, "x", a, False), _sample(claim, "y", b, False))
    assert "Ours 38.8 [" in real[0]["absolute"] and "matches" in real[0]["absolute"]
    assert "partial set, n=8 of 100" in real[0]["absolute"]


def test_images_are_paired_by_name():
    claim = _claim(trained=False)
    a, b = _paired(0.5, n=4)
    sa = _sample(claim, "x", a, names=["1", "2", "3", "4"])
    sb = _sample(claim, "y", b[:, ::-1], names=["4", "3", "2", "1"])
    assert judge(claim, sa, sb)[0]["diff"] == pytest.approx(0.5)


def test_not_run_rows_csv_markdown_and_forest(tmp_path):
    claim = _claim(trained=False)
    rows = not_run_rows(claim, "not run: released weights prenet_rain100l.pth not found")
    a, b = _paired(0.5, n=10)
    rows += judge(claim, _sample(claim, "x", a), _sample(claim, "y", b))
    assert rows[0]["verdict"].startswith("not run: released weights")
    path = write_claims_csv(rows, tmp_path / "claims.csv")
    assert path.read_text().count("\n") == 1 + len(rows)
    md = render_claims_markdown(rows, "smoke")
    assert "| III | Ours beats PReNet [17] (CVPR'19) on Rain100L |" in md
    assert "not run: released weights" in md and "supported" in md
    fig = claims_forest(rows)
    assert len(fig.axes) == 2
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len([t for t in labels if not t.startswith("— ")]) == 2  # measured and not run
    only = claims_forest(rows[:2])  # the not-run rows only: a labelled row with its reason
    assert any("released weights prenet_rain100l.pth" in t.get_text() for t in only.axes[0].texts)


def test_profiles_name_their_seeds(tmp_path):
    assert len(profile_seeds("quick")) == 3
    assert len(profile_seeds("paper")) == 3
    assert len(profile_seeds("smoke")) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: [0, x]\n")
    with pytest.raises(ConfigError, match="seeds must be a non-empty list"):
        profile_seeds(str(bad))


def test_released_weights_and_input_score_every_image_of_a_real_set():
    """quick caps the stand-ins and trained models at eval.max_images; on a real test set the
    released weights and the Input run on all its images (the benchmark's 100 when fetched)."""
    p = plan.Params("quick")
    real = plan.TestSet("rain100l", "/data/rain100l/test", "Rain100L: rain100l/test", False)
    stand_in = plan.TestSet("rain100l", "embedded:light:test:quick", "embedded light", True)
    assert eval_settings(p, "sian-released", real).max_images is None
    assert eval_settings(p, "input", real).max_images is None
    assert eval_settings(p, "sian/neg-ssim", real).max_images == 8
    assert eval_settings(p, "prenet-released", stand_in).max_images == 8
