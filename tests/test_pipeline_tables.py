"""Tables II-V: paper numbers as data, provenance per cell, stand-in vs partial vs full data."""

from __future__ import annotations

import math
import os
import time

import pandas as pd
import pytest

from derain_lib import tables
from derain_lib.errors import DerainError
from derain_lib.models import count_parameters
from derain_lib.study import plan
from derain_lib.study.paper import PAPER, TABLES, paper_value
from derain_lib.study.pipeline import clear_stale_figures
from derain_lib.study.tabulate import COLUMNS, build_table, write_markdown, write_table
from derain_lib.tables import Score
from derain_lib.train import build_model_from_config

SHA = "ab3894696b6c17c7a901ad4096dc4cdfaac835a00447ec64553df809ee143956"


def test_paper_values_quote_table_row_and_column() -> None:
    v = paper_value("III", "PReNet [17] (CVPR'19)", "rain100h")
    assert v.value == (30.11, 0.905)
    assert v.quote == 'Table III, row "PReNet [17] (CVPR\'19)", column Rain100H'
    assert paper_value("IV", "Ours", "rain12").value == (37.24, 0.967)
    assert paper_value("II", "MAE", "rain100l").value == (38.54, 0.981)
    assert paper_value("V", "Baseline", "rain100h").value == (28.55, 0.893)
    assert paper_value("IV", "LPNet [1] (TNNLS'20)", "rain1400").value is None
    with pytest.raises(KeyError, match="Table II"):
        paper_value("II", "Input", "rain100l")


def test_paper_tables_are_complete() -> None:
    # 13 rows in Tables III/IV, 3 in II and V; the full model is the same cell in II, III, V.
    assert [len(PAPER[t]) for t in ("II", "III", "IV", "V")] == [3, 13, 13, 3]
    for b in ("rain100l", "rain100h"):
        ours = PAPER["III"]["Ours"][b]
        assert PAPER["II"]["Negative SSIM"][b] == ours
        assert PAPER["V"]["Baseline+SIAN+LSTM"][b] == ours


def test_every_cell_gets_a_row_with_provenance() -> None:
    scores = [
        Score(
            method="input",
            benchmark="rain100l",
            kind="computed",
            detail="rainy input vs ground truth",
            test_set="light",
            n=3,
            psnr=20.0,
            ssim=0.7,
            stand_in=True,
        ),
    ]
    rows = build_table("table3", scores)
    ours = [r for r in rows if r["kind"] != "paper"]
    # 4 methods x 2 benchmarks, each exactly once here
    assert len(ours) == 8
    assert all(r["provenance"] for r in rows)
    missing = [r for r in ours if r["kind"] == "not_run"]
    assert len(missing) == 7
    assert all(r["provenance"] == "not run: no result recorded" for r in missing)
    assert all(r["psnr"] is None for r in missing)
    paper_rows = [r for r in rows if r["kind"] == "paper"]
    assert all(r["provenance"].startswith("paper (Table III") for r in paper_rows)
    # 13 paper rows minus the 3 we compare against (Input, PReNet, Ours), 2 columns each
    assert len(paper_rows) == 20
    assert all(r["psnr"] is None and r["paper_psnr"] for r in paper_rows)


def test_stand_in_gets_no_difference_full_set_does() -> None:
    run = {"kind": "reproduced", "detail": "quick, run 1a2b3c4d5e6f"}
    stand_in = Score(
        method="sian/neg-ssim",
        benchmark="rain100l",
        **run,
        test_set="embedded light",
        n=8,
        psnr=30.0,
        ssim=0.9,
        stand_in=True,
    )
    full = Score(
        method="sian/neg-ssim",
        benchmark="rain100h",
        **run,
        test_set="Rain100H test",
        n=100,
        psnr=29.33,
        ssim=0.899,
    )
    rows = {
        r["benchmark"]: r
        for r in build_table("table5", [stand_in, full])
        if r["method"].startswith("Baseline+SIAN")
    }
    light = rows["embedded light (stand-in for Rain100L)"]
    assert light["diff_psnr"] is None
    assert "not comparable" in light["note"]
    assert light["paper_psnr"] == 38.80
    assert rows["Rain100H"]["diff_psnr"] == pytest.approx(29.33 - 30.33)
    assert rows["Rain100H"]["diff_ssim"] == pytest.approx(0.899 - 0.909)
    assert rows["Rain100H"]["note"] == ""


def test_partial_set_is_labelled_with_n() -> None:
    s = Score(
        method="sian-released",
        benchmark="rain100l",
        kind="released",
        detail=f"sian_rain100l.pth, sha256 {SHA}",
        test_set="Rain100L sample",
        n=4,
        psnr=38.23,
        ssim=0.978,
    )
    row = next(r for r in build_table("table3", [s]) if r["method"].startswith("SIAN (released"))
    assert "partial set (n=4 of 100)" in row["note"]
    assert row["diff_psnr"] == pytest.approx(38.23 - 38.80)
    assert SHA in row["provenance"]


def test_not_run_reason_is_kept() -> None:
    s = Score(
        method="prenet-released",
        benchmark="rain1400",
        **tables.missing(tables.not_run("no Rain1400 test data under x")),
    )
    row = next(
        r
        for r in build_table("table4", [s])
        if r["method"].startswith("PReNet") and r["benchmark"] == "Rain1400"
    )
    assert row["provenance"] == "not run: no Rain1400 test data under x"
    assert row["psnr"] is None and row["diff_psnr"] is None


@pytest.mark.parametrize(
    "kw",
    [
        {"psnr": math.nan},
        {"psnr": None},
        {"n": 0},
        {"kind": "trust me"},
        {"kind": "paper"},
        {"benchmark": "rain200"},
    ],
)
def test_bad_scores_are_refused(kw: dict) -> None:
    base = dict(
        method="input",
        benchmark="rain100l",
        kind="computed",
        detail="x",
        test_set="t",
        n=2,
        psnr=20.0,
        ssim=0.5,
    )
    with pytest.raises(DerainError):
        Score(**{**base, **kw})


def test_csv_and_markdown_round_trip(tmp_path) -> None:
    scores = [
        Score(
            method="sian-released",
            benchmark="rain100l",
            kind="released",
            detail=f"sian_rain100l.pth, sha256 {SHA}",
            test_set="Rain100L sample",
            n=4,
            psnr=38.2299,
            ssim=0.9777,
        ),
        Score(
            method="sian/mae",
            benchmark="rain100h",
            kind="not_run",
            detail="profile smoke trains no Rain100H model",
        ),
    ]
    paths = [write_table(tmp_path, n, scores) for n in ("table2", "table3")]
    assert [p.name for p in paths] == ["table2.csv", "table3.csv"]
    df = pd.read_csv(tmp_path / "table3.csv")
    assert list(df.columns) == COLUMNS
    sian = df[(df.method == "SIAN (released weights)") & (df.benchmark == "Rain100L")]
    assert sian.psnr.tolist() == [pytest.approx(38.2299)]
    md = write_markdown(tmp_path, "smoke").read_text()
    assert "## Table III" in md and "## Table II:" in md
    assert "not run: `table4.csv` was not produced" in md
    assert "released weights (sian_rain100l.pth, sha256 ab3894696b6c…)" in md
    assert "partial set (n=4 of 100)" in md
    assert "profile smoke trains no Rain100H model" in md
    row = next(line for line in md.splitlines() if "sha256 ab3894696b6c" in line)
    assert [c.strip() for c in row.split("|")[6:11]] == [
        "38.23",
        "0.978",
        "38.80",
        "0.984",
        "-0.57",
    ]


def test_a_new_pipeline_run_drops_figures_it_did_not_redraw(tmp_path, monkeypatch):
    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("DERAIN_FIGURES", str(tmp_path / "figures"))
    (tmp_path / "figures/quick").mkdir(parents=True)
    (tmp_path / "figures/smoke").mkdir(parents=True)
    (tmp_path / "results/quick").mkdir(parents=True)
    stale = tmp_path / "figures/quick/real_rain.png"
    stale.write_bytes(b"png")
    other = tmp_path / "figures/smoke/real_rain.png"
    other.write_bytes(b"png")
    started = time.time()
    os.utime(stale, (started - 60, started - 60))
    redrawn = tmp_path / "figures/quick/samples.png"
    redrawn.write_bytes(b"png")  # written by this run: kept
    assert [p.name for p in clear_stale_figures("quick", started)] == ["real_rain.png"]
    assert not stale.exists() and redrawn.exists()
    assert other.exists()  # another profile's figures are left alone


def test_table5_rows_train_the_corrected_ablation_models() -> None:
    # Table V's rows, through the configs the pipeline trains them with (MODEL_SPEC §4):
    # Baseline = one stage with the ConvLSTMs and no attention; Baseline+LSTM = six stages
    study = plan.Params("paper")
    models = {}
    for m in TABLES["table5"].methods:
        name, loss = plan.TRAINED[m.id]
        cfg = plan.config_for(study, "rain100l", [f"model.name={name}", f"train.loss={loss}"])
        assert cfg.train.loss == "ssim"
        models[m.paper_row] = build_model_from_config(cfg)
    base, lstm, full = (models[r] for r in ("Baseline", "Baseline+LSTM", "Baseline+SIAN+LSTM"))
    assert [m.config.n_stages for m in (base, lstm, full)] == [1, 6, 6]
    assert all(b.lstm is not None for m in (base, lstm) for b in m.cfa.branches)
    assert not base.config.attention and not lstm.config.attention and full.config.attention
    assert count_parameters(base) == count_parameters(lstm) < count_parameters(full)
