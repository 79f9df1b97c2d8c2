"""Where a model runs (``auto``, ``cpu``, ``cuda``, ``cuda:N``), and the exact fp32 the tables
need on a GPU (TF32 convolutions move PSNR by about 0.002 dB)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .config import DEVICE_PATTERN
from .errors import DerainError


class DeviceError(DerainError):
    """A device string that names no device, or a CUDA device this machine does not have."""


def resolve_device(
    setting: str | torch.device | None = "auto", local_rank: int = 0
) -> torch.device:
    """The device ``setting`` names; ``auto``/``cuda``: ``cuda:<local_rank>`` (the process's
    GPU under torchrun), ``auto`` falling back to the CPU; a missing device is one line."""
    if isinstance(setting, torch.device):
        return setting
    setting = setting or "auto"
    if not isinstance(setting, str) or not DEVICE_PATTERN.match(setting):
        raise DeviceError(f"device {setting!r}: choose one of auto, cpu, cuda, cuda:N")
    if setting == "cpu" or (setting == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {setting!r}: no CUDA device is available on this machine")
    index, count = int(setting.partition(":")[2] or local_rank), torch.cuda.device_count()
    if index >= count:
        raise DeviceError(f"device {setting!r}: this machine has {count} CUDA device(s) "
                          f"(cuda:0 to cuda:{count - 1})")  # fmt: skip
    return torch.device("cuda", index)


def device_name(device: torch.device) -> str:
    """``cuda:0 (NVIDIA H200)`` or ``cpu``: what progress lines and provenance show."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """TF32 on or off for matmuls and cuDNN convolutions inside the block (restored after)."""
    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul


def exact_fp32() -> contextlib.AbstractContextManager:
    """TF32 off inside the block (a no-op on the CPU, which has no TF32)."""
    return tf32(False)
