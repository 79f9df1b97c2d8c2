"""Evaluation: a model on a paired data set, per-image PSNR/SSIM (MATLAB Y protocol), PNGs.

Each image runs whole or in tiles through :func:`derain_lib.inference.predict`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from .data.io import write_png
from .fsutil import atomic_path
from .inference import OVERLAP, check_inference_options, predict, predict_stages
from .metrics import quantize, score_pair
from .models import check_image_size


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

    @property
    def psnr(self) -> float:
        return self._mean("psnr")

    @property
    def ssim(self) -> float:
        return self._mean("ssim")

    def table(self):
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["name", "psnr", "ssim"])

    def summary(self) -> dict:
        return {"n": self.n, "psnr": self.psnr, "ssim": self.ssim}

    def write_csv(self, path: str | Path) -> Path:
        return _write_rows(Path(path), ["name", "psnr", "ssim"], self.rows)

    def write_stage_csv(self, path: str | Path) -> Path:
        return _write_rows(Path(path), ["name", "stage", "psnr", "ssim"], self.stage_rows)


def _write_rows(path: Path, columns: list[str], rows: list[dict]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    return path


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
    device, with the output of stage ``stages`` (default: the last) computed in
    ``precision`` (default fp32: exact fp32 on a GPU too, TF32 off).

    With ``out_dir``: ``per_image.csv`` there, and (``save_images``) the quantised
    outputs as ``outputs/<name>.png``. Pairs without ground truth get NaN scores.
    ``stage_scores``: also score the output of every stage from the same forward pass
    (``per_stage.csv``: name, stage, psnr, ssim; its last stage equals ``per_image.csv``).
    """
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
            if stage_scores:
                outs = predict_stages(model, rainy, tile, overlap, stages, precision)
                for k, y in enumerate(outs[:-1], 1):
                    ps, ss = _score(y, clean, quantize_mode)
                    result.stage_rows.append({"name": name, "stage": k, "psnr": ps, "ssim": ss})
                pred = outs[-1]
            else:
                pred = predict(model, rainy, tile, overlap, stages, precision)
            ps, ss = _score(pred, clean, quantize_mode)
            if stage_scores:
                result.stage_rows.append({"name": name, "stage": len(outs), "psnr": ps, "ssim": ss})
            result.rows.append({"name": name, "psnr": ps, "ssim": ss})
            if out is not None and save_images:
                write_png(out / "outputs" / f"{Path(name).stem}.png", quantize(pred, quantize_mode))
    finally:
        model.train(was_training)
    if out is not None:
        result.write_csv(out / "per_image.csv")
        if stage_scores:
            result.write_stage_csv(out / "per_stage.csv")
    return result


def _score(pred: np.ndarray, clean: np.ndarray | None, quantize_mode: str) -> tuple[float, float]:
    return score_pair(pred, clean, quantize_mode) if clean is not None else (math.nan,) * 2
