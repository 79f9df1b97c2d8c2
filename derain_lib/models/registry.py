"""Name -> model. Every model the study trains or loads is built here.

``build_model("sian")`` is the full official SIAN; ``"sian-baseline"`` and
``"sian-baseline+lstm"`` are the ablation variants of Table V; ``"sian-paper"`` is the
paper-literal preset; ``"prenet"`` is the PReNet baseline. Keyword arguments override
fields of :class:`~derain_lib.models.sian.SIANConfig` (or PReNet's arguments).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .prenet import PReNet
from .sian import SIAN, SIANConfig


def _sian(variant: str, preset: str = "official") -> Callable[..., nn.Module]:
    def build(**kw: object) -> nn.Module:
        kw = {"variant": variant, **kw}
        return SIAN(SIANConfig.from_preset(str(kw.pop("preset", preset)), **kw))

    return build


MODELS: dict[str, Callable[..., nn.Module]] = {
    "sian": _sian("full"),
    "sian-baseline": _sian("baseline"),
    "sian-baseline+lstm": _sian("baseline+lstm"),
    "sian-paper": _sian("full", "paper"),
    "prenet": PReNet,
}


def build_model(name: str, **kwargs: object) -> nn.Module:
    """Build a registered model by name; unknown names raise a one-line ``ValueError``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[name](**kwargs)


def model_family(model: nn.Module) -> str:
    """``"sian"`` or ``"prenet"``: which released weights a model can take."""
    return "prenet" if isinstance(model, PReNet) else "sian"


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
