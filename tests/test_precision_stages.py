"""``--stages K`` (stop early) and ``--precision`` (fp32 / bf16 / auto) for inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from derain_lib.cli import main
from derain_lib.data.io import read_image, write_png
from derain_lib.inference import predict
from derain_lib.metrics import quantize, score_pair
from derain_lib.models import build_model
from derain_lib.precision import cpu_flags, cpu_native_bf16, resolve_precision

#: The largest PSNR change bf16 may make for ``auto`` to pick it (issue 17).
BF16_PSNR_TOLERANCE_DB = 0.05


@pytest.mark.parametrize("name", ["sian", "sian-baseline+lstm", "prenet"])
def test_stages_k_is_the_kth_stage_of_the_full_run(name: str) -> None:
    model = build_model(name, channels=8).eval() if name != "prenet" else build_model(name)
    x = torch.rand(1, 3, 20, 28)
    with torch.inference_mode():
        full = model(x)
        assert len(full) == 6
        for k in range(1, 7):
            outs = model(x, stages=k)
            assert len(outs) == k
            assert torch.equal(outs[-1], full[k - 1]), k
        assert torch.equal(model(x, stages=6)[-1], full[-1])


@pytest.mark.parametrize("tile", [None, 16])
def test_predict_stages_are_every_stage_of_one_pass(tile: int | None) -> None:
    """Whole or in tiles: stage k of ``predict(every_stage=True)`` is ``predict(stages=k)``."""
    model = build_model("sian", channels=8).eval()
    img = np.random.default_rng(0).random((28, 36, 3), dtype=np.float32)
    outs = predict(model, img, tile=tile, overlap=4, every_stage=True)
    assert len(outs) == 6 and outs[0].shape == img.shape
    for k, y in enumerate(outs, 1):
        np.testing.assert_allclose(y, predict(model, img, tile, 4, stages=k), atol=1e-6)
    assert not np.allclose(outs[0], outs[-1])


def test_stages_stop_early() -> None:
    """Only K stages are computed: the shared CFA runs K times, not 6."""
    model = build_model("sian", channels=8).eval()
    calls = []
    model.cfa.register_forward_hook(lambda *_: calls.append(1))
    with torch.inference_mode():
        model(torch.rand(1, 3, 16, 16), stages=2)
    assert len(calls) == 2


@pytest.mark.parametrize("bad", [0, 7, -1, 2.0, True])
def test_stages_out_of_range(bad: object) -> None:
    with pytest.raises(ValueError, match="stages must be an integer from 1 to 6"):
        build_model("prenet")(torch.rand(1, 3, 8, 8), stages=bad)


def test_predict_stages_matches_model_output() -> None:
    model = build_model("sian", channels=8).eval()
    img = np.random.default_rng(0).random((20, 24, 3), dtype=np.float32)
    with torch.inference_mode():
        third = model(torch.from_numpy(img).permute(2, 0, 1)[None])[2]
    got = predict(model, img, stages=3)
    np.testing.assert_array_equal(got, third[0].permute(1, 2, 0).numpy())


@pytest.mark.parametrize(
    ("capability", "flags", "expected"),
    [
        ("AVX2", {"avx2", "fma"}, "fp32"),
        ("AVX512", {"avx512f", "avx512bw"}, "fp32"),
        ("AVX512", {"avx512f", "avx512_bf16"}, "bf16"),
        ("AMX", {"avx512f"}, "bf16"),
        ("AVX512", {"amx_bf16", "amx_tile"}, "bf16"),
        ("DEFAULT", set(), "fp32"),
    ],
)
def test_auto_precision_on_cpu(capability: str, flags: set, expected: str) -> None:
    got = resolve_precision("auto", "cpu", capability=capability, flags=frozenset(flags))
    assert got == expected


@pytest.mark.parametrize(("supported", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_cuda(supported: bool, expected: str) -> None:
    assert resolve_precision("auto", "cuda", cuda_bf16=supported) == expected


def test_explicit_precision_is_kept_and_unknown_rejected() -> None:
    assert resolve_precision("bf16", "cpu", capability="AVX2", flags=frozenset()) == "bf16"
    assert resolve_precision("fp32", "cuda", cuda_bf16=True) == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16")


def test_auto_is_fp32_on_this_cpu_without_native_bf16() -> None:
    if cpu_flags() & {"avx512_bf16", "amx_bf16"}:
        pytest.skip("this CPU has native bf16")
    assert not cpu_native_bf16()
    assert resolve_precision("auto", "cpu") == "fp32"


def test_bf16_within_its_psnr_change_on_a_crop(shared) -> None:
    from derain_lib.weights import load_model

    model = load_model(shared / "weights" / "sian_rain100l.pth", "sian").model.eval()
    sample = shared / "data" / "rain100l_sample"
    img = read_image(sample / "rainy" / "rain-001.png")[100:164, 200:264]
    gt = quantize(read_image(sample / "norain" / "norain-001.png")[100:164, 200:264])
    fp32 = score_pair(quantize(predict(model, img, precision="fp32")), gt)[0]
    bf16_pred = predict(model, img, precision="bf16")
    bf16 = score_pair(quantize(bf16_pred), gt)[0]
    assert bf16_pred.dtype == np.float32
    assert not np.array_equal(bf16_pred, predict(model, img)), "bf16 path not taken"
    assert abs(bf16 - fp32) < BF16_PSNR_TOLERANCE_DB, (fp32, bf16)


def test_cli_stages_and_precision(shared, tmp_path, capsys) -> None:
    img = read_image(shared / "data" / "rain100l_sample" / "rainy" / "rain-025.png")[:40, :48]
    src = tmp_path / "crop.png"
    write_png(src, quantize(img))
    weights = str(shared / "weights" / "sian_rain100l.pth")
    rc = main(["derain", str(src), "-o", str(tmp_path / "k2.png"), "--weights", weights,
               "--stages", "2", "--precision", "fp32"])  # fmt: skip
    assert rc == 0
    from derain_lib.weights import load_model

    model = load_model(weights, "sian").model.eval()
    expected = quantize(predict(model, read_image(src), stages=2))
    np.testing.assert_array_equal(quantize(read_image(tmp_path / "k2.png")), expected)
    capsys.readouterr()
    rc = main(["derain", str(src), "-o", str(tmp_path / "k7.png"), "--weights", weights,
               "--stages", "7"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1] == "derain: error: --stages 7: this model has stages 1 to 6"
    assert not (tmp_path / "k7.png").exists()


def test_evaluate_options_reach_the_run_config() -> None:
    from derain_lib.cli import build_parser
    from derain_lib.config import ConfigError, load_config

    args = build_parser().parse_args(
        ["evaluate", "--weights", "w.pth", "--data", "d", "--stages", "3", "--precision", "bf16"]
    )
    assert (args.stages, args.precision) == (3, "bf16")
    default = build_parser().parse_args(["evaluate", "--weights", "w.pth", "--data", "d"])
    # auto: evaluate resolves it to fp32 (the tables' protocol), derain measures (issue 35)
    assert (default.stages, default.precision) == (None, "auto")
    derain = build_parser().parse_args(["derain", "a.png", "-o", "o", "--weights", "w"])
    assert derain.precision == "auto"  # one default for derain and evaluate (issue 23 row 5)
    cfg = load_config("smoke", ["eval.stages=2", "eval.precision=auto"])
    assert (cfg.eval.stages, cfg.eval.precision) == (2, "auto")
    with pytest.raises(ConfigError, match="eval.precision"):
        load_config("smoke", ["eval.precision=fp16"])


def test_evaluate_rejects_a_stage_count_before_any_work() -> None:
    from derain_lib.errors import DerainError
    from derain_lib.evaluate import evaluate

    class NoData:
        pairs: list = []

        def __len__(self) -> int:
            raise AssertionError("evaluate read the data set before checking --stages")

    with pytest.raises(DerainError, match="--stages 7: this model has stages 1 to 6"):
        evaluate(build_model("prenet"), NoData(), stages=7)
