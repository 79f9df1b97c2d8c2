"""The glibc allocator settings (derain_lib.allocator): an explicit call, never an import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CODE = "import derain_lib.allocator as a; print(a.tune(), a.allocator_tuned())"
IMPORT_ONLY = (
    "import derain_lib.allocator as a, derain_lib.cli, derain_lib.commands, "
    "derain_lib.study.pipeline; "
    "print(a.allocator_tuned())"
)
CLI = (  # any command, even one that fails with a one-line error, tunes first
    "import derain_lib.allocator as a; from derain_lib.cli import main; "
    "rc = main(['reproduce', '--profile', 'nosuch']); print(rc, a.allocator_tuned())"
)


def _run(env_value: str | None, code: str = CODE) -> str:
    """``code``'s output in a fresh Python, DERAIN_MALLOC_TUNING unset or ``env_value``."""
    env = {k: v for k, v in os.environ.items() if k != "DERAIN_MALLOC_TUNING"}
    if env_value is not None:
        env["DERAIN_MALLOC_TUNING"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_tune_applies_the_setting_on_linux() -> None:
    assert _run(None) == "True True"


def test_importing_the_package_changes_nothing() -> None:
    assert _run(None, IMPORT_ONLY) == "False"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_the_cli_tunes_unless_opted_out() -> None:
    assert _run(None, CLI) == "2 True"
    assert _run("0", CLI) == "2 False"


def test_opt_out_leaves_the_allocator_alone() -> None:
    assert _run("0") == "False False"


RELEASE = """
import torch
from derain_lib.allocator import release_free_memory, tune

tune()
def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

blocks = [torch.ones(10_000_000) for _ in range(20)]  # 800 MB of 40 MB tensors
del blocks
before = rss_mib()
release_free_memory()
print(before - rss_mib())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_freed_tensors_stay_resident_until_released() -> None:
    """With the setting, 800 MB of freed tensors stay in the process (reused by the next
    tensors) until release_free_memory() hands them back, as tiled inference does."""
    assert float(_run(None, RELEASE)) > 400
