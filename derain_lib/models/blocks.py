"""Building blocks shared by SIAN and PReNet: residual block and ConvLSTM cell."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv3x3(in_channels: int, out_channels: int, bias: bool = True) -> nn.Conv2d:
    """A 3x3 convolution with zero padding 1 (size-preserving), as used throughout."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)


class ResBlock(nn.Module):
    """``relu(x + relu(conv2(relu(conv1(x)))))``: the residual block of SIAN and PReNet."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in place on fresh intermediates: fewer full-resolution passes, same values
        y = F.relu(self.conv1(x), inplace=True)
        y = F.relu(self.conv2(y), inplace=True)
        return F.relu(x + y, inplace=True)


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM cell with all four gates computed by one convolution.

    The gates read ``cat(x, h)``; the output channels are ordered f, i, o, g (forget,
    input, output, candidate). Two convolutions ``W_x x + b + W_h h`` equal this one
    convolution with the weights concatenated along the input channels, which is how
    the released per-gate weights are converted (see ``derain_lib.weights``).
    """

    def __init__(self, in_channels: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = conv3x3(in_channels + hidden, 4 * hidden)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        hd = self.hidden
        if state is None:
            # zero state: the state-to-state half of the convolution contributes nothing
            w = self.gates.weight[:, : x.shape[1]]
            gates = F.conv2d(x, w, self.gates.bias, padding=1)
        else:
            gates = self.gates(torch.cat([x, state[0]], dim=1))
        c_prev = None if state is None else state[1]
        if not torch.is_grad_enabled():
            return self._step_no_grad(gates, c_prev)
        # split/chunk, not slicing: their backward concatenates the gradients instead of
        # zero-filling a full-size gradient for every slice
        pre, g = gates.split([3 * hd, hd], dim=1)
        f, i, o = torch.sigmoid(pre).chunk(3, dim=1)
        g = torch.tanh(g)
        c = i * g if c_prev is None else torch.addcmul(f * c_prev, i, g)
        h = o * torch.tanh(c)
        return h, (h, c)

    def _step_no_grad(
        self, gates: torch.Tensor, c_prev: torch.Tensor | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The same gate arithmetic, activations in place on the fresh gate tensor:
        two new full-size tensors (c, h) instead of seven."""
        hd = self.hidden
        f, i, o = gates[:, : 3 * hd].sigmoid_().split(hd, dim=1)
        g = gates[:, 3 * hd :].tanh_()
        c = torch.mul(i, g) if c_prev is None else torch.mul(f, c_prev).addcmul_(i, g)
        h = torch.tanh(c).mul_(o)
        return h, (h, c)


def layout_for_cpu(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the layout its convolutions run fastest in on this device.

    On CPU without autograd, channels_last (oneDNN's fastest forward layout); while
    autograd records, the standard layout, because oneDNN's channels_last weight
    gradient is the slow part of a training step (benchmarks/RESULTS.md). Values are
    the same either way; outputs are returned in the standard layout.
    """
    if x.device.type == "cpu" and not torch.is_grad_enabled():
        return x.contiguous(memory_format=torch.channels_last)
    return x


def init_normal_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """The official initialisation: conv weights ~ N(0, std), biases 0 (pix2pix ``init_net``)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def check_stages(stages: int | None, n_stages: int) -> int:
    """How many stages a recurrent model runs: ``n_stages`` for None, else ``stages``,
    which must lie in ``1..n_stages`` (a one-line ``ValueError`` otherwise)."""
    if stages is None:
        return n_stages
    if isinstance(stages, bool) or not isinstance(stages, int) or not 1 <= stages <= n_stages:
        raise ValueError(f"stages must be an integer from 1 to {n_stages}, got {stages!r}")
    return stages
