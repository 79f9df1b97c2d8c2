"""Chapter 07's measurements on tiny inputs: AUC, density sweep, flop count, protocols."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from derain_lib.study.findings import (
    attention_findings,
    density_findings,
    generalisation_findings,
    protocol_findings,
)
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from derain_lib.data.embedded import embedded_dataset
from derain_lib.data.io import read_image_uint8
from derain_lib.intervals import mean_ci
from derain_lib.metrics import PROTOCOLS, score_pair
from derain_lib.models import build_model
from derain_lib.study import findings, pipeline
from derain_lib.study.beyond import cost
from derain_lib.study.beyond.attention_auc import attention_auc, real_rain_mask, roc_auc
from derain_lib.study.beyond.common import centre_crop, clean_images, clock, since
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
from derain_lib.study.beyond.generalisation import cells, generalisation, outputs
from derain_lib.study.beyond.protocols import protocol_effects, protocol_means, protocol_table
from derain_lib.study.paths import write_json

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


def test_density_sweep_scores_each_model_and_the_findings_name_them():
    clean = embedded_dataset("light", "test", size="smoke").load(0)[1]
    torch.manual_seed(0)
    ident = _Identity()
    rows = density_sweep({"sian-rain100l": ident, "sian-rain100h": ident}, [("a", clean)])
    model_rows = [r for r in rows if r["model"] != "input"]
    assert len(model_rows) == 2 * len(DENSITY_LEVELS)
    for r in model_rows:  # the identity model returns the rainy image: no gain
        assert r["gain"] == pytest.approx(0.0, abs=1e-9)
        assert r["psnr"] == pytest.approx(r["input_psnr"])
    text = density_findings(rows)
    assert "sian-rain100l" in text and "does not lose" in text


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

    def fake(hw, names):
        calls.append(hw)
        return [{"model": n, "status": "ok", "wall_s": float(len(calls))} for n in names]

    monkeypatch.setattr(cost, "cost_table", fake)
    path = tmp_path / "beyond" / "cost.json"
    first = cached_cost_table(path, (64, 96))
    assert first["key"] == cost_key((64, 96)) and first["key"]["size"] == "96x64"
    assert first["key"]["cpu"] and [r["model"] for r in first["rows"]] == list(COST_MODELS)
    saved = path.read_bytes()
    assert cached_cost_table(path, (64, 96)) == first and path.read_bytes() == saved
    assert len(calls) == 1  # reused: not measured again, the file untouched
    note = cost_note(first)
    assert note.startswith(f"Measured {first['measured']} on {first['key']['cpu']}")
    assert "`remeasure=True`" in note
    assert cached_cost_table(path, (64, 96), remeasure=True)["rows"][0]["wall_s"] == 2.0
    assert cached_cost_table(path, (32, 48))["key"]["size"] == "48x32"  # another size
    monkeypatch.setattr(cost, "COST_SOURCES", ("models", "metrics.py"))  # other code
    cached_cost_table(path, (32, 48))
    assert len(calls) == 4
    record = json.loads(path.read_text())
    record["rows"][0]["status"] = "not run: measurement failed: x"
    write_json(path, record)
    cached_cost_table(path, (32, 48))  # a failed measurement is not reused
    write_json(path, record["rows"])  # nor a file of the older format (rows alone)
    cached_cost_table(path, (32, 48))
    assert len(calls) == 6


def test_protocol_table_reproduces_the_input_rows_of_the_sample_pairs(shared):
    ref = json.loads((shared / "weights/reference/reference.json").read_text())["per_image"]
    d = shared / "data/rain100l_sample"
    rainy = [read_image_uint8(d / f"rainy/rain-{n}.png") for n in NAMES]
    clean = [read_image_uint8(d / f"norain/norain-{n}.png") for n in NAMES]
    per_image = protocol_table([("rain100l_sample", "input", rainy, clean)])
    assert len(per_image) == len(PROTOCOLS) * len(NAMES)
    rows = protocol_means(per_image)
    assert [r["protocol"] for r in rows] == list(PROTOCOLS)
    ours = rows[0]
    want = [ref[f"rain-{n}.png"]["input_rainy"] for n in NAMES]
    assert ours["psnr"] == pytest.approx(np.mean([v["psnr"] for v in want]), abs=1e-8)
    assert ours["ssim"] == pytest.approx(np.mean([v["ssim"] for v in want]), abs=1e-8)
    assert round(ours["psnr"], 4) == 26.5538 and round(ours["ssim"], 5) == 0.82652
    by = {r["protocol"]: r for r in rows}
    # the documented uint8-Y value (docs/metrics.md), and truncation is a no-op on uint8 input
    assert round(by["Y rounded to uint8"]["psnr"], 4) == 26.5517
    assert by["outputs truncated, not rounded"]["psnr"] == ours["psnr"]
    assert by["RGB"]["psnr"] != ours["psnr"]
    eff = {e["protocol"]: e for e in protocol_effects(per_image)}
    assert eff["Y rounded to uint8"]["diff_psnr"] == pytest.approx(26.5517 - 26.5538, abs=1e-4)
    assert eff["Y rounded to uint8"]["n"] == len(NAMES)
    assert eff["RGB"]["diff_psnr"] == pytest.approx(by["RGB"]["psnr"] - ours["psnr"], abs=1e-9)


def test_real_rain_mask_marks_pixels_brightened_beyond_tau():
    clean = np.full((4, 4, 3), 100, np.uint8)
    rainy = clean.copy()
    rainy[1, 2] = 140
    rainy[0, 0] = 104  # Y rises by about 3.5 < 10
    m = real_rain_mask(rainy, clean)
    assert m.sum() == 1 and m[1, 2]


def test_generalisation_scores_every_model_on_every_set_and_keeps_outputs():
    ds = embedded_dataset("light", "test", size="smoke")
    kept = outputs({"identity": _Identity()}, {"smoke light": ("rain100l", ds)}, max_images=2)
    rows = generalisation(kept)
    assert len(rows) == 2 and {r["image"] for r in rows} == set(kept[0].names)
    # the identity model's score is the Input score of the same images: no gain
    assert all(r["gain"] == pytest.approx(0.0, abs=1e-12) for r in rows)
    ins = [score_pair(*ds.load(i)) for i in (0, len(ds) - 1)]  # spread: the first and the last
    assert [r["input_psnr"] for r in rows] == pytest.approx([s[0] for s in ins], abs=1e-12)
    (cell,) = cells(rows)
    assert cell["n"] == 2 and cell["gain"] == pytest.approx(0.0, abs=1e-12)
    assert len(kept) == 1 and len(kept[0].derained) == 2


def test_generalisation_scores_the_centre_crop():
    ds = embedded_dataset("light", "test", size="smoke")
    kept = outputs({"identity": _Identity()}, {"l": ("rain100l", ds)}, max_images=1, crop=20)
    rows = generalisation(kept)
    rainy, clean = ds.load(0)
    h, w = clean.shape[:2]
    want = clean[(h - 20) // 2 : (h - 20) // 2 + 20, (w - 20) // 2 : (w - 20) // 2 + 20]
    assert np.array_equal(kept[0].clean[0], want) and kept[0].rainy[0].shape == (20, 20, 3)
    assert rows[0]["psnr"] == pytest.approx(score_pair(centre_crop(rainy, 20), want)[0], abs=1e-12)
    assert centre_crop(clean, None) is clean and centre_crop(clean, 10_000).shape == clean.shape


def test_findings_are_generated_from_the_saved_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path))
    out = tmp_path / "quick" / "beyond"
    clean = embedded_dataset("light", "test", size="smoke").load(0)[1]
    write_json(out / "density.json", density_sweep({"sian-rain100l": _Identity()}, [("a", clean)]))
    measured = [
        {"model": "sian", "status": "ok", "gflop_per_mp": 123.4, "cpu_s": 0.5},
        {"model": "prenet", "status": "ok", "gflop_per_mp": 50.0, "cpu_s": 0.25},
        {"model": "sian-baseline", "status": "not run: measurement failed: x"},
    ]
    write_json(out / "cost.json", {"key": {}, "measured": "then", "rows": measured})
    text = findings.beyond("quick")
    assert text.startswith(f"### {findings.HEADING} (profile `quick`)")
    assert "sian-rain100l: median gain +0.00 dB at 'drizzle'" in text  # the identity gains 0
    assert "2 of 3 models measured: sian 123 GFLOP/MP, 0.50 CPU s; prenet 50 GFLOP/MP" in text
    assert "SIAN takes 2.0x PReNet's CPU time" in text
    assert "No attention AUC was measured." in text and "No model was scored." in text


def test_density_findings_state_the_calibration_and_tone_shifts():
    rows = []
    for img, shift in (("a", 0.0), ("b", -9.0)):
        for lv, name in enumerate(("drizzle", "light")):
            base = {"image": img, "level": lv, "level_name": name, "stand_in": img == "b"}
            rows.append({**base, "model": "input", "input_psnr": 30.0 - lv, "gain": 0.0})
            for m, g in (("sian-rain100l", 2.0), ("sian-rain100h", 1.0 if img == "a" else -3.0)):
                rows.append(
                    {
                        **base,
                        "model": m,
                        "input_psnr": 30.0 - lv,
                        "gain": g,
                        "tone_shift": shift,
                        "tone_shifted": abs(shift) > TONE_SHIFT_Y,
                    }
                )
    cal = {
        "light": {
            "benchmark": "rain100l",
            "real_input_psnr": 26.9,
            "real_images": 100,
            "real_test_set": "Rain100L: test",
            "factor": 1.7,
            "synthetic_input_psnr": 27.0,
        },
        "heavy": {"benchmark": "rain100h", "real_input_psnr": None, "factor": 1.0},
    }
    text = density_findings({"rows": rows, "images": 2, "calibration": cal})
    assert text.startswith("2 clean images (1 from real test sets, the rest stand-ins).")
    assert "density x1.70 gives a mean synthetic Input PSNR of 27.00 dB against 26.90 dB" in text
    assert "0.10 dB apart" in text and "the heavy levels are uncalibrated" in text
    assert (
        "sian-rain100h: median gain -1.00 dB at 'drizzle' (Input 30.00 dB, 1 of 2 images lose)"
        in text
    )
    assert "beyond the input's) in 2 of 4 outputs, worst -9.0 on b at 'drizzle'" in text
    assert "median difference -3.00 dB over 2 images (2 lower)" in text and " loses " in text


def test_attention_findings_name_the_best_channel_the_inverse_one_and_the_controls():
    rows = [
        {
            "source": "s",
            "image": "x",
            "stage": 1,
            "scale": 1,
            "what": "mask",
            "channel": 0,
            "auc": 0.52,
        },
        {
            "source": "s",
            "image": "x",
            "stage": 1,
            "scale": 2,
            "what": "mask",
            "channel": 1,
            "auc": 0.81,
        },
        {
            "source": "s",
            "image": "x",
            "stage": 2,
            "scale": 4,
            "what": "mask",
            "channel": 3,
            "auc": 0.20,
        },
        {
            "source": "s",
            "image": "x",
            "stage": 0,
            "scale": 1,
            "what": "edge",
            "channel": None,
            "auc": 0.70,
        },
    ]
    text = attention_findings(rows)
    assert "best mask AUC 0.810 (stage 1, scale 1/2, channel 1)" in text
    assert (
        "lowest 0.200 (stage 2, scale 1/4, channel 3, i.e. it marks rain-free pixels "
        "with AUC 0.800)" in text
    )
    assert "33 % of the masks are within 0.05 of chance" in text
    assert "the edge magnitude reaches 0.700 (scale 1), 33 % of the masks score higher" in text


def test_generalisation_and_protocol_findings_give_numbers_not_counts():
    gen = [
        {
            "model": "sian-rain100l",
            "test_set": t,
            "benchmark": b,
            "image": i,
            "input_psnr": 20.0,
            "psnr": 20.0 + g + i,
            "ssim": 0.9,
            "gain": g + i,
        }
        for t, b, g in (("Rain100L: test", "rain100l", 10.0), ("Rain100H: test", "rain100h", 1.0))
        for i in (0, 1)
    ]
    text = generalisation_findings(gen)
    lo, hi = mean_ci([10.0, 11.0])[1:]
    assert f"+10.50 dB [{lo:+.2f}, {hi:+.2f}] on Rain100L: test (n=2)" in text
    assert text.index("Rain100L: test") < text.index("Rain100H: test")  # its own benchmark first
    assert "smallest gain is sian-rain100l on Rain100H: test: +1.50 dB" in text
    proto = [
        {
            "test_set": "Rain100H: test",
            "scored": "prenet-rain100h (released)",
            "protocol": p,
            "image": i,
            "psnr": v + i,
            "ssim": 0.9,
        }
        for p, v in (
            ("MATLAB Y (ours)", 30.0),
            ("RGB", 28.5),
            ("outputs truncated, not rounded", 29.4),
        )
        for i in (0, 1)
    ]
    text = protocol_findings(proto)
    assert "RGB scores 1.50-1.50 dB below ours" in text
    assert (
        "closest protocol change is 'outputs truncated, not rounded' at -0.60 dB: "
        "it explains the gap." in text
    )
    assert "29.46 dB in the PReNet README and 30.11" in text


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


def test_clean_images_take_each_distinct_ground_truth_once():
    light = embedded_dataset("light", "test", size="smoke")
    heavy = embedded_dataset("heavy", "test", size="smoke")
    got = clean_images({"light": light, "heavy": heavy}, 2)
    last = len(light) - 1  # spread over the set: the first and the last
    assert [name for name, _ in got] == ["light: rain-001", f"light: rain-{last + 1:03d}"]
    assert np.array_equal(got[1][1], light.load(last)[1])


def test_clean_images_shrink_to_the_sweep_side():
    ds = embedded_dataset("light", "test", size="smoke")
    (_, img), *_ = clean_images({"light": ds}, 1, side=48)
    assert img.shape == (32, 48, 3)


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
    assert cost.main(["sian", "x", "1", "1"]) == 2  # bad arguments: a usage line, no traceback


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
    assert "not run: released weights" in executed.read_text()
    assert f"{findings.HEADING} (profile `smoke`)" in executed.read_text()
