"""Chapter 07's measurements on tiny inputs: AUC, density sweep, flop count, protocols."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from derain_lib.data.embedded import embedded_dataset
from derain_lib.data.io import read_image_uint8, write_png
from derain_lib.metrics import score
from derain_lib.models import build_model
from derain_lib.study import beyond, findings, pipeline
from derain_lib.study.beyond import (
    COST_MODELS,
    DENSITY_LEVELS,
    PROTOCOLS,
    attention_auc,
    attention_findings,
    cached_cost_table,
    centre_crop,
    clean_images,
    clock,
    cost_key,
    cost_note,
    count_flops,
    density_findings,
    density_sweep,
    derain_photos,
    generalisation,
    measure_cost,
    protocol_table,
    rainy_at,
    real_rain_mask,
    roc_auc,
    since,
)
from derain_lib.study.paths import write_json
from derain_lib.viz import beyond as beyond_viz

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
    assert {(r["stage"], r["scale"], r["what"]) for r in rows} == {
        (k, s, w) for k in (1, 2) for s in (1, 2, 4) for w in ("mask", "dog")
    }
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

    monkeypatch.setattr(beyond, "cost_table", fake)
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
    monkeypatch.setattr(beyond, "COST_SOURCES", ("models", "metrics.py"))  # other code
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
    rows = protocol_table([("rain100l_sample", "input", rainy, clean)])
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


def test_real_rain_mask_marks_pixels_brightened_beyond_tau():
    clean = np.full((4, 4, 3), 100, np.uint8)
    rainy = clean.copy()
    rainy[1, 2] = 140
    rainy[0, 0] = 104  # Y rises by about 3.5 < 10
    m = real_rain_mask(rainy, clean)
    assert m.sum() == 1 and m[1, 2]


def test_generalisation_scores_every_model_on_every_set_and_keeps_outputs():
    ds = embedded_dataset("light", "test", size="smoke")
    rows, kept = generalisation({"identity": _Identity()}, {"smoke light": ds}, max_images=2)
    assert len(rows) == 1 and rows[0]["n"] == 2
    # the identity model's score is the Input score of the same images
    ins = [score(*ds.load(i)) for i in range(2)]
    assert rows[0]["psnr"] == pytest.approx(np.mean([s[0] for s in ins]), abs=1e-12)
    assert len(kept) == 1 and len(kept[0].derained) == 2


def test_generalisation_scores_the_centre_crop():
    ds = embedded_dataset("light", "test", size="smoke")
    rows, kept = generalisation({"identity": _Identity()}, {"l": ds}, max_images=1, crop=20)
    rainy, clean = ds.load(0)
    h, w = clean.shape[:2]
    want = clean[(h - 20) // 2 : (h - 20) // 2 + 20, (w - 20) // 2 : (w - 20) // 2 + 20]
    assert np.array_equal(kept[0].clean[0], want) and kept[0].rainy[0].shape == (20, 20, 3)
    assert rows[0]["crop"] == 20
    assert rows[0]["psnr"] == pytest.approx(score(centre_crop(rainy, 20), want)[0], abs=1e-12)
    assert centre_crop(clean, None) is clean and centre_crop(clean, 10_000).shape == clean.shape


def test_findings_are_generated_from_the_saved_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path))
    out = tmp_path / "quick" / "beyond"
    clean = embedded_dataset("light", "test", size="smoke").load(0)[1]
    write_json(out / "density.json", density_sweep({"sian-rain100l": _Identity()}, [("a", clean)]))
    cost = [
        {"model": "sian", "status": "ok", "gflop_per_mp": 123.4, "cpu_s": 0.5},
        {"model": "prenet", "status": "not run: measurement failed: x"},
    ]
    write_json(out / "cost.json", {"key": {}, "measured": "then", "rows": cost})
    text = findings.beyond("quick")
    assert text.startswith(f"### {findings.HEADING} (profile `quick`)")
    assert "sian-rain100l: largest gain +0.00 dB" in text  # the identity gains nothing
    assert "1 of 2 models measured; sian 123 GFLOP/MP, 0.50 CPU s." in text
    assert "No attention AUC was measured." in text and "0 (weights, test set) cells" in text


def test_attention_findings_flag_chance_inverse_masks_and_name_the_best_cell():
    rows = [
        {"source": "s", "stage": 1, "scale": 1, "what": "mask", "auc": 0.52},
        {"source": "s", "stage": 1, "scale": 2, "what": "mask", "auc": 0.81},
        {"source": "s", "stage": 1, "scale": 4, "what": "mask", "auc": 0.20},
        {"source": "s", "stage": 1, "scale": 1, "what": "dog", "auc": 0.90},
    ]
    text = attention_findings(rows)
    assert "0.200 (stage 1, scale 4) to 0.810 (stage 1, scale 2)" in text
    assert "1 of 3 masks have an AUC below 0.45" in text and "up to 0.800" in text
    assert "chance (AUC within 0.05 of 0.5) at stage 1 scale 1." in text and "0.900" in text
    assert "below 0.45" not in attention_findings(rows[:2])


def test_figures_draw_from_saved_rows(tmp_path):
    clean = embedded_dataset("light", "test", size="smoke").load(0)[1]
    rows = density_sweep({"sian-rain100l": _Identity()}, [("a", clean)])
    assert beyond_viz.density_figure(rows) is not None
    assert beyond_viz.density_figure([r for r in rows if r["model"] == "input"]) is None
    auc = [
        {"source": "s", "stage": k, "scale": s, "what": w, "auc": 0.6}
        for k in (1, 2)
        for s in (1, 2, 4)
        for w in ("mask", "dog")
    ]
    assert beyond_viz.auc_figure(auc) is not None and beyond_viz.auc_figure([]) is None
    gen = [{"model": "m", "test_set": "t", "n": 1, "psnr": 30.0, "ssim": 0.9}]
    assert beyond_viz.generalisation_figure(gen) is not None
    assert beyond_viz.photos_figure(tmp_path / "photos") is None
    photo = write_png(tmp_path / "p.png", np.full((40, 120, 3), 90, np.uint8))
    written = derain_photos({"identity": _Identity()}, [photo], 60, tmp_path / "photos")
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        "photos/rainy/p.png",
        "photos/identity/p.png",
    ]
    assert read_image_uint8(written[1]).shape == (20, 60, 3)  # longer side shrunk to 60
    assert beyond_viz.photos_figure(tmp_path / "photos") is not None


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
    assert [name for name, _ in got] == ["light: rain-001", "light: rain-002"]
    assert np.array_equal(got[1][1], light.load(1)[1])


def test_clean_images_shrink_to_the_sweep_side():
    ds = embedded_dataset("light", "test", size="smoke")
    (_, img), *_ = clean_images({"light": ds}, 1, side=48)
    assert img.shape == (32, 48, 3)


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
    assert {r["model"] for r in density} == {"input"}  # no weights: the inputs only
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
