"""Evaluation: tiling arithmetic, tiled vs whole inference, per-image scores, saved PNGs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from derain_lib import inference
from derain_lib.data.embedded import embedded_dataset
from derain_lib.data.io import read_image_uint8
from derain_lib.data.sources import open_data
from derain_lib.evaluate import evaluate
from derain_lib.inference import predict, tile_spans, tiled_forward
from derain_lib.metrics import quantize, score_pair
from derain_lib.models import build_model


class Local(nn.Module):
    """Three 3x3 convs: a receptive field of radius 3, so tiles with overlap >= 8 are exact."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 3, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x - self.net(x)]


class Identity(nn.Module):
    """Returns the rainy input: its scores are the benchmark's "Input" row."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x + 0 * self.w]


@pytest.mark.parametrize("n", [8, 63, 64, 65, 200, 321, 481, 1000])
@pytest.mark.parametrize(("tile", "overlap"), [(64, 16), (64, 32), (128, 48), (100, 0)])
def test_tile_spans_partition_the_axis(n: int, tile: int, overlap: int) -> None:
    spans = tile_spans(n, tile, overlap)
    assert spans[0][2] == 0 and spans[-1][3] == n
    for (s, e, k0, k1), nxt in zip(spans, spans[1:] + [None], strict=True):
        assert (
            s % 4 == 0 and s <= k0 < k1 <= e <= n and e - s <= max(tile + 3, n if n <= tile else 0)
        )
        if nxt is not None:
            assert k1 == nxt[2]  # kept regions meet exactly
            assert min(k1 - nxt[0], e - k1) >= overlap // 2  # seams are away from tile edges
    if n <= tile:
        assert spans == [(0, n, 0, n)]


def test_bad_tiling_arguments() -> None:
    with pytest.raises(ValueError, match="overlap < tile"):
        tile_spans(100, 32, 32)
    with pytest.raises(ValueError, match="tile >= 8"):
        tile_spans(100, 4, 0)


def test_tiles_stitch_exactly_for_a_local_model() -> None:
    model = Local().eval()
    x = torch.rand(1, 3, 70, 101)
    with torch.no_grad():
        whole = model(x)[0]
    tiled = tiled_forward(model, x, 32, 12)
    assert float((tiled - whole).abs().max()) < 1e-6
    bad = tiled_forward(model, x, 32, 0)  # no overlap: seams differ (the test can fail)
    assert float((bad - whole).abs().max()) > 1e-4


def test_sian_image_that_fits_one_tile_is_the_whole_image_result() -> None:
    model = build_model("sian", channels=8).eval()
    x = torch.rand(1, 3, 40, 56)
    with torch.inference_mode():
        whole = model(x)[-1]
    assert torch.equal(tiled_forward(model, x, 64, 32), whole)
    assert torch.equal(tiled_forward(model, x, None), whole)


def test_evaluate_scores_every_image_and_saves_pngs(tmp_path: Path) -> None:
    ds = embedded_dataset("light", "test", "smoke")
    result = evaluate(Identity(), ds, out_dir=tmp_path)
    assert result.n == len(ds) >= 2
    with open(tmp_path / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == [p.name for p in ds.pairs]
    for i, r in enumerate(rows):
        rainy, clean = ds.load(i)
        ps, ss = score_pair(rainy, clean)  # the identity model scores the rainy input
        assert float(r["psnr"]) == pytest.approx(ps, abs=1e-9)
        assert float(r["ssim"]) == pytest.approx(ss, abs=1e-9)
        png = tmp_path / "outputs" / f"{Path(ds.pairs[i].name).stem}.png"
        assert np.array_equal(read_image_uint8(png), quantize(rainy))
    assert result.psnr == pytest.approx(np.mean([float(r["psnr"]) for r in rows]))
    table = result.table
    assert list(table.columns) == ["name", "psnr", "ssim"] and len(table) == len(ds)
    assert evaluate(Identity(), ds, max_images=1).n == 1


def test_derain_files_tiles_large_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from derain_lib.data.io import write_png

    rng = np.random.default_rng(0)
    src = write_png(tmp_path / "big.png", rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
    calls = []
    real = inference.tiled_forward

    def spy(model, x, tile, overlap, *options):
        calls.append(tile)
        return real(model, x, tile, overlap, *options)

    model = Local().eval()
    whole = predict(model, read_image_uint8(src).astype(np.float32) / 255)
    monkeypatch.setattr(inference, "tiled_forward", spy)
    monkeypatch.setattr(inference, "MAX_WHOLE_PIXELS", 64 * 64)
    monkeypatch.setattr(inference, "AUTO_TILE", 48)
    monkeypatch.setattr(inference, "AUTO_OVERLAP", 16)
    list(inference.derain_files(model, [src], tmp_path / "out.png"))
    assert calls == [48]  # above the limit: tiled
    assert np.array_equal(read_image_uint8(tmp_path / "out.png"), quantize(whole))
    monkeypatch.setattr(inference, "MAX_WHOLE_PIXELS", 10**9)
    list(inference.derain_files(model, [src], tmp_path / "out2.png"))
    assert calls == [48, None]  # below: whole


def test_open_data_specs(tmp_path: Path) -> None:
    assert len(open_data("embedded:light:test:smoke")) == len(
        embedded_dataset("light", "test", "smoke")
    )
    from derain_lib.errors import DerainError

    with pytest.raises(DerainError, match="expected embedded:<light|heavy>"):
        open_data("embedded:light")
    with pytest.raises(DerainError):
        open_data("no_such_folder", root=tmp_path)


@pytest.mark.slow
def test_released_sian_reproduces_the_reference_score_and_tiles_closely(shared: Path) -> None:
    """rain-001 with the released Rain100L weights: the authors' per-image score to 1e-4 dB,
    and the tiled result against the whole image (tile 256, overlap 96: 4 tiles)."""
    from derain_lib.data.datasets import open_dataset
    from derain_lib.weights import load_model

    ref = json.loads((shared / "weights" / "reference" / "reference.json").read_text())
    want = ref["per_image"]["rain-001.png"]["sian_rain100l"]
    model = load_model("sian-rain100l", weights_dir=shared / "weights").model
    ds = open_dataset(shared / "data" / "rain100l_sample")
    assert ds.pairs[0].name.startswith("rain-001")
    result = evaluate(model, ds, max_images=1)
    assert result.psnr == pytest.approx(want["psnr"], abs=1e-4)
    assert result.ssim == pytest.approx(want["ssim"], abs=1e-6)
    rainy, clean = ds.load(0)
    whole = predict(model, rainy)
    tiled = predict(model, rainy, tile=256, overlap=96)
    diff = np.abs(tiled - whole)
    tiled_psnr = score_pair(tiled, clean)[0]
    print(
        f"tiled vs whole: max {diff.max():.2e}, mean {diff.mean():.2e}, "
        f"99.9% {np.quantile(diff, 0.999):.2e}; PSNR {tiled_psnr:.4f} vs {result.psnr:.4f}"
    )
    # not exact (see derain_lib.evaluate): small on average, and the score barely moves
    assert diff.mean() < 1e-3 and abs(tiled_psnr - result.psnr) < 0.1
