"""Losses: the authors' zero-padded SSIM (checked against the formula written out here),
the valid-region variant equal to scikit-image's, and the stage sum of Eq. 13."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from devices import DEVICES, DTYPES, tol
from skimage import data
from skimage.metrics import structural_similarity

from derain_lib.data.io import read_image_uint8
from derain_lib.device import exact_fp32
from derain_lib.losses import ssim, stage_loss


def _pair() -> tuple[np.ndarray, np.ndarray]:
    img = data.astronaut()[100:164, 150:230].astype(np.float64) / 255
    rng = np.random.default_rng(0)
    noisy = np.clip(img + rng.normal(0, 0.08, img.shape), 0, 1)
    return img, noisy


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1)[None].float()


def test_ssim_matches_skimage() -> None:
    a, b = _pair()
    ref = structural_similarity(
        a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0,
    )  # fmt: skip
    got = float(ssim(_t(a), _t(b), padding="valid"))
    assert 0.2 < ref < 0.95  # a non-trivial pair
    assert abs(got - ref) < 1e-4, (got, ref)
    assert float(ssim(_t(a), _t(a))) == pytest.approx(1.0, abs=1e-6)


def test_ssim_per_image_and_gradient() -> None:
    a, b = _pair()
    x = torch.cat([_t(b), _t(a)]).requires_grad_(True)
    y = torch.cat([_t(a), _t(a)])
    per = ssim(x, y, reduction="none")
    assert per.shape == (2,) and float(per[1].detach()) == pytest.approx(1.0, abs=1e-6)
    (-per.mean()).backward()
    g = x.grad
    assert torch.isfinite(g).all() and g[0].abs().sum() > 0
    # a small step along -grad of -SSIM raises SSIM: the gradient is right
    with torch.no_grad():
        better = ssim(x[:1] - 0.5 * g[:1] / g[:1].abs().max(), y[:1])
    assert float(better) > float(per[0].detach())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kind", "fn"), [("l1", F.l1_loss), ("mse", F.mse_loss)])
def test_stage_loss_sums_over_stages(kind: str, fn, device: str, dtype: torch.dtype) -> None:
    """Stage outputs in ``dtype`` (bf16 autocast's) against a float32 target, as in training:
    each stage's loss is taken in float32, so bfloat16 is the float32 result of its outputs."""
    torch.manual_seed(0)
    y = torch.rand(2, 3, 16, 16)
    outs = [torch.rand(2, 3, 16, 16).to(dtype) for _ in range(3)]
    want = sum(float(fn(o.float(), y)) for o in outs)
    got = stage_loss([o.to(device) for o in outs], y.to(device), kind)
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(want, rel=1e-6)


def test_ssim_stage_loss_is_minus_the_sum() -> None:
    torch.manual_seed(0)
    y = torch.rand(1, 3, 24, 24)
    outs = [y + 0.1 * torch.randn_like(y), y.clone()]
    assert float(stage_loss(outs, y, "ssim")) == pytest.approx(
        -(float(ssim(outs[0], y)) + 1.0), abs=1e-6
    )
    valid = -(float(ssim(outs[0], y, padding="valid")) + 1.0)
    assert float(stage_loss(outs, y, "ssim-valid")) == pytest.approx(valid, abs=1e-6)


def test_unknown_loss_and_small_images_are_errors() -> None:
    y = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="unknown loss 'huber'"):
        stage_loss([y], y, "huber")
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), padding="valid")
    with pytest.raises(ValueError, match="padding must be"):
        ssim(y, y, padding="reflect")


def _authors_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """The authors' ``models/SSIM.py`` written out in float64 numpy: an 11x11 Gaussian
    window (sigma 1.5) correlated with every channel of the zero-padded (5 px) images,
    C1 = 0.01^2, C2 = 0.03^2, the SSIM map averaged over every pixel and channel."""
    x = np.arange(11) - 5
    g = np.exp(-(x**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()

    def filt(img: np.ndarray) -> np.ndarray:  # (C, H, W) -> (C, H, W), 'same' size
        p = np.pad(img, ((0, 0), (5, 5), (5, 5)))
        h, wd = img.shape[1:]
        return sum(w[i, j] * p[:, i : i + h, j : j + wd] for i in range(11) for j in range(11))

    mu1, mu2 = filt(a), filt(b)
    s11 = filt(a * a) - mu1**2
    s22 = filt(b * b) - mu2**2
    s12 = filt(a * b) - mu1 * mu2
    c1, c2 = 0.01**2, 0.03**2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
    return float(m.mean())


def _sample_patch(shared: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A (3, size, size) rainy/clean patch of the shared Rain100L sample, in [0, 1]."""
    d = shared / "data/rain100l_sample"
    rainy = read_image_uint8(d / "rainy/rain-001.png")
    clean = read_image_uint8(d / "norain/norain-001.png")
    crop = (slice(40, 40 + size), slice(60, 60 + size))
    return tuple(  # type: ignore[return-value]
        (im[crop].astype(np.float64) / 255).transpose(2, 0, 1) for im in (rainy, clean)
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_ssim_loss_is_the_authors_formula(shared: Path, device: str, dtype: torch.dtype) -> None:
    """The loss of a stage output in ``dtype`` on ``device`` (float32 target, TF32 off):
    float32 within 1e-6 of the formula; bfloat16 rounds the output to 8 significant bits
    (up to 2e-3 per pixel), which moves SSIM by up to 5e-3."""
    rng = np.random.default_rng(3)
    pairs = []
    for _ in range(3):  # random pairs, correlated so that SSIM is far from 0 and 1
        y = rng.random((3, 40, 37))
        pairs.append((np.clip(y + rng.normal(0, 0.2, y.shape), 0, 1), y))
    pairs.append(_sample_patch(shared, 120))
    for x, y in pairs:
        want = -_authors_ssim(x, y)
        out, target = (torch.from_numpy(a)[None].float().to(device) for a in (x, y))
        with exact_fp32():
            got = float(stage_loss([out.to(dtype)], target))
        assert abs(got - want) < tol(dtype, 1e-6, 5e-3), (got, want)
        assert -0.99 < want < -0.01


def test_zero_padded_and_valid_ssim_differ_on_a_paper_patch(shared: Path) -> None:
    x, y = (torch.from_numpy(a)[None].float() for a in _sample_patch(shared, 120))
    authors = float(stage_loss([x], y, "ssim"))
    valid = float(stage_loss([x], y, "ssim-valid"))
    # the 5-px zero-padded border band (16 % of the pixels) moves the loss far beyond rounding
    assert abs(authors - valid) > 1e-3, (authors, valid)
