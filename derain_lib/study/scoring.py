"""Steps 02-04: score methods on test sets, one :class:`~derain_lib.tables.Score` each.

A method is ``input`` (the rainy image itself), ``<family>-released`` (the authors'
weights) or a trained method of :data:`~.plan.TRAINED` (a run of notebook 01). Model
evaluations go through the run cache; the Input row is cached in its eval folder.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ..config import Config, EvalConfig, ModelConfig, config_from_dict
from ..data.io import write_png
from ..data.sources import open_data
from ..evaluate import evaluate
from ..metrics import quantize
from ..runs import Run, get_or_run, open_run, restored, results_root, stored
from ..tables import BENCHMARKS, Score, load_scores, not_run, released, reproduced, save_scores
from ..weights import RELEASED, find_released, missing_released
from .paths import results_dir, write_json
from .plan import (
    TRAINED,
    TRAINED_ON,
    Params,
    TestSet,
    eval_reference,
    is_own,
    no_data_reason,
    test_sets,
)
from .training import load_runs

#: Images per test set kept as PNG for the figures (rainy, ground truth, each method's output).
FIGURE_IMAGES = 4


class RainyInput(nn.Module):
    """The "Input" row's model: returns the rainy image unchanged, as its one stage."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x]


def score(
    p: Params, step: str, methods: list[str], benchmarks: list[str], own_only: bool = False
) -> list[Score]:
    """Score ``methods`` on every test set of ``benchmarks``; writes ``scores/<step>.json``.

    ``own_only`` keeps to the profile's own test sets (Tables II and V compare trained
    variants with each other); otherwise real sets found under data_root count too.
    """
    sets = test_sets(p)
    runs = load_runs(p.profile) if any(m in TRAINED for m in methods) else []
    out = []
    for b in benchmarks:
        chosen = [t for t in sets[b] if not own_only or t.stand_in or is_own(p, t)]
        for m in methods:
            if not chosen:
                out.append(Score(m, b, no_data_reason(p, b)))
            for t in chosen:
                out.append(score_one(p, m, t, runs))
    save_scores(out, results_dir(p.profile) / "scores" / f"{step}.json")
    return out


def all_scores(profile: str) -> list[Score]:
    """Every score record of ``profile`` (all steps)."""
    return load_scores(sorted((results_dir(profile) / "scores").glob("*.json")))


def model_for(p: Params, method: str, b: str, runs: list[dict]) -> tuple[Path | None, str, str]:
    """(weights file or None for the input, provenance, note) or (None, 'not run: ..', '')."""
    if method == "input":
        return None, "computed (rainy input vs ground truth)", ""
    if method.endswith("-released"):
        w = RELEASED[f"{method.removesuffix('-released')}-{TRAINED_ON[b]}"]
        path = find_released(w.name, p.weights_dir)
        if path is None:
            return None, not_run(missing_released(w.name, p.weights_dir)), ""
        note = "" if TRAINED_ON[b] == b else f"scored with the {w.name} weights"
        return path, released(w.filename, w.sha256), note
    trained_on = TRAINED_ON[b]
    run = next((r for r in runs if r["method"] == method and r["benchmark"] == trained_on), None)
    if run is None:
        return None, not_run(f"profile {p.profile} trains no {BENCHMARKS[trained_on]} model"), ""
    if run["status"] != "ok":
        return None, run["status"], ""
    note = f"trained on {run['dataset']}" if run["dataset"] != b else ""
    if run["stand_in"]:
        note = f"trained on the embedded {run['dataset']} stand-in data"
    return restored(run["checkpoint"]), reproduced(p.profile, run["run"]), note


def score_one(p: Params, method: str, t: TestSet, runs: list[dict]) -> Score:
    """Score one method on one test set."""
    path, provenance, note = model_for(p, method, t.benchmark, runs)
    if provenance.startswith("not run"):
        return Score(method, t.benchmark, provenance, t.label, stand_in=t.stand_in)
    if path is None:
        out_dir, m = score_input(p, t)
    else:
        run = eval_run(p, method, path, t, runs)
        out_dir, m = run.dir, run.metrics
    return Score(
        method,
        t.benchmark,
        provenance,
        t.label,
        m["n"],
        m["psnr"],
        m["ssim"],
        t.stand_in,
        (out_dir / "per_image.csv").relative_to(results_root().resolve()).as_posix(),
        note,
    )


def model_name(method: str) -> str:
    """The architecture a method runs (``sian``, ``prenet``, ``sian-baseline`` ...)."""
    if method.endswith("-released"):
        return method.removesuffix("-released")
    return TRAINED[method][0]


def eval_settings(p: Params, method: str, t: TestSet) -> EvalConfig:
    """The eval settings ``method`` is scored with on ``t``: the profile's, except that the
    Input and the released weights score every image of a real test set (the profile's
    ``eval.max_images`` caps the stand-ins and the models trained here)."""
    ref = eval_reference(p, t.benchmark).eval
    full = not t.stand_in and (method == "input" or method.endswith("-released"))
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


def score_input(p: Params, t: TestSet) -> tuple[Path, dict]:
    """The Input row: the rainy image scored as if it were the output (cached per data)."""
    ds = open_data(t.spec)
    out_dir = results_dir(p.profile) / "eval" / "input" / t.id
    cached = out_dir / "metrics.json"
    max_images = eval_settings(p, "input", t).max_images
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
