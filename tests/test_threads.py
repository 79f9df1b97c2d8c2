"""derain_lib.threads: OpenMP threads that sleep instead of spinning on a shared machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.busy import replace_section, section_of
from derain_lib.threads import configure, torch_threads, usable_cpus

ROOT = Path(__file__).resolve().parents[1]


def test_configure_sets_passive_waiting() -> None:
    env: dict[str, str] = {}
    assert configure(env) == {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


def test_configure_keeps_explicit_settings_and_can_be_switched_off() -> None:
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert configure(env) == {"KMP_BLOCKTIME": "0"}
    assert env["OMP_WAIT_POLICY"] == "ACTIVE"
    off = {"DERAIN_THREAD_TUNING": "0"}
    assert configure(off) == {} and off == {"DERAIN_THREAD_TUNING": "0"}


def test_usable_cpus_is_the_affinity_mask() -> None:
    assert usable_cpus() == len(os.sched_getaffinity(0))


def test_console_command_configures_before_torch_is_loaded() -> None:
    """``derain`` (``derain_lib.cli:main``) sets the variables before anything imports
    torch, so the OpenMP runtime of this process (and every child) reads them."""
    code = (
        "import os, sys\n"
        "class Spy:\n"
        "    seen = None\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' and Spy.seen is None:\n"
        "            Spy.seen = os.environ.get('OMP_WAIT_POLICY', 'unset')\n"
        "sys.meta_path.insert(0, Spy())\n"
        "from derain_lib import cli\n"
        "assert 'torch' not in sys.modules\n"
        "try:\n    cli.main(['--version'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules  # parsing and --version need no torch\n"
        "import tempfile\n"
        "cli.main(['runs', 'list', '--results', tempfile.mkdtemp()])  # a command: loads it\n"
        "print(Spy.seen, 'torch' in sys.modules)\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "DERAIN_THREAD_TUNING")
    }
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert out[-2:] == ["PASSIVE", "True"]  # set when torch was first imported


@pytest.mark.parametrize(
    "env", [{}, {"OMP_NUM_THREADS": "1"}, {"MKL_NUM_THREADS": "1"}, {"OMP_NUM_THREADS": "64"}]
)
def test_torch_threads_is_what_torch_uses_after_configure(env: dict[str, str]) -> None:
    """``derain info`` shows ``torch_threads()`` without importing torch: it must be what
    torch reports in a process configured as ``derain`` configures it."""
    code = (
        "from derain_lib.threads import configure, torch_threads\n"
        "configure(); expected = torch_threads()\n"
        "import torch\n"
        "configure(); print(expected, torch.get_num_threads())\n"
    )
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "DERAIN_THREAD_TUNING")
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**base, **env, "PYTHONPATH": str(ROOT)},
        check=True,
    ).stdout.split()
    assert out[0] == out[1]
    assert torch_threads({**env}) >= 1


def test_busy_section_is_replaced_and_kept() -> None:
    a = "<!-- busy.py: begin -->\nold\n<!-- busy.py: end -->\n"
    text = replace_section("# Results\n\nbody\n", a)
    assert text == "# Results\n\nbody\n\n" + a
    b = a.replace("old", "new")
    assert replace_section(text, b) == "# Results\n\nbody\n\n" + b
    assert section_of(replace_section(text, b)) == b
    assert section_of("no section") == ""
