"""What the released SIAN weights can show on the real test sets (chapter 03, judged in 08).

- **Stage by stage** (Fig. 6: "the quality of derained image is improved gradually stage by
  stage"): the PSNR/SSIM of every stage output X_1 ... X_6 on every image, read from Table
  III's own evaluation of the released SIAN (``per_stage.csv``: every stage from the pass that
  scores the last), so they cost nothing more.
- **Inference-time knock-outs of the attention** (:data:`WHOLE`, :func:`variants`): the same
  released model with its attention maps M_(s) changed at inference, nothing retrained:
  ``zero`` (M = 0, the paper's "without attention" but without retraining), ``mean`` (each
  map replaced by its mean over the image: it keeps its average gain, loses where it points),
  ``shuffle`` (its positions permuted, one fixed permutation), ``roll`` (shifted by half the
  image); ``mean`` at one scale or one stage only; and ``dog`` (the DoG input of the mask
  convolution set to zero: the map no longer sees the scale space). Done by wrapping each
  branch's ``attention_mask`` on the loaded instance, not by changing the model's code. The
  size of the effect depends on the knock-out chosen: these measure the released model's
  sensitivity, not Table V's retrained ablation, and no paper number is held against them.

The knock-outs run on a fixed subset of distinct scenes per test set (:data:`SCENES`: every
image in the paper profile), each (weights, test set, variant, subset) computed once and
cached under ``results/<profile>/eval/probes/`` (ignored); the rows go into the record
``scores.csv`` as method ``sian-released`` with variant ``stage-k`` or ``ko-...``.
"""

from __future__ import annotations

import hashlib
import io
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.sources import open_data
from ..fsutil import atomic_write_text
from ..metrics import score_pair
from ..tables import FULL_TEST_SIZE, MethodId
from ..weights import RELEASED, find_released, load_model
from . import record
from .paths import read_scenes, results_dir
from .plan import TRAINED_ON, Params, TestSet, test_sets

#: Bump when what a probe computes changes (the cache key holds it).
VERSION = 3
#: Benchmarks probed (Rain100L and Rain100H: the sets the paper's Fig. 6 / Table V use).
BENCHMARKS = ("rain100l", "rain100h")
#: Whole-model knock-outs, on every probed benchmark.
WHOLE = ("zero", "mean", "shuffle", "roll")
#: Distinct scenes per test set the knock-outs run on (None: every image).
SCENES: dict[str, int | None] = {"smoke": 2, "quick": 30, "paper": None}
KINDS: dict[str, str] = {
    "zero": "every attention map is set to 0 (M = 0, not retrained)",
    "mean": "every attention map is replaced by its mean over the image",
    "shuffle": "every attention map's positions are shuffled",
    "roll": "every attention map is shifted by half the image",
    "dog": "the attention's DoG input is set to 0",
}


def stage_variant(k: int) -> str:
    """The record's variant of the released SIAN's stage ``k`` output (1-based)."""
    return f"stage-{k}"


def variants(benchmark: str, scales: tuple[int, ...] = (1, 2, 4), stages: int = 6) -> list[str]:
    """The knock-outs run on ``benchmark``: :data:`WHOLE` on each; on the first of
    :data:`BENCHMARKS` also ``mean`` per scale and per stage, and the DoG input removed."""
    out = [f"ko-{k}" for k in WHOLE]
    if benchmark == BENCHMARKS[0]:
        out += [f"ko-mean-scale-{s}" for s in scales]
        out += [f"ko-mean-stage-{k}" for k in range(1, stages + 1)]
        out.append("ko-dog")
    return out


def describe(variant: str) -> str:
    """The knock-out ``variant`` in words."""
    kind, *where = variant.removeprefix("ko-").split("-")
    if not where:
        return KINDS[kind]
    return f"the attention maps of {where[0]} {where[1]} only are knocked out ({kind})"


def _knocked(mask: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "zero":
        return torch.zeros_like(mask)
    if kind == "mean":
        return mask.mean(dim=(2, 3), keepdim=True).expand_as(mask)
    h, w = mask.shape[-2:]
    if kind == "roll":
        return torch.roll(mask, shifts=(h // 2, w // 2), dims=(2, 3))
    if kind == "shuffle":
        perm = torch.randperm(h * w, generator=torch.Generator().manual_seed(0))
        return mask.flatten(2)[..., perm].view_as(mask)
    raise ValueError(f"unknown knock-out {kind!r}")


def knock_out(model: torch.nn.Module, variant: str) -> torch.nn.Module:
    """``model`` (a loaded SIAN) with the knock-out ``variant`` applied at inference."""
    parts = variant.removeprefix("ko-").split("-")
    kind = parts[0]
    scale = int(parts[2]) if len(parts) == 3 and parts[1] == "scale" else None
    stage = int(parts[2]) if len(parts) == 3 and parts[1] == "stage" else None
    calls: dict[int, int] = {}
    model.register_forward_pre_hook(lambda *_: calls.clear())
    for branch in model.cfa.branches:
        if branch.mask is None:
            continue

        def masked(self, dog, original=branch.attention_mask):
            calls[self.scale] = calls.get(self.scale, 0) + 1  # the stage this call is in
            hit = (scale is None or self.scale == scale) and (
                stage is None or calls[self.scale] == stage
            )
            if not hit:
                return original(dog)
            if kind == "dog":
                return original(torch.zeros_like(dog))
            return _knocked(original(dog), kind)

        branch.attention_mask = types.MethodType(masked, branch)
    return model


def subset(names: list[str], scenes: dict[str, str], n: int | None) -> list[str]:
    """``n`` images of distinct scenes spread evenly over ``names`` (sorted), the first image
    of each scene; all of ``names`` when ``n`` is None."""
    if n is None:
        return sorted(names)
    first: dict[str, str] = {}
    for name in sorted(names):
        first.setdefault(scenes.get(name, name), name)
    distinct = list(first.values())
    if n >= len(distinct):
        return distinct
    idx = sorted({int(round(v)) for v in np.linspace(0, len(distinct) - 1, n)})
    return [distinct[i] for i in idx]


def without_partial_copies(sets: list[TestSet]) -> list[TestSet]:
    """``sets`` of one benchmark without its partial real sets when a complete real set is
    there (the 4-pair Rain100L sample beside the fetched 100 pairs adds nothing)."""
    real = [t for t in sets if not t.stand_in]
    full = [t for t in real if len(open_data(t.spec)) >= FULL_TEST_SIZE[t.benchmark]]
    if not full:
        return sets
    return [t for t in sets if t.stand_in or t in full]


@torch.inference_mode()
def knocked_scores(weights: Path, t: TestSet, variant: str, images: list[str]) -> list[dict]:
    """Per image of ``images``: the last stage's scores of the released SIAN ``weights`` with
    the knock-out ``variant``."""
    ds = open_data(t.spec)
    model = knock_out(load_model(weights, allow_download=False).model.eval(), variant)
    index = {p.name: i for i, p in enumerate(ds.pairs)}
    rows = []
    for name in images:
        rainy, clean = ds.load(index[name])
        x = torch.from_numpy(rainy.copy()).permute(2, 0, 1)[None].float()
        ps, ss = score_pair(model(x)[-1][0].permute(1, 2, 0).numpy(), clean)
        rows.append({"image": name, "psnr": ps, "ssim": ss})
    return rows


def _cached(path: Path, compute: Callable[[], list[dict]]) -> pd.DataFrame:
    if not path.is_file():
        out = io.StringIO()
        pd.DataFrame(compute()).to_csv(out, index=False, float_format="%.6f")
        atomic_write_text(path, out.getvalue())
    return pd.read_csv(path, dtype={"image": str})


def run_probes(
    p: Params,
    stage_csv: Callable[[Params, Path, TestSet], Path | None],
    log: Callable[[str], None] = print,
) -> int:
    """Stage scores and knock-outs of the released SIAN on the real Rain100L/H test sets
    found, into the record; returns the rows written (0 without weights or a real set).
    ``stage_csv``: the ``per_stage.csv`` of the evaluation of the weights on a test set
    (``scoring.sian_stage_scores``: Table III's own pass)."""
    scenes = read_scenes(p.profile)
    n_scenes = SCENES.get(p.profile, SCENES["quick"])
    rows = []
    for b in BENCHMARKS:
        w = RELEASED[f"sian-{TRAINED_ON[b]}"]
        weights = find_released(w.name, p.weights_dir)
        for t in (t for t in without_partial_copies(test_sets(p)[b]) if not t.stand_in):
            if weights is None:
                log(f"not run: probes on {t.label}: released {w.filename} not found")
                continue
            where = scenes.get(t.label, {})
            base = {
                "method": str(MethodId.SIAN_RELEASED),
                "benchmark": b,
                "test_set": t.label,
                "evidence": record.evidence_of(MethodId.SIAN_RELEASED, False),
                "seed": "",
            }
            stage_path = stage_csv(p, weights, t)
            if stage_path is None:
                log(f"not run: stage scores on {t.label}: its evaluation kept no per_stage.csv")
            stages = pd.read_csv(stage_path, dtype={"name": str}) if stage_path else None
            for r in stages.itertuples() if stages is not None else ():
                rows.append(
                    base
                    | {"variant": stage_variant(int(r.stage)), "image": r.name}
                    | {"scene": where.get(r.name, r.name), "psnr": r.psnr, "ssim": r.ssim}
                )
            chosen = subset([pr.name for pr in open_data(t.spec).pairs], where, n_scenes)
            data = open_data(t.spec).manifest_sha256()
            for v in variants(b):
                key = f"{VERSION}|{w.sha256}|{data}|{v}|{','.join(chosen)}"
                digest = hashlib.sha256(key.encode()).hexdigest()[:16]
                path = results_dir(p.profile) / "eval" / "probes" / f"{b}-{v}-{digest}.csv"
                if not path.is_file():
                    log(f"probes: {v} on {t.label}, {len(chosen)} images")
                ko = _cached(path, lambda a=(weights, t, v, chosen): knocked_scores(*a))
                for r in ko.itertuples():
                    rows.append(
                        base
                        | {"variant": v, "image": r.image, "scene": where.get(r.image, r.image)}
                        | {"psnr": r.psnr, "ssim": r.ssim}
                    )
    if rows:
        record.update(p.profile, rows)
    return len(rows)
