"""The claims chapter (08): the paper's claims as data, and what this run's evidence says.

A :class:`Claim` is one comparison the paper makes: method ``better`` beats method ``worse``
on one benchmark, with the paper's two numbers (Table II: the negative-SSIM loss beats MAE
and MSE; Tables III/IV: SIAN beats PReNet; Table V: Baseline < Baseline+LSTM < full).

The evidence is the per-image, per-seed scores the table steps committed,
``results/<profile>/scores/<step>_per_image.csv`` (columns :data:`PER_IMAGE_COLUMNS`; written
by :func:`write_per_image` from the step's records and the extra training seeds of
``seeds.json``), so :func:`claim_rows` (and ``derain claims --profile P``) recomputes
``claims.csv`` from the repository alone. Per claim and test set, one row with both measures:

- the paired per-image differences (better - worse, same images, seeds paired by position),
  their mean and a 95 % interval from :func:`~.stats.hierarchical_interval` (seeds, then
  scenes; Student-t with Satterthwaite's degrees of freedom);
- ``mde_psnr``: the minimum detectable effect at 80 % power from this run's variances;
- ``budget_fraction``: the training budget as a fraction of the paper's (patches seen /
  the paper's patches; 1 for the released weights);
- the verdict: ``supported`` / ``contradicted`` / ``inconclusive`` only where the data are
  the benchmark's own (not a stand-in), the methods are not degenerate and the MDE is below
  the paper's claimed PSNR difference; supported when an interval lies on the paper's side
  of zero and neither measure contradicts, contradicted when either lies on the other side.
  Otherwise ``not testable here`` (the reason gives the MDE, the claim and the budget),
  ``degenerate`` (a model whose output is its input, or whose loss never moved: no result)
  or ``not run`` (a method was not scored).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import profile_seeds
from ..data.sources import open_data
from ..errors import DerainError
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
    Step,
    TableSpec,
    load_scores,
    paper_value,
)
from ..train import planned_steps, training_patches
from . import probes, stats
from .paths import results_dir
from .plan import Params, config_for, datasets

#: Fewer training seeds than this and a claim on trained methods gets no verdict.
MIN_SEEDS = 2
METRICS = ("psnr", "ssim")
#: A trained model within this many dB of the Input row on every image outputs its input.
SAME_AS_INPUT_DB = 0.01
#: The paper's training, in patches seen (MODEL_SPEC 5, docs/data.md: 120x120 patches of
#: 481x321 images): RainTrainL 200 x 60 x 2 (flips) x 100 epochs, RainTrainH 1,800 x 15 x
#: 100 epochs. Rain1400's images vary in size: no figure (no trained claim uses it).
PAPER_PATCHES: dict[str, int] = {"rain100l": 200 * 60 * 2 * 100, "rain100h": 1800 * 15 * 100}


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
class ProbeClaim:
    """A claim the released SIAN tests on its own (:mod:`.probes`): ``better`` beats
    ``worse`` (probe method ids); ``claimed``: the paper's (PSNR, SSIM) difference, None
    where it states only a direction (Fig. 6)."""

    table: str
    benchmark: str
    better: str
    worse: str
    label: str
    claimed: tuple[float, float] | None
    step: str = "probes"
    trained: bool = False

    @property
    def text(self) -> str:
        return f"{self.label} on {BENCHMARKS[self.benchmark]}"

    def paper(self, metric: str) -> tuple[float, float] | None:
        return None if self.claimed is None else (self.claimed[METRICS.index(metric)], 0.0)


def _probe_claims() -> tuple[ProbeClaim, ...]:
    out = []
    for b in probes.BENCHMARKS:
        full = paper_value("V", "Baseline+SIAN+LSTM", b).value
        lstm = paper_value("V", "Baseline+LSTM", b).value
        gain = (round(full[0] - lstm[0], 6), round(full[1] - lstm[1], 6))
        out.append(
            ProbeClaim(
                "V (knock-out)",
                b,
                probes.stage_id(6),
                probes.KNOCKOUT,
                "released SIAN beats itself with each attention map set to its mean",
                gain,
            )  # fmt: skip
        )
        for k in range(2, 7):
            out.append(
                ProbeClaim(
                    "Fig. 6",
                    b,
                    probes.stage_id(k),
                    probes.stage_id(k - 1),
                    f"stage {k} improves on stage {k - 1} (released SIAN)",
                    None,
                )  # fmt: skip
            )
    return tuple(out)


#: Claims of the released SIAN alone, judged on the full test sets (chapter 03's probes).
PROBE_CLAIMS: tuple[ProbeClaim, ...] = _probe_claims()


def _trained(method: str) -> bool:
    try:
        return MethodId(method).trained
    except ValueError:  # a probe of the released SIAN
        return False


PER_IMAGE_COLUMNS = [
    *("method", "benchmark", "test_set", "stand_in", "seed"),
    *("image", "scene", "psnr", "ssim"),
]
COLUMNS = [
    *("claim", "table", "benchmark", "test_set", "evidence", "better", "worse"),
    *("n_images", "n_scenes", "n_seeds"),
    *("diff_psnr", "lo_psnr", "hi_psnr", "diff_ssim", "lo_ssim", "hi_ssim"),
    *("paper_diff_psnr", "paper_diff_ssim", "mde_psnr", "mde_ssim", "df_psnr"),
    *("budget_fraction", "verdict", "reason"),
]
VERDICTS = (
    "supported",
    "contradicted",
    "inconclusive",
    "not testable here",
    "not run",
    "degenerate",
)


# ---- per-image scores: written by the table steps, read by the claims -------------------


def per_image_path(profile: str, step: Step | str) -> Path:
    return results_dir(profile) / "scores" / f"{step}_per_image.csv"


def scenes_path(profile: str) -> Path:
    return results_dir(profile) / "scores" / "scenes.json"


def read_scenes(profile: str) -> dict[str, dict[str, str]]:
    """Test set label -> image name -> scene (``scores/scenes.json``)."""
    p = scenes_path(profile)
    return json.loads(p.read_text()) if p.is_file() else {}


def _seed_rows(profile: str) -> list[dict]:
    p = results_dir(profile) / "seeds.json"
    return json.loads(p.read_text()) if p.is_file() else []


def write_per_image(profile: str, step: Step | str) -> Path:
    """``scores/<step>_per_image.csv``: every measured record of ``scores/<step>.json`` (the
    Input, released weights, trained models, degenerate ones too) image by image, a trained
    model's on its own test set once per training seed of ``seeds.json`` (seed 0 only where
    no other seed is recorded yet), with each image's scene (:data:`scenes_path`)."""
    res = results_dir(profile)
    records = load_scores([res / "scores" / f"{step}.json"])
    scenes = read_scenes(profile)
    seeds = [r for r in _seed_rows(profile) if r.get("status") == "ok" and r.get("per_image_csv")]
    root = results_root().resolve()
    rows = []
    for s in (s for s in records if s.ran):
        first = (root / s.per_image_csv).resolve()
        runs: list[tuple[int | str, Path]] = [(0 if _trained(s.method) else "", first)]
        hit = [
            r
            for r in seeds
            if r["method"] == s.method and restored(r["per_image_csv"]).resolve() == first
        ]
        if hit:
            runs = [
                (r["seed"], restored(r["per_image_csv"]))
                for r in seeds
                if r["method"] == s.method and r["benchmark"] == hit[0]["benchmark"]
            ]
        where = scenes.get(s.test_set, {})
        for seed, path in runs:
            for r in pd.read_csv(path).itertuples():
                rows.append(
                    {
                        "method": s.method,
                        "benchmark": s.benchmark,
                        "test_set": s.test_set,
                        "stand_in": s.stand_in,
                        "seed": seed,
                        "image": r.name,
                        "scene": where.get(r.name, r.name),
                        "psnr": r.psnr,
                        "ssim": r.ssim,
                    }
                )
    out = io.StringIO()
    pd.DataFrame(rows, columns=PER_IMAGE_COLUMNS).to_csv(out, index=False, float_format="%.6f")
    return atomic_write_text(per_image_path(profile, step), out.getvalue())


def read_per_image(profile: str, step: Step | str) -> pd.DataFrame:
    """The committed per-image scores of ``step`` (an empty frame when absent)."""
    p = per_image_path(profile, step)
    if not p.is_file():
        return pd.DataFrame(columns=PER_IMAGE_COLUMNS)
    df = pd.read_csv(p, keep_default_na=False, dtype={"seed": str, "image": str, "scene": str})
    df["stand_in"] = df.stand_in.astype(str).str.lower() == "true"
    return df


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


# ---- judging one claim -------------------------------------------------------------------


@dataclass
class Evidence:
    """Both methods' per-image scores on one test set: ``psnr``/``ssim`` (seeds, images) each,
    aligned on the same images (seeds paired by position), the scenes, and which seeds are
    degenerate (output equal to the input)."""

    test_set: str
    stand_in: bool
    images: list[str]
    scenes: list[str]
    better: dict[str, np.ndarray]
    worse: dict[str, np.ndarray]
    degenerate: list[str]
    released: bool

    @property
    def n_seeds(self) -> int:
        return self.better["psnr"].shape[0]

    def diffs(self, metric: str) -> np.ndarray:
        return self.better[metric] - self.worse[metric]


def _matrix(df: pd.DataFrame, images: list[str], metric: str) -> np.ndarray:
    wide = df.pivot_table(index="seed", columns="image", values=metric, aggfunc="first")
    wide = wide.loc[sorted(wide.index, key=lambda s: (s == "", int(s) if s.isdigit() else 0))]
    return wide[images].to_numpy(float)


def evidence(df: pd.DataFrame, claim: Claim, test_set: str) -> Evidence:
    """The :class:`Evidence` of ``claim`` on ``test_set`` from a per-image frame."""
    sub = df[(df.test_set == test_set) & (df.benchmark == claim.benchmark)]
    a, b = sub[sub.method == claim.better], sub[sub.method == claim.worse]
    images = sorted(set(a.image) & set(b.image))
    rainy = sub[sub.method == MethodId.INPUT].set_index("image").psnr
    degenerate = []
    for m, part in ((claim.better, a), (claim.worse, b)):
        if not _trained(m) or rainy.empty:
            continue
        for seed, g in part.groupby("seed"):
            g = g.set_index("image").psnr
            common = g.index.intersection(rainy.index)
            if len(common) and ((g[common] - rainy[common]).abs() <= SAME_AS_INPUT_DB).all():
                degenerate.append(
                    f"{m} seed {seed}: output equals input (PSNR within {SAME_AS_INPUT_DB} dB "
                    f"of the Input row on all {len(common)} images)"
                )
    mats = {
        side: {m: _matrix(part, images, m) for m in METRICS} for side, part in (("a", a), ("b", b))
    }
    seeds = min(mats["a"]["psnr"].shape[0], mats["b"]["psnr"].shape[0])
    scene = sub.drop_duplicates("image").set_index("image").scene
    return Evidence(
        test_set,
        bool(sub.stand_in.iloc[0]) if len(sub) else False,
        images,
        [str(scene[i]) for i in images],
        {m: v[:seeds] for m, v in mats["a"].items()},
        {m: v[:seeds] for m, v in mats["b"].items()},
        degenerate,
        not claim.trained,
    )


def evidence_kind(claim: Claim, ev: Evidence) -> str:
    """``released, full set`` / ``released, partial set`` / ``trained here`` / ``stand-in``."""
    if ev.stand_in:
        return "stand-in"
    if claim.trained:
        return "trained here"
    full = len(ev.images) >= FULL_TEST_SIZE[claim.benchmark]
    return "released, full set" if full else "released, partial set"


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


def judge(
    claim: Claim,
    ev: Evidence,
    budget: float | None,
    flagged: list[str] = (),
    seed: int = stats.SEED,
) -> dict:
    """One ``claims.csv`` row: both measures of ``claim`` on ``ev``, and its verdict by the
    rules of the module docstring; ``flagged``: degenerate reasons known from the records."""
    row = _base_row(claim) | {
        "test_set": ev.test_set,
        "evidence": evidence_kind(claim, ev),
        "n_images": len(ev.images),
        "n_scenes": len(set(ev.scenes)),
        "n_seeds": ev.n_seeds if claim.trained else "",
        "budget_fraction": budget,
    }
    ivs = {}
    for m in METRICS:
        iv = stats.hierarchical_interval(ev.diffs(m), ev.scenes, seed)
        ivs[m] = iv
        row |= {f"diff_{m}": iv.mean, f"lo_{m}": iv.lo, f"hi_{m}": iv.hi, f"mde_{m}": iv.mde}
    row["df_psnr"] = ivs["psnr"].df
    claimed = row["paper_diff_psnr"]
    mde = ivs["psnr"].mde
    budget_text = f"{_percent(budget)} of the paper's training"
    if claimed is None:  # a direction only (Fig. 6): the interval decides, the MDE is told
        power = f"MDE {mde:.2f} dB (the paper claims a direction, no difference)"
    else:
        power = (
            f"MDE {mde:.2f} dB {'<' if mde < abs(claimed) else '>'} claimed {abs(claimed):.2f} dB"
        )
    bad = [*flagged, *ev.degenerate]
    if bad:
        verdict, reason = "degenerate", "; ".join(dict.fromkeys(bad))
    elif ev.stand_in:
        verdict = "not testable here"
        reason = f"stand-in data, not {BENCHMARKS[claim.benchmark]}'s own; {power}; {budget_text}"
    elif claim.trained and ev.n_seeds < MIN_SEEDS:
        verdict = "not testable here"
        reason = f"{ev.n_seeds} training seed: the seed spread is unknown; {budget_text}"
    elif claimed is not None and not mde < abs(claimed):
        verdict, reason = "not testable here", f"{power}; {budget_text}"
    else:
        signs = {
            m: stats.direction(ivs[m], 1.0 if claimed is None else row[f"paper_diff_{m}"] or 0.0)
            for m in METRICS
        }
        if -1 in signs.values():
            verdict = "contradicted"
        elif 1 in signs.values():
            verdict = "supported"
        else:
            verdict = "inconclusive"
        shown = ", ".join(
            f"{m.upper()} {ivs[m].mean:+.{2 if m == 'psnr' else 4}f} "
            f"[{ivs[m].lo:+.{2 if m == 'psnr' else 4}f}, {ivs[m].hi:+.{2 if m == 'psnr' else 4}f}]"
            for m in METRICS
        )
        paper = "a direction" if claimed is None else f"{claimed:+.2f} dB"
        reason = f"{shown} vs paper {paper}; {power}; {budget_text}"
    return row | {"verdict": verdict, "reason": reason}


def not_run_row(claim: Claim, reason: str) -> dict:
    """The row of a claim whose methods were not both scored."""
    return _base_row(claim) | {"verdict": "not run", "reason": reason.removeprefix("not run: ")}


def claim_rows(profile: str) -> list[dict]:
    """Judge every claim on every test set where both its methods were scored, from the
    committed files only: ``scores/<step>_per_image.csv`` and ``scores/<step>.json``."""
    rows = []
    budgets: dict[str, float | None] = {}
    for claim in CLAIMS:  # the tables' claims; then the released SIAN's own (probe_rows)
        path = results_dir(profile) / "scores" / f"{claim.step}.json"
        df = read_per_image(profile, claim.step)
        if not path.is_file() or df.empty:
            rows.append(not_run_row(claim, f"step {claim.step} has not run"))
            continue
        records = [s for s in load_scores([path]) if s.benchmark == claim.benchmark]
        mine = df[df.benchmark == claim.benchmark]
        sets = [
            t
            for t in dict.fromkeys(mine.test_set)
            if {claim.better, claim.worse} <= set(mine[mine.test_set == t].method)
        ]
        if not sets:
            why = [
                s.detail for s in records if not s.ran and s.method in (claim.better, claim.worse)
            ]
            rows.append(not_run_row(claim, why[0] if why else "no result recorded"))
            continue
        key = f"{claim.benchmark}:{claim.trained}"
        if key not in budgets:
            budgets[key] = budget_fraction(profile, claim)
        for t in sets:
            flagged = [
                f"{s.method}: {s.detail.split('; ', 1)[-1]}"
                for s in records
                if s.kind == "degenerate"
                and s.test_set == t
                and s.method in (claim.better, claim.worse)
                and "output equals input" not in s.detail  # evidence() checks every seed
            ]
            rows.append(judge(claim, evidence(df, claim, t), budgets[key], flagged))
    return rows + probe_rows(profile)


def read_probes(profile: str) -> pd.DataFrame:
    p = probes.probes_path(profile)
    if not p.is_file():
        return pd.DataFrame(columns=PER_IMAGE_COLUMNS)
    df = pd.read_csv(p, keep_default_na=False, dtype={"seed": str, "image": str, "scene": str})
    df["stand_in"] = df.stand_in.astype(str).str.lower() == "true"
    return df


def probe_rows(profile: str) -> list[dict]:
    """The rows of :data:`PROBE_CLAIMS` from ``scores/probes_per_image.csv``."""
    df = read_probes(profile)
    rows = []
    for claim in PROBE_CLAIMS:
        mine = df[df.benchmark == claim.benchmark]
        sets = [
            t
            for t in dict.fromkeys(mine.test_set)
            if {claim.better, claim.worse} <= set(mine[mine.test_set == t].method)
        ]
        if not sets:
            why = "no probe of the released SIAN (its weights and a real test set are needed)"
            rows.append(not_run_row(claim, why))
        for t in sets:
            rows.append(judge(claim, evidence(df, claim, t), 1.0))
    return rows


def stage_table(profile: str) -> pd.DataFrame:
    """PSNR/SSIM of the released SIAN's stages 1-6 per test set, each mean with its 95 %
    interval over scenes (Fig. 6 on the full sets)."""
    df = read_probes(profile)
    out = []
    for (b, t), g in df.groupby(["benchmark", "test_set"], sort=False):
        for k in range(1, 7):
            s = g[g.method == probes.stage_id(k)].sort_values("image")
            if s.empty:
                continue
            row = {"benchmark": BENCHMARKS[b], "test_set": t, "stage": k, "n": len(s)}
            for m in METRICS:
                iv = stats.hierarchical_interval(s[m].to_numpy(float)[None, :], list(s.scene))
                row |= {m: iv.mean, f"lo_{m}": iv.lo, f"hi_{m}": iv.hi}
            out.append(row)
    return pd.DataFrame(out)


# ---- files -------------------------------------------------------------------------------


def _cell(v: object) -> object:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else round(v, 6) if math.isfinite(v) else v
    return v


def write_claims_csv(rows: list[dict], path: str | Path) -> Path:
    """``claims.csv``: one row per (claim, test set), PSNR and SSIM in the same row."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=COLUMNS)
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in COLUMNS})
    return atomic_write_text(path, out.getvalue())


def _num(v: object, digits: int, signed: bool = True) -> str:
    if v in ("", None) or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{float(v):+.{digits}f}" if signed else f"{float(v):.{digits}f}"


def render_claims_markdown(rows: list[dict], profile: str, header: str = "") -> str:
    """``claims.md``: the verdict table, one line per claim and test set."""
    lines = [f"# The paper's claims, profile `{profile}`", ""]
    if header:
        lines += [header, ""]
    lines += [
        "Difference = better − worse, per image on the same images; 95 % interval: "
        "hierarchical bootstrap (training seeds, then test scenes), Student-t with "
        "Satterthwaite's degrees of freedom. MDE: the smallest PSNR difference this run "
        "detects with 80 % power. A verdict only on the benchmark's own data with MDE below "
        "the paper's claimed difference (docs/evidence.md).",
        "",
        "| Table | claim | test set | evidence | n (scenes) | seeds | Δ PSNR [95 %] | "
        "Δ SSIM [95 %] | paper Δ | MDE | budget | verdict | reason |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        dp = (
            f"{_num(r['diff_psnr'], 2)} [{_num(r['lo_psnr'], 2)}, {_num(r['hi_psnr'], 2)}]"
            if r.get("diff_psnr") not in ("", None)
            else ""
        )
        ds = (
            f"{_num(r['diff_ssim'], 4)} [{_num(r['lo_ssim'], 4)}, {_num(r['hi_ssim'], 4)}]"
            if r.get("diff_ssim") not in ("", None)
            else ""
        )
        n = f"{r['n_images']} ({r['n_scenes']})" if r.get("n_images") not in ("", None) else ""
        budget = (
            "" if r.get("budget_fraction") in ("", None) else _percent(float(r["budget_fraction"]))
        )
        lines.append(
            f"| {r['table']} | {r['claim']} | {r.get('test_set') or ''} "
            f"| {r.get('evidence') or ''} "
            f"| {n} | {r.get('n_seeds') or ''} | {dp} | {ds} | {_num(r['paper_diff_psnr'], 2)} "
            f"| {_num(r.get('mde_psnr'), 2, False)} | {budget} | {r['verdict']} | {r['reason']} |"
        )
    return "\n".join(lines) + "\n"


def write_claims(profile: str, rows: list[dict]) -> Path:
    """``claims.csv`` and ``claims.md`` under ``results/<profile>/``; returns the markdown."""
    write_claims_csv(rows, results_dir(profile) / "claims.csv")
    header = f"Training seeds of profile `{profile}`: {profile_seeds(profile)}."
    md = render_claims_markdown(rows, profile, header)
    return atomic_write_text(results_dir(profile) / "claims.md", md)


def recompute(profile: str) -> Path:
    """``derain claims --profile P``: ``claims.csv``/``claims.md`` from the committed CSVs."""
    return write_claims(profile, claim_rows(profile))


def summary(rows: list[dict]) -> str:
    """The chapter's findings: how many claims got each verdict, and each verdict given."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    out = [
        f"- {len(rows)} claim × test set rows: "
        + ", ".join(f"{n} × `{v}`" for v, n in counts.items())
        + ".\n"
    ]
    for r in rows:
        if r["verdict"] in ("supported", "contradicted", "inconclusive", "degenerate"):
            out.append(
                f"- `{r['verdict']}`: Table {r['table']}, {r['claim']}, {r['test_set']}: "
                f"{r['reason']}.\n"
            )
    untestable = [r for r in rows if r["verdict"] == "not testable here"]
    if untestable:
        mdes = [float(r["mde_psnr"]) for r in untestable if r.get("mde_psnr") not in ("", None)]
        out.append(
            f"- `not testable here`: {len(untestable)} rows"
            + (f" (MDE median {np.median(mdes):.2f} dB)" if mdes else "")
            + "; each row's reason gives its MDE, the paper's claimed difference and the "
            "training budget.\n"
        )
    return "".join(out)


# ---- the chapters' view of the same evidence (02, 04) ------------------------------------


def refresh_per_image(profile: str) -> list[Path]:
    """Rewrite every step's per-image CSV (after more training seeds were recorded)."""
    res = results_dir(profile) / "scores"
    return [write_per_image(profile, s) for s in Step if (res / f"{s}.json").is_file()]


def seed_means(profile: str, spec: TableSpec) -> pd.DataFrame:
    """Per method and test set of ``spec``: each seed's mean PSNR/SSIM over the images
    (``seed`` column; ``"mean"`` for the mean over seeds), from the committed per-image CSV."""
    df = read_per_image(profile, spec.step)
    ids = [str(m.id) for m in spec.methods]
    df = df[df.method.isin(ids) & df.benchmark.isin(spec.benchmarks)]
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
