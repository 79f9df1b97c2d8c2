"""Inference precision: fp32, bf16 autocast, or ``auto`` (bf16 only where it is native).

bf16 autocast runs SIAN's convolutions in bfloat16. On CPUs without native bf16
instructions (no AVX512-BF16, no AMX) oneDNN emulates it and the forward is several
times slower than fp32 (benchmarks/RESULTS.md), so ``auto`` picks bf16 only on CPUs
with AVX512-BF16 or AMX and on CUDA devices that support bf16; fp32 elsewhere.
The PSNR change bf16 makes on the sample pairs is measured by ``benchmarks/bench.py``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16", "auto")
#: /proc/cpuinfo flags that mean native bf16 arithmetic.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpuinfo_field(field: str, cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The first core's value of ``field`` (``flags``, ``model name`` ...) in ``/proc/cpuinfo``;
    None where the field is absent or the file is not readable."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == field:
                return value.strip()
    except OSError:
        pass
    return None


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (empty where ``/proc/cpuinfo`` is not readable)."""
    return frozenset((cpuinfo_field("flags", cpuinfo) or "").split())


def cpu_native_bf16(capability: str | None = None, flags: frozenset[str] | None = None) -> bool:
    """Whether this CPU computes bf16 natively: AMX or AVX512-BF16.

    ``capability``: what ``torch.backends.cpu.get_cpu_capability()`` says (e.g. ``AVX2``,
    ``AVX512``, ``AMX``...); ``flags``: the CPU flags. Both are looked up when not given
    (tests pass them to mock another CPU)."""
    if capability is None:
        capability = torch.backends.cpu.get_cpu_capability()
    if flags is None:
        flags = cpu_flags()
    return "AMX" in capability.upper() or bool(NATIVE_BF16_FLAGS & set(flags))


def resolve_precision(
    precision: str,
    device: torch.device | str = "cpu",
    *,
    capability: str | None = None,
    flags: frozenset[str] | None = None,
    cuda_bf16: bool | None = None,
) -> str:
    """``fp32`` or ``bf16`` for a requested ``fp32``/``bf16``/``auto`` on ``device``.

    ``auto``: bf16 on a CPU with native bf16 (:func:`cpu_native_bf16`) or a CUDA device
    that supports it (``cuda_bf16``, else ``torch.cuda.is_bf16_supported()``); fp32
    otherwise. An unknown name raises a one-line ``ValueError``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    kind = torch.device(device).type
    if kind == "cuda":
        if cuda_bf16 is None:
            cuda_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return "bf16" if cuda_bf16 else "fp32"
    if kind == "cpu":
        return "bf16" if cpu_native_bf16(capability, flags) else "fp32"
    return "fp32"


def autocast(
    precision: str, device: torch.device | str = "cpu"
) -> contextlib.AbstractContextManager:
    """The context a forward runs in: bf16 autocast for ``bf16``, nothing for ``fp32``
    (``auto`` is resolved for ``device`` first)."""
    device = torch.device(device)
    if resolve_precision(precision, device) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, torch.bfloat16)
