"""Tables II-V of the paper: its numbers as data, and ours assembled with per-cell provenance.

The pipeline records one :class:`Score` per (method, test set) it measured, or one "not run"
score per (method, benchmark) it could not measure. :func:`build_table` turns those records
into the rows of one paper table: our value next to the paper's, the difference where the two
are comparable, and a provenance on every row (``reproduced (profile, run hash)``,
``released weights (file, sha256)``, ``computed (...)`` for the Input rows, ``paper (Table,
row, column)`` for methods we do not run, ``not run: <reason>`` or ``degenerate: <reason>``),
and its :data:`ScoreKind` in the ``kind`` column (what readers filter on). Method ids
(:class:`MethodId`), steps (:class:`Step`) and which methods and benchmarks each table has
(:data:`TABLES`, :class:`TableSpec`) are defined here once. Nothing in this module runs a
model: it only reads and writes files under ``results/<profile>/``.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd

from .errors import DerainError
from .fsutil import atomic_path, atomic_write_text

#: Benchmark key -> the column name the paper prints.
BENCHMARKS: dict[str, str] = {
    "rain100l": "Rain100L",
    "rain100h": "Rain100H",
    "rain1400": "Rain1400",
    "rain12": "Rain12",
}

#: Embedded synthetic presets -> the benchmark each stands in for (smoke and quick data).
STAND_IN_FOR: dict[str, str] = {"light": "rain100l", "heavy": "rain100h"}

#: Test images in each full benchmark test set (paper Table I).
FULL_TEST_SIZE: dict[str, int] = {"rain100l": 100, "rain100h": 100, "rain1400": 1400, "rain12": 12}

# The paper's numbers, (PSNR dB, SSIM) per row as printed and per column; None where the paper
# prints "-". Source: arXiv 2006.05049v1, Tables II-V (see ../shared/paper).
PAPER: dict[str, dict[str, dict[str, tuple[float, float] | None]]] = {
    "II": {
        "MAE": {"rain100l": (38.54, 0.981), "rain100h": (30.12, 0.904)},
        "MSE": {"rain100l": (38.52, 0.981), "rain100h": (30.03, 0.902)},
        "Negative SSIM": {"rain100l": (38.80, 0.984), "rain100h": (30.33, 0.909)},
    },
    "III": {
        "Input": {"rain100l": (26.90, 0.838), "rain100h": (13.56, 0.371)},
        "DSC [16] (ICCV'15)": {"rain100l": (27.34, 0.849), "rain100h": (13.77, 0.320)},
        "GMM [12] (CVPR'16)": {"rain100l": (29.05, 0.872), "rain100h": (15.23, 0.450)},
        "JCAS [4] (ICCV'17)": {"rain100l": (28.54, 0.852), "rain100h": (14.62, 0.451)},
        "Clear [2] (TIP'17)": {"rain100l": (30.24, 0.934), "rain100h": (15.33, 0.742)},
        "DDN [3] (CVPR'17)": {"rain100l": (32.38, 0.926), "rain100h": (22.85, 0.725)},
        "RESCAN [11] (ECCV'18)": {"rain100l": (38.52, 0.981), "rain100h": (29.62, 0.872)},
        "PReNet [17] (CVPR'19)": {"rain100l": (37.45, 0.979), "rain100h": (30.11, 0.905)},
        "SPANet [21] (CVPR'19)": {"rain100l": (34.46, 0.962), "rain100h": (25.11, 0.833)},
        "JORDER_E [26] (TPAMI'19)": {"rain100l": (38.61, 0.982), "rain100h": (30.04, 0.906)},
        "SIRR [23] (CVPR'19)": {"rain100l": (32.37, 0.926), "rain100h": (22.47, 0.716)},
        "LPNet [1] (TNNLS'20)": {"rain100l": (33.40, 0.960), "rain100h": (23.40, 0.820)},
        "Ours": {"rain100l": (38.80, 0.984), "rain100h": (30.33, 0.909)},
    },
    "IV": {
        "Input": {"rain1400": (25.24, 0.810), "rain12": (30.14, 0.856)},
        "DSC [16] (ICCV'15)": {"rain1400": (27.88, 0.839), "rain12": (30.07, 0.866)},
        "GMM [12] (CVPR'16)": {"rain1400": (27.78, 0.859), "rain12": (32.14, 0.916)},
        "JCAS [4] (ICCV'17)": {"rain1400": (26.20, 0.847), "rain12": (33.10, 0.931)},
        "Clear [2] (TIP'17)": {"rain1400": (26.21, 0.895), "rain12": (31.24, 0.935)},
        "DDN [3] (CVPR'17)": {"rain1400": (28.45, 0.889), "rain12": (34.04, 0.933)},
        "RESCAN [11] (ECCV'18)": {"rain1400": (32.03, 0.931), "rain12": (36.43, 0.952)},
        "PReNet [17] (CVPR'19)": {"rain1400": (32.55, 0.946), "rain12": (36.66, 0.961)},
        "SPANet [21] (CVPR'19)": {"rain1400": (29.76, 0.908), "rain12": (34.63, 0.943)},
        "JORDER_E [26] (TPAMI'19)": {"rain1400": (32.68, 0.943), "rain12": (36.69, 0.962)},
        "SIRR [23] (CVPR'19)": {"rain1400": (28.44, 0.889), "rain12": (34.02, 0.935)},
        "LPNet [1] (TNNLS'20)": {"rain1400": None, "rain12": (34.7, 0.95)},
        "Ours": {"rain1400": (32.80, 0.946), "rain12": (37.24, 0.967)},
    },
    "V": {
        "Baseline": {"rain100l": (37.92, 0.980), "rain100h": (28.55, 0.893)},
        "Baseline+LSTM": {"rain100l": (38.68, 0.982), "rain100h": (30.20, 0.906)},
        "Baseline+SIAN+LSTM": {"rain100l": (38.80, 0.984), "rain100h": (30.33, 0.909)},
    },
}


def _stand_in_preset(benchmark: str) -> str:
    return next((k for k, v in STAND_IN_FOR.items() if v == benchmark), benchmark)


def benchmark_label(benchmark: str, stand_in: bool = False) -> str:
    """What a reader is told the data are: ``Rain100L`` for the benchmark itself, ``embedded
    light (stand-in for Rain100L)`` for the synthetic set standing in for it (never the
    benchmark's name alone for synthetic data). Tables, figures and findings all use it."""
    name = BENCHMARKS[benchmark]
    return f"embedded {_stand_in_preset(benchmark)} (stand-in for {name})" if stand_in else name


def benchmark_file_id(benchmark: str, stand_in: bool = False) -> str:
    """:func:`benchmark_label` as a file-name part: ``rain100l`` or ``embedded-light``."""
    return f"embedded-{_stand_in_preset(benchmark)}" if stand_in else benchmark


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
    """One paper table: which methods we measure on which benchmarks, in which step.

    The single description of a table: the notebooks score ``score_table(p, TABLE2)``, the
    tables and the claims read the same spec."""

    key: str  # "table2": the CSV's name
    number: str  # roman numeral, as in the paper
    title: str
    benchmarks: tuple[str, ...]
    methods: tuple[Method, ...]
    paper_only_rows: bool  # add the paper's rows for methods we do not run
    step: Step  # the notebook step that scores it
    own_only: bool  # trained variants compared on the profile's own test sets only

    def method(self, paper_row: str) -> Method:
        """Our method compared with the paper's ``paper_row``."""
        return next(m for m in self.methods if m.paper_row == paper_row)


INPUT = Method(MethodId.INPUT, "Input (rainy vs ground truth)", "Input")
PRENET_RELEASED = Method(
    MethodId.PRENET_RELEASED, "PReNet (released weights)", "PReNet [17] (CVPR'19)"
)
SIAN_RELEASED = Method(MethodId.SIAN_RELEASED, "SIAN (released weights)", "Ours")
SIAN_TRAINED = Method(MethodId.SIAN, "SIAN (trained by this profile)", "Ours")

TABLE2 = TableSpec(
    "table2",
    "II",
    "Loss functions: negative SSIM vs MAE vs MSE (SIAN full, trained by this profile)",
    ("rain100l", "rain100h"),
    (
        Method(MethodId.SIAN_MAE, "SIAN, MAE loss (trained)", "MAE"),
        Method(MethodId.SIAN_MSE, "SIAN, MSE loss (trained)", "MSE"),
        Method(MethodId.SIAN, "SIAN, negative SSIM loss (trained)", "Negative SSIM"),
    ),
    False,
    Step.TABLE2,
    True,
)
TABLE3 = TableSpec(
    "table3",
    "III",
    "Rain100L and Rain100H",
    ("rain100l", "rain100h"),
    (INPUT, PRENET_RELEASED, SIAN_RELEASED, SIAN_TRAINED),
    True,
    Step.TABLE3_4,
    False,
)
TABLE4 = TableSpec(
    "table4",
    "IV",
    "Rain1400 and Rain12",
    ("rain1400", "rain12"),
    (INPUT, PRENET_RELEASED, SIAN_RELEASED, SIAN_TRAINED),
    True,
    Step.TABLE3_4,
    False,
)
TABLE5 = TableSpec(
    "table5",
    "V",
    "Ablation: baseline, baseline+LSTM, full (trained by this profile)",
    ("rain100l", "rain100h"),
    (
        Method(MethodId.BASELINE, "Baseline (trained)", "Baseline"),
        Method(MethodId.BASELINE_LSTM, "Baseline+LSTM (trained)", "Baseline+LSTM"),
        Method(MethodId.SIAN, "Baseline+SIAN+LSTM (trained)", "Baseline+SIAN+LSTM"),
    ),
    False,
    Step.TABLE5,
    True,
)

#: Every table, by its CSV name.
TABLES: dict[str, TableSpec] = {t.key: t for t in (TABLE2, TABLE3, TABLE4, TABLE5)}


def tables_of(step: Step | str) -> tuple[TableSpec, ...]:
    """The tables one step scores (Tables III and IV share ``table3_4``)."""
    return tuple(t for t in TABLES.values() if t.step == step)


#: What a score is: measured here (``reproduced`` by a training run of the profile,
#: ``released`` weights, ``computed`` without a model: the Input row), quoted from the
#: ``paper``, ``not_run`` (``detail`` says why) or ``degenerate`` (measured, but the model's
#: output is its input or it did not learn: ``detail`` says which; scored, never judged).
ScoreKind = Literal["reproduced", "released", "computed", "paper", "not_run", "degenerate"]
SCORE_KINDS: tuple[str, ...] = get_args(ScoreKind)
#: Kinds that carry measured numbers.
MEASURED_KINDS: tuple[str, ...] = ("reproduced", "released", "computed", "degenerate")


@dataclass(kw_only=True)
class Score:
    """One measured cell (or a "not run" one) as the pipeline records it.

    ``kind`` says what it is (:data:`ScoreKind`); ``detail`` the rest: ``<profile>, run
    <hash>`` (reproduced), ``<file>, sha256 <hex>`` (released), what was computed, why it
    did not run, why it is degenerate. ``stand_in`` marks test data that stands in for the
    benchmark (the embedded synthetic sets): not comparable to the paper.
    """

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
        if self.kind not in SCORE_KINDS:
            raise DerainError(f"score of {self.method}: unknown kind {self.kind!r}")
        if self.kind == "paper":
            raise DerainError(f"score of {self.method}: a measured record cannot be 'paper'")
        if self.ran:
            for v in (self.psnr, self.ssim):
                if v is None or not math.isfinite(v):
                    raise DerainError(f"score of {self.method} on {self.test_set}: value {v}")
            if self.n <= 0:
                raise DerainError(f"score of {self.method} on {self.test_set}: no images")

    @property
    def ran(self) -> bool:
        """Measured numbers exist (a degenerate run's too)."""
        return self.kind in MEASURED_KINDS

    @property
    def judged(self) -> bool:
        """Measured and fit to support a claim (not degenerate)."""
        return self.ran and self.kind != "degenerate"

    @property
    def partial(self) -> bool:
        return not self.stand_in and self.n < FULL_TEST_SIZE[self.benchmark]

    @property
    def provenance(self) -> str:
        """The kind and detail as one line for readers (the tables' ``provenance`` column)."""
        return provenance_text(self.kind, self.detail)


def provenance_text(kind: str, detail: str) -> str:
    """``reproduced (quick, run 1a2b)``, ``released weights (file, sha256 ..)``,
    ``computed (...)``, ``paper (...)``, ``not run: why``, ``degenerate: why``."""
    if kind == "not_run":
        return NOT_RUN + detail
    if kind == "degenerate":
        return f"degenerate: {detail}"
    name = "released weights" if kind == "released" else kind
    return f"{name} ({detail})" if detail else name


def reproduced(profile: str, run_hash: str) -> dict:
    """``Score`` fields of a score measured on a training run of ``profile``."""
    return {"kind": "reproduced", "detail": f"{profile}, run {run_hash}"}


def released(filename: str, sha256: str) -> dict:
    """``Score`` fields of a score of the authors' weights."""
    return {"kind": "released", "detail": f"{filename}, sha256 {sha256}"}


#: How every "did not run" status begins (training statuses, readers' text).
NOT_RUN = "not run: "


def not_run(reason: str) -> str:
    """A "did not run" status line (training and chapter statuses)."""
    return NOT_RUN + reason


def missing(reason: str) -> dict:
    """``Score`` fields of a cell that did not run; ``reason`` may carry the status prefix."""
    return {"kind": "not_run", "detail": reason.removeprefix(NOT_RUN)}


def save_scores(scores: list[Score], path: str | Path) -> Path:
    """Write score records as JSON (one file per notebook step, read back by the tables)."""
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


COLUMNS = [
    "table",
    "method",
    "method_id",
    "benchmark",
    "test_set",
    "n",
    "psnr",
    "ssim",
    "kind",
    "provenance",
    "paper_row",
    "paper_psnr",
    "paper_ssim",
    "paper_source",
    "diff_psnr",
    "diff_ssim",
    "note",
]


def _round(v: float | None, digits: int) -> float | None:
    return None if v is None else round(float(v), digits)


def _row(spec: TableSpec, m: Method, s: Score) -> dict:
    pv = paper_value(spec.number, m.paper_row, s.benchmark)
    paper = pv.value
    row = {
        "table": spec.number,
        "method": m.label,
        "method_id": str(m.id),
        "benchmark": benchmark_label(s.benchmark, s.stand_in),
        "test_set": s.test_set,
        "n": s.n if s.ran else None,
        "psnr": _round(s.psnr, 4) if s.ran else None,
        "ssim": _round(s.ssim, 4) if s.ran else None,
        "kind": s.kind,
        "provenance": s.provenance,
        "paper_row": m.paper_row,
        "paper_psnr": paper[0] if paper else None,
        "paper_ssim": paper[1] if paper else None,
        "paper_source": pv.quote if paper else f"{pv.quote}: printed as '-'",
        "diff_psnr": None,
        "diff_ssim": None,
        "note": "",
    }
    notes = [s.note] if s.note else []
    if s.kind == "degenerate":
        notes.append(f"degenerate run ({s.detail}): scored, not a result")
    if s.ran and paper is not None and s.stand_in:
        notes.append(
            f"measured on the embedded stand-in for {BENCHMARKS[s.benchmark]}: "
            "not comparable to the paper's number, no difference given"
        )
    elif s.ran and paper is not None:
        row["diff_psnr"] = round(float(s.psnr) - paper[0], 4)
        row["diff_ssim"] = round(float(s.ssim) - paper[1], 4)
        if s.partial:
            notes.append(
                f"partial set (n={s.n} of {FULL_TEST_SIZE[s.benchmark]}): "
                "the difference is indicative only"
            )
    row["note"] = "; ".join(notes)
    return row


def build_table(name: str | TableSpec, scores: list[Score]) -> list[dict]:
    """Rows of table ``name`` ("table2".."table5", or its spec) from the recorded scores.

    Every (method, benchmark) cell of the table gets our measured rows (one per test set), or a
    "not run" row; a cell with no record at all becomes ``not run: no result recorded``.
    """
    spec = name if isinstance(name, TableSpec) else TABLES[name]
    latest = {(s.method, s.benchmark, s.test_set): s for s in scores}  # a re-score replaces
    scores = list(latest.values())
    rows = []
    for m in spec.methods:
        for b in spec.benchmarks:
            mine = [s for s in scores if s.method == m.id and s.benchmark == b]
            measured = [s for s in mine if s.ran]
            if measured:
                rows += [_row(spec, m, s) for s in measured]
            else:
                why = mine[0].detail if mine else "no result recorded"
                rows.append(_row(spec, m, Score(method=m.id, benchmark=b, **missing(why))))
    if spec.paper_only_rows:
        ours = {m.paper_row for m in spec.methods}
        for paper_row in PAPER[spec.number]:
            if paper_row in ours:
                continue
            for b in spec.benchmarks:
                pv = paper_value(spec.number, paper_row, b)
                paper = pv.value
                rows.append(
                    {
                        **dict.fromkeys(COLUMNS),
                        "table": spec.number,
                        "method": paper_row,
                        "benchmark": BENCHMARKS[b],
                        "kind": "paper",
                        "provenance": f"paper ({pv.quote})"
                        if paper
                        else f"paper ({pv.quote}: '-')",
                        "paper_row": paper_row,
                        "paper_psnr": paper[0] if paper else None,
                        "paper_ssim": paper[1] if paper else None,
                        "paper_source": pv.quote,
                        "note": "reported in the paper; not run here" if paper else "",
                    }
                )
    return rows


def write_csv(rows: list[dict], path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if r.get(k) is None else r[k] for k in COLUMNS})
    return path


def read_csv(path: str | Path) -> list[dict]:
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def write_tables(results_dir: str | Path, scores: list[Score], names: list[str]) -> list[Path]:
    """Write ``<name>.csv`` for each table in ``names`` into ``results_dir``."""
    return [write_csv(build_table(n, scores), Path(results_dir) / f"{n}.csv") for n in names]


_SHA = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{52}\b")


def render_markdown(results_dir: str | Path, profile: str, header: str = "") -> str:
    """``tables.md``: every tableN.csv present in ``results_dir`` (PSNR rounded to 2
    decimals and SSIM to 3, as the paper prints them; a cell's note as a footnote) and the
    figure captions."""
    results_dir = Path(results_dir)
    lines = [f"# Tables II-V, profile `{profile}`", ""]
    if header:
        lines += [header, ""]
    lines += [
        "PSNR (dB) / SSIM on the luminance channel (MATLAB protocol); a model trained here is "
        "the mean over its training seeds (`seeds`). `paper` columns quote the paper; "
        "differences are given only where our test set is the benchmark itself. Full sha256s "
        "and per-cell notes are in the CSV files.",
        "",
    ]
    for name, spec in TABLES.items():
        path = results_dir / f"{name}.csv"
        lines += [f"## Table {spec.number}: {spec.title}", ""]
        if not path.exists():
            lines += [f"not run: `{path.name}` was not produced", ""]
            continue
        df = pd.read_csv(path, keep_default_na=False, na_values={c: [""] for c in NUMERIC})
        notes = list(dict.fromkeys(n for n in df.note if n))
        marks = [f" [{notes.index(n) + 1}]" if n else "" for n in df.note]
        shown = pd.DataFrame(
            {
                "method": df.method + marks,
                "benchmark": df.benchmark,
                "test set": df.test_set,
                "n": df.n.astype(str).str.removesuffix(".0"),
                "seeds": df.get("n_seeds", pd.Series("", index=df.index)).astype(str),
                "PSNR": df.psnr.map(_fmt("2f")),
                "SSIM": df.ssim.map(_fmt("3f")),
                "paper PSNR": df.paper_psnr.map(_fmt("2f")),
                "paper SSIM": df.paper_ssim.map(_fmt("3f")),
                "Δ PSNR": df.diff_psnr.map(_fmt("+.2f")),
                "provenance": df.provenance.str.replace(_SHA, r"\1…", regex=True),
            }
        )
        lines += [shown.to_markdown(index=False, disable_numparse=True), ""]
        lines += [f"[{i}] {n}" for i, n in enumerate(notes, 1)] + [""]
    captions = results_dir / "figures.json"
    if captions.exists():
        lines += ["## Figures", ""]
        for fig in json.loads(captions.read_text()):
            lines.append(f"- `{fig['path']}`: {fig['caption']}")
        lines.append("")
    return "\n".join(lines)


NUMERIC = ("n", "psnr", "ssim", "paper_psnr", "paper_ssim", "diff_psnr", "diff_ssim")


def _fmt(spec: str):
    """A formatter of one number for the markdown ("" for a missing one)."""
    spec = spec if spec.startswith("+") else f".{spec}"
    return lambda v: "" if pd.isna(v) else format(v, spec)


def write_markdown(results_dir: str | Path, profile: str, header: str = "") -> Path:
    return atomic_write_text(
        Path(results_dir) / "tables.md", render_markdown(results_dir, profile, header)
    )


def mean_by(rows: list[dict], keys: tuple[str, ...], values: tuple[str, ...]) -> list[dict]:
    """Rows grouped by ``keys`` (first-seen order), ``values`` averaged, ``n`` counted."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return [
        {**dict(zip(keys, k, strict=True)), "n": len(g)}
        | {v: float(np.mean([r[v] for r in g])) for v in values}
        for k, g in groups.items()
    ]
