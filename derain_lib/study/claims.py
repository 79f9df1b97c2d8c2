"""The claims chapter (08): the paper's claims as data, and the two verdicts the evidence
gives each.

A :class:`Claim` is one comparison the paper makes: method ``better`` beats method ``worse``
on one benchmark, with the paper's two numbers (Table II: the negative-SSIM loss beats MAE
and MSE; Tables III/IV: SIAN beats PReNet; Table V: Baseline < Baseline+LSTM < full); Fig. 6
("improved gradually stage by stage") is one trend claim per benchmark (:data:`TRENDS`).

The evidence is the study's one record, ``results/<profile>/scores.csv`` (:mod:`.record`), so
:func:`claim_rows` (and ``derain claims --profile P``) recomputes ``claims.csv`` from the
repository alone. Per claim and test set, one row:

- the paired per-image differences (better - worse, same images, seeds paired by position),
  their mean and 95 % interval (:func:`~.stats.hierarchical_interval`: training seeds, then
  scenes), the two-sided p-value of "no difference" from the same standard error and degrees
  of freedom, the MDE (80 % power) and the training budget as a fraction of the paper's;
- **direction** (on PSNR): in the family of rows that get a verdict (real test data of the
  benchmark, no degenerate model, at least :data:`MIN_SEEDS` seeds for trained models and at
  least :data:`MIN_BUDGET` of the paper's training), Holm's step-down correction over the
  family's p-values at 5 %: significant on the paper's side of zero -> ``supported``, on the
  other side -> ``contradicted``, else ``inconclusive``, labelled ``(underpowered: MDE x >
  claimed y)`` where the MDE exceeds the paper's difference. The MDE never overrides a
  significant result. A trend (Fig. 6) is an intersection-union test: its p-value is the
  largest of its steps' (every step must improve), its difference the weakest step's;
- **size**: the paper's difference inside the 95 % interval -> ``agrees``; else ``larger than
  the paper's`` or ``smaller than the paper's``; ``no paper difference`` for a trend;
- rows on stand-in data or at a budget below :data:`MIN_BUDGET` are ``pipeline check``:
  ``no verdict`` either way; a degenerate model (:data:`.record.DEGENERATE_GAIN_DB`) gives
  ``no verdict``; a method not scored gives ``not run``.

The inference-time knock-outs of the released SIAN's attention (:mod:`.probes`) are rows too
(:func:`knockout_rows`): the intact model minus the knocked-out one, with n, and no paper
difference and no verdict: they measure the released model's sensitivity, not Table V's
retrained ablation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..config import profile_seeds
from ..data.sources import open_data
from ..errors import DerainError
from ..fsutil import atomic_write_text
from ..tables import (
    BENCHMARKS,
    FULL_TEST_SIZE,
    TABLE2,
    TABLE3,
    TABLE4,
    TABLE5,
    MethodId,
    Step,
    TableSpec,
    paper_value,
)
from ..train import planned_steps, training_patches
from . import probes, record, stats
from .paths import results_dir
from .plan import Params, config_for, datasets

#: Fewer training seeds than this and a claim on trained methods gets no verdict.
MIN_SEEDS = 2
#: Models trained on less than this share of the paper's training are a pipeline check.
MIN_BUDGET = 0.1
#: The family-wise error rate Holm's correction keeps.
ALPHA = 0.05
METRICS = ("psnr", "ssim")
#: The paper's training, in patches seen (MODEL_SPEC 5, docs/data.md: 120x120 patches of
#: 481x321 images): RainTrainL 200 x 60 x 2 (flips) x 100 epochs, RainTrainH 1,800 x 15 x
#: 100 epochs. Rain1400's images vary in size: no figure (no trained claim uses it).
PAPER_PATCHES: dict[str, int] = {"rain100l": 200 * 60 * 2 * 100, "rain100h": 1800 * 15 * 100}
NO_VERDICT = "no verdict"
SENSITIVITY = "inference-time sensitivity of the released model, not Table V's retrained ablation"


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


#: Every claim of Tables II-V the study checks.
CLAIMS: tuple[Claim, ...] = _claims()
#: Fig. 6's trend claim, one per benchmark the stages are probed on.
TRENDS: tuple[str, ...] = probes.BENCHMARKS
TREND_TEXT = "each stage improves on the one before (Fig. 6, released SIAN, stages 2-6)"

COLUMNS = [
    *("claim", "table", "benchmark", "test_set", "evidence", "better", "worse"),
    *("n_images", "n_scenes", "n_seeds"),
    *("diff_psnr", "lo_psnr", "hi_psnr", "diff_ssim", "lo_ssim", "hi_ssim"),
    *("paper_diff_psnr", "paper_diff_ssim", "mde_psnr", "p_psnr", "p_holm"),
    *("budget_fraction", "direction", "size", "reason"),
]


# ---- budget ------------------------------------------------------------------------------


def patches_seen(profile: str, benchmark: str) -> int | None:
    """Training patches one model of ``profile`` sees on ``benchmark`` (steps x batch)."""
    d = datasets(Params(profile)).get(benchmark)
    if d is None:
        return None
    cfg = config_for(Params(profile), d)
    try:
        n = len(training_patches(cfg, open_data(cfg.data.train, cfg.data.root)))
        steps = planned_steps(cfg, n)
    except DerainError:
        steps = cfg.train.max_steps
    return None if steps is None else steps * cfg.train.batch_size


def budget_fraction(profile: str, claim: Claim) -> float | None:
    """The claim's training budget as a fraction of the paper's: 1 for released weights."""
    if not claim.trained:
        return 1.0
    seen, paper = patches_seen(profile, claim.benchmark), PAPER_PATCHES.get(claim.benchmark)
    return None if seen is None or paper is None else seen / paper


def _percent(f: float | None) -> str:
    if f is None:
        return "unknown share"
    return (
        f"{100 * f:.2g} %" if f < 0.01 else f"{100 * f:.0f} %" if f >= 0.995 else f"{100 * f:.2f} %"
    )


# ---- the evidence of one comparison ------------------------------------------------------


@dataclass
class Evidence:
    """Both sides' per-image scores on one test set, (seeds, images) per metric, aligned on
    the same images (seeds paired by position), the scenes, and why a side is degenerate."""

    test_set: str
    images: list[str]
    scenes: list[str]
    better: dict[str, np.ndarray]
    worse: dict[str, np.ndarray]
    degenerate: list[str]
    pipeline_check: bool

    @property
    def n_seeds(self) -> int:
        return self.better["psnr"].shape[0]

    def diffs(self, metric: str) -> np.ndarray:
        return self.better[metric] - self.worse[metric]


def _side(df: pd.DataFrame, method: str, variant: str = "") -> pd.DataFrame:
    return df[(df.method == str(method)) & (df.variant == variant)]


def _matrix(part: pd.DataFrame, images: list[str], metric: str) -> np.ndarray:
    wide = part.pivot_table(index="seed", columns="image", values=metric, aggfunc="first")
    order = sorted(wide.index, key=lambda s: (s == "", int(s) if s.isdigit() else 0))
    return wide.loc[order, images].to_numpy(float)


def evidence(
    df: pd.DataFrame, test_set: str, better: tuple[str, str], worse: tuple[str, str]
) -> Evidence:
    """The :class:`Evidence` of ``better`` vs ``worse`` ((method, variant) each) on
    ``test_set``, from the record."""
    sub = df[df.test_set == test_set]
    a, b = _side(sub, *better), _side(sub, *worse)
    images = sorted(set(a.image) & set(b.image))
    bad = []
    for (m, _), part in ((better, a), (worse, b)):
        seeds = sorted(set(part[part.degenerate].seed))
        if seeds:
            bad.append(f"{m} seed{'s' * (len(seeds) > 1)} {', '.join(seeds)}")
    mats = {k: {m: _matrix(p, images, m) for m in METRICS} for k, p in (("a", a), ("b", b))}
    seeds = min(mats["a"]["psnr"].shape[0], mats["b"]["psnr"].shape[0])
    scene = sub.drop_duplicates("image").set_index("image").scene
    return Evidence(
        test_set,
        images,
        [str(scene[i]) for i in images],
        {m: v[:seeds] for m, v in mats["a"].items()},
        {m: v[:seeds] for m, v in mats["b"].items()},
        bad,
        bool((pd.concat([a.evidence, b.evidence]) == "pipeline check").any()),
    )


def p_value(iv: stats.Interval) -> float:
    """Two-sided p-value of "no difference" for the estimate ``iv`` (t with its df)."""
    if not math.isfinite(iv.se):
        return math.nan
    if iv.se == 0:
        return 0.0 if iv.mean != 0 else 1.0
    dist = sps.norm if math.isinf(iv.df) else sps.t(iv.df)
    return float(2 * dist.sf(abs(iv.mean) / iv.se))


def holm(p: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN)."""
    idx = [i for i, v in enumerate(p) if not math.isnan(v)]
    order = sorted(idx, key=lambda i: p[i])
    out, running = [math.nan] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        out[i] = running
    return out


def _measure(row: dict, ev: Evidence) -> dict[str, stats.Interval]:
    ivs = {}
    for m in METRICS:
        iv = stats.hierarchical_interval(ev.diffs(m), ev.scenes)
        ivs[m] = iv
        row |= {f"diff_{m}": iv.mean, f"lo_{m}": iv.lo, f"hi_{m}": iv.hi}
    row |= {"mde_psnr": ivs["psnr"].mde, "p_psnr": p_value(ivs["psnr"])}
    row |= {"n_images": len(ev.images), "n_scenes": len(set(ev.scenes))}
    return ivs


def size_verdict(lo: float, hi: float, claimed: float | None) -> str:
    """The paper's difference against the 95 % interval."""
    if claimed is None:
        return "no paper difference"
    if lo <= claimed <= hi:
        return "agrees"
    return "larger than the paper's" if lo > claimed else "smaller than the paper's"


def _paper_diff(claim: Claim, metric: str) -> float | None:
    p = claim.paper(metric)
    return None if p is None else round(p[0] - p[1], 6)


def _base_row(claim: Claim) -> dict:
    return {
        **dict.fromkeys(COLUMNS),
        "claim": claim.text,
        "table": claim.table,
        "benchmark": BENCHMARKS[claim.benchmark],
        "better": str(claim.better),
        "worse": str(claim.worse),
        "paper_diff_psnr": _paper_diff(claim, "psnr"),
        "paper_diff_ssim": _paper_diff(claim, "ssim"),
    }


def judge(claim: Claim, ev: Evidence, budget: float | None) -> dict:
    """One row of ``claim`` on ``ev`` with its measures; ``direction`` is ``pending`` for a
    row of the family (decided by :func:`decide` over all of them), else ``no verdict``."""
    row = _base_row(claim) | {"test_set": ev.test_set, "budget_fraction": budget}
    row["n_seeds"] = ev.n_seeds if claim.trained else ""
    _measure(row, ev)
    low_budget = budget is not None and budget < MIN_BUDGET
    if ev.pipeline_check or low_budget:
        row["evidence"] = "pipeline check"
    elif claim.trained:
        row["evidence"] = "trained here"
    else:
        full = len(ev.images) >= FULL_TEST_SIZE[claim.benchmark]
        row["evidence"] = "released, full set" if full else "released, partial set"
    why = []
    if ev.degenerate:
        why.append(f"degenerate ({record.DEGENERATE_RULE}): {'; '.join(ev.degenerate)}")
    if row["evidence"] == "pipeline check":
        data = "stand-in data" if ev.pipeline_check else "real data"
        why.append(f"pipeline check: {data}, {_percent(budget)} of the paper's training")
    if claim.trained and ev.n_seeds < MIN_SEEDS:
        why.append(f"{ev.n_seeds} training seed: the seed spread is unknown")
    if why:
        return row | {"direction": NO_VERDICT, "size": NO_VERDICT, "reason": "; ".join(why)}
    return row | {"direction": "pending", "size": "pending", "reason": ""}


def not_run_row(claim: Claim, reason: str) -> dict:
    """The row of a claim whose methods were not both scored."""
    why = reason.removeprefix("not run: ")
    return _base_row(claim) | {"direction": "not run", "size": "not run", "reason": why}


def _fmt(v: float, digits: int = 2) -> str:
    return f"{v:+.{digits}f}"


def decide(rows: list[dict]) -> list[dict]:
    """Holm over the ``pending`` rows (the family of directional claims), then each row's
    direction and size."""
    family = [i for i, r in enumerate(rows) if r["direction"] == "pending"]
    adjusted = holm([rows[i]["p_psnr"] for i in family])
    for i, p_adj in zip(family, adjusted, strict=True):
        r = rows[i]
        r["p_holm"] = p_adj
        claimed = r["paper_diff_psnr"]
        sign = 1.0 if claimed is None else math.copysign(1.0, claimed)
        if p_adj < ALPHA:
            r["direction"] = "supported" if r["diff_psnr"] * sign > 0 else "contradicted"
        else:
            r["direction"] = "inconclusive"
            if claimed is not None and r["mde_psnr"] > abs(claimed):
                r["direction"] += (
                    f" (underpowered: MDE {r['mde_psnr']:.2f} > claimed {abs(claimed):.2f})"
                )
        r["size"] = size_verdict(r["lo_psnr"], r["hi_psnr"], claimed)
        interval = f"{_fmt(r['diff_psnr'])} [{_fmt(r['lo_psnr'])}, {_fmt(r['hi_psnr'])}] dB"
        paper = "a direction" if claimed is None else f"{_fmt(claimed)} dB"
        r["reason"] = "; ".join(
            x
            for x in (
                r["reason"],
                f"{interval} vs paper {paper}; p {r['p_psnr']:.2g}, Holm-adjusted "
                f"{p_adj:.2g} over {len(family)} rows",
            )
            if x
        )
    return rows


# ---- every claim -------------------------------------------------------------------------


def _sets(df: pd.DataFrame, benchmark: str, pairs: list[tuple[str, str]]) -> list[str]:
    """Test sets of ``benchmark`` where every (method, variant) of ``pairs`` was scored."""
    mine = df[df.benchmark == benchmark]
    have: dict[str, set] = {}
    for t, m, v in zip(mine.test_set, mine.method, mine.variant, strict=True):
        have.setdefault(t, set()).add((m, v))
    return [t for t, got in have.items() if set(pairs) <= got]


def table_rows(profile: str, df: pd.DataFrame) -> list[dict]:
    """The rows of :data:`CLAIMS` (undecided: see :func:`decide`)."""
    rows, budgets = [], {}
    for claim in CLAIMS:
        pair = [(str(claim.better), ""), (str(claim.worse), "")]
        sets = _sets(df, claim.benchmark, pair)
        if not sets:
            missing = [m for m, _ in pair if not (_side(df, m).benchmark == claim.benchmark).any()]
            why = f"no {BENCHMARKS[claim.benchmark]} scores of {', '.join(missing)} here"
            rows.append(not_run_row(claim, f"{why} (its test data or weights are absent)"))
            continue
        key = (claim.benchmark, claim.trained)
        if key not in budgets:
            budgets[key] = budget_fraction(profile, claim)
        for t in sets:
            rows.append(judge(claim, evidence(df, t, *pair), budgets[key]))
    return rows


def trend_rows(df: pd.DataFrame) -> list[dict]:
    """Fig. 6, one row per benchmark and test set: stage k beats stage k-1 for k = 2..6;
    p-value the largest step's, difference and interval the weakest step's."""
    rows = []
    sian = str(MethodId.SIAN_RELEASED)
    for b in TRENDS:
        base = {
            **dict.fromkeys(COLUMNS),
            "claim": f"{TREND_TEXT} on {BENCHMARKS[b]}",
            "table": "Fig. 6",
            "benchmark": BENCHMARKS[b],
            "better": f"{sian} stage k",
            "worse": f"{sian} stage k-1",
        }
        stages = [(sian, probes.stage_variant(k)) for k in range(1, 7)]
        sets = _sets(df, b, stages)
        if not sets:
            why = "no stage scores of the released SIAN (its weights and a real test set)"
            rows.append(base | {"direction": "not run", "size": "not run", "reason": why})
        for t in sets:
            steps = []
            for k in range(2, 7):
                ev = evidence(df, t, stages[k - 1], stages[k - 2])
                step = {}
                _measure(step, ev)
                steps.append((k, step, ev))
            k, weakest, ev = max(steps, key=lambda s: (s[1]["p_psnr"], -s[1]["diff_psnr"]))
            listed = "; ".join(
                f"{k}>{k - 1} {_fmt(s['diff_psnr'])} [{_fmt(s['lo_psnr'])}, {_fmt(s['hi_psnr'])}]"
                for k, s, _ in steps
            )
            row = base | weakest | {"test_set": t, "budget_fraction": 1.0, "n_seeds": ""}
            full = len(ev.images) >= FULL_TEST_SIZE[b]
            row["evidence"] = "released, full set" if full else "released, partial set"
            row |= {"direction": "pending", "size": "pending"}
            row["reason"] = f"steps: {listed}; weakest: stage {k}"
            rows.append(row)
    return rows


def knockout_rows(df: pd.DataFrame) -> list[dict]:
    """Every inference-time knock-out of the released SIAN's attention in the record: the
    intact model minus the knocked-out one per image (positive: the knock-out costs PSNR)."""
    sian = str(MethodId.SIAN_RELEASED)
    rows = []
    kos = df[(df.method == sian) & df.variant.str.startswith("ko-")]
    for (b, t, v), _ in kos.groupby(["benchmark", "test_set", "variant"], sort=False):
        ev = evidence(df, t, (sian, ""), (sian, v))
        row = {
            **dict.fromkeys(COLUMNS),
            "claim": f"the released SIAN loses PSNR when {probes.describe(v)}",
            "table": "attention (inference-time)",
            "benchmark": BENCHMARKS[b],
            "test_set": t,
            "evidence": SENSITIVITY,
            "better": sian,
            "worse": f"{sian} {v}",
            "n_seeds": "",
            "budget_fraction": 1.0,
            "direction": NO_VERDICT,
            "size": NO_VERDICT,
        }
        _measure(row, ev)
        row["reason"] = (
            f"not a paper claim: n = {row['n_images']} images ({row['n_scenes']} scenes); "
            "no paper difference"
        )
        rows.append(row)
    return rows


def claim_rows(profile: str) -> list[dict]:
    """Every claim, trend and knock-out row of ``profile``, decided, from ``scores.csv``."""
    df = record.read(profile)
    return decide(table_rows(profile, df) + trend_rows(df)) + knockout_rows(df)


def stage_table(profile: str) -> pd.DataFrame:
    """PSNR/SSIM of the released SIAN's stages 1-6 per test set, each mean with its 95 %
    interval over scenes (Fig. 6 on the full sets)."""
    df = record.read(profile)
    df = df[(df.method == str(MethodId.SIAN_RELEASED)) & df.variant.str.startswith("stage-")]
    out = []
    for (b, t, v), s in df.groupby(["benchmark", "test_set", "variant"], sort=False):
        s = s.sort_values("image")
        row = {"benchmark": BENCHMARKS[b], "test_set": t, "stage": int(v.split("-")[1])}
        row["n"] = len(s)
        for m in METRICS:
            iv = stats.hierarchical_interval(s[m].to_numpy(float)[None, :], list(s.scene))
            row |= {m: iv.mean, f"lo_{m}": iv.lo, f"hi_{m}": iv.hi}
        out.append(row)
    return pd.DataFrame(out)


# ---- files -------------------------------------------------------------------------------


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def write_claims(profile: str, rows: list[dict]) -> Path:
    """``claims.csv`` and ``claims.md`` under ``results/<profile>/``; returns the markdown."""
    df = frame(rows)
    res = results_dir(profile)
    atomic_write_text(res / "claims.csv", df.to_csv(index=False, float_format="%.6g"))
    return atomic_write_text(res / "claims.md", claims_markdown(df, profile))


POLICY = (
    "Difference = better − worse per image on the same images (PSNR, dB), 95 % interval "
    "over training seeds and test scenes (hierarchical bootstrap, Student-t). Direction: "
    "Holm's correction over the family of rows with a verdict (real test data of the "
    "benchmark, no degenerate model, ≥ {seeds} training seeds and ≥ {budget:.0%} of the "
    "paper's training for trained models), family-wise 5 %; a trend (Fig. 6) needs every "
    "step (intersection-union). Size: the paper's difference inside the interval → agrees. "
    "The MDE (80 % power) only labels a non-significant direction as underpowered. "
    "Stand-in data and short budgets are pipeline checks: no verdict. Knock-outs are the "
    "released model's inference-time sensitivity, not Table V's retrained ablation: no "
    "verdict, no paper difference (docs/evidence.md)."
)


def claims_markdown(df: pd.DataFrame, profile: str) -> str:
    """``claims.md``: the verdict table, numbers rounded as the paper rounds (2 decimals)."""
    show = pd.DataFrame(
        {
            "table": df.table,
            "claim": df.claim,
            "test set": df.test_set.fillna(""),
            "evidence": df.evidence.fillna(""),
            "n (scenes)": [
                "" if pd.isna(n) else f"{int(n)} ({int(s)})"
                for n, s in zip(df.n_images, df.n_scenes, strict=True)
            ],
            "seeds": df.n_seeds.fillna(""),
            "Δ PSNR [95 %]": [
                "" if pd.isna(d) else f"{_fmt(d)} [{_fmt(lo)}, {_fmt(hi)}]"
                for d, lo, hi in zip(df.diff_psnr, df.lo_psnr, df.hi_psnr, strict=True)
            ],
            "paper Δ": ["" if pd.isna(v) else _fmt(v) for v in df.paper_diff_psnr],
            "direction": df.direction,
            "size": df["size"],
            "reason": df.reason.fillna(""),
        }
    )
    seeds = profile_seeds(profile)
    head = [f"# The paper's claims, profile `{profile}`", "", f"Training seeds: {seeds}.", ""]
    policy = POLICY.format(seeds=MIN_SEEDS, budget=MIN_BUDGET)
    return "\n".join([*head, policy, "", show.to_markdown(index=False), ""])


def recompute(profile: str) -> Path:
    """``derain claims --profile P``: ``claims.csv``/``claims.md`` from ``scores.csv``."""
    return write_claims(profile, claim_rows(profile))


def seed_means(profile: str, spec: TableSpec) -> pd.DataFrame:
    """Per method and test set of ``spec``: each seed's mean PSNR/SSIM over the images
    (``seed`` column; ``"mean"`` for the mean over seeds), from the record."""
    df = record.read(profile)
    ids = [str(m.id) for m in spec.methods]
    df = df[df.method.isin(ids) & df.benchmark.isin(spec.benchmarks) & (df.variant == "")]
    if df.empty:
        return pd.DataFrame(columns=["method", "test_set", "seed", "psnr", "ssim", "label"])
    per_seed = df.groupby(["method", "test_set", "seed"], as_index=False)[["psnr", "ssim"]].mean()
    mean = per_seed.groupby(["method", "test_set"], as_index=False)[["psnr", "ssim"]].mean()
    mean["seed"] = "mean"
    out = pd.concat([per_seed, mean], ignore_index=True)
    labels = {str(m.id): m.paper_row for m in spec.methods}
    out["label"] = out.method.map(labels)
    out["order"] = out.method.map({m: i for i, m in enumerate(ids)})
    return out.sort_values(["test_set", "order", "seed"]).drop(columns="order")
