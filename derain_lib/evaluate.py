"""Evaluation: a model on a paired data set, per-image PSNR/SSIM (MATLAB Y protocol), PNGs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn
from tqdm.auto import tqdm

from .data.io import write_png
from .fsutil import atomic_write_text
from .inference import OVERLAP, check_inference_options, predict
from .metrics import quantize, score_pair
from .models import check_image_size


@dataclass
class EvalResult:
    """Per-image scores (name, psnr, ssim; NaN without ground truth) and, with
    ``stage_scores``, every stage's (name, stage, psnr, ssim); means as the MATLAB scripts."""

    table: pd.DataFrame
    stage_table: pd.DataFrame

    n = property(lambda self: int(self.table.psnr.notna().sum()))
    psnr = property(lambda self: _mean(self.table.psnr))
    ssim = property(lambda self: _mean(self.table.ssim))

    def summary(self) -> dict:
        return {"n": self.n, "psnr": self.psnr, "ssim": self.ssim}


def _mean(column: pd.Series) -> float:
    return float(np.mean(v)) if len(v := column.dropna().to_numpy()) else math.nan


def evaluate(
    model: nn.Module, dataset, out_dir: str | Path | None = None, tile: int | None = None,
    overlap: int = OVERLAP, quantize_mode: str = "round", max_images: int | None = None,
    save_images: bool = True, progress: bool = False, stages: int | None = None,
    precision: str = "fp32", stage_scores: bool = False,
) -> EvalResult:  # fmt: skip
    """Derain and score every pair of ``dataset``: ``per_image.csv``, ``outputs/<name>.png``
    in ``out_dir``; ``stage_scores``: every stage's too (``per_stage.csv``)."""
    check_inference_options(model, stages, precision)
    was_training = model.training
    model.eval()
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    rows, stage_rows, out = [], [], Path(out_dir) if out_dir is not None else None
    try:
        for i in tqdm(range(n), desc="evaluate", disable=not progress, leave=False):
            name = dataset.pairs[i].name
            rainy, clean = dataset.load(i)
            check_image_size(*rainy.shape[:2], dataset.pairs[i].rainy)
            outs = predict(model, rainy, tile, overlap, stages, precision, stage_scores)
            outs = outs if stage_scores else [outs]
            scores = [
                score_pair(y, clean, quantize_mode) if clean is not None else (math.nan,) * 2
                for y in outs
            ]
            stage_rows += [(name, k, *s) for k, s in enumerate(scores, 1) if stage_scores]
            rows.append((name, *scores[-1]))
            if out is not None and save_images:
                png = out / "outputs" / f"{Path(name).stem}.png"
                write_png(png, quantize(outs[-1], quantize_mode))
    finally:
        model.train(was_training)
    result = EvalResult(
        pd.DataFrame(rows, columns=["name", "psnr", "ssim"]),
        pd.DataFrame(stage_rows, columns=["name", "stage", "psnr", "ssim"]),
    )
    if out is not None:
        atomic_write_text(out / "per_image.csv", result.table.to_csv(index=False, na_rep="nan"))
        if stage_scores:
            stage_csv = result.stage_table.to_csv(index=False, na_rep="nan")
            atomic_write_text(out / "per_stage.csv", stage_csv)
    return result
