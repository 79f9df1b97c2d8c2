"""PReNet (Ren et al., CVPR 2019), the progressive recurrent baseline of Tables III-IV.

Each stage: ``h = ConvLSTM(ReLU(Conv(X ⊕ X_{k-1})))``, five residual blocks, a 3x3 conv to
RGB, and ``X_k = X + out``: unlike SIAN, PReNet predicts the clean image's residual.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvLSTMCell, ResBlock, check_stages, conv3x3, layout_for_cpu


class PReNet(nn.Module):
    """PReNet with ``stages`` recurrent stages; ``forward`` returns ``[X_1, ..., X_K]``."""

    def __init__(
        self, stages: int = 6, channels: int = 32, in_channels: int = 3, n_resblocks: int = 5
    ) -> None:
        super().__init__()
        self.config = {
            "stages": stages,
            "channels": channels,
            "in_channels": in_channels,
            "n_resblocks": n_resblocks,
        }
        self.stages = stages
        self.stem = conv3x3(2 * in_channels, channels)
        self.lstm = ConvLSTMCell(channels, channels)
        self.body = nn.Sequential(*(ResBlock(channels) for _ in range(n_resblocks)))
        self.out = conv3x3(channels, in_channels)

    def forward(self, x: torch.Tensor, stages: int | None = None) -> list[torch.Tensor]:
        """``[X_1, ..., X_K]``: all stages, or only the first ``stages`` (the rest not run)."""
        n_stages = check_stages(stages, self.stages)
        x = layout_for_cpu(x)
        state = None
        xk, outputs = x, []
        for _ in range(n_stages):
            f = F.relu(self.stem(torch.cat([x, xk], dim=1)), inplace=True)
            h, state = self.lstm(f, state)
            xk = x + self.out(self.body(h))
            outputs.append(xk.contiguous())
        return outputs
