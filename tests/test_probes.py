"""The released SIAN's own claims: stage-by-stage scores and the attention knock-out, on one
real Rain100L pair (the authors' per-image reference), then judged as claims."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from derain_lib.study import claims, plan, probes


@pytest.fixture
def one_pair(shared: Path, tmp_path: Path) -> plan.TestSet:
    src = shared / "data" / "rain100l_sample"
    for rel in ("rainy/rain-001.png", "norain/norain-001.png"):
        (tmp_path / "set" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, tmp_path / "set" / rel)
    return plan.TestSet("rain100l", str(tmp_path / "set"), "Rain100L: one pair", False)


def test_stages_and_knockout_of_the_released_sian(one_pair: plan.TestSet, shared: Path):
    weights = shared / "weights" / "sian_rain100l.pth"
    rows = pd.DataFrame(probes.image_rows(weights, one_pair, {"rain-001": "scene-a"}))
    assert list(rows.method) == [probes.stage_id(k) for k in range(1, 7)] + [probes.KNOCKOUT]
    assert set(rows.scene) == {"scene-a"}
    ref = json.loads((shared / "weights" / "reference" / "reference.json").read_text())
    want = ref["per_image"]["rain-001.png"]["sian_rain100l"]
    last = rows[rows.method == probes.stage_id(6)].iloc[0]
    assert last.psnr == pytest.approx(want["psnr"], abs=1e-3)  # stage 6 = the released output
    assert last.ssim == pytest.approx(want["ssim"], abs=1e-5)
    first = rows[rows.method == probes.stage_id(1)].iloc[0]
    knocked = rows[rows.method == probes.KNOCKOUT].iloc[0]
    assert first.psnr != last.psnr and knocked.psnr != last.psnr  # both change the output


def test_stage_scores_of_an_evaluation_equal_the_probes_own(shared: Path, tmp_path: Path):
    """The probes read the stage scores from Table III's evaluation (``per_stage.csv``):
    those equal a forward pass of their own, and the last stage equals ``per_image.csv``."""
    from derain_lib.data.io import read_image, write_png
    from derain_lib.data.sources import open_data
    from derain_lib.evaluate import evaluate
    from derain_lib.metrics import quantize
    from derain_lib.weights import load_model

    src = shared / "data" / "rain100l_sample"
    for rel in ("rainy/rain-001.png", "norain/norain-001.png", "rainy/rain-025.png",
                "norain/norain-025.png"):  # fmt: skip
        img = read_image(src / rel)[40:136, 60:188]  # 96 x 128: a fast forward
        write_png(tmp_path / "set" / rel, quantize(img))
    t = plan.TestSet("rain100l", str(tmp_path / "set"), "Rain100L: two crops", False)
    weights = shared / "weights" / "sian_rain100l.pth"
    model = load_model(weights, allow_download=False).model
    res = evaluate(model, open_data(t.spec), tmp_path / "eval", stage_scores=True)
    stages = pd.read_csv(tmp_path / "eval" / "per_stage.csv")
    assert sorted(stages.stage.unique()) == [1, 2, 3, 4, 5, 6] and len(stages) == 12
    last = stages[stages.stage == 6].set_index("name")
    per_image = pd.read_csv(tmp_path / "eval" / "per_image.csv").set_index("name")
    assert (last.psnr == per_image.psnr).all() and (last.ssim == per_image.ssim).all()
    assert res.psnr == pytest.approx(per_image.psnr.mean())
    own = pd.DataFrame(probes.image_rows(weights, t, {}))
    read = pd.DataFrame(probes.image_rows(weights, t, {}, tmp_path / "eval" / "per_stage.csv"))
    pd.testing.assert_frame_equal(own, read, check_exact=False, rtol=0, atol=1e-6)
    (tmp_path / "other.csv").write_text("name,stage,psnr,ssim\nrain-009.png,1,30,0.9\n")
    with pytest.raises(ValueError, match="other.csv: scores other images"):
        probes.image_rows(weights, t, {}, tmp_path / "other.csv")


def test_probe_claims_are_judged_from_the_committed_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path / "results"))
    rows = []
    for i in range(30):
        for k in range(1, 7):
            rows.append((probes.stage_id(k), i, 30.0 + k * 0.5 + 0.01 * (i % 7)))
        rows.append((probes.KNOCKOUT, i, 33.0 + 0.3 * (i % 5)))  # 33 +- vs stage 6 at 33.0x
    df = pd.DataFrame(
        [
            {"method": m, "benchmark": "rain100l", "test_set": "Rain100L: test", "stand_in": False,
             "seed": "", "image": f"rain-{i:03d}", "scene": f"s{i}", "psnr": v, "ssim": 0.9}
            for m, i, v in rows
        ]
    )  # fmt: skip
    path = probes.probes_path("smoke")
    path.parent.mkdir(parents=True)
    df.to_csv(path, index=False)
    got = {(r["table"], r["claim"], r["benchmark"]): r for r in claims.probe_rows("smoke")}
    stage = got["Fig. 6", "stage 2 improves on stage 1 (released SIAN) on Rain100L", "Rain100L"]
    assert stage["verdict"] == "supported" and "a direction" in stage["reason"]
    assert stage["diff_psnr"] == pytest.approx(0.5)
    knock = got[
        "V (knock-out)",
        "released SIAN beats itself with each attention map set to its mean on Rain100L",
        "Rain100L",
    ]
    assert knock["paper_diff_psnr"] == pytest.approx(0.12)
    assert knock["verdict"] in ("contradicted", "not testable here", "inconclusive")
    assert knock["evidence"] == "released, partial set"  # 30 of 100 images
    h = got["Fig. 6", "stage 2 improves on stage 1 (released SIAN) on Rain100H", "Rain100H"]
    assert h["verdict"] == "not run"
    table = claims.stage_table("smoke")
    assert list(table.stage) == [1, 2, 3, 4, 5, 6]
    assert (table.lo_psnr <= table.psnr).all() and (table.psnr <= table.hi_psnr).all()


def test_a_partial_copy_is_dropped_beside_the_complete_set(shared: Path, tmp_path, monkeypatch):
    src = shared / "data" / "rain100l_sample"
    sets = []
    for name, numbers in (("full", ("001", "025")), ("sample", ("001",))):
        for n in numbers:
            for rel in (f"rainy/rain-{n}.png", f"norain/norain-{n}.png"):
                (tmp_path / name / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src / rel, tmp_path / name / rel)
        sets.append(plan.TestSet("rain100l", str(tmp_path / name), f"Rain100L: {name}", False))
    stand_in = plan.TestSet("rain100l", "embedded:light:test:smoke", "embedded light", True)
    monkeypatch.setitem(probes.FULL_TEST_SIZE, "rain100l", 2)  # "complete" = 2 pairs here
    assert probes.without_partial_copies([stand_in, *sets]) == [stand_in, sets[0]]
    monkeypatch.setitem(probes.FULL_TEST_SIZE, "rain100l", 100)  # no complete set: all kept
    assert probes.without_partial_copies([stand_in, *sets]) == [stand_in, *sets]
