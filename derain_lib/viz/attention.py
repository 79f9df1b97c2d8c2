"""SIAN's scale-space attention: one forward pass as numpy arrays, one view over the input
(:func:`render_view`, the explorer's picture), all stages x scales (:func:`attention_panel`)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

from ..errors import DerainError
from ..fsutil import atomic_path
from ..inference import model_device, to_tensor
from ..metrics import score_pair
from ..models import SIAN, check_image_size
from ..precision import autocast


class NoAttentionError(DerainError):
    """A model without scale-space attention (PReNet, SIAN baseline variants)."""


@dataclass
class Attention:
    """One SIAN forward pass as float32 numpy: ``masks[k][s]`` (C, h_s, w_s), ``dog``/``octaves``
    (L, C, h_s, w_s) per stage index ``k`` and scale ``s``; images (H, W, 3)."""

    image: np.ndarray
    outputs: list[np.ndarray]
    rain: list[np.ndarray]
    masks: list[dict[int, np.ndarray]]
    dog: list[dict[int, np.ndarray]]
    octaves: list[dict[int, np.ndarray]]

    @property
    def n_stages(self) -> int:
        return len(self.outputs)

    @property
    def scales(self) -> tuple[int, ...]:
        return tuple(sorted(self.masks[0]))

    @property
    def channels(self) -> int:
        return self.masks[0][1].shape[0]

    def n_layers(self, what: str) -> int:
        """How many layers ``dog`` or ``octave`` views have (1 for the others)."""
        stack = {"dog": self.dog, "octave": self.octaves}.get(what)
        return 1 if stack is None else stack[0][1].shape[0]


@torch.inference_mode()
def compute_attention(model: nn.Module, image: np.ndarray, precision: str = "fp32") -> Attention:
    """Run ``model`` (a SIAN with attention) once on ``image`` (float HWC RGB in [0, 1])."""
    if not isinstance(model, SIAN):
        why = "has no scale-space attention; the explorer needs SIAN weights"
        raise NoAttentionError(f"{type(model).__name__} {why}")
    if not model.config.attention:
        why = "has no attention masks; the explorer needs the full variant"
        raise NoAttentionError(f"SIAN variant {model.config.variant!r} {why}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise DerainError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    check_image_size(*image.shape[:2])
    device = model_device(model.eval())
    with autocast(precision, device):
        outputs, records = model(to_tensor(image, device), return_attention=True)

    hwc = [
        [t[0].permute(1, 2, 0).float().cpu().numpy() for t in ts]
        for ts in (outputs, [r["rain"] for r in records])
    ]
    maps = [
        [{s: v[0].float().cpu().numpy() for s, v in r[key].items()} for r in records]
        for key in ("masks", "dog", "octaves")
    ]
    return Attention(np.asarray(image, dtype=np.float32), *hwc, *maps)


def stage_scores(att: Attention, clean: np.ndarray) -> list[dict]:
    """PSNR/SSIM (MATLAB Y) of each stage's output X_k against ``clean`` (the paper's Fig. 6)."""
    scores = (score_pair(out, clean) for out in att.outputs)
    return [{"stage": k, "psnr": p, "ssim": s} for k, (p, s) in enumerate(scores, 1)]


#: What a view can show: the attention mask M_(s) (sigmoid, 0..1), a difference-of-Gaussians
#: layer, an octave layer, the rain layer R_k, the stage output X_k.
WHATS = ("mask", "dog", "octave", "rain", "derained")
#: Views that exist per scale and channel (the others are full-size RGB images).
MAP_WHATS = ("mask", "dog", "octave")
UPSAMPLE_MODES = ("nearest", "bilinear")
CMAPS = {"mask": "inferno", "dog": "RdBu_r", "octave": "viridis"}


def view_map(
    att: Attention, stage: int, scale: int, what: str, channel: int | None = None, layer: int = 0
) -> np.ndarray:
    """The raw values of one view (a map: the mean over channels, or ``channel``)."""
    if what not in WHATS:
        raise ValueError(f"what must be one of {WHATS}, got {what!r}")
    if not 1 <= stage <= att.n_stages:
        raise ValueError(f"stage must be 1..{att.n_stages}, got {stage}")
    if what in MAP_WHATS and scale not in att.scales:
        raise ValueError(f"scale must be one of {att.scales}, got {scale}")
    if what in ("dog", "octave") and not 0 <= layer < att.n_layers(what):
        raise ValueError(f"{what} layer must be 0..{att.n_layers(what) - 1}, got {layer}")
    if what in ("rain", "derained"):
        return (att.rain if what == "rain" else att.outputs)[stage - 1]
    stack = {"mask": att.masks, "dog": att.dog, "octave": att.octaves}[what][stage - 1][scale]
    stack = stack if what == "mask" else stack[layer]
    if channel is None:
        return stack.mean(axis=0)
    if not 0 <= channel < stack.shape[0]:
        raise ValueError(f"channel must be 0..{stack.shape[0] - 1} or None, got {channel}")
    return stack[channel]


def value_range(what: str, values: np.ndarray, stretch: bool = True) -> tuple[float, float]:
    """Colour range of a view: DoG symmetric (99th percentile of |v|), rain 0 to its 99.5th
    percentile, masks 0-1 unless ``stretch``, else the 1st-99th percentile."""
    if what == "mask" and not stretch:
        return 0.0, 1.0
    if what == "rain":
        top = float(np.percentile(values, 99.5))
        return 0.0, top if top > 0 else 1.0
    if what == "dog":
        m = float(np.percentile(np.abs(values), 99)) or 1e-6
        return -m, m
    lo, hi = (float(v) for v in np.percentile(values, [1, 99]))
    return (lo, hi) if hi > lo else (lo, lo + 1e-6)


def upsample(values: np.ndarray, size: tuple[int, int], mode: str = "nearest") -> np.ndarray:
    """A 2-D map resized to ``size`` (H, W) as float32 (``area``: averaged down)."""
    if mode not in (*UPSAMPLE_MODES, "area"):
        raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {mode!r}")
    if values.shape == tuple(size):
        return values.astype(np.float32)
    t = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[None, None]
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(t, size=size, mode=mode, **kw)[0, 0].numpy()


def colorize(values: np.ndarray, vmin: float, vmax: float, cmap: str) -> np.ndarray:
    """A 2-D map to float RGB (H, W, 3) in [0, 1] through a matplotlib colormap."""
    lut = matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3].astype(np.float32)
    idx = np.clip((values - vmin) / (vmax - vmin) * 255, 0, 255).astype(np.uint8)
    return lut[idx]


def view_rgb(
    att: Attention, values: np.ndarray, what: str, mode: str = "nearest", stretch: bool = True
) -> np.ndarray:
    """A view's values (:func:`view_map`) as float RGB of the input's size."""
    if what == "derained":
        return np.clip(values, 0, 1)
    if what == "rain":
        return np.clip(values / value_range(what, values)[1], 0, 1)
    full = upsample(values, att.image.shape[:2], mode)
    return colorize(full, *value_range(what, values, stretch), CMAPS[what])


def render_view(
    att: Attention,
    stage: int = 1,
    scale: int = 1,
    what: str = "mask",
    channel: int | None = None,
    layer: int = 0,
    opacity: float = 0.7,
    upsample_mode: str = "nearest",
    stretch: bool = True,
) -> np.ndarray:
    """One view blended over the input at ``opacity`` (1: the view alone), as uint8 RGB."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    values = view_map(att, stage, scale, what, channel, layer)
    view = view_rgb(att, values, what, upsample_mode, stretch)
    out = (1.0 - opacity) * np.clip(att.image, 0, 1) + opacity * view
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    """A uint8 RGB image encoded as PNG (what an ``ipywidgets.Image`` shows)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def scale_label(scale: int) -> str:
    """``1``, ``1/2``, ``1/4``: the resolution of a scale's maps relative to the input."""
    return "1" if scale == 1 else f"1/{scale}"


def panel_range(
    att: Attention, what: str, channel: int | None = None, layer: int = 0
) -> tuple[float, float]:
    """The one colour range of a panel: 0-1 for masks (a flat mask reads flat), else
    :func:`value_range` of the values pooled over every stage and scale."""
    if what == "mask":
        return 0.0, 1.0
    cells = product(range(1, att.n_stages + 1), att.scales)
    pooled = [view_map(att, k, s, what, channel, layer).ravel() for k, s in cells]
    return value_range(what, np.concatenate(pooled))


def attention_panel(
    att: Attention,
    what: str = "mask",
    channel: int | None = None,
    layer: int = 0,
    upsample_mode: str = "nearest",
    with_outputs: bool = True,
    title: str | None = None,
    vrange: tuple[float, float] | None = None,
) -> Figure:
    """The input, then all stages (rows) x scales (columns) of one map kind on one colour
    scale (``vrange``, else :func:`panel_range`); ``with_outputs`` adds R_k and X_k."""
    if what not in MAP_WHATS:
        raise ValueError(f"a panel shows one of {MAP_WHATS}, got {what!r}")
    lo, hi = vrange or panel_range(att, what, channel, layer)
    ch = "mean over channels" if channel is None else f"channel {channel}"
    label = f"mask, {ch}" if what == "mask" else f"{what} layer {layer}, {ch}"
    cols = [
        ("input", 1, "input", ""),
        *((what, s, f"scale {scale_label(s)}", "") for s in att.scales),
    ]
    if with_outputs:
        cols += [("rain", 1, "rain R_k", "stretched: 99.5th pct = white")]
        cols += [("derained", 1, "derained X_k", "raw, clipped to [0, 1]")]
    f = ".4f" if what == "mask" else ".4g"
    h, w = att.image.shape[:2]
    size = (2.2 * len(cols), (2.2 * h / w + 0.25) * att.n_stages + 1.6)
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(att.n_stages, len(cols), squeeze=False)
    spans = []
    for (r, c), ax in np.ndenumerate(axes):
        kind, scale, head, note = cols[c]
        ax.set(xticks=[], yticks=[])
        if kind == "input":
            ax.imshow(np.clip(att.image, 0, 1)) if r == 0 else ax.set_axis_off()
        elif kind in MAP_WHATS:
            values = view_map(att, r + 1, scale, kind, channel, layer)
            spans.append((float(values.min()), float(values.max())))
            ax.imshow(colorize(upsample(values, (h, w), upsample_mode), lo, hi, CMAPS[kind]))
            note = f"values {spans[-1][0]:{f}}-{spans[-1][1]:{f}}"
        else:
            ax.imshow(view_rgb(att, view_map(att, r + 1, scale, kind), kind))
        ax.set_xlabel(note, fontsize=6, labelpad=1)
        ax.set_title(head if r == 0 else "", fontsize=9)
        ax.set_ylabel(f"stage {r + 1}" if c == 1 else "", fontsize=9)
    maps = axes[:, 1 : 1 + len(att.scales)]
    kw = {"location": "bottom", "shrink": 0.8, "aspect": 40}
    bar = fig.colorbar(ScalarMappable(Normalize(lo, hi), CMAPS[what]), ax=maps, **kw)
    vmin, vmax = min(a for a, _ in spans), max(b for _, b in spans)
    text = f"{label}: one colour scale for every panel, {lo:.4g} to {hi:.4g}; "
    bar.set_label(text + f"values in this figure span {vmin:{f}} to {vmax:{f}}", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    fig.suptitle(title or f"SIAN attention: {label}", fontsize=10)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG; no ``Software`` tag, so an unchanged figure keeps its bytes."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", metadata={"Software": None})
    return path
