"""Losses: differentiable RGB SSIM equal to scikit-image's, and the stage sum of Eq. 13."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data
from skimage.metrics import structural_similarity

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
    got = float(ssim(_t(a), _t(b)))
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


@pytest.mark.parametrize(("kind", "fn"), [("l1", F.l1_loss), ("mse", F.mse_loss)])
def test_stage_loss_sums_over_stages(kind: str, fn) -> None:
    torch.manual_seed(0)
    y = torch.rand(2, 3, 16, 16)
    outs = [torch.rand(2, 3, 16, 16) for _ in range(3)]
    want = sum(float(fn(o, y)) for o in outs)
    assert float(stage_loss(outs, y, kind)) == pytest.approx(want, rel=1e-6)


def test_ssim_stage_loss_is_minus_the_sum() -> None:
    torch.manual_seed(0)
    y = torch.rand(1, 3, 24, 24)
    outs = [y + 0.1 * torch.randn_like(y), y.clone()]
    assert float(stage_loss(outs, y, "ssim")) == pytest.approx(
        -(float(ssim(outs[0], y)) + 1.0), abs=1e-6
    )


def test_unknown_loss_and_small_images_are_errors() -> None:
    y = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="unknown loss 'huber'"):
        stage_loss([y], y, "huber")
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
