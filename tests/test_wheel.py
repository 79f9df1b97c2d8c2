"""``pip install .`` works: the wheel, installed into a fresh virtual environment, answers
``derain info`` and trains ``derain train --config smoke`` from a folder outside any
checkout, with its outputs where docs/ARCHITECTURE.md says ("Where derain writes").

The wheel is built offline from a copy of the sources (``pip wheel --no-deps
--no-build-isolation``: the build backend is the one installed here), and installed with
``--no-deps`` into a venv that sees this environment's packages through a ``.pth`` line,
so torch is not installed twice (and this checkout's editable install is not seen: a
``.pth`` path line adds a folder, never the hooks of its own ``.pth`` files).
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}: rc {r.returncode}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel built from this checkout; its ``bin/`` folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy: the build's build/ and *.egg-info stay out of the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "derain_lib", src / "derain_lib", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", ".", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp)], src, env)
    (wheel,) = tmp.glob("derain-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    (new_site,) = venv.glob("lib/python*/site-packages")
    (new_site / "_derain_test_base.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    py = venv / "bin" / "python"
    _run([*pip, "--python", str(py), "install", "--no-deps", "-q", str(wheel)], tmp, env)
    return venv / "bin"


def _env(hermetic) -> dict[str, str]:
    """The test's folders, but results and figures left to the installed package to find."""
    env = {k: v for k, v in os.environ.items() if k not in ("DERAIN_RESULTS", "DERAIN_FIGURES")}
    return {**env, "PYTHONPATH": "", "HOME": str(hermetic.root)}


TINY_TRAIN = ["train", "--config", "smoke", "--no-progress"]


def test_the_wheel_is_what_runs(venv: Path, hermetic, tmp_path: Path) -> None:
    where = _run(
        [str(venv / "python"), "-c", "import derain_lib, derain_lib.config as c; "
         "import derain_lib.study.plan  # reads its package data, plan.yaml\n"
         "print(derain_lib.__file__); print(c.PROFILES_DIR)"],
        tmp_path, _env(hermetic),
    ).split()  # fmt: skip
    assert all(Path(p).is_relative_to(venv.parent) for p in where), where
    assert (Path(where[1]) / "smoke.yaml").is_file()  # the profiles are package data


def test_info_and_smoke_training_outside_a_checkout(
    venv: Path, hermetic, tmp_path: Path, tiny
) -> None:
    work = tmp_path / "elsewhere"  # no pyproject.toml at or above it
    work.mkdir()
    env = _env(hermetic)
    # no project: the user data folder (platformdirs, under XDG_DATA_HOME), as info says
    data_home = hermetic["XDG_DATA_HOME"] / "derain"
    info = [line.split() for line in _run([str(venv / "derain"), "info"], work, env).splitlines()]
    (sian,) = [f for f in info if f[:1] == ["sian-rain100l"]]
    assert "ab3894696b6c17c7" in sian  # the released weights' sha256, from the package
    for folder in ("results", "figures"):
        assert [folder, str(data_home / folder)] in info, folder
    _run([str(venv / "derain"), *TINY_TRAIN, *tiny.args()], work, env)
    (run,) = (data_home / "results" / "runs").iterdir()
    assert (run / "metrics.json").is_file() and (run / "model.pt").is_file()
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["git_sha"] == "unknown"  # an installed package is no checkout
    assert list(work.iterdir()) == []  # nothing written where it ran


def test_a_project_folder_and_an_explicit_results_folder(
    venv: Path, hermetic, tmp_path: Path, tiny
) -> None:
    project = tmp_path / "mine"
    (project / "sub").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    env = _env(hermetic)
    _run([str(venv / "derain"), *TINY_TRAIN, *tiny.args()], project / "sub", env)
    assert len(list((project / "results" / "runs").iterdir())) == 1
    explicit = tmp_path / "explicit"
    _run(
        [str(venv / "derain"), *TINY_TRAIN, *tiny.args(), "--results", str(explicit)], project, env
    )
    assert len(list((explicit / "runs").iterdir())) == 1
    assert not (hermetic["XDG_DATA_HOME"] / "derain").exists()
