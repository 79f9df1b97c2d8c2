"""Chapter 03: the released SIAN's stage scores and its attention knocked out at inference."""

from __future__ import annotations

import functools
import hashlib
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
from .plan import PLAN, TRAINED_ON, Params, TestSet, read_scenes, results_dir, test_sets

VERSION = 3  # in the cache key: bumped when what a probe computes changes
BENCHMARKS = ("rain100l", "rain100h")  # the sets the paper's Fig. 6 and Table V use
SCENES: dict[str, int | None] = PLAN["probe_scenes"]  # distinct scenes per test set probed
KINDS: dict[str, str] = PLAN["knock_outs"]  # each kind of knock-out, in words


def variants(benchmark: str, scales: tuple[int, ...] = (1, 2, 4), stages: int = 6) -> list[str]:
    """The knock-outs on ``benchmark``: whole-model; on Rain100L per scale, stage and DoG too."""
    out = [f"ko-{k}" for k in ("zero", "mean", "shuffle", "roll")]
    if benchmark == BENCHMARKS[0]:
        out += [f"ko-mean-scale-{s}" for s in scales]
        out += [f"ko-mean-stage-{k}" for k in range(1, stages + 1)] + ["ko-dog"]
    return out


def describe(variant: str) -> str:
    """The knock-out ``variant`` in words."""
    kind, *where = variant.removeprefix("ko-").split("-")
    if not where:
        return KINDS[kind]
    return f"the attention maps of {where[0]} {where[1]} only are knocked out ({kind})"


def knock_out(model: torch.nn.Module, variant: str) -> torch.nn.Module:
    """``model`` (a loaded SIAN) with the knock-out ``variant`` applied at inference."""
    kind, *where = variant.removeprefix("ko-").split("-")
    scale, stage = (int(where[1]) if where and where[0] == w else None for w in ("scale", "stage"))
    calls: dict[int, int] = {}
    model.register_forward_pre_hook(lambda *_: calls.clear())

    def masked(self, dog: torch.Tensor, original: Callable) -> torch.Tensor:
        calls[self.scale] = calls.get(self.scale, 0) + 1  # the stage this call is in
        if scale not in (None, self.scale) or stage not in (None, calls[self.scale]):
            return original(dog)
        if kind == "dog":
            return original(torch.zeros_like(dog))
        h, w = (mask := original(dog)).shape[-2:]
        if kind == "zero":
            return torch.zeros_like(mask)
        if kind == "mean":
            return mask.mean(dim=(2, 3), keepdim=True).expand_as(mask)
        if kind == "roll":
            return torch.roll(mask, shifts=(h // 2, w // 2), dims=(2, 3))
        perm = torch.randperm(h * w, generator=torch.Generator().manual_seed(0))  # shuffle
        return mask.flatten(2)[..., perm].view_as(mask)

    for branch in (b for b in model.cfa.branches if b.mask is not None):
        branch.attention_mask = functools.partial(masked, branch, original=branch.attention_mask)
    return model


def subset(names: list[str], scenes: dict[str, str], n: int | None) -> list[str]:
    """``n`` images of distinct scenes spread evenly over ``names`` (all when ``n`` is None)."""
    if n is None:
        return sorted(names)
    distinct = sorted({scenes.get(n, n): n for n in sorted(names, reverse=True)}.values())
    idx = {round(v) for v in np.linspace(0, len(distinct) - 1, min(n, len(distinct)))}
    return [distinct[i] for i in sorted(idx)]


def without_partial_copies(sets: list[TestSet]) -> list[TestSet]:
    """``sets`` of one benchmark without its partial real sets beside a complete real set."""
    real = [t for t in sets if not t.stand_in]
    full = [t for t in real if len(open_data(t.spec)) >= FULL_TEST_SIZE[t.benchmark]]
    return [t for t in sets if t.stand_in or t in full] if full else sets


@torch.inference_mode()
def knocked_scores(weights: Path, t: TestSet, variant: str, images: list[str]) -> list[dict]:
    """The last stage's scores, per image, of SIAN ``weights`` with the knock-out ``variant``."""
    ds = open_data(t.spec)
    model = knock_out(load_model(weights, allow_download=False).model.eval(), variant)
    index, rows = {p.name: i for i, p in enumerate(ds.pairs)}, []
    for name in images:
        rainy, clean = ds.load(index[name])
        x = torch.from_numpy(rainy.copy()).permute(2, 0, 1)[None].float()
        ps, ss = score_pair(model(x)[-1][0].permute(1, 2, 0).numpy(), clean)
        rows.append({"image": name, "psnr": ps, "ssim": ss})
    return rows


def run_probes(p: Params, stage_csv: Callable[[Params, Path, TestSet], Path | None]) -> int:
    """Stage scores (``stage_csv``) and knock-outs (cached) into the record: the rows written."""
    scenes, rows = read_scenes(p.profile), []
    for b in BENCHMARKS:
        weights = find_released((w := RELEASED[f"sian-{TRAINED_ON[b]}"]).name, p.weights_dir)
        for t in (t for t in without_partial_copies(test_sets(p)[b]) if not t.stand_in):
            if weights is None:
                print(f"not run: probes on {t.label}: released {w.filename} not found")
                continue
            where, scored = scenes.get(t.label, {}), []  # (variant, per-image scores)
            if (stage_path := stage_csv(p, weights, t)) is None:
                print(f"not run: stage scores on {t.label}: its evaluation kept no per_stage.csv")
            else:
                stages = pd.read_csv(stage_path, dtype={"name": str})
                stages = stages.rename(columns={"name": "image"})  # stage k: variant stage-k
                scored += [(f"stage-{k}", g) for k, g in stages.groupby("stage")]
            ds = open_data(t.spec)
            chosen = subset([pr.name for pr in ds.pairs], where, SCENES.get(p.profile, 30))
            data = f"{VERSION}|{w.sha256}|{ds.manifest_sha256()}"
            for v in variants(b):
                key = f"{data}|{v}|{','.join(chosen)}"
                digest = hashlib.sha256(key.encode()).hexdigest()[:16]
                path = results_dir(p.profile) / "eval" / "probes" / f"{b}-{v}-{digest}.csv"
                if not path.is_file():
                    print(f"probes: {v} on {t.label}, {len(chosen)} images")
                    ko = pd.DataFrame(knocked_scores(weights, t, v, chosen))
                    atomic_write_text(path, ko.to_csv(index=False, float_format="%.6f"))
                scored.append((v, pd.read_csv(path, dtype={"image": str})))
            base = {"method": str(MethodId.SIAN_RELEASED), "benchmark": b, "test_set": t.label,
                    "evidence": record.RELEASED, "seed": ""}  # fmt: skip
            for v, df in scored:
                scene = df.image.map(lambda n, where=where: where.get(n, n))
                df = df[["image", "psnr", "ssim"]].assign(**base, variant=v, scene=scene)
                rows += df.to_dict("records")
    if rows:
        record.update(p.profile, rows)
    return len(rows)
