"""The reproduction pipeline end to end: papermill runs every notebook of the smoke profile,
and the tests assert on the CSVs it emits, not on printed output."""

from __future__ import annotations

import ast
import csv
import dataclasses
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from derain_lib import tables
from derain_lib.cli import main
from derain_lib.errors import DerainError
from derain_lib.study import pipeline, plan
from derain_lib.study.claims import CLAIMS
from derain_lib.study.paper import TABLE3
from derain_lib.study.plan import Params, results_dir
from derain_lib.study.scoring import score_table
from derain_lib.study.tabulate import build_table, build_tables, read_table

ROOT = Path(__file__).resolve().parents[1]

KINDS = ("reproduced (", "released weights (", "computed (", "paper (", "not run: ", "degenerate: ")
# The smoke profile's own schedule is sized for the engine's tests; the pipeline test trains
# each of its ten models for a single step (the tables' contents, not their quality, are tested).
SMOKE_SET = ["train.max_steps=1", "train.val_images=0"]


@pytest.fixture
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Results, figures, data and weight caches in tmp_path: no prepared sets, no weights."""
    for var, sub in [
        ("DERAIN_RESULTS", "results"),
        ("DERAIN_FIGURES", "figures"),
        ("DERAIN_DATA", "data"),
        ("DERAIN_CACHE", "cache"),
    ]:
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("DERAIN_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


def _finite(v: str) -> bool:
    return v != "" and math.isfinite(float(v))


def _csv(path: Path) -> list[dict[str, str]]:
    """A CSV the pipeline wrote, as a user opens it: one dict of strings per row."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


#: The closing section of every chapter: what its run found, in its own numbers.
FOUND = "## What this run found"
#: Chapters whose closing states a number even in the hermetic smoke run (no released
#: weights, no real test set): the rows of the trained tables, the figures drawn.
NUMBERED = {"02_table2_loss.ipynb", "04_table5_ablation.ipynb", "05_figures.ipynb"}
#: A number standing alone (``4``, ``-0.23``, ``n=4``), not a digit inside a name (``Rain100L``).
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?!\w)")


def _found(nb: nbformat.NotebookNode) -> str:
    """The text an executed chapter shows under :data:`FOUND`: its cells' outputs up to the
    next heading."""
    start = next(i for i, c in enumerate(nb.cells) if c.source.startswith(FOUND))
    shown = []
    for c in nb.cells[start + 1 :]:
        if c.cell_type == "markdown" and c.source.startswith("#"):
            break
        for o in c.get("outputs", []):
            data = o.get("data", {})
            shown.append(
                data.get("text/markdown", "") + data.get("text/plain", "") + o.get("text", "")
            )
    return "\n".join(shown)


def _outputs(root: Path) -> dict[str, bytes]:
    """The bytes of every file under ``root``'s ``results/smoke`` and ``figures/smoke`` that
    the project's .gitignore lets git track (by path relative to ``root``, as in the
    repository), except ``provenance.json``: the run's facts, allowed to change."""
    paths = sorted(
        f.relative_to(root).as_posix()
        for sub in ("results/smoke", "figures/smoke")
        for f in (root / sub).rglob("*")
        if f.is_file()
    )
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=ROOT,
        input="\n".join(paths),
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    keep = set(paths) - set(ignored) - {"results/smoke/provenance.json"}
    assert "results/smoke/report/07_beyond_the_paper.html" in keep, sorted(keep)
    return {f: (root / f).read_bytes() for f in sorted(keep)}


@pytest.mark.slow
def test_smoke_pipeline_writes_every_table_with_provenance(hermetic: Path, capfd) -> None:
    lines: list[str] = []
    record = pipeline.run_pipeline(
        "smoke", overrides=SMOKE_SET, log=lambda *a, **k: lines.append(" ".join(map(str, a)))
    )
    res, figs = hermetic / "results" / "smoke", hermetic / "figures" / "smoke"
    # training progress from the kernels (on the log or their stderr): model i of n, seed
    progress = lines + capfd.readouterr().err.splitlines()
    assert any(ln.startswith("model 1/10: ") and "seed 0" in ln for ln in progress), progress
    assert any(ln.startswith("model 20/20: ") for ln in progress), progress  # 08's seeds
    # every chapter ran, in order; its executed copy holds no error and says what it found
    assert list(record["notebooks"]) == list(pipeline.NOTEBOOKS)
    for nb in pipeline.NOTEBOOKS:
        executed = nbformat.read(res / "notebooks" / nb, as_version=4)
        assert not [o for c in executed.cells for o in c.get("outputs", [])
                    if o.output_type == "error"], nb  # fmt: skip
        found = _found(executed)  # said by the run itself, never written by hand
        assert found.strip(), nb
        assert nb not in NUMBERED or NUMBER.search(found), (nb, found)
    # each item not run is in the log; the panel is drawn or named as not drawn
    not_run = record["not_run"]
    assert all(any(i["what"] in line for line in lines) for i in not_run), (not_run, lines)
    explorer = [i["what"] for i in not_run if i["notebook"] == "06_attention_explorer.ipynb"]
    assert (figs / "attention_panel.png").is_file() == (explorer == []), not_run
    assert all("attention_panel.png" in what for what in explorer), not_run
    # no released weights in the hermetic run: chapter 03's released rows are not run
    assert any(i["notebook"] == "03_tables3_4_benchmarks.ipynb" for i in not_run), not_run
    runs_dir = hermetic / "results" / "runs"
    keys = set()
    md = (res / "tables.md").read_text()
    for name in ("table2", "table3", "table4", "table5"):
        rows = _csv(res / f"{name}.csv")
        assert rows, name
        for r in rows:
            assert r["method"] in md, (name, r["method"])  # tables.md shows every row
            assert r["provenance"].startswith(KINDS), (name, r)
            assert r["kind"] in tables.SCORE_KINDS, (name, r)
            if r["kind"] in tables.MEASURED_KINDS:
                assert _finite(r["psnr"]) and _finite(r["ssim"]) and int(r["n"]) > 0, r
                assert "stand-in" in r["test_set"] and r["diff_psnr"] == "", r
            elif r["kind"] == "paper":
                assert r["psnr"] == "" and r["paper_source"].startswith(f"Table {r['table']}")
            else:
                assert r["psnr"] == "" and len(r["provenance"]) > len("not run: ")
            if r["kind"] in ("reproduced", "degenerate"):
                key = r["provenance"].split("run ")[1].split(")")[0].split(";")[0]
                assert (runs_dir / key / "model.pt").is_file()
                keys.add(key)
    t3 = _csv(res / "table3.csv")
    inputs = [r for r in t3 if r["paper_row"] == "Input"]
    assert {r["benchmark"] for r in inputs} == {
        "embedded light (stand-in for Rain100L)",
        "embedded heavy (stand-in for Rain100H)",
    }
    assert all(r["provenance"].startswith("computed") and _finite(r["psnr"]) for r in inputs)
    released = [r for r in t3 if r["method"].endswith("(released weights)")]
    assert released and all(r["kind"] not in tables.MEASURED_KINDS for r in released)
    assert all(r["psnr"] == "" for r in released)
    # trained rows of Tables II and V: every (method, benchmark) cell reproduced
    for name, n_methods in (("table2", 3), ("table5", 3)):
        rows = _csv(res / f"{name}.csv")
        trained = sum(r["kind"] in ("reproduced", "degenerate") for r in rows)
        assert trained == 2 * n_methods, name
    t4 = _csv(res / "table4.csv")
    assert all(
        r["provenance"].startswith(("not run", "paper")) for r in t4
    )  # no Rain1400/Rain12 data in the smoke profile
    figs_index = json.loads((res / "figures.json").read_text())
    assert figs_index and all((figs / Path(f["path"]).name).is_file() for f in figs_index)
    assert json.loads((res / "provenance.json").read_text())["wall_seconds"] > 0
    # claims: one row per claim and test set; on the stand-ins never a verdict
    claims = _csv(res / "claims.csv")
    assert {(r["claim"], r["benchmark"]) for r in claims} >= {
        (c.text, tables.BENCHMARKS[c.benchmark]) for c in CLAIMS
    }
    claims_md = (res / "claims.md").read_text()
    for r in claims:
        assert r["claim"] in claims_md, r["claim"]
        claim = next((c for c in CLAIMS if c.text == r["claim"]), None)
        if claim is not None and claim.trained:  # Tables II and V: stand-ins, 2 seeds
            assert r["evidence"] == "pipeline check" and r["n_seeds"] == "2", r
            assert (r["direction"], r["size"]) == ("no verdict", "no verdict"), r
            assert float(r["lo_psnr"]) <= float(r["diff_psnr"]) <= float(r["hi_psnr"]), r
        else:  # released weights and their stages: none in the hermetic smoke run
            assert r["direction"] == "not run" and len(r["reason"]) > 10, r
    # the one record: every seed of the trained methods, the Input, nothing else to read
    scores = _csv(res / "scores.csv")
    assert {s["seed"] for s in scores if s["method"] != "input"} == {"0", "1"}
    assert {s["evidence"] for s in scores} == {"pipeline check"}
    assert not (res / "scores").exists() and not (res / "runs.json").exists()
    assert (figs / "claims_forest.png").is_file()
    # the report: every chapter, table and figure linked from index.html
    index = (res / "report" / "index.html").read_text()
    for nb in record["notebooks"]:
        page = res / "report" / f"{Path(nb).stem}.html"
        assert f'href="{page.name}"' in index and page.is_file(), nb
    for name in ("table2", "table3", "table4", "table5"):
        assert f"{name}.csv</a>" in index, name
    assert all(Path(f["path"]).name in index for f in figs_index)
    # chapter 07 (beyond the paper): its rows, measured cost and where, in the report
    beyond = res / "beyond"
    for name in ("density", "attention_auc", "generalisation", "cost", "protocols"):
        assert (beyond / f"{name}.json").is_file(), name
    cost = json.loads((beyond / "cost.json").read_text())
    assert cost["rows"] and all(r["status"] == "ok" and r["gflop_per_mp"] > 0 for r in cost["rows"])
    assert cost["key"]["cpu"] in (res / "report" / "07_beyond_the_paper.html").read_text()
    # a second run changes no output but provenance.json: same runs from the cache (model
    # files untouched), the cost table reused, figures and report pages byte-identical; and
    # no output names the folder it was made in (the same in every checkout)
    first = _outputs(hermetic)
    assert [f for f, data in first.items() if str(hermetic).encode() in data] == []
    stamps = {k: (runs_dir / k / "model.pt").stat().st_mtime_ns for k in keys}
    pipeline.run_pipeline("smoke", overrides=SMOKE_SET, log=lambda *a, **k: None)
    second = _outputs(hermetic)
    changed = sorted(f for f in first.keys() | second.keys() if first.get(f) != second.get(f))
    assert not changed, f"a second smoke run changed {changed}"
    assert {k: (runs_dir / k / "model.pt").stat().st_mtime_ns for k in keys} == stamps


@pytest.mark.slow
def test_released_sian_on_rain100l_sample_is_a_partial_set(shared: Path, hermetic: Path) -> None:
    root = hermetic / "real"
    shutil.copytree(shared / "data" / "rain100l_sample", root / "rain100l_sample")
    p = Params("smoke", str(root), str(shared / "weights"))
    methods = tuple(m for m in TABLE3.methods if m.id in ("input", "sian-released"))
    scores = score_table(p, dataclasses.replace(TABLE3, methods=methods, benchmarks=("rain100l",)))
    ref = json.loads((shared / "weights" / "reference" / "reference.json").read_text())
    want = [v for v in ref["per_image"].values()]
    rows = {(r["method"], r["test_set"]): r for r in build_table("table3", scores)}
    sian = rows["SIAN (released weights)", "Rain100L: real/rain100l_sample"]
    assert sian["n"] == 4
    assert "partial set (n=4 of 100)" in sian["note"]
    assert sian["kind"] == "released"
    sha = "ab3894696b6c17c7a901ad4096dc4cdfaac835a00447ec64553df809ee143956"
    assert sian["provenance"] == f"released weights (sian_rain100l.pth, sha256 {sha})"

    def mean(key: str, what: str) -> float:
        return sum(v[key][what] for v in want) / len(want)

    assert sian["psnr"] == pytest.approx(mean("sian_rain100l", "psnr"), abs=1e-3)
    assert sian["ssim"] == pytest.approx(mean("sian_rain100l", "ssim"), abs=1e-4)
    assert sian["diff_psnr"] == pytest.approx(sian["psnr"] - 38.80, abs=1e-3)
    inp = rows["Input (rainy vs ground truth)", "Rain100L: real/rain100l_sample"]
    assert inp["psnr"] == pytest.approx(mean("input_rainy", "psnr"), abs=1e-3)
    assert inp["ssim"] == pytest.approx(mean("input_rainy", "ssim"), abs=1e-4)
    assert "partial set (n=4 of 100)" in inp["note"]


def test_found_real_sets_are_named_by_benchmark(tmp_path: Path, shared: Path) -> None:
    for name in ("rain100l_sample", "Rain100H/test", "rain100h/train", "rain12600"):
        shutil.copytree(shared / "data" / "rain100l_sample", tmp_path / name)
    sets = plan.test_sets(Params("smoke", data_root=str(tmp_path)))  # found by name
    found = {b: Path(t.spec).relative_to(tmp_path).as_posix()
             for b, ts in sets.items() for t in ts if t.source == "--data-root"}  # fmt: skip
    assert found == {"rain100l": "rain100l_sample", "rain100h": "Rain100H/test"}


def test_notebooks_are_clean_and_parameterised() -> None:
    for name in pipeline.NOTEBOOKS:
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code[0].metadata.get("tags") == ["parameters"], name
        # papermill's parameters: plain assignments of literals, the profile among them
        body = ast.parse(code[0].source).body
        assert all(isinstance(a, ast.Assign) for a in body), name
        values = {a.targets[0].id: ast.literal_eval(a.value) for a in body}
        assert values.get("profile") in ("smoke", "quick", "paper"), (name, values)
        for c in code:
            assert c.outputs == [] and c.execution_count is None, name
        assert nb.metadata["kernelspec"]["name"] == pipeline.KERNEL
        # each chapter closes on what its run found (the smoke run checks it states numbers)
        assert any(c.source.startswith(FOUND) for c in nb.cells), name


def test_kernel_is_the_derain_one_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    specs = {"python3": "/x", pipeline.KERNEL: "/y"}
    monkeypatch.setattr(KernelSpecManager, "find_kernel_specs", lambda self: specs)
    assert pipeline.kernel_name() == pipeline.KERNEL
    del specs[pipeline.KERNEL]
    assert pipeline.kernel_name() == "python3"


def test_failing_notebook_is_named_with_its_cell(
    hermetic: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    src = hermetic / "nbs"
    src.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("1 / 0")]
    nbformat.write(nb, src / "00_data.ipynb")
    monkeypatch.setenv("DERAIN_PROJECT", str(hermetic))  # its notebooks/ are these
    (hermetic / "notebooks").symlink_to(src)
    with pytest.raises(DerainError) as e:
        pipeline.run_pipeline("smoke", notebooks=("00_data.ipynb",), log=lambda *a, **k: None)
    (line,) = str(e.value).splitlines()  # one line: the notebook and the error
    assert "00_data.ipynb" in line and "ZeroDivisionError" in line
    assert "1 / 0" in capsys.readouterr().err  # the failing cell, shown
    assert (hermetic / "results" / "smoke" / "notebooks" / "00_data.ipynb").is_file()


def test_unknown_profile_and_missing_folders_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for argv, named in (
        (["--profile", "nosuch"], "nosuch"),
        (["--profile", "smoke", "--data-root", str(tmp_path / "x")], str(tmp_path / "x")),
    ):
        assert main(["reproduce", *argv]) == 2
        out, err = capsys.readouterr()
        (line,) = err.strip().splitlines()
        assert line.startswith("derain: error: ") and named in line, line


def test_each_table_is_built_from_its_own_step(hermetic: Path) -> None:
    run = {"kind": "reproduced", "detail": "smoke, run 1a2b3c4d5e6f"}
    cell = {"method": "sian/neg-ssim", "benchmark": "rain100l", **run, "n": 4}
    own = tables.Score(**cell, test_set="embedded light", psnr=20.0, ssim=0.7, stand_in=True)
    real = tables.Score(**cell, test_set="Rain100L: sample", psnr=21.0, ssim=0.8)
    res = results_dir("smoke")
    tables.save_scores([own], res / "run-state" / "scores" / "table5.json")
    tables.save_scores([own, real], res / "run-state" / "scores" / "table3_4.json")
    build_tables("smoke", ("table3", "table5"))
    t5, t3 = (read_table("smoke", t) for t in ("table5", "table3"))
    shown = tables.provenance_text(run["kind"], run["detail"])  # as the CSVs write it
    assert t5[t5.provenance == shown].test_set.tolist() == ["embedded light"]
    assert (t3.provenance == shown).sum() == 2
