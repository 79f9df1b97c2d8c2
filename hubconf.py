"""torch.hub entry points: the released SIAN and PReNet models, ready for inference.

``torch.hub.load("<owner>/derain", "sian", weights="rain100l")`` (or ``source="local"`` with
a clone) returns the model in eval mode, its weights fetched from upstream by sha256 through
the project's own fetch code (``DERAIN_MIRROR`` honoured; a local copy in
``DERAIN_WEIGHTS_DIR`` or the cache is used first). The released files carry no license:
they are downloaded from their authors' repositories, never redistributed (MODEL_CARD.md).
"""

from __future__ import annotations

from torch import nn as _nn

from derain_lib.weights import load_model as _load_model

dependencies = ["torch", "numpy", "scipy", "skimage", "PIL", "yaml", "pooch", "platformdirs"]

#: What ``weights=`` takes: the training set of the authors' released files.
TRAINED_ON = ("rain100l", "rain100h", "rain1400")


def _released(family: str, weights: str, device: str) -> _nn.Module:
    if weights not in TRAINED_ON:
        raise ValueError(f"weights={weights!r}: choose one of {', '.join(TRAINED_ON)}")
    return _load_model(f"{family}-{weights}", model=family, device=device).model


def sian(weights: str = "rain100l", device: str = "cpu") -> _nn.Module:
    """SIAN (Pang et al., ACM MM 2020) with the authors' released weights, in eval mode.

    weights: the training set, ``rain100l``, ``rain100h`` or ``rain1400``.
    device: ``cpu`` (default), ``cuda``, ``cuda:N`` or ``auto``.
    Input: a float tensor (N, 3, H, W) in [0, 1], H and W at least 8; the model returns the
    list of its six stage outputs, the last one the derained image.

    Example: ``m = torch.hub.load(repo, "sian", weights="rain100h"); clean = m(rainy)[-1]``
    """
    return _released("sian", weights, device)


def prenet(weights: str = "rain100l", device: str = "cpu") -> _nn.Module:
    """PReNet (Ren et al., CVPR 2019; the baseline SIAN compares to) with its authors'
    released weights, in eval mode.

    weights: the training set, ``rain100l``, ``rain100h`` or ``rain1400``.
    device: ``cpu`` (default), ``cuda``, ``cuda:N`` or ``auto``.
    Input: a float tensor (N, 3, H, W) in [0, 1]; the model returns the list of its six
    stage outputs, the last one the derained image.
    """
    return _released("prenet", weights, device)
