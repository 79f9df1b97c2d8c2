"""MATLAB-protocol PSNR/SSIM: reference values, edge cases, variants, folder pairing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from devices import DEVICES, DTYPES, tol
from skimage.color import rgb2ycbcr

from derain_lib.data.io import read_image, read_image_uint8, write_png
from derain_lib.metrics import (
    pair_folders,
    pair_key,
    psnr_y,
    quantize,
    rgb_to_y,
    score_folder,
    score_pair,
    ssim_y,
    summarize,
)

NAMES = ["001", "025", "050", "100"]


def test_input_scores_of_the_sample_pairs_match_the_reference(shared):
    ref = json.loads((shared / "weights/reference/reference.json").read_text())["per_image"]
    d = shared / "data/rain100l_sample"
    rows = []
    for n in NAMES:
        p, s = score_pair(
            read_image_uint8(d / f"rainy/rain-{n}.png"),
            read_image_uint8(d / f"norain/norain-{n}.png"),
        )
        assert abs(p - ref[f"rain-{n}.png"]["input_rainy"]["psnr"]) < 1e-8
        assert abs(s - ref[f"rain-{n}.png"]["input_rainy"]["ssim"]) < 1e-8
        rows.append((p, s))
    # the data README's mean Input score of the four pairs
    assert round(float(np.mean([r[0] for r in rows])), 4) == 26.5538
    assert round(float(np.mean([r[1] for r in rows])), 5) == 0.82652


def test_identical_images_give_infinite_psnr_and_unit_ssim():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    p, s = score_pair(img, img)
    assert math.isinf(p) and p > 0
    assert s == pytest.approx(1.0, abs=1e-12)


def test_ssim_is_symmetric_and_psnr_matches_its_definition():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    assert ssim_y(ya, yb) == pytest.approx(ssim_y(yb, ya), abs=1e-12)
    assert ssim_y(ya, yb) < 1
    mse = np.mean((ya - yb) ** 2)
    assert psnr_y(ya, yb) == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-12)


def test_y_is_matlab_rgb2ycbcr_unrounded():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [12, 200, 37]]], dtype=np.uint8)
    y = rgb_to_y(rgb)
    expected = 16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255
    assert np.allclose(y, expected, atol=1e-10)
    assert not np.allclose(y, np.round(y))  # not rounded by default
    assert np.array_equal(rgb_to_y(rgb, y_round=True), np.round(rgb2ycbcr(rgb)[..., 0]))


def test_quantize_rounds_half_to_even_clips_or_truncates():
    x = np.array([[[-0.1, 0.5 / 255, 1.5 / 255]], [[2.5 / 255, 254.6 / 255, 1.2]]], np.float32)
    assert quantize(x).ravel().tolist() == [0, 0, 2, 2, 255, 255]
    assert quantize(x, "truncate").ravel().tolist() == [0, 0, 1, 2, 254, 255]
    t = torch.from_numpy(x).permute(2, 0, 1)[None]
    assert np.array_equal(quantize(t), quantize(x))
    with pytest.raises(ValueError, match="round' or 'truncate"):
        quantize(x, "floor")


def test_float_input_is_scored_after_quantisation():
    rng = np.random.default_rng(2)
    gt = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    f = gt.astype(np.float32) / 255 + rng.uniform(-0.4, 0.4, gt.shape).astype(np.float32) / 255
    assert score_pair(f, gt) == score_pair(quantize(f), gt)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_an_output_tensor_is_scored_as_the_png_it_would_be_saved_as(device, dtype):
    """A 1CHW model output on ``device`` in ``dtype`` is quantised from its float32 value:
    float32 gives exactly the numpy image's scores; bfloat16 keeps 8 significant bits
    (255 * 2**-9 < 0.5 grey levels), so its PNG is within 1 grey level of float32's."""
    rng = np.random.default_rng(2)
    gt = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    f = np.clip(gt / 255 + rng.normal(0, 0.02, gt.shape), 0, 1).astype(np.float32)
    t = torch.from_numpy(f).permute(2, 0, 1)[None].to(device, dtype)
    levels = np.abs(quantize(t).astype(int) - quantize(f).astype(int)).max()
    assert levels <= tol(dtype, 0, 1)
    assert score_pair(t, gt) == score_pair(quantize(t), gt)
    psnr, ssim = score_pair(t, gt)
    want = score_pair(f, gt)
    assert abs(psnr - want[0]) <= tol(dtype, 0, 0.5) and abs(ssim - want[1]) <= tol(dtype, 0, 0.01)


def test_variants_change_the_numbers_the_documented_way(shared):
    d = shared / "data/rain100l_sample"
    a = read_image_uint8(d / "rainy/rain-001.png")
    b = read_image_uint8(d / "norain/norain-001.png")
    base = score_pair(a, b)
    # ssim.m downsampling factor round(min(H, W) / 256) is 1 for 481x321: no change
    assert score_pair(a, b, ssim_downsample=True) == base
    big_a, big_b = (
        np.kron(a, np.ones((2, 2, 1), np.uint8)),
        np.kron(b, np.ones((2, 2, 1), np.uint8)),
    )
    assert score_pair(big_a, big_b, ssim_downsample=True)[1] != score_pair(big_a, big_b)[1]
    assert score_pair(a, b, y_round=True)[0] != base[0]


def test_mismatched_sizes_are_an_error():
    with pytest.raises(ValueError, match="sizes differ"):
        psnr_y(np.zeros((10, 12)), np.zeros((12, 10)))


def test_pairing_by_number_then_by_name(tmp_path):
    assert pair_key("rain-001.png") == "1" and pair_key("norain-001.png") == "1"
    assert pair_key("901_3.jpg") == "901_3" and pair_key("abc.png") is None
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    img = np.full((16, 16, 3), 100, np.uint8)
    for n in ("001", "002", "007"):
        write_png(pred / f"rain-{n}.png", img)
    for n in ("001", "002", "003"):
        write_png(gt / f"norain-{n}.png", img)
    p = pair_folders(pred, gt)
    assert [(a.name, b.name) for a, b in p.pairs] == [
        ("rain-001.png", "norain-001.png"),
        ("rain-002.png", "norain-002.png"),
    ]
    assert [x.name for x in p.unpaired_pred] == ["rain-007.png"]
    assert [x.name for x in p.unpaired_gt] == ["norain-003.png"]
    # names without numbers pair by stem
    write_png(tmp_path / "a/photo.png", img)
    write_png(tmp_path / "b/photo.png", img)
    assert len(pair_folders(tmp_path / "a", tmp_path / "b").pairs) == 1


def test_score_folder_skips_mismatched_and_tiny_pairs_and_scores_the_rest(tmp_path):
    write_png(tmp_path / "p/rain-1.png", np.zeros((16, 16, 3), np.uint8))
    write_png(tmp_path / "g/norain-1.png", np.zeros((16, 20, 3), np.uint8))
    write_png(tmp_path / "p/rain-2.png", np.zeros((9, 9, 3), np.uint8))
    write_png(tmp_path / "g/norain-2.png", np.zeros((9, 9, 3), np.uint8))
    write_png(tmp_path / "p/rain-3.png", np.full((16, 16, 3), 90, np.uint8))
    write_png(tmp_path / "g/norain-3.png", np.full((16, 16, 3), 100, np.uint8))
    rows, pairing = score_folder(tmp_path / "p", tmp_path / "g")
    assert [r.name for r in rows] == ["rain-3.png"]
    assert len(pairing.skipped) == 2
    assert "rain-1.png: size 16x16 differs" in pairing.skipped[0]
    assert "9x9; SSIM needs at least 11x11" in pairing.skipped[1]


def test_pairing_survives_a_stray_file_and_reads_rain1400_names(tmp_path):
    img = np.full((16, 16, 3), 100, np.uint8)
    for n in ("001", "002"):
        write_png(tmp_path / f"p/rain-{n}.png", img)
        write_png(tmp_path / f"g/norain-{n}.png", img)
    write_png(tmp_path / "p/readme.png", img)
    p = pair_folders(tmp_path / "p", tmp_path / "g")
    assert [a.name for a, _ in p.pairs] == ["rain-001.png", "rain-002.png"]
    assert [x.name for x in p.unpaired_pred] == ["readme.png"]
    for k in range(1, 15):
        write_png(tmp_path / f"r/901_{k}.png", img)
    write_png(tmp_path / "c/901.png", img)
    write_png(tmp_path / "c/902.png", img)
    p = pair_folders(tmp_path / "r", tmp_path / "c")
    assert len(p.pairs) == 14 and {g.name for _, g in p.pairs} == {"901.png"}
    assert [x.name for x in p.unpaired_gt] == ["902.png"] and not p.unpaired_pred


def test_summary_is_the_arithmetic_mean(shared):
    d = shared / "data/rain100l_sample"
    rows, _ = score_folder(d / "rainy", d / "norain")
    s = summarize(rows)
    assert s["n"] == 4
    assert s["psnr"] == pytest.approx(np.mean([r.psnr for r in rows]))
    assert read_image(d / "rainy/rain-001.png").dtype == np.float32
