"""The hermetic test folders of tests/conftest.py: every folder derain uses points at the
test's temporary folder, and a write under a real one fails the test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import platformdirs
import pooch
import pytest
from conftest import GUARD, REAL, REDIRECTED, ROOT, LeakError

from derain_lib import fsutil, info


def test_every_folder_derain_uses_is_the_tests_own(hermetic, tmp_path: Path) -> None:
    used = {
        "results": fsutil.results_root(),
        "figures": fsutil.figures_root(),
        "data": fsutil.data_root(),
        "cache": fsutil.user_cache(),
        "released weights": info.cache_dir(),
        "platformdirs cache": Path(platformdirs.user_cache_dir("derain")),
        "platformdirs data": Path(platformdirs.user_data_dir("derain")),
        "pooch cache": Path(pooch.os_cache("derain")),
        **{f"weights search {i}": d for i, d in enumerate(info.search_dirs())},
    }
    outside = {k: p for k, p in used.items() if hermetic.root not in Path(p).parents}
    assert outside == {}
    assert all(os.environ[v] == str(hermetic[v]) for v in REDIRECTED)


def test_two_tests_do_not_share_results(hermetic) -> None:
    (hermetic["DERAIN_RESULTS"] / "mine").write_text("x")  # the next test must not see it


def test_two_tests_do_not_share_results_either(hermetic) -> None:
    assert not (hermetic["DERAIN_RESULTS"] / "mine").exists()


@pytest.mark.parametrize("where", ["user cache", "committed results"])
def test_a_write_under_a_real_folder_is_refused_and_recorded(where: str) -> None:
    probe = REAL[where] / "derain-hermetic-probe.txt"
    assert not probe.exists()
    with pytest.raises(LeakError, match=where):
        probe.write_text("leak")
    assert not probe.exists() and len(GUARD.leaks) == 1
    GUARD.leaks.clear()  # the leak was the point of this test: it must not fail it


def test_a_test_writing_to_the_real_user_cache_fails(tmp_path: Path) -> None:
    """Even where the code swallows the error, the test fails: a pytest session (this
    conftest) run with a stand-in home, whose tests write to their "real" user cache."""
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "test_leaky.py").write_text(
        "import contextlib, platformdirs\n"
        "from pathlib import Path\n"
        "from conftest import REAL\n"
        "def test_swallowed():\n"
        "    with contextlib.suppress(Exception):\n"
        "        (REAL['user cache'] / 'leak').write_text('x')\n"
        "def test_through_env():\n"
        "    import os\n"
        "    os.environ.pop('DERAIN_CACHE')\n"
        "    os.environ.pop('XDG_CACHE_HOME')\n"
        "    from derain_lib.fsutil import user_cache\n"
        "    user_cache().mkdir(parents=True)\n"
        "def test_clean(tmp_path):\n"
        "    (tmp_path / 'fine').write_text('x')\n"
    )
    home = tmp_path / "home"
    real_cache = home / ".cache" / "derain"
    real_cache.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in REDIRECTED}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), MPLCONFIGDIR=str(tmp_path / "mpl"))
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    failed = set(re.findall(r"^(?:FAILED|ERROR) test_leaky.py::(\w+)", r.stdout, re.M))
    assert failed == {"test_swallowed", "test_through_env"}, r.stdout[-3000:]
    assert re.search(r"^PASSED test_leaky.py::test_clean", r.stdout, re.M)
    assert list(real_cache.iterdir()) == []  # and nothing was written there


@pytest.mark.real_dirs
def test_real_dirs_tests_see_the_environment_the_session_started_with() -> None:
    assert not GUARD.on
    assert os.environ.get("DERAIN_RESULTS") != str(Path.cwd())  # the session's, not a test's
