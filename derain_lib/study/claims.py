"""The claims chapter (08): two verdicts per claim of the paper (:data:`.paper.CLAIMS`, and
Fig. 6's trend per benchmark), recomputed from the study's one record ``scores.csv`` alone
(``derain claims --profile P``).

Per claim and test set one row: the paired per-image differences (better - worse), their
mean, 95 % interval over seeds and scenes (:func:`.stats.hierarchical_interval`), p-value,
MDE and training budget, then **direction** (Holm over the family of rows that can carry a
verdict; the MDE only labels a non-significant one "underpowered"; a trend is an
intersection-union test) and **size** (the paper's difference against the interval). The
rules, as ``claims.md`` states them, are :data:`POLICY`. Knock-out rows (:func:`knockout_rows`)
carry n but no paper difference and no verdict.
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
from ..tables import BENCHMARKS, FULL_TEST_SIZE, MethodId
from ..train import planned_steps, training_patches
from . import probes, record, stats
from .paper import CLAIMS, PAPER_PATCHES, TREND_TEXT, Claim
from .plan import Params, config_for, datasets, results_dir

#: Fewer training seeds than this and a claim on trained methods gets no verdict.
MIN_SEEDS = 2
#: Models trained on less than this share of the paper's training are a pipeline check.
MIN_BUDGET = 0.1
#: The family-wise error rate Holm's correction keeps.
ALPHA = 0.05
METRICS = ("psnr", "ssim")
NO_VERDICT = "no verdict"
SENSITIVITY = "inference-time sensitivity of the released model, not Table V's retrained ablation"
SIAN = str(MethodId.SIAN_RELEASED)

COLUMNS = [
    *("claim", "table", "benchmark", "test_set", "evidence", "better", "worse"),
    *("n_images", "n_scenes", "n_seeds"),
    *("diff_psnr", "lo_psnr", "hi_psnr", "diff_ssim", "lo_ssim", "hi_ssim"),
    *("paper_diff_psnr", "paper_diff_ssim", "mde_psnr", "p_psnr", "p_holm"),
    *("budget_fraction", "direction", "size", "reason"),
]


def patches_seen(profile: str, benchmark: str) -> int | None:
    """Training patches one model of ``profile`` sees on ``benchmark`` (steps x batch)."""
    d = datasets(Params(profile)).get(benchmark)
    if d is None:
        return None
    cfg = config_for(Params(profile), d)
    try:
        steps = planned_steps(
            cfg, len(training_patches(cfg, open_data(cfg.data.train, cfg.data.root)))
        )
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


@dataclass
class Paired:
    """Per-image differences better - worse on one test set, (seeds, images) per metric,
    on the images both sides scored (seeds paired by position), with each image's scene."""

    test_set: str
    diffs: dict[str, np.ndarray]
    scenes: list[str]
    degenerate: list[str]  # "<method> seed(s) ..." of each side with a degenerate seed
    stand_in: bool  # either side scored on stand-in data

    @property
    def n_seeds(self) -> int:
        return self.diffs["psnr"].shape[0]

    @property
    def n_images(self) -> int:
        return self.diffs["psnr"].shape[1]


def _seed_order(seed: str) -> tuple[bool, int]:
    return seed == "", int(seed) if seed.isdigit() else 0


def paired(
    df: pd.DataFrame, test_set: str, better: tuple[str, str], worse: tuple[str, str]
) -> Paired:
    """``better`` vs ``worse`` ((method, variant) each) on ``test_set``, from the record."""
    sub = df[df.test_set == test_set]
    sides = [sub[(sub.method == str(m)) & (sub.variant == v)] for m, v in (better, worse)]
    images = sorted(set(sides[0].image) & set(sides[1].image))
    wide = [
        s.pivot_table(index="seed", columns="image", values=list(METRICS), aggfunc="first")
        for s in sides
    ]
    wide = [w.loc[sorted(w.index, key=_seed_order)] for w in wide]
    n = min(len(w) for w in wide)
    bad = []
    for (m, _), s in zip((better, worse), sides, strict=True):
        if seeds := sorted(set(s[s.degenerate].seed)):
            bad.append(f"{m} seed{'s' * (len(seeds) > 1)} {', '.join(seeds)}")
    diffs = {
        k: wide[0][k][images].to_numpy(float)[:n] - wide[1][k][images].to_numpy(float)[:n]
        for k in METRICS
    }
    scene = sub.drop_duplicates("image").set_index("image").scene
    stand_in = bool((pd.concat(sides).evidence == record.PIPELINE_CHECK).any())
    return Paired(test_set, diffs, [str(scene[i]) for i in images], bad, stand_in)


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


def _measure(pair: Paired) -> dict:
    """The difference, interval, MDE and p-value of ``pair``'s rows, with its n."""
    row = {"n_images": pair.n_images, "n_scenes": len(set(pair.scenes))}
    for m in METRICS:
        iv = stats.hierarchical_interval(pair.diffs[m], pair.scenes)
        row |= {f"diff_{m}": iv.mean, f"lo_{m}": iv.lo, f"hi_{m}": iv.hi}
        if m == "psnr":
            row |= {"mde_psnr": iv.mde, "p_psnr": p_value(iv)}
    return row


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
    return dict.fromkeys(COLUMNS) | {
        "claim": claim.text,
        "table": claim.table,
        "benchmark": BENCHMARKS[claim.benchmark],
        "better": str(claim.better),
        "worse": str(claim.worse),
        "paper_diff_psnr": _paper_diff(claim, "psnr"),
        "paper_diff_ssim": _paper_diff(claim, "ssim"),
    }


def _released(pair: Paired, benchmark: str) -> str:
    return f"released, {'full' if pair.n_images >= FULL_TEST_SIZE[benchmark] else 'partial'} set"


def judge(claim: Claim, pair: Paired, budget: float | None) -> dict:
    """One row of ``claim`` on ``pair``; ``direction`` is ``pending`` for a row of the family
    (decided by :func:`decide` over all of them), else ``no verdict``."""
    row = _base_row(claim) | {"test_set": pair.test_set, "budget_fraction": budget}
    row |= {"n_seeds": pair.n_seeds if claim.trained else ""} | _measure(pair)
    check = pair.stand_in or (budget is not None and budget < MIN_BUDGET)
    trained = record.TRAINED if claim.trained else _released(pair, claim.benchmark)
    row["evidence"] = record.PIPELINE_CHECK if check else trained
    why = []
    if pair.degenerate:
        why.append(f"degenerate ({record.DEGENERATE_RULE}): {'; '.join(pair.degenerate)}")
    if check:
        data = "stand-in data" if pair.stand_in else "real data"
        why.append(f"pipeline check: {data}, {_percent(budget)} of the paper's training")
    if claim.trained and pair.n_seeds < MIN_SEEDS:
        why.append(f"{pair.n_seeds} training seed: the seed spread is unknown")
    verdict = NO_VERDICT if why else "pending"
    return row | {"direction": verdict, "size": verdict, "reason": "; ".join(why)}


def _fmt(v: float) -> str:
    return f"{v:+.2f}"


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
        interval = f"{_fmt(r['diff_psnr'])} [{_fmt(r['lo_psnr'])}, {_fmt(r['hi_psnr'])}] dB"
        paper = "a direction" if claimed is None else f"{_fmt(claimed)} dB"
        tested = (
            f"{interval} vs paper {paper}; p {r['p_psnr']:.2g}, Holm-adjusted {p_adj:.2g} "
            f"over {len(family)} rows"
        )
        r |= {"p_holm": p_adj, "direction": direction}
        r |= {"size": size_verdict(r["lo_psnr"], r["hi_psnr"], claimed)}
        r["reason"] = "; ".join(x for x in (r["reason"], tested) if x)
    return rows


def _sets(df: pd.DataFrame, benchmark: str, sides: list[tuple[str, str]]) -> list[str]:
    """Test sets of ``benchmark`` (first-seen order) where every (method, variant) of
    ``sides`` was scored."""
    mine = df[df.benchmark == benchmark]
    hit = mine[pd.MultiIndex.from_frame(mine[["method", "variant"]]).isin(sides)]
    found = hit.drop_duplicates(["test_set", "method", "variant"]).test_set.value_counts()
    return [t for t in mine.test_set.unique() if found.get(t, 0) == len(set(sides))]


def _not_run(row: dict, why: str) -> dict:
    return row | {"direction": "not run", "size": "not run", "reason": why}


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
            rows.append(_not_run(_base_row(claim), f"{why} (its test data or weights are absent)"))
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
    stages = [(SIAN, probes.stage_variant(k)) for k in range(1, 7)]
    for b in probes.BENCHMARKS:  # Fig. 6's trend, per benchmark the stages are probed on
        base = dict.fromkeys(COLUMNS) | {
            "claim": f"{TREND_TEXT} on {BENCHMARKS[b]}",
            "table": "Fig. 6",
            "benchmark": BENCHMARKS[b],
            "better": f"{SIAN} stage k",
            "worse": f"{SIAN} stage k-1",
        }
        sets = _sets(df, b, stages)
        if not sets:
            why = "no stage scores of the released SIAN (its weights and a real test set)"
            rows.append(_not_run(base, why))
        for t in sets:
            pairs = {k: paired(df, t, stages[k - 1], stages[k - 2]) for k in range(2, 7)}
            steps = {k: _measure(pair) for k, pair in pairs.items()}
            k = max(steps, key=lambda k: (steps[k]["p_psnr"], -steps[k]["diff_psnr"]))
            listed = "; ".join(
                f"{j}>{j - 1} {_fmt(s['diff_psnr'])} [{_fmt(s['lo_psnr'])}, {_fmt(s['hi_psnr'])}]"
                for j, s in steps.items()
            )
            rows.append(
                base
                | steps[k]
                | {"test_set": t, "budget_fraction": 1.0, "n_seeds": ""}
                | {"evidence": _released(pairs[k], b), "direction": "pending", "size": "pending"}
                | {"reason": f"steps: {listed}; weakest: stage {k}"}
            )
    return rows


def knockout_rows(df: pd.DataFrame) -> list[dict]:
    """Every inference-time knock-out of the released SIAN's attention in the record: the
    intact model minus the knocked-out one per image (positive: the knock-out costs PSNR)."""
    rows = []
    kos = df[(df.method == SIAN) & df.variant.str.startswith("ko-")]
    for b, t, v in (
        kos[["benchmark", "test_set", "variant"]].drop_duplicates().itertuples(index=False)
    ):
        row = dict.fromkeys(COLUMNS) | _measure(paired(df, t, (SIAN, ""), (SIAN, v)))
        rows.append(
            row
            | {"claim": f"the released SIAN loses PSNR when {probes.describe(v)}"}
            | {"table": "attention (inference-time)", "benchmark": BENCHMARKS[b]}
            | {"test_set": t, "evidence": SENSITIVITY, "better": SIAN, "worse": f"{SIAN} {v}"}
            | {"n_seeds": "", "budget_fraction": 1.0, "direction": NO_VERDICT, "size": NO_VERDICT}
            | {
                "reason": f"not a paper claim: n = {row['n_images']} images "
                f"({row['n_scenes']} scenes); no paper difference"
            }
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
        row = {
            "benchmark": BENCHMARKS[b],
            "test_set": t,
            "stage": int(v.split("-")[1]),
            "n": len(s),
        }
        for m in METRICS:
            iv = stats.hierarchical_interval(s[m].to_numpy(float)[None, :], list(s.scene))
            row |= {m: iv.mean, f"lo_{m}": iv.lo, f"hi_{m}": iv.hi}
        out.append(row)
    return pd.DataFrame(out)


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


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
    signed = lambda s: s.map(lambda v: "" if pd.isna(v) else _fmt(v))  # noqa: E731
    n = (
        df.n_images.astype("Int64").astype(str)
        + " ("
        + df.n_scenes.astype("Int64").astype(str)
        + ")"
    )
    diff = signed(df.diff_psnr) + " [" + signed(df.lo_psnr) + ", " + signed(df.hi_psnr) + "]"
    show = pd.DataFrame(
        {
            "table": df.table,
            "claim": df.claim,
            "test set": df.test_set.fillna(""),
            "evidence": df.evidence.fillna(""),
            "n (scenes)": n.where(df.n_images.notna(), ""),
            "seeds": df.n_seeds.fillna(""),
            "Δ PSNR [95 %]": diff.where(df.diff_psnr.notna(), ""),
            "paper Δ": signed(df.paper_diff_psnr),
            "direction": df.direction,
            "size": df["size"],
            "reason": df.reason.fillna(""),
        }
    )
    head = f"# The paper's claims, profile `{profile}`\n\nTraining seeds: {profile_seeds(profile)}."
    policy = POLICY.format(seeds=MIN_SEEDS, budget=MIN_BUDGET)
    return f"{head}\n\n{policy}\n\n{show.to_markdown(index=False)}\n"


def write_claims(profile: str, rows: list[dict]) -> Path:
    """``claims.csv`` and ``claims.md`` under ``results/<profile>/``; returns the markdown."""
    df, res = frame(rows), results_dir(profile)
    atomic_write_text(res / "claims.csv", df.to_csv(index=False, float_format="%.6g"))
    return atomic_write_text(res / "claims.md", claims_markdown(df, profile))


def recompute(profile: str) -> Path:
    """``derain claims --profile P``: ``claims.csv``/``claims.md`` from ``scores.csv``."""
    return write_claims(profile, claim_rows(profile))
