"""SIAN: scale-space invariant attention network for deraining (Pang et al. 2020).

One recursive stage (Fig. 1, Algorithm 1)::

    F      = Conv(X ⊕ X_{k-1})                               # Eq. 1, the stem
    F_(s)  = Conv(AvgPool_s(F))            s = 1, 2, 4       # Eq. 2
    M_(s)  = sigmoid(Conv(DoG octave of F at scale s))       # Eqs. 7-12
    F^a_s  = ReLU(Conv(F_(s) + F_(s) ⊙ M_(s)))               # Eq. 3
    H_(s)  = ConvLSTM_s(F^a_s, state_s)                      # Sec. III-D
    fused  = Up(Up(H_4) ⊕ H_2) ⊕ H_1 (each Conv + ReLU)      # Eq. 4
    R_k    = Conv(ResBlock(ResBlock(fused)));  X_k = X - R_k  # Eqs. 5-6

``preset="official"`` follows the authors' released code (which produced the released
weights and the published tables); ``preset="paper"`` follows the paper's text. Every
difference is a field of :class:`SIANConfig` (MODEL_SPEC §1-4).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DerainError
from .blocks import ConvLSTMCell, ResBlock, check_stages, conv3x3, init_normal_, layout_for_cpu
from .scale_space import ScaleSpace

#: The smallest image side SIAN takes (and every caller checks before a forward pass).
MIN_SIDE = 8


class ImageTooSmall(DerainError, ValueError):
    """An image with a side under :data:`MIN_SIDE`: ``where`` (a file, or empty), ``width``,
    ``height``."""

    def __init__(self, width: int, height: int, where: str | Path = "") -> None:
        self.width, self.height, self.where = width, height, str(where)
        head = f"{where}: " if self.where else ""
        super().__init__(
            f"{head}image is {width}x{height}; SIAN needs at least {MIN_SIDE}x{MIN_SIDE} pixels"
        )


def check_image_size(height: int, width: int, where: str | Path = "") -> None:
    """The one size check: :class:`ImageTooSmall` naming ``where`` when a side is under
    :data:`MIN_SIDE` pixels."""
    if min(height, width) < MIN_SIDE:
        raise ImageTooSmall(width, height, where)


VARIANTS = ("baseline", "baseline+lstm", "full")
PRESETS = {
    "official": {
        "stem_activation": False,
        "mask_activation": "sigmoid",
        "gauss_radius": 1,
        "gauss_padding": "zeros",
        "blur_mode": "incremental",
    },
    "paper": {
        "stem_activation": True,
        "mask_activation": "relu-sigmoid",
        "gauss_radius": None,
        "gauss_padding": "reflect",
        "blur_mode": "incremental",
    },
}


@dataclass(frozen=True)
class SIANConfig:
    """Every architectural choice of SIAN, with the official code's values by default.

    ``gauss_radius=None`` means a radius of ``ceil(gauss_truncate * sigma)``.
    ``stages=None`` means 1 for ``baseline`` and 6 otherwise (Table V). Every variant has
    the per-scale ConvLSTMs (MODEL_SPEC §4): ``baseline`` is ``baseline+lstm`` with K = 1,
    its ConvLSTMs running once from the zero state.
    """

    variant: str = "full"
    preset: str = "official"
    stages: int | None = None
    channels: int = 32
    in_channels: int = 3
    scales: tuple[int, ...] = (1, 2, 4)
    stem_activation: bool = False
    mask_activation: str = "sigmoid"
    gauss_radius: int | None = 1
    gauss_truncate: float = 3.0
    gauss_padding: str = "zeros"
    blur_mode: str = "incremental"
    align_corners: bool = True
    init_std: float | None = 0.02

    @classmethod
    def from_preset(cls, preset: str = "official", **overrides: object) -> SIANConfig:
        if preset not in PRESETS:
            raise ValueError(f"unknown SIAN preset {preset!r}; choose one of {sorted(PRESETS)}")
        return cls(preset=preset, **{**PRESETS[preset], **overrides})

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown SIAN variant {self.variant!r}; choose one of {VARIANTS}")
        if self.mask_activation not in ("sigmoid", "relu-sigmoid"):
            raise ValueError(
                f"mask_activation must be 'sigmoid' or 'relu-sigmoid', got {self.mask_activation!r}"
            )
        if tuple(self.scales) != tuple(2**i for i in range(len(self.scales))):
            raise ValueError(f"scales must be 1, 2, 4, ... (powers of two), got {self.scales}")

    @property
    def n_stages(self) -> int:
        if self.stages is not None:
            return self.stages
        return 1 if self.variant == "baseline" else 6

    @property
    def attention(self) -> bool:
        return self.variant == "full"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scales"] = list(self.scales)
        return d


class ScaleBranch(nn.Module):
    """One scale ``s`` of the CFA: pooled features, attention, fusion conv and ConvLSTM."""

    def __init__(self, scale: int, channels: int, n_dog: int, cfg: SIANConfig) -> None:
        super().__init__()
        self.scale = scale
        self.feat = conv3x3(channels, channels)  # Eq. 2
        self.mask = conv3x3(n_dog * channels, channels) if cfg.attention else None
        self.mask_relu = cfg.mask_activation == "relu-sigmoid"
        self.fuse = conv3x3(channels, channels)  # after Eq. 3, with ReLU
        self.lstm = ConvLSTMCell(channels, channels)

    def attention_mask(self, dog: torch.Tensor) -> torch.Tensor:
        """``M_(s)`` from the concatenated DoG layers of this scale's octave (B, 5C, h, w)."""
        m = self.mask(dog)
        return torch.sigmoid(F.relu(m) if self.mask_relu else m)

    def forward(
        self,
        f: torch.Tensor,
        mask: torch.Tensor | None,
        state: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """``f``: the stem output; ``mask``: :meth:`attention_mask` of this scale's DoG
        (None without attention); ``state``: the ConvLSTM's (h, c), None for the zero state."""
        x = F.avg_pool2d(f, self.scale) if self.scale > 1 else f
        x = self.feat(x)
        if mask is not None:
            x = torch.addcmul(x, x, mask)  # Eq. 3
        x = F.relu(self.fuse(x), inplace=True)
        return self.lstm(x, state)


class UpMerge(nn.Module):
    """Eq. 4: upsample the coarse map x2 to the fine map's exact size, concat, Conv + ReLU."""

    def __init__(self, channels: int, align_corners: bool = True) -> None:
        super().__init__()
        self.conv = conv3x3(2 * channels, channels)
        self.align_corners = align_corners

    def forward(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(
            coarse, scale_factor=2, mode="bilinear", align_corners=self.align_corners
        )
        dy, dx = fine.shape[2] - up.shape[2], fine.shape[3] - up.shape[3]
        up = F.pad(up, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))  # odd sizes
        return F.relu(self.conv(torch.cat([fine, up], dim=1)), inplace=True)


class CFA(nn.Module):
    """Cross-scale feature aggregation (Sec. III-B), shared by all stages."""

    def __init__(self, cfg: SIANConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.cfg = cfg
        self.stem = conv3x3(2 * cfg.in_channels, c)  # Eq. 1
        self.scale_space = (
            ScaleSpace(
                octaves=len(cfg.scales),
                radius=cfg.gauss_radius,
                truncate=cfg.gauss_truncate,
                padding=cfg.gauss_padding,
                mode=cfg.blur_mode,
            )
            if cfg.attention
            else None
        )
        n_dog = 5 if self.scale_space is None else self.scale_space.n_layers - 1
        self.branches = nn.ModuleList(ScaleBranch(s, c, n_dog, cfg) for s in cfg.scales)
        # merges[i] brings scale i+1 up to scale i (fine <- coarse)
        self.merges = nn.ModuleList(
            UpMerge(c, cfg.align_corners) for _ in range(len(cfg.scales) - 1)
        )

    def forward(
        self, x: torch.Tensor, states: list, record: dict | None = None
    ) -> tuple[torch.Tensor, list]:
        f = self.stem(x)
        if self.cfg.stem_activation:
            f = F.relu(f, inplace=True)
        c = f.shape[1]
        octaves = dogs = None
        if self.scale_space is not None:
            if record is None and not torch.is_grad_enabled():
                # inference: one octave at a time, when its branch needs it, each DoG layer
                # written straight into the mask conv's input (few layers alive at once)
                dogs = self.scale_space.dog_octaves(f)
            elif record is None:
                # training: differences of whole tensors, concatenated (the backward of
                # a slice would zero-fill and copy a full-size gradient per slice)
                dogs = iter(
                    [
                        torch.cat([ls[j + 1] - ls[j] for j in range(len(ls) - 1)], dim=1)
                        for ls in self.scale_space.layers(f)
                    ]
                )
            else:
                # octaves as (B, 6C, h, w), layer-major; the DoG of all layers in one pass
                octaves = self.scale_space.layers_flat(f)
                dogs = iter([ScaleSpace.dog_flat(o, c) for o in octaves])
        outs, new_states = [], []
        for i, branch in enumerate(self.branches):
            dog = None if dogs is None else next(dogs)  # (B, 5C, h, w)
            mask = None if dog is None else branch.attention_mask(dog)
            s = branch.scale
            if record is not None and octaves is not None:
                record.setdefault("octaves", {})[s] = octaves[i].unflatten(1, (-1, c))
                record.setdefault("dog", {})[s] = dog.unflatten(1, (-1, c))
                record.setdefault("masks", {})[s] = mask
            dog = None  # at inference its memory is free again before the ConvLSTM runs
            h, st = branch(f, mask, states[i])
            mask = None
            outs.append(h)
            new_states.append(st)
            if record is not None:
                record.setdefault("features", {})[s] = h
        y = outs[-1]
        for i in range(len(outs) - 2, -1, -1):
            y = self.merges[i](y, outs[i])
        return y, new_states


class SIAN(nn.Module):
    """The SIAN deraining network; ``forward`` returns ``[X_1, ..., X_K]``.

    Example::

        >>> model = SIAN(variant="full", preset="official")
        >>> outs = model(torch.rand(1, 3, 33, 47))
        >>> len(outs), outs[-1].shape
        (6, torch.Size([1, 3, 33, 47]))
    """

    def __init__(self, config: SIANConfig | None = None, **kwargs: object) -> None:
        super().__init__()
        if config is None:
            config = SIANConfig.from_preset(str(kwargs.pop("preset", "official")), **kwargs)
        elif kwargs:
            config = replace(config, **kwargs)
        self.config = config
        self.cfa = CFA(config)
        c = config.channels
        self.head = nn.Sequential(ResBlock(c), ResBlock(c), conv3x3(c, config.in_channels))
        if config.init_std is not None:
            init_normal_(self, config.init_std)

    def forward(
        self, x: torch.Tensor, return_attention: bool = False, stages: int | None = None
    ) -> list[torch.Tensor] | tuple[list[torch.Tensor], list[dict]]:
        """All stage outputs; with ``return_attention`` also one dict per stage holding
        ``masks``, ``dog``, ``octaves`` and ``features`` (keyed by scale) and ``rain`` (R_k).

        ``stages``: run only the first K stages (1 <= K <= ``config.n_stages``) and return
        ``[X_1, ..., X_K]``; the later stages are not computed.
        """
        n_stages = check_stages(stages, self.config.n_stages)
        check_image_size(*x.shape[-2:])
        x = layout_for_cpu(x)
        states: list = [None] * len(self.config.scales)
        outputs, records = [], []
        xk = x
        for _ in range(n_stages):
            record = {} if return_attention else None
            fused, states = self.cfa(torch.cat([x, xk], dim=1), states, record)
            rain = self.head(fused)  # Eq. 5
            xk = x - rain  # Eq. 6
            outputs.append(xk.contiguous())
            if record is not None:
                record["rain"] = rain
                records.append(record)
        return (outputs, records) if return_attention else outputs
