"""What ``derain reproduce`` says while and after it runs, and what it leaves unchanged: the
progress channel, the not-run summary, the parameters each notebook gets, reproducible
figures, and a code SHA that ignores the pipeline's own outputs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest

from derain_lib import runs
from derain_lib.fsutil import REPRODUCE_ENV
from derain_lib.study import pipeline
from derain_lib.study.plan import progress, run_fact
from derain_lib.study.training import step_line
from derain_lib.viz import save_figure

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _chapter(project: Path, name: str, code: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    (project / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, project / "notebooks" / name)


@pytest.mark.slow
def test_reproduce_shows_progress_and_keeps_run_facts_out_of_the_notebook(
    hermetic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    """A chapter's progress reaches the terminal of ``derain reproduce`` (its stderr), its run
    facts reach provenance.json, and neither reaches the executed notebook."""
    monkeypatch.setenv("DERAIN_PROJECT", str(tmp_path))
    _chapter(
        tmp_path,
        "07_beyond_the_paper.ipynb",
        "from derain_lib.study.plan import progress, run_fact\n"
        "print('a result')\n"
        "progress('model 1/2: sian: training, 3 steps')\n"
        "run_fact('load_average', [0.5, 0.25])\n",
    )
    lines: list[str] = []
    record = pipeline.run_pipeline(
        "smoke", notebooks=("07_beyond_the_paper.ipynb",), log=lambda *a, **k: lines.append(a[0])
    )
    err = capfd.readouterr().err
    assert "model 1/2: sian: training, 3 steps" in err
    assert lines[-2].startswith("[1/1] 07_beyond_the_paper.ipynb done in ")
    saved = pipeline.results_dir("smoke") / "notebooks" / "07_beyond_the_paper.ipynb"
    cells = nbformat.read(saved, as_version=4).cells  # papermill's parameters cell, then ours
    (cell,) = [c for c in cells if "injected-parameters" not in c.metadata.get("tags", [])]
    assert "".join(o.get("text", "") for o in cell.outputs) == "a result\n"
    facts = {"07_beyond_the_paper.ipynb": {"load_average": [0.5, 0.25]}}
    assert record["run_facts"] == facts
    prov = json.loads((pipeline.results_dir("smoke") / "provenance.json").read_text())
    assert prov["run_facts"] == facts and prov["parameters"]["profile"] == "smoke"


def test_progress_and_run_facts_without_a_pipeline_print(monkeypatch, capsys) -> None:
    monkeypatch.delenv(REPRODUCE_ENV, raising=False)
    progress("model 1/1: prenet")
    run_fact("sections", {"cost": {"wall_s": 2.0}})
    assert capsys.readouterr().out == 'model 1/1: prenet\nsections: {"cost": {"wall_s": 2.0}}\n'


def test_step_line_gives_step_of_total_loss_elapsed_and_eta(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    assert step_line(log, 10) is None
    log.write_text(
        "epoch,step,loss,lr,val_psnr,val_ssim,patches_per_s,elapsed_s\n"
        "1,1,0.9,0.001,,,4.0,2.00\n"
        "1,2,0.5,0.001,,,4.0,4.00\n"
        "1,2,,,30.1,0.9,,4.50\n"  # a validation row: not a step
    )
    line = step_line(log, 10)
    assert "2/10" in line and "loss=0.5" in line and "00:04<00:16" in line, line


def _notebook(tmp_path: Path, printed: str) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(...)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    table = nbformat.v4.new_code_cell("table")
    table.outputs = [
        nbformat.v4.new_output("execute_result", {"text/plain": "not run: a table cell"})
    ]
    nb.cells = [cell, table]
    path = tmp_path / "06_attention_explorer.ipynb"
    nbformat.write(nb, path)
    return path


def test_not_run_items_come_from_saved_results_and_missing_promised_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DERAIN_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path / "results"))
    from derain_lib import tables
    from derain_lib.study.plan import results_dir

    gone = tables.Score(
        method="sian-released", benchmark="rain100l", kind="not_run", detail="weights not found"
    )
    tables.save_scores([gone], results_dir("smoke") / "run-state" / "scores" / "table3_4.json")
    # a printed "not run" line is no record: only the saved results count
    nb = _notebook(tmp_path, "saved x\nnot run: printed only\n")
    executed = {nb.name: nb, "03_tables3_4_benchmarks.ipynb": nb}
    items = pipeline.missing_items("smoke", executed)
    assert items == [
        {
            "notebook": "03_tables3_4_benchmarks.ipynb",
            "what": "sian-released on rain100l: not run: weights not found",
        },
        {"notebook": nb.name, "what": "figures/smoke/attention_panel.png was not drawn"},
    ]
    (tmp_path / "figures/smoke").mkdir(parents=True)
    (tmp_path / "figures/smoke/attention_panel.png").write_bytes(b"png")
    assert pipeline.missing_items("smoke", {nb.name: nb}) == []


def test_every_notebook_declares_every_parameter_the_pipeline_passes() -> None:
    """``derain reproduce`` passes each chapter the same five parameters; a chapter that did
    not declare one would make papermill warn of an unknown parameter."""
    import papermill as pm

    passed = {"profile", "data_root", "weights_dir", "overrides", "device"}
    for nb in pipeline.NOTEBOOKS:
        assert passed <= set(pm.inspect_notebook(str(NOTEBOOKS / nb))), nb


def _figure() -> plt.Figure:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.imshow(np.arange(12.0).reshape(3, 4))
    ax.set_title("same figure")
    return fig


def test_a_redrawn_figure_is_byte_identical_and_untagged(tmp_path: Path) -> None:
    a = save_figure(_figure(), tmp_path / "a.png").read_bytes()
    b = save_figure(_figure(), tmp_path / "b.png").read_bytes()
    assert a == b
    assert b"Software" not in a  # no matplotlib version in the file
    plt.close("all")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_git_sha_ignores_the_pipelines_own_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    for rel in ("results/quick/table2.csv", "figures/quick/a.png", "derain_lib/x.py"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("v1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1")
    monkeypatch.setattr(runs, "source_root", lambda: repo)
    clean = runs.git_sha()
    assert len(clean) == 40
    (repo / "results/quick/table2.csv").write_text("v2\n")
    (repo / "figures/quick/a.png").unlink()  # a figure being redrawn
    assert runs.git_sha() == clean
    (repo / "derain_lib/x.py").write_text("v2\n")
    assert runs.git_sha() == clean + "+dirty"


def test_report_and_tables_md_are_the_same_for_a_rerun(tmp_path: Path, monkeypatch) -> None:
    """Two executions differ in papermill's random id of the injected cell and in the
    provenance (time, commit, wall seconds): neither reaches the report or tables.md."""
    from derain_lib.study.plan import results_dir, write_json
    from derain_lib.study.report import export_report
    from derain_lib.study.tabulate import build_tables

    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path / "results"))
    pages, mds = [], []
    for run in range(2):
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_markdown_cell("# Chapter"),
            nbformat.v4.new_code_cell("profile = 'smoke'"),
        ]
        nb.cells[0]["id"] = "chapter-title"  # the source notebook's own ids are fixed
        nb.cells[1].metadata["tags"] = ["injected-parameters"]
        nb.cells[1]["id"] = f"random{run}"
        path = tmp_path / f"run{run}" / "01_x.ipynb"
        path.parent.mkdir()
        nbformat.write(nb, path)
        write_json(
            results_dir("smoke") / "provenance.json",
            {
                "started": f"2026-11-2{run} 10:00:00 UTC",
                "machine": "x86_64",
                "cpu_count": 2,
                "wall_seconds": 100.0 + run,
                "git_sha": f"{run}" * 40,
                "parameters": {"data_root": None, "weights_dir": None, "overrides": []},
            },
        )
        mds.append(build_tables("smoke").read_text())
        export_report("smoke", [path])
        pages.append((results_dir("smoke") / "report" / "01_x.html").read_text())
    assert "random0" in Path(tmp_path / "run0" / "01_x.ipynb").read_text()
    assert pages[0] == pages[1] and "random" not in pages[0]
    assert mds[0] == mds[1] and "2026-11-2" not in mds[0]
