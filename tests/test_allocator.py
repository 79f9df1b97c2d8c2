"""The glibc allocator settings applied on import (derain_lib.allocator)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CODE = "import derain_lib.allocator as a, derain_lib; print(a.allocator_tuned())"


def _run(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DERAIN_MALLOC_TUNING"}
    if env_value is not None:
        env["DERAIN_MALLOC_TUNING"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_import_tunes_the_allocator_on_linux() -> None:
    assert _run(None) == "True"


def test_opt_out_leaves_the_allocator_alone() -> None:
    assert _run("0") == "False"
