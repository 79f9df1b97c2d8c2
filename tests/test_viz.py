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
from derain_lib import tables
from derain_lib.errors import DerainError
from derain_lib.inference import to_tensor
from derain_lib.models import ImageTooSmall, build_model
from derain_lib.study.beyond.generalisation import cells
from derain_lib.study.tabulate import build_table
from derain_lib.tables import Score
from derain_lib.viz import attention as viz
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
    return viz.compute_attention(model, image)


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
    with pytest.raises(viz.NoAttentionError, match=match) as e:
        viz.compute_attention(build_model(name), np.zeros((16, 16, 3), np.float32))
    assert isinstance(e.value, DerainError)


def test_too_small_image_is_a_derain_error(model: torch.nn.Module) -> None:
    with pytest.raises(ImageTooSmall) as e:
        viz.compute_attention(model, np.zeros((9, 7, 3), np.float32))
    assert (e.value.width, e.value.height) == (7, 9) and isinstance(e.value, DerainError)


def test_panel_shows_every_stage_and_scale(att: viz.Attention, tmp_path) -> None:
    fig = viz.attention_panel(att, "mask")
    *axes, bar = fig.get_axes()
    assert len(axes) == 2 * (1 + 3 + 2)  # the photo, three scales, R_k and X_k per stage
    assert bar.get_label() == "<colorbar>"
    # the maps alone (not over the photo), on the absolute 0-1 scale of the sigmoid
    full = viz.upsample(viz.view_map(att, 1, 1, "mask"), (H, W))
    np.testing.assert_array_equal(
        axes[1].images[0].get_array(), viz.colorize(full, 0, 1, "inferno")
    )
    np.testing.assert_array_equal(axes[0].images[0].get_array(), np.clip(att.image, 0, 1))
    assert not axes[6].images  # the photo once, in the first row
    assert [a.get_title() for a in axes[:6]] == [
        "input",
        "scale 1",
        "scale 1/2",
        "scale 1/4",
        "rain R_k",
        "derained X_k",
    ]
    path = viz.save_figure(fig, tmp_path / "sub" / "panel.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 400
    dog = viz.attention_panel(att, "dog", layer=2, with_outputs=False)
    assert len(dog.get_axes()) == 2 * (1 + 3) + 1
    with pytest.raises(ValueError, match="a panel shows one of"):
        viz.attention_panel(att, "rain")


def _flat(att: viz.Attention, level: float, spread: float) -> viz.Attention:
    """``att`` with every mask squeezed to ``level`` +- ``spread`` (a trained-flat model)."""

    def squeezed(m: np.ndarray) -> np.ndarray:
        ramp = np.linspace(-1.0, 1.0, m[0].size, dtype=np.float32).reshape(m.shape[1:])
        return np.broadcast_to(level + spread * ramp, m.shape).copy()

    masks = [{s: squeezed(m) for s, m in k.items()} for k in att.masks]
    return viz.Attention(att.image, att.outputs, att.rain, masks, att.dog, att.octaves)


@pytest.mark.parametrize("what", ["mask", "dog"])
def test_attention_figures_share_one_colour_scale_and_state_it(
    att: viz.Attention, what: str
) -> None:
    """Every map panel of a figure is coloured with the one range the colorbar states: a
    flat mask (values 0.498-0.502) reads flat instead of being stretched to full contrast."""
    src = _flat(att, 0.5, 0.002) if what == "mask" else att
    fig = viz.attention_panel(src, what, with_outputs=False)
    *axes, bar = fig.get_axes()
    lo, hi = viz.panel_range(src, what)
    assert (lo, hi) == ((0.0, 1.0) if what == "mask" else (lo, hi)) and lo < hi
    assert bar.get_xlim() == pytest.approx((lo, hi))
    label = bar.get_xlabel()
    assert f"one colour scale for every panel, {lo:.4g} to {hi:.4g}" in label
    maps = [a for a in axes if a.images and a.get_title() != "input"]
    assert len(maps) == att.n_stages * len(att.scales)
    for k, ax in enumerate(maps):  # rows: stages, columns: scales
        stage, scale = k // len(att.scales) + 1, att.scales[k % len(att.scales)]
        full = viz.upsample(viz.view_map(src, stage, scale, what), (H, W))
        want = viz.colorize(full, lo, hi, viz.CMAPS[what])
        np.testing.assert_array_equal(ax.images[0].get_array(), want)
    if what == "mask":
        assert "values in this figure span 0.49" in label and " to 0.50" in label
        for ax in maps:  # flat reads flat: at most a few of 256 colour levels apart
            img = np.asarray(ax.images[0].get_array())
            assert np.ptp(img, axis=(0, 1)).max() < 0.05
    fig_npz = viz.attention_panel(att, "mask", vrange=(0.2, 0.8), with_outputs=False)
    assert fig_npz.get_axes()[-1].get_xlim() == pytest.approx((0.2, 0.8))


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
    cell = {"method": "sian/mae", **RUN, "ssim": 0.9}
    stand_in = Score(
        **cell, benchmark="rain100l", test_set="embedded light test", n=4, psnr=30.0, stand_in=True
    )
    real = Score(**cell, benchmark="rain100h", test_set="Rain100H: test", n=100, psnr=29.0)
    rows = [r for r in build_table("table2", [stand_in, real]) if r["psnr"] is not None]
    assert [r["benchmark"] for r in rows] == ["embedded light (stand-in for Rain100L)", "Rain100H"]


RUN = {"kind": "reproduced", "detail": "smoke, run 1a2b3c4d5e6f"}
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
        if gt and i < 2:  # as score_one: the first images only
            (folder / "ground_truth").mkdir(exist_ok=True)
            Image.fromarray(px).save(folder / "ground_truth" / f"{Path(n).stem}.png")
    return (folder / "per_image.csv").relative_to(root).as_posix()


def _scores(root: Path) -> list[Score]:
    names = ["a.png", "b.png", "c.png"]
    out = []
    for test, stand_in in (("embedded light test", True), ("Rain100L: sample", False)):
        d = "light" if stand_in else "real"
        for m, prov in (("input", {"kind": "computed", "detail": "x"}), ("sian/neg-ssim", RUN)):
            csv = _scored_set(root, m, d, names, gt=m == "input")
            out.append(
                Score(
                    method=m,
                    benchmark="rain100l",
                    **prov,
                    test_set=test,
                    n=3,
                    psnr=21.0,
                    ssim=0.5,
                    stand_in=stand_in,
                    per_image_csv=csv,
                )
            )
    for m in ("prenet-released", "sian-released"):
        out.append(
            Score(method=m, benchmark="rain100l", kind="not_run", detail="weights not found")
        )
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
    table = pd.DataFrame(build_table("table3", scores))
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


# --- issue 26: figures that show the truth ------------------------------------------------


def overlapping_titles(fig: matplotlib.figure.Figure) -> list[tuple[str, str]]:
    """Pairs (title, what it overlaps) among the figure's titles (suptitle, axes titles) and
    its visible axes, from the bounding boxes matplotlib draws them with."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    r = fig.canvas.get_renderer()
    shrink = 1.0  # pixels: touching is not overlapping

    def box(artist):  # noqa: ANN001, ANN202
        b = artist.get_window_extent(r)
        return b.expanded(
            (b.width - 2 * shrink) / max(b.width, 1e-9),
            (b.height - 2 * shrink) / max(b.height, 1e-9),
        )

    titles = [(f"title {a.get_title()!r}", box(a.title)) for a in fig.axes if a.get_title()]
    if fig._suptitle is not None and fig._suptitle.get_text():
        titles.append((f"suptitle {fig._suptitle.get_text()!r}", box(fig._suptitle)))
    axes = [(f"axes {i}", box(a)) for i, a in enumerate(fig.axes) if a.get_visible() and a.axison]
    bad = []
    for i, (name, b) in enumerate(titles):
        bad += [(name, other) for other, c in titles[i + 1 :] if b.overlaps(c)]
        bad += [(name, other) for other, c in axes if b.overlaps(c)]
    return bad


def _claims() -> list[dict]:
    """Rows of claims.csv (one row per claim, an evidence kind and two verdicts each)."""

    def row(claim, evidence, direction, d=None, reason=""):  # noqa: ANN001, ANN202
        v = "" if d is None else d
        return {
            "claim": claim,
            "table": "III",
            "benchmark": "Rain100H",
            "test_set": "Rain100H: test",
            "evidence": evidence,
            "better": "a",
            "worse": "b",
            "n_images": 100,
            "n_seeds": 1,
            "diff_psnr": v,
            "lo_psnr": "" if d is None else d - 0.2,
            "hi_psnr": "" if d is None else d + 9,
            "diff_ssim": "" if d is None else 0.004,
            "lo_ssim": "" if d is None else 0.001,
            "hi_ssim": "" if d is None else 0.2,
            "paper_diff_psnr": 0.65,
            "paper_diff_ssim": 0.01,
            "direction": direction,
            "size": "agrees",
            "reason": reason,
        }

    return [
        row("full", "released, full set", "supported", 0.6),
        row(
            "weak",
            "released, full set",
            "inconclusive (underpowered: MDE 0.26 > claimed 0.22)",
            0.1,
        ),
        row("partial", "released, partial set", "inconclusive", 0.3),
        row("trained", "trained here", "contradicted", -0.4),
        row("stand", "pipeline check", "no verdict", 5.7, "pipeline check: stand-in data"),
        row("ko", "inference-time sensitivity of the released model", "no verdict", 0.2),
        row("rain1400", "", "not run", None, "no Rain1400 test data"),
    ]


def test_forest_plot_has_a_row_for_every_claim_grouped_by_evidence() -> None:
    rows = _claims()
    fig = plots.claims_forest(rows)
    psnr, ssim = fig.get_axes()
    labels = [t.get_text() for t in psnr.get_yticklabels()]
    groups = [t for t in labels if t.startswith("— ")]
    data = [t for t in labels if not t.startswith("— ")]
    assert len(data) == len(rows)  # every claim, the ones not run included
    for r in rows:
        assert sum(t.startswith(f"III: {r['claim']}\n") for t in data) == 1, r["claim"]
    assert groups == [
        "— released, full set —",
        "— released, partial set —",
        "— trained here —",
        "— pipeline check —",
        "— inference-time sensitivity of the released model —",
        "— not run —",
    ]
    weak = next(t for t in data if t.startswith("III: weak"))
    assert weak.endswith("→ inconclusive (underpowered: MDE 0.26 > claimed 0.22)"), weak
    assert any("no Rain1400 test data" in t.get_text() for t in psnr.texts)
    # a pipeline check is listed with its reason, its +5.7 dB not drawn as an effect
    assert any("pipeline check: stand-in data" in t.get_text() for t in psnr.texts)
    drawn = [ln for ln in psnr.lines if ln.get_marker() == "o"]
    assert len(drawn) == 5 and all(abs(ln.get_xdata()[0]) < 1 for ln in drawn)
    # the paper's marks stay readable: the x range follows them, not the widest interval
    lim = psnr.get_xlim()[1]
    assert 2.5 * 0.65 <= lim < 5
    clipped = [t.get_text() for t in psnr.texts if t.get_text().startswith("+")]
    assert clipped  # the interval beyond the range is drawn as an arrow, its bound written
    assert overlapping_titles(fig) == []


def test_density_figure_states_its_image_count_and_flags_tone_shifts() -> None:
    rows = []
    for i in range(8):
        for lv in range(3):
            base = {
                "image": f"img{i}",
                "level": lv,
                "level_name": f"l{lv}",
                "input_psnr": 30.0 - 5 * lv,
                "stand_in": i >= 6,
            }
            rows.append({**base, "model": "input", "gain": 0.0})
            rows.append(
                {
                    **base,
                    "model": "sian-rain100l",
                    "gain": 2.0 + i,
                    "tone_shift": -9.0 if i == 0 else 0.0,
                    "tone_shifted": i == 0,
                }
            )
    cal = {
        "light": {
            "benchmark": "rain100l",
            "real_input_psnr": 26.9,
            "factor": 1.3,
            "synthetic_input_psnr": 26.95,
            "real_images": 100,
            "real_test_set": "t",
        }
    }
    from derain_lib.viz import beyond as bviz

    fig = bviz.density_figure({"rows": rows, "images": 8, "calibration": cal})
    title = fig.get_suptitle()
    assert "n = 8 clean test images (6 real)" in title
    assert "rain100l-like: x1.30 density, Input 26.95 vs real 26.90 dB" in title
    ax = fig.get_axes()[0]
    rings = [
        ln for ln in ax.lines if ln.get_markerfacecolor() == "none" and len(ln.get_xdata()) == 1
    ]
    assert len(rings) == 3  # image 0 at each of the three levels
    median = [ln for ln in ax.lines if ln.get_label() == "median"][0]
    np.testing.assert_allclose(median.get_ydata(), [5.5, 5.5, 5.5])
    assert overlapping_titles(fig) == []


def test_training_curves_put_one_and_six_stage_losses_on_one_scale(tmp_path: Path) -> None:
    full = {**_run(tmp_path, "sian/neg-ssim", "ssim"), "model": "sian"}
    base = {**_run(tmp_path, "sian-baseline/neg-ssim", "ssim"), "model": "sian-baseline"}
    # the baseline sums one stage: its logged loss is a sixth of the six-stage one's
    log = Path(base["run_dir"]) / "log.csv"
    frame = pd.read_csv(log)
    frame["loss"] = frame["loss"] / 6
    frame.to_csv(log, index=False)
    ssim = plots.training_curves([full, base]).get_axes()[0]
    a, b = (ln.get_ydata() for ln in ssim.lines)
    assert np.median(a) == pytest.approx(np.median(b), rel=0.05)
    assert "per stage" in ssim.get_ylabel()


def test_photo_grid_has_at_most_three_photos_a_row_with_zoomed_crops(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for m in ("rainy", "a", "b", "c"):
        (tmp_path / m).mkdir()
        for name in ("p1", "p2"):
            Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(
                tmp_path / m / f"{name}.png"
            )
    fig = plots.photo_grid(tmp_path, title="real rain")
    assert overlapping_titles(fig) == []  # draws the figure: positions after the layout
    images = [a for a in fig.get_axes() if a.get_title() != "zoom"]
    zooms = [a for a in fig.get_axes() if a.get_title() == "zoom"]
    assert len(images) == len(zooms) == 8
    top = {round(a.get_position().y0, 3) for a in images}
    assert len(top) == 4  # 2 photos x 2 rows: 3 then 1 image a row
    assert max(sum(round(a.get_position().y0, 3) == y for a in images) for y in top) == 3
    width = images[0].get_position().width * fig.get_figwidth()
    assert width > 3.0  # inches: three a row across a 15-inch figure


def test_photo_grid_zooms_where_the_first_method_changed_the_photo_most(tmp_path: Path) -> None:
    rainy = np.zeros((60, 80, 3), np.uint8)
    derained = rainy.copy()
    derained[40:56, 52:68] = 255  # the one region the model changed
    for m, img in (("rainy", rainy), ("a", derained)):
        (tmp_path / m).mkdir()
        Image.fromarray(img).save(tmp_path / m / "p.png")
    box = plots.photo_grid(tmp_path).get_axes()[0].patches[0]
    assert (box.get_x(), box.get_y(), box.get_width()) == (52, 40, 16)  # 16: 0.28 of 60


def test_beyond_figures_have_no_overlapping_titles() -> None:
    from derain_lib.viz import beyond as bviz

    auc = [
        {
            "source": src,
            "image": "x",
            "stage": k,
            "scale": s,
            "what": w,
            "channel": c,
            "auc": 0.5 + 0.01 * k,
            "cells": 100,
        }
        for src in ("sian-rain100l on synthetic light", "sian-rain100h on synthetic heavy")
        for k in (1, 2, 3)
        for s in (1, 2, 4)
        for w, c in (("mask", 0), ("mask", 1), ("dog", None))
    ]
    fig = bviz.auc_figure(auc)
    assert overlapping_titles(fig) == []
    assert [a.get_title() for a in fig.get_axes()[:3]] == [
        "scale 1, 100 cells, n=1",
        "scale 1/2, 100 cells, n=1",
        "scale 1/4, 100 cells, n=1",
    ]
    gen = [
        {
            "model": m,
            "test_set": t,
            "image": str(i),
            "scene": str(i),
            "stand_in": False,
            "input_psnr": 25.0,
            "psnr": 30.0,
            "ssim": 0.9,
            "gain": 5.0 + i,
            "benchmark": "rain100l",
        }
        for m in ("sian-rain100l", "prenet-rain100l")
        for t in ("A", "B")
        for i in range(3)
    ]
    fig = bviz.generalisation_figure(cells(gen))
    assert overlapping_titles(fig) == []
    ax = fig.get_axes()[0]
    assert "gain over the input" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A\n(n=3 scenes)", "B\n(n=3 scenes)"]
    assert sorted(t.get_text().split("\n")[0] for t in ax.texts) == ["+6.00"] * 4


def test_stage_by_stage_scores_every_stage_of_the_released_sian(shared: Path, monkeypatch) -> None:
    from derain_lib.study.figures import stage_by_stage
    from derain_lib.study.plan import Params

    monkeypatch.setenv("DERAIN_DATA", str(shared / "no-prepared-data"))  # no user cache
    p = Params("smoke", str(shared / "data"), str(shared / "weights"))
    rows = stage_by_stage(p, "sian-rain100l", images=1)
    assert [r["stage"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0]["test_set"].startswith("Rain100L") and rows[-1]["psnr"] > 30
    assert stage_by_stage(Params("smoke", None, str(shared / "no-weights")), "sian-rain100l") == []


def test_a_claim_without_a_test_set_names_its_benchmark() -> None:
    rows = [
        {"claim": "Ours beats PReNet", "table": "III", "benchmark": "Rain100H", "test_set": t,
         "evidence": "released, full set", "direction": "not run", "reason": "no data"}
        for t in (None, float("nan"))
    ]  # fmt: skip
    labels = [r["label"] for r in plots.forest_claims(rows)]
    assert labels and all(lb.endswith("Rain100H: no test set") for lb in labels), labels


def test_seed_dots_draw_each_seed_beside_the_seed_mean() -> None:
    from derain_lib.viz.seeds import seed_dots

    rows = [
        {"test_set": t, "label": m, "seed": s, "psnr": v}
        for t in ("A", "B")
        for m, vals in (("sian", (30.0, 32.0)), ("baseline", (28.0, 29.0)))
        for s, v in ((0, vals[0]), (1, vals[1]), ("mean", sum(vals) / 2))
    ]
    fig = seed_dots(pd.DataFrame(rows), "Table V")
    axes = fig.get_axes()
    assert [a.get_title() for a in axes] == ["A", "B"]
    bars = axes[0].patches
    assert [b.get_height() for b in bars] == [31.0, 28.5]
    assert [t.get_text() for t in axes[0].texts] == ["31.00", "28.50"]
    dots = sorted(
        xy for ln in axes[0].lines for xy in zip(ln.get_xdata(), ln.get_ydata(), strict=True)
    )
    assert dots == [(0, 30), (0, 32), (1, 28), (1, 29)]  # every seed at its method's x
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["sian", "baseline"]
    empty = seed_dots(pd.DataFrame(rows).iloc[:0], "Table V")
    assert "nothing scored" in empty.axes[0].texts[0].get_text()
