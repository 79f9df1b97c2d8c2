"""The claims chapter (08): the paper's claims as data, and what this run's evidence says.

A :class:`Claim` is one comparison the paper makes: method ``better`` beats method ``worse``
on one benchmark, with the paper's two numbers (Table II: the negative-SSIM loss beats MAE
and MSE; Tables III/IV: SIAN beats PReNet; Table V: Baseline < Baseline+LSTM < full).

For each claim, test set and metric, :func:`judge` takes the per-image scores of the two
methods on the same images (one row per training seed) and gives the mean paired
difference with a 95 % interval: a paired bootstrap over images (``scipy.stats.bootstrap``,
seeded) of the per-image difference averaged over seeds and, with two or more seeds, a
Student-t interval over the per-seed mean differences; the wider of the two is the claim's
interval. The verdict is ``supported`` (interval entirely in the paper's direction),
``contradicted`` (entirely opposite) or ``inconclusive``; a claim on trained methods with a
single seed is ``refused`` (its spread over training runs is unknown). Where the test set
is the benchmark itself, our absolute numbers are also checked against the paper's (each
method's mean with its own interval); on stand-in data that comparison is ``not comparable``.

:func:`claim_rows` pairs the per-image scores the table steps recorded (``scores/<step>.json``)
with the other training seeds' (:func:`derain_lib.study.training.train_seeds`, ``seeds.json``)
and judges every claim; :func:`write_claims` writes ``results/<profile>/claims.csv`` and
``claims.md``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..config import profile_seeds
from ..fsutil import atomic_write_text
from ..runs import restored, results_root
from ..tables import (
    BENCHMARKS,
    FULL_TEST_SIZE,
    TABLE2,
    TABLE3,
    TABLE4,
    TABLE5,
    MethodId,
    Score,
    Step,
    TableSpec,
    load_scores,
    not_run,
    paper_value,
)
from .paths import results_dir

#: Confidence level of every interval.
LEVEL = 0.95
#: Bootstrap resamples (scipy's default) and the seed of the bootstrap's generator.
RESAMPLES = 9999
BOOTSTRAP_SEED = 0
#: Fewer training seeds than this and a claim on trained methods gets no verdict.
MIN_SEEDS = 2
METRICS = ("psnr", "ssim")


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
        i = METRICS.index(metric)
        a = paper_value(self.table, self.better_row, self.benchmark).value
        b = paper_value(self.table, self.worse_row, self.benchmark).value
        return None if a is None or b is None else (a[i], b[i])


def _claim(spec: TableSpec, b: str, better_row: str, worse_row: str) -> Claim:
    better, worse = spec.method(better_row), spec.method(worse_row)
    return Claim(spec.number, b, better.id, worse.id, better_row, worse_row, spec.step)


def _claims() -> tuple[Claim, ...]:
    out = []
    for b in TABLE2.benchmarks:
        out += [_claim(TABLE2, b, "Negative SSIM", worse) for worse in ("MAE", "MSE")]
    for spec in (TABLE3, TABLE4):
        out += [_claim(spec, b, "Ours", "PReNet [17] (CVPR'19)") for b in spec.benchmarks]
    for b in TABLE5.benchmarks:
        out.append(_claim(TABLE5, b, "Baseline+LSTM", "Baseline"))
        out.append(_claim(TABLE5, b, "Baseline+SIAN+LSTM", "Baseline+LSTM"))
    return tuple(out)


#: Every claim the study checks (Tables II, III, IV and V).
CLAIMS: tuple[Claim, ...] = _claims()


@dataclass(frozen=True)
class Interval:
    """A mean paired difference and its interval, with the parts it was chosen from."""

    mean: float
    lo: float
    hi: float
    image_ci: tuple[float, float]
    seed_ci: tuple[float, float] | None  # None with one seed
    seeds: int
    images: int

    @property
    def source(self) -> str:
        """Which interval is the claim's: the image bootstrap or the seed spread."""
        if self.seed_ci is None:
            return "images"
        return "seeds" if (self.lo, self.hi) == self.seed_ci else "images"


def paired_interval(a: np.ndarray, b: np.ndarray, seed: int = BOOTSTRAP_SEED) -> Interval:
    """Mean of ``a - b`` and its 95 % interval; ``a``, ``b``: (seeds, images), same images.

    Images: paired percentile bootstrap (``scipy.stats.bootstrap``, ``RESAMPLES`` resamples,
    generator seeded with ``seed``) of the per-image difference averaged over seeds. Seeds
    (two or more): Student-t interval of the per-seed mean differences. The wider is kept.
    """
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    if a.shape != b.shape or a.shape[1] < 1:
        raise ValueError(
            f"paired samples must have one shape with images, got {a.shape}, {b.shape}"
        )
    d = a - b
    per_image = d.mean(axis=0)
    mean = float(per_image.mean())
    if per_image.size < 2 or np.ptp(per_image) == 0:
        image_ci = (mean, mean) if per_image.size >= 2 else (-math.inf, math.inf)
    else:
        res = stats.bootstrap(
            (per_image,),
            np.mean,
            confidence_level=LEVEL,
            n_resamples=RESAMPLES,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
        image_ci = (float(res.confidence_interval.low), float(res.confidence_interval.high))
    seed_ci = None
    if d.shape[0] >= 2:
        per_seed = d.mean(axis=1)
        half = stats.t.ppf(0.5 + LEVEL / 2, d.shape[0] - 1) * per_seed.std(ddof=1)
        half /= math.sqrt(d.shape[0])
        seed_ci = (mean - half, mean + half)
    lo, hi = image_ci
    if seed_ci is not None and seed_ci[1] - seed_ci[0] > hi - lo:
        lo, hi = seed_ci
    return Interval(mean, lo, hi, image_ci, seed_ci, d.shape[0], d.shape[1])


def verdict(iv: Interval, paper_diff: float) -> str:
    """``supported`` / ``contradicted`` / ``inconclusive`` for the paper's direction."""
    if paper_diff == 0:
        return "no direction claimed (the paper prints equal values)"
    lo, hi = (iv.lo, iv.hi) if paper_diff > 0 else (-iv.hi, -iv.lo)
    if lo > 0:
        return "supported"
    if hi < 0:
        return "contradicted"
    return "inconclusive"


@dataclass
class Sample:
    """Per-image scores of one method on one test set: ``psnr``/``ssim`` (seeds, images)."""

    method: str
    test_set: str
    names: list[str]
    psnr: np.ndarray
    ssim: np.ndarray
    stand_in: bool
    benchmark: str
    seeds: list[int] = field(default_factory=lambda: [0])

    def aligned(self, names: list[str], metric: str) -> np.ndarray:
        idx = [self.names.index(n) for n in names]
        return getattr(self, metric)[:, idx]


COLUMNS = [
    "claim",
    "table",
    "benchmark",
    "test_set",
    "metric",
    "better",
    "worse",
    "n",
    "seeds",
    "diff",
    "ci_low",
    "ci_high",
    "interval_from",
    "image_ci",
    "seed_ci",
    "paper_diff",
    "verdict",
    "absolute",
]


def _fmt(v: float, metric: str) -> str:
    return f"{v:+.2f}" if metric == "psnr" else f"{v:+.4f}"


def _absolute(claim: Claim, metric: str, a: np.ndarray, b: np.ndarray, s: Sample, seed: int):
    """Our two means vs the paper's, each within its own interval (benchmark data only)."""
    if s.stand_in:
        return f"not comparable (stand-in for {BENCHMARKS[claim.benchmark]})"
    paper = claim.paper(metric)
    if paper is None:
        return "the paper prints '-'"
    parts = []
    for label, x, p in ((claim.better_row, a, paper[0]), (claim.worse_row, b, paper[1])):
        iv = paired_interval(x, np.zeros_like(x), seed)
        inside = iv.lo <= p <= iv.hi
        parts.append(
            f"{label} {iv.mean:.4g} [{iv.lo:.4g}, {iv.hi:.4g}] vs paper {p:g}: "
            + ("matches" if inside else "differs")
        )
    full = FULL_TEST_SIZE[claim.benchmark]
    if s.psnr.shape[1] < full:
        parts.append(f"partial set, n={s.psnr.shape[1]} of {full}")
    return "; ".join(parts)


def judge(claim: Claim, better: Sample, worse: Sample, seed: int = BOOTSTRAP_SEED) -> list[dict]:
    """One row per metric for ``claim`` on the test set the two samples share."""
    names = [n for n in better.names if n in worse.names]
    seeds = min(better.psnr.shape[0], worse.psnr.shape[0])
    rows = []
    for metric in METRICS:
        a = better.aligned(names, metric)
        b = worse.aligned(names, metric)
        if a.shape[0] != b.shape[0]:  # pair seeds by position, as many as both have
            a, b = a[:seeds], b[:seeds]
        iv = paired_interval(a, b, seed)
        paper = claim.paper(metric)
        paper_diff = None if paper is None else round(paper[0] - paper[1], 6)
        if paper_diff is None:
            v = "not in the paper ('-')"
        elif claim.trained and seeds < MIN_SEEDS:
            v = f"refused: {seeds} training seed (need {MIN_SEEDS}+ to know the seed spread)"
        else:
            v = verdict(iv, paper_diff)
        rows.append(
            {
                "claim": claim.text,
                "table": claim.table,
                "benchmark": BENCHMARKS[claim.benchmark],
                "test_set": better.test_set,
                "metric": metric.upper(),
                "better": claim.better,
                "worse": claim.worse,
                "n": len(names),
                "seeds": seeds if claim.trained else "released",
                "diff": iv.mean,
                "ci_low": iv.lo,
                "ci_high": iv.hi,
                "interval_from": iv.source,
                "image_ci": f"[{_fmt(iv.image_ci[0], metric)}, {_fmt(iv.image_ci[1], metric)}]",
                "seed_ci": ""
                if iv.seed_ci is None
                else f"[{_fmt(iv.seed_ci[0], metric)}, {_fmt(iv.seed_ci[1], metric)}]",
                "paper_diff": paper_diff,
                "verdict": v,
                "absolute": _absolute(claim, metric, a, b, better, seed),
            }
        )
    return rows


def not_run_rows(claim: Claim, reason: str) -> list[dict]:
    """The rows of a claim whose methods did not both run: the reason as the verdict."""
    reason = reason if reason.startswith("not run") else not_run(reason)
    return [
        {
            **dict.fromkeys(COLUMNS, ""),
            "claim": claim.text,
            "table": claim.table,
            "benchmark": BENCHMARKS[claim.benchmark],
            "metric": m.upper(),
            "better": claim.better,
            "worse": claim.worse,
            "paper_diff": None
            if claim.paper(m) is None
            else round(claim.paper(m)[0] - claim.paper(m)[1], 6),
            "verdict": reason,
        }
        for m in METRICS
    ]


def write_claims_csv(rows: list[dict], path: str | Path) -> Path:
    """``claims.csv``: one row per (claim, test set, metric)."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=COLUMNS)
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in COLUMNS})
    return atomic_write_text(path, out.getvalue())


def render_claims_markdown(rows: list[dict], profile: str, header: str = "") -> str:
    """``claims.md``: the verdict table (PSNR and SSIM per claim and test set)."""
    lines = [f"# The paper's claims, profile `{profile}`", ""]
    if header:
        lines += [header, ""]
    lines += [
        "Difference = better − worse, per image on the same images, averaged; 95 % interval: "
        "paired bootstrap over images, or the seed spread when wider (trained methods). "
        "Verdict: `supported` / `contradicted` when the interval lies entirely on one side of "
        "zero, else `inconclusive`.",
        "",
        "| Table | claim | test set | metric | n | seeds | ours: diff [95 % CI] | paper | "
        "verdict | vs the paper's numbers |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        metric = r["metric"].lower()
        if r["diff"] in ("", None):
            ours = ""
        else:
            ours = (
                f"{_fmt(float(r['diff']), metric)} [{_fmt(float(r['ci_low']), metric)}, "
                f"{_fmt(float(r['ci_high']), metric)}] ({r['interval_from']})"
            )
        paper = "" if r["paper_diff"] in ("", None) else _fmt(float(r["paper_diff"]), metric)
        lines.append(
            f"| {r['table']} | {r['claim']} | {r['test_set']} | {r['metric']} | {r['n']} | "
            f"{r['seeds']} | {ours} | {paper} | {r['verdict']} | {r['absolute']} |"
        )
    return "\n".join(lines) + "\n"


def _sample(score: Score, seed_rows: list[dict], results: Path) -> Sample:
    """The per-image scores behind ``score``: every seed's when it is a seeded training run."""
    first = (results / score.per_image_csv).resolve()
    mine = [
        r
        for r in seed_rows
        if r["method"] == score.method and r["status"] == "ok" and r.get("per_image_csv")
    ]
    csvs = [first]
    seeds = [0]
    hit = [r for r in mine if restored(r["per_image_csv"]).resolve() == first]
    if hit:
        bench = hit[0]["benchmark"]
        same = [r for r in mine if r["benchmark"] == bench]
        csvs = [restored(r["per_image_csv"]) for r in same]
        seeds = [r["seed"] for r in same]
    tables = [pd.read_csv(p).set_index("name") for p in csvs]
    names = sorted(set.intersection(*(set(t.index) for t in tables)))
    return Sample(
        score.method,
        score.test_set,
        names,
        np.array([t.loc[names, "psnr"].to_numpy(float) for t in tables]),
        np.array([t.loc[names, "ssim"].to_numpy(float) for t in tables]),
        score.stand_in,
        score.benchmark,
        seeds,
    )


def claim_rows(profile: str) -> list[dict]:
    """Judge every claim on every test set where both its methods were scored."""
    seeds_file = results_dir(profile) / "seeds.json"
    seed_rows = json.loads(seeds_file.read_text()) if seeds_file.is_file() else []
    rows = []
    for claim in CLAIMS:
        path = results_dir(profile) / "scores" / f"{claim.step}.json"
        if not path.is_file():
            rows += not_run_rows(claim, f"step {claim.step} has not run")
            continue
        mine = [s for s in load_scores([path]) if s.benchmark == claim.benchmark]
        ran = {
            m: {s.test_set: s for s in mine if s.method == m and s.ran}
            for m in (claim.better, claim.worse)
        }
        common = [t for t in ran[claim.better] if t in ran[claim.worse]]
        if not common:
            reasons = [s.detail for s in mine if not s.ran and s.method in ran]
            rows += not_run_rows(claim, reasons[0] if reasons else "no result recorded")
            continue
        for t in common:
            a = _sample(ran[claim.better][t], seed_rows, results_root())
            b = _sample(ran[claim.worse][t], seed_rows, results_root())
            rows += judge(claim, a, b)
    return rows


def write_claims(profile: str, rows: list[dict]) -> Path:
    """``claims.csv`` and ``claims.md`` under ``results/<profile>/``; returns the markdown."""
    write_claims_csv(rows, results_dir(profile) / "claims.csv")
    header = f"Training seeds of profile `{profile}`: {profile_seeds(profile)}."
    md = render_claims_markdown(rows, profile, header)
    return atomic_write_text(results_dir(profile) / "claims.md", md)
