"""CPU inference through an exported ONNX graph (every stage's output stacked, checked
against eager before it is written), run by OpenVINO or ONNX Runtime. :func:`select` turns
``--backend``/``--precision`` into a model run like any other; ``auto`` times each installed
backend once per machine and model architecture. A backend that refuses leaves the work to torch.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import time
from collections.abc import Callable
from importlib import util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import __version__
from .errors import DerainError, first_line
from .fsutil import PACKAGE_DIR, atomic_path, atomic_write_text, shown_path, user_cache
from .inference import check_inference_options, model_device
from .info import BACKEND_EXTRA, BACKENDS, installed_version
from .models.scale_space import _kernel1d
from .precision import (
    FASTER,
    autocast,
    best_time,
    choose_auto,
    cpu_flags,
    cpuinfo_field,
    resolve_precision,
)
from .weights import model_config

OPSET = 18
#: Largest |graph - eager| an exported graph may show on the check images.
TOLERANCE = 1e-4
#: (height, width) of the check images: even and odd sides (both of SIAN's padding paths).
CHECK_SIZES = ((64, 96), (67, 101))
#: The image ``auto`` times each candidate on: a Rain100L test image's size (a 240x160
#: probe ranked OpenVINO bf16 above torch bf16, the reverse of 481x321, on an AVX512-BF16
#: EPYC: benchmarks/RESULTS.md).
PROBE = (321, 481)
#: Timed rounds per candidate (best of), interleaved.
ROUNDS = 2


def installed(backend: str) -> bool:
    """Whether ``backend``'s package is importable (torch always is)."""
    return backend == "torch" or util.find_spec(backend) is not None


def _models_fingerprint() -> str:
    """12 hex digits over the package version and the model sources (what a graph holds)."""
    h = hashlib.sha256(__version__.encode())
    for f in sorted((PACKAGE_DIR / "models").rglob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


class Stages(nn.Module):
    """What is exported: every stage's output (up to ``stages``), stacked on a new first
    axis, so the graph holds all of them."""

    def __init__(self, model: nn.Module, stages: int | None = None) -> None:
        super().__init__()
        self.model, self.stages = model, stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = self.model(x) if self.stages is None else self.model(x, stages=self.stages)
        return torch.stack(outs)


class Graph:
    """An ONNX file run by ``backend`` in ``precision``: float32 NCHW in, (stages, N, 3, H, W)
    out. OpenVINO compiles per input shape at its first call (static shapes: about half the
    dynamic graph's peak memory, and faster), keeping the :data:`SHAPES` most recent."""

    SHAPES = 4

    def __init__(self, path: str | Path, backend: str, precision: str = "fp32") -> None:
        self.backend, self.precision = backend, precision
        threads = torch.get_num_threads()
        if backend == "onnxruntime":
            import onnxruntime as ort

            if precision != "fp32":
                raise DerainError("--backend onnxruntime runs fp32 only on the CPU")
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
            opts.log_severity_level = 3
            # made at the first call: a candidate never run costs nothing
            cpu = ["CPUExecutionProvider"]
            session = functools.cache(lambda: ort.InferenceSession(str(path), opts, providers=cpu))
            self._run = lambda x: session().run(None, {"image": x})[0]
            return
        import openvino as ov

        core, self._compiled = ov.Core(), {}
        config = {"INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision],
                  "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}  # fmt: skip
        core.read_model(str(path))  # an unreadable file is refused here

        def run(x: np.ndarray) -> np.ndarray:
            request = self._compiled.pop(x.shape, None)
            if request is None:
                model = core.read_model(str(path))
                model.reshape(list(x.shape))
                request = core.compile_model(model, "CPU", config).create_infer_request()
                while len(self._compiled) >= self.SHAPES:
                    self._compiled.pop(next(iter(self._compiled)))
            self._compiled[x.shape] = request  # the most recent last
            return np.array(request.infer({0: x})[0])

        self._run = run

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._run(np.ascontiguousarray(x, dtype=np.float32))


class GraphModel(nn.Module):
    """``model`` whose forward runs ``graph``: the same call and outputs, the model's attributes."""

    def __init__(self, model: nn.Module, graph: Graph, stages: int | None) -> None:
        super().__init__()
        self.model, self.graph, self.graph_stages = model, graph, stages

    def __getattr__(self, name: str):  # noqa: ANN204 (the wrapped model's attributes)
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["model"], name)

    def forward(self, x: torch.Tensor, stages: int | None = None) -> list[torch.Tensor]:
        if stages != self.graph_stages:  # another stage count than the graph holds
            return self.model(x) if stages is None else self.model(x, stages=stages)
        y = self.graph(x.detach().float().cpu().numpy())
        return list(torch.from_numpy(y).to(x.device))


def eager_stages(model: nn.Module, x: torch.Tensor, stages: int | None = None) -> np.ndarray:
    with torch.inference_mode():
        return Stages(model, stages)(x).numpy()


def export_onnx(
    model: nn.Module,
    path: str | Path,
    stages: int | None = None,
    weights_sha256: str = "",
    images: list[torch.Tensor] | None = None,
) -> dict:
    """Export ``model``'s first ``stages`` stages (None: all) to ``path``, checked against eager
    on ``images`` (default: seeded :data:`CHECK_SIZES`): beyond :data:`TOLERANCE`, a one-line
    :class:`DerainError` and no file. Returns the manifest, also written as ``<path>.json``."""
    path = Path(path)
    runner = next((b for b in ("onnxruntime", "openvino") if installed(b)), None)
    if runner is None or not all(installed(p) for p in ("onnx", "onnxscript")):
        raise DerainError(
            f"exporting needs the exporter and a runtime: pip install 'derain[{BACKEND_EXTRA}]'"
        )
    model = model.eval()
    dims = {2: torch.export.Dim("height", min=8), 3: torch.export.Dim("width", min=8)}
    example = torch.rand(1, 3, 64, 96)
    t = time.perf_counter()
    quiet, log = io.StringIO(), logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    _kernel1d.cache_clear()  # the blur kernels' cache must not keep tensors made while
    try:  # tracing: eager would reuse them afterwards and compute wrong blurs
        with torch.no_grad(), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            program = torch.onnx.export(
                Stages(model, stages).eval(), (example,), dynamo=True, opset_version=OPSET,
                dynamic_shapes=(dims,), input_names=["image"], output_names=["stages"],
            )  # fmt: skip
    finally:
        log.setLevel(level)
        _kernel1d.cache_clear()
    worst = 0.0
    with atomic_path(path) as tmp:
        program.save(str(tmp))
        graph = Graph(tmp, runner)
        g = torch.Generator().manual_seed(0)
        for x in images or [torch.rand(1, 3, h, w, generator=g) for h, w in CHECK_SIZES]:
            worst = max(
                worst, float(np.abs(graph(x.numpy()) - eager_stages(model, x, stages)).max())
            )
        if not worst <= TOLERANCE:
            raise DerainError(
                f"{path}: the exported graph differs from eager by {worst:.2e} (> {TOLERANCE}); "
                "not written"
            )
    manifest = {
        "model": type(model).__name__,
        "config": model_config(model),
        "stages": stages,
        "weights_sha256": weights_sha256,
        "opset": OPSET,
        "dynamic": ["height", "width"],
        "output": "every stage's output stacked: (stages, N, 3, H, W)",
        "torch": torch.__version__,
        "exporter": f"torch.onnx (dynamo) {torch.__version__}, onnxscript "
        f"{installed_version('onnxscript')}, onnx {installed_version('onnx')}",
        "checked_with": f"{runner} {installed_version(runner)}",
        "check_sizes": [list(s) for s in CHECK_SIZES] if images is None else "given images",
        "max_abs_vs_eager": worst,
        "export_s": round(time.perf_counter() - t, 1),
        "code_fingerprint": _models_fingerprint(),
    }
    atomic_write_text(Path(f"{path}.json"), json.dumps(manifest, indent=1) + "\n")
    return manifest


def graph_path(sha256: str, stages: int | None) -> Path:
    """The cached graph of the weights ``sha256``, keyed also by model code, torch and stages."""
    key = f"{sha256[:16]}-{_models_fingerprint()}-torch{torch.__version__}-k{stages or 'all'}"
    return user_cache() / "graphs" / f"{key}.onnx"


def cached_graph(model: nn.Module, sha256: str, stages: int | None) -> Path:
    """The exported graph of ``model`` from the user cache, exported now when missing."""
    path = graph_path(sha256, stages)
    if not path.is_file():
        export_onnx(model, path, stages, sha256)
    return path


def candidates(backend: str, precision: str, native_bf16: bool) -> list[tuple[str, str]]:
    """(backend, precision) pairs ``--backend``/``--precision`` allow here, fp32 first."""
    names = [b for b in BACKENDS[1:] if installed(b)] if backend == "auto" else [backend]
    precs = {"fp32": ["fp32"], "bf16": ["bf16"], "auto": ["fp32", "bf16"]}[precision]
    if not native_bf16:
        precs = [p for p in precs if p == "fp32"] or precs  # bf16 when asked, never by auto
    return [(b, p) for p in precs for b in names if not (b == "onnxruntime" and p == "bf16")]


def _cache_file() -> Path:
    """``backends.json``: seconds per :data:`PROBE` forward, per machine key and candidate."""
    return user_cache() / "backends.json"


def _machine_key(model: nn.Module, stages: int | None) -> str:
    """The CPU, versions, threads, the model's architecture (speed does not depend on its
    weights), the model code and this file (how graphs run)."""
    versions = [f"{b} {installed_version(b)}" for b in ("torch", "openvino", "onnxruntime")]
    parts = [cpuinfo_field("model name") or "", " ".join(sorted(cpu_flags())),
             json.dumps(model_config(model), sort_keys=True, default=str), type(model).__name__,
             _models_fingerprint(), str(stages), str(torch.get_num_threads()),
             hashlib.sha256(Path(__file__).read_bytes()).hexdigest()]  # fmt: skip
    return hashlib.sha256("\n".join(parts + versions).encode()).hexdigest()[:16]


def select(
    model: nn.Module,
    sha256: str,
    backend: str = "auto",
    precision: str = "auto",
    stages: int | None = None,
    log: Callable[[str], None] = print,
) -> tuple[nn.Module, str]:
    """The model to run and its precision for ``--backend``/``--precision``, the choice said
    through ``log`` (``auto``: bf16 only where native and measured faster, :func:`_fastest`)."""
    check_inference_options(model, stages, precision)  # one line, before any work
    device = model_device(model)
    if device.type != "cpu":  # a GPU: torch, bf16 where measured faster (precision.py)
        if precision == "auto":
            precision, why = choose_auto(device, model=model)
            log(f"backend {backend}: torch on {device.type}; precision auto: {precision} ({why})")
        return model, precision
    if backend == "torch" and precision != "auto":
        return model, precision
    native = resolve_precision("auto", "cpu") == "bf16"
    pairs = candidates(backend, precision, native)
    if not pairs:
        raise DerainError(f"--backend {backend} --precision {precision}: {backend} runs fp32 only")
    key = _machine_key(model, stages)
    known = _cache().get(key, {})
    times = {k: known[" ".join(k)] for k in pairs if " ".join(k) in known}
    if len(pairs) > 1 and len(times) == len(pairs):  # measured before: build only the fastest
        chosen = _build(model, sha256, stages, *(best := _fastest(times)), log)
        _say(backend, best, times, "cached", log)
        return chosen, best[1]
    graphs: dict[tuple[str, str], nn.Module] = {}
    for b, p in pairs:
        m = _build(model, sha256, stages, b, p, log)
        graphs["torch" if m is model else b, p] = m  # a refused graph: torch in its place
    if len(graphs) == 1:
        (b, p), chosen = next(iter(graphs.items()))
        log(f"backend {backend}: {b} {p}")
        return chosen, p
    times = _measured(graphs, key, times, stages, log)
    best = _fastest(times)
    _say(backend, best, times, "measured now, cached", log)
    return graphs[best], best[1]


def _build(
    model: nn.Module, sha256: str, stages: int | None, b: str, p: str, log: Callable[[str], None]
) -> nn.Module:
    """``model`` run by backend ``b`` (its graph exported on first use); torch where the
    exporter, its check or the runtime refuses, said through ``log``."""
    if b == "torch":
        return model
    try:
        return GraphModel(model, Graph(cached_graph(model, sha256, stages), b, p), stages)
    except Exception as e:  # noqa: BLE001 (any refusal: torch does the work)
        log(f"backend {b}: cannot run this graph ({first_line(e, 160)}); using torch")
        return model


def _fastest(times: dict[tuple[str, str], float]) -> tuple[str, str]:
    """The fastest fp32 candidate, or the fastest bf16 one where it takes at most
    :data:`~derain_lib.precision.FASTER` of that."""
    fp32 = {k: v for k, v in times.items() if k[1] == "fp32"}
    best = min(fp32 or times, key=times.get)
    bf16 = {k: v for k, v in times.items() if k[1] == "bf16"}
    if bf16 and (not fp32 or min(bf16.values()) <= FASTER * times[best]):
        best = min(bf16, key=bf16.get)
    return best


def _say(
    backend: str,
    best: tuple[str, str],
    times: dict[tuple[str, str], float],
    when: str,
    log: Callable[[str], None],
) -> None:
    shown = ", ".join(f"{b} {p} {s:.3f} s" for (b, p), s in times.items())
    log(f"backend {backend}: {best[0]} {best[1]} (on {PROBE[1]}x{PROBE[0]}: {shown}; {when}"
        f" in {shown_path(_cache_file())})")  # fmt: skip


def _cache() -> dict:
    try:
        return json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}


def _measured(
    graphs: dict[tuple[str, str], nn.Module],
    key: str,
    times: dict[tuple[str, str], float],
    stages: int | None,
    log: Callable[[str], None],
) -> dict[tuple[str, str], float]:
    """Seconds per forward on a :data:`PROBE` image of each candidate not in ``times``
    (measured before), timed interleaved and cached; a candidate that fails is dropped, said."""
    times = {k: v for k, v in times.items() if k in graphs}
    x = torch.rand(1, 3, *PROBE)
    todo = {}
    for k in [k for k in graphs if k not in times]:

        def forward(k: tuple[str, str] = k) -> object:
            with torch.inference_mode(), autocast(k[1] if k[0] == "torch" else "fp32"):
                return graphs[k](x) if stages is None else graphs[k](x, stages=stages)

        try:
            forward()  # warm-up (an OpenVINO compile): not timed
            todo[k] = forward
        except Exception as e:  # noqa: BLE001 (a runtime refusing this graph: not a candidate)
            if k[0] == "torch":
                raise
            log(f"backend {k[0]}: cannot run this graph ({first_line(e, 160)}); not a candidate")
    for _ in range(ROUNDS):  # interleaved, so a burst of load on the machine hits all alike
        for k, forward in todo.items():
            times[k] = min(times.get(k, float("inf")), best_time(forward, 1, warmup=False))
    cache = _cache()
    cache[key] = {**cache.get(key, {}), **{" ".join(k): s for k, s in times.items()}}
    with contextlib.suppress(DerainError):
        atomic_write_text(_cache_file(), json.dumps(cache, indent=1) + "\n")
    return times
