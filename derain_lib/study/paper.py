"""The paper as data: its numbers (Tables II-V), which methods and benchmarks each table
has, and the claims the study checks (arXiv 2006.05049v1, Tables II-V and Fig. 6; see
../shared/paper). :mod:`.tabulate` builds the tables and :mod:`.claims` the verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..tables import BENCHMARKS, MethodId

# (PSNR dB, SSIM) per row as printed; None where the paper prints "-". Tables III and IV
# list the same rows: their columns Rain100L, Rain100H (III) and Rain1400, Rain12 (IV).
COMPARED_ROWS: dict[str, tuple[tuple[float, float] | None, ...]] = {
    "Input": ((26.90, 0.838), (13.56, 0.371), (25.24, 0.810), (30.14, 0.856)),
    "DSC [16] (ICCV'15)": ((27.34, 0.849), (13.77, 0.320), (27.88, 0.839), (30.07, 0.866)),
    "GMM [12] (CVPR'16)": ((29.05, 0.872), (15.23, 0.450), (27.78, 0.859), (32.14, 0.916)),
    "JCAS [4] (ICCV'17)": ((28.54, 0.852), (14.62, 0.451), (26.20, 0.847), (33.10, 0.931)),
    "Clear [2] (TIP'17)": ((30.24, 0.934), (15.33, 0.742), (26.21, 0.895), (31.24, 0.935)),
    "DDN [3] (CVPR'17)": ((32.38, 0.926), (22.85, 0.725), (28.45, 0.889), (34.04, 0.933)),
    "RESCAN [11] (ECCV'18)": ((38.52, 0.981), (29.62, 0.872), (32.03, 0.931), (36.43, 0.952)),
    "PReNet [17] (CVPR'19)": ((37.45, 0.979), (30.11, 0.905), (32.55, 0.946), (36.66, 0.961)),
    "SPANet [21] (CVPR'19)": ((34.46, 0.962), (25.11, 0.833), (29.76, 0.908), (34.63, 0.943)),
    "JORDER_E [26] (TPAMI'19)": ((38.61, 0.982), (30.04, 0.906), (32.68, 0.943), (36.69, 0.962)),
    "SIRR [23] (CVPR'19)": ((32.37, 0.926), (22.47, 0.716), (28.44, 0.889), (34.02, 0.935)),
    "LPNet [1] (TNNLS'20)": ((33.40, 0.960), (23.40, 0.820), None, (34.70, 0.950)),
    "Ours": ((38.80, 0.984), (30.33, 0.909), (32.80, 0.946), (37.24, 0.967)),
}
PAPER: dict[str, dict[str, dict[str, tuple[float, float] | None]]] = {
    "II": {
        "MAE": {"rain100l": (38.54, 0.981), "rain100h": (30.12, 0.904)},
        "MSE": {"rain100l": (38.52, 0.981), "rain100h": (30.03, 0.902)},
        "Negative SSIM": {"rain100l": (38.80, 0.984), "rain100h": (30.33, 0.909)},
    },
    "III": {
        r: dict(zip(("rain100l", "rain100h"), v[:2], strict=True)) for r, v in COMPARED_ROWS.items()
    },
    "IV": {
        r: dict(zip(("rain1400", "rain12"), v[2:], strict=True)) for r, v in COMPARED_ROWS.items()
    },
    "V": {
        "Baseline": {"rain100l": (37.92, 0.980), "rain100h": (28.55, 0.893)},
        "Baseline+LSTM": {"rain100l": (38.68, 0.982), "rain100h": (30.20, 0.906)},
        "Baseline+SIAN+LSTM": {"rain100l": (38.80, 0.984), "rain100h": (30.33, 0.909)},
    },
}

#: The paper's training, in patches seen (MODEL_SPEC 5, docs/data.md: 120x120 patches of
#: 481x321 images): RainTrainL 200 x 60 x 2 (flips) x 100 epochs, RainTrainH 1,800 x 15 x
#: 100 epochs. Rain1400's images vary in size: no figure (no trained claim uses it).
PAPER_PATCHES: dict[str, int] = {"rain100l": 200 * 60 * 2 * 100, "rain100h": 1800 * 15 * 100}


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
        return PaperValue(table, row, benchmark, PAPER[table][row][benchmark])
    except KeyError:
        raise KeyError(f"the paper has no Table {table} cell ({row!r}, {benchmark})") from None


class Step(StrEnum):
    """The notebook steps that score methods (``scores/<step>.json``, per-image CSVs)."""

    TABLE2 = "table2"
    TABLE3_4 = "table3_4"
    TABLE5 = "table5"


@dataclass(frozen=True)
class Method:
    """A row we measure: our method id, its label, and the paper row it is compared with."""

    id: MethodId
    label: str
    paper_row: str


@dataclass(frozen=True)
class TableSpec:
    """One paper table: which methods we measure on which benchmarks, in which step (the
    notebooks score ``score_table(p, TABLE2)``; the tables and the claims read the same).
    The paper's comparison tables (III, IV) also list the rows of methods we do not run;
    the trained-variant tables (II, V) compare on the profile's own test sets only."""

    key: str  # "table2": the CSV's name
    number: str  # roman numeral, as in the paper
    title: str
    benchmarks: tuple[str, ...]
    methods: tuple[Method, ...]
    step: Step  # the notebook step that scores it
    paper_only_rows: bool = False

    @property
    def own_only(self) -> bool:
        return not self.paper_only_rows

    def method(self, paper_row: str) -> Method:
        """Our method compared with the paper's ``paper_row``."""
        return next(m for m in self.methods if m.paper_row == paper_row)


PRENET_ROW = "PReNet [17] (CVPR'19)"
LIGHT_HEAVY = ("rain100l", "rain100h")
COMPARED = (
    Method(MethodId.INPUT, "Input (rainy vs ground truth)", "Input"),
    Method(MethodId.PRENET_RELEASED, "PReNet (released weights)", PRENET_ROW),
    Method(MethodId.SIAN_RELEASED, "SIAN (released weights)", "Ours"),
    Method(MethodId.SIAN, "SIAN (trained by this profile)", "Ours"),
)
LOSSES = (
    Method(MethodId.SIAN_MAE, "SIAN, MAE loss (trained)", "MAE"),
    Method(MethodId.SIAN_MSE, "SIAN, MSE loss (trained)", "MSE"),
    Method(MethodId.SIAN, "SIAN, negative SSIM loss (trained)", "Negative SSIM"),
)
ABLATION = (
    Method(MethodId.BASELINE, "Baseline (trained)", "Baseline"),
    Method(MethodId.BASELINE_LSTM, "Baseline+LSTM (trained)", "Baseline+LSTM"),
    Method(MethodId.SIAN, "Baseline+SIAN+LSTM (trained)", "Baseline+SIAN+LSTM"),
)
LOSS_TITLE = "Loss functions: negative SSIM vs MAE vs MSE (SIAN full, trained by this profile)"
TABLE2 = TableSpec("table2", "II", LOSS_TITLE, LIGHT_HEAVY, LOSSES, Step.TABLE2)
TABLE3 = TableSpec(
    "table3", "III", "Rain100L and Rain100H", LIGHT_HEAVY, COMPARED, Step.TABLE3_4, True
)
TABLE4 = TableSpec(
    "table4", "IV", "Rain1400 and Rain12", ("rain1400", "rain12"), COMPARED, Step.TABLE3_4, True
)
ABLATION_TITLE = "Ablation: baseline, baseline+LSTM, full (trained by this profile)"
TABLE5 = TableSpec("table5", "V", ABLATION_TITLE, LIGHT_HEAVY, ABLATION, Step.TABLE5)

#: Every table, by its CSV name.
TABLES: dict[str, TableSpec] = {t.key: t for t in (TABLE2, TABLE3, TABLE4, TABLE5)}


@dataclass(frozen=True)
class Claim:
    """``better`` beats ``worse`` on ``benchmark``, per the paper's ``table``."""

    table: str  # roman numeral of the table the two numbers are printed in
    benchmark: str
    better: MethodId
    worse: MethodId
    better_row: str  # the paper's row names for the two methods
    worse_row: str
    step: Step  # the pipeline step (scores/<step>.json) that measures both methods

    @property
    def id(self) -> str:
        return f"{self.table}:{self.better_row}>{self.worse_row}:{self.benchmark}"

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
        a = paper_value(self.table, self.better_row, self.benchmark).value
        b = paper_value(self.table, self.worse_row, self.benchmark).value
        return None if a is None or b is None else (a[i], b[i])


def _claim(spec: TableSpec, benchmark: str, better_row: str, worse_row: str) -> Claim:
    better, worse = spec.method(better_row), spec.method(worse_row)
    return Claim(spec.number, benchmark, better.id, worse.id, better_row, worse_row, spec.step)


#: Every claim of Tables II-V the study checks: (table, better row, worse row) per benchmark.
CLAIMS: tuple[Claim, ...] = tuple(
    _claim(spec, b, better, worse)
    for spec, pairs in (
        (TABLE2, [("Negative SSIM", "MAE"), ("Negative SSIM", "MSE")]),
        (TABLE3, [("Ours", PRENET_ROW)]),
        (TABLE4, [("Ours", PRENET_ROW)]),
        (TABLE5, [("Baseline+LSTM", "Baseline"), ("Baseline+SIAN+LSTM", "Baseline+LSTM")]),
    )
    for b in spec.benchmarks
    for better, worse in pairs
)
#: Fig. 6's claim, checked per benchmark the released SIAN's stages are scored on.
TREND_TEXT = "each stage improves on the one before (Fig. 6, released SIAN, stages 2-6)"
