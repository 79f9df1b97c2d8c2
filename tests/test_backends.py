"""``derain export`` and ``--backend``: exported graphs equal eager, choices, fallbacks.

Tests that run a graph backend skip when it is not installed (``make setup`` installs the
``cpu-fast`` extra, so CI runs them); the choice logic is tested with stand-in graphs.
The released SIAN Rain100L graph is exported once per session (about 30 s).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from derain_lib import backends, cli
from derain_lib.cli import main
from derain_lib.data.io import read_image
from derain_lib.info import RELEASED
from derain_lib.models import build_model


def _needs(*packages: str) -> None:
    for p in packages:
        if not backends.installed(p):
            pytest.skip(f"{p} not installed (the cpu-fast extra; make setup installs it)")


@pytest.fixture(scope="session")
def exported(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``derain export --weights sian-rain100l`` (the released file from shared)."""
    _needs("onnx", "onnxscript", "onnxruntime")
    out = tmp_path_factory.mktemp("export") / "m.onnx"
    argv = ["export", "--weights", "sian-rain100l", "--weights-dir", str(shared / "weights")]
    assert main([*argv, "-o", str(out)]) == 0
    return out


def _image(shared: Path, name: str = "rain-001.png") -> torch.Tensor:
    img = read_image(shared / "data" / "rain100l_sample" / "rainy" / name)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].contiguous()


def test_export_runs_in_onnxruntime_equal_to_eager(exported: Path, shared: Path) -> None:
    from derain_lib.weights import load_model

    manifest = json.loads(Path(f"{exported}.json").read_text())
    assert manifest["weights_sha256"] == RELEASED["sian-rain100l"].sha256
    assert manifest["opset"] == backends.OPSET and manifest["torch"] == torch.__version__
    assert manifest["max_abs_vs_eager"] <= backends.TOLERANCE
    model = load_model(shared / "weights" / "sian_rain100l.pth").model
    x = _image(shared)  # 481x321: not a size the graph was traced or checked at
    got = backends.Graph(exported, "onnxruntime")(x.numpy())
    want = backends.eager_stages(model, x)
    assert got.shape == (6, 1, 3, 321, 481)  # every stage, the last one the output
    assert np.abs(got - want).max() <= 1e-4
    assert np.abs(got[-1] - got[0]).max() > 1e-2  # the stages differ: none was pruned


def test_evaluate_openvino_scores_equal_torch(
    exported: Path, shared: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _needs("openvino")
    from derain_lib.weights import load_model

    lw = load_model(shared / "weights" / "sian_rain100l.pth")
    cache = backends.graph_path(lw.sha256, None)  # the session's export, not made again
    cache.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(exported, cache)
    scores = {}
    for b in ("torch", "openvino"):
        argv = ["evaluate", "--weights", "sian-rain100l", "--weights-dir", str(shared / "weights"),
                "--data", str(shared / "data" / "rain100l_sample"), "--max-images", "2",
                "--backend", b, "--results", str(tmp_path / b), "--no-progress"]  # fmt: skip
        assert main(argv) == 0
        out, err = capsys.readouterr()
        run = next((tmp_path / b / "runs").iterdir())
        assert json.loads((run / "provenance.json").read_text())["backend"] == f"{b} fp32"
        scores[b] = (run / "per_image.csv").read_text().splitlines()[1:]
    assert len(scores["torch"]) == 2
    for t, o in zip(scores["torch"], scores["openvino"], strict=True):
        (name_t, psnr_t, _), (name_o, psnr_o, _) = t.split(","), o.split(",")
        assert name_t == name_o and abs(float(psnr_t) - float(psnr_o)) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["sian", "sian-paper", "sian-baseline", "sian-baseline+lstm", "prenet"]
)
def test_every_model_exports_equal_to_eager(name: str, tmp_path: Path) -> None:
    _needs("onnx", "onnxscript", "onnxruntime")
    kwargs = {"channels": 8} | ({"stages": 2} if name != "sian-baseline" else {})
    model = build_model(name, **kwargs).eval()
    m = backends.export_onnx(model, tmp_path / "m.onnx")
    assert m["max_abs_vs_eager"] <= backends.TOLERANCE
    x = torch.rand(1, 3, 45, 70)
    got = backends.Graph(tmp_path / "m.onnx", "onnxruntime")(x.numpy())
    assert np.abs(got - backends.eager_stages(model, x)).max() <= 1e-4


@pytest.mark.slow
def test_a_graph_that_differs_from_eager_is_not_written(tmp_path: Path, monkeypatch) -> None:
    _needs("onnx", "onnxscript", "onnxruntime")
    model = build_model("prenet", channels=8, stages=1).eval()
    monkeypatch.setattr(backends, "TOLERANCE", 0.0)  # any rounding difference now fails
    with pytest.raises(backends.DerainError, match="differs from eager"):
        backends.export_onnx(model, tmp_path / "m.onnx", images=[torch.rand(1, 3, 40, 50) * 9])
    assert list(tmp_path.iterdir()) == []


def test_a_backend_not_installed_is_one_line_naming_the_extra(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli.util, "find_spec", lambda name: None)
    rc = main(["derain", "no.png", "-o", "out", "--weights", "w", "--backend", "openvino"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "cpu-fast" in err and "openvino" in err


class _Fake:
    """A stand-in graph: the model's eager output, whatever it is asked."""

    def __init__(self, path: Path, backend: str, precision: str = "fp32") -> None:
        self.backend, self.precision = backend, precision
        self.model = build_model("prenet", channels=4, stages=1).eval()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return backends.eager_stages(self.model, torch.from_numpy(x), 1)


@pytest.fixture
def fake_graphs(monkeypatch) -> dict:
    """Every backend installed, bf16 native, graphs faked, timings from ``times``."""
    times: dict = {}
    monkeypatch.setattr(backends, "installed", lambda b: True)
    monkeypatch.setattr(backends, "resolve_precision", lambda *a, **k: "bf16")
    monkeypatch.setattr(backends, "cached_graph", lambda *a: Path("unused.onnx"))
    monkeypatch.setattr(backends, "Graph", _Fake)
    monkeypatch.setattr(backends, "PROBE", (16, 16))

    monkeypatch.setattr(backends, "ROUNDS", 1)

    def timed(fn, *args, **kwargs) -> float:
        times["calls"] = times.get("calls", 0) + 1
        fn()
        return times["queue"].pop(0)

    monkeypatch.setattr(backends, "best_time", timed)
    return times


def _which(model: torch.nn.Module) -> str:
    return getattr(getattr(model, "graph", None), "backend", "torch")


def test_auto_takes_the_fastest_measures_once_and_bf16_only_when_faster(
    fake_graphs, monkeypatch
) -> None:
    from derain_lib.fsutil import user_cache

    exports: list[str] = []
    monkeypatch.setattr(
        backends, "cached_graph", lambda m, sha, k: exports.append(sha) or Path("unused.onnx")
    )
    model = build_model("prenet", channels=4, stages=1).eval()
    # measured in this order: fp32 torch, openvino, onnxruntime; bf16 torch, openvino
    fake_graphs["queue"] = [1.0, 0.5, 0.7, 0.9, 0.45]
    lines: list[str] = []
    chosen, precision = backends.select(model, "ab" * 32, "auto", "auto", None, lines.append)
    assert (_which(chosen), precision) == ("openvino", "fp32")  # 0.45 > 0.85 * 0.5
    assert fake_graphs["calls"] == 5 and "openvino fp32 0.500 s" in lines[-1]
    assert "measured now" in lines[-1] and len(exports) == 3  # every graph candidate
    exports.clear()
    # other weights of the same architecture: the cached times, only the winner built
    chosen, _ = backends.select(model, "cd" * 32, "auto", "auto", None, lines.append)
    assert fake_graphs["calls"] == 5 and "; cached in" in lines[-1]
    assert _which(chosen) == "openvino" and exports == ["cd" * 32]
    (user_cache() / "backends.json").unlink()  # as on another machine: measured again
    fake_graphs["queue"] = [1.0, 0.5, 0.7, 0.9, 0.3]
    chosen, precision = backends.select(model, "cd" * 32, "auto", "auto", None, lines.append)
    assert (_which(chosen), precision) == ("openvino", "bf16")
    wider = build_model("prenet", channels=6, stages=1).eval()  # another architecture
    fake_graphs["queue"] = [1.0, 0.5, 0.7]  # scores: fp32 only
    chosen, precision = backends.select(wider, "ef" * 32, "auto", "fp32", None, lines.append)
    assert (_which(chosen), precision) == ("openvino", "fp32") and fake_graphs["calls"] == 13


def test_without_native_bf16_auto_is_fp32_and_keeps_torch_as_a_candidate() -> None:
    assert backends.candidates("auto", "auto", False)[0] == ("torch", "fp32")
    assert {p for _, p in backends.candidates("auto", "auto", False)} == {"fp32"}
    assert backends.candidates("onnxruntime", "bf16", True) == []
    model = build_model("prenet", channels=4, stages=1).eval()
    with pytest.raises(backends.DerainError, match="onnxruntime runs fp32 only"):
        backends.select(model, "ab" * 32, "onnxruntime", "bf16", None, print)


def test_a_graph_the_backend_cannot_run_falls_back_to_torch(monkeypatch) -> None:
    def refuse(*a, **k):
        raise RuntimeError("Unsupported operation Foo\nmore detail")

    monkeypatch.setattr(backends, "cached_graph", lambda *a: Path("unused.onnx"))
    monkeypatch.setattr(backends, "Graph", refuse)
    model = build_model("prenet", channels=4, stages=1).eval()
    lines: list[str] = []
    chosen, precision = backends.select(model, "ab" * 32, "openvino", "fp32", None, lines.append)
    assert chosen is model and precision == "fp32"
    assert (
        lines[0]
        == "backend openvino: cannot run this graph (Unsupported operation Foo); using torch"
    )


def test_graph_model_runs_the_graph_and_keeps_the_model_attributes() -> None:
    model = build_model("prenet", channels=4, stages=1).eval()
    fake = _Fake(Path("x"), "openvino")
    g = backends.GraphModel(model, fake, None)
    x = torch.rand(1, 3, 16, 20)
    with torch.inference_mode():
        (y,) = g(x)
        (eager,) = g(x, stages=1)  # a stage count the graph does not hold: the model's own
        (want,) = model(x)
    assert g.stages == 1 and g.config == model.config
    assert torch.equal(y, torch.from_numpy(fake(x.numpy()))[0])
    assert torch.equal(eager, want)


def test_export_argument_errors_are_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "w.pth").write_bytes(b"x")
    (tmp_path / "old.onnx").write_bytes(b"x")
    for out, why in (("m.txt", "name an .onnx file"), ("old.onnx", "pass --overwrite")):
        rc = main(["export", "--weights", str(tmp_path / "w.pth"), "-o", str(tmp_path / out)])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and why in err
    assert (tmp_path / "old.onnx").read_bytes() == b"x"
