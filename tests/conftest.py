"""Shared fixtures. Test material from ../shared is found through DERAIN_SHARED."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("DERAIN_SHARED", ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared test material; skips (or, with DERAIN_REQUIRE_SHARED=1, fails) without it."""
    d = shared_dir()
    if not (d / "weights").is_dir() or not (d / "data").is_dir():
        msg = f"shared test material not found at {d} (set DERAIN_SHARED)"
        if os.environ.get("DERAIN_REQUIRE_SHARED") == "1":
            pytest.fail(msg + "; DERAIN_REQUIRE_SHARED=1 forbids skipping")
        pytest.skip(msg)
    return d


@pytest.fixture(autouse=True)
def _threads_and_seed() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
