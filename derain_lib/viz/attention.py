"""Pictures of SIAN's scale-space attention: plain functions, no widgets.

They draw an :class:`~derain_lib.attention.Attention` (one forward pass kept as numpy
arrays by :func:`derain_lib.attention.compute_attention`). :func:`render_view` turns one
(stage, scale, what) choice into an RGB image blended over the input;
:func:`attention_panel` draws all stages x scales as a matplotlib figure (notebooks 05
and 06). The widget in :mod:`derain_lib.widgets` only wires controls to these functions.

Maps of the coarse scales (2, 4) are brought to the input size with ``upsample``:
``"nearest"`` (default: shows each coarse cell as the block of pixels it covers) or
``"bilinear"`` (smooth, ``align_corners=False``).
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

from ..attention import Attention
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
    stack = {
        "mask": lambda: att.masks[k][scale],
        "dog": lambda: att.dog[k][scale][layer],
        "octave": lambda: att.octaves[k][scale][layer],
    }[what]()
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
    stage: int,
    scale: int,
    what: str,
    channel: int | None = None,
    layer: int = 0,
    upsample_mode: str = "nearest",
    stretch: bool = True,
) -> np.ndarray:
    """One view as a float RGB image of the input's size, before blending.

    Maps are coloured (see :data:`CMAPS`, :func:`value_range`) after upsampling; the rain
    layer is contrast-stretched so its 99.5th percentile is white (negatives clip to
    black); the derained image is clipped to [0, 1]."""
    values = view_map(att, stage, scale, what, channel, layer)
    if what == "derained":
        return np.clip(values, 0, 1)
    if what == "rain":
        return np.clip(values / value_range(what, values)[1], 0, 1)
    vmin, vmax = value_range(what, values, stretch)
    full = upsample(values, att.image.shape[:2], upsample_mode)
    return colorize(full, vmin, vmax, CMAPS[what])


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
    """One view blended over the input: ``(1 - opacity) * input + opacity * view``, uint8
    RGB of the input's size. ``opacity=1`` shows the view alone, ``0`` the input."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    view = view_rgb(att, stage, scale, what, channel, layer, upsample_mode, stretch)
    base = np.clip(att.image, 0, 1)
    out = (1.0 - opacity) * base + opacity * view
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


def panel_note(
    att: Attention,
    stage: int,
    scale: int,
    what: str,
    channel: int | None = None,
    layer: int = 0,
    stretch: bool = True,
) -> str:
    """How one panel's colours map to values: the range shown and whether it is stretched
    to that panel (normalised: colours do not compare across panels) or raw."""
    if what == "derained":
        return "raw, clipped to [0, 1]"
    if what == "rain":
        return "stretched: 99.5th pct = white"
    values = view_map(att, stage, scale, what, channel, layer)
    lo, hi = value_range(what, values, stretch)
    if what == "mask" and not stretch:
        return "raw 0-1 (same scale everywhere)"
    if what == "dog":
        return f"stretched ±{hi:.4g} (99th pct |v|)"
    return f"stretched {lo:.4g}-{hi:.4g} (1-99th pct)"


def attention_panel(
    att: Attention,
    what: str = "mask",
    channel: int | None = None,
    layer: int = 0,
    opacity: float = 0.7,
    upsample_mode: str = "nearest",
    stretch: bool = True,
    with_outputs: bool = True,
    title: str | None = None,
    cell_inches: float = 2.2,
) -> Figure:
    """All stages (rows) x scales (columns) of one map kind, blended over the input;
    with ``with_outputs`` two more columns show R_k and X_k of each stage. Under each panel
    its value range and whether it is stretched or raw (:func:`panel_note`); a colorbar
    gives the map colours (0-1 for raw masks, each panel's own range when stretched)."""
    if what not in MAP_WHATS:
        raise ValueError(f"a panel shows one of {MAP_WHATS}, got {what!r}")
    cols: list[tuple[str, int]] = [(what, s) for s in att.scales]
    if with_outputs:
        cols += [("rain", 1), ("derained", 1)]
    names = {"rain": "rain R_k", "derained": "derained X_k"}
    h, w = att.image.shape[:2]
    rows = att.n_stages
    fig = Figure(
        figsize=(cell_inches * len(cols), (cell_inches * h / w + 0.25) * rows + 1.5),
        layout="constrained",
    )
    axes = fig.subplots(rows, len(cols), squeeze=False)
    for r in range(rows):
        for c, (kind, scale) in enumerate(cols):
            ax = axes[r, c]
            a = opacity if kind in MAP_WHATS else 1.0
            img = render_view(att, r + 1, scale, kind, channel, layer, a, upsample_mode, stretch)
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            note = panel_note(att, r + 1, scale, kind, channel, layer, stretch)
            ax.set_xlabel(note, fontsize=6, labelpad=1)
            if r == 0:
                ax.set_title(
                    f"scale {scale_label(scale)}" if kind in MAP_WHATS else names[kind], fontsize=9
                )
            if c == 0:
                ax.set_ylabel(f"stage {r + 1}", fontsize=9)
    raw = what == "mask" and not stretch
    bar = fig.colorbar(
        ScalarMappable(Normalize(0.0, 1.0), CMAPS[what]),
        ax=axes[:, : len(att.scales)],
        location="bottom",
        shrink=0.8,
        aspect=40,
    )
    if raw:
        bar.set_label("mask value M_(s) (sigmoid output, raw)", fontsize=8)
    else:
        bar.set_ticks([0.0, 1.0], labels=["panel's low", "panel's high"])
        bar.set_label(
            f"{what}: each panel stretched to its own range (written under it)", fontsize=8
        )
    bar.ax.tick_params(labelsize=7)
    blend = f"maps blended at opacity {opacity:g} over the input"
    fig.suptitle(
        f"{title or f'SIAN attention: {_label(what, channel, layer)}'}\n{blend}", fontsize=10
    )
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG (parent folders created) and return the path.

    No ``Software`` tag: the bytes depend on the figure alone (PNG carries no timestamp), so
    redrawing an unchanged figure leaves a committed copy unchanged."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", metadata={"Software": None})
    return path
