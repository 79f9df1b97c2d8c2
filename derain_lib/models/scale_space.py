"""Gaussian scale space and difference of Gaussians (SIAN Sec. III-C, Eqs. 7-12).

``gaussian_blur`` is the function, ``GaussianBlur`` and ``ScaleSpace`` are the modules.
The official code blurs with 3x3 kernels (radius 1) and zero padding; the paper reads as
a kernel of radius ``ceil(3 sigma)`` with reflect padding. Both are parameters here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn


@functools.lru_cache(maxsize=256)
def _kernel1d(sigma: float, radius: int) -> torch.Tensor:
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(t**2) / (2.0 * sigma**2))
    return k / k.sum()


def gaussian_kernel1d(
    sigma: float, radius: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """A 1-D Gaussian of the given radius (``2 * radius + 1`` taps), normalised to sum 1."""
    if sigma <= 0:
        raise ValueError(f"gaussian sigma must be positive, got {sigma}")
    return _kernel1d(float(sigma), int(radius)).to(dtype)


def kernel_radius(sigma: float, radius: int | None, truncate: float) -> int:
    """Fixed ``radius`` if given, else ``ceil(truncate * sigma)``."""
    return int(radius) if radius is not None else max(1, math.ceil(truncate * sigma))


def gaussian_blur(
    x: torch.Tensor,
    sigma: float,
    radius: int | None = 1,
    truncate: float = 3.0,
    padding: str = "zeros",
) -> torch.Tensor:
    """Blur each channel of ``x`` (B, C, H, W) with a normalised Gaussian (Eq. 8).

    The 2-D kernel is the outer product of two 1-D Gaussians. Small zero-padded kernels
    (radius <= 2, the official 3x3) run as one 2-D depthwise convolution, one pass over
    memory; larger ones as two depthwise 1-D convolutions. With zero or reflect padding
    both equal the 2-D convolution exactly (up to rounding). ``sigma == 0`` returns
    ``x``. Reflect padding needs the pad to be smaller than the image side; where it is
    not, the radius is clipped to ``side - 1`` (tiny images only).
    """
    if sigma == 0:
        return x
    if padding not in ("zeros", "reflect"):
        raise ValueError(f"padding must be 'zeros' or 'reflect', got {padding!r}")
    r = kernel_radius(sigma, radius, truncate)
    c = x.shape[1]
    if padding == "zeros" and r <= 2:
        k = gaussian_kernel1d(sigma, r, dtype=x.dtype).to(x.device)
        weight = torch.outer(k, k).expand(c, 1, 2 * r + 1, 2 * r + 1)
        return F.conv2d(x, weight.contiguous(), padding=r, groups=c)
    out = x
    for dim in (3, 2):  # width, then height
        rr = r if padding == "zeros" else min(r, x.shape[dim] - 1)
        if rr < 1:
            continue
        k = gaussian_kernel1d(sigma, rr, dtype=x.dtype).to(x.device)
        shape = (1, 1, 1, 2 * rr + 1) if dim == 3 else (1, 1, 2 * rr + 1, 1)
        weight = k.view(shape).expand(c, 1, *shape[2:]).contiguous()
        if padding == "zeros":
            pad = (0, rr) if dim == 3 else (rr, 0)
            out = F.conv2d(out, weight, padding=pad, groups=c)
        else:
            pad4 = (rr, rr, 0, 0) if dim == 3 else (0, 0, rr, rr)
            out = F.conv2d(F.pad(out, pad4, mode="reflect"), weight, groups=c)
    return out


class GaussianBlur(nn.Module):
    """Module form of :func:`gaussian_blur` with a fixed sigma."""

    def __init__(
        self, sigma: float, radius: int | None = 1, truncate: float = 3.0, padding: str = "zeros"
    ) -> None:
        super().__init__()
        self.sigma, self.radius, self.truncate, self.padding = sigma, radius, truncate, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(x, self.sigma, self.radius, self.truncate, self.padding)


class ScaleSpace(nn.Module):
    """SIFT-style Gaussian scale space of a feature map (Eqs. 7, 9-11) and its DoG (Eq. 12).

    Each octave has ``intervals + 3`` layers with total blur ``sigma * k**l``,
    ``k = 2 ** (1 / intervals)``. Octave 1 starts from ``G(sqrt(sigma^2 - assumed_blur^2))``
    of the input; octave o + 1 starts from the 2x2 max-pooled layer ``intervals`` (the
    fourth) of octave o. ``mode="incremental"`` blurs each layer from the previous one
    (official); ``mode="direct"`` blurs every layer from the octave's first image (Eq. 7).
    """

    def __init__(
        self,
        octaves: int = 3,
        intervals: int = 3,
        sigma: float = 1.6,
        assumed_blur: float = 0.5,
        radius: int | None = 1,
        truncate: float = 3.0,
        padding: str = "zeros",
        mode: str = "incremental",
    ) -> None:
        super().__init__()
        if mode not in ("incremental", "direct"):
            raise ValueError(f"mode must be 'incremental' or 'direct', got {mode!r}")
        self.octaves, self.intervals, self.mode = octaves, intervals, mode
        self.blur_kw = {"radius": radius, "truncate": truncate, "padding": padding}
        k = 2.0 ** (1.0 / intervals)
        self.n_layers = intervals + 3
        self.total_sigma = [sigma * k**i for i in range(self.n_layers)]
        self.init_sigma = math.sqrt(sigma**2 - assumed_blur**2)
        self.step_sigma = [
            math.sqrt(self.total_sigma[i + 1] ** 2 - self.total_sigma[i] ** 2)
            for i in range(self.n_layers - 1)
        ]
        # direct mode: blur of layer l relative to the octave's first image
        self.direct_sigma = [0.0] + [math.sqrt(s**2 - sigma**2) for s in self.total_sigma[1:]]
        self.assumed_blur = assumed_blur

    def _start(self, x: torch.Tensor) -> torch.Tensor | None:
        """Octave 1's first image in incremental mode (Eq. 9); None in direct mode, where
        every layer of octave 1 is blurred straight from ``x``."""
        if self.mode == "incremental":
            return gaussian_blur(x, self.init_sigma, **self.blur_kw)
        return None

    def layers(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """The Gaussian layers of every octave, each (B, C, H_o, W_o)."""
        out, base = [], self._start(x)
        for o in range(self.octaves):
            layers = list(self._octave_layers(x, o, base))
            if o + 1 < self.octaves:
                base = F.max_pool2d(layers[self.intervals], 2)
            out.append(layers)
        return out

    def layers_flat(self, x: torch.Tensor) -> list[torch.Tensor]:
        """One tensor per octave, (B, layers * C, H_o, W_o): the layers concatenated along
        channels, layer-major, in ``x``'s memory format (what the attention conv reads)."""
        return [torch.cat(layers, dim=1) for layers in self.layers(x)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return one tensor per octave, shape (B, layers, C, H_o, W_o) (views of
        :meth:`layers_flat`)."""
        return [o.unflatten(1, (self.n_layers, x.shape[1])) for o in self.layers_flat(x)]

    @staticmethod
    def dog(octave: torch.Tensor) -> torch.Tensor:
        """Differences of adjacent layers (Eq. 12): (B, layers - 1, C, H, W)."""
        return octave[:, 1:] - octave[:, :-1]

    @staticmethod
    def dog_flat(flat: torch.Tensor, channels: int) -> torch.Tensor:
        """:meth:`dog` of a :meth:`layers_flat` octave in one pass: (B, (layers - 1) * C,
        H, W), layer-major, in the input's memory format."""
        return flat[:, channels:] - flat[:, :-channels]

    def _octave_layers(
        self, x: torch.Tensor, octave: int, base: torch.Tensor | None
    ) -> Iterator[torch.Tensor]:
        """The layers of one octave, one at a time. ``base``: the octave's first image
        (:meth:`_start` for octave 1, else the 2x2 max-pooled layer ``intervals`` of the
        previous octave); unused for octave 1 in direct mode."""
        if self.mode == "incremental":
            cur = base
            yield cur
            for s in self.step_sigma:
                cur = gaussian_blur(cur, s, **self.blur_kw)
                yield cur
        elif octave == 0:
            for s in self.total_sigma:
                yield gaussian_blur(x, math.sqrt(s**2 - self.assumed_blur**2), **self.blur_kw)
        else:
            for s in self.direct_sigma:
                yield gaussian_blur(base, s, **self.blur_kw)

    def dog_octaves(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """Without autograd: the DoG of each octave in turn, as :meth:`dog_flat` gives it
        ((B, (layers - 1) * C, H_o, W_o), layer-major, in ``x``'s memory format).

        Lazy and streaming: an octave is computed when asked for, each difference is
        written straight into the one output buffer (``out=``), and at most two Gaussian
        layers plus the next octave's start are alive at a time, so tiled inference of
        large photos holds far less memory than with whole octaves.
        """
        c = x.shape[1]
        base = self._start(x)
        for o in range(self.octaves):
            layers, base = self._octave_layers(x, o, base), None
            prev = out = None
            for i, layer in enumerate(layers):
                if i == self.intervals and o + 1 < self.octaves:
                    base = F.max_pool2d(layer, 2)
                if prev is not None:
                    if out is None:
                        fmt = (
                            torch.channels_last
                            if layer.is_contiguous(memory_format=torch.channels_last)
                            else torch.contiguous_format
                        )
                        out = torch.empty(
                            (layer.shape[0], (self.n_layers - 1) * c, *layer.shape[2:]),
                            dtype=layer.dtype,
                            device=layer.device,
                            memory_format=fmt,
                        )
                    torch.sub(layer, prev, out=out[:, (i - 1) * c : i * c])
                prev = layer
            del prev, layers
            yield out
