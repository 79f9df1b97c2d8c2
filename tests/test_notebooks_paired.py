"""Each chapter is a pair (notebooks/jupytext.toml): the .ipynb papermill runs and its
py:percent twin, whose diff a reviewer reads. They must hold the same cells."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTERS = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))


def cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


@pytest.mark.parametrize("ipynb", CHAPTERS, ids=lambda p: p.stem)
def test_each_chapter_and_its_script_hold_the_same_cells(ipynb: Path) -> None:
    script = ipynb.with_suffix(".py")
    assert script.is_file(), f"{script.name} missing: run `make sync-notebooks`"
    paired = cells(jupytext.read(script))
    assert paired == cells(nbformat.read(ipynb, as_version=4)), (
        f"{ipynb.name} and {script.name} differ: run `make sync-notebooks`"
    )


def test_a_changed_script_is_caught(tmp_path: Path) -> None:
    ipynb = CHAPTERS[0]
    text = ipynb.with_suffix(".py").read_text().replace("import pandas as pd", "import numpy")
    (tmp_path / "x.py").write_text(text)
    assert cells(jupytext.read(tmp_path / "x.py")) != cells(nbformat.read(ipynb, as_version=4))
