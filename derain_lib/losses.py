"""Training losses summed over the stage outputs (Eq. 13): negative SSIM, L1, MSE.

``ssim`` is the authors' training SSIM (their ``models/SSIM.py``, the same file as
PReNet's): an 11x11 Gaussian window (sigma 1.5) applied per channel with **zero padding
5**, C1 = 0.01^2, C2 = 0.03^2, population (co)variances, and the SSIM map averaged over
every pixel (border included), channel and image (MODEL_SPEC §5). ``padding="valid"``
(loss ``ssim-valid``) averages over the valid region only and equals
``skimage.metrics.structural_similarity(..., channel_axis=-1, gaussian_weights=True,
use_sample_covariance=False, data_range=1)``; zero padding pulls the border's SSIM down,
so the two are different losses. (Scores for tables use ``derain_lib.metrics`` instead:
the MATLAB protocol on luminance.)
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


def _blur(x: torch.Tensor, g: torch.Tensor, pad: int) -> torch.Tensor:
    """Separable Gaussian filtering of every channel with ``pad`` zeros on each side
    (0: the 'valid' region). Zero padding is separable, so this equals the authors'
    single 2-D grouped convolution."""
    c = x.shape[1]
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), padding=(pad, 0), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), padding=(0, pad), groups=c)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    window: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    reduction: str = "mean",
    padding: str = "zeros",
) -> torch.Tensor:
    """SSIM of two (B, C, H, W) batches; ``reduction="none"`` gives one value per image.

    ``padding="zeros"``: the authors' SSIM (zero padding ``window // 2``, the map averaged
    over every pixel); ``"valid"``: the valid region only (scikit-image's value).
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim: shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if padding not in ("zeros", "valid"):
        raise ValueError(f"ssim: padding must be 'zeros' or 'valid', got {padding!r}")
    pad = window // 2 if padding == "zeros" else 0
    if not pad and min(x.shape[-2:]) < window:
        raise ValueError(f"ssim: images must be at least {window}x{window}, got {x.shape[-2:]}")
    g = gaussian_window(window, sigma, x.dtype).to(x.device)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = _blur(x, g, pad), _blur(y, g, pad)
    sxx = _blur(x * x, g, pad) - mx * mx
    syy = _blur(y * y, g, pad) - my * my
    sxy = _blur(x * y, g, pad) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    per_image = s.flatten(1).mean(dim=1)
    return per_image if reduction == "none" else per_image.mean()


def neg_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``-SSIM(x, y)`` with the authors' zero-padded SSIM: the training criterion of one stage."""
    return -ssim(x, y)


def neg_ssim_valid(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``-SSIM(x, y)`` over the valid region only (loss ``ssim-valid``, not the authors')."""
    return -ssim(x, y, padding="valid")


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ssim": neg_ssim,
    "ssim-valid": neg_ssim_valid,
    "l1": F.l1_loss,
    "mse": F.mse_loss,
}


def stage_losses(
    outputs: Sequence[torch.Tensor], target: torch.Tensor, kind: str = "ssim"
) -> list[torch.Tensor]:
    """The criterion ``kind`` (a key of :data:`LOSSES`) of each stage output."""
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}")
    crit = LOSSES[kind]
    return [crit(o.float(), target) for o in outputs]


def stage_loss(outputs: Sequence[torch.Tensor], target: torch.Tensor, kind: str = "ssim"):
    """Eq. 13: the criterion ``kind`` (a key of :data:`LOSSES`) summed over the stage outputs."""
    return sum(stage_losses(outputs, target, kind))
