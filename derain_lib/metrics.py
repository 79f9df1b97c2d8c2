"""PSNR and SSIM exactly as the deraining literature computes them in MATLAB (MODEL_SPEC §6).

Protocol (the authors' ``statistic_rain100L.m`` in Python, equal to 1e-10):

1. the output image is quantised: clamp to [0, 1], x255, round half to even, uint8
   (what a saved PNG holds; ``quantize="truncate"`` gives PReNet's script instead);
2. ``y = rgb2ycbcr(rgb_uint8)[..., 0]`` as float64, not rounded (BT.601 studio range);
3. PSNR = 10 log10(255^2 / MSE) over the whole image;
4. SSIM = Wang et al.'s ``ssim_index.m``: 11x11 Gaussian window (sigma 1.5), K1 0.01,
   K2 0.03, population covariances, mean over the valid region.

Variants used elsewhere in the literature (see docs/metrics.md): ``y_round=True``
(uint8 Y, as Restormer/MPRNet scripts) and ``ssim_downsample=True`` (the 2009
``ssim.m`` that downsamples by ``round(min(H, W) / 256)``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .data.io import ImageReadError, list_images, read_image_uint8

ArrayLike = np.ndarray | torch.Tensor


def quantize(img: ArrayLike, mode: str = "round") -> np.ndarray:
    """Float RGB in [0, 1] (HWC array or CHW / 1CHW tensor) to uint8 HWC, as a PNG stores it.

    ``mode="round"``: ``clip(rint(255 x), 0, 255)`` (round half to even; the authors'
    ``cv2.imwrite``). ``mode="truncate"``: ``uint8(255 clamp(x, 0, 1))`` (PReNet's script).
    uint8 input is returned unchanged.
    """
    if isinstance(img, torch.Tensor):
        t = img.detach().to("cpu", torch.float32)
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise ValueError(f"quantize takes one image, got a batch of {t.shape[0]}")
            t = t[0]
        img = t.permute(1, 2, 0).numpy() if t.ndim == 3 else t.numpy()
    a = np.asarray(img)
    if a.dtype == np.uint8:
        return a
    a = a.astype(np.float32, copy=False)
    if mode == "round":
        return np.clip(np.rint(np.float32(255) * a), 0, 255).astype(np.uint8)
    if mode == "truncate":
        return (np.float32(255) * np.clip(a, 0, 1)).astype(np.uint8)
    raise ValueError(f"quantize mode must be 'round' or 'truncate', got {mode!r}")


def rgb_to_y(img: ArrayLike, y_round: bool = False, quantize_mode: str = "round") -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` luminance (16..235) as float64 from uint8 or float RGB."""
    rgb = quantize(img, quantize_mode)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {rgb.shape}")
    y = rgb2ycbcr(rgb)[..., 0]
    return np.round(y) if y_round else y


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"image sizes differ: {a.shape[:2]} vs {b.shape[:2]}")


def psnr_y(pred: np.ndarray, gt: np.ndarray) -> float:
    """PSNR of two luminance images (peak 255); ``inf`` for identical images."""
    _check_pair(pred, gt)
    mse = float(np.mean((pred.astype(np.float64) - gt.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _matlab_downsample(y: np.ndarray) -> np.ndarray:
    """``ssim.m`` (2009): mean filter of size f with symmetric borders, keep every f-th pixel."""
    f = max(1, round(min(y.shape) / 256))
    if f == 1:
        return y
    # MATLAB imfilter 'same' anchors an even kernel at floor((f + 1) / 2) (1-based)
    origin = (f - 1) // 2 - f // 2
    y = ndimage.uniform_filter(y, size=f, mode="reflect", origin=origin)
    return y[::f, ::f]


def ssim_y(pred: np.ndarray, gt: np.ndarray, downsample: bool = False) -> float:
    """SSIM of two luminance images (Wang et al. 2004, Gaussian 11x11, sigma 1.5)."""
    _check_pair(pred, gt)
    a, b = pred.astype(np.float64), gt.astype(np.float64)
    if downsample:
        a, b = _matlab_downsample(a), _matlab_downsample(b)
    if min(a.shape) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {a.shape}")
    return float(
        structural_similarity(
            a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
    )


def score_pair(
    pred: ArrayLike,
    gt: ArrayLike,
    quantize_mode: str = "round",
    y_round: bool = False,
    ssim_downsample: bool = False,
) -> tuple[float, float]:
    """(PSNR, SSIM) of a derained image against its ground truth, on MATLAB Y."""
    yp = rgb_to_y(pred, y_round, quantize_mode)
    yg = rgb_to_y(gt, y_round, "round")
    return psnr_y(yp, yg), ssim_y(yp, yg, ssim_downsample)


_NUM = re.compile(r"(\d+)")


def pair_key(name: str) -> str | None:
    """The numbers a benchmark file name carries (``rain-001.png`` -> ``"1"``, Rain1400's
    ``901_3.jpg`` -> ``"901_3"``), else None."""
    nums = _NUM.findall(Path(name).stem)
    return "_".join(str(int(n)) for n in nums) if nums else None


@dataclass
class Pairing:
    """Paired files, files of either folder left without a partner, and (after scoring)
    one line per pair that could not be scored."""

    pairs: list[tuple[Path, Path]]
    unpaired_pred: list[Path]
    unpaired_gt: list[Path]
    skipped: list[str] = field(default_factory=list)


def _numbered(files: list[Path]) -> tuple[dict[str, Path], list[Path]] | None:
    """Files by :func:`pair_key` plus those without a number; None if two share a key."""
    keyed: dict[str, Path] = {}
    stray = []
    for p in files:
        k = pair_key(p.name)
        if k is None:
            stray.append(p)
        elif k in keyed:
            return None
        else:
            keyed[k] = p
    return keyed, stray


def pair_folders(pred_dir: str | Path, gt_dir: str | Path) -> Pairing:
    """Pair files by the number in their names (``rain-001``/``norain-001``; Rain1400's
    ``901_3`` with ``901``), else by name; two files are one pair."""
    if Path(pred_dir).is_file() and Path(gt_dir).is_file():
        return Pairing([(Path(pred_dir), Path(gt_dir))], [], [])
    preds, gts = list_images(pred_dir), list_images(gt_dir)
    np_, ng = _numbered(preds), _numbered(gts)
    if np_ is None or ng is None:  # no unique numbers: pair by stem
        kp, kg = {p.stem: p for p in preds}, {p.stem: p for p in gts}
        stray_p, stray_g = [], []
    else:
        (kp, stray_p), (kg, stray_g) = np_, ng
    pairs, used = [], set()
    for k in sorted(kp, key=lambda k: (len(k), k)):
        g = kg.get(k) or kg.get(k.split("_")[0])
        if g is not None:
            pairs.append((kp[k], g))
            used.add(g)
    by_stem = {g.stem: g for g in stray_g}  # files without numbers pair by name
    pairs += [(p, by_stem[p.stem]) for p in stray_p if p.stem in by_stem]
    used |= {g for _, g in pairs}
    paired = {p for p, _ in pairs}
    return Pairing(
        pairs,
        sorted(p for p in [*stray_p, *kp.values()] if p not in paired),
        sorted(g for g in [*stray_g, *kg.values()] if g not in used),
    )


@dataclass
class ImageScore:
    name: str
    gt: str
    psnr: float
    ssim: float


def score_folder(
    pred_dir: str | Path,
    gt_dir: str | Path,
    scorer: Callable[[np.ndarray, np.ndarray], tuple[float, float]] | None = None,
    **kwargs: object,
) -> tuple[list[ImageScore], Pairing]:
    """Per-image scores of every paired file (:func:`pair_folders`) by ``scorer`` (default
    :func:`score_pair` with ``kwargs``); a pair that cannot be scored is named in
    ``pairing.skipped``."""
    pairing = pair_folders(pred_dir, gt_dir)
    rows = []
    for p, g in pairing.pairs:
        try:
            a, b = read_image_uint8(p), read_image_uint8(g)
        except ImageReadError as e:
            pairing.skipped.append(str(e))
            continue
        if a.shape != b.shape:
            pairing.skipped.append(
                f"{p}: size {a.shape[1]}x{a.shape[0]} differs from {g} ({b.shape[1]}x{b.shape[0]})"
            )
            continue
        if min(a.shape[:2]) < 11:
            pairing.skipped.append(
                f"{p}: image is {a.shape[1]}x{a.shape[0]}; SSIM needs at least 11x11 pixels"
            )
            continue
        ps, ss = scorer(a, b) if scorer is not None else score_pair(a, b, **kwargs)
        rows.append(ImageScore(p.name, g.name, ps, ss))
    return rows, pairing


def json_safe(obj: object) -> object:
    """``obj`` with every non-finite float replaced by ``None`` and, next to it in its
    mapping, ``<key>_note`` saying why (``inf``: identical images; ``nan``: no value)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(v, float) and not math.isfinite(v):
                out[k] = None
                out[f"{k}_note"] = (
                    "infinite: the images are identical" if math.isinf(v) else "no value: no pairs"
                )
            else:
                out[k] = json_safe(v)
        return out
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj


def summarize(rows: list[ImageScore]) -> dict:
    """Arithmetic means over images (the MATLAB scripts' convention) and the rows."""
    n = len(rows)
    return {
        "n": n,
        "psnr": float(np.mean([r.psnr for r in rows])) if n else math.nan,
        "ssim": float(np.mean([r.ssim for r in rows])) if n else math.nan,
        "per_image": [asdict(r) for r in rows],
    }


def _rgb_matlab_window(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """PSNR and SSIM (Gaussian 11x11 window, mean over channels) on uint8 RGB."""
    a, b = quantize(pred).astype(np.float64), quantize(gt).astype(np.float64)
    window = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    return psnr_y(a, b), float(
        structural_similarity(a, b, data_range=255, channel_axis=2, **window)
    )


def _skimage_defaults(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """``peak_signal_noise_ratio`` and ``structural_similarity`` with their defaults
    (7x7 uniform window, sample covariance) on uint8 RGB."""
    a, b = quantize(pred), quantize(gt)
    p = peak_signal_noise_ratio(b, a)
    return float(p), float(structural_similarity(b, a, channel_axis=2))


#: The scoring protocols in use, ours first: name -> (pred, gt as float or uint8 RGB) ->
#: (PSNR, SSIM). docs/metrics.md describes them; chapter 07 scores the same outputs under
#: each (:mod:`derain_lib.study.beyond.protocols`).
PROTOCOLS: dict[str, Callable[[np.ndarray, np.ndarray], tuple[float, float]]] = {
    "MATLAB Y (ours)": score_pair,
    "Y rounded to uint8": lambda p, g: score_pair(p, g, y_round=True),
    "RGB": _rgb_matlab_window,
    "scikit-image defaults (RGB)": _skimage_defaults,
    "ssim.m 2009 auto-downsampling": lambda p, g: score_pair(p, g, ssim_downsample=True),
    "outputs truncated, not rounded": lambda p, g: score_pair(p, g, quantize_mode="truncate"),
}


def variant_table(
    pred_dir: str | Path, gt_dir: str | Path, protocols: tuple[str, ...] | None = None
) -> list[dict]:
    """Mean PSNR/SSIM of a folder under each of :data:`PROTOCOLS` (or the ``protocols``
    named), for docs/metrics.md."""
    out = []
    for label in protocols or tuple(PROTOCOLS):
        s = summarize(score_folder(pred_dir, gt_dir, PROTOCOLS[label])[0])
        out.append({"variant": label, "n": s["n"], "psnr": s["psnr"], "ssim": s["ssim"]})
    return out
