"""The claims registry, the evidence behind each claim and the two verdicts (direction with
Holm's correction, size against the paper's difference), on constructed per-image scores in
the record's form (``scores.csv``, :mod:`derain_lib.study.record`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from derain_lib.cli import main
from derain_lib.config import ConfigError, profile_seeds
from derain_lib.study import claims, plan, record
from derain_lib.study.claims import CLAIMS, decide, judge
from derain_lib.study.plan import results_dir
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
                    "variant": "",
                    "benchmark": claim.benchmark,
                    "test_set": test_set,
                    "evidence": record.evidence_of(method, stand_in),
                    "seed": "" if seed is None else str(seed),
                    "image": name,
                    "scene": scenes[i],
                    "psnr": psnr[i],
                    "ssim": ssim[i],
                }
            )

    add(MethodId.INPUT, None, base - 5, np.full(n, 0.8))  # every model gains 5 dB over it
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
    df = pd.DataFrame(rows)
    df["degenerate"] = record.degenerate(df)
    return df, test_set


def _ev(df: pd.DataFrame, claim, test_set: str) -> dict:
    return claims.paired(df, test_set, (str(claim.better), ""), (str(claim.worse), ""))


def _decided(claim, df, t, budget=1.0) -> dict:
    return decide([judge(claim, _ev(df, claim, t), budget)])[0]


def test_registry_holds_every_claim_with_the_papers_numbers():
    assert len(CLAIMS) == 12
    assert {c.table for c in CLAIMS} == {"II", "III", "IV", "V"}
    assert len(set(CLAIMS)) == 12
    for c in CLAIMS:
        for metric in ("psnr", "ssim"):
            a, b = c.paper(metric)
            assert a >= b, (c, metric)
    t2 = _claim("II", worse="MAE")
    assert t2.paper("psnr") == (38.80, 38.54) and t2.trained
    t3 = _claim("III")
    assert (t3.better, t3.worse) == (MethodId.SIAN_RELEASED, MethodId.PRENET_RELEASED)
    assert not t3.trained


def test_released_weights_on_the_full_set_get_two_verdicts():
    claim = _claim("III")  # paper: +1.35 dB
    df, t = _frame(claim, 1.0, sd=0.3)
    row = _decided(claim, df, t)
    assert row["evidence"] == "released, full set"
    assert (row["n_images"], row["n_scenes"]) == (100, 91)
    assert row["diff_psnr"] == pytest.approx(1.0, abs=0.1)
    assert row["lo_psnr"] < row["diff_psnr"] < row["hi_psnr"] < 1.35
    assert row["direction"] == "supported", row
    assert row["size"] == "smaller than the paper's"
    assert row["p_holm"] == pytest.approx(row["p_psnr"])  # a family of one
    assert _decided(claim, *_frame(claim, -1.0))["direction"] == "contradicted"
    near = _decided(claim, *_frame(claim, 1.35, sd=0.3))
    assert near["direction"] == "supported" and near["size"] == "agrees"
    null = _decided(claim, *_frame(claim, 0.0, sd=0.05))
    assert null["direction"] == "inconclusive" and null["size"] == "smaller than the paper's"


def test_the_mde_never_overrides_a_significant_direction():
    """Rain100H at 56cc130: +0.85 [+0.67, +1.04] with an MDE above the paper's +0.22 read
    'not testable here'; an interval clear of zero is a direction, whatever the power."""
    claim = _claim("III", "rain100h")  # paper: +0.22 dB
    df, t = _frame(claim, 0.85, sd=1.2)
    row = _decided(claim, df, t)
    assert row["mde_psnr"] > 0.22 and row["lo_psnr"] > 0
    assert row["direction"] == "supported" and row["size"] == "larger than the paper's"


def test_an_underpowered_null_result_says_so():
    claim = _claim("III", "rain100h")
    df, t = _frame(claim, 0.05, n=6, sd=1.5)
    row = _decided(claim, df, t)
    assert row["evidence"] == "released, partial set"
    assert row["direction"] == (
        f"inconclusive (underpowered: MDE {row['mde_psnr']:.2f} > claimed 0.22)"
    )
    assert row["diff_psnr"] is not None  # the numbers are kept


def test_holm_adjusts_over_the_family():
    assert claims.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert claims.holm([0.2, float("nan"), 0.01]) == pytest.approx(
        [0.2, float("nan"), 0.02], nan_ok=True
    )
    # a row significant alone (p ~ 0.02) is not once two others share the family
    claim = _claim("III")
    df, t = _frame(claim, 0.0, sd=0.3)
    rows = [judge(claim, _ev(df, claim, t), 1.0) for _ in range(3)]
    rows[0]["p_psnr"], rows[1]["p_psnr"], rows[2]["p_psnr"] = 0.02, 0.5, 0.6
    rows[0]["diff_psnr"] = 0.1
    out = decide(rows)
    assert out[0]["p_holm"] == pytest.approx(0.06)
    assert out[0]["direction"] == "inconclusive"
    assert "Holm-adjusted 0.06 over 3 rows" in out[0]["reason"]


def test_a_stand_in_row_is_a_pipeline_check_without_verdict():
    claim = _claim("V", worse="Baseline")
    df, t = _frame(claim, 3.0, n=8, seeds=(0, 1, 2), stand_in=True)
    row = _decided(claim, df, t, 0.000067)
    assert row["evidence"] == "pipeline check"
    assert (row["direction"], row["size"]) == ("no verdict", "no verdict")
    assert "stand-in data, 0.0067 % of the paper's training" in row["reason"]
    assert row["n_seeds"] == 3 and row["diff_psnr"] == pytest.approx(3.0, abs=0.5)
    assert pd.isna(row["p_holm"])  # not in the family


def test_a_short_budget_on_real_data_is_a_pipeline_check():
    claim = _claim("V", worse="Baseline")
    df, t = _frame(claim, 0.5, seeds=(0, 1, 2))
    row = _decided(claim, df, t, 0.05)
    assert row["evidence"] == "pipeline check" and row["direction"] == "no verdict"
    assert _decided(claim, df, t, 1.0)["evidence"] == "trained here"


def test_one_degeneracy_rule_flags_a_model_that_learned_no_deraining():
    claim = _claim("II", worse="MAE")
    df, t = _frame(claim, 1.0, seeds=(0, 1, 2))
    rainy = df[df.method == "input"].set_index("image").psnr
    weak = (df.method == str(claim.worse)) & (df.seed == "1")
    df.loc[weak, "psnr"] = df.loc[weak, "image"].map(rainy).to_numpy() + 0.9  # gains 0.9 dB
    flags = record.degenerate(df)
    assert set(df[flags].seed) == {"1"} and set(df[flags].method) == {str(claim.worse)}
    df["degenerate"] = flags
    row = _decided(claim, df, t)
    assert row["direction"] == "no verdict"
    assert "sian/mae seed 1" in row["reason"] and "below 1 dB" in row["reason"]
    df.loc[weak, "psnr"] += 0.2  # 1.1 dB: a weak model, not a degenerate one
    assert not record.degenerate(df).any()


def test_one_training_seed_gets_no_verdict():
    claim = _claim("V", worse="Baseline")
    df, t = _frame(claim, 2.0, seeds=(0,))
    row = _decided(claim, df, t)
    assert row["direction"] == "no verdict" and "1 training seed" in row["reason"]


def test_images_are_paired_by_name():
    claim = _claim("III")
    df, t = _frame(claim, 0.5, n=10)
    shuffled = df.sample(frac=1.0, random_state=1)
    assert judge(claim, _ev(shuffled, claim, t), 1.0)["diff_psnr"] == pytest.approx(
        judge(claim, _ev(df, claim, t), 1.0)["diff_psnr"]
    )


def _stage_rows(t: str, steps: list[float], rng: np.random.Generator) -> list[dict]:
    base = 30 + rng.standard_normal(100)
    rows, level = [], base.copy()
    for k in range(1, 7):
        if k > 1:
            level = level + steps[k - 2] + 0.05 * rng.standard_normal(100)
        rows += [
            {"method": "sian-released", "variant": f"stage-{k}", "benchmark": "rain100l",
             "test_set": t, "evidence": "released weights", "seed": "",
             "image": f"rain-{i + 1:03d}", "scene": f"s{min(i, 90)}",
             "psnr": level[i], "ssim": 0.9, "degenerate": False}
            for i in range(100)
        ]  # fmt: skip
    return rows


def test_fig6_is_one_trend_claim_decided_by_its_weakest_step():
    t = "Rain100L: rain100l/test"
    df = pd.DataFrame(_stage_rows(t, [1.0, 0.5, 0.2, 0.1, 0.05], np.random.default_rng(1)))
    (row,) = [r for r in claims.trend_rows(df) if r["test_set"] == t]
    assert row["table"] == "Fig. 6" and "weakest: stage 6" in row["reason"]
    assert row["reason"].count(">") == 5  # the five steps listed
    assert decide([row])[0]["direction"] == "supported"
    flat = pd.DataFrame(_stage_rows(t, [1.0, 0.5, 0.0, 0.1, 0.05], np.random.default_rng(1)))
    (row,) = [r for r in claims.trend_rows(flat) if r["test_set"] == t]
    assert "weakest: stage 4" in row["reason"]
    assert decide([row])[0]["direction"] == "inconclusive"


def test_knockout_rows_carry_n_and_no_paper_difference():
    t = "Rain100L: rain100l/test"
    df = pd.DataFrame(_stage_rows(t, [1.0] * 5, np.random.default_rng(2)))
    intact = df[df.variant == "stage-6"].assign(variant="")
    knocked = intact.head(30).assign(variant="ko-zero", psnr=lambda d: d.psnr - 1.5)
    rows = claims.knockout_rows(pd.concat([df, intact, knocked], ignore_index=True))
    (row,) = rows
    assert row["n_images"] == 30 and row["diff_psnr"] == pytest.approx(1.5)
    assert row["paper_diff_psnr"] is None and row["direction"] == "no verdict"
    assert row["evidence"].startswith("inference-time sensitivity")
    assert "set to 0" in row["claim"]


@pytest.fixture
def res(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("DERAIN_FIGURES", str(tmp_path / "figures"))
    return results_dir("smoke")


def test_claims_are_recomputed_from_the_committed_record(res: Path, capsys):
    """scores.csv alone (the run cache and the work records gone) gives claims.csv."""
    rng = np.random.default_rng(5)
    base = 30 + rng.standard_normal(100)
    t = "Rain100L: rain100l/test"
    rows = []
    for m, psnr in (
        (MethodId.INPUT, base - 4),
        (MethodId.PRENET_RELEASED, base),
        (MethodId.SIAN_RELEASED, base + 1.2 + 0.2 * rng.standard_normal(100)),
    ):
        rows += [
            {"method": str(m), "variant": "", "benchmark": "rain100l", "test_set": t,
             "evidence": record.evidence_of(m, False), "seed": "", "image": f"rain-{i + 1:03d}",
             "scene": f"s{min(i, 90)}", "psnr": psnr[i], "ssim": 0.9}
            for i in range(100)
        ]  # fmt: skip
    record.update("smoke", rows)
    assert record.read("smoke").scene.nunique() == 91
    assert main(["claims", "--profile", "smoke"]) == 0
    assert "claims.csv" in capsys.readouterr().out
    out = pd.read_csv(res / "claims.csv")
    assert list(out.columns) == claims.COLUMNS
    by = out.set_index(["claim", "benchmark"])
    l100 = by.loc[("Ours beats PReNet [17] (CVPR'19) on Rain100L", "Rain100L")]
    assert l100.direction == "supported" and l100.evidence == "released, full set"
    assert l100["size"] == "smaller than the paper's"
    assert float(l100.diff_psnr) == pytest.approx(1.2, abs=0.1)
    r1400 = by.loc[("Ours beats PReNet [17] (CVPR'19) on Rain1400", "Rain1400")]
    assert r1400.direction == "not run" and "no Rain1400 scores" in r1400.reason
    md = (res / "claims.md").read_text()
    assert "Holm" in md and "| III " in md
    fig = claims_forest(claims.claim_rows("smoke"))
    assert len(fig.axes) == 2


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
