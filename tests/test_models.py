"""Architecture tests: shapes, variants, parameter counts, attention retrieval, scale space."""

from __future__ import annotations

import math

import pytest
import torch
from devices import DEVICES, DTYPES, tol

from derain_lib.models import (
    SIAN,
    ImageTooSmall,
    PReNet,
    ScaleSpace,
    SIANConfig,
    build_model,
    count_parameters,
    gaussian_blur,
)
from derain_lib.models.scale_space import gaussian_kernel1d

VARIANTS = ["sian", "sian-baseline", "sian-baseline+lstm", "sian-paper", "prenet"]


def test_full_official_parameter_count_matches_released_model():
    assert count_parameters(build_model("sian")) == 491_939


def test_variant_counts_differ_by_exactly_the_removed_modules():
    full = count_parameters(build_model("sian"))
    lstm = count_parameters(build_model("sian-baseline+lstm"))
    base = count_parameters(build_model("sian-baseline"))
    mask_conv = 160 * 32 * 9 + 32  # one 5C -> C attention conv per scale
    assert full - lstm == 3 * mask_conv
    # the baseline keeps the ConvLSTMs (MODEL_SPEC §4): it differs from baseline+lstm in K only
    assert base == lstm == 353_603
    assert count_parameters(build_model("prenet")) == 168_963


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("hw", [(8, 8), (9, 13), (17, 30), (33, 47)])
def test_output_has_input_size_for_any_size(name, hw):
    model = build_model(name, channels=8) if name != "prenet" else PReNet(channels=8)
    x = torch.rand(2, 3, *hw)
    outs = model(x)
    stages = 1 if name == "sian-baseline" else 6
    assert len(outs) == stages
    assert all(o.shape == x.shape for o in outs)
    assert torch.isfinite(outs[-1]).all()


def test_too_small_input_is_a_clear_error():
    with pytest.raises(ImageTooSmall) as e:
        build_model("sian", channels=4)(torch.rand(1, 3, 7, 20))
    assert (e.value.width, e.value.height, e.value.where) == (20, 7, "")
    assert isinstance(e.value, ValueError) and str(e.value).endswith("at least 8x8 pixels")


def test_stages_and_channels_are_configurable():
    m = build_model("sian", stages=3, channels=16)
    assert len(m(torch.rand(1, 3, 16, 16))) == 3
    assert m.cfa.stem.out_channels == 16


def test_baseline_is_one_stage_with_convlstms_and_no_attention():
    m = build_model("sian-baseline")
    assert m.cfa.scale_space is None and m.config.n_stages == 1
    assert all(b.mask is None and b.lstm is not None for b in m.cfa.branches)
    m2 = build_model("sian-baseline+lstm")
    assert m2.cfa.scale_space is None and m2.config.n_stages == 6
    assert all(b.lstm is not None for b in m2.cfa.branches)


@pytest.mark.parametrize("preset", ["official", "paper"])
def test_baseline_is_the_first_stage_of_baseline_lstm(preset):
    torch.manual_seed(0)
    lstm = build_model("sian-baseline+lstm", preset=preset).eval()
    base = build_model("sian-baseline", preset=preset).eval()
    base.load_state_dict(lstm.state_dict(), strict=True)  # the same parameters, by name
    x = torch.rand(1, 3, 26, 35)
    with torch.no_grad():
        one, six = base(x), lstm(x)
    assert len(one) == 1 and len(six) == 6
    torch.testing.assert_close(one[0], six[0], rtol=0, atol=1e-6)
    assert not torch.allclose(six[0], six[1])  # the later stages do change the image


@pytest.mark.parametrize("preset", ["official", "paper"])
def test_attention_is_retrievable_without_changing_the_result(preset):
    m = build_model("sian", preset=preset, channels=8).eval()
    x = torch.rand(1, 3, 21, 34)
    with torch.no_grad():
        plain = m(x)
        outs, records = m(x, return_attention=True)
    for a, b in zip(plain, outs, strict=True):
        assert torch.equal(a, b)
    assert len(records) == 6
    r = records[2]
    assert set(r) >= {"masks", "dog", "octaves", "features", "rain"}
    assert torch.allclose(x - r["rain"], outs[2])
    for s, (h, w) in {1: (21, 34), 2: (10, 17), 4: (5, 8)}.items():
        assert r["masks"][s].shape == (1, 8, h, w)
        assert r["dog"][s].shape == (1, 5, 8, h, w)
        assert r["octaves"][s].shape == (1, 6, 8, h, w)
        assert ((r["masks"][s] >= 0) & (r["masks"][s] <= 1)).all()


def test_presets_differ_in_the_named_fields_only():
    off, pap = SIANConfig.from_preset("official"), SIANConfig.from_preset("paper")
    diff = {k for k, v in off.to_dict().items() if pap.to_dict()[k] != v}
    assert diff == {"preset", "stem_activation", "mask_activation", "gauss_radius", "gauss_padding"}
    with pytest.raises(ValueError, match="unknown SIAN preset"):
        SIANConfig.from_preset("nope")
    with pytest.raises(ValueError, match="unknown model"):
        build_model("unet")


def test_official_init_is_normal_002_with_zero_bias():
    m = build_model("sian")
    w = torch.cat([p.flatten() for n, p in m.named_parameters() if n.endswith("weight")])
    assert abs(w.std().item() - 0.02) < 1e-3
    assert all(p.abs().sum() == 0 for n, p in m.named_parameters() if n.endswith("bias"))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sian", "prenet"])
def test_forward_on_each_device_and_dtype_is_the_cpu_float32_result(name, device, dtype):
    torch.manual_seed(0)
    ref = build_model(name, channels=8, stages=3).eval()
    x = torch.rand(1, 3, 24, 31)
    model = build_model(name, channels=8, stages=3).eval()
    model.load_state_dict(ref.state_dict())
    model.to(device, dtype)
    with torch.no_grad():
        want, got = ref(x), model(x.to(device, dtype))
    assert [(o.device.type, o.dtype, o.shape) for o in got] == [(device, dtype, x.shape)] * 3
    # float32: the same arithmetic up to the order of sums (cuDNN on CUDA); bfloat16: each
    # stage's output within 0.1 of float32 (values in [0, 1]) over three stages
    atol = tol(dtype, 1e-5, 0.1)
    for a, b in zip(want, got, strict=True):
        torch.testing.assert_close(b.float().cpu(), a, rtol=0, atol=atol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_reach_every_parameter(device, dtype):
    m = build_model("sian", channels=4, stages=2).to(device, dtype)
    sum(
        o.float().mean() for o in m(torch.rand(1, 3, 16, 20, device=device, dtype=dtype))
    ).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    assert all(p.grad.dtype == dtype for p in m.parameters())


# --- Gaussian scale space --------------------------------------------------------------


@pytest.mark.parametrize("sigma,radius", [(1.226, 1), (1.6, None), (3.09, None), (0.8, 4)])
def test_blur_kernel_sums_to_one(sigma, radius):
    r = radius if radius is not None else math.ceil(3 * sigma)
    k = gaussian_kernel1d(sigma, r)
    assert k.shape == (2 * r + 1,)
    assert abs(float(k.sum()) - 1.0) < 1e-6
    assert abs(float(torch.outer(k, k).sum()) - 1.0) < 1e-6


def test_separable_blur_equals_the_2d_kernel_conv_with_zero_padding():
    x = torch.rand(1, 4, 15, 19)
    k = gaussian_kernel1d(1.3, 1)
    k2 = torch.outer(k, k).expand(4, 1, 3, 3)
    ref = torch.nn.functional.conv2d(x, k2, padding=1, groups=4)
    assert torch.allclose(gaussian_blur(x, 1.3, radius=1), ref, atol=1e-6)


def test_dog_of_a_constant_image_is_zero():
    x = torch.full((1, 2, 40, 40), 0.7)
    octaves = ScaleSpace(radius=None, padding="reflect")(x)  # paper preset: exact everywhere
    for o in octaves:
        assert ScaleSpace.dog(o).abs().max() < 1e-6
    # the official 3x3 zero-padded blur darkens borders, but the interior is still flat
    octaves = ScaleSpace(radius=1, padding="zeros")(x)
    assert ScaleSpace.dog(octaves[0])[..., 8:-8, 8:-8].abs().max() < 1e-6


def test_incremental_blurs_equal_direct_blurs_for_the_paper_preset():
    """Incremental and direct agree only as far as truncation and borders allow: with a
    radius of 4 sigma and compared >= 4 sigma_max away from the borders, within 1e-4."""
    torch.manual_seed(1)
    x = torch.rand(1, 3, 96, 96)
    kw = {"octaves": 1, "radius": None, "truncate": 4.0, "padding": "reflect"}
    inc = ScaleSpace(mode="incremental", **kw)(x)[0]
    direct = ScaleSpace(mode="direct", **kw)(x)[0]
    m = math.ceil(4 * 1.6 * 2 ** (5 / 3)) * 2  # >= 4 sigma of the largest blur, both ways
    assert (inc - direct)[..., m:-m, m:-m].abs().max() < 1e-4
    # two different computations (not the same code path twice)
    assert (inc - direct).abs().max() > 0


def test_octaves_start_from_the_max_pooled_fourth_layer():
    x = torch.rand(1, 2, 32, 32)
    ss = ScaleSpace()
    o1, o2, _ = ss(x)
    assert torch.equal(o2[:, 0], torch.nn.functional.max_pool2d(o1[:, 3], 2))
    assert [round(s, 3) for s in ss.step_sigma] == [1.226, 1.545, 1.947, 2.453, 3.09]
    assert abs(ss.init_sigma - math.sqrt(1.6**2 - 0.5**2)) < 1e-12


def test_sian_accepts_module_config_objects():
    cfg = SIANConfig.from_preset("paper", variant="baseline+lstm", stages=2, channels=4)
    m = SIAN(cfg)
    assert m.config.stem_activation and m.config.n_stages == 2
