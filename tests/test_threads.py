"""derain_lib.threads: OpenMP threads that sleep instead of spinning on a shared machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks.busy import replace_section, section_of
from derain_lib.threads import configure, usable_cpus

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
    """``derain`` (``derain_lib.entry:main``) sets the variables before anything imports
    torch, so the OpenMP runtime of this process (and every child) reads them."""
    code = (
        "import os, sys\n"
        "class Spy:\n"
        "    seen = None\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' and Spy.seen is None:\n"
        "            Spy.seen = os.environ.get('OMP_WAIT_POLICY', 'unset')\n"
        "sys.meta_path.insert(0, Spy())\n"
        "from derain_lib import entry\n"
        "assert 'torch' not in sys.modules\n"
        "try:\n    entry.main(['--version'])\nexcept SystemExit:\n    pass\n"
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


def test_busy_section_is_replaced_and_kept() -> None:
    a = "<!-- busy.py: begin -->\nold\n<!-- busy.py: end -->\n"
    text = replace_section("# Results\n\nbody\n", a)
    assert text == "# Results\n\nbody\n\n" + a
    b = a.replace("old", "new")
    assert replace_section(text, b) == "# Results\n\nbody\n\n" + b
    assert section_of(replace_section(text, b)) == b
    assert section_of("no section") == ""
