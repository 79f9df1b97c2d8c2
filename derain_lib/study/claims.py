"""The claims chapter (08), ``derain claims``: per claim and test set, from ``scores.csv`` alone,
the paired differences and two verdicts, direction (Holm) and size (``paper.yaml``'s policy)."""

from __future__ import annotations

import math
from pathlib import Path

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
NOT_RUN, PENDING = ({"direction": v, "size": v} for v in ("not run", "pending"))
#: A row on the released SIAN alone: no training seeds, the paper's whole budget.
ONE_MODEL = {"n_seeds": "", "budget_fraction": 1.0}
SENSITIVITY = "inference-time sensitivity of the released model, not Table V's retrained ablation"
SIAN = str(MethodId.SIAN_RELEASED)

COLUMNS: list[str] = DATA["columns"]["claims"]


def budget_fraction(profile: str, claim: Claim) -> float | None:
    """Training patches one model of ``profile`` sees over the paper's (None: unknown)."""
    if not claim.trained:
        return 1.0
    d = datasets(Params(profile)).get(claim.benchmark)
    if d is None:
        return None
    cfg = config_for(Params(profile), d)
    seen = run_cost(cfg) or (cfg.train.max_steps or 0) * cfg.train.batch_size
    return seen / PAPER_PATCHES[claim.benchmark] if seen else None


def _percent(f: float | None) -> str:
    if f is None:
        return "unknown share"
    return f"{100 * f:{'.2g' if f < 0.01 else '.0f' if f >= 0.995 else '.2f'}} %"


def paired(
    df: pd.DataFrame, test_set: str, better: tuple[str, str], worse: tuple[str, str]
) -> dict:
    """``better`` - ``worse`` ((method, variant) each) per image and seed on ``test_set``: the
    measured columns of a claim row, with its evidence (stand-in data) and degenerate seeds."""
    sub = df[df.test_set == test_set]
    sides = [sub[(sub.method == str(m)) & (sub.variant == v)] for m, v in (better, worse)]
    images = sorted(set(sides[0].image) & set(sides[1].image))
    wide = []
    for s in sides:
        w = s.pivot_table(index="seed", columns="image", values=list(METRICS), aggfunc="first")
        wide.append(w.loc[sorted(w.index, key=lambda x: (x == "", int(x) if x.isdigit() else 0))])
    n = min(len(w) for w in wide)
    scenes = sub.drop_duplicates("image").set_index("image").scene[images].astype(str).tolist()
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
    stand_in = (pd.concat(sides).evidence == record.PIPELINE_CHECK).any()
    row["evidence"] = record.PIPELINE_CHECK if stand_in else None
    row["reason"] = f"degenerate ({record.DEGENERATE_RULE}): {'; '.join(bad)}" if bad else ""
    return row


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
    factor = np.arange(len(order), 0, -1)  # m, m - 1, ..., 1
    out[order] = np.maximum.accumulate(np.minimum(1.0, factor * p[order]))
    return out.tolist()


def _fmt(v: float | None) -> str:
    return "" if pd.isna(v) else f"{v:+.2f}"


def _interval(r: dict) -> str:
    return f"{_fmt(r['diff_psnr'])} [{_fmt(r['lo_psnr'])}, {_fmt(r['hi_psnr'])}]"


def _head(claim: str, table: str, benchmark: str, better: str, worse: str, **more) -> dict:
    """A row of :data:`COLUMNS` that says what it compares."""
    said = dict(claim=claim, table=table, benchmark=BENCHMARKS[benchmark], better=better)
    return dict.fromkeys(COLUMNS) | said | {"worse": worse} | more


def _base_row(c: Claim) -> dict:
    diffs = {f"paper_diff_{m}": round(c.paper(m)[0] - c.paper(m)[1], 6) for m in METRICS}
    return _head(c.text, c.table, c.benchmark, str(c.better), str(c.worse), **diffs)


def _released(row: dict, benchmark: str) -> str:
    return f"released, {'full' if row['n_images'] >= FULL_TEST_SIZE[benchmark] else 'partial'} set"


def judge(claim: Claim, pair: dict, budget: float | None) -> dict:
    """The row of ``claim`` on ``pair`` (:func:`paired`): ``pending`` or ``no verdict`` and why."""
    row = _base_row(claim) | pair | {"budget_fraction": budget}
    seeds, row["n_seeds"] = row["n_seeds"], row["n_seeds"] if claim.trained else ""
    stand_in = row["evidence"] == record.PIPELINE_CHECK
    check = stand_in or (budget is not None and budget < MIN_BUDGET)
    trained = record.TRAINED if claim.trained else _released(row, claim.benchmark)
    row["evidence"] = record.PIPELINE_CHECK if check else trained
    why = [row["reason"]] if row["reason"] else []
    if check:
        data = "stand-in data" if stand_in else "real data"
        why.append(f"pipeline check: {data}, {_percent(budget)} of the paper's training")
    if claim.trained and seeds < MIN_SEEDS:
        why.append(f"{seeds} training seed: the seed spread is unknown")
    verdict = NO_VERDICT if why else "pending"
    return row | {"direction": verdict, "size": verdict, "reason": "; ".join(why)}


def decide(rows: list[dict]) -> list[dict]:
    """Holm over the ``pending`` rows (the family), then each one's direction and size."""
    family = [r for r in rows if r["direction"] == "pending"]
    for r, p_adj in zip(family, holm([r["p_psnr"] for r in family]), strict=True):
        claimed, lo, hi = r["paper_diff_psnr"], r["lo_psnr"], r["hi_psnr"]
        if p_adj < ALPHA:
            r["direction"] = "supported" if r["diff_psnr"] > 0 else "contradicted"  # better wins
        elif claimed is not None and r["mde_psnr"] > abs(claimed):
            mde = f"MDE {r['mde_psnr']:.2f} > claimed {abs(claimed):.2f}"
            r["direction"] = f"inconclusive (underpowered: {mde})"
        else:
            r["direction"] = "inconclusive"
        if claimed is None:
            r["size"] = "no paper difference"
        else:
            side = "larger" if lo > claimed else "smaller"
            r["size"] = "agrees" if lo <= claimed <= hi else f"{side} than the paper's"
        paper = "a direction" if claimed is None else f"{_fmt(claimed)} dB"
        tested = (
            f"{_interval(r)} dB vs paper {paper}; p {r['p_psnr']:.2g}, Holm-adjusted "
            f"{p_adj:.2g} over {len(family)} rows"
        )
        r["p_holm"], r["reason"] = p_adj, "; ".join(x for x in (r["reason"], tested) if x)
    return rows


def _sets(df: pd.DataFrame, benchmark: str, sides: list[tuple[str, str]]) -> list[str]:
    """Test sets of ``benchmark`` (first-seen order) where every side was scored."""
    mine = df[df.benchmark == benchmark]
    hit = mine[pd.MultiIndex.from_frame(mine[["method", "variant"]]).isin(sides)]
    found = hit.drop_duplicates(["test_set", "method", "variant"]).test_set.value_counts()
    return [t for t in mine.test_set.unique() if found.get(t, 0) == len(set(sides))]


def table_rows(profile: str, df: pd.DataFrame) -> list[dict]:
    """The rows of :data:`CLAIMS`, undecided."""
    rows, budgets = [], {}
    for claim in CLAIMS:
        sides = [(str(claim.better), ""), (str(claim.worse), "")]
        if not (sets := _sets(df, claim.benchmark, sides)):
            here = set(df[(df.benchmark == claim.benchmark) & (df.variant == "")].method)
            absent = ", ".join(m for m, _ in sides if m not in here)
            why = f"no {BENCHMARKS[claim.benchmark]} scores of {absent} here"
            why += " (its test data or weights are absent)"
            rows.append(_base_row(claim) | NOT_RUN | {"reason": why})
        key = (claim.benchmark, claim.trained)
        if sets and key not in budgets:
            budgets[key] = budget_fraction(profile, claim)
        rows += [judge(claim, paired(df, t, *sides), budgets[key]) for t in sets]
    return rows


def trend_rows(df: pd.DataFrame) -> list[dict]:
    """Fig. 6 per test set: stage k beats stage k-1 for k = 2..6; p-value the largest step's,
    difference and interval the weakest step's."""
    rows = []
    stages = [(SIAN, f"stage-{k}") for k in range(1, 7)]
    for b in probes.BENCHMARKS:
        text = f"{TREND_TEXT} on {BENCHMARKS[b]}"
        base = _head(text, "Fig. 6", b, f"{SIAN} stage k", f"{SIAN} stage k-1")
        if not (sets := _sets(df, b, stages)):
            why = "no stage scores of the released SIAN (its weights and a real test set)"
            rows.append(base | NOT_RUN | {"reason": why})
        for t in sets:
            steps = {k: paired(df, t, stages[k - 1], stages[k - 2]) for k in range(2, 7)}
            k = max(steps, key=lambda k: (steps[k]["p_psnr"], -steps[k]["diff_psnr"]))
            listed = "; ".join(f"{j}>{j - 1} {_interval(s)}" for j, s in steps.items())
            why = f"steps: {listed}; weakest: stage {k}"
            more = {"test_set": t, "evidence": _released(steps[k], b), "reason": why}
            rows.append(base | steps[k] | more | ONE_MODEL | PENDING)
    return rows


def knockout_rows(df: pd.DataFrame) -> list[dict]:
    """Every inference-time knock-out of the released SIAN's attention in the record: intact
    minus knocked-out per image (positive: the knock-out costs PSNR)."""
    rows = []
    kos = df[(df.method == SIAN) & df.variant.str.startswith("ko-")]
    for b, t, v in kos[["benchmark", "test_set", "variant"]].drop_duplicates().to_numpy():
        text = f"the released SIAN loses PSNR when {probes.describe(v)}"
        row = _head(text, "attention (inference-time)", b, SIAN, f"{SIAN} {v}")
        row |= paired(df, t, (SIAN, ""), (SIAN, v))
        n = f"n = {row['n_images']} images ({row['n_scenes']} scenes)"
        more = {"evidence": SENSITIVITY, "reason": f"not a paper claim: {n}; no paper difference"}
        rows.append(row | more | ONE_MODEL | {"direction": NO_VERDICT, "size": NO_VERDICT})
    return rows


def claim_rows(profile: str) -> list[dict]:
    """Every claim, trend and knock-out row of ``profile``, decided, from ``scores.csv``."""
    df = record.read(profile)
    return decide(table_rows(profile, df) + trend_rows(df)) + knockout_rows(df)


def stage_table(profile: str) -> pd.DataFrame:
    """PSNR/SSIM of the released SIAN's stages 1-6 per test set, 95 % intervals (Fig. 6)."""
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
    """Claim rows as a frame of :data:`COLUMNS`."""
    return pd.DataFrame(rows, columns=COLUMNS)


def write_claims(profile: str, rows: list[dict]) -> Path:
    """Write ``results/<profile>/claims.csv`` and ``claims.md``; returns the markdown's path."""
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
