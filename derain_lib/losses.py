"""Training losses summed over the stage outputs (Eq. 13): negative SSIM, L1, MSE.

SSIM here is the differentiable RGB version the paper trains with: an 11x11 Gaussian
window (sigma 1.5), K1 0.01, K2 0.03, population (co)variances, data range 1, averaged
over the valid region, the channels and the batch. It equals
``skimage.metrics.structural_similarity(..., channel_axis=-1, gaussian_weights=True,
use_sample_covariance=False, data_range=1)``. (Scores for tables use
``derain_lib.metrics`` instead: the MATLAB protocol on luminance.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float32):
    """The 1-D Gaussian of ``size`` taps, normalised to sum 1."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype)


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering of every channel."""
    c = x.shape[1]
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    window: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """SSIM of two (B, C, H, W) batches; ``reduction="none"`` gives one value per image."""
    if x.shape != y.shape:
        raise ValueError(f"ssim: shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"ssim: images must be at least {window}x{window}, got {x.shape[-2:]}")
    g = gaussian_window(window, sigma, x.dtype).to(x.device)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = _blur(x, g), _blur(y, g)
    sxx = _blur(x * x, g) - mx * mx
    syy = _blur(y * y, g) - my * my
    sxy = _blur(x * y, g) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    per_image = s.flatten(1).mean(dim=1)
    return per_image if reduction == "none" else per_image.mean()


def neg_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``-SSIM(x, y)``: the paper's training criterion for one stage."""
    return -ssim(x, y)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ssim": neg_ssim,
    "l1": F.l1_loss,
    "mse": F.mse_loss,
}


def stage_loss(outputs: Sequence[torch.Tensor], target: torch.Tensor, kind: str = "ssim"):
    """Eq. 13: the criterion ``kind`` (ssim, l1 or mse) summed over the stage outputs."""
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}")
    crit = LOSSES[kind]
    return sum(crit(o.float(), target) for o in outputs)
