"""The attention explorer: ipywidgets controls over :mod:`derain_lib.viz.attention`; SIAN runs
once per (image, weights, precision), a control only re-renders, bad input is a one-line message."""

from __future__ import annotations

import html
import tempfile
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import ipywidgets as W
import matplotlib
import numpy as np
import torch
from IPython.display import display
from matplotlib.colors import to_hex
from torch import nn

from .data.io import fit_size, list_images, read_image
from .device import resolve_device
from .errors import DerainError, first_line
from .labels import run_labels
from .models import build_model, check_image_size
from .precision import PRECISIONS
from .runs import list_runs
from .viz import attention as va
from .weights import RELEASED, find_released, load_model, missing_released

#: Weights spec of an untrained SIAN (seeded random init): attention before training.
RANDOM_INIT = "random-init"
UNTRAINED = "untrained SIAN (random init, seed 0)"
#: Pictures narrower than this are shown scaled up to it (pixels of the page).
MIN_DISPLAY_WIDTH = 480
WHAT_LABELS = {"mask": "attention mask M", "dog": "DoG layer", "octave": "octave layer",
               "rain": "rain layer R_k", "derained": "derained X_k"}  # fmt: skip
#: What the colours of each view mean: (normalised?, how), keyed by (what, stretch).
SCALES = {
    ("mask", True): (True, "stretched to this mask's 1st-99th percentile"),
    ("mask", False): (False, "the sigmoid's full range 0-1, comparable across stages"),
    ("dog", True): (True, "symmetric around 0, +-99th percentile of |value|"),
    ("octave", True): (True, "this layer's 1st-99th percentile"),
    ("rain", True): (True, "0 to the layer's 99.5th percentile (white)"),
    ("derained", True): (False, "RGB clipped to 0-1"),
}
LAYER_HELP = (
    "layer: which layer of the scale space at this scale, for 'DoG layer' and 'octave "
    "layer' only (0 = least blurred; each next layer is blurred more)"
)
STRETCH_HELP = (
    "stretch mask contrast: colours span this mask's 1st-99th percentile (trained masks sit "
    "in a narrow band around 0.5); untick for the raw 0-1 scale, comparable across views"
)
OVERLAY_HELP = (
    "overlay on the photo: blend the map over the input at the opacity set (the outlines "
    "seen are then partly the photo's); untick to see the map alone"
)


def run_weights() -> list[tuple[str, str]]:
    """(label, checkpoint) of the run cache's finished runs that trained a SIAN."""
    runs = [r for r in list_runs() if r.status == "finished" and r.checkpoint_path.is_file()]
    runs = [r for r in runs if r.config.model.name in ("sian", "sian-paper")]
    labels = run_labels(runs)
    return [(f"run {labels[i]}", str(r.checkpoint_path)) for i, r in enumerate(runs)]


def legend_html(lo: float, hi: float, cmap: str | None, normalised: bool, how: str) -> str:
    """A colour strip from ``lo`` to ``hi`` (none for RGB views) and how it is scaled."""
    strip = ""
    if cmap is not None:
        css = ", ".join(to_hex(c) for c in matplotlib.colormaps[cmap](np.linspace(0, 1, 9)))
        strip = (
            f'<span>{lo:.3g}</span><span style="display:inline-block;width:180px;height:12px;'
            f'background:linear-gradient(to right, {css});border:1px solid #888"></span>'
            f"<span>{hi:.3g}</span>"
        )
    state = "normalised" if normalised else "raw"
    return (
        '<div style="display:flex;align-items:center;gap:6px;font-size:12px">'
        f"{strip}<span>range {lo:.3g} to {hi:.3g}; {state}: {html.escape(how)}</span></div>"
    )


class AttentionExplorer:
    """Interactive view of one SIAN forward pass (``weights``: a released name, a file or
    :data:`RANDOM_INIT`; images larger than ``max_side`` shrunk); ``.widget`` is the box."""

    def __init__(
        self,
        image: str | Path | None = None,
        weights: str | Path = "sian-rain100l",
        *,
        images: Sequence[tuple[str, str | Path]] = (),
        image_folder: str | Path | None = None,
        weights_dir: str | Path | None = None,
        with_runs: bool = True,
        max_side: int | None = 512,
        allow_download: bool = False,
        precision: str = "auto",
        device: str = "auto",
    ) -> None:
        self.weights_dir, self.max_side = weights_dir, max_side
        self.device, self.allow_download = resolve_device(device), allow_download
        self.attention: va.Attention | None = None
        self.view_range: tuple[float, float] | None = None
        self.normalised = self._upload_dir = None
        self.message = self.model_info = ""
        self.last_render_seconds = float("nan")
        self._forward = lru_cache(maxsize=2)(self._run_sian)
        self._notes: list[str] = []
        self._quiet = False  # set while controls are adapted, so they do not re-render

        options = [(Path(image).name, str(image))] if image else []
        if image_folder:
            try:
                found = list_images(image_folder)
                options += [(f"{Path(image_folder).name}/{p.name}", str(p)) for p in found]
            except DerainError as e:
                self._notes.append(first_line(e))
        options += [(label, str(p)) for label, p in images]
        wide, slider = {"layout": {"width": "420px"}}, {"continuous_update": False}
        self.image_picker = W.Dropdown(options=options, description="image", **wide)
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload")
        weights, opts = str(weights), self._weights_options(str(weights), with_runs)
        self.weights_picker = W.Dropdown(options=opts, value=weights, description="weights", **wide)
        text = {"placeholder": "or a weights file path, then Enter", "layout": {"width": "300px"}}
        self.weights_file = W.Text(continuous_update=False, **text)
        self.precision = W.Dropdown(options=PRECISIONS, value=precision, description="precision")
        self.stage = W.IntSlider(value=1, min=1, max=6, description="stage", **slider)
        scales = [(va.scale_label(s), s) for s in (1, 2, 4)]
        self.scale = W.ToggleButtons(options=scales, description="scale")
        self.what = W.Dropdown(options=[(v, k) for k, v in WHAT_LABELS.items()], description="show")
        self.channel = W.Dropdown(options=[("mean", -1)], description="channel")
        self.layer = W.IntSlider(max=4, description="layer", tooltip=LAYER_HELP, **slider)
        self.overlay = W.Checkbox(True, description="overlay on the photo", tooltip=OVERLAY_HELP)
        self.opacity = W.FloatSlider(0.7, max=1.0, step=0.05, description="opacity", **slider)
        self.upsample = W.ToggleButtons(options=va.UPSAMPLE_MODES, description="upsample")
        self.stretch = W.Checkbox(True, description="stretch mask contrast", tooltip=STRETCH_HELP)
        helps = "<br>".join(map(html.escape, (LAYER_HELP, STRETCH_HELP, OVERLAY_HELP)))
        self.help = W.HTML(f'<div style="font-size:12px;color:#555">{helps}</div>')
        self.image = W.Image(format="png", layout={"max_width": "100%", "align_self": "flex-start"})
        self.status, self.legend, self.info = W.HTML(), W.HTML(), W.HTML()
        rows = [[self.image_picker, self.upload], [self.weights_picker, self.weights_file],
                [self.precision], [self.stage, self.layer], [self.scale], [self.what, self.channel],
                [self.overlay, self.opacity, self.stretch], [self.upsample], [self.help],
                [self.status], [self.image], [self.legend], [self.info]]  # fmt: skip
        self.widget = W.VBox([W.HBox(r) if len(r) > 1 else r[0] for r in rows])
        for source in (self.image_picker, self.weights_picker, self.precision):
            source.observe(lambda _: self.update(), names="value")
        self.weights_file.observe(self._on_weights_file, names="value")
        self.upload.observe(self._on_upload, names="value")
        for control in (self.stage, self.scale, self.what, self.channel, self.layer, self.overlay,
                        self.opacity, self.upsample, self.stretch):  # fmt: skip
            control.observe(self._on_view, names="value")
        self.update()

    def _weights_options(self, weights: str, with_runs: bool) -> list[tuple[str, str]]:
        """Released SIAN weights (marked when not found), finished runs, the untrained SIAN."""
        sian = [n for n, w in RELEASED.items() if w.family == "sian"]
        options = [(n if self._found(n) else f"{n} (not found)", n) for n in sian]
        if with_runs:
            try:
                options += run_weights()
            except DerainError as e:
                self._notes.append(f"run cache unreadable: {first_line(e)}")
        options.append((UNTRAINED, RANDOM_INIT))
        if weights not in [v for _, v in options]:
            options.insert(0, (Path(weights).name, weights))
        return options

    def _found(self, name: str) -> bool:
        """Released weights ``name`` can be loaded (found locally, or downloads allowed)."""
        return self.allow_download or find_released(name, self.weights_dir) is not None

    def _on_view(self, change: dict) -> None:
        if not self._quiet:
            if change["owner"] in (self.what, self.overlay):
                self._adapt_controls()
            self.render()

    def _offer(self, picker: W.Dropdown, label: str, value: str) -> None:
        """Add ``value`` to ``picker`` (once) and pick it, loading it again if already picked."""
        picker.options = [*(o for o in picker.options if o[1] != value), (label, value)]
        if picker.value == value:
            self.update()
        else:
            picker.value = value

    def _on_weights_file(self, _change: dict) -> None:
        if spec := self.weights_file.value.strip():
            self._offer(self.weights_picker, Path(spec).name, spec)

    def _on_upload(self, change: dict) -> None:
        for item in change["new"]:
            self.add_upload(item["name"], bytes(item["content"]))

    def add_upload(self, name: str, content: bytes) -> None:
        """Offer uploaded bytes as an image (written to a private temporary folder)."""
        self._upload_dir = self._upload_dir or Path(tempfile.mkdtemp(prefix="derain-upload-"))
        path = self._upload_dir / Path(name).name
        path.write_bytes(content)
        self._offer(self.image_picker, f"upload: {path.name}", str(path))

    def _load_model(self, spec: str) -> tuple[nn.Module, str]:
        if spec == RANDOM_INIT:
            torch.manual_seed(0)
            return build_model("sian").to(self.device), UNTRAINED
        if spec in RELEASED and not self._found(spec):
            raise DerainError(
                f"{spec}: {missing_released(spec, self.weights_dir)}; pass weights_dir=<folder "
                f"holding {RELEASED[spec].filename}> (derain fetch weights downloads them) or "
                "pick a run or the untrained SIAN in the weights list"
            )
        kw = {"weights_dir": self.weights_dir, "allow_download": self.allow_download}
        lw = load_model(spec, device=self.device, **kw)
        return lw.model, f"{lw.model_name} weights {lw.path.name} ({lw.source})"

    def _run_sian(self, image_path: str, weights: str, precision: str) -> tuple[va.Attention, str]:
        img = fit_size(read_image(image_path), self.max_side)
        check_image_size(*img.shape[:2], image_path)
        model, info = self._load_model(weights)
        self._say(f"running SIAN on {Path(image_path).name} ({img.shape[1]}x{img.shape[0]}) ...")
        try:
            return va.compute_attention(model, img, precision), info
        except va.NoAttentionError as e:
            raise DerainError(f"{weights}: {e}") from None

    def update(self) -> None:
        """Load the picked image and weights (cached), adapt the controls, render."""
        if self.image_picker.value is None:
            return self._fail("no image: pass image= or image_folder=, or upload one")
        picked = (self.image_picker.value, self.weights_picker.value, self.precision.value)
        try:
            self.attention, self.model_info = self._forward(*picked)
        except DerainError as e:
            return self._fail(first_line(e))
        self._say(" ".join(self._notes))
        self._adapt_controls()
        self.render()

    def _adapt_controls(self) -> None:
        """Fit ranges to the forward pass and enable the controls that apply to the view."""
        att, what = self.attention, self.what.value
        self._quiet = True
        try:
            self.stage.max = att.n_stages
            scales = [(va.scale_label(s), s) for s in att.scales]
            if list(self.scale.options) != scales:
                self.scale.options = scales
            if len(self.channel.options) != att.channels + 1:
                self.channel.options = [("mean", -1)] + [(str(c), c) for c in range(att.channels)]
            is_map = what in va.MAP_WHATS
            self.scale.disabled = self.channel.disabled = self.overlay.disabled = not is_map
            self.stretch.disabled = what != "mask"
            self.opacity.disabled = not is_map or not self.overlay.value
            self.layer.disabled = what not in ("dog", "octave")
            if not self.layer.disabled:
                self.layer.max = att.n_layers(what) - 1
        finally:
            self._quiet = False

    def view_args(self) -> dict[str, Any]:
        """The current controls as keyword arguments of :func:`~.viz.attention.render_view`."""
        args = {k: getattr(self, k).value for k in ("stage", "scale", "what", "layer", "stretch")}
        args["channel"] = None if self.channel.value < 0 else self.channel.value
        args["opacity"] = self.opacity.value if self.overlay.value else 1.0
        return args | {"upsample_mode": self.upsample.value}

    def render(self) -> None:
        """Re-render the current view from the cached forward pass (no model call)."""
        if self.attention is None:
            return
        t, args = time.perf_counter(), self.view_args()
        view = va.render_view(self.attention, **args)
        self.image.value = va.png_bytes(view)
        self.image.layout.display = None
        self.legend.value = self._legend(args)
        self.last_render_seconds = time.perf_counter() - t
        h, w = view.shape[:2]
        self.image.layout.width = f"{max(w, MIN_DISPLAY_WIDTH)}px"  # small images scaled up
        what = args["what"]
        where = f", scale {va.scale_label(args['scale'])}" if what in va.MAP_WHATS else ""
        self.info.value = html.escape(
            f"{WHAT_LABELS[what]}, stage {args['stage']}{where} | {w}x{h} | rendered in "
            f"{self.last_render_seconds * 1000:.0f} ms | {self.model_info}"
        )

    def _legend(self, args: dict[str, Any]) -> str:
        what = args["what"]
        self.normalised, how = SCALES[(what, args["stretch"] or what != "mask")]
        if what == "derained":
            self.view_range = (0.0, 1.0)
            return legend_html(0.0, 1.0, None, self.normalised, how)
        values = va.view_map(
            self.attention, args["stage"], args["scale"], what, args["channel"], args["layer"]
        )
        self.view_range = va.value_range(what, values, args["stretch"])
        return legend_html(*self.view_range, va.CMAPS.get(what, "gray"), self.normalised, how)

    def _say(self, text: str, error: bool = False) -> None:
        self.message, t = text, html.escape(text)
        self.status.value = f'<span style="color:#b00020">&#9888; {t}</span>' if error else t

    def _fail(self, text: str) -> None:
        self.attention = self.view_range = self.normalised = None
        self.image.value, self.image.layout.display = b"", "none"  # not a broken-image icon
        self.legend.value = self.info.value = ""
        self._say(text, error=True)

    def save_panel(self, path: str | Path, **panel_args: Any) -> Path | None:
        """The static stages x scales panel as a PNG (None when nothing is loaded)."""
        if self.attention is None:
            return None
        return va.save_figure(va.attention_panel(self.attention, **panel_args), path)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        return self.widget._repr_mimebundle_(**kwargs)


def explore(
    image: str | Path | None = None, weights: str | Path = "sian-rain100l", **kwargs: Any
) -> AttentionExplorer:
    """Open an :class:`AttentionExplorer` in the current notebook and return it."""
    explorer = AttentionExplorer(image, weights, **kwargs)
    display(explorer.widget)
    return explorer
