"""Evaluation: a model on a paired data set, per-image PSNR/SSIM (MATLAB Y protocol), PNGs."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from .data.io import write_png
from .fsutil import atomic_path
from .inference import OVERLAP, check_inference_options, predict
from .metrics import quantize, score_pair
from .models import check_image_size

COLUMNS, STAGE_COLUMNS = ["name", "psnr", "ssim"], ["name", "stage", "psnr", "ssim"]


@dataclass
class EvalResult:
    """Per-image rows (name, psnr, ssim) and their means (the MATLAB scripts' convention)."""

    rows: list[dict] = field(default_factory=list)
    #: With ``stage_scores``: (name, stage, psnr, ssim) of every stage of every image.
    stage_rows: list[dict] = field(default_factory=list)

    @property
    def n(self) -> int:
        return sum(1 for r in self.rows if not math.isnan(r["psnr"]))

    def _mean(self, key: str) -> float:
        vals = [r[key] for r in self.rows if not math.isnan(r[key])]
        return float(np.mean(vals)) if vals else math.nan

    psnr = property(lambda self: self._mean("psnr"))
    ssim = property(lambda self: self._mean("ssim"))

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=COLUMNS)

    def summary(self) -> dict:
        return {"n": self.n, "psnr": self.psnr, "ssim": self.ssim}

    def write_csv(self, path: str | Path, stages: bool = False) -> Path:
        """``per_image.csv`` (name, psnr, ssim), or with ``stages`` ``per_stage.csv``."""
        rows, columns = (self.stage_rows, STAGE_COLUMNS) if stages else (self.rows, COLUMNS)
        with atomic_path(Path(path)) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            w.writerows(rows)
        return Path(path)


def evaluate(
    model: nn.Module,
    dataset,
    out_dir: str | Path | None = None,
    tile: int | None = None,
    overlap: int = OVERLAP,
    quantize_mode: str = "round",
    max_images: int | None = None,
    save_images: bool = True,
    progress: bool = False,
    stages: int | None = None,
    precision: str = "fp32",
    stage_scores: bool = False,
) -> EvalResult:
    """Derain and score every pair of ``dataset`` (a ``PairedDataset``) on the model's
    device: stage ``stages`` (default: the last) in ``precision`` (default exact fp32).

    With ``out_dir``: ``per_image.csv`` there and (``save_images``) ``outputs/<name>.png``.
    Pairs without ground truth score NaN. ``stage_scores``: every stage scored from the same
    forward pass too (``per_stage.csv``; its last stage equals ``per_image.csv``)."""
    check_inference_options(model, stages, precision)
    was_training = model.training
    model.eval()
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    result = EvalResult()
    out = Path(out_dir) if out_dir is not None else None
    try:
        for i in tqdm(range(n), desc="evaluate", disable=not progress, leave=False):
            name = dataset.pairs[i].name
            rainy, clean = dataset.load(i)
            check_image_size(*rainy.shape[:2], dataset.pairs[i].rainy)
            outs = predict(model, rainy, tile, overlap, stages, precision, stage_scores)
            outs = outs if stage_scores else [outs]
            scores = [
                score_pair(y, clean, quantize_mode) if clean is not None else (math.nan,) * 2
                for y in outs[0 if stage_scores else -1 :]
            ]
            for k, (ps, ss) in enumerate(scores if stage_scores else [], 1):
                result.stage_rows.append({"name": name, "stage": k, "psnr": ps, "ssim": ss})
            pred, (ps, ss) = outs[-1], scores[-1]
            result.rows.append({"name": name, "psnr": ps, "ssim": ss})
            if out is not None and save_images:
                write_png(out / "outputs" / f"{Path(name).stem}.png", quantize(pred, quantize_mode))
    finally:
        model.train(was_training)
    if out is not None:
        result.write_csv(out / "per_image.csv")
        if stage_scores:
            result.write_csv(out / "per_stage.csv", stages=True)
    return result
