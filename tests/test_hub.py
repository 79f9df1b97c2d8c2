"""torch.hub: ``hubconf.py`` at the root loads the released models through the project's
fetch code (a local mirror, sha256-checked), in eval mode, with help naming the weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from derain_lib.info import cache_dir
from derain_lib.weights import load_model

ROOT = Path(__file__).resolve().parents[1]


def _hubconf():
    spec = importlib.util.spec_from_file_location("hubconf", ROOT / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hub_load_local_fetches_sian_through_the_mirror(shared: Path, monkeypatch) -> None:
    monkeypatch.setenv("DERAIN_MIRROR", str(shared / "mirror"))
    assert not (cache_dir() / "sian_rain100l.pth").exists()
    m = torch.hub.load(str(ROOT), "sian", source="local", weights="rain100l", verbose=False)
    assert type(m).__name__ == "SIAN" and not m.training
    fetched = cache_dir() / "sian_rain100l.pth"
    assert fetched.read_bytes() == (shared / "weights" / "sian_rain100l.pth").read_bytes()
    ref = load_model(shared / "weights" / "sian_rain100l.pth").model
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(m(x)[-1], ref(x)[-1])


def test_hub_prenet_and_bad_weights_name(shared: Path, monkeypatch) -> None:
    monkeypatch.setenv("DERAIN_WEIGHTS_DIR", str(shared / "weights"))
    m = torch.hub.load(str(ROOT), "prenet", source="local", weights="rain100h", verbose=False)
    assert type(m).__name__ == "PReNet" and not m.training
    with pytest.raises(ValueError, match="rain100l, rain100h, rain1400"):
        torch.hub.load(str(ROOT), "sian", source="local", weights="rain800", verbose=False)


def test_hub_lists_both_models_with_docstrings() -> None:
    hub = _hubconf()
    # what torch.hub.list shows: the public callables of hubconf.py
    entries = {n for n in dir(hub) if callable(getattr(hub, n)) and not n.startswith("_")}
    assert entries == {"sian", "prenet"}
    for name in ("sian", "prenet"):
        doc = getattr(hub, name).__doc__  # what torch.hub.help shows
        assert all(w in doc for w in ("rain100l", "rain100h", "rain1400")), name
