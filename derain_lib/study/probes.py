"""Claims the released SIAN weights can test on the full test sets (chapter 03, judged in 08).

- **Stage by stage** (Fig. 6: "the quality of derained image is improved gradually stage by
  stage"): the PSNR/SSIM of every stage output X_1 ... X_6 on every image, from one forward
  pass per image (SIAN returns all its stages).
- **Attention knock-out** (Table V credits the attention with +0.12 / +0.13 dB): the same
  released model with each attention map M_(s) replaced by its own mean over the image (per
  channel, per stage: the map keeps its average gain but loses where it points; the rest of
  the network unchanged). Done by wrapping each branch's ``attention_mask`` on the loaded
  instance, not by changing the model's code. If the PSNR does not drop, the trained network
  does not use where its attention points.

In the pipeline the stage scores come from Table III's own evaluation of the released SIAN
(an evaluation run writes every stage's scores, ``per_stage.csv``, from the pass that scores
its last stage; :func:`run_probes` ``stage_csv``), so a probe costs one forward pass per
image, the knock-out's. Both are computed
once per (weights, test set) and cached under
``results/<profile>/eval/probes/`` (ignored); their per-image rows are committed as
``scores/probes_per_image.csv`` (the per-image columns of :mod:`.claims`), with method ids
:func:`stage_id` and :data:`KNOCKOUT`.
"""

from __future__ import annotations

import hashlib
import io
import types
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from ..data.sources import open_data
from ..fsutil import atomic_write_text
from ..metrics import score_pair
from ..tables import FULL_TEST_SIZE, MethodId
from ..weights import RELEASED, find_released, load_model
from .paths import results_dir
from .plan import TRAINED_ON, Params, TestSet, test_sets

#: Bump when what a probe computes changes (the cache key holds it).
VERSION = 2
#: Benchmarks probed (Rain100L and Rain100H: the sets the paper's Fig. 6 / Table V use).
BENCHMARKS = ("rain100l", "rain100h")
KNOCKOUT = f"{MethodId.SIAN_RELEASED}/attention-mean"
COLUMNS = [
    *("method", "benchmark", "test_set", "stand_in", "seed"),
    *("image", "scene", "psnr", "ssim"),
]


def stage_id(k: int) -> str:
    """The method id of the released SIAN's stage ``k`` output (1-based)."""
    return f"{MethodId.SIAN_RELEASED}/stage-{k}"


def probes_path(profile: str) -> Path:
    return results_dir(profile) / "scores" / "probes_per_image.csv"


def without_partial_copies(sets: list[TestSet]) -> list[TestSet]:
    """``sets`` of one benchmark without its partial real sets when a complete real set is
    there (the 4-pair Rain100L sample beside the fetched 100 pairs adds nothing)."""
    real = [t for t in sets if not t.stand_in]
    full = [t for t in real if len(open_data(t.spec)) >= FULL_TEST_SIZE[t.benchmark]]
    if not full:
        return sets
    return [t for t in sets if t.stand_in or t in full]


def _mean_attention(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every attention map replaced by its mean over the image."""
    for branch in model.cfa.branches:
        if branch.mask is None:
            continue
        original = branch.attention_mask

        def mean_mask(self, dog, original=original):
            m = original(dog)
            return m.mean(dim=(2, 3), keepdim=True).expand_as(m)

        branch.attention_mask = types.MethodType(mean_mask, branch)
    return model


@torch.inference_mode()
def image_rows(
    weights: Path, t: TestSet, scenes: dict[str, str], stage_csv: Path | None = None
) -> list[dict]:
    """Per image: every stage's scores and the knock-out's last stage. ``stage_csv``: an
    evaluation's ``per_stage.csv`` of these weights on ``t`` (the stage scores are read
    from it, not recomputed)."""
    ds = open_data(t.spec)
    stage_scores = pd.read_csv(stage_csv) if stage_csv is not None else None
    if stage_scores is not None and set(stage_scores.name) != {p.name for p in ds.pairs}:
        raise ValueError(f"{stage_csv}: scores other images than {t.label}")
    # the intact model only where the stages are not read from an evaluation
    intact = (
        load_model(weights, allow_download=False).model.eval() if stage_scores is None else None
    )
    knocked = _mean_attention(load_model(weights, allow_download=False).model.eval())
    rows = []
    base = {"benchmark": t.benchmark, "test_set": t.label, "stand_in": t.stand_in, "seed": ""}
    for i, pair in enumerate(ds.pairs):
        rainy, clean = ds.load(i)
        x = torch.from_numpy(rainy.copy()).permute(2, 0, 1)[None].float()
        name = pair.name
        scene = scenes.get(name, name)
        if intact is not None:
            stages = [score_pair(y[0].permute(1, 2, 0).numpy(), clean) for y in intact(x)]
        else:
            mine = stage_scores[stage_scores.name == name].sort_values("stage")
            stages = list(zip(mine.psnr, mine.ssim, strict=True))
        for k, (ps, ss) in enumerate(stages, 1):
            rows.append({**base, "method": stage_id(k), "image": name, "scene": scene,
                         "psnr": ps, "ssim": ss})  # fmt: skip
        ps, ss = score_pair(knocked(x)[-1][0].permute(1, 2, 0).numpy(), clean)
        rows.append({**base, "method": KNOCKOUT, "image": name, "scene": scene,
                     "psnr": ps, "ssim": ss})  # fmt: skip
    return rows


def run_probes(
    p: Params,
    scenes: dict[str, dict[str, str]],
    log=print,
    stage_csv: Callable[[Params, Path, TestSet], Path | None] | None = None,
) -> Path | None:
    """Probe the released SIAN on the real Rain100L/H test sets found (cached); writes
    ``scores/probes_per_image.csv``; None when no real set or no weights are there.
    ``scenes``: test set label -> image -> scene (``claims.read_scenes``). ``stage_csv``:
    where an evaluation of the weights on the set already holds every stage's scores
    (``scoring.sian_stage_scores``: Table III's own pass); without it, or where it returns
    None, the stages are computed here."""
    frames = []
    for b in BENCHMARKS:
        w = RELEASED[f"sian-{TRAINED_ON[b]}"]
        weights = find_released(w.name, p.weights_dir)
        for t in (t for t in without_partial_copies(test_sets(p)[b]) if not t.stand_in):
            if weights is None:
                log(f"not run: probes on {t.label}: released {w.filename} not found")
                continue
            stages = stage_csv(p, weights, t) if stage_csv is not None else None
            source = stages.parent.name if stages is not None else "own"  # the eval run's key
            key = hashlib.sha256(
                f"{VERSION}|{w.sha256}|{open_data(t.spec).manifest_sha256()}|{source}".encode()
            ).hexdigest()[:16]
            cached = results_dir(p.profile) / "eval" / "probes" / f"{b}-{key}.csv"
            if not cached.is_file():
                log(f"probes: SIAN stages 1-6 and attention knock-out on {t.label}")
                out = io.StringIO()
                rows = image_rows(weights, t, scenes.get(t.label, {}), stages)
                pd.DataFrame(rows, columns=COLUMNS).to_csv(out, index=False, float_format="%.6f")
                atomic_write_text(cached, out.getvalue())
            frames.append(pd.read_csv(cached, keep_default_na=False, dtype={"seed": str}))
    if not frames:
        return None
    out = io.StringIO()
    pd.concat(frames, ignore_index=True).to_csv(out, index=False, float_format="%.6f")
    return atomic_write_text(probes_path(p.profile), out.getvalue())
