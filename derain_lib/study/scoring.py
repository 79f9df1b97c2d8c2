"""Steps 02-04: score methods on test sets, one :class:`~derain_lib.tables.Score` each.

A method (:class:`~derain_lib.tables.MethodId`) is the Input (the rainy image itself),
released weights (the authors') or a trained method of :data:`~.plan.TRAINED` (a run of
notebook 01). Model evaluations go through the run cache; the Input row is cached in its eval
folder. Whether a trained model is degenerate is decided once, in the record
(:data:`.record.DEGENERATE_GAIN_DB`). Each step also writes its per-image,
per-seed scores into the study's one record, ``scores.csv`` (:mod:`.record`); its score
records (``run-state/scores/<step>.json``, not committed) keep why a method did not run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ..config import Config, EvalConfig, ModelConfig, config_from_dict
from ..data.embedded import TEST_SOURCES
from ..data.io import write_png
from ..data.sources import open_data
from ..evaluate import evaluate
from ..metrics import quantize
from ..runs import Run, find_run, get_or_run, open_run, restored, results_root, stored
from ..tables import (
    BENCHMARKS,
    MethodId,
    Score,
    ScoreKind,
    load_scores,
    missing,
    provenance_text,
    released,
    reproduced,
    save_scores,
)
from ..weights import RELEASED, find_released, missing_released
from . import record
from .paper import Step, TableSpec
from .paths import read_scenes, results_dir, scenes_path, work_dir, write_json
from .plan import (
    TRAINED,
    TRAINED_ON,
    Params,
    TestSet,
    config_for,
    datasets,
    eval_reference,
    is_own,
    no_data_reason,
    test_sets,
    test_spec,
)
from .probes import without_partial_copies
from .training import load_runs, seed_plan

#: Images per test set kept as PNG for the figures (rainy, ground truth, each method's output).
FIGURE_IMAGES = 4


class RainyInput(nn.Module):
    """The "Input" row's model: returns the rainy image unchanged, as its one stage."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x]


def score_table(p: Params, *specs: TableSpec) -> list[Score]:
    """Score the methods of ``specs`` (tables of one step, e.g. ``TABLE3, TABLE4``) on their
    benchmarks' test sets; writes ``run-state/scores/<step>.json`` and their rows of
    ``scores.csv``."""
    steps = {s.step for s in specs}
    if len(steps) != 1:
        raise ValueError(f"tables of one step only, got {sorted(steps)}")
    methods = list(dict.fromkeys(m.id for s in specs for m in s.methods))
    benchmarks = list(dict.fromkeys(b for s in specs for b in s.benchmarks))
    return score_methods(
        p, steps.pop(), methods, benchmarks, own_only=all(s.own_only for s in specs)
    )


def score_methods(
    p: Params, step: Step | str, methods: list[str], benchmarks: list[str], own_only: bool = False
) -> list[Score]:
    """Score ``methods`` on every test set of ``benchmarks``; writes
    ``run-state/scores/<step>.json`` and the methods' rows of the record (``scores.csv``,
    every training seed).

    ``own_only`` keeps to the profile's own test sets (Tables II and V compare trained
    variants with each other); otherwise real sets found under data_root count too.
    Released weights are scored on real test sets only (on the stand-ins they would measure
    robustness to our synthesiser, which no claim is about); a partial real set is skipped
    when the complete one is there.
    """
    sets = test_sets(p)
    runs = load_runs(p.profile) if any(MethodId(m).trained for m in methods) else []
    out, extra = [], []
    for b in benchmarks:
        chosen = [t for t in sets[b] if not own_only or t.stand_in or is_own(p, t)]
        chosen = without_partial_copies(chosen)
        for m in methods:
            if not chosen:
                out.append(Score(method=m, benchmark=b, **missing(no_data_reason(p, b))))
            for t in chosen:
                out.append(score_one(p, m, t, runs))
        for t in chosen:
            record_scenes(p.profile, t)
            if MethodId.INPUT not in methods:  # the claims' degeneracy check needs the Input
                extra.append(score_one(p, MethodId.INPUT, t, runs))
    save_scores(out + extra, work_dir(p.profile) / "scores" / f"{step}.json")
    record.update(p.profile, record_rows(p, out + extra))
    return out


def seed_runs(p: Params) -> dict[tuple[str, str], list[tuple[str, Path]]]:
    """(method, test set spec) -> (seed, per_image.csv) of every finished training seed of
    :func:`~.training.seed_plan` (each run scores its own test set when it ends)."""
    out: dict[tuple[str, str], list[tuple[str, Path]]] = {}
    for _, _, method, seed, cfg in seed_plan(p):
        run = find_run(cfg)
        csv_path = run.dir / "per_image.csv"
        if run.status == "finished" and csv_path.is_file():
            out.setdefault((method, test_spec(cfg)), []).append((str(seed), csv_path))
    return out


def record_rows(p: Params, scores: list[Score]) -> list[dict]:
    """The record's rows (:data:`.record.COLUMNS`) of every score that ran: image by image,
    a trained model's on its own test set once per finished training seed."""
    specs = {t.label: t.spec for ts in test_sets(p).values() for t in ts}
    seeds = seed_runs(p) if any(MethodId(s.method).trained for s in scores) else {}
    scenes = read_scenes(p.profile)
    root = results_root().resolve()
    rows = []
    for s in (s for s in scores if s.ran):
        trained = MethodId(s.method).trained
        runs = seeds.get((s.method, specs.get(s.test_set, "")))
        if not runs:
            runs = [("0" if trained else "", (root / s.per_image_csv).resolve())]
        # a model trained on stand-in data is a pipeline check wherever it is scored
        stand_in = s.stand_in or (trained and _trained_on_stand_in(p, s.benchmark))
        base = {
            "method": str(s.method),
            "variant": "",
            "benchmark": s.benchmark,
            "test_set": s.test_set,
            "evidence": record.evidence_of(s.method, stand_in),
        }
        where = scenes.get(s.test_set, {})
        for seed, csv_path in runs:
            for r in pd.read_csv(csv_path, dtype={"name": str}).itertuples():
                rows.append(
                    base
                    | {"seed": seed, "image": r.name, "scene": where.get(r.name, r.name)}
                    | {"psnr": r.psnr, "ssim": r.ssim}
                )
    return rows


def _trained_on_stand_in(p: Params, benchmark: str) -> bool:
    d = datasets(p).get(TRAINED_ON[benchmark])
    return d is None or config_for(p, d).data.train.startswith("embedded:")


def scene_of(ds, i: int, stand_in: bool) -> str:
    """The scene of pair ``i``: the source photo of an embedded stand-in image (its crops
    share it), else the first 12 hex digits of the sha256 of the decoded ground truth
    (Rain100L/H's 100 clean images are 91 distinct pictures; Rain1400's 14 rainy versions
    share one clean image)."""
    if stand_in:
        number = int("".join(c for c in Path(ds.pairs[i].name).stem if c.isdigit()) or 1)
        return TEST_SOURCES[(number - 1) % len(TEST_SOURCES)]
    _, clean = ds.load(i)
    return hashlib.sha256(quantize(clean).tobytes()).hexdigest()[:12]


def record_scenes(profile: str, t: TestSet) -> None:
    """Each image's scene in ``scores/scenes.json`` (test set label -> name -> scene); a
    set already recorded with the same images is kept."""
    path = scenes_path(profile)
    known = read_scenes(profile)
    ds = open_data(t.spec)
    names = [pr.name for pr in ds.pairs]
    if sorted(known.get(t.label, {})) == sorted(names):
        return
    known[t.label] = {pr.name: scene_of(ds, i, t.stand_in) for i, pr in enumerate(ds.pairs)}
    write_json(path, known)


def all_scores(profile: str) -> list[Score]:
    """Every score record of ``profile`` (all steps)."""
    res = work_dir(profile) / "scores"
    return load_scores([res / f"{s}.json" for s in Step if (res / f"{s}.json").is_file()])


@dataclass(frozen=True)
class MethodSource:
    """Where a method's outputs come from: its weights (None for the Input), the kind of
    score it gives, the detail (run, file and sha256, or why it cannot run) and a note."""

    path: Path | None
    kind: ScoreKind
    detail: str
    note: str = ""

    @property
    def provenance(self) -> str:
        return provenance_text(self.kind, self.detail)


def model_for(p: Params, method: str, b: str, runs: list[dict]) -> MethodSource:
    """The :class:`MethodSource` of ``method`` on benchmark ``b`` (kind ``not_run`` when absent)."""
    method = MethodId(method)
    if method is MethodId.INPUT:
        return MethodSource(None, "computed", "rainy input vs ground truth")
    if method.released:
        w = RELEASED[f"{method.removesuffix('-released')}-{TRAINED_ON[b]}"]
        path = find_released(w.name, p.weights_dir)
        if path is None:
            return MethodSource(None, "not_run", missing_released(w.name, p.weights_dir))
        note = "" if TRAINED_ON[b] == b else f"scored with the {w.name} weights"
        return MethodSource(path, **released(w.filename, w.sha256), note=note)
    trained_on = TRAINED_ON[b]
    run = next((r for r in runs if r["method"] == method and r["benchmark"] == trained_on), None)
    if run is None:
        why = f"profile {p.profile} trains no {BENCHMARKS[trained_on]} model"
        return MethodSource(None, "not_run", why)
    if run["status"] != "ok":
        return MethodSource(None, **missing(run["status"]))
    note = f"trained on {run['dataset']}" if run["dataset"] != b else ""
    if run["stand_in"]:
        note = f"trained on the embedded {run['dataset']} stand-in data"
    return MethodSource(restored(run["checkpoint"]), **reproduced(p.profile, run["run"]), note=note)


def score_one(p: Params, method: str, t: TestSet, runs: list[dict]) -> Score:
    """Score one method on one test set."""
    src = model_for(p, method, t.benchmark, runs)
    base = {"method": method, "benchmark": t.benchmark, "test_set": t.label}
    if src.kind == "not_run":
        return Score(**base, kind="not_run", detail=src.detail, stand_in=t.stand_in)
    if MethodId(method).released and t.stand_in:
        why = "released weights are scored on the benchmarks' own test sets, not the stand-ins"
        return Score(**base, kind="not_run", detail=why, stand_in=True)
    kind, detail = src.kind, src.detail
    if src.path is None:
        out_dir, m = score_input(p, t)
    else:
        run = eval_run(p, method, src.path, t, runs)
        out_dir, m = run.dir, run.metrics
    return Score(
        **base,
        kind=kind,
        detail=detail,
        n=m["n"],
        psnr=m["psnr"],
        ssim=m["ssim"],
        stand_in=t.stand_in,
        per_image_csv=(out_dir / "per_image.csv").relative_to(results_root().resolve()).as_posix(),
        note=src.note,
    )


def model_name(method: str) -> str:
    """The architecture a method runs (``sian``, ``prenet``, ``sian-baseline`` ...)."""
    if MethodId(method).released:
        return method.removesuffix("-released")
    return TRAINED[method][0]


def eval_settings(p: Params, method: str, t: TestSet) -> EvalConfig:
    """The eval settings ``method`` is scored with on ``t``: the profile's, except that the
    Input and the released weights score every image of a real test set (the profile's
    ``eval.max_images`` caps the stand-ins and the models trained here)."""
    ref = eval_reference(p, t.benchmark).eval
    full = not t.stand_in and not MethodId(method).trained
    return replace(ref, max_images=None) if full else ref


def eval_run(p: Params, method: str, path: Path, t: TestSet, runs: list[dict]) -> Run:
    """The training run itself on its own test set, else an evaluation-only cached run."""
    for r in runs:
        if r["method"] == method and r.get("checkpoint") == stored(path) and r["test"] == t.spec:
            return open_run(r["run"])
    base = Config(
        name=p.profile,
        dataset=t.benchmark,
        model=ModelConfig(name=model_name(method), weights=str(path)),
        eval=eval_settings(p, method, t),
    )
    base.data.test, base.data.root = t.spec, "."
    base.train.device = p.device  # where the model runs (auto: a GPU when there is one)
    return get_or_run(config_from_dict(base.to_dict()), progress=False)


def sian_stage_scores(p: Params, weights: Path, t: TestSet) -> Path | None:
    """The ``per_stage.csv`` of Table III's evaluation of the released SIAN ``weights`` on
    ``t`` (the cached run; computed when absent), or None when that run has none: what
    :func:`~.probes.run_probes` reads instead of a second pass over the images."""
    run = eval_run(p, MethodId.SIAN_RELEASED, weights, t, [])
    path = run.dir / "per_stage.csv"
    return path if path.is_file() else None


def score_input(p: Params, t: TestSet) -> tuple[Path, dict]:
    """The Input row: the rainy image scored as if it were the output (cached per data)."""
    ds = open_data(t.spec)
    out_dir = results_dir(p.profile) / "eval" / "input" / t.id
    cached = out_dir / "metrics.json"
    max_images = eval_settings(p, MethodId.INPUT, t).max_images
    key = {"data": ds.manifest_sha256(), "max_images": max_images}
    if cached.is_file() and json.loads(cached.read_text()).get("key") == key:
        return out_dir, json.loads(cached.read_text())
    res = evaluate(RainyInput(), ds, out_dir, max_images=max_images)
    keep_ground_truth(ds, out_dir)
    m = {**res.summary(), "key": key, "test": t.spec}
    write_json(cached, m)
    return out_dir, m


def keep_ground_truth(ds, out_dir: Path) -> None:
    """PNGs of the first ground truths, for the figures (which read results/ only)."""
    for i in range(min(FIGURE_IMAGES, len(ds))):
        _, clean = ds.load(i)
        write_png(out_dir / "ground_truth" / f"{Path(ds.pairs[i].name).stem}.png", quantize(clean))
