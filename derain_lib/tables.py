"""What a score is, for the study that writes scores and the figures that read them: the
benchmarks' names, the method ids, and :class:`Score`, one cell with its provenance."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal, get_args

from .errors import DerainError
from .fsutil import atomic_write_text

#: Benchmark key -> the column name the paper prints.
BENCHMARKS: dict[str, str] = {b.lower(): b for b in ("Rain100L", "Rain100H", "Rain1400", "Rain12")}
#: Embedded synthetic presets -> the benchmark each stands in for (smoke and quick data).
STAND_IN_FOR: dict[str, str] = {"light": "rain100l", "heavy": "rain100h"}
_PRESET = {b: k for k, b in STAND_IN_FOR.items()}
#: Test images in each full benchmark test set (paper Table I).
FULL_TEST_SIZE: dict[str, int] = {"rain100l": 100, "rain100h": 100, "rain1400": 1400, "rain12": 12}


def benchmark_label(benchmark: str, stand_in: bool = False) -> str:
    """``Rain100L``, or ``embedded light (stand-in for Rain100L)`` for its synthetic stand-in."""
    name = BENCHMARKS[benchmark]
    return f"embedded {_PRESET[benchmark]} (stand-in for {name})" if stand_in else name


def benchmark_file_id(benchmark: str, stand_in: bool = False) -> str:
    """:func:`benchmark_label` as a file-name part: ``rain100l`` or ``embedded-light``."""
    return f"embedded-{_PRESET[benchmark]}" if stand_in else benchmark


class MethodId(StrEnum):
    """Every method the study scores, by the id its records carry (defined here only)."""

    INPUT = "input"
    PRENET_RELEASED = "prenet-released"
    SIAN_RELEASED = "sian-released"
    SIAN = "sian/neg-ssim"
    SIAN_MAE = "sian/mae"
    SIAN_MSE = "sian/mse"
    BASELINE = "sian-baseline/neg-ssim"
    BASELINE_LSTM = "sian-baseline+lstm/neg-ssim"

    @property
    def released(self) -> bool:
        """The authors' weights (not trained here, not the input)."""
        return self in (MethodId.PRENET_RELEASED, MethodId.SIAN_RELEASED)

    @property
    def trained(self) -> bool:
        return self is not MethodId.INPUT and not self.released


#: Measured here (by a training run, of released weights, ``computed``: the Input), quoted from
#: the ``paper``, ``not_run``, or ``degenerate``: a model that learned no deraining.
ScoreKind = Literal["reproduced", "released", "computed", "paper", "not_run", "degenerate"]
SCORE_KINDS: tuple[str, ...] = get_args(ScoreKind)
#: Kinds that carry measured numbers.
MEASURED_KINDS: tuple[str, ...] = ("reproduced", "released", "computed", "degenerate")


@dataclass(kw_only=True)
class Score:
    """One measured cell, or a "not run" one (``detail``: why), of a table."""

    method: str
    benchmark: str
    kind: ScoreKind
    detail: str = ""
    test_set: str = ""
    n: int = 0
    psnr: float | None = None
    ssim: float | None = None
    stand_in: bool = False
    per_image_csv: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise DerainError(f"unknown benchmark {self.benchmark!r} (known: {list(BENCHMARKS)})")
        if self.kind not in SCORE_KINDS or self.kind == "paper":
            raise DerainError(f"score of {self.method}: kind {self.kind!r} is not a record's")
        values = (self.psnr, self.ssim)
        finite = all(v is not None and math.isfinite(v) for v in values)
        if self.ran and (self.n <= 0 or not finite):
            raise DerainError(
                f"score of {self.method} on {self.test_set}: {self.n} images, {values}"
            )

    @property
    def ran(self) -> bool:
        """Measured numbers exist (a degenerate run's too)."""
        return self.kind in MEASURED_KINDS

    @property
    def partial(self) -> bool:
        return not self.stand_in and self.n < FULL_TEST_SIZE[self.benchmark]

    @property
    def provenance(self) -> str:
        """The kind and detail as one line (the tables' ``provenance`` column)."""
        return provenance_text(self.kind, self.detail)


def provenance_text(kind: str, detail: str) -> str:
    """``reproduced (quick, run 1a2b)``, ``released weights (...)``, ``not run: why`` ..."""
    if kind == "not_run":
        return NOT_RUN + detail
    name = "released weights" if kind == "released" else kind
    return f"{name} ({detail})" if detail else name


#: How every "did not run" status begins.
NOT_RUN = "not run: "


def not_run(reason: str) -> str:
    """A "did not run" status line."""
    return NOT_RUN + reason


def missing(reason: str) -> dict:
    """``Score`` fields of a cell that did not run (``reason`` with or without the prefix)."""
    return {"kind": "not_run", "detail": reason.removeprefix(NOT_RUN)}


def save_scores(scores: list[Score], path: str | Path) -> Path:
    """Write score records as JSON (one file per notebook step)."""
    return atomic_write_text(path, json.dumps([asdict(s) for s in scores], indent=1) + "\n")


def load_scores(paths: list[Path]) -> list[Score]:
    """Score records from JSON files written by :func:`save_scores`."""
    out = []
    for p in paths:
        try:
            out += [Score(**d) for d in json.loads(Path(p).read_text())]
        except (json.JSONDecodeError, TypeError) as e:
            raise DerainError(f"{p}: not a score file ({e})") from None
    return out
