"""The straightforward formulation of SIAN and PReNet, the yardstick of every speed-up.

Written from the paper and the authors' released code structure (MODEL_SPEC), not from
``derain_lib.models``: NCHW tensors, one 2-D grouped convolution per Gaussian blur, the
DoG concatenated layer by layer, ConvLSTM gates as eight per-gate convolutions
(input-to-state with bias, state-to-state without), autograd left on. The reference
modules take their weights from a built model (:func:`reference_like`), so the optimised
model and the reference are compared on the same input with the same weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from derain_lib.models import SIAN, PReNet, SIANConfig

GATES = ("f", "i", "o", "g")


def _conv(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Conv2d:
    """A 3x3 zero-padded convolution holding a copy of ``weight`` and ``bias``."""
    out_ch, in_ch = weight.shape[:2]
    conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=bias is not None)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
    return conv


class RefLSTM(nn.Module):
    """ConvLSTM with one convolution per gate and input (the released code's layout)."""

    def __init__(self, gates: nn.Conv2d, hidden: int) -> None:
        super().__init__()
        w, b = gates.weight.detach(), gates.bias.detach()
        self.hidden = hidden
        for k, name in enumerate(GATES):
            rows = slice(k * hidden, (k + 1) * hidden)
            setattr(self, f"conv_x{name}", _conv(w[rows, :hidden], b[rows]))
            setattr(self, f"conv_h{name}", _conv(w[rows, hidden:], None))

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            z = torch.zeros(x.shape[0], self.hidden, x.shape[2], x.shape[3])
            state = (z, z)
        h, c = state
        gate = {n: getattr(self, f"conv_x{n}")(x) + getattr(self, f"conv_h{n}")(h) for n in GATES}
        c = torch.sigmoid(gate["f"]) * c + torch.sigmoid(gate["i"]) * torch.tanh(gate["g"])
        h = torch.sigmoid(gate["o"]) * torch.tanh(c)
        return h, c


def _resblock(conv1: nn.Conv2d, conv2: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return F.relu(x + F.relu(conv2(F.relu(conv1(x)))))


def blur_2d(x: torch.Tensor, sigma: float, cfg: SIANConfig) -> torch.Tensor:
    """Eq. 8 as one 2-D depthwise convolution with the outer product of 1-D Gaussians.

    Radius ``cfg.gauss_radius`` (or ``ceil(truncate * sigma)``); with reflect padding each
    side's radius is clipped below the image side, as the model documents.
    """
    r = cfg.gauss_radius
    if r is None:
        r = max(1, math.ceil(cfg.gauss_truncate * sigma))
    radii = []
    for side in x.shape[2:]:
        radii.append(r if cfg.gauss_padding == "zeros" else min(r, side - 1))
    taps = []
    for rr in radii:
        t = torch.arange(-rr, rr + 1, dtype=torch.float64)
        g = torch.exp(-(t**2) / (2 * sigma**2))
        taps.append(g / g.sum())
    kernel = torch.outer(taps[0], taps[1]).to(x.dtype)
    c = x.shape[1]
    weight = kernel.expand(c, 1, *kernel.shape).contiguous()
    ry, rx = radii
    if cfg.gauss_padding == "zeros":
        return F.conv2d(x, weight, padding=(ry, rx), groups=c)
    return F.conv2d(F.pad(x, (rx, rx, ry, ry), mode="reflect"), weight, groups=c)


def scale_space(f: torch.Tensor, cfg: SIANConfig) -> list[list[torch.Tensor]]:
    """Octaves of Gaussian layers (Eqs. 7, 9-11): six layers per octave, three octaves."""
    sigma, intervals, n_layers = 1.6, 3, 6
    total = [sigma * 2 ** (i / intervals) for i in range(n_layers)]
    octaves: list[list[torch.Tensor]] = []
    for o in range(len(cfg.scales)):
        # octave 1 from the stem output, octave o+1 from layer 4 of octave o, max-pooled
        base = f if o == 0 else F.max_pool2d(octaves[-1][intervals], 2)
        if cfg.blur_mode == "incremental":
            layers = [blur_2d(base, math.sqrt(sigma**2 - 0.25), cfg) if o == 0 else base]
            for i in range(n_layers - 1):
                step = math.sqrt(total[i + 1] ** 2 - total[i] ** 2)
                layers.append(blur_2d(layers[-1], step, cfg))
        elif o == 0:
            layers = [blur_2d(base, math.sqrt(s**2 - 0.25), cfg) for s in total]
        else:
            layers = [base] + [blur_2d(base, math.sqrt(s**2 - sigma**2), cfg) for s in total[1:]]
        octaves.append(layers)
    return octaves


class ReferenceSIAN(nn.Module):
    """SIAN written out step by step; weights copied from a :class:`SIAN`."""

    def __init__(self, model: SIAN) -> None:
        super().__init__()
        self.cfg = cfg = model.config
        c = cfg.channels
        cfa = model.cfa
        self.stem = _conv(cfa.stem.weight.detach(), cfa.stem.bias.detach())
        self.feat, self.mask, self.fuse, self.lstm = (nn.ModuleList() for _ in range(4))
        for br in cfa.branches:
            self.feat.append(_conv(br.feat.weight.detach(), br.feat.bias.detach()))
            self.fuse.append(_conv(br.fuse.weight.detach(), br.fuse.bias.detach()))
            if cfg.attention:
                self.mask.append(_conv(br.mask.weight.detach(), br.mask.bias.detach()))
            self.lstm.append(RefLSTM(br.lstm.gates, c))
        self.merge = nn.ModuleList(
            _conv(m.conv.weight.detach(), m.conv.bias.detach()) for m in cfa.merges
        )
        self.head = nn.ModuleList(
            _conv(m.weight.detach(), m.bias.detach())
            for m in model.head.modules()
            if isinstance(m, nn.Conv2d)
        )

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> list[torch.Tensor] | tuple[list[torch.Tensor], list[dict]]:
        cfg = self.cfg
        n = len(cfg.scales)
        states: list = [None] * n
        xk, outputs, records = x, [], []
        for _ in range(cfg.n_stages):
            rec: dict = {"features": {}, "masks": {}, "dog": {}, "octaves": {}}
            f = self.stem(torch.cat([x, xk], dim=1))  # Eq. 1
            if cfg.stem_activation:
                f = F.relu(f)
            octaves = scale_space(f, cfg) if cfg.attention else None
            hs, new_states = [], []
            for i, s in enumerate(cfg.scales):
                y = self.feat[i](F.avg_pool2d(f, s) if s > 1 else f)  # Eq. 2
                if octaves is not None:
                    layers = octaves[i]
                    dogs = [layers[j + 1] - layers[j] for j in range(len(layers) - 1)]
                    m = self.mask[i](torch.cat(dogs, dim=1))
                    if cfg.mask_activation == "relu-sigmoid":
                        m = F.relu(m)
                    m = torch.sigmoid(m)
                    y = y + y * m  # Eq. 3
                    rec["masks"][s] = m
                    rec["dog"][s] = torch.stack(dogs, dim=1)
                    rec["octaves"][s] = torch.stack(layers, dim=1)
                y = F.relu(self.fuse[i](y))
                y, cell = self.lstm[i](y, states[i])
                hs.append(y)
                new_states.append((y, cell))
                rec["features"][s] = y
            states = new_states
            fused = hs[-1]
            for i in range(n - 2, -1, -1):  # Eq. 4
                fine = hs[i]
                up = F.interpolate(
                    fused, scale_factor=2, mode="bilinear", align_corners=cfg.align_corners
                )
                dy, dx = fine.shape[2] - up.shape[2], fine.shape[3] - up.shape[3]
                up = F.pad(up, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))
                fused = F.relu(self.merge[i](torch.cat([fine, up], dim=1)))
            h = fused
            for j in range(0, len(self.head) - 1, 2):  # Eq. 5
                h = _resblock(self.head[j], self.head[j + 1], h)
            rain = self.head[-1](h)
            xk = x - rain  # Eq. 6
            outputs.append(xk)
            rec["rain"] = rain
            records.append(rec)
        return (outputs, records) if return_attention else outputs


class ReferencePReNet(nn.Module):
    """PReNet written out step by step; weights copied from a :class:`PReNet`."""

    def __init__(self, model: PReNet) -> None:
        super().__init__()
        c = model.config["channels"]
        self.stages = model.stages
        self.stem = _conv(model.stem.weight.detach(), model.stem.bias.detach())
        self.lstm = RefLSTM(model.lstm.gates, c)
        self.body = nn.ModuleList(
            _conv(m.weight.detach(), m.bias.detach())
            for m in model.body.modules()
            if isinstance(m, nn.Conv2d)
        )
        self.out = _conv(model.out.weight.detach(), model.out.bias.detach())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        state, xk, outputs = None, x, []
        for _ in range(self.stages):
            h, c = self.lstm(F.relu(self.stem(torch.cat([x, xk], dim=1))), state)
            state = (h, c)
            for j in range(0, len(self.body), 2):
                h = _resblock(self.body[j], self.body[j + 1], h)
            xk = x + self.out(h)
            outputs.append(xk)
        return outputs


def reference_like(model: nn.Module) -> nn.Module:
    """The reference formulation holding a copy of ``model``'s weights."""
    if isinstance(model, SIAN):
        return ReferenceSIAN(model)
    if isinstance(model, PReNet):
        return ReferencePReNet(model)
    raise TypeError(f"no reference formulation for {type(model).__name__}")
