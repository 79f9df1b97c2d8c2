"""Architectures: SIAN with its ablation variants, PReNet, and their building blocks.

``DESCRIPTIONS`` (name -> one line per model of ``MODELS``) is the torch-free table of
:mod:`derain_lib.info` (``derain info`` prints it without importing the models),
exported here beside ``MODELS``.
"""

from ..info import DESCRIPTIONS
from .blocks import ConvLSTMCell, ResBlock
from .prenet import PReNet
from .registry import MODELS, build_model, count_parameters, model_family
from .scale_space import GaussianBlur, ScaleSpace, gaussian_blur
from .sian import CFA, MIN_SIDE, SIAN, ImageTooSmall, SIANConfig, check_image_size

__all__ = [
    "CFA",
    "DESCRIPTIONS",
    "MIN_SIDE",
    "MODELS",
    "SIAN",
    "ConvLSTMCell",
    "GaussianBlur",
    "ImageTooSmall",
    "PReNet",
    "ResBlock",
    "SIANConfig",
    "ScaleSpace",
    "build_model",
    "check_image_size",
    "count_parameters",
    "gaussian_blur",
    "model_family",
]
