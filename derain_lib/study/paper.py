"""The paper as data: ``paper.yaml`` (its numbers, Tables II-V's methods and benchmarks, the
claims the study checks) read into :data:`PAPER`, :data:`TABLES` and :data:`CLAIMS`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

import yaml

from ..tables import BENCHMARKS, MethodId

DATA = yaml.safe_load(Path(__file__).with_name("paper.yaml").read_text(encoding="utf-8"))
#: Table (roman numeral) -> row as printed -> benchmark -> [PSNR dB, SSIM] (None: "-").
PAPER: dict[str, dict[str, dict[str, list[float] | None]]] = DATA["numbers"]
#: The paper's training in patches seen, per benchmark trained on.
PAPER_PATCHES: dict[str, int] = DATA["patches"]
#: The notebook steps that score methods (``scores/<step>.json``) -> their notebook.
NOTEBOOKS: dict[str, str] = DATA["steps"]
Step = StrEnum("Step", {s.upper(): s for s in NOTEBOOKS})
TREND_TEXT: str = DATA["trend"]


class PaperValue(NamedTuple):
    """One cell of the paper: (PSNR, SSIM), None where it prints '-', and where it is printed."""

    value: tuple[float, float] | None
    quote: str


def paper_value(table: str, row: str, benchmark: str) -> PaperValue:
    """The paper's cell in ``table`` (roman numeral), ``row`` as printed, ``benchmark``."""
    try:
        v = PAPER[table][row][benchmark]
    except KeyError:
        raise KeyError(f"the paper has no Table {table} cell ({row!r}, {benchmark})") from None
    quote = f'Table {table}, row "{row}", column {BENCHMARKS[benchmark]}'
    return PaperValue(None if v is None else tuple(v), quote)


class Method(NamedTuple):
    """A row we measure: our method id, its label, and the paper row it is compared with."""

    id: MethodId
    label: str
    paper_row: str


@dataclass(frozen=True)
class TableSpec:
    """One paper table (``paper.yaml``'s ``tables``); ``key`` is its CSV's name."""

    key: str
    number: str
    title: str
    benchmarks: list[str]
    methods: list[Method]
    step: str
    claims: list[list[str]]  # (better row, worse row) on each benchmark
    paper_only_rows: bool = False

    @property
    def own_only(self) -> bool:
        return not self.paper_only_rows

    def method(self, paper_row: str) -> Method:
        """Our (first) method compared with the paper's ``paper_row``."""
        return next(m for m in self.methods if m.paper_row == paper_row)


TABLES: dict[str, TableSpec] = {
    k: TableSpec(k, **t | {"methods": [Method(MethodId(m[0]), *m[1:]) for m in t["methods"]]})
    for k, t in DATA["tables"].items()
}
TABLE2, TABLE3, TABLE4, TABLE5 = TABLES.values()


@dataclass(frozen=True)
class Claim:
    """``better`` beats ``worse`` on ``benchmark``, per the paper's ``table`` and its rows."""

    table: str
    benchmark: str
    better: MethodId
    worse: MethodId
    better_row: str
    worse_row: str

    @property
    def text(self) -> str:
        return f"{self.better_row} beats {self.worse_row} on {BENCHMARKS[self.benchmark]}"

    @property
    def trained(self) -> bool:
        """Both methods are trained by the profile (not released weights)."""
        return self.better.trained and self.worse.trained

    def paper(self, metric: str) -> tuple[float, float]:
        """The paper's (better, worse) values of ``metric``."""
        i = ("psnr", "ssim").index(metric)
        return tuple(
            PAPER[self.table][r][self.benchmark][i] for r in (self.better_row, self.worse_row)
        )


#: Every claim of Tables II-V the study checks, per table, benchmark and (better, worse).
CLAIMS: tuple[Claim, ...] = tuple(
    Claim(spec.number, b, spec.method(better).id, spec.method(worse).id, better, worse)
    for spec in TABLES.values()
    for b in spec.benchmarks
    for better, worse in spec.claims
)
