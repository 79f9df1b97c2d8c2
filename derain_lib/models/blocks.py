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
        n = 3 * self.hidden
        if state is None:
            # zero state: the state-to-state half of the convolution contributes nothing
            w = self.gates.weight[:, : x.shape[1]]
            gates = F.conv2d(x, w, self.gates.bias, padding=1)
            sig = torch.sigmoid(gates[:, :n])
            c = sig[:, self.hidden : 2 * self.hidden] * torch.tanh(gates[:, n:])
        else:
            h, c = state
            gates = self.gates(torch.cat([x, h], dim=1))
            sig = torch.sigmoid(gates[:, :n])  # f, i, o in one pass
            f, i = sig[:, : self.hidden], sig[:, self.hidden : 2 * self.hidden]
            c = torch.addcmul(f * c, i, torch.tanh(gates[:, n:]))
        h = sig[:, 2 * self.hidden :] * torch.tanh(c)
        return h, (h, c)


def init_normal_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """The official initialisation: conv weights ~ N(0, std), biases 0 (pix2pix ``init_net``)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
