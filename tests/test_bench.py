"""The benchmark's own-convolution ceiling replays all of the forward's convolution work."""

from __future__ import annotations

import benchmarks.bench as bench


def test_own_conv_replay_covers_every_convolution_of_the_forward() -> None:
    r = bench.own_conv_bound(runs=1, size=(40, 56))
    assert r["convs"] > 50  # six stages of blurs, masks, gates and fusions
    assert r["replay_flops"] == r["flops"]
    assert r["replay_s"] > 0 and r["forward_s"] > 0
