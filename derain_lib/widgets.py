"""The attention explorer: ipywidgets controls wired to :mod:`derain_lib.viz`.

``explore()`` (or ``AttentionExplorer(...)`` as a cell's last expression) opens it in
JupyterLab: pick an image (a profile's test images, a folder, an upload) and weights
(released SIAN files, a finished run of the run cache, a file, or an untrained SIAN),
then move through stage, scale and what to see. The images offered are the test images of
the profile it is opened with (``profile=``), those its runs are scored on. SIAN runs once
per (image, weights) pair and the result is cached; moving a control only re-renders the
cached arrays.
Problems with an input (an unreadable image, weights of another model, missing released
weights) are shown as a message saying what to do, in place of the picture, never as a
traceback. Below the picture a colour strip gives the view's value range and says whether
the colours are normalised (stretched to this view) or raw. Blending a map over the photo
is an option (``overlay``): the static panels (:func:`derain_lib.viz.attention_panel`)
draw the maps beside the photo.
"""

from __future__ import annotations

import html
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import torch
from torch import nn

from . import attention_maps, viz
from .data.io import fit_size, list_images, read_image
from .data.sources import open_data
from .device import resolve_device
from .errors import DerainError
from .labels import run_labels
from .models import build_model, check_image_size
from .precision import PRECISIONS
from .runs import list_runs
from .study.plan import Params, real_path, test_sets
from .viz.attention import CMAPS
from .weights import RELEASED, find_released, load_model, missing_released

#: Weights spec of an untrained SIAN (seeded random init): attention before training.
RANDOM_INIT = "random-init"
#: Pictures narrower than this are shown scaled up to it (pixels of the page).
MIN_DISPLAY_WIDTH = 480
_WHAT_LABELS = {
    "mask": "attention mask M",
    "dog": "DoG layer",
    "octave": "octave layer",
    "rain": "rain layer R_k",
    "derained": "derained X_k",
}
#: What the colours of each view mean: (normalised?, how), keyed by (what, stretch).
_SCALES = {
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


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def profile_images(profile: str, data_root: str | Path | None = None) -> list[tuple[str, Path]]:
    """(label, path) of the rainy test images ``profile`` scores on (its own test sets, then
    the real ones found under ``data_root``), labelled as the study's tables label them."""
    found = []
    for sets in test_sets(Params(profile, str(data_root) if data_root else None)).values():
        for t in sets:
            found += [(f"{t.label}: {p.name}", p.rainy) for p in open_data(t.spec).pairs]
    return found


def run_weights() -> list[tuple[str, str]]:
    """(label, checkpoint path) of finished runs of the run cache that trained a SIAN
    with attention (an empty list where the run cache is absent), labelled by what tells
    them apart (:func:`derain_lib.labels.run_labels`)."""
    runs = [
        r
        for r in list_runs()
        if r.status == "finished"
        and r.checkpoint_path.is_file()
        and r.config.model.name in ("sian", "sian-paper")
    ]
    return [
        (f"run {label}", str(r.checkpoint_path))
        for r, label in zip(runs, run_labels(runs), strict=True)
    ]


def legend_html(lo: float, hi: float, cmap: str | None, normalised: bool, how: str) -> str:
    """A colour strip from ``lo`` to ``hi`` through ``cmap`` (none when ``cmap`` is None:
    RGB views) and whether the colours are normalised (``how``), as HTML."""
    strip = ""
    if cmap is not None:
        stops = viz.colorize(np.linspace(0, 1, 9)[None], 0, 1, cmap)[0]
        css = ", ".join("#{:02x}{:02x}{:02x}".format(*np.rint(c * 255).astype(int)) for c in stops)
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
    """Interactive view of one SIAN forward pass; ``.widget`` is the ipywidgets box.

    ``image``: a file to start with; ``image_folder``: a folder whose images are offered
    (e.g. real rainy photos); ``weights``: the weights to start with (released name, file,
    or :data:`RANDOM_INIT`); ``weights_dir``: where released files are looked for;
    ``profile``: whose test images are offered (None: none); ``data_root``: where that
    profile's real test data are (as ``derain reproduce --data-root``);
    ``max_side``: larger images are shrunk to this longer side before the forward pass
    (memory and time grow with the area); ``cache_size``: forward passes kept;
    ``precision``: fp32, bf16 or auto (bf16 only on CPUs with native bf16), also a control;
    ``device``: where SIAN runs (auto: the first CUDA device when there is one, cpu, cuda,
    cuda:N).
    """

    def __init__(
        self,
        image: str | Path | None = None,
        weights: str | Path = "sian-rain100l",
        *,
        image_folder: str | Path | None = None,
        weights_dir: str | Path | None = None,
        profile: str | None = "quick",
        data_root: str | Path | None = None,
        with_runs: bool = True,
        max_side: int | None = 512,
        allow_download: bool = False,
        cache_size: int = 2,
        precision: str = "auto",
        device: str = "auto",
    ) -> None:
        self.weights_dir = str(real_path(weights_dir)) if weights_dir else None  # as shown
        self.device = resolve_device(device)
        self.max_side = max_side
        self.allow_download = allow_download
        self.cache_size = cache_size
        self.attention: viz.Attention | None = None
        self.message = ""
        self.model_info = ""
        self.last_render_seconds = float("nan")
        self.last_view: np.ndarray | None = None
        self.view_range: tuple[float, float] | None = None
        self.normalised: bool | None = None
        self._cache: OrderedDict[tuple[str, str, str], tuple[viz.Attention, str]] = OrderedDict()
        self._upload_dir: Path | None = None
        self._notes: list[str] = []
        self._quiet = False  # set while controls are adapted, so they do not re-render

        images = self._image_options(image, image_folder, profile, data_root)
        self.image_picker = W.Dropdown(
            options=images, description="image", layout={"width": "420px"}
        )
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload")
        self.weights_picker = W.Dropdown(
            options=self._weights_options(weights, with_runs),
            value=str(weights),
            description="weights",
            layout={"width": "420px"},
        )
        self.weights_file = W.Text(
            placeholder="or a weights file path, then Enter",
            continuous_update=False,
            layout={"width": "300px"},
        )
        self.precision = W.Dropdown(
            options=list(PRECISIONS), value=precision, description="precision"
        )
        self.stage = W.IntSlider(
            value=1, min=1, max=6, description="stage", continuous_update=False
        )
        self.scale = W.ToggleButtons(
            options=[(viz.scale_label(s), s) for s in (1, 2, 4)], value=1, description="scale"
        )
        self.what = W.Dropdown(
            options=[(v, k) for k, v in _WHAT_LABELS.items()], value="mask", description="show"
        )
        self.channel = W.Dropdown(options=[("mean", -1)], value=-1, description="channel")
        self.layer = W.IntSlider(
            value=0, min=0, max=4, description="layer", continuous_update=False, tooltip=LAYER_HELP
        )
        self.overlay = W.Checkbox(
            value=True, description="overlay on the photo", tooltip=OVERLAY_HELP
        )
        self.opacity = W.FloatSlider(
            value=0.7, min=0.0, max=1.0, step=0.05, description="opacity", continuous_update=False
        )
        self.upsample = W.ToggleButtons(
            options=list(viz.UPSAMPLE_MODES), value="nearest", description="upsample"
        )
        self.stretch = W.Checkbox(
            value=True, description="stretch mask contrast", tooltip=STRETCH_HELP
        )
        self.help = W.HTML(
            '<div style="font-size:12px;color:#555">'
            + "<br>".join(html.escape(h) for h in (LAYER_HELP, STRETCH_HELP, OVERLAY_HELP))
            + "</div>"
        )
        self.image = W.Image(format="png", layout={"max_width": "100%", "align_self": "flex-start"})
        self.status = W.HTML()
        self.legend = W.HTML()
        self.info = W.HTML()

        self.widget = W.VBox(
            [
                W.HBox([self.image_picker, self.upload]),
                W.HBox([self.weights_picker, self.weights_file]),
                self.precision,
                W.HBox([self.stage, self.layer]),
                self.scale,
                W.HBox([self.what, self.channel]),
                W.HBox([self.overlay, self.opacity, self.stretch]),
                self.upsample,
                self.help,
                self.status,
                self.image,
                self.legend,
                self.info,
            ]
        )
        self.image_picker.observe(self._on_source, names="value")
        self.weights_picker.observe(self._on_source, names="value")
        self.precision.observe(self._on_source, names="value")
        self.weights_file.observe(self._on_weights_file, names="value")
        self.upload.observe(self._on_upload, names="value")
        for control in self._view_controls():
            control.observe(self._on_view, names="value")
        self.update()

    # -- options ------------------------------------------------------------------
    def _image_options(
        self,
        image: str | Path | None,
        folder: str | Path | None,
        profile: str | None,
        data_root: str | Path | None,
    ) -> list[tuple[str, str]]:
        options: list[tuple[str, str]] = []
        if image:
            options.append((Path(image).name, str(image)))
        if folder:
            try:
                options += [(f"{Path(folder).name}/{p.name}", str(p)) for p in list_images(folder)]
            except DerainError as e:
                self._notes.append(_first_line(e))
        if profile:
            try:
                options += [(label, str(p)) for label, p in profile_images(profile, data_root)]
            except DerainError as e:
                self._notes.append(f"test images of {profile} unavailable: {_first_line(e)}")
        return options

    def _weights_options(self, weights: str | Path, with_runs: bool) -> list[tuple[str, str]]:
        options: list[tuple[str, str]] = []
        for name, w in RELEASED.items():
            if w.family != "sian":
                continue
            here = find_released(name, self.weights_dir) is not None
            options.append((name if here or self.allow_download else f"{name} (not found)", name))
        if with_runs:
            try:
                options += run_weights()
            except DerainError as e:
                self._notes.append(f"run cache unreadable: {_first_line(e)}")
        options.append(("untrained SIAN (random init, seed 0)", RANDOM_INIT))
        if str(weights) not in [v for _, v in options]:
            options.insert(0, (Path(weights).name, str(weights)))
        return options

    def _view_controls(self) -> list[W.ValueWidget]:
        return [
            self.stage,
            self.scale,
            self.what,
            self.channel,
            self.layer,
            self.overlay,
            self.opacity,
            self.upsample,
            self.stretch,
        ]

    # -- events -------------------------------------------------------------------
    def _on_source(self, _change: dict) -> None:
        self.update()

    def _on_view(self, change: dict) -> None:
        if self._quiet:
            return
        if change["owner"] in (self.what, self.overlay):
            self._adapt_controls()
        self.render()

    def _on_weights_file(self, _change: dict) -> None:
        spec = self.weights_file.value.strip()
        if not spec:
            return
        if spec not in [v for _, v in self.weights_picker.options]:
            self.weights_picker.options = [*self.weights_picker.options, (Path(spec).name, spec)]
        if self.weights_picker.value == spec:
            self.update()
        else:
            self.weights_picker.value = spec

    def _on_upload(self, change: dict) -> None:
        for item in change["new"]:
            self.add_upload(item["name"], bytes(item["content"]))

    def add_upload(self, name: str, content: bytes) -> None:
        """Offer uploaded bytes as an image (written to a private temporary folder)."""
        if self._upload_dir is None:
            self._upload_dir = Path(tempfile.mkdtemp(prefix="derain-upload-"))
        path = self._upload_dir / Path(name).name
        path.write_bytes(content)
        options = [o for o in self.image_picker.options if o[1] != str(path)]
        self.image_picker.options = [*options, (f"upload: {path.name}", str(path))]
        if self.image_picker.value == str(path):
            self.update()
        else:
            self.image_picker.value = str(path)

    # -- work ---------------------------------------------------------------------
    def _load_model(self, spec: str) -> tuple[nn.Module, str]:
        if spec == RANDOM_INIT:
            torch.manual_seed(0)
            return build_model("sian").to(self.device), "untrained SIAN (random init, seed 0)"
        if (
            spec in RELEASED
            and not self.allow_download
            and not find_released(spec, self.weights_dir)
        ):
            raise DerainError(
                f"{spec}: {missing_released(spec, self.weights_dir)}; pass weights_dir=<folder "
                f"holding {RELEASED[spec].filename}> (derain fetch weights downloads them) or "
                "pick a run or the untrained SIAN in the weights list"
            )
        lw = load_model(
            spec,
            weights_dir=self.weights_dir,
            allow_download=self.allow_download,
            device=self.device,
        )
        return lw.model, f"{lw.model_name} weights {lw.path.name} ({lw.source})"

    def _load_image(self, path: str) -> np.ndarray:
        return fit_size(read_image(path), self.max_side)

    def compute(self, image_path: str, weights: str) -> viz.Attention:
        """The cached forward pass for (image, weights, precision), running SIAN when new."""
        key = (image_path, weights, self.precision.value)
        if key in self._cache:
            self._cache.move_to_end(key)
            att, self.model_info = self._cache[key]
            return att
        img = self._load_image(image_path)
        check_image_size(*img.shape[:2], image_path)
        model, info = self._load_model(weights)
        try:
            attention_maps.check_attention_model(model)
        except attention_maps.NoAttentionError as e:
            raise DerainError(f"{weights}: {e}") from None
        self._say(f"running SIAN on {Path(image_path).name} ({img.shape[1]}x{img.shape[0]}) ...")
        att = attention_maps.compute_attention(model, img, self.precision.value)
        self.model_info = info
        self._cache[key] = (att, info)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return att

    def update(self) -> None:
        """Load the picked image and weights (cached), adapt the controls, render."""
        path, weights = self.image_picker.value, self.weights_picker.value
        if path is None:
            self._fail("no image: pass image= or image_folder=, or upload one")
            return
        try:
            att = self.compute(path, weights)
        except DerainError as e:
            self._fail(_first_line(e))
            return
        self.attention = att
        self._say(" ".join(self._notes))
        self._adapt_controls()
        self.render()

    def _adapt_controls(self) -> None:
        """Fit ranges to the forward pass and enable the controls that apply to the view."""
        att, what = self.attention, self.what.value
        self._quiet = True
        try:
            self.stage.max = att.n_stages
            scales = [(viz.scale_label(s), s) for s in att.scales]
            if list(self.scale.options) != scales:
                self.scale.options = scales
            if len(self.channel.options) != att.channels + 1:
                self.channel.options = [("mean", -1)] + [(str(c), c) for c in range(att.channels)]
            is_map = what in viz.MAP_WHATS
            self.scale.disabled = not is_map
            self.channel.disabled = not is_map
            self.stretch.disabled = what != "mask"
            self.overlay.disabled = not is_map
            self.opacity.disabled = not is_map or not self.overlay.value
            self.layer.disabled = what not in ("dog", "octave")
            if not self.layer.disabled:
                self.layer.max = att.n_layers(what) - 1
        finally:
            self._quiet = False

    def view_args(self) -> dict[str, Any]:
        """The current controls as keyword arguments of :func:`viz.render_view`."""
        return {
            "stage": self.stage.value,
            "scale": self.scale.value,
            "what": self.what.value,
            "channel": None if self.channel.value < 0 else self.channel.value,
            "layer": self.layer.value,
            "opacity": self.opacity.value if self.overlay.value else 1.0,
            "upsample_mode": self.upsample.value,
            "stretch": self.stretch.value,
        }

    def render(self) -> None:
        """Re-render the current view from the cached forward pass (no model call)."""
        if self.attention is None:
            return
        t = time.perf_counter()
        args = self.view_args()
        view = viz.render_view(self.attention, **args)
        self.image.value = viz.png_bytes(view)
        self.image.layout.display = None
        self.legend.value = self._legend(args)
        self.last_render_seconds = time.perf_counter() - t
        self.last_view = view
        h, w = view.shape[:2]
        self.image.layout.width = f"{max(w, MIN_DISPLAY_WIDTH)}px"  # small images scaled up
        self.info.value = html.escape(
            f"{_WHAT_LABELS[args['what']]}, stage {args['stage']}"
            + (f", scale {viz.scale_label(args['scale'])}" if args["what"] in viz.MAP_WHATS else "")
            + f" | {w}x{h} | rendered in {self.last_render_seconds * 1000:.0f} ms"
            + f" | {self.model_info}"
        )

    def _legend(self, args: dict[str, Any]) -> str:
        """The colour strip of the current view: its value range, normalised or raw."""
        what = args["what"]
        normalised, how = _SCALES[(what, args["stretch"] or what != "mask")]
        if what == "derained":
            self.view_range, self.normalised = (0.0, 1.0), normalised
            return legend_html(0.0, 1.0, None, normalised, how)
        values = viz.view_map(
            self.attention, args["stage"], args["scale"], what, args["channel"], args["layer"]
        )
        lo, hi = viz.value_range(what, values, args["stretch"])
        self.view_range, self.normalised = (lo, hi), normalised
        return legend_html(lo, hi, CMAPS.get(what, "gray"), normalised, how)

    def _say(self, text: str) -> None:
        self.message = text
        self.status.value = html.escape(text)

    def _fail(self, text: str) -> None:
        self.attention = None
        self.last_view = None
        self.image.value = b""
        self.image.layout.display = "none"  # an empty image is a broken-image icon
        self.legend.value = ""
        self.view_range = self.normalised = None
        self.info.value = ""
        self.message = text
        self.status.value = f'<span style="color:#b00020">&#9888; {html.escape(text)}</span>'

    def save_panel(self, path: str | Path, **panel_args: Any) -> Path | None:
        """The static all-stages x scales panel of the current forward pass as a PNG
        (``None`` when nothing is loaded; :attr:`message` then says why)."""
        if self.attention is None:
            return None
        fig = viz.attention_panel(self.attention, **panel_args)
        return viz.save_figure(fig, path)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        return self.widget._repr_mimebundle_(**kwargs)


def explore(
    image: str | Path | None = None, weights: str | Path = "sian-rain100l", **kwargs: Any
) -> AttentionExplorer:
    """Open an :class:`AttentionExplorer` in the current notebook and return it."""
    from IPython.display import display

    explorer = AttentionExplorer(image, weights, **kwargs)
    display(explorer.widget)
    return explorer
