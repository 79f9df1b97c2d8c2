"""Steps 02-04: the Input, released weights and trained methods scored into the record."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict, namedtuple
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .. import tables
from ..config import Config, EvalConfig, ModelConfig, config_from_dict
from ..data.embedded import TEST_SOURCES
from ..data.io import write_png
from ..data.sources import open_data
from ..evaluate import evaluate
from ..metrics import quantize
from ..runs import Run, find_run, get_or_run, open_run, restored, results_root, stored
from ..tables import MethodId, Score, missing
from ..weights import RELEASED, find_released, missing_released
from . import plan, record
from .paper import Step, TableSpec
from .plan import TRAINED, TRAINED_ON, Params, TestSet
from .probes import without_partial_copies
from .training import load_runs, seed_plan


class RainyInput(nn.Module):
    """The "Input" row's model: returns the rainy image unchanged, as its one stage."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x]


def score_table(p: Params, *specs: TableSpec) -> list[Score]:
    """The methods of one step's tables (e.g. ``TABLE3, TABLE4``) scored, recorded and saved."""
    methods = list(dict.fromkeys(m.id for s in specs for m in s.methods))
    own_only, sets = all(s.own_only for s in specs), plan.test_sets(p)
    runs = load_runs(p.profile) if any(MethodId(m).trained for m in methods) else []
    out, extra = [], []
    for b in dict.fromkeys(b for s in specs for b in s.benchmarks):
        chosen = [t for t in sets[b] if not own_only or t.source == "profile"]
        if not (chosen := without_partial_copies(chosen)):
            out += [Score(method=m, benchmark=b, **missing(plan.no_data_reason(p, b)))
                    for m in methods]  # fmt: skip
        out += [score_one(p, m, t, runs) for m in methods for t in chosen]
        if MethodId.INPUT not in methods:  # the claims' degeneracy check needs the Input
            extra += [score_one(p, MethodId.INPUT, t, runs) for t in chosen]
    tables.save_scores(out + extra, plan.work_dir(p.profile) / "scores" / f"{specs[0].step}.json")
    record.update(p.profile, record_rows(p, out + extra))
    return out


def record_rows(p: Params, scores: list[Score]) -> list[dict]:
    """The record's rows of the scores that ran, per image (and per training seed) and scene: an
    embedded image's source photo, else its ground truth's sha256 (``scenes.json``)."""
    sets = {t.label: t for ts in plan.test_sets(p).values() for t in ts}
    trained = [MethodId(s.method).trained for s in scores]
    seeds: defaultdict[tuple[str, str], list[tuple[str, Path]]] = defaultdict(list)
    for _, _, method, cfg in seed_plan(p) if any(trained) else ():
        if (run := find_run(cfg)).status == "finished" and (run.dir / "per_image.csv").is_file():
            seeds[(method, plan.test_spec(cfg))].append((str(cfg.train.seed), run.dir))
    # a model trained on stand-in data is a pipeline check wherever it is scored
    real = {b for b, d in plan.datasets(p).items()
            if not plan.config_for(p, d).data.train.startswith("embedded:")}  # fmt: skip
    scenes, rows = plan.read_scenes(p.profile), []
    for t in (sets[label] for label in dict.fromkeys(s.test_set for s in scores if s.ran)):
        ds = open_data(t.spec)
        if sorted(scenes.get(t.label, {})) == sorted(pr.name for pr in ds.pairs):
            continue  # known
        known = scenes[t.label] = {}
        for i, pr in enumerate(ds.pairs):
            if t.stand_in:
                number = int("".join(c for c in Path(pr.name).stem if c.isdigit()) or 1)
                known[pr.name] = TEST_SOURCES[(number - 1) % len(TEST_SOURCES)]
            else:
                known[pr.name] = hashlib.sha256(quantize(ds.load(i)[1]).tobytes()).hexdigest()[:12]
        plan.write_json(plan.work_dir(p.profile) / "scenes.json", scenes)
    for s, t in zip(scores, trained, strict=True):
        if not s.ran:
            continue
        folder = (results_root().resolve() / s.per_image_csv).parent
        stand_in = s.stand_in or (t and TRAINED_ON[s.benchmark] not in real)
        evidence = record.evidence_of(s.method, stand_in)
        base = {"method": str(s.method), "variant": "", "benchmark": s.benchmark,
                "test_set": s.test_set, "evidence": evidence}  # fmt: skip
        where = scenes.get(s.test_set, {})
        taken = seeds.get((s.method, sets[s.test_set].spec)) or [("0" if t else "", folder)]
        for seed, run_dir in taken:
            df = pd.read_csv(run_dir / "per_image.csv", dtype={"name": str})
            rows += [base | {"seed": seed, "image": r.name, "scene": where.get(r.name, r.name),
                             "psnr": r.psnr, "ssim": r.ssim} for r in df.itertuples()]  # fmt: skip
    return rows


def all_scores(profile: str) -> list[Score]:
    """Every score record of ``profile`` (all steps)."""
    res = plan.work_dir(profile) / "scores"
    return tables.load_scores([res / f"{s}.json" for s in Step if (res / f"{s}.json").is_file()])


#: A method's weights (a Path; None for the Input), kind of score (``ScoreKind``), detail and note.
MethodSource = namedtuple("MethodSource", "path kind detail note", defaults=[""])


def model_for(p: Params, method: str, b: str, runs: list[dict]) -> MethodSource:
    """The :class:`MethodSource` of ``method`` on benchmark ``b`` (kind ``not_run`` when absent)."""
    method, trained_on = MethodId(method), TRAINED_ON[b]
    if method is MethodId.INPUT:
        return MethodSource(None, "computed", "rainy input vs ground truth")
    if method.released:
        w = RELEASED[f"{method.removesuffix('-released')}-{trained_on}"]
        if (path := find_released(w.name, p.weights_dir)) is None:
            return MethodSource(None, "not_run", missing_released(w.name, p.weights_dir))
        note = "" if trained_on == b else f"scored with the {w.name} weights"
        return MethodSource(path, "released", f"{w.filename}, sha256 {w.sha256}", note)
    run = next((r for r in runs if r["method"] == method and r["benchmark"] == trained_on), None)
    if run is None:
        why = f"profile {p.profile} trains no {tables.BENCHMARKS[trained_on]} model"
        return MethodSource(None, "not_run", why)
    if run["status"] != "ok":
        return MethodSource(None, **missing(run["status"]))
    note = f"trained on {run['dataset']}" if run["dataset"] != b else ""
    note = f"trained on the embedded {run['dataset']} stand-in data" if run["stand_in"] else note
    return MethodSource(
        restored(run["checkpoint"]), "reproduced", f"{p.profile}, run {run['run']}", note
    )


def score_one(p: Params, method: str, t: TestSet, runs: list[dict]) -> Score:
    """Score one method on one test set (released weights never on the stand-ins)."""
    src = model_for(p, method, t.benchmark, runs)
    base = {"method": method, "benchmark": t.benchmark, "test_set": t.label, "stand_in": t.stand_in}
    if MethodId(method).released and t.stand_in and src.kind != "not_run":
        why = "released weights are scored on the benchmarks' own test sets, not the stand-ins"
        src = src._replace(kind="not_run", detail=why)
    if src.kind == "not_run":
        return Score(**base, kind="not_run", detail=src.detail)
    if src.path is not None:
        out_dir, m = (run := eval_run(p, method, src.path, t, runs)).dir, run.metrics
    else:  # the Input: the rainy image scored as if it were the output (cached per data)
        ds, out_dir = open_data(t.spec), plan.results_dir(p.profile) / "eval" / "input" / t.id
        max_images = eval_settings(p, MethodId.INPUT, t).max_images
        key = {"data": ds.manifest_sha256(), "max_images": max_images}
        cached = out_dir / "metrics.json"
        if (m := json.loads(cached.read_text()) if cached.is_file() else {}).get("key") != key:
            res = evaluate(RainyInput(), ds, out_dir, max_images=max_images)
            for i in range(min(4, len(ds))):  # ground truths of the images the figures show
                gt = out_dir / "ground_truth" / f"{Path(ds.pairs[i].name).stem}.png"
                write_png(gt, quantize(ds.load(i)[1]))
            plan.write_json(cached, m := {**res.summary(), "key": key, "test": t.spec})
    csv = (out_dir / "per_image.csv").relative_to(results_root().resolve()).as_posix()
    return Score(**base, kind=src.kind, detail=src.detail, n=m["n"], psnr=m["psnr"],
                 ssim=m["ssim"], per_image_csv=csv, note=src.note)  # fmt: skip


def eval_settings(p: Params, method: str, t: TestSet) -> EvalConfig:
    """The profile's eval settings; the Input and released weights score all of a real set."""
    ds = plan.datasets(p)
    ref = plan.config_for(p, ds.get(t.benchmark) or next(iter(ds.values()))).eval
    return ref if t.stand_in or MethodId(method).trained else replace(ref, max_images=None)


def eval_run(p: Params, method: str, path: Path, t: TestSet, runs: list[dict]) -> Run:
    """The training run itself on its own test set, else an evaluation-only cached run."""
    for r in runs:
        if r["method"] == method and r.get("checkpoint") == stored(path) and r["test"] == t.spec:
            return open_run(r["run"])
    name = method.removesuffix("-released") if MethodId(method).released else TRAINED[method][0]
    base = Config(name=p.profile, dataset=t.benchmark, eval=eval_settings(p, method, t),
                  model=ModelConfig(name=name, weights=str(path)))  # fmt: skip
    base.data.test, base.data.root, base.train.device = t.spec, ".", p.device  # device: auto, ...
    return get_or_run(config_from_dict(base.to_dict()), progress=False)


def sian_stage_scores(p: Params, weights: Path, t: TestSet) -> Path | None:
    """The ``per_stage.csv`` of Table III's evaluation of released SIAN ``weights`` on ``t``."""
    path = eval_run(p, MethodId.SIAN_RELEASED, weights, t, []).dir / "per_stage.csv"
    return path if path.is_file() else None
