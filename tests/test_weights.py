"""Released weights: parity with the authors' outputs, conversion, and every bad-file error."""

from __future__ import annotations

import json
import shutil
import socket

import numpy as np
import pytest
import torch

from derain_lib.data.io import read_image, read_image_uint8
from derain_lib.inference import predict
from derain_lib.metrics import quantize, score_pair
from derain_lib.models import build_model
from derain_lib.weights import RELEASED, WeightsError, load_model, read_checkpoint, resolve

IMAGES = ["rain-001.png", "rain-025.png", "rain-050.png", "rain-100.png"]


@pytest.fixture(scope="module")
def reference(shared):
    return json.loads((shared / "weights/reference/reference.json").read_text())


@pytest.fixture(scope="module")
def outputs(shared):
    """The last-stage float outputs of our SIAN and PReNet on the four sample images."""
    sian = load_model("sian-rain100l", "sian", weights_dir=shared / "weights", allow_download=False)
    prenet = load_model("prenet-rain100l", "prenet", weights_dir=shared / "weights")
    out = {}
    for name in IMAGES:
        x = read_image(shared / "data/rain100l_sample/rainy" / name)
        out[name] = (predict(sian.model, x), predict(prenet.model, x))
    return out


def test_sian_float_output_matches_the_authors_code(shared, outputs):
    ref = np.load(shared / "weights/reference/sian_rain100l_rain-001_out.npz")["out"]
    ours = outputs["rain-001.png"][0]
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-4


@pytest.mark.parametrize("name", IMAGES)
def test_sian_and_prenet_scores_match_the_reference(shared, reference, outputs, name):
    gt = read_image_uint8(shared / "data/rain100l_sample/norain" / name.replace("rain", "norain"))
    ref = reference["per_image"][name]
    sian, prenet = outputs[name]
    p, s = score_pair(quantize(sian, "round"), gt)  # the authors' eval.py: cv2.imwrite rounds
    assert abs(p - ref["sian_rain100l"]["psnr"]) < 0.01
    assert abs(s - ref["sian_rain100l"]["ssim"]) < 0.0005
    p, s = score_pair(quantize(prenet, "truncate"), gt)  # PReNet's test script truncates
    assert abs(p - ref["prenet_rain100l"]["psnr"]) < 0.01
    assert abs(s - ref["prenet_rain100l"]["ssim"]) < 0.0005


def test_quantised_outputs_equal_the_authors_pngs_almost_everywhere(shared, outputs):
    """PNG values can differ only where float noise crosses a rounding boundary."""
    for name in IMAGES:
        theirs = read_image_uint8(shared / "weights/reference/sian_rain100l" / name)
        ours = quantize(outputs[name][0], "round")
        diff = np.abs(ours.astype(int) - theirs.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_unused_released_conv_is_reported_not_silently_dropped(shared):
    lw = load_model(shared / "weights/sian_rain100h.pth")
    assert lw.model_name == "sian" and lw.source == "released:sian-rain100h"
    assert lw.ignored_keys == [
        "body.conv_m.0.bias",
        "body.conv_m.0.weight",
        "body.conv_m.2.bias",
        "body.conv_m.2.weight",
    ]
    assert "ignored 4 unused tensors" in lw.describe()


def test_every_released_file_loads_into_its_architecture(shared):
    for w in RELEASED.values():
        lw = load_model(w.name, weights_dir=shared / "weights", allow_download=False)
        assert lw.model_name == w.family and lw.sha256 == w.sha256


def test_wrong_architecture_is_one_clear_error(shared):
    with pytest.raises(WeightsError, match="holds prenet weights, but --model sian"):
        load_model(shared / "weights/prenet_rain100l.pth", "sian")
    with pytest.raises(WeightsError, match="but the model is sian-baseline "):
        load_model(shared / "weights/sian_rain100l.pth", "sian-baseline")


@pytest.mark.parametrize(
    ("model", "kwargs", "want"),
    [
        ("sian-paper", {}, "sian-paper (paper preset, full, K=6)"),
        ("sian", {"stages": 3}, "sian (official preset, full, K=3)"),
        ("sian-baseline+lstm", {}, "sian-baseline+lstm (official preset, baseline+lstm, K=6)"),
        ("sian", {"gauss_padding": "reflect"}, "sian (official preset, full, K=6)"),
    ],
)
def test_released_sian_refuses_another_config(shared, model, kwargs, want):
    path = shared / "weights/sian_rain100l.pth"
    with pytest.raises(WeightsError) as e:
        load_model(path, model, **kwargs)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: holds sian (official preset, full, K=6)")
    assert f"but the model is {want}" in msg and "strict_config=False" in msg
    if model == "sian-baseline+lstm":  # no attention convs: the tensors cannot fit anyway
        with pytest.raises(WeightsError, match="do not fit the model"):
            load_model(path, model, strict_config=False, **kwargs)
        return
    # asked for explicitly (fine-tuning): it loads, and says so
    lw = load_model(path, model, strict_config=False, **kwargs)
    assert lw.config_override and want in lw.config_override
    assert "config mismatch allowed" in lw.describe()
    assert load_model(path, "sian").config_override is None  # the matching model: no note


def test_released_prenet_refuses_another_stage_count(shared):
    with pytest.raises(WeightsError, match=r"holds prenet \(K=6\) weights, .* prenet \(K=3\)"):
        load_model(shared / "weights/prenet_rain100l.pth", "prenet", stages=3)


def test_wrong_sha256_is_detected(shared, tmp_path):
    shutil.copy(shared / "weights/prenet_rain100l.pth", tmp_path / "sian_rain100l.pth")
    with pytest.raises(WeightsError, match="sha256 .* does not match"):
        load_model("sian-rain100l", weights_dir=tmp_path, allow_download=False)


def test_truncated_empty_and_garbage_files(shared, tmp_path):
    data = (shared / "weights/sian_rain100l.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "junk.pth").write_bytes(b"this is not a checkpoint")
    for name, msg in [("cut", "truncated or corrupt"), ("empty", "empty"), ("junk", "corrupt")]:
        with pytest.raises(WeightsError, match=msg) as e:
            load_model(tmp_path / f"{name}.pth")
        assert "\n" not in str(e.value) and str(tmp_path / name) in str(e.value)


def test_missing_keys_and_foreign_checkpoints(shared, tmp_path):
    sd = read_checkpoint(shared / "weights/sian_rain100l.pth")
    del sd["body.lstm.1.conv_hf.weight"]
    torch.save(sd, tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match="missing key body.lstm.1.conv_hf.weight"):
        load_model(tmp_path / "missing.pth")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="not SIAN, PReNet or derain weights"):
        load_model(tmp_path / "other.pth")


def test_own_checkpoint_format_round_trips(tmp_path):
    m = build_model("sian-baseline+lstm", channels=8, stages=2)
    kw = {"channels": 8, "stages": 2}
    torch.save(
        {
            "format": "derain-model",
            "model": "sian-baseline+lstm",
            "model_kwargs": kw,
            "state_dict": m.state_dict(),
        },
        tmp_path / "mine.pth",
    )
    lw = load_model(tmp_path / "mine.pth")
    assert lw.model_name == "sian-baseline+lstm" and lw.source == "checkpoint"
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(lw.model(x)[-1], m.eval()(x)[-1])
    with pytest.raises(WeightsError, match="holds sian weights, but --model prenet"):
        load_model(tmp_path / "mine.pth", "prenet")
    with pytest.raises(WeightsError, match="'sian-baseline\\+lstm', not 'sian'"):
        load_model(tmp_path / "mine.pth", "sian")
    with pytest.raises(WeightsError, match=r"K=2\) weights, but the model is .*K=3\)"):
        load_model(tmp_path / "mine.pth", stages=3)


def test_own_checkpoint_records_and_checks_its_model_config(tmp_path):
    from derain_lib.config import Config, ModelConfig
    from derain_lib.train import model_file

    cfg = Config(model=ModelConfig(name="sian", kwargs={"channels": 8, "stages": 2}))
    m = build_model("sian", channels=8, stages=2)
    state = model_file(cfg, m)
    assert state["model_config"]["stages"] == 2 and state["model_config"]["preset"] == "official"
    # the recorded config is what the file is checked against, not only its name and kwargs
    state["model_config"] = {**state["model_config"], "preset": "paper"}
    torch.save(state, tmp_path / "m.pt")
    with pytest.raises(WeightsError, match=r"holds sian \(paper preset, full, K=2\) weights"):
        load_model(tmp_path / "m.pt")


def test_offline_download_failure_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("DERAIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DERAIN_WEIGHTS_DIR", raising=False)
    with socket.socket() as s:  # a mirror on a port nothing listens on: offline
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DERAIN_MIRROR", f"http://127.0.0.1:{port}")
    with pytest.raises(
        WeightsError,
        match=rf"sian-rain1400: not found locally and could not be downloaded \(http://127.0.0.1:"
        rf"{port}/pangbo1997/RainRemoval/[0-9a-f]{{40}}/pretrained_models/rain1400.pth did not "
        r"answer.*put it in --weights-dir",
    ):
        resolve("sian-rain1400")
    assert not (tmp_path / "cache" / "weights" / "sian_rain1400.pth").exists()
    with pytest.raises(WeightsError, match="no such file, and not a released weights name"):
        resolve(tmp_path / "nothing.pth")
