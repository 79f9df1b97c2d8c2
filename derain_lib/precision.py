"""Inference precision: fp32 (the default everywhere), bf16 autocast, or ``auto``: bf16 only
where the hardware has it natively (emulated bf16 is several times slower) *and* a short
timing here finds it faster, never for scores (the evaluation protocol is fp32).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16", "auto")
#: /proc/cpuinfo flags that mean native bf16 arithmetic.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
#: bf16 is chosen only when its forward takes at most this fraction of fp32's.
FASTER = 0.85


def cpuinfo_field(field: str, cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The first core's ``field`` (``flags``, ``model name`` ...); None where there is none."""
    with contextlib.suppress(OSError):
        for line in Path(cpuinfo).read_text().splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == field:
                return value.strip()
    return None


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (empty where ``/proc/cpuinfo`` is not readable)."""
    return frozenset((cpuinfo_field("flags", cpuinfo) or "").split())


def cpu_native_bf16(capability: str | None = None, flags: frozenset[str] | None = None) -> bool:
    """Whether this CPU computes bf16 natively (AMX or AVX512-BF16)."""
    capability = capability or torch.backends.cpu.get_cpu_capability()
    flags = cpu_flags() if flags is None else flags
    return "AMX" in capability.upper() or bool(NATIVE_BF16_FLAGS & set(flags))


def resolve_precision(
    precision: str,
    device: torch.device | str = "cpu",
    *,
    capability: str | None = None,
    flags: frozenset[str] | None = None,
    cuda_bf16: bool | None = None,
) -> str:
    """``fp32`` or ``bf16`` for a requested ``fp32``/``bf16``/``auto`` on ``device`` (``auto``:
    bf16 where the hardware has it natively)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    kind = torch.device(device).type
    if kind == "cuda":
        if cuda_bf16 is None:
            cuda_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return "bf16" if cuda_bf16 else "fp32"
    return "bf16" if kind == "cpu" and cpu_native_bf16(capability, flags) else "fp32"


def autocast(
    precision: str, device: torch.device | str = "cpu"
) -> contextlib.AbstractContextManager:
    """The context a forward runs in: bf16 autocast for ``bf16``, nothing for ``fp32``."""
    device = torch.device(device)
    if resolve_precision(precision, device) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, torch.bfloat16)


def best_time(fn: Callable[[], object], rounds: int = 2, warmup: bool = True) -> float:
    """The best wall time of ``rounds`` calls of ``fn`` (after one warm-up call)."""
    if warmup:
        fn()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def choose_auto(
    device: torch.device | str = "cpu",
    *,
    model: torch.nn.Module | None = None,
    protocol: bool = False,
    native: bool | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[str, str]:
    """``(precision, why)`` for ``--precision auto``: fp32 for the evaluation protocol and
    without native bf16, else bf16 if it takes at most :data:`FASTER` of fp32's time (``timings``
    in seconds, else measured on ``model`` with 128 px forwards)."""
    if protocol:
        return "fp32", "scores follow the table/evaluation protocol, which is fp32"
    if native is None:
        native = resolve_precision("auto", device) == "bf16"
    if not native:
        return "fp32", f"no native bf16 on this {torch.device(device).type}"
    if timings is None:
        if model is None:
            return "fp32", "bf16 not measured (no model given)"
        x = torch.rand(1, 3, 128, 128, device=device)

        def forward(precision: str) -> None:
            with torch.inference_mode(), autocast(precision, device):
                model(x)
            if x.is_cuda:
                torch.cuda.synchronize(x.device)

        timings = {p: best_time(functools.partial(forward, p), 3) for p in ("fp32", "bf16")}
    ratio = timings["bf16"] / timings["fp32"]
    measured = f"measured bf16 {timings['bf16']:.3f} s vs fp32 {timings['fp32']:.3f} s here"
    if ratio <= FASTER:
        return "bf16", f"{measured}: {1 / ratio:.2f}x faster"
    return "fp32", f"{measured}: not faster"
