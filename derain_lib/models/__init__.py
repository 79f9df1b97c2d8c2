"""Architectures: SIAN with its ablation variants, PReNet, and their building blocks."""

from .blocks import ConvLSTMCell, ResBlock
from .prenet import PReNet
from .registry import DESCRIPTIONS, MODELS, build_model, count_parameters, model_family
from .scale_space import GaussianBlur, ScaleSpace, gaussian_blur
from .sian import CFA, SIAN, SIANConfig

__all__ = [
    "CFA",
    "DESCRIPTIONS",
    "MODELS",
    "SIAN",
    "ConvLSTMCell",
    "GaussianBlur",
    "PReNet",
    "ResBlock",
    "SIANConfig",
    "ScaleSpace",
    "build_model",
    "count_parameters",
    "gaussian_blur",
    "model_family",
]
