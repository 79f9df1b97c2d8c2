"""The benchmark's own-convolution ceiling replays all of the forward's convolution work."""

from __future__ import annotations

import torch

import benchmarks.bench as bench


def test_own_conv_replay_covers_every_convolution_of_the_forward() -> None:
    r = bench.own_conv_bound(runs=1, size=(40, 56))
    assert r["convs"] > 50  # six stages of blurs, masks, gates and fusions
    # the replay's FLOPs, counted from the shapes it replays, against torch's flop counter
    # on the forward itself: equal only if the replay holds every convolution of the forward
    assert r["replay_flops"] == r["flops"]
    assert r["replay_s"] > 0 and r["forward_s"] > 0
    kinds = r["kinds"]
    assert all(k["s"] > 0 for k in kinds.values())
    # the stem reads the image and the previous output (6 channels) once per stage: six
    # 3x3 convolutions 6 -> 32 at full size, 2 * H * W * 32 * 6 * 9 FLOPs each
    assert kinds["6->32 3x3 at 40x56"] == {
        "calls": 6, "flops": 6 * 2 * 40 * 56 * 32 * 6 * 9, "s": kinds["6->32 3x3 at 40x56"]["s"]
    }  # fmt: skip
    # blurs are depthwise: 2 * H * W * 32 * 9 FLOPs per call
    blur = kinds["32->32 dw 3x3 at 40x56"]
    assert blur["calls"] > 0 and blur["flops"] == blur["calls"] * 2 * 40 * 56 * 32 * 9


def test_conv_kind_names_depthwise_and_dense_convolutions() -> None:
    assert bench.conv_kind((1, 160, 80, 120), torch.empty(32, 160, 3, 3)) == "160->32 3x3 at 80x120"
    assert bench.conv_kind((1, 32, 9, 7), torch.empty(32, 1, 3, 3)) == "32->32 dw 3x3 at 9x7"


def test_backends_report_takes_every_ratio_from_the_same_run() -> None:
    r = {
        "command": "python -m benchmarks.bench --backends-only",
        "date": "2026-12-06 16:40 UTC",
        "machine": {"cpu": "CPU", "logical_cpus": 2, "capability": "AVX512"},
        "load": [1.0],
        "backends": {
            "times": {"torch fp32": [2.0, 2.2], "openvino bf16": [0.5, 0.6], "reference": [3.0]},
            "peak_gflops": 100.0,
            "flops": 100e9,
            "maxabs": {"torch fp32": 0.0, "openvino bf16": 7e-3},
            "psnr": {"torch fp32": [30.0, 31.0], "openvino bf16": [30.01, 30.98]},
            "derain_choice": "openvino bf16",
            "evaluate_choice": "torch fp32",
            "choices": ["backend auto: openvino bf16", "backend auto: torch fp32"],
            "graph_s": 0.0,
            "photos": {"n": 2, "s": {"torch fp32": 8.0, "openvino bf16": 2.0}, "sizes": [(4, 6)]},
        },
    }
    text = bench.backends_report(r)
    assert "| openvino | bf16 | 0.50 | 4.00x | 6.00x | 200% | 7.0e-03 | +0.010, -0.020 |" in text
    assert "| torch | fp32 | 2.00 | 1.00x | 1.50x | 50% |" in text
    assert "default (openvino bf16) 2.0 s: 4.00x" in text
    assert text.startswith(bench.BACKENDS_BEGIN) and text.rstrip().endswith(bench.BACKENDS_END)
