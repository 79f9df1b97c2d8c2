"""The optimised models equal the straightforward reference formulation (benchmarks/).

Weights are drawn so activations stay O(1) through all six stages (std 1/sqrt(fan_in))
and the attention masks vary (a larger gain on the mask convs), so a wrong blur, DoG,
gate order or state hand-over shows up far above the 1e-4 tolerance.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmarks.reference import reference_like
from derain_lib.models import build_model

TOL = 1e-4

CASES = [
    ("sian", {}),
    ("sian", {"preset": "paper"}),
    ("sian", {"blur_mode": "direct"}),
    ("sian-baseline", {}),
    ("sian-baseline", {"preset": "paper"}),
    ("sian-baseline+lstm", {}),
    ("sian-baseline+lstm", {"preset": "paper"}),
]
SIZES = [(2, 33, 47), (1, 9, 13)]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny inputs: one thread is several times faster than two on a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _init(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                gain = 30.0 if name.endswith(".mask") else 1.0
                std = gain / math.sqrt(m.weight[0].numel())
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * std)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) * 0.2 - 0.1)
    return model


def _maxdiff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    assert len(a) == len(b)
    for u, v in zip(a, b, strict=True):
        assert u.shape == v.shape
    return max((u - v).abs().max().item() for u, v in zip(a, b, strict=True))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize(("name", "kw"), CASES, ids=lambda c: str(c))
def test_inference_equals_reference(name: str, kw: dict, size: tuple[int, int, int]) -> None:
    model = _init(build_model(name, **kw)).eval()
    ref = reference_like(model)
    b, h, w = size
    x = torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        plain = model(x)  # the inference path (DoG written straight into its buffer)
        outs, recs = model(x, return_attention=True)
    with torch.no_grad():
        ref_outs, ref_recs = ref(x, return_attention=True)
    assert len(outs) == model.config.n_stages
    assert outs[-1].abs().max() > 0.1  # the weights carry signal to the output
    assert _maxdiff(plain, ref_outs) < TOL
    assert _maxdiff(outs, ref_outs) < TOL
    for rec, ref_rec in zip(recs, ref_recs, strict=True):
        assert _maxdiff([rec["rain"]], [ref_rec["rain"]]) < TOL
        for key in ("features", "masks", "dog", "octaves"):
            got = rec.get(key, {})
            want = {s: t for s, t in ref_rec[key].items()} if got or key == "features" else {}
            assert sorted(got) == sorted(want)
            assert not got or _maxdiff([got[s] for s in got], [want[s] for s in got]) < TOL
    if model.config.attention:
        masks = recs[-1]["masks"][1]
        assert masks.std() > 0.02  # attention is exercised, not a constant 0.5


@pytest.mark.parametrize(
    ("name", "kw"), [CASES[0], CASES[1], CASES[5], ("prenet", {})], ids=lambda c: str(c)
)
def test_training_gradients_equal_reference(name: str, kw: dict) -> None:
    model = _init(build_model(name, **kw)).train()
    ref = reference_like(model)
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 17, 23, generator=gen)
    weights = torch.randn(2, 3, 17, 23, generator=gen)
    grads, outs = [], []
    model_stem = getattr(model, "cfa", model).stem  # SIAN keeps its stem in the CFA
    for net, stem in ((model, model_stem), (ref, ref.stem)):
        xi = x.clone().requires_grad_(True)
        out = net(xi)  # the training path: standard layout, split/chunk gates, DoG by cat
        loss = sum((o * weights).sum() for o in out)
        loss.backward()
        grads.append((xi.grad, stem.weight.grad))
        outs.append([o.detach() for o in out])
    assert _maxdiff(*outs) < TOL
    (gx, gw), (rx, rw) = grads
    assert gx.abs().max() > 1e-3
    assert _maxdiff([gx], [rx]) < TOL * max(1.0, rx.abs().max().item())
    assert _maxdiff([gw], [rw]) < TOL * max(1.0, rw.abs().max().item())


def test_prenet_equals_reference() -> None:
    model = _init(build_model("prenet")).eval()
    ref = reference_like(model)
    x = torch.rand(2, 3, 21, 19, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        outs = model(x)
    with torch.no_grad():
        ref_outs = ref(x)
    assert outs[-1].abs().max() > 0.1
    assert _maxdiff(outs, ref_outs) < TOL


def test_lstm_in_place_path_equals_autograd_path_and_keeps_the_state() -> None:
    """Without autograd the gate activations run in place on the fresh gate tensor;
    the caller's state tensors must come back untouched and the result be the same."""
    cell = _init(build_model("prenet")).lstm
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(1, 32, 9, 11, generator=gen)
    state = (torch.randn(1, 32, 9, 11, generator=gen), torch.randn(1, 32, 9, 11, generator=gen))
    kept = (state[0].clone(), state[1].clone())
    for st in (None, state):
        with torch.no_grad():
            h, (_, c) = cell(x, st)
        with torch.enable_grad():
            h_ref, (_, c_ref) = cell(x, st)
        assert _maxdiff([h, c], [h_ref.detach(), c_ref.detach()]) < 1e-6
    assert torch.equal(state[0], kept[0]) and torch.equal(state[1], kept[1])


def test_outputs_are_plain_nchw() -> None:
    """channels_last is internal: callers get ordinary contiguous NCHW tensors."""
    model = build_model("sian-baseline").eval()
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 16, 20))[-1]
    assert out.is_contiguous()
