"""Where a model runs: ``auto`` (the first CUDA device when there is one), ``cpu``,
``cuda`` or ``cuda:N``; and the fp32 that the tables need on a GPU.

Every command that runs a model takes one of these strings (``--device``, the notebooks'
``device`` parameter, ``explore(..., device=)``); training keeps ``train.device``.
Scores are computed in exact fp32: :func:`exact_fp32` turns TF32 off for the forward
passes that give a table's numbers (cuDNN allows TF32 for convolutions by default, which
moves PSNR by about 0.002 dB), so GPU scores equal CPU scores within 1e-3 dB.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import torch

from .errors import DerainError

#: What ``--device`` accepts (``cuda:N`` for any N).
DEVICE_FORMS = ("auto", "cpu", "cuda", "cuda:N")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class DeviceError(DerainError):
    """A device string that names no device, or a CUDA device this machine does not have."""


def check_device(setting: str) -> str:
    """``setting`` if it is one of :data:`DEVICE_FORMS`, else a one-line :class:`DeviceError`."""
    if not isinstance(setting, str) or not _DEVICE.match(setting):
        raise DeviceError(f"device {setting!r}: choose one of {', '.join(DEVICE_FORMS)}")
    return setting


def resolve_device(
    setting: str | torch.device | None = "auto", local_rank: int = 0
) -> torch.device:
    """The torch device ``setting`` names. ``auto`` (or None): ``cuda:<local_rank>`` when
    CUDA is available (the process's own GPU under torchrun), else the CPU; ``cuda``: the
    same, but an error without CUDA; ``cuda:N``: that device, which must exist."""
    if isinstance(setting, torch.device):
        return setting
    setting = check_device(setting or "auto")
    if setting == "cpu" or (setting == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {setting!r}: no CUDA device is available on this machine")
    index = int(setting.partition(":")[2]) if ":" in setting else local_rank
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceError(
            f"device {setting!r}: this machine has {count} CUDA device(s) (cuda:0 to "
            f"cuda:{count - 1})"
        )
    return torch.device("cuda", index)


def device_name(device: torch.device) -> str:
    """``cuda:0 (NVIDIA H200)`` or ``cpu``: what progress lines and provenance show."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """TF32 off for matmuls and cuDNN convolutions inside the block (restored after); a
    no-op for the CPU, which has no TF32."""
    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = cudnn
        torch.backends.cuda.matmul.allow_tf32 = matmul
