"""The devices and dtypes the model, loss and metric tests run on (kornia's habit): the CPU
always, CUDA when present; float32, and bfloat16 where the device has it."""

from __future__ import annotations

import pytest
import torch

_CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not _CUDA, reason="no CUDA"))]
_BF16 = pytest.mark.skipif(
    _CUDA and not torch.cuda.is_bf16_supported(), reason="this GPU has no bfloat16"
)
DTYPES = [torch.float32, pytest.param(torch.bfloat16, marks=_BF16)]


def tol(dtype: torch.dtype, float32: float, bfloat16: float) -> float:
    """The tolerance of a comparison in ``dtype``: ``float32``'s is the test's own; bfloat16
    keeps 8 significant bits (a relative rounding of 2**-9 per value, more after a network
    of them), so its tolerance is stated next to each test's float32 one."""
    return bfloat16 if dtype == torch.bfloat16 else float32
