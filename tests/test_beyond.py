"""Chapter 07's measurements on tiny inputs: AUC, density sweep, flop count, protocols."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from derain_lib.data.catalog import fetch_dataset, prepared_dataset
from derain_lib.data.embedded import embedded_dataset
from derain_lib.data.io import read_image_uint8
from derain_lib.metrics import PROTOCOLS, score_pair
from derain_lib.models import build_model
from derain_lib.study import pipeline, plan
from derain_lib.study.beyond import cost
from derain_lib.study.beyond.attention_auc import attention_auc, real_rain_mask, roc_auc
from derain_lib.study.beyond.common import (
    centre_crop,
    clock,
    pick_scenes,
    scene_keys,
    scene_pairs,
    since,
)
from derain_lib.study.beyond.cost import (
    COST_MODELS,
    cached_cost_table,
    cost_in_child,
    cost_key,
    cost_note,
    count_flops,
    measure_cost,
)
from derain_lib.study.beyond.density import (
    DENSITY_LEVELS,
    TONE_SHIFT_Y,
    calibrate,
    density_sweep,
    input_psnr,
    rainy_at,
    scaled,
)
from derain_lib.study.beyond.generalisation import Outputs, cells, generalisation, outputs
from derain_lib.study.beyond.protocols import OURS, protocol_effects, protocol_table
from derain_lib.study.plan import write_json
from derain_lib.study.stats import hierarchical_interval

NAMES = ["001", "025", "050", "100"]


def _rain_layer(seed: int = 0) -> np.ndarray:
    clean = np.full((48, 64, 3), 0.4, np.float32)
    return rainy_at(clean, DENSITY_LEVELS[2], seed)[1]


def test_auc_of_the_rain_layer_itself_is_one_and_of_a_constant_mask_one_half():
    rain = _rain_layer()
    labels = rain > 0.1
    assert 0 < labels.sum() < labels.size
    assert roc_auc(rain, labels) == 1.0
    assert roc_auc(np.full(rain.shape, 0.7), labels) == 0.5
    assert roc_auc(-rain, labels) == 0.0


def test_auc_equals_the_pairwise_definition():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 5, 40).astype(float)  # many ties
    y = rng.random(40) < 0.4
    pos, neg = s[y], s[~y]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert roc_auc(s, y) == pytest.approx(pairs / (len(pos) * len(neg)), abs=1e-12)
    assert np.isnan(roc_auc(s, np.zeros(40, bool)))


def test_density_sweep_input_psnr_falls_monotonically_with_intensity():
    ds = embedded_dataset("light", "test", size="smoke")
    cleans = [(f"img{i}", ds.load(i)[1]) for i in range(2)]
    rows = density_sweep({}, cleans)
    assert len(rows) == 2 * len(DENSITY_LEVELS)
    for name, _ in cleans:
        psnr = [r["input_psnr"] for r in rows if r["image"] == name]
        assert all(a > b for a, b in zip(psnr, psnr[1:], strict=False)), psnr
    # the ends span drizzle (above the light preset) to heavier than the heavy preset
    assert rows[0]["input_psnr"] > 28 and rows[len(DENSITY_LEVELS) - 1]["input_psnr"] < 14


def test_density_sweep_scores_each_model():
    clean = embedded_dataset("light", "test", size="smoke").load(0)[1]
    torch.manual_seed(0)
    ident = _Identity()
    rows = density_sweep({"sian-rain100l": ident, "sian-rain100h": ident}, [("a", clean)])
    model_rows = [r for r in rows if r["model"] != "input"]
    assert len(model_rows) == 2 * len(DENSITY_LEVELS)
    for r in model_rows:  # the identity model returns the rainy image: no gain
        assert r["gain"] == pytest.approx(0.0, abs=1e-9)
        assert r["psnr"] == pytest.approx(r["input_psnr"])


class _Identity(nn.Module):
    """A 'model' whose one stage is its input."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x]


def test_attention_auc_has_one_row_per_stage_scale_and_kind():
    model = build_model("sian", stages=2).eval()
    img = np.random.default_rng(0).random((32, 48, 3)).astype(np.float32)
    rain = _rain_layer()[:32, :48] > 0.1
    rows = attention_auc(model, img, rain)
    channels = model.config.channels if hasattr(model.config, "channels") else None
    masks = [r for r in rows if r["what"] == "mask"]
    per_cell = {(r["stage"], r["scale"]) for r in masks}
    assert per_cell == {(k, s) for k in (1, 2) for s in (1, 2, 4)}
    n_ch = len({r["channel"] for r in masks})
    assert n_ch > 1 and (channels is None or n_ch == channels)
    assert len(masks) == 6 * n_ch  # every channel of every stage and scale
    assert {(r["stage"], r["scale"]) for r in rows if r["what"] == "dog"} == per_cell
    assert {r["scale"] for r in rows if r["what"] == "edge"} == {1, 2, 4}
    # each mask at its own resolution: 32x48 at scale 1, 16x24 at 1/2, 8x12 at 1/4
    assert {r["scale"]: r["cells"] for r in rows} == {1: 32 * 48, 2: 16 * 24, 4: 8 * 12}
    assert all(0.0 <= r["auc"] <= 1.0 for r in rows)


def test_flop_count_of_one_3x3_convolution_equals_the_formula():
    cin, cout, h, w = 4, 8, 10, 12
    conv = nn.Conv2d(cin, cout, 3, padding=1)
    assert count_flops(conv, torch.rand(1, cin, h, w)) == 2 * cin * cout * 9 * h * w


def test_measure_cost_reports_params_flops_and_time():
    r = measure_cost("sian-baseline", 32, 48)
    assert r["params"] == sum(p.numel() for p in build_model("sian-baseline").parameters())
    assert r["gflop_per_mp"] > 0 and r["wall_s"] > 0 and r["cpu_s"] > 0
    assert r["peak_rss_mib"] > 0


def test_cost_table_is_reused_while_its_key_holds(tmp_path, monkeypatch):
    calls = []

    def fake(name, h, w):
        calls.append((h, w))
        return {"model": name, "status": "ok", "wall_s": float(measured())}

    def measured() -> int:  # how many tables were measured
        return -(-len(calls) // len(COST_MODELS))

    monkeypatch.setattr(cost, "cost_in_child", fake)
    path = tmp_path / "beyond" / "cost.json"
    first = cached_cost_table(path, (64, 96))
    assert first["key"] == cost_key((64, 96)) and first["key"]["size"] == "96x64"
    assert first["key"]["cpu"] and [r["model"] for r in first["rows"]] == list(COST_MODELS)
    saved = path.read_bytes()
    assert cached_cost_table(path, (64, 96)) == first and path.read_bytes() == saved
    assert measured() == 1  # reused: not measured again, the file untouched
    note = cost_note(first)
    assert note.startswith(f"Measured {first['measured']} on {first['key']['cpu']}")
    assert "`remeasure=True`" in note
    assert cached_cost_table(path, (64, 96), remeasure=True)["rows"][0]["wall_s"] == 2.0
    assert cached_cost_table(path, (32, 48))["key"]["size"] == "48x32"  # another size
    monkeypatch.setattr(cost, "COST_SOURCES", ("models", "metrics.py"))  # other code
    cached_cost_table(path, (32, 48))
    assert measured() == 4
    record = json.loads(path.read_text())
    record["rows"][0]["status"] = "not run: measurement failed: x"
    write_json(path, record)
    cached_cost_table(path, (32, 48))  # a failed measurement is not reused
    assert measured() == 5


def test_protocol_table_reproduces_the_input_rows_of_the_sample_pairs(shared):
    ref = json.loads((shared / "weights/reference/reference.json").read_text())["per_image"]
    d = shared / "data/rain100l_sample"
    rainy = [read_image_uint8(d / f"rainy/rain-{n}.png") for n in NAMES]
    clean = [read_image_uint8(d / f"norain/norain-{n}.png") for n in NAMES]
    kept = [Outputs("m", "sample", "rain100l", False, NAMES, NAMES, rainy, clean, rainy)]
    per_image = protocol_table(kept)  # the input only: "m" is no released model
    assert len(per_image) == len(PROTOCOLS) * len(NAMES)
    assert {r["scored"] for r in per_image} == {"input"}
    assert {(r["height"], r["width"]) for r in per_image} == {c.shape[:2] for c in clean}

    def mean(proto: str, key: str = "psnr") -> float:
        return float(np.mean([r[key] for r in per_image if r["protocol"] == proto]))

    want = [ref[f"rain-{n}.png"]["input_rainy"] for n in NAMES]
    assert mean(OURS) == pytest.approx(np.mean([v["psnr"] for v in want]), abs=1e-8)
    assert mean(OURS, "ssim") == pytest.approx(np.mean([v["ssim"] for v in want]), abs=1e-8)
    assert round(mean(OURS), 4) == 26.5538 and round(mean(OURS, "ssim"), 5) == 0.82652
    # the documented uint8-Y value (docs/metrics.md), and truncation is a no-op on uint8 input
    assert round(mean("Y rounded to uint8"), 4) == 26.5517
    assert mean("outputs truncated, not rounded") == mean(OURS)
    assert mean("RGB") != mean(OURS)
    eff = {e["protocol"]: e for e in protocol_effects(per_image)}
    assert eff["Y rounded to uint8"]["diff_psnr"] == pytest.approx(26.5517 - 26.5538, abs=1e-4)
    assert eff["Y rounded to uint8"]["n"] == eff["RGB"]["scenes"] == len(NAMES)
    assert eff["RGB"]["diff_psnr"] == pytest.approx(mean("RGB") - mean(OURS), abs=1e-9)
    assert eff["RGB"]["lo_psnr"] < eff["RGB"]["diff_psnr"] < eff["RGB"]["hi_psnr"]


def test_protocol_effects_resample_scenes_not_images():
    rows = [
        {
            "test_set": "t",
            "stand_in": False,
            "scored": "input",
            "protocol": p,
            "image": i,
            "scene": scene,
            "psnr": v,
            "ssim": 0.9,
        }
        for i, (scene, d) in enumerate((("a", 0.0), ("a", 0.0), ("b", 1.0), ("b", 1.0)))
        for p, v in ((OURS, 30.0), ("RGB", 30.0 + d))
    ]
    (e,) = protocol_effects(rows)
    want = hierarchical_interval([0.0, 0.0, 1.0, 1.0], ["a", "a", "b", "b"])
    assert (e["n"], e["scenes"]) == (4, 2) and e["diff_psnr"] == pytest.approx(0.5)
    assert (e["lo_psnr"], e["hi_psnr"]) == (want.lo, want.hi)
    # 4 independent images would give a narrower interval than 2 scenes
    assert want.hi - want.lo > np.ptp(
        [hierarchical_interval([0, 0, 1, 1]).lo, hierarchical_interval([0, 0, 1, 1]).hi]
    )


def test_real_rain_mask_marks_pixels_brightened_beyond_tau():
    clean = np.full((4, 4, 3), 100, np.uint8)
    rainy = clean.copy()
    rainy[1, 2] = 140
    rainy[0, 0] = 104  # Y rises by about 3.5 < 10
    m = real_rain_mask(rainy, clean)
    assert m.sum() == 1 and m[1, 2]


def _smoke_set(preset: str = "light") -> tuple[plan.TestSet, object]:
    bench = {"light": "rain100l", "heavy": "rain100h"}[preset]
    spec = f"embedded:{preset}:test:smoke"
    return plan.TestSet(bench, spec, f"smoke {preset}", True), embedded_dataset(
        preset, "test", "smoke"
    )


def test_generalisation_scores_every_model_on_every_set_and_keeps_outputs():
    t, ds = _smoke_set()
    kept = outputs({"identity": _Identity()}, [(t, ds)], scenes=5)
    rows = generalisation(kept)
    # a stand-in set is a pipeline check: at most 2 images, whatever was asked
    assert len(rows) == 2 and {r["image"] for r in rows} == set(kept[0].names)
    assert all(r["stand_in"] and r["scene"] for r in rows)
    # the identity model's score is the Input score of the same images: no gain
    assert all(r["gain"] == pytest.approx(0.0, abs=1e-12) for r in rows)
    ins = [score_pair(*ds.load(i)) for i in (0, len(ds) - 1)]  # spread: the first and the last
    assert [r["input_psnr"] for r in rows] == pytest.approx([s[0] for s in ins], abs=1e-12)
    (cell,) = cells(rows)
    assert cell["n"] == cell["scenes"] == 2 and cell["gain"] == pytest.approx(0.0, abs=1e-12)
    assert len(kept) == 1 and len(kept[0].derained) == 2


def test_generalisation_scores_the_centre_crop():
    t, ds = _smoke_set()
    kept = outputs({"identity": _Identity()}, [(t, ds)], scenes=1, crop=20)
    rows = generalisation(kept)
    rainy, clean = ds.load(0)
    h, w = clean.shape[:2]
    want = clean[(h - 20) // 2 : (h - 20) // 2 + 20, (w - 20) // 2 : (w - 20) // 2 + 20]
    assert np.array_equal(kept[0].clean[0], want) and kept[0].rainy[0].shape == (20, 20, 3)
    assert rows[0]["psnr"] == pytest.approx(score_pair(centre_crop(rainy, 20), want)[0], abs=1e-12)
    assert centre_crop(clean, None) is clean and centre_crop(clean, 10_000).shape == clean.shape


def test_generalisation_cells_interval_is_over_scenes():
    base = {"model": "m", "test_set": "t", "benchmark": "rain100l", "stand_in": False}
    gains = [1.0, 1.0, 3.0, 3.0]
    rows = [
        {
            **base,
            "image": str(i),
            "scene": "ab"[i // 2],
            "input_psnr": 20.0,
            "psnr": 20 + g,
            "ssim": 0.9,
            "gain": g,
        }
        for i, g in enumerate(gains)
    ]
    (cell,) = cells(rows)
    assert (cell["n"], cell["scenes"]) == (4, 2) and cell["gain"] == pytest.approx(2.0)
    by_image = hierarchical_interval(gains)
    assert cell["gain_hi"] - cell["gain_lo"] > by_image.hi - by_image.lo


def test_skimage_default_protocol_is_the_library_call():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-15, 16, a.shape), 0, 255).astype(np.uint8)
    p, s = PROTOCOLS["scikit-image defaults (RGB)"](b, a)
    assert p == pytest.approx(peak_signal_noise_ratio(a, b), abs=1e-12)
    assert s == pytest.approx(structural_similarity(a, b, channel_axis=2), abs=1e-12)


def test_since_counts_wall_and_cpu_seconds():
    start = clock()
    t = time.process_time()
    while time.process_time() - t < 0.3:  # one thread busy for 0.3 CPU seconds
        pass
    spent = since(start)
    assert spent["cpu_s"] >= 0.2
    assert spent["wall_s"] >= spent["cpu_s"] - 0.1  # one busy thread: wall time >= its CPU time


def _photo(seed: int, h: int = 321, w: int = 481) -> np.ndarray:
    """A smooth random 'photograph' (uint8), different for each seed."""
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, 256, (h // 40 + 2, w // 40 + 2, 3)).astype(np.float32)
    return ndimage.zoom(grid, (40, 40, 1), order=1)[:h, :w].round().astype(np.uint8)


def test_scene_keys_join_crops_and_duplicates_and_keep_scenes_apart():
    a, b = _photo(1), _photo(2)
    portrait = np.ascontiguousarray(_photo(3).swapaxes(0, 1))  # 481 x 321
    images = [
        ("a", a),
        ("b", b),
        ("a crop", a[1:, 1:]),  # Rain100H's 480 x 320 crop of a 481 x 321 ground truth
        ("a crop 0", a[:320, :480]),
        ("a again", a.copy()),
        ("p", portrait),
        ("p crop", portrait[:480, 1:]),
        ("a float", a.astype(np.float32) / 255),
    ]
    keys = scene_keys(images)
    assert keys == ["a", "b", "a", "a", "a", "p", "p", "a"]
    assert len(set(scene_keys([(str(i), _photo(i)) for i in range(10)]))) == 10


def test_pick_scenes_takes_one_image_per_scene_spread_over_them():
    keys = ["a", "a", "b", "c", "c", "d", "e"]
    assert pick_scenes(keys, None) == list(range(7))
    assert pick_scenes(keys, 3) == [0, 3, 6]  # first images of scenes a, c, e
    assert pick_scenes(keys, 10) == [0, 2, 3, 5, 6]


def test_scene_pairs_take_a_shared_scene_once_across_sets():
    light, heavy = _smoke_set("light"), _smoke_set("heavy")
    # the embedded light and heavy sets share their ground truths
    both = scene_pairs([light, heavy], None, together=True)
    assert len(both) == 2 and all(t is light[0] for t, *_ in both)  # stand-ins: 2 at most
    apart = scene_pairs([light, heavy], 1)
    assert [t.label for t, *_ in apart] == ["smoke light", "smoke heavy"]
    assert apart[0][3] == apart[1][3]  # the same scene in both sets


@pytest.mark.slow
def test_rain100l_and_rain100h_crops_are_91_scenes(shared, tmp_path, monkeypatch):
    mirror = shared / "mirror"
    if not mirror.is_dir():
        pytest.skip(f"no raw-file mirror at {mirror}")
    monkeypatch.setenv("DERAIN_CACHE", str(tmp_path))
    monkeypatch.setenv("DERAIN_MIRROR", str(mirror))
    monkeypatch.delenv("DERAIN_DATA", raising=False)
    for name in ("rain100l", "rain100h-crop480"):
        fetch_dataset(name, log=lambda *a: None)
    sets = {b: prepared_dataset(b) for b in ("rain100l", "rain100h")}
    cleans = {b: [(f"{b} {i}", ds.load(i)[1]) for i in range(len(ds))] for b, ds in sets.items()}
    assert cleans["rain100h"][0][1].shape[:2] == (320, 480)  # the crop
    keys = scene_keys(cleans["rain100l"] + cleans["rain100h"])
    assert len(set(keys)) == 91
    assert keys[:100] == keys[100:]  # the same scene at the same index
    assert keys[2] == keys[3]  # rain-003 = rain-004


def test_calibration_finds_the_density_of_a_target_input_psnr():
    ds = embedded_dataset("light", "test", size="smoke")
    cleans = [(f"c{i}", ds.load(i)[1]) for i in range(2)]
    assert input_psnr(cleans, scaled("light", "x", 3.0)) < input_psnr(
        cleans, scaled("light", "x", 1.0)
    )
    target = input_psnr(cleans, scaled("light", "x", 2.0))
    factor, got = calibrate(cleans, "light", target)
    assert abs(got - target) < 0.3 and 1.5 < factor < 2.7
    assert got == pytest.approx(input_psnr(cleans, scaled("light", "x", factor)))


def test_density_sweep_flags_a_global_tone_shift():
    class _Darker(_Identity):
        def forward(self, x):
            return [x * 0.8]

    clean = embedded_dataset("light", "test", size="smoke").load(0)[1]
    rows = density_sweep(
        {"dark": _Darker(), "same": _Identity()}, [("a", clean)], DENSITY_LEVELS[:1]
    )
    by = {r["model"]: r for r in rows}
    assert by["dark"]["tone_shifted"] and by["dark"]["tone_shift"] < -TONE_SHIFT_Y
    assert not by["same"]["tone_shifted"] and not by["input"]["tone_shifted"]


def test_cost_is_measured_in_a_child_process_running_the_module():
    row = cost_in_child("sian-baseline", 32, 48)
    assert row["status"] == "ok" and row["size"] == "48x32"
    assert row["params"] == sum(p.numel() for p in build_model("sian-baseline").parameters())
    assert row["threads"] == torch.get_num_threads()
    bad = cost_in_child("no-such-model", 32, 48)
    assert bad["status"].startswith("not run: measurement failed")
    with pytest.raises(SystemExit) as e:  # bad arguments: a usage line, no traceback
        cost.main(["sian", "x", "1", "1"])
    assert e.value.code == 2


@pytest.mark.slow
def test_chapter_runs_on_smoke_without_weights_and_says_not_run(tmp_path, monkeypatch):
    for var in ("DERAIN_RESULTS", "DERAIN_FIGURES", "DERAIN_DATA", "DERAIN_CACHE"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.delenv("DERAIN_WEIGHTS_DIR", raising=False)
    record = pipeline.run_pipeline(
        "smoke", notebooks=("07_beyond_the_paper.ipynb",), log=lambda *a, **k: None
    )
    out = tmp_path / "derain_results" / "smoke" / "beyond"
    cost = json.loads((out / "cost.json").read_text())["rows"]
    assert [r["model"] for r in cost] == list(COST_MODELS)
    assert all(r["status"] == "ok" and r["size"] == "96x64" and r["params"] > 0 for r in cost)
    density = json.loads((out / "density.json").read_text())
    assert {r["model"] for r in density["rows"]} == {"input"}  # no weights: the inputs only
    assert json.loads((out / "generalisation.json").read_text()) == []
    assert not (out / "timing.json").exists()  # the chapter's time is in provenance.json
    facts = record["run_facts"]["07_beyond_the_paper.ipynb"]
    assert facts["sections"]["total"]["wall_s"] > 0 and facts["sections"]["cost"]["cpu_s"] > 0
    assert (
        facts
        == json.loads((out.parent / "provenance.json").read_text())["run_facts"][
            "07_beyond_the_paper.ipynb"
        ]
    )
    executed = tmp_path / "derain_results" / "smoke" / "notebooks" / "07_beyond_the_paper.ipynb"
    text = executed.read_text()
    assert "not run: released weights" in text and "findings." not in text
    assert "Appendix: pipeline checks on the stand-ins" in text


def test_saved_auc_rows_keep_controls_per_image_and_channels_as_means() -> None:
    from derain_lib.study.beyond.attention_auc import saved

    base = {"scale": 1, "cells": 10, "stage": 1, "source": "s", "stand_in": False}
    rows = [
        {**base, "what": "mask", "channel": c, "auc": auc, "image": im}
        for im, aucs in (("a", (0.6, 0.2)), ("b", (0.8, 0.4)))
        for c, auc in enumerate(aucs)
    ] + [{**base, "what": "edge", "channel": None, "auc": 0.7, "image": im} for im in "ab"]
    out = saved(rows)
    masks = sorted((r["channel"], r["auc"], r["n"]) for r in out if r["what"] == "mask")
    assert masks == [(0, 0.7, 2), (1, 0.3, 2)]
    assert [r["image"] for r in out if r["what"] == "edge"] == ["a", "b"]
