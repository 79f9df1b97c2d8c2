"""Pictures of SIAN's scale-space attention (an :class:`~derain_lib.attention_maps.Attention`):
:func:`render_view` draws one (stage, scale, what) view over the input, the explorer's
picture; :func:`attention_panel` all stages x scales beside the photo on one colour scale
(notebooks 05 and 06). Coarse maps are upsampled ``nearest`` (each cell as the block of
pixels it covers) or ``bilinear``.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image

from ..attention_maps import Attention
from ..fsutil import atomic_path

#: What a view can show. ``mask``: the attention mask M_(s) (sigmoid, 0..1);
#: ``dog``: a difference-of-Gaussians layer; ``octave``: a Gaussian-blurred octave
#: layer; ``rain``: the predicted rain layer R_k; ``derained``: the stage output X_k.
WHATS = ("mask", "dog", "octave", "rain", "derained")
#: Views that exist per scale and channel (the others are full-size RGB images).
MAP_WHATS = ("mask", "dog", "octave")
UPSAMPLE_MODES = ("nearest", "bilinear")
CMAPS = {"mask": "inferno", "dog": "RdBu_r", "octave": "viridis"}


def _check(att: Attention, stage: int, scale: int, what: str, layer: int) -> None:
    if what not in WHATS:
        raise ValueError(f"what must be one of {WHATS}, got {what!r}")
    if not 1 <= stage <= att.n_stages:
        raise ValueError(f"stage must be 1..{att.n_stages}, got {stage}")
    if what in MAP_WHATS and scale not in att.scales:
        raise ValueError(f"scale must be one of {att.scales}, got {scale}")
    if what in ("dog", "octave") and not 0 <= layer < att.n_layers(what):
        raise ValueError(f"{what} layer must be 0..{att.n_layers(what) - 1}, got {layer}")


def view_map(
    att: Attention,
    stage: int,
    scale: int,
    what: str,
    channel: int | None = None,
    layer: int = 0,
) -> np.ndarray:
    """The raw values of one view: (h_s, w_s) for a map (the mean over channels, or
    ``channel``), (H, W, 3) for ``rain`` and ``derained``. ``stage`` counts from 1."""
    _check(att, stage, scale, what, layer)
    k = stage - 1
    if what == "rain":
        return att.rain[k]
    if what == "derained":
        return att.outputs[k]
    stack = {"mask": att.masks, "dog": att.dog, "octave": att.octaves}[what][k][scale]
    if what != "mask":
        stack = stack[layer]
    if channel is None:
        return stack.mean(axis=0)
    if not 0 <= channel < stack.shape[0]:
        raise ValueError(f"channel must be 0..{stack.shape[0] - 1} or None, got {channel}")
    return stack[channel]


def value_range(what: str, values: np.ndarray, stretch: bool = True) -> tuple[float, float]:
    """Colour range of a view. DoG layers are symmetric around 0 (99th percentile of |v|);
    masks and octaves span their 1st-99th percentile, or with ``stretch=False`` masks keep
    the sigmoid's full range [0, 1] so levels compare across stages and scales (the mean
    mask of the released weights lies around 0.35-0.65, so stretching shows its structure).
    The rain layer spans 0 to its 99.5th percentile (negatives clip to black)."""
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
    """A 2-D map resized to ``size`` (H, W) by ``nearest`` or ``bilinear`` interpolation."""
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {mode!r}")
    if values.shape == tuple(size):
        return values
    t = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[None, None]
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(t, size=size, mode=mode, **kw)[0, 0].numpy()


def colorize(values: np.ndarray, vmin: float, vmax: float, cmap: str) -> np.ndarray:
    """A 2-D map to float RGB (H, W, 3) in [0, 1] through a matplotlib colormap."""
    lut = matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3].astype(np.float32)
    idx = np.clip((values - vmin) / (vmax - vmin) * 255, 0, 255).astype(np.uint8)
    return lut[idx]


def view_rgb(
    att: Attention,
    values: np.ndarray,
    what: str,
    upsample_mode: str = "nearest",
    stretch: bool = True,
) -> np.ndarray:
    """A view's values (:func:`view_map`) as float RGB of the input's size: maps coloured
    after upsampling, the rain layer stretched so its 99.5th percentile is white, the
    derained image clipped to [0, 1]."""
    if what == "derained":
        return np.clip(values, 0, 1)
    if what == "rain":
        return np.clip(values / value_range(what, values)[1], 0, 1)
    full = upsample(values, att.image.shape[:2], upsample_mode)
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
    """One view blended over the input, ``(1 - opacity) * input + opacity * view``, as
    uint8 RGB of the input's size (``opacity=1``: the view alone)."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    view = view_rgb(
        att, view_map(att, stage, scale, what, channel, layer), what, upsample_mode, stretch
    )
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


def _label(what: str, channel: int | None, layer: int) -> str:
    ch = "mean over channels" if channel is None else f"channel {channel}"
    if what in ("dog", "octave"):
        return f"{what} layer {layer}, {ch}"
    return f"{what}, {ch}" if what == "mask" else what


def panel_range(
    att: Attention, what: str, channel: int | None = None, layer: int = 0
) -> tuple[float, float]:
    """The one colour range of a panel of ``what`` maps: the sigmoid's full range [0, 1]
    for masks (absolute: a flat mask reads flat); for DoG layers symmetric around 0 at the
    99th percentile of |v| pooled over every stage and scale; for octaves the 1st-99th
    percentile pooled likewise."""
    if what == "mask":
        return 0.0, 1.0
    pooled = np.concatenate(
        [
            view_map(att, k, s, what, channel, layer).ravel()
            for k in range(1, att.n_stages + 1)
            for s in att.scales
        ]
    )
    return value_range(what, pooled)


def attention_panel(
    att: Attention,
    what: str = "mask",
    channel: int | None = None,
    layer: int = 0,
    upsample_mode: str = "nearest",
    with_outputs: bool = True,
    title: str | None = None,
    cell_inches: float = 2.2,
    vrange: tuple[float, float] | None = None,
) -> Figure:
    """The input photo, then all stages (rows) x scales (columns) of one map kind drawn
    alone on one colour scale for the whole figure (``vrange``, else :func:`panel_range`),
    stated by one colorbar; ``with_outputs`` adds R_k and X_k of each stage. Under each
    map the span of its own values."""
    if what not in MAP_WHATS:
        raise ValueError(f"a panel shows one of {MAP_WHATS}, got {what!r}")
    lo, hi = vrange or panel_range(att, what, channel, layer)
    cols: list[tuple[str, int]] = [("input", 1), *((what, s) for s in att.scales)]
    if with_outputs:
        cols += [("rain", 1), ("derained", 1)]
    heads = {"input": "input", "rain": "rain R_k", "derained": "derained X_k"}
    notes = {"rain": "stretched: 99.5th pct = white", "derained": "raw, clipped to [0, 1]"}
    f = ".4f" if what == "mask" else ".4g"
    h, w = att.image.shape[:2]
    fig = Figure(
        figsize=(cell_inches * len(cols), (cell_inches * h / w + 0.25) * att.n_stages + 1.6),
        layout="constrained",
    )
    axes = fig.subplots(att.n_stages, len(cols), squeeze=False)
    spans = []
    for (r, c), ax in np.ndenumerate(axes):
        kind, scale = cols[c]
        ax.set_xticks([])
        ax.set_yticks([])
        if kind == "input":
            ax.imshow(np.clip(att.image, 0, 1)) if r == 0 else ax.set_axis_off()
        elif kind in MAP_WHATS:
            values = view_map(att, r + 1, scale, kind, channel, layer)
            spans.append((float(values.min()), float(values.max())))
            ax.imshow(colorize(upsample(values, (h, w), upsample_mode), lo, hi, CMAPS[kind]))
            ax.set_xlabel(f"values {spans[-1][0]:{f}}-{spans[-1][1]:{f}}", fontsize=6, labelpad=1)
        else:
            ax.imshow(view_rgb(att, view_map(att, r + 1, scale, kind), kind))
            ax.set_xlabel(notes[kind], fontsize=6, labelpad=1)
        if r == 0:
            ax.set_title(
                f"scale {scale_label(scale)}" if kind in MAP_WHATS else heads[kind], fontsize=9
            )
        if c == 1:
            ax.set_ylabel(f"stage {r + 1}", fontsize=9)
    bar = fig.colorbar(
        ScalarMappable(Normalize(lo, hi), CMAPS[what]),
        ax=axes[:, 1 : 1 + len(att.scales)],
        location="bottom",
        shrink=0.8,
        aspect=40,
    )
    vmin, vmax = min(a for a, _ in spans), max(b for _, b in spans)
    bar.set_label(
        f"{_label(what, channel, layer)}: one colour scale for every panel, {lo:.4g} to "
        f"{hi:.4g}; values in this figure span {vmin:{f}} to {vmax:{f}}",
        fontsize=8,
    )
    bar.ax.tick_params(labelsize=7)
    fig.suptitle(title or f"SIAN attention: {_label(what, channel, layer)}", fontsize=10)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG (parent folders created) and return the path.

    No ``Software`` tag: the bytes depend on the figure alone (PNG carries no timestamp), so
    redrawing an unchanged figure leaves a committed copy unchanged."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", metadata={"Software": None})
    return path
