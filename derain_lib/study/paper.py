"""The paper as data: ``paper.yaml`` (its numbers, which methods and benchmarks each of Tables
II-V has, the claims the study checks) read into :data:`PAPER`, :data:`TABLES` and
:data:`CLAIMS`. :mod:`.tabulate` builds the tables and :mod:`.claims` the verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

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


@dataclass(frozen=True)
class PaperValue:
    """One cell of the paper, with where it is printed."""

    table: str
    row: str
    benchmark: str
    value: tuple[float, float] | None

    @property
    def quote(self) -> str:
        return f'Table {self.table}, row "{self.row}", column {BENCHMARKS[self.benchmark]}'


def paper_value(table: str, row: str, benchmark: str) -> PaperValue:
    """The paper's (PSNR, SSIM) in ``table`` (roman numeral), ``row`` as printed, ``benchmark``."""
    try:
        v = PAPER[table][row][benchmark]
    except KeyError:
        raise KeyError(f"the paper has no Table {table} cell ({row!r}, {benchmark})") from None
    return PaperValue(table, row, benchmark, None if v is None else tuple(v))


@dataclass(frozen=True)
class Method:
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
    benchmarks: tuple[str, ...]
    methods: tuple[Method, ...]
    step: Step
    claims: tuple[tuple[str, str], ...]  # (better row, worse row) on each benchmark
    paper_only_rows: bool = False

    @property
    def own_only(self) -> bool:
        return not self.paper_only_rows

    def method(self, paper_row: str) -> Method:
        """Our (first) method compared with the paper's ``paper_row``."""
        return next(m for m in self.methods if m.paper_row == paper_row)


TABLES: dict[str, TableSpec] = {
    k: TableSpec(
        k,
        t["number"],
        t["title"],
        tuple(t["benchmarks"]),
        tuple(Method(MethodId(i), label, row) for i, label, row in t["methods"]),
        Step(t["step"]),
        tuple(map(tuple, t["claims"])),
        t.get("paper_only_rows", False),
    )
    for k, t in DATA["tables"].items()
}
TABLE2, TABLE3, TABLE4, TABLE5 = TABLES.values()


@dataclass(frozen=True)
class Claim:
    """``better`` beats ``worse`` on ``benchmark``, per the paper's ``table`` (roman
    numeral), whose rows for the two are ``better_row`` and ``worse_row``."""

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

    def paper(self, metric: str) -> tuple[float, float] | None:
        """The paper's (better, worse) values of ``metric``; None where it prints '-'."""
        i = ("psnr", "ssim").index(metric)
        a, b = (PAPER[self.table][r][self.benchmark] for r in (self.better_row, self.worse_row))
        return None if a is None or b is None else (a[i], b[i])


#: Every claim of Tables II-V the study checks, per table, benchmark and (better, worse).
CLAIMS: tuple[Claim, ...] = tuple(
    Claim(spec.number, b, spec.method(better).id, spec.method(worse).id, better, worse)
    for spec in TABLES.values()
    for b in spec.benchmarks
    for better, worse in spec.claims
)
