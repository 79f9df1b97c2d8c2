"""The benchmark's own-convolution ceiling replays all of the forward's convolution work."""

from __future__ import annotations

import torch

import benchmarks.bench as bench


def test_own_conv_replay_covers_every_convolution_of_the_forward() -> None:
    r = bench.own_conv_bound(runs=1, size=(40, 56))
    assert r["convs"] > 50  # six stages of blurs, masks, gates and fusions
    assert r["replay_flops"] == r["flops"]
    assert r["replay_s"] > 0 and r["forward_s"] > 0
    kinds = r["kinds"]
    # the per-kind breakdown accounts for every call and every FLOP of the replay
    assert sum(k["calls"] for k in kinds.values()) == r["convs"]
    assert sum(k["flops"] for k in kinds.values()) == r["replay_flops"]
    assert all(k["s"] > 0 for k in kinds.values())
    # blurs are depthwise; the stem reads the image and the previous output (6 channels)
    assert any(name.startswith("32->32 dw 3x3") for name in kinds)
    assert "6->32 3x3 at 40x56" in kinds


def test_conv_kind_names_depthwise_and_dense_convolutions() -> None:
    assert bench.conv_kind((1, 160, 80, 120), torch.empty(32, 160, 3, 3)) == "160->32 3x3 at 80x120"
    assert bench.conv_kind((1, 32, 9, 7), torch.empty(32, 1, 3, 3)) == "32->32 dw 3x3 at 9x7"
