"""--device: parsing, the auto choice (CUDA mocked), the model and tensors on the device
asked for, exact fp32 on a GPU, whole-image inference on a GPU unless it would not fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from derain_lib import commands
from derain_lib.cli import build_parser
from derain_lib.config import DEVICE_PATTERN, ConfigError, load_config
from derain_lib.device import DeviceError, exact_fp32, resolve_device
from derain_lib.inference import AUTO_TILE, auto_tile, predict, predict_fitting
from derain_lib.study.plan import Params, config_for
from derain_lib.train import pick_device
from derain_lib.weights import load_model


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_device_strings_are_checked() -> None:
    for ok in ("auto", "cpu", "cuda", "cuda:0", "cuda:12"):
        assert DEVICE_PATTERN.match(ok)
    for bad in ("gpu", "cuda:", "cuda:x", "CPU", "mps", 3):
        with pytest.raises(DeviceError, match="choose one of auto, cpu, cuda, cuda:N"):
            resolve_device(bad)


@pytest.mark.parametrize("cmd", [["derain", "x.png", "-o", "out"], ["reproduce"],
                                 ["evaluate", "--weights", "w", "--data", "d"]])  # fmt: skip
def test_the_commands_that_run_a_model_take_device(cmd: list[str]) -> None:
    parser = build_parser()
    assert parser.parse_args([*cmd[:1], *cmd[1:], "--weights", "w"] if cmd[0] == "derain"
                             else cmd).device == "auto"  # fmt: skip
    extra = ["--weights", "w"] if cmd[0] == "derain" else []
    assert parser.parse_args([*cmd, *extra, "--device", "cuda:1"]).device == "cuda:1"
    with pytest.raises(SystemExit):
        parser.parse_args([*cmd, *extra, "--device", "gpu"])


def test_auto_without_cuda_is_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    with pytest.raises(DeviceError, match="no CUDA device is available"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="train.device"):
        pick_device("cuda:0")


def test_auto_with_cuda_is_the_first_gpu_or_the_process_own(two_gpus: None) -> None:
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("auto", local_rank=1) == torch.device("cuda", 1)  # under torchrun
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="has 2 CUDA device"):
        resolve_device("cuda:2")
    assert pick_device("auto", 1) == torch.device("cuda", 1)


def test_load_model_puts_the_model_on_the_device(shared: Path) -> None:
    lw = load_model(shared / "weights" / "sian_rain100l.pth", "sian", device=torch.device("meta"))
    assert {p.device.type for p in lw.model.parameters()} == {"meta"}
    lw = load_model(shared / "weights" / "sian_rain100l.pth", "sian", device="cpu")
    assert {p.device.type for p in lw.model.parameters()} == {"cpu"}


class Recorder(nn.Module):
    """Parameters on ``device``; the forward records where its input is and whether TF32
    was allowed, and returns half the input on the CPU."""

    def __init__(self, device: str = "cpu", fail_above: int | None = None) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1, device=device))
        self.fail_above, self.calls = fail_above, []

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.calls.append((x.device.type, tuple(x.shape[-2:]), torch.backends.cudnn.allow_tf32))
        if self.fail_above is not None and max(x.shape[-2:]) > self.fail_above:
            raise torch.OutOfMemoryError("CUDA out of memory (mocked)")
        return [torch.zeros(x.shape) + 0.5 if x.device.type == "meta" else x * 0.5]


def test_predict_sends_the_image_to_the_model_device_with_tf32_off() -> None:
    img = np.random.default_rng(0).random((20, 24, 3), dtype=np.float32)
    m = Recorder("meta")
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = True  # cuDNN's default
    try:
        out = predict(m, img)
        assert torch.backends.cudnn.allow_tf32 is True  # restored after
    finally:
        torch.backends.cudnn.allow_tf32 = before
    assert m.calls == [("meta", (20, 24), False)]
    assert out.shape == img.shape and np.all(out == 0.5)


def test_exact_fp32_restores_the_flags() -> None:
    torch.backends.cuda.matmul.allow_tf32 = True
    with exact_fp32():
        assert not torch.backends.cuda.matmul.allow_tf32
    assert torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False


def test_gpu_tiles_only_when_the_image_would_not_fit() -> None:
    gib = 2**30
    assert auto_tile(3000, 4000, "cuda:0", free=40 * gib) is None  # a 12 MP photo, whole
    assert auto_tile(3000, 4000, "cpu") == AUTO_TILE  # the CPU keeps its 512x512 rule
    assert auto_tile(512, 512, "cpu") is None and auto_tile(512, 516, "cpu") == AUTO_TILE
    side = auto_tile(3000, 4000, "cuda:0", free=8 * gib)
    assert side is not None and AUTO_TILE < side < 3000 and side % 4 == 0
    assert auto_tile(3000, 4000, "cuda:0", free=gib // 100) == AUTO_TILE


def test_an_out_of_memory_whole_image_is_retried_in_tiles() -> None:
    img = np.random.default_rng(1).random((300, 600, 3), dtype=np.float32)
    m = Recorder(fail_above=AUTO_TILE)  # "runs out of memory" above 512 px
    out = predict_fitting(m, img, None, None, "fp32")
    np.testing.assert_array_equal(out, img * np.float32(0.5))
    assert m.calls[0][1] == (300, 600)  # whole first
    assert all(max(hw) <= AUTO_TILE + 3 for _, hw, _ in m.calls[1:]) and len(m.calls) >= 3
    with pytest.raises(torch.OutOfMemoryError):  # a tile the user chose is not changed
        predict_fitting(Recorder(fail_above=100), img, 256, None, "fp32")


def test_commands_pass_the_device_on(monkeypatch: pytest.MonkeyPatch, two_gpus: None) -> None:
    seen: dict = {}

    def fake_pipeline(*a: object, **kw: object) -> dict:
        seen["reproduce"] = kw["device"]
        return {}

    def fake_get_or_run(cfg, *a: object, **kw: object):  # noqa: ANN001, ANN202
        seen["evaluate"] = cfg.train.device
        raise SystemExit(0)

    monkeypatch.setattr(commands, "run_pipeline", fake_pipeline)
    monkeypatch.setattr(commands, "get_or_run", fake_get_or_run)
    p = build_parser()
    args = p.parse_args(["reproduce", "--profile", "smoke", "--device", "cuda:1"])
    commands.COMMANDS[args.command](args)
    args = p.parse_args(["evaluate", "--weights", "w.pt", "--data", "embedded:light:test:smoke",
                         "--model", "sian", "--device", "cuda:1"])  # fmt: skip
    with pytest.raises(SystemExit):
        commands.COMMANDS[args.command](args)
    assert seen == {"reproduce": "cuda:1", "evaluate": "cuda:1"}


def test_notebook_device_reaches_every_run_config() -> None:
    auto = config_for(Params("smoke"), "light")
    assert auto == load_config("smoke", ["dataset=light"])  # auto: the run keys unchanged
    cfg = config_for(Params("smoke", device="cuda:1"), "light", ["train.seed=3"])
    assert (cfg.train.device, cfg.train.seed) == ("cuda:1", 3)
    user = config_for(Params("smoke", overrides=("train.device=cpu",), device="cuda"), "light")
    assert user.train.device == "cpu"  # an explicit override wins
