"""The claims chapter (08), ``derain claims --profile P``: from the one record ``scores.csv``
alone, per claim of the paper (:data:`.paper.CLAIMS`, Fig. 6's trend) and test set, the
paired per-image differences with their interval, p-value, MDE and training budget, and two
verdicts: **direction** (Holm over the rows that can carry one) and **size** (the paper's
difference against the interval), by ``paper.yaml``'s ``policy`` (docs/evidence.md)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..config import profile_seeds
from ..fsutil import atomic_write_text
from ..tables import BENCHMARKS, FULL_TEST_SIZE, MethodId
from . import probes, record, stats
from .paper import CLAIMS, DATA, PAPER_PATCHES, TREND_TEXT, Claim
from .plan import Params, config_for, datasets, results_dir
from .training import run_cost

#: Fewer training seeds than this and a claim on trained methods gets no verdict.
MIN_SEEDS = 2
#: Models trained on less than this share of the paper's training are a pipeline check.
MIN_BUDGET = 0.1
#: The family-wise error rate Holm's correction keeps.
ALPHA = 0.05
METRICS = ("psnr", "ssim")
NO_VERDICT = "no verdict"
NOT_RUN = {"direction": "not run", "size": "not run"}
SENSITIVITY = "inference-time sensitivity of the released model, not Table V's retrained ablation"
SIAN = str(MethodId.SIAN_RELEASED)

COLUMNS: list[str] = DATA["columns"]["claims"]


def budget_fraction(profile: str, claim: Claim) -> float | None:
    """Training patches one model of ``profile`` sees (:func:`.training.run_cost`; without its
    data, ``max_steps`` batches) as a fraction of the paper's: 1 for released weights, None
    where either is unknown."""
    if not claim.trained:
        return 1.0
    d = datasets(Params(profile)).get(claim.benchmark)
    if d is None or claim.benchmark not in PAPER_PATCHES:
        return None
    cfg = config_for(Params(profile), d)
    seen = run_cost(cfg) or (cfg.train.max_steps or 0) * cfg.train.batch_size
    return seen / PAPER_PATCHES[claim.benchmark] if seen else None


def _percent(f: float | None) -> str:
    if f is None:
        return "unknown share"
    return (
        f"{100 * f:.2g} %" if f < 0.01 else f"{100 * f:.0f} %" if f >= 0.995 else f"{100 * f:.2f} %"
    )


class Paired(NamedTuple):
    """``row``: the measured columns of one comparison on one test set; ``degenerate``:
    ``<method> seed(s) ...`` of each side with a degenerate seed; ``stand_in``: either side
    scored on stand-in data."""

    row: dict
    degenerate: list[str]
    stand_in: bool


def paired(
    df: pd.DataFrame, test_set: str, better: tuple[str, str], worse: tuple[str, str]
) -> Paired:
    """``better`` vs ``worse`` ((method, variant) each) on ``test_set``, from the record: the
    per-image differences better - worse on the images both sides scored (seeds paired in
    seed order), their mean, 95 % interval, MDE and p-value, with n."""
    sub = df[df.test_set == test_set]
    sides = [sub[(sub.method == str(m)) & (sub.variant == v)] for m, v in (better, worse)]
    images = sorted(set(sides[0].image) & set(sides[1].image))
    wide = []
    for s in sides:
        w = s.pivot_table(index="seed", columns="image", values=list(METRICS), aggfunc="first")
        wide.append(w.loc[sorted(w.index, key=lambda x: (x == "", int(x) if x.isdigit() else 0))])
    n = min(len(w) for w in wide)
    scene = sub.drop_duplicates("image").set_index("image").scene
    scenes = [str(scene[i]) for i in images]
    row = dict(test_set=test_set, n_images=len(images), n_scenes=len(set(scenes)), n_seeds=n)
    for m in METRICS:
        d = np.subtract(*(w[m][images].to_numpy(float)[:n] for w in wide))
        iv = stats.hierarchical_interval(d, scenes)
        row |= {f"diff_{m}": iv.mean, f"lo_{m}": iv.lo, f"hi_{m}": iv.hi}
        if m == "psnr":
            row |= {"mde_psnr": iv.mde, "p_psnr": p_value(iv)}
    bad = [
        f"{m} seed{'s' * (len(seeds) > 1)} {', '.join(seeds)}"
        for (m, _), s in zip((better, worse), sides, strict=True)
        if (seeds := sorted(set(s[s.degenerate].seed)))
    ]
    return Paired(row, bad, bool((pd.concat(sides).evidence == record.PIPELINE_CHECK).any()))


def p_value(iv: stats.Interval) -> float:
    """Two-sided p-value of "no difference" for the estimate ``iv`` (t with its df)."""
    if not math.isfinite(iv.se):
        return math.nan
    if iv.se == 0:
        return 0.0 if iv.mean != 0 else 1.0
    return float(2 * (sps.norm if math.isinf(iv.df) else sps.t(iv.df)).sf(abs(iv.mean) / iv.se))


def holm(p: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN)."""
    p = np.asarray(p, float)
    out, idx = np.full(p.shape, math.nan), np.flatnonzero(~np.isnan(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    out[order] = np.maximum.accumulate(
        np.minimum(1.0, (len(order) - np.arange(len(order))) * p[order])
    )
    return out.tolist()


def _fmt(v: float | None) -> str:
    return "" if pd.isna(v) else f"{v:+.2f}"


def _interval(r: dict) -> str:
    return f"{_fmt(r['diff_psnr'])} [{_fmt(r['lo_psnr'])}, {_fmt(r['hi_psnr'])}]"


def size_verdict(lo: float, hi: float, claimed: float | None) -> str:
    """The paper's difference against the 95 % interval."""
    if claimed is None:
        return "no paper difference"
    if lo <= claimed <= hi:
        return "agrees"
    return "larger than the paper's" if lo > claimed else "smaller than the paper's"


def _head(claim: str, table: str, benchmark: str, better: str, worse: str) -> dict:
    """A row of :data:`COLUMNS` that says what it compares."""
    said = dict(claim=claim, table=table, benchmark=BENCHMARKS[benchmark], better=better)
    return dict.fromkeys(COLUMNS) | said | {"worse": worse}


def _base_row(claim: Claim) -> dict:
    row = _head(claim.text, claim.table, claim.benchmark, str(claim.better), str(claim.worse))
    for m in METRICS:
        p = claim.paper(m)
        row[f"paper_diff_{m}"] = None if p is None else round(p[0] - p[1], 6)
    return row


def _released(row: dict, benchmark: str) -> str:
    return f"released, {'full' if row['n_images'] >= FULL_TEST_SIZE[benchmark] else 'partial'} set"


def judge(claim: Claim, pair: Paired, budget: float | None) -> dict:
    """One row of ``claim`` on ``pair``; ``direction`` is ``pending`` for a row of the family
    (decided by :func:`decide` over all of them), else ``no verdict``."""
    row = _base_row(claim) | pair.row | {"budget_fraction": budget}
    seeds, row["n_seeds"] = row["n_seeds"], row["n_seeds"] if claim.trained else ""
    check = pair.stand_in or (budget is not None and budget < MIN_BUDGET)
    trained = record.TRAINED if claim.trained else _released(row, claim.benchmark)
    row["evidence"] = record.PIPELINE_CHECK if check else trained
    why = []
    if pair.degenerate:
        why.append(f"degenerate ({record.DEGENERATE_RULE}): {'; '.join(pair.degenerate)}")
    if check:
        data = "stand-in data" if pair.stand_in else "real data"
        why.append(f"pipeline check: {data}, {_percent(budget)} of the paper's training")
    if claim.trained and seeds < MIN_SEEDS:
        why.append(f"{seeds} training seed: the seed spread is unknown")
    verdict = NO_VERDICT if why else "pending"
    return row | {"direction": verdict, "size": verdict, "reason": "; ".join(why)}


def decide(rows: list[dict]) -> list[dict]:
    """Holm over the ``pending`` rows (the family of directional claims), then each row's
    direction and size."""
    family = [r for r in rows if r["direction"] == "pending"]
    for r, p_adj in zip(family, holm([r["p_psnr"] for r in family]), strict=True):
        claimed = r["paper_diff_psnr"]
        sign = 1.0 if claimed is None else math.copysign(1.0, claimed)
        if p_adj < ALPHA:
            direction = "supported" if r["diff_psnr"] * sign > 0 else "contradicted"
        elif claimed is not None and r["mde_psnr"] > abs(claimed):
            direction = (
                f"inconclusive (underpowered: MDE {r['mde_psnr']:.2f} > claimed {abs(claimed):.2f})"
            )
        else:
            direction = "inconclusive"
        paper = "a direction" if claimed is None else f"{_fmt(claimed)} dB"
        tested = (
            f"{_interval(r)} dB vs paper {paper}; p {r['p_psnr']:.2g}, Holm-adjusted "
            f"{p_adj:.2g} over {len(family)} rows"
        )
        r |= {"p_holm": p_adj, "direction": direction}
        r["size"] = size_verdict(r["lo_psnr"], r["hi_psnr"], claimed)
        r["reason"] = "; ".join(x for x in (r["reason"], tested) if x)
    return rows


def _sets(df: pd.DataFrame, benchmark: str, sides: list[tuple[str, str]]) -> list[str]:
    """Test sets of ``benchmark`` (first-seen order) where every (method, variant) of
    ``sides`` was scored."""
    mine = df[df.benchmark == benchmark]
    hit = mine[pd.MultiIndex.from_frame(mine[["method", "variant"]]).isin(sides)]
    found = hit.drop_duplicates(["test_set", "method", "variant"]).test_set.value_counts()
    return [t for t in mine.test_set.unique() if found.get(t, 0) == len(set(sides))]


def table_rows(profile: str, df: pd.DataFrame) -> list[dict]:
    """The rows of :data:`CLAIMS` (undecided: see :func:`decide`)."""
    rows, budgets = [], {}
    for claim in CLAIMS:
        sides = [(str(claim.better), ""), (str(claim.worse), "")]
        sets = _sets(df, claim.benchmark, sides)
        if not sets:
            here = df[(df.benchmark == claim.benchmark) & (df.variant == "")]
            absent = ", ".join(m for m, _ in sides if m not in set(here.method))
            why = f"no {BENCHMARKS[claim.benchmark]} scores of {absent} here"
            why += " (its test data or weights are absent)"
            rows.append(_base_row(claim) | NOT_RUN | {"reason": why})
            continue
        key = (claim.benchmark, claim.trained)
        if key not in budgets:
            budgets[key] = budget_fraction(profile, claim)
        rows += [judge(claim, paired(df, t, *sides), budgets[key]) for t in sets]
    return rows


def trend_rows(df: pd.DataFrame) -> list[dict]:
    """Fig. 6, one row per benchmark and test set: stage k beats stage k-1 for k = 2..6;
    p-value the largest step's, difference and interval the weakest step's."""
    rows = []
    stages = [(SIAN, f"stage-{k}") for k in range(1, 7)]
    for b in probes.BENCHMARKS:
        text = f"{TREND_TEXT} on {BENCHMARKS[b]}"
        base = _head(text, "Fig. 6", b, f"{SIAN} stage k", f"{SIAN} stage k-1")
        sets = _sets(df, b, stages)
        if not sets:
            why = "no stage scores of the released SIAN (its weights and a real test set)"
            rows.append(base | NOT_RUN | {"reason": why})
        for t in sets:
            steps = {k: paired(df, t, stages[k - 1], stages[k - 2]).row for k in range(2, 7)}
            k = max(steps, key=lambda k: (steps[k]["p_psnr"], -steps[k]["diff_psnr"]))
            listed = "; ".join(f"{j}>{j - 1} {_interval(s)}" for j, s in steps.items())
            rows.append(
                base
                | steps[k]
                | {"test_set": t, "budget_fraction": 1.0, "n_seeds": ""}
                | {"evidence": _released(steps[k], b), "direction": "pending", "size": "pending"}
                | {"reason": f"steps: {listed}; weakest: stage {k}"}
            )
    return rows


def knockout_rows(df: pd.DataFrame) -> list[dict]:
    """Every inference-time knock-out of the released SIAN's attention in the record: the
    intact model minus the knocked-out one per image (positive: the knock-out costs PSNR)."""
    rows = []
    kos = df[(df.method == SIAN) & df.variant.str.startswith("ko-")]
    for b, t, v in kos[["benchmark", "test_set", "variant"]].drop_duplicates().to_numpy():
        text = f"the released SIAN loses PSNR when {probes.describe(v)}"
        row = _head(text, "attention (inference-time)", b, SIAN, f"{SIAN} {v}")
        row |= paired(df, t, (SIAN, ""), (SIAN, v)).row
        n = f"n = {row['n_images']} images ({row['n_scenes']} scenes)"
        rows.append(
            row
            | {"evidence": SENSITIVITY, "n_seeds": "", "budget_fraction": 1.0}
            | {"direction": NO_VERDICT, "size": NO_VERDICT}
            | {"reason": f"not a paper claim: {n}; no paper difference"}
        )
    return rows


def claim_rows(profile: str) -> list[dict]:
    """Every claim, trend and knock-out row of ``profile``, decided, from ``scores.csv``."""
    df = record.read(profile)
    return decide(table_rows(profile, df) + trend_rows(df)) + knockout_rows(df)


def stage_table(profile: str) -> pd.DataFrame:
    """PSNR/SSIM of the released SIAN's stages 1-6 per test set, each mean with its 95 %
    interval over scenes (Fig. 6 on the full sets)."""
    df = record.read(profile)
    df = df[(df.method == SIAN) & df.variant.str.startswith("stage-")]
    out = []
    for (b, t, v), s in df.groupby(["benchmark", "test_set", "variant"], sort=False):
        s = s.sort_values("image")
        row = {"benchmark": BENCHMARKS[b], "test_set": t, "stage": int(v[6:]), "n": len(s)}
        for m in METRICS:
            iv = stats.hierarchical_interval(s[m].to_numpy(float)[None, :], list(s.scene))
            row |= {m: iv.mean, f"lo_{m}": iv.lo, f"hi_{m}": iv.hi}
        out.append(row)
    return pd.DataFrame(out)


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def write_claims(profile: str, rows: list[dict]) -> Path:
    """``claims.csv`` and ``claims.md`` (the verdict table, numbers rounded as the paper rounds
    them: 2 decimals) under ``results/<profile>/``; returns the markdown."""
    df, res = frame(rows), results_dir(profile)
    atomic_write_text(res / "claims.csv", df.to_csv(index=False, float_format="%.6g"))
    n = df.n_images.astype("Int64").astype(str) + " (" + df.n_scenes.astype("Int64").astype(str)
    show = df.assign(
        n=(n + ")").where(df.n_images.notna()),
        interval=df.apply(_interval, axis=1).where(df.diff_psnr.notna()),
        paper=df.paper_diff_psnr.map(_fmt),
    )
    show = show[list(DATA["claims_md"])].set_axis(list(DATA["claims_md"].values()), axis=1)
    head = f"# The paper's claims, profile `{profile}`\n\nTraining seeds: {profile_seeds(profile)}."
    policy = DATA["policy"].format(seeds=MIN_SEEDS, budget=MIN_BUDGET)
    md = f"{head}\n\n{policy}\n\n{show.fillna('').to_markdown(index=False)}\n"
    return atomic_write_text(res / "claims.md", md)


def recompute(profile: str) -> Path:
    """``derain claims --profile P``: ``claims.csv``/``claims.md`` from ``scores.csv``."""
    return write_claims(profile, claim_rows(profile))
