"""Inference precision: fp32 (the default everywhere), bf16 autocast, or ``auto``.

bf16 autocast runs SIAN's convolutions in bfloat16. On CPUs without native bf16
instructions (no AVX512-BF16, no AMX) oneDNN emulates it and the forward is several
times slower than fp32 (benchmarks/RESULTS.md); even with them it was measured no faster
on a 4-image batch and 0.013 dB lower (issue 23 row 5). So the commands resolve ``auto``
with :func:`choose_auto`: bf16 only where the hardware has it natively *and* a short
timing on this machine finds it faster, never for scores (the table/evaluation protocol
is fp32), and the choice is said on stderr. :func:`resolve_precision` is the hardware
part alone. The PSNR change bf16 makes on the sample pairs is measured by
``benchmarks/bench.py``.
"""

from __future__ import annotations

import contextlib
import time
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


#: bf16 is chosen only when its forward takes at most this fraction of fp32's.
FASTER = 0.85


def time_forward(
    model: torch.nn.Module, device: str = "cpu", size: int = 128, rounds: int = 3
) -> dict[str, float]:
    """Seconds of one forward of ``model`` on a ``size`` px image in fp32 and in bf16: the
    best of ``rounds``, the two precisions interleaved (after one warm-up each) so that a
    change of the machine's load affects both alike."""
    x = torch.rand(1, 3, size, size, device=device)
    best = {"fp32": float("inf"), "bf16": float("inf")}
    with torch.inference_mode():
        for i in range(rounds + 1):
            for precision in best:
                t = time.perf_counter()
                with autocast(precision, device):
                    model(x)
                if x.is_cuda:
                    torch.cuda.synchronize(x.device)
                if i:  # round 0 warms up
                    best[precision] = min(best[precision], time.perf_counter() - t)
    return best


def choose_auto(
    device: torch.device | str = "cpu",
    *,
    model: torch.nn.Module | None = None,
    protocol: bool = False,
    native: bool | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[str, str]:
    """What ``--precision auto`` means here: ``(precision, why)``.

    fp32 for the table/evaluation protocol (``protocol``) and where bf16 is not native
    (``native``, else :func:`resolve_precision`); otherwise bf16 only if it is measured
    at least 1/:data:`FASTER` times as fast as fp32 (``timings`` in seconds, else
    :func:`time_forward` of ``model``: about 8 forwards of a 128 px image, only on hardware
    with native bf16). ``why`` is the sentence the CLI prints."""
    if protocol:
        return "fp32", "scores follow the table/evaluation protocol, which is fp32"
    if native is None:
        native = resolve_precision("auto", device) == "bf16"
    if not native:
        return "fp32", f"no native bf16 on this {torch.device(device).type}"
    if timings is None:
        if model is None:
            return "fp32", "bf16 not measured (no model given)"
        timings = time_forward(model, str(device))
    ratio = timings["bf16"] / timings["fp32"]
    measured = f"measured bf16 {timings['bf16']:.3f} s vs fp32 {timings['fp32']:.3f} s here"
    if ratio <= FASTER:
        return "bf16", f"{measured}: {1 / ratio:.2f}x faster"
    return "fp32", f"{measured}: not faster"
