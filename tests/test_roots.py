"""One resolver (derain_lib/fsutil.py): where the project, results/ and figures/ are, from a
checkout and from an installed copy, wherever derain is run from."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from derain_lib import config, fsutil, runs
from derain_lib.study import pipeline, plan


def test_a_checkout_is_its_own_project_wherever_derain_runs(tmp_path, monkeypatch) -> None:
    """Run from elsewhere, a checkout reads its notebooks and writes its results in one tree."""
    for var in ("DERAIN_RESULTS", "DERAIN_FIGURES"):
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'other'\n")
    assert fsutil.source_root() == ROOT
    assert fsutil.project_root() == ROOT
    assert runs.results_root() == ROOT / "results"
    assert plan.figures_root() == ROOT / "figures"
    assert fsutil.notebooks_dir() == ROOT / "notebooks"
    assert plan.results_dir("smoke") == ROOT / "results" / "smoke"


def test_explicit_folders_win(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DERAIN_PROJECT", str(tmp_path / "p"))
    monkeypatch.delenv("DERAIN_RESULTS")
    assert fsutil.results_root() == tmp_path / "p" / "results"
    assert fsutil.notebooks_dir() == tmp_path / "p" / "notebooks"
    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path / "r"))
    assert fsutil.results_root() == tmp_path / "r"
    assert fsutil.results_root(tmp_path / "arg") == tmp_path / "arg"  # --results
    monkeypatch.setenv("DERAIN_FIGURES", str(tmp_path / "f"))
    assert fsutil.figures_root() == (tmp_path / "f").resolve()


def test_the_profiles_are_read_from_the_package() -> None:
    assert config.resolve_config_path("smoke") == fsutil.PACKAGE_DIR / "profiles" / "smoke.yaml"
    assert config.load_config("smoke").name == "smoke"


@pytest.mark.parametrize("inside", [True, False])
def test_an_installed_copy_finds_its_project_or_the_user_data_folder(
    hermetic, tmp_path: Path, inside: bool
) -> None:
    """A copy of the package that is no checkout (as in site-packages): the pyproject.toml
    folder at or above the working directory, else the user data folder; its profiles load;
    its git SHA is unknown."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "derain_lib", site / "derain_lib")
    work = tmp_path / "work" / "sub"
    work.mkdir(parents=True)
    if inside:
        (tmp_path / "work" / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DERAIN_RESULTS", "DERAIN_FIGURES")}
    env["PYTHONPATH"] = str(site)
    code = (
        "import json\n"
        "from derain_lib import config, fsutil, runs\n"
        "print(json.dumps([str(fsutil.source_root()), str(fsutil.results_root()),"
        " str(fsutil.figures_root()), str(config.PROFILES_DIR), runs.git_sha(),"
        " config.load_config('quick').name]))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    source, results, figures, profiles, sha, name = json.loads(r.stdout)
    project = tmp_path / "work" if inside else hermetic["XDG_DATA_HOME"] / "derain"
    assert source == "None"
    assert (results, figures) == (str(project / "results"), str(project / "figures"))
    assert profiles == str(site / "derain_lib" / "profiles") and name == "quick"
    assert sha == "unknown"


def test_reproduce_outside_a_checkout_says_so(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DERAIN_PROJECT", str(tmp_path))
    with pytest.raises(pipeline.DerainError, match="notebooks not found"):
        pipeline.run_pipeline("smoke", log=lambda *a, **k: None)
