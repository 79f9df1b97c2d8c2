"""The claims registry, the evidence behind each claim and the verdict rules, on constructed
per-image scores (the committed ``scores/<step>_per_image.csv`` form)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from derain_lib import tables
from derain_lib.config import ConfigError, profile_seeds
from derain_lib.entry import main
from derain_lib.study import claims, plan
from derain_lib.study.claims import CLAIMS, evidence, judge
from derain_lib.study.paths import results_dir
from derain_lib.study.scoring import eval_settings
from derain_lib.tables import MethodId
from derain_lib.viz.results import claims_forest


def _claim(table: str, bench: str = "rain100l", worse: str | None = None):
    return next(
        c
        for c in CLAIMS
        if c.table == table and c.benchmark == bench and (worse is None or c.worse_row == worse)
    )


def _frame(claim, diff, n=100, seeds=(None,), stand_in=False, sd=0.3, ssim_diff=None, rng=None):
    """Per-image rows of both methods of ``claim`` (and the Input) on one test set: ``better``
    is ``worse`` + ``diff`` + noise; 91 scenes over ``n`` images as in Rain100L."""
    rng = rng or np.random.default_rng(0)
    images = [f"rain-{i + 1:03d}" for i in range(n)]
    scenes = [f"s{min(i, 90)}" for i in range(n)]
    base = 30 + 3 * rng.standard_normal(n)
    rows = []
    test_set = "embedded light" if stand_in else "Rain100L: rain100l/test"

    def add(method, seed, psnr, ssim):
        for i, name in enumerate(images):
            rows.append(
                {
                    "method": str(method),
                    "benchmark": claim.benchmark,
                    "test_set": test_set,
                    "stand_in": stand_in,
                    "seed": "" if seed is None else str(seed),
                    "image": name,
                    "scene": scenes[i],
                    "psnr": psnr[i],
                    "ssim": ssim[i],
                }
            )

    add(MethodId.INPUT, None, base - 5, np.full(n, 0.8))
    for seed in seeds:
        worse = base + 0.1 * rng.standard_normal()
        better = worse + diff + sd * rng.standard_normal(n)
        sd_ssim = (
            0.9
            + (ssim_diff if ssim_diff is not None else diff / 100)
            + 0.001 * rng.standard_normal(n)
        )
        add(claim.worse, seed, worse, np.full(n, 0.9))
        add(claim.better, seed, better, sd_ssim)
    return pd.DataFrame(rows), test_set


def test_registry_holds_every_claim_with_the_papers_numbers():
    assert len(CLAIMS) == 12
    assert {c.table for c in CLAIMS} == {"II", "III", "IV", "V"}
    assert len({c.id for c in CLAIMS}) == 12
    for c in CLAIMS:
        for metric in ("psnr", "ssim"):
            a, b = c.paper(metric)
            assert a >= b, (c.id, metric)
    t2 = _claim("II", worse="MAE")
    assert t2.paper("psnr") == (38.80, 38.54) and t2.trained
    t3 = _claim("III")
    assert (t3.better, t3.worse) == (MethodId.SIAN_RELEASED, MethodId.PRENET_RELEASED)
    assert not t3.trained and t3.step == tables.Step.TABLE3_4


def test_released_weights_on_the_full_set_get_a_verdict():
    claim = _claim("III")  # paper: +1.35 dB
    df, t = _frame(claim, 1.0)
    row = judge(claim, evidence(df, claim, t), 1.0)
    assert row["evidence"] == "released, full set"
    assert (row["n_images"], row["n_scenes"]) == (100, 91)
    assert row["diff_psnr"] == pytest.approx(1.0, abs=0.1)
    assert row["lo_psnr"] < row["diff_psnr"] < row["hi_psnr"]
    assert row["mde_psnr"] < 1.35
    assert row["verdict"] == "supported", row
    assert "100 % of the paper's training" in row["reason"]
    flipped, t = _frame(claim, -1.0)
    assert judge(claim, evidence(flipped, claim, t), 1.0)["verdict"] == "contradicted"
    null, t = _frame(claim, 0.0, sd=0.05)
    assert judge(claim, evidence(null, claim, t), 1.0)["verdict"] == "inconclusive"


def test_one_measure_contradicting_means_no_support():
    claim = _claim("III")
    df, t = _frame(claim, 1.0, ssim_diff=-0.01)  # PSNR up, SSIM clearly down
    assert judge(claim, evidence(df, claim, t), 1.0)["verdict"] == "contradicted"


def test_no_verdict_without_the_power_to_give_one():
    claim = _claim("III", "rain100h")  # paper: +0.22 dB
    df, t = _frame(claim, 0.2, n=6, sd=1.5)
    row = judge(claim, evidence(df, claim, t), 1.0)
    assert row["evidence"] == "released, partial set"
    assert row["verdict"] == "not testable here"
    assert row["reason"].startswith(f"MDE {row['mde_psnr']:.2f} dB > claimed 0.22 dB; 100 %")
    assert row["diff_psnr"] is not None  # the numbers are kept


def test_a_stand_in_row_gets_no_verdict():
    claim = _claim("V", worse="Baseline")
    df, t = _frame(claim, 3.0, n=8, seeds=(0, 1, 2), stand_in=True)
    row = judge(claim, evidence(df, claim, t), 0.000067)
    assert row["evidence"] == "stand-in"
    assert row["verdict"] == "not testable here"
    assert "stand-in data, not Rain100L's own" in row["reason"]
    assert "0.0067 % of the paper's training" in row["reason"]
    assert row["n_seeds"] == 3 and row["diff_psnr"] == pytest.approx(3.0, abs=0.5)


def test_a_degenerate_run_is_flagged_and_gets_no_verdict():
    claim = _claim("II", worse="MAE")
    df, t = _frame(claim, 1.0, seeds=(0, 1, 2))
    dead = df.method == str(claim.worse)
    rainy = df[df.method == "input"].set_index("image").psnr
    df.loc[dead, "psnr"] = df.loc[dead, "image"].map(rainy).to_numpy() + 0.004  # output = input
    df.loc[df.test_set == t, "stand_in"] = False
    row = judge(claim, evidence(df, claim, t), 0.5)
    assert row["verdict"] == "degenerate"
    assert "sian/mae seed 0: output equals input" in row["reason"]
    flagged = judge(claim, evidence(_frame(claim, 1.0, seeds=(0, 1))[0], claim, t), 0.5, ["x"])
    assert flagged["verdict"] == "degenerate" and flagged["reason"] == "x"


def test_one_training_seed_is_not_testable():
    claim = _claim("V", worse="Baseline")
    df, t = _frame(claim, 2.0, seeds=(0,))
    row = judge(claim, evidence(df, claim, t), 1.0)
    assert row["verdict"] == "not testable here" and "1 training seed" in row["reason"]


def test_images_are_paired_by_name():
    claim = _claim("III")
    df, t = _frame(claim, 0.5, n=10)
    shuffled = df.sample(frac=1.0, random_state=1)
    assert judge(claim, evidence(shuffled, claim, t), 1.0)["diff_psnr"] == pytest.approx(
        judge(claim, evidence(df, claim, t), 1.0)["diff_psnr"]
    )


@pytest.fixture
def res(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("DERAIN_FIGURES", str(tmp_path / "figures"))
    out = results_dir("smoke")
    (out / "scores").mkdir(parents=True)
    return out


def _eval_csv(root: Path, name: str, psnr: np.ndarray) -> str:
    d = root / "runs" / name
    d.mkdir(parents=True)
    pd.DataFrame(
        {"name": [f"rain-{i + 1:03d}" for i in range(psnr.size)], "psnr": psnr, "ssim": 0.9}
    ).to_csv(d / "per_image.csv", index=False)
    return f"runs/{name}/per_image.csv"


def test_claims_are_recomputed_from_the_committed_csvs(res: Path, capsys):
    """scores/<step>.json + its per-image CSV (written by write_per_image from the run
    cache) are enough: the run cache deleted, `derain claims` gives the same claims.csv."""
    root = res.parent
    rng = np.random.default_rng(5)
    base = 30 + rng.standard_normal(100)
    t = "Rain100L: rain100l/test"
    recs = []
    for m, psnr in (
        (MethodId.INPUT, base - 4),
        (MethodId.PRENET_RELEASED, base),
        (MethodId.SIAN_RELEASED, base + 1.2 + 0.2 * rng.standard_normal(100)),
    ):
        csv = _eval_csv(root, str(m).replace("/", "_"), psnr)
        kind = (
            {"kind": "computed", "detail": "x"}
            if m == MethodId.INPUT
            else tables.released("w", "0" * 64)
        )
        recs.append(
            tables.Score(
                method=m,
                benchmark="rain100l",
                **kind,
                test_set=t,
                n=100,
                psnr=float(psnr.mean()),
                ssim=0.9,
                per_image_csv=csv,
            )
        )
    recs.append(
        tables.Score(
            method=MethodId.SIAN_RELEASED,
            benchmark="rain1400",
            kind="not_run",
            detail="no Rain1400 data",
        )
    )
    tables.save_scores(recs, res / "scores" / "table3_4.json")
    scenes = {t: {f"rain-{i + 1:03d}": f"s{min(i, 90)}" for i in range(100)}}
    (res / "scores" / "scenes.json").write_text(json.dumps(scenes))
    out = claims.write_per_image("smoke", "table3_4")
    per_image = pd.read_csv(out)
    assert list(per_image.columns) == claims.PER_IMAGE_COLUMNS
    assert len(per_image) == 300 and per_image.scene.nunique() == 91
    assert per_image.seed.isna().all()  # released and computed rows: no seed
    import shutil

    shutil.rmtree(root / "runs")  # the ignored run cache is not needed any more
    assert main(["claims", "--profile", "smoke"]) == 0
    assert "claims.csv" in capsys.readouterr().out
    rows = {(r["claim"], r["benchmark"]): r for r in tables.read_csv(res / "claims.csv")}
    assert set(tables.read_csv(res / "claims.csv")[0]) == set(claims.COLUMNS)
    l100 = rows["Ours beats PReNet [17] (CVPR'19) on Rain100L", "Rain100L"]
    assert l100["verdict"] == "supported" and l100["evidence"] == "released, full set"
    assert float(l100["diff_psnr"]) == pytest.approx(1.2, abs=0.1)
    r1400 = rows["Ours beats PReNet [17] (CVPR'19) on Rain1400", "Rain1400"]
    assert r1400["verdict"] == "not run" and r1400["reason"] == "no Rain1400 data"
    t2 = rows["Negative SSIM beats MAE on Rain100L", "Rain100L"]
    assert t2["verdict"] == "not run" and "step table2 has not run" in t2["reason"]
    md = (res / "claims.md").read_text()
    assert "| III | Ours beats PReNet [17] (CVPR'19) on Rain100L |" in md
    fig = claims_forest(claims.claim_rows("smoke"))
    assert len(fig.axes) == 2
    assert "supported" in claims.summary(claims.claim_rows("smoke"))


def test_budget_fraction_is_patches_seen_over_the_papers():
    claim = _claim("II", worse="MAE")
    # quick: 30 steps of 4 patches, the paper 2.4 M patches on RainTrainL
    assert claims.budget_fraction("quick", claim) == pytest.approx(120 / 2_400_000)
    assert claims.budget_fraction("quick", _claim("III")) == 1.0
    assert claims._percent(160 / 2_400_000) == "0.0067 %"


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
    assert eval_settings(p, MethodId.SIAN_RELEASED, real).max_images is None
    assert eval_settings(p, MethodId.INPUT, real).max_images is None
    assert eval_settings(p, MethodId.SIAN, real).max_images == 8
    assert eval_settings(p, MethodId.PRENET_RELEASED, stand_in).max_images == 8
