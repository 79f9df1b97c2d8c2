"""The released SIAN on real pairs: its stage scores and the family of inference-time
knock-outs of its attention, into the record, then listed as rows without verdict."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from derain_lib.study import claims, plan, probes, record


@pytest.fixture
def crops(shared: Path, tmp_path: Path) -> plan.TestSet:
    """Two Rain100L pairs cut to 96 x 128: a fast forward."""
    from derain_lib.data.io import read_image, write_png
    from derain_lib.metrics import quantize

    src = shared / "data" / "rain100l_sample"
    for rel in ("rainy/rain-001.png", "norain/norain-001.png", "rainy/rain-025.png",
                "norain/norain-025.png"):  # fmt: skip
        img = read_image(src / rel)[40:136, 60:188]
        write_png(tmp_path / "set" / rel, quantize(img))
    return plan.TestSet("rain100l", str(tmp_path / "set"), "Rain100L: two crops", False)


def test_every_knock_out_changes_the_output_and_only_its_part(shared: Path) -> None:
    from derain_lib.weights import load_model

    weights = shared / "weights" / "sian_rain100l.pth"
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        intact = load_model(weights, allow_download=False).model.eval()(x)
        outs = {}
        for v in probes.variants(probes.BENCHMARKS[0]):
            model = probes.knock_out(load_model(weights, allow_download=False).model.eval(), v)
            outs[v] = model(x)
            if v == "ko-mean-stage-3":  # the stage counter starts afresh with every forward
                assert torch.equal(outs[v][-1], model(x)[-1])
    assert len(outs) == 14 and len(probes.variants(probes.BENCHMARKS[1])) == 4
    for v, out in outs.items():
        assert not torch.equal(out[-1], intact[-1]), v
    # a knock-out at stage 3 leaves stages 1-2 as they were, and changes stage 3
    s3 = outs["ko-mean-stage-3"]
    assert torch.equal(s3[1], intact[1]) and not torch.equal(s3[2], intact[2])
    assert not torch.equal(outs["ko-mean-scale-1"][-1], outs["ko-mean-scale-4"][-1])
    assert "set to 0" in probes.describe("ko-zero")
    assert probes.describe("ko-mean-stage-3") == (
        "the attention maps of stage 3 only are knocked out (mean)"
    )


def test_knock_outs_run_on_distinct_scenes_spread_over_the_set() -> None:
    names = [f"rain-{i:03d}" for i in range(1, 11)]
    scenes = {n: f"s{min(i, 7)}" for i, n in enumerate(names)}  # the last 3 are one scene
    assert probes.subset(names, scenes, None) == names
    assert probes.subset(names, scenes, 100) == names[:8]
    chosen = probes.subset(names, scenes, 3)
    assert chosen == ["rain-001", "rain-005", "rain-008"]
    assert len({scenes[n] for n in chosen}) == 3


def test_probes_write_stages_and_knock_outs_into_the_record(
    crops: plan.TestSet, shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from derain_lib.data.sources import open_data
    from derain_lib.evaluate import evaluate
    from derain_lib.weights import load_model

    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path / "results"))
    weights = shared / "weights" / "sian_rain100l.pth"
    monkeypatch.setattr(probes, "test_sets", lambda p: {"rain100l": [crops], "rain100h": []})
    monkeypatch.setattr(probes, "find_released", lambda name, d: weights)
    kinds = ["ko-zero", "ko-mean-stage-2"]
    monkeypatch.setattr(probes, "variants", lambda b: kinds)
    model = load_model(weights, allow_download=False).model
    ev = evaluate(model, open_data(crops.spec), tmp_path / "eval", stage_scores=True)
    stages = pd.read_csv(tmp_path / "eval" / "per_stage.csv")
    last = stages[stages.stage == 6].set_index("name")
    per_image = pd.read_csv(tmp_path / "eval" / "per_image.csv").set_index("name")
    assert (last.psnr == per_image.psnr).all() and ev.psnr == pytest.approx(per_image.psnr.mean())
    n = probes.run_probes(plan.Params("smoke"), lambda p, w, t: tmp_path / "eval" / "per_stage.csv")
    df = record.read("smoke")
    assert n == len(df) == 2 * 6 + 2 * 2  # 2 images: 6 stages, 2 knock-outs
    assert set(df.variant) == {f"stage-{k}" for k in range(1, 7)} | set(kinds)
    record.update("smoke", df[df.variant == "stage-6"].assign(variant="").to_dict("records"))
    rows = claims.knockout_rows(record.read("smoke"))
    assert len(rows) == 2 and all(r["n_images"] == 2 for r in rows)
    assert all(r["paper_diff_psnr"] is None and r["direction"] == "no verdict" for r in rows)
    table = claims.stage_table("smoke")
    assert list(table.stage) == [1, 2, 3, 4, 5, 6]
    # a second run takes every knock-out from its cache
    monkeypatch.setattr(probes, "knocked_scores", lambda *a: pytest.fail("recomputed"))
    assert (
        probes.run_probes(plan.Params("smoke"), lambda p, w, t: tmp_path / "eval" / "per_stage.csv")
        == n
    )


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
