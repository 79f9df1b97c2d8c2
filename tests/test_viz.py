"""derain_lib.viz: attention views, overlays, the stages x scales panel."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from benchmarks.latency import synthetic_attention  # also the latency benchmark's
from derain_lib import attention, tables, viz
from derain_lib.errors import DerainError
from derain_lib.inference import to_tensor
from derain_lib.models import ImageTooSmall, build_model
from derain_lib.tables import Score
from derain_lib.viz import results as plots

H, W = 33, 46  # odd sizes: coarse maps are 16x23 and 8x11, not exact divisors


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("sian", stages=2).eval()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(1).random((H, W, 3), dtype=np.float32)


@pytest.fixture(scope="module")
def att(model: torch.nn.Module, image: np.ndarray) -> viz.Attention:
    torch.set_num_threads(2)
    return attention.compute_attention(model, image)


@pytest.fixture(scope="module")
def records(model: torch.nn.Module, image: np.ndarray) -> list[dict]:
    with torch.inference_mode():
        return model(to_tensor(image), return_attention=True)[1]


def test_attention_holds_the_models_records(att: viz.Attention, records: list[dict]) -> None:
    assert att.n_stages == 2 and att.scales == (1, 2, 4) and att.channels == 32
    assert att.n_layers("dog") == 5 and att.n_layers("octave") == 6
    assert att.masks[1][2].shape == (32, H // 2, W // 2)
    np.testing.assert_array_equal(att.masks[1][4], records[1]["masks"][4][0].numpy())
    np.testing.assert_array_equal(att.rain[0], records[0]["rain"][0].permute(1, 2, 0).numpy())
    # Eq. 6: X_k = X - R_k
    np.testing.assert_allclose(att.image - att.rain[1], att.outputs[1], atol=1e-6)


@pytest.mark.parametrize(
    ("what", "scale", "channel", "layer"),
    [("mask", 1, None, 0), ("mask", 2, 7, 0), ("dog", 4, None, 3), ("octave", 2, 31, 5)],
)
def test_view_map_selects_stage_scale_channel_layer(
    att: viz.Attention, records: list[dict], what: str, scale: int, channel: int | None, layer: int
) -> None:
    key = {"mask": "masks", "dog": "dog", "octave": "octaves"}[what]
    stack = records[1][key][scale][0].numpy()
    if what != "mask":
        stack = stack[layer]
    want = stack.mean(axis=0) if channel is None else stack[channel]
    got = viz.view_map(att, 2, scale, what, channel, layer)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_upsample_nearest_repeats_cells_and_bilinear_interpolates() -> None:
    m = np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32)
    np.testing.assert_array_equal(viz.upsample(m, (4, 4), "nearest"), np.kron(m, np.ones((2, 2))))
    b = viz.upsample(m, (4, 4), "bilinear")
    assert b[0, 0] == 0.0 and b[3, 3] == 3.0 and 0 < b[1, 1] < b[2, 2] < 3
    with pytest.raises(ValueError, match="upsample"):
        viz.upsample(m, (4, 4), "cubic")


def test_render_opacity_blends_view_over_input(att: viz.Attention) -> None:
    as_u8 = lambda a: np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)  # noqa: E731
    np.testing.assert_array_equal(viz.render_view(att, 1, 1, "mask", opacity=0.0), as_u8(att.image))
    derained = viz.render_view(att, 2, 1, "derained", opacity=1.0)
    np.testing.assert_array_equal(derained, as_u8(np.clip(att.outputs[1], 0, 1)))
    half = viz.render_view(att, 2, 1, "derained", opacity=0.5).astype(int)
    mid = (as_u8(att.image).astype(int) + derained.astype(int)) / 2
    assert np.abs(half - mid).max() <= 1


def test_mask_colours_follow_the_colormap(att: viz.Attention) -> None:
    """Unstretched masks map 0..1 onto inferno; scale 4 cells cover 4x4 input pixels."""
    rgb = viz.render_view(att, 1, 4, "mask", opacity=1.0, stretch=False)
    v = att.masks[0][4].mean(axis=0)[1, 2]
    want = matplotlib.colormaps["inferno"](np.linspace(0, 1, 256))[int(v * 255), :3]
    np.testing.assert_array_equal(rgb[4:8, 8:12], np.broadcast_to(np.rint(want * 255), (4, 4, 3)))
    assert viz.value_range("mask", np.array([0.4, 0.6]), stretch=False) == (0.0, 1.0)
    lo, hi = viz.value_range("dog", np.array([-0.5, 0.1, 2.0]))
    assert lo == -hi and hi > 0


def test_controls_change_the_picture(att: viz.Attention) -> None:
    base = viz.render_view(att, 1, 1, "mask")
    assert base.shape == (H, W, 3) and base.dtype == np.uint8
    for other in (
        viz.render_view(att, 2, 1, "mask"),
        viz.render_view(att, 1, 2, "mask"),
        viz.render_view(att, 1, 1, "mask", channel=3),
        viz.render_view(att, 1, 1, "dog"),
        viz.render_view(att, 1, 1, "rain"),
    ):
        assert not np.array_equal(base, other)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stage": 0}, "stage must be 1..2"),
        ({"stage": 3}, "stage must be 1..2"),
        ({"scale": 3}, "scale must be one of"),
        ({"what": "features"}, "what must be one of"),
        ({"what": "dog", "layer": 5}, "dog layer must be 0..4"),
        ({"channel": 32}, "channel must be 0..31"),
        ({"opacity": 1.5}, "opacity must be in"),
    ],
)
def test_bad_view_arguments_name_the_problem(att: viz.Attention, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        viz.render_view(att, **kwargs)


@pytest.mark.parametrize(
    ("name", "match"), [("prenet", "PReNet has no scale-space"), ("sian-baseline", "'baseline'")]
)
def test_models_without_attention_are_refused(name: str, match: str) -> None:
    with pytest.raises(attention.NoAttentionError, match=match) as e:
        attention.compute_attention(build_model(name), np.zeros((16, 16, 3), np.float32))
    assert isinstance(e.value, DerainError)


def test_too_small_image_is_a_derain_error(model: torch.nn.Module) -> None:
    with pytest.raises(ImageTooSmall) as e:
        attention.compute_attention(model, np.zeros((9, 7, 3), np.float32))
    assert (e.value.width, e.value.height) == (7, 9) and isinstance(e.value, DerainError)


def test_panel_shows_every_stage_and_scale(att: viz.Attention, tmp_path) -> None:
    fig = viz.attention_panel(att, "mask")
    *axes, bar = fig.get_axes()
    assert len(axes) == 2 * (3 + 2)
    assert bar.get_label() == "<colorbar>"
    np.testing.assert_array_equal(axes[0].images[0].get_array(), viz.render_view(att, 1, 1, "mask"))
    np.testing.assert_array_equal(axes[7].images[0].get_array(), viz.render_view(att, 2, 4, "mask"))
    assert [a.get_title() for a in axes[:5]] == [
        "scale 1",
        "scale 1/2",
        "scale 1/4",
        "rain R_k",
        "derained X_k",
    ]
    path = viz.save_figure(fig, tmp_path / "sub" / "panel.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 400
    assert len(viz.attention_panel(att, "dog", layer=2, with_outputs=False).get_axes()) == 2 * 3 + 1
    with pytest.raises(ValueError, match="a panel shows one of"):
        viz.attention_panel(att, "rain")


def test_panel_notes_say_stretched_or_raw_with_the_range(att: viz.Attention) -> None:
    lo, hi = viz.value_range("mask", viz.view_map(att, 2, 2, "mask"))
    *axes, bar = viz.attention_panel(att, "mask").get_axes()
    assert axes[6].get_xlabel() == f"stretched {lo:.4g}-{hi:.4g} (1-99th pct)"
    assert axes[8].get_xlabel().startswith("stretched") and axes[9].get_xlabel().startswith("raw")
    assert [t.get_text() for t in bar.get_xticklabels()] == ["panel's low", "panel's high"]
    *axes, bar = viz.attention_panel(att, "mask", stretch=False).get_axes()
    assert axes[0].get_xlabel() == "raw 0-1 (same scale everywhere)"
    assert "raw" in bar.get_xlabel() and bar.get_xlim() == (0.0, 1.0)


def test_rerender_of_a_481x321_view_is_a_full_size_png() -> None:
    """The widget's work per control move (render + PNG encode) at Rain100L size; how long
    it takes: benchmarks/latency.py."""
    att = synthetic_attention(321, 481)
    for what, scale in [("mask", 1), ("dog", 2), ("octave", 4), ("rain", 1), ("derained", 1)]:
        png = viz.png_bytes(viz.render_view(att, 6, scale, what, layer=1, upsample_mode="bilinear"))
        assert Image.open(io.BytesIO(png)).size == (481, 321), (what, scale)


# --- figures of the results (derain_lib.viz.results), drawn from files written here ---


def test_benchmark_label_names_stand_in_data_as_such() -> None:
    assert tables.benchmark_label("rain100l") == "Rain100L"
    assert tables.benchmark_label("rain100l", True) == "embedded light (stand-in for Rain100L)"
    assert tables.benchmark_label("rain100h", True) == "embedded heavy (stand-in for Rain100H)"
    assert tables.benchmark_file_id("rain100h", True) == "embedded-heavy"
    assert tables.benchmark_file_id("rain100l") == "rain100l"
    stand_in = Score("sian/mae", "rain100l", RUN, "embedded light test", 4, 30.0, 0.9, True)
    real = Score("sian/mae", "rain100h", RUN, "Rain100H: test", 100, 29.0, 0.9)
    rows = [r for r in tables.build_table("table2", [stand_in, real]) if r["psnr"] is not None]
    assert [r["benchmark"] for r in rows] == ["embedded light (stand-in for Rain100L)", "Rain100H"]


RUN = tables.reproduced("smoke", "1a2b3c4d5e6f")
LOG_HEADER = "epoch,step,loss,lr,val_psnr,val_ssim,patches_per_s,elapsed_s\n"


def _run(tmp_path: Path, method: str, loss: str, evals: int = 1) -> dict:
    """A runs.json row with a log.csv: 8 steps of ``loss``, ``evals`` validations."""
    d = tmp_path / method.replace("/", "_")
    d.mkdir()
    value = {"ssim": -5.0, "l1": 0.05, "mse": 0.004}[loss]
    steps = "".join(f"1,{s},{value * (1 + 1 / s):.5f},0.001,,,1.0,{s}\n" for s in range(1, 9))
    vals = "".join(f"{e},{8 * e // evals},,,{30 + e}.5,0.9{e},,\n" for e in range(1, evals + 1))
    (d / "log.csv").write_text(LOG_HEADER + steps + vals)
    return {
        "method": method,
        "benchmark": "rain100l",
        "dataset": "light",
        "loss": loss,
        "stand_in": True,
        "status": "ok",
        "run_dir": str(d),
    }


def test_training_curves_give_each_loss_kind_its_own_labelled_panel(tmp_path: Path) -> None:
    runs = [
        _run(tmp_path, "sian/neg-ssim", "ssim"),
        _run(tmp_path, "sian-baseline/neg-ssim", "ssim"),
        _run(tmp_path, "sian/mae", "l1"),
        _run(tmp_path, "sian/mse", "mse"),
    ]
    ssim, mae, mse, val = plots.training_curves(runs).get_axes()
    assert [len(ax.lines) for ax in (ssim, mae, mse)] == [2, 1, 1]
    assert "negative SSIM" in ssim.get_title() and "MAE" in mae.get_title()
    assert "MSE" in mse.get_title()
    units = [ax.get_ylabel() for ax in (ssim, mae, mse)]
    assert all(units) and len(set(units)) == 3 and "intensity" in units[1]
    assert "embedded light (stand-in for Rain100L)" in ssim.get_title()
    # one validation per run: a dot per run with its value written, the runs on the x axis
    assert [t.get_text() for t in val.texts] == ["31.50 dB\nSSIM 0.910"] * 4
    assert all(len(line.get_xdata()) == 1 for line in val.lines)
    # each run named by model over loss (a hyphenated name never split mid-word)
    ticks = [t.get_text() for t in val.get_xticklabels()]
    assert ticks == ["sian\nneg-ssim", "sian-baseline\nneg-ssim", "sian\nmae", "sian\nmse"]
    assert val.get_ylabel() == "validation PSNR (dB)"
    assert "one evaluation (step 8)" in val.get_title()
    only_mae = plots.training_curves(runs, methods=("sian/mae",)).get_axes()
    assert len(only_mae) == 2 and "MAE" in only_mae[0].get_title()


def test_training_curves_draw_several_validations_as_a_curve(tmp_path: Path) -> None:
    runs = [_run(tmp_path, "sian/neg-ssim", "ssim", evals=4)]
    _, val = plots.training_curves(runs).get_axes()
    np.testing.assert_array_equal(val.lines[0].get_ydata(), [31.5, 32.5, 33.5, 34.5])
    assert val.get_xlabel() == "step" and not val.texts


def _scored_set(root: Path, method: str, d: str, names: list[str], gt: bool) -> str:
    """per_image.csv (and outputs, ground truths when ``gt``) of one method on one set."""
    folder = root / "smoke" / "eval" / d / method.replace("/", "_")
    (folder / "outputs").mkdir(parents=True)
    rows = "".join(f"{n},{20 + i},0.5\n" for i, n in enumerate(names))
    (folder / "per_image.csv").write_text("name,psnr,ssim\n" + rows)
    for i, n in enumerate(names):
        px = np.full((8, 12, 3), 40 * i, np.uint8)
        Image.fromarray(px).save(folder / "outputs" / f"{Path(n).stem}.png")
        if gt and i < 2:  # as keep_ground_truth: the first images only
            (folder / "ground_truth").mkdir(exist_ok=True)
            Image.fromarray(px).save(folder / "ground_truth" / f"{Path(n).stem}.png")
    return (folder / "per_image.csv").relative_to(root).as_posix()


def _scores(root: Path) -> list[Score]:
    names = ["a.png", "b.png", "c.png"]
    out = []
    for test, stand_in in (("embedded light test", True), ("Rain100L: sample", False)):
        d = "light" if stand_in else "real"
        for m, prov in (("input", "computed (x)"), ("sian/neg-ssim", RUN)):
            csv = _scored_set(root, m, d, names, gt=m == "input")
            out.append(Score(m, "rain100l", prov, test, 3, 21.0, 0.5, stand_in, csv))
    out.append(Score("prenet-released", "rain100l", tables.not_run("weights not found")))
    out.append(Score("sian-released", "rain100l", tables.not_run("weights not found")))
    return out


def test_comparison_drops_methods_not_run_and_names_them(tmp_path: Path) -> None:
    scores = _scores(tmp_path)
    sets = plots.figure_test_sets(scores)
    assert [(s.test_set, s.stand_in) for s in sets] == [
        ("Rain100L: sample", False),
        ("embedded light test", True),
    ]
    real, stand_in = sets
    fig = plots.comparison(tmp_path, scores, stand_in)
    axes = fig.get_axes()
    assert len(axes) == 2 * 3  # two images with ground truth; rainy, SIAN, ground truth
    assert [a.get_title() for a in axes[:3]] == [
        "rainy\n20.00 dB",
        "SIAN (trained here)\n20.00 dB",
        "ground truth\na",
    ]
    title = fig.get_suptitle()
    assert title.startswith("embedded light (stand-in for Rain100L): embedded light test")
    assert "2 of 3 scored test images shown" in title
    assert "not run: PReNet (released), SIAN (released)" in title
    caption = plots.comparison_caption(scores, stand_in, "Fig. 7")
    assert caption.startswith("Fig. 7 analogue on embedded light (stand-in for Rain100L)")
    assert caption.endswith("not run: PReNet (released), SIAN (released).")
    real_title = plots.comparison(tmp_path, scores, real, images=1).get_suptitle()
    assert real_title.startswith("Rain100L: Rain100L: sample; 1 of 3") and "stand-in" not in (
        real_title
    )


def test_table_bars_name_rows_not_run_instead_of_blank_bars(tmp_path: Path) -> None:
    scores = [s for s in _scores(tmp_path) if s.method != "input"]
    table = pd.DataFrame(tables.build_table("table3", scores))
    fig = plots.table_bars(table, "Table III")
    titles = [a.get_title() for a in fig.get_axes()]
    assert titles == [
        "embedded light (stand-in for Rain100L)\ntest set: embedded light test",
        "Rain100L\ntest set: Rain100L: sample",
    ]
    assert [len(a.patches) for a in fig.get_axes()] == [2, 2]  # this run and the paper's
    assert all("not run" not in t.get_text() for a in fig.get_axes() for t in a.texts)
    assert fig.get_suptitle().splitlines()[1:3] == [
        "not run (reasons in the table): Input (rainy vs ground truth) (Rain100L, Rain100H);",
        "PReNet (released weights) (Rain100L, Rain100H);",
    ]
