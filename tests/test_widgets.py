"""derain_lib.widgets: controls -> render mapping, caching, messages for bad input (no browser)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from derain_lib import widgets
from derain_lib.config import Config, ModelConfig, dump_config
from derain_lib.data.io import fit_size
from derain_lib.data.sources import open_data
from derain_lib.models import build_model
from derain_lib.precision import resolve_precision
from derain_lib.study import figures, plan
from derain_lib.study.plan import Params
from derain_lib.study.plan import shown as shown_path
from derain_lib.viz import attention as viz


def write_image(path: Path, h: int, w: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("images")
    return {
        "a": write_image(d / "a.png", 33, 46, 0),
        "b": write_image(d / "b.png", 40, 30, 1),
        "big": write_image(d / "big.png", 60, 90, 2),
    }


@pytest.fixture(scope="module")
def explorer(images: dict[str, Path]) -> widgets.AttentionExplorer:
    torch.set_num_threads(2)
    e = widgets.AttentionExplorer(
        images["a"],
        widgets.RANDOM_INIT,
        image_folder=images["a"].parent,
        with_runs=False,
        max_side=64,
    )
    assert e.attention is not None, e.message
    return e


def shown(e: widgets.AttentionExplorer) -> np.ndarray:
    """The picture the widget displays, decoded from its PNG bytes."""
    return np.asarray(Image.open(io.BytesIO(e.image.value)).convert("RGB"))


def test_starts_with_a_picture_of_the_first_view(explorer: widgets.AttentionExplorer) -> None:
    e = explorer
    assert e.message == "" and e.stage.max == 6 and len(e.channel.options) == 33
    assert [v for _, v in e.scale.options] == [1, 2, 4]
    folder = e.image_picker.options[1][1]
    assert [label for label, _ in e.image_picker.options] == [
        "a.png",
        *(f"{Path(folder).parent.name}/{n}.png" for n in ("a", "b", "big")),
    ]
    np.testing.assert_array_equal(shown(e), viz.render_view(e.attention, 1, 1, "mask"))
    assert "rendered in" in e.info.value and e.last_render_seconds > 0  # budget: benchmarks/


CONTROL_STEPS = [
    # (control, value set on it, viz.render_view argument, the value that argument must get)
    ("stage", 4, "stage", 4),
    ("scale", 2, "scale", 2),
    ("channel", 5, "channel", 5),
    ("what", "dog", "what", "dog"),
    ("layer", 3, "layer", 3),
    ("what", "octave", "what", "octave"),
    ("opacity", 0.25, "opacity", 0.25),
    ("upsample", "bilinear", "upsample_mode", "bilinear"),
    ("what", "rain", "what", "rain"),
    ("stage", 6, "stage", 6),
    ("what", "derained", "what", "derained"),
    ("what", "mask", "what", "mask"),
    ("channel", -1, "channel", None),
    ("stretch", False, "stretch", False),
    ("overlay", False, "opacity", 1.0),  # the map alone, not over the photo
]


def test_each_control_maps_to_the_viz_view(explorer: widgets.AttentionExplorer) -> None:
    """Setting controls one after another: the picture changes and equals the viz output
    for the expected arguments (accumulated here, not read back from the widget)."""
    e = explorer
    before = shown(e)
    expected: dict = {}
    for control, value, arg, arg_value in CONTROL_STEPS:
        getattr(e, control).value = value
        expected[arg] = arg_value
        now = shown(e)
        want = viz.render_view(e.attention, **expected)
        np.testing.assert_array_equal(now, want, err_msg=f"after {control}={value!r}")
        assert not np.array_equal(now, before), f"{control}={value!r} did not change the picture"
        before = now
    assert e.view_args() == {
        "stage": 6, "scale": 2, "what": "mask", "channel": None, "layer": 3, "opacity": 1.0,
        "upsample_mode": "bilinear", "stretch": False,
    }  # fmt: skip
    assert e.opacity.disabled  # no blending without the overlay
    e.overlay.value = True
    assert not e.opacity.disabled and e.view_args()["opacity"] == 0.25
    e.stretch.value, e.opacity.value, e.upsample.value, e.stage.value = True, 0.7, "nearest", 1


@pytest.mark.parametrize(
    ("what", "disabled", "layer_max"),
    [
        ("mask", {"layer"}, None),
        ("dog", {"stretch"}, 4),
        ("octave", {"stretch"}, 5),
        ("rain", {"scale", "channel", "layer", "stretch"}, None),
        ("derained", {"scale", "channel", "layer", "stretch"}, None),
    ],
)
def test_controls_that_do_not_apply_are_disabled(
    explorer: widgets.AttentionExplorer, what: str, disabled: set, layer_max: int | None
) -> None:
    e = explorer
    e.what.value = what
    controls = {"scale", "channel", "layer", "stretch"}
    assert {c for c in controls if getattr(e, c).disabled} == disabled
    if layer_max is not None:
        assert e.layer.max == layer_max
    e.what.value = "mask"


def test_forward_runs_once_per_image_and_weights(
    explorer: widgets.AttentionExplorer, images: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = viz.compute_attention
    monkeypatch.setattr(
        viz, "compute_attention", lambda m, x, p: calls.append(x.shape) or real(m, x, p)
    )
    e = explorer
    for stage in (2, 3, 1):
        e.stage.value = stage
    e.opacity.value = 0.6
    assert calls == []
    first = e.image_picker.value
    e.image_picker.value = str(images["b"])
    assert calls == [(40, 30, 3)] and e.attention.image.shape == (40, 30, 3)
    e.image_picker.value = first
    e.image_picker.value = str(images["b"])
    assert len(calls) == 1  # both pairs are in the cache
    e.image_picker.value = str(images["big"])
    assert calls[-1] == (43, 64, 3)  # shrunk to max_side=64
    e.image_picker.value = first


def test_precision_control_reruns_in_that_precision(
    explorer: widgets.AttentionExplorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert explorer.precision.options == ("fp32", "bf16", "auto")
    calls = []
    real = viz.compute_attention
    monkeypatch.setattr(viz, "compute_attention", lambda m, x, p: calls.append(p) or real(m, x, p))
    before = explorer.attention
    explorer.precision.value = "bf16"
    assert calls == ["bf16"] and explorer.attention is not before
    bf16_out = explorer.attention.outputs[-1]
    explorer.precision.value = "fp32"
    assert calls == ["bf16", "fp32"]
    fp32_out = explorer.attention.outputs[-1]
    assert not np.array_equal(bf16_out, fp32_out)
    if resolve_precision("auto") == "fp32":  # no native bf16 here: auto ran in fp32
        np.testing.assert_array_equal(before.outputs[-1], fp32_out)
    explorer.precision.value = "auto"


def test_unreadable_upload_shows_a_message_not_a_traceback(
    explorer: widgets.AttentionExplorer,
) -> None:
    e = explorer
    good = e.image_picker.value
    e.add_upload("broken.png", b"this is not a png")
    assert "broken.png: not a readable image" in e.message
    assert "broken.png" in e.status.value and "Traceback" not in e.status.value
    assert e.attention is None and e.image.value == b""
    e.image_picker.value = good
    assert e.attention is not None and e.message == "" and len(e.image.value) > 0


def test_uploaded_image_is_explored(explorer: widgets.AttentionExplorer, images) -> None:
    e = explorer
    good = e.image_picker.value
    e.add_upload("up.png", images["b"].read_bytes())
    assert e.image_picker.label == "upload: up.png" and e.attention.image.shape == (40, 30, 3)
    e.image_picker.value = good


def test_weights_of_another_model_show_a_message(
    explorer: widgets.AttentionExplorer, tmp_path: Path
) -> None:
    e = explorer
    prenet = tmp_path / "prenet.pt"
    state = {"format": "derain-model", "model": "prenet", "model_kwargs": {}}
    torch.save({**state, "state_dict": build_model("prenet").state_dict()}, prenet)
    e.weights_file.value = str(prenet)
    assert (
        e.message
        == f"{prenet}: PReNet has no scale-space attention; the explorer needs SIAN weights"
    )
    assert e.attention is None and e.image.value == b""
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"junk")
    e.weights_file.value = str(junk)
    assert e.message.startswith(f"{junk}: not a torch checkpoint")
    e.weights_picker.value = widgets.RANDOM_INIT
    assert e.attention is not None and e.message == ""


def test_released_weights_load_and_prenet_release_is_refused(shared: Path, images) -> None:
    e = widgets.AttentionExplorer(
        images["a"], "sian-rain100l", weights_dir=shared / "weights", with_runs=False
    )
    assert e.message == "" and "sian_rain100l.pth (released:sian-rain100l)" in e.model_info
    first = shown(e)
    e.stage.value = 6
    assert not np.array_equal(first, shown(e))
    e.weights_file.value = str(shared / "weights" / "prenet_rain100l.pth")
    assert "prenet_rain100l.pth: PReNet has no scale-space attention" in e.message


def test_missing_image_and_weights_are_messages(images, monkeypatch) -> None:
    monkeypatch.setenv("DERAIN_CACHE", str(images["a"].parent / "cache"))
    monkeypatch.delenv("DERAIN_WEIGHTS_DIR", raising=False)
    e = widgets.AttentionExplorer(with_runs=False)
    assert e.message.startswith("no image") and e.attention is None
    e = widgets.AttentionExplorer(
        images["a"], "sian-rain100h", weights_dir=images["a"].parent, with_runs=False
    )
    assert e.message.startswith("sian-rain100h: released weights sian_rain100h.pth not found in")
    assert "pass weights_dir=<folder holding sian_rain100h.pth>" in e.message
    assert "or pick a run or the untrained SIAN in the weights list" in e.message
    assert ("sian-rain100h (not found)", "sian-rain100h") in e.weights_picker.options
    # no picture at all (an empty Image widget is a broken-image icon), the message instead
    assert e.image.layout.display == "none" and e.image.value == b"" and e.legend.value == ""
    assert "pass weights_dir=" in e.status.value
    e.weights_picker.value = widgets.RANDOM_INIT
    assert e.message == "" and e.image.layout.display is None and len(e.image.value) > 0


def test_legend_gives_the_value_range_and_whether_normalised(
    explorer: widgets.AttentionExplorer,
) -> None:
    e = explorer
    e.what.value, e.stretch.value, e.channel.value = "mask", True, -1
    values = viz.view_map(e.attention, e.stage.value, e.scale.value, "mask")
    assert e.view_range == viz.value_range("mask", values, True) and e.normalised is True
    lo, hi = e.view_range
    assert 0 < lo < hi < 1 and f"range {lo:.3g} to {hi:.3g}; normalised" in e.legend.value
    assert "linear-gradient" in e.legend.value
    e.stretch.value = False
    assert e.view_range == (0.0, 1.0) and e.normalised is False
    assert "range 0 to 1; raw: the sigmoid" in e.legend.value
    e.what.value = "dog"
    lo, hi = e.view_range
    assert lo == -hi and e.normalised is True and "symmetric around 0" in e.legend.value
    e.what.value = "rain"
    rain = viz.view_map(e.attention, e.stage.value, 1, "rain")
    assert e.view_range == (0.0, float(np.percentile(rain, 99.5))) and e.normalised
    e.what.value = "derained"
    assert e.view_range == (0.0, 1.0) and e.normalised is False
    assert "linear-gradient" not in e.legend.value and "raw: RGB clipped" in e.legend.value
    e.what.value, e.stretch.value = "mask", True


def test_layer_and_stretch_controls_carry_an_explanation(
    explorer: widgets.AttentionExplorer,
) -> None:
    e = explorer
    assert e.layer.tooltip == widgets.LAYER_HELP and "DoG layer" in e.layer.tooltip
    assert e.stretch.tooltip == widgets.STRETCH_HELP and "1st-99th" in e.stretch.tooltip
    assert "which layer of the scale space" in e.help.value
    assert "untick for the raw 0-1 scale" in e.help.value


def test_save_panel_writes_the_static_figure(explorer: widgets.AttentionExplorer, tmp_path) -> None:
    path = explorer.save_panel(tmp_path / "smoke" / "attention_panel.png")
    with Image.open(path) as im:
        assert im.format == "PNG"
    empty = widgets.AttentionExplorer(with_runs=False)
    assert empty.save_panel(tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


def test_fit_size_keeps_aspect_and_small_images() -> None:
    img = np.zeros((321, 481, 3), np.float32)
    assert fit_size(img, 100).shape == (67, 100, 3)
    assert fit_size(img, None) is img and fit_size(img, 500) is img


@pytest.mark.parametrize(("profile", "shape"), [("smoke", (64, 96)), ("quick", (160, 240))])
def test_images_are_the_test_images_of_the_profile(profile: str, shape: tuple) -> None:
    images = figures.profile_images(Params(profile))
    e = widgets.AttentionExplorer(None, widgets.RANDOM_INIT, images=images, with_runs=False)
    options = [(label, Path(v)) for label, v in e.image_picker.options]
    assert options == images
    sets = [t for ts in plan.test_sets(Params(profile)).values() for t in ts]
    assert [t.spec for t in sets] == [f"embedded:{s}:test:{profile}" for s in ("light", "heavy")]
    n = [len(open_data(t.spec)) for t in sets]
    assert [label for label, _ in options] == [
        f"{t.label}: {p.name}" for t in sets for p in open_data(t.spec).pairs
    ] and len(options) == sum(n)
    assert e.message == "" and e.attention.image.shape[:2] == shape


def fake_run(root: Path, key: str, model: str, finished: bool) -> Path:
    """A run folder of profile smoke with an untrained 2-stage SIAN (or a PReNet) as
    ``model.pt``; returns that file."""
    d = root / "runs" / key
    d.mkdir(parents=True)
    cfg = Config(name="smoke", model=ModelConfig(name=model))
    (d / "config.yaml").write_text(dump_config(cfg))
    net = build_model(model, stages=2) if model == "sian" else build_model(model)
    kwargs = {"stages": 2} if model == "sian" else {}
    ckpt = {"format": "derain-model", "model": model, "model_kwargs": kwargs}
    torch.save({**ckpt, "state_dict": net.state_dict()}, d / "model.pt")
    if finished:
        (d / "metrics.json").write_text('{"n": 1, "psnr": 30.0, "ssim": 0.9}')
    return d / "model.pt"


def test_finished_runs_of_the_run_cache_are_offered(
    images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = fake_run(tmp_path, "aaaa1111bbbb", "sian", finished=True)
    fake_run(tmp_path, "cccc2222dddd", "sian", finished=False)
    fake_run(tmp_path, "eeee3333ffff", "prenet", finished=True)
    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path))
    label = "run smoke · default · sian · loss ssim · seed 0 · finished, stale"  # no code.txt
    assert widgets.run_weights() == [(label, str(done))]
    e = widgets.AttentionExplorer(images["a"], widgets.RANDOM_INIT)
    assert (label, str(done)) in e.weights_picker.options
    e.weights_picker.value = str(done)
    assert e.message == "" and e.stage.max == 2 and "model.pt (checkpoint)" in e.model_info


def test_attention_panel_falls_back_on_the_run_this_profile_trained(
    shared: Path, images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notebook 06's panel: released weights when found; else the profile's own full SIAN
    (neg-SSIM), said so; else "not run" with both reasons."""
    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path))
    monkeypatch.setenv("DERAIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DERAIN_WEIGHTS_DIR", raising=False)
    here = Params("smoke", weights_dir=str(shared / "weights"))
    assert figures.panel_weights(here, "sian-rain100l") == (
        "sian-rain100l",
        "released sian-rain100l weights",
    )
    gone = Params("smoke", weights_dir=str(tmp_path / "none"))
    spec, why = figures.panel_weights(gone, "sian-rain100l")
    where = shown_path(tmp_path / "none")  # named as the user sees it
    assert spec is None and why.startswith(
        f"not run: released weights sian_rain100l.pth not found in {where}, "
    )
    assert "; no run of profile smoke either (runs.json): " in why and "01_train" in why
    model = fake_run(tmp_path, "aaaa1111bbbb", "sian", finished=True)
    row = {
        "method": "sian/neg-ssim",
        "benchmark": "rain100l",
        "dataset": "light",
        "stand_in": True,
        "status": "ok",
        "run": "aaaa1111bbbb",
        "checkpoint": str(model),
    }
    runs_json = tmp_path / "smoke" / "run-state" / "runs.json"
    runs_json.parent.mkdir(parents=True)
    runs_json.write_text(json.dumps([{**row, "method": "sian/mae"}]))
    spec, why = figures.panel_weights(gone, "sian-rain100l")
    assert spec is None and why.endswith("; profile smoke trains no Rain100L model")
    runs_json.write_text(json.dumps([{**row, "method": "sian/mae"}, row]))
    spec, who = figures.panel_weights(gone, "sian-rain100l")
    assert spec == str(model) and who == (
        "SIAN trained by profile smoke (run aaaa1111bb, loss ssim, seed 0, trained on the "
        "embedded light stand-in data) in place of the released sian-rain100l weights, "
        "which were not found"
    )
    e = widgets.AttentionExplorer(images["a"], spec, with_runs=False)
    assert e.message == "" and e.attention.n_stages == 2
    fig = viz.attention_panel(e.attention, title=who)
    assert fig.get_suptitle().startswith(who)  # then how the maps are drawn
