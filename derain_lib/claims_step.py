"""The claims step of the pipeline: more training seeds, the paired samples, the verdicts.

:func:`train_seeds` trains (or takes from the run cache) every trained method a claim
needs once per seed of the profile (``seeds:`` in ``configs/profiles/<profile>.yaml``; the
first seed's runs are those notebook 01 trained). :func:`claim_rows` pairs the per-image
scores the table steps recorded (``scores/<step>.json``) with the other seeds' and judges
every claim of :data:`derain_lib.claims.CLAIMS`; :func:`write_claims` writes
``results/<profile>/claims.csv`` and ``claims.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .claims import CLAIMS, Sample, judge, not_run_rows, render_claims_markdown, write_claims_csv
from .errors import DerainError
from .fsutil import atomic_write_text
from .tables import Score, load_scores, not_run


def train_seeds(study) -> list[dict]:
    """Train every method of a trained claim with each seed of the profile; ``seeds.json``.

    ``study`` is a :class:`derain_lib.reproduce.Study`. One row per (method, benchmark, seed):
    the run and its per-image scores on the profile's own test set, or ``not run: ...``.
    """
    from .config import profile_seeds
    from .evaluate import open_data
    from .reproduce import TRAINED, _write_json
    from .runs import get_or_run

    seeds = profile_seeds(study.profile)
    wanted = {(m, c.benchmark) for c in CLAIMS if c.trained for m in (c.better, c.worse)}
    rows = []
    for b, d in study.datasets().items():
        for method in (m for m in TRAINED if (m, b) in wanted):
            model, loss = TRAINED[method]
            for seed in seeds:
                cfg = study.config(
                    d, [f"model.name={model}", f"train.loss={loss}", f"train.seed={seed}"]
                )
                row = {"method": method, "benchmark": b, "seed": seed}
                try:
                    open_data(cfg.data.train, cfg.data.root)
                except DerainError as e:
                    rows.append({**row, "status": not_run(f"no training data: {e}")})
                    continue
                run = get_or_run(cfg)
                csv = str(run.dir / "per_image.csv")
                rows.append({**row, "status": "ok", "run": run.key, "per_image_csv": csv})
    _write_json(study.results / "seeds.json", rows)
    return rows


def _sample(score: Score, seed_rows: list[dict], results: Path) -> Sample:
    """The per-image scores behind ``score``: every seed's when it is a seeded training run."""
    import pandas as pd

    first = (results / score.per_image_csv).resolve()
    mine = [
        r
        for r in seed_rows
        if r["method"] == score.method and r["status"] == "ok" and r.get("per_image_csv")
    ]
    csvs = [first]
    seeds = [0]
    if any(Path(r["per_image_csv"]).resolve() == first for r in mine):
        bench = next(r for r in mine if Path(r["per_image_csv"]).resolve() == first)["benchmark"]
        same = [r for r in mine if r["benchmark"] == bench]
        csvs = [Path(r["per_image_csv"]) for r in same]
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


def claim_rows(study) -> list[dict]:
    """Judge every claim on every test set where both its methods were scored."""
    from .reproduce import results_root

    seeds_file = study.results / "seeds.json"
    seed_rows = json.loads(seeds_file.read_text()) if seeds_file.is_file() else []
    rows = []
    for claim in CLAIMS:
        path = study.results / "scores" / f"{claim.step}.json"
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
            reasons = [s.provenance for s in mine if not s.ran and s.method in ran]
            rows += not_run_rows(claim, reasons[0] if reasons else "no result recorded")
            continue
        for t in common:
            a = _sample(ran[claim.better][t], seed_rows, results_root())
            b = _sample(ran[claim.worse][t], seed_rows, results_root())
            rows += judge(claim, a, b)
    return rows


def write_claims(study, rows: list[dict]) -> Path:
    """``claims.csv`` and ``claims.md`` under ``results/<profile>/``; returns the markdown."""
    from .config import profile_seeds

    write_claims_csv(rows, study.results / "claims.csv")
    header = f"Training seeds of profile `{study.profile}`: {profile_seeds(study.profile)}."
    return atomic_write_text(
        study.results / "claims.md", render_claims_markdown(rows, study.profile, header)
    )
