"""The reproduction pipeline end to end: papermill runs every notebook of the smoke profile,
and the tests assert on the CSVs it emits, not on printed output."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from derain_lib import tables
from derain_lib.entry import main
from derain_lib.errors import DerainError
from derain_lib.runs import restored
from derain_lib.study import pipeline
from derain_lib.study import record as score_record
from derain_lib.study.claims import CLAIMS
from derain_lib.study.paths import results_dir
from derain_lib.study.plan import Params, found_real
from derain_lib.study.scoring import score_methods
from derain_lib.study.tabulate import build_tables

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
    res = hermetic / "results" / "smoke"
    finished = [line for line in lines if line.startswith("[") and " done in " in line]
    assert len(finished) == len(record["notebooks"]) >= 6
    # training progress from the kernels (their stderr): which model of how many, cached or not
    progress = capfd.readouterr().err.splitlines()
    assert any(ln.startswith("model 1/10: ") and "seed 0" in ln for ln in progress), progress
    assert any(ln.startswith("model 20/20: ") for ln in progress), progress  # 08's seeds
    # the closing summary: each item not run, then "done with N items not run"
    not_run = record["not_run"]
    for item in not_run:
        assert f"not run ({item['notebook']}): {item['what']}" in lines
    n = len(not_run)
    done = f"profile smoke: done with {n} item" if n else "profile smoke: done in"
    assert lines[-1].startswith(done), lines[-1]
    panel = hermetic / "figures" / "smoke" / "attention_panel.png"
    explorer = [i["what"] for i in not_run if i["notebook"] == "06_attention_explorer.ipynb"]
    if panel.is_file():
        assert explorer == []
    else:  # no released weights in the hermetic run
        assert "figures/smoke/attention_panel.png was not drawn" in explorer, not_run
        assert len(explorer) == 1, not_run  # (read from saved results, not printed lines)
    # what did not run comes from the saved score records: the released weights' cells
    assert any(
        i["notebook"] == "03_tables3_4_benchmarks.ipynb" and "released weights" in i["what"]
        for i in not_run
    ), not_run
    assert (res / "notebooks" / "05_figures.ipynb").is_file()
    runs_dir = hermetic / "results" / "runs"
    for name in ("table2", "table3", "table4", "table5"):
        rows = tables.read_csv(res / f"{name}.csv")
        assert rows, name
        for r in rows:
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
    t3 = tables.read_csv(res / "table3.csv")
    inputs = [r for r in t3 if r["paper_row"] == "Input"]
    assert {r["benchmark"] for r in inputs} == {
        "embedded light (stand-in for Rain100L)",
        "embedded heavy (stand-in for Rain100H)",
    }
    assert all(r["provenance"].startswith("computed") and _finite(r["psnr"]) for r in inputs)
    released = [r for r in t3 if r["method"].endswith("(released weights)")]
    assert released and all("not found" in r["provenance"] for r in released)
    # trained rows of Tables II and V: every (method, benchmark) cell reproduced
    for name, n_methods in (("table2", 3), ("table5", 3)):
        rows = tables.read_csv(res / f"{name}.csv")
        trained = sum(r["kind"] in ("reproduced", "degenerate") for r in rows)
        assert trained == 2 * n_methods, name
    t4 = tables.read_csv(res / "table4.csv")
    assert all(
        r["provenance"].startswith(("not run", "paper")) for r in t4
    )  # no Rain1400/Rain12 data in the smoke profile
    md = (res / "tables.md").read_text()
    assert "## Table V" in md and "## Figures" in md
    figs = json.loads((res / "figures.json").read_text())
    assert figs and all(
        (hermetic / "figures" / "smoke" / Path(f["path"]).name).is_file() for f in figs
    )
    assert json.loads((res / "provenance.json").read_text())["wall_seconds"] > 0
    # claims: one row per claim and test set; on the stand-ins never a verdict
    claims = tables.read_csv(res / "claims.csv")
    assert {(r["claim"], r["benchmark"]) for r in claims} >= {
        (c.text, tables.BENCHMARKS[c.benchmark]) for c in CLAIMS
    }
    for r in claims:
        claim = next((c for c in CLAIMS if c.text == r["claim"]), None)
        if claim is not None and claim.trained:  # Tables II and V: stand-ins, 2 seeds
            assert r["evidence"] == "pipeline check" and r["n_seeds"] == "2", r
            assert (r["direction"], r["size"]) == ("no verdict", "no verdict"), r
            assert float(r["lo_psnr"]) <= float(r["diff_psnr"]) <= float(r["hi_psnr"]), r
        else:  # released weights and their stages: none in the hermetic smoke run
            assert r["direction"] == "not run" and len(r["reason"]) > 10, r
    # the one record: every seed of the trained methods, the Input, nothing else to read
    scores = score_record.read("smoke")
    assert {s for s in scores.seed[scores.method != "input"]} == {"0", "1"}
    assert set(scores.evidence) == {"pipeline check"}
    assert not (res / "scores").exists() and not (res / "runs.json").exists()
    assert "Holm" in (res / "claims.md").read_text()
    assert (hermetic / "figures" / "smoke" / "claims_forest.png").is_file()
    # the report: a summary, then every chapter linked from index.html
    index = (res / "report" / "index.html").read_text()
    assert "<h2>Summary</h2>" in index and "pipeline checks" in index
    for nb in record["notebooks"]:
        page = res / "report" / f"{Path(nb).stem}.html"
        assert f'href="{page.name}"' in index, nb
        assert "What this run found" in page.read_text(), nb
    for name in ("table2", "table3", "table4", "table5"):
        assert f"{name}.csv</a>" in index, name
    # chapter 07 (beyond the paper): its rows, measured cost, time, and findings in the report
    assert list(record["notebooks"])[-2:] == ["07_beyond_the_paper.ipynb", "08_claims.ipynb"]
    beyond = res / "beyond"
    for name in ("density", "attention_auc", "generalisation", "cost", "protocols"):
        assert (beyond / f"{name}.json").is_file(), name
    cost = json.loads((beyond / "cost.json").read_text())
    assert cost["rows"] and all(r["status"] == "ok" and r["gflop_per_mp"] > 0 for r in cost["rows"])
    sections = record["run_facts"]["07_beyond_the_paper.ipynb"]["sections"]
    assert sections["total"]["wall_s"] > 0  # the chapter's time: in provenance.json only
    page = (res / "report" / "07_beyond_the_paper.html").read_text()
    assert "Rain density" in page
    assert f"Measured {cost['measured']} on {cost['key']['cpu']}" in page
    assert all(Path(f["path"]).name in index for f in figs)
    # a second run changes no output but provenance.json: same runs from the cache (model
    # files untouched), the cost table reused, figures and report pages byte-identical
    first = _outputs(hermetic)
    runs = json.loads((res / "run-state" / "runs.json").read_text())
    # the records name runs relative to the results folder: the same in every checkout
    assert str(hermetic) not in (res / "run-state" / "runs.json").read_text()
    assert str(hermetic) not in score_record.path("smoke").read_text()
    stamps = {r["run"]: restored(r["checkpoint"]).stat().st_mtime_ns for r in runs}
    pipeline.run_pipeline("smoke", overrides=SMOKE_SET, log=lambda *a, **k: None)
    second = _outputs(hermetic)
    changed = sorted(f for f in first.keys() | second.keys() if first.get(f) != second.get(f))
    assert not changed, f"a second smoke run changed {changed}"
    assert {r["run"]: restored(r["checkpoint"]).stat().st_mtime_ns for r in runs} == stamps


@pytest.mark.slow
def test_released_sian_on_rain100l_sample_is_a_partial_set(shared: Path, hermetic: Path) -> None:
    root = hermetic / "real"
    shutil.copytree(shared / "data" / "rain100l_sample", root / "rain100l_sample")
    p = Params("smoke", str(root), str(shared / "weights"))
    scores = score_methods(p, "t3", ["input", "sian-released"], ["rain100l"])
    ref = json.loads((shared / "weights" / "reference" / "reference.json").read_text())
    want = [v for v in ref["per_image"].values()]
    rows = {(r["method"], r["test_set"]): r for r in tables.build_table("table3", scores)}
    sian = rows["SIAN (released weights)", "Rain100L: real/rain100l_sample"]
    assert sian["n"] == 4
    assert "partial set (n=4 of 100)" in sian["note"]
    assert sian["kind"] == "released"
    assert sian["provenance"] == tables.provenance_text(
        **tables.released(
            "sian_rain100l.pth", "ab3894696b6c17c7a901ad4096dc4cdfaac835a00447ec64553df809ee143956"
        )
    )

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
    found = {b: p.relative_to(tmp_path).as_posix() for b, p in found_real(tmp_path)}
    assert found == {"rain100l": "rain100l_sample", "rain100h": "Rain100H/test"}


def test_notebooks_are_clean_and_parameterised() -> None:
    for name in pipeline.NOTEBOOKS:
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code[0].metadata.get("tags") == ["parameters"], name
        assert "profile = " in code[0].source and "import" not in code[0].source
        for c in code:
            assert c.outputs == [] and c.execution_count is None, name
        assert nb.metadata["kernelspec"]["name"] == pipeline.KERNEL
        # each chapter ends with what its run found, stated from its own numbers
        titles = [c.source for c in nb.cells if c.cell_type == "markdown"]
        assert any(t.startswith("## What this run found") for t in titles), name


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
    with pytest.raises(
        DerainError, match=r"notebook 00_data.ipynb failed in cell \d.*ZeroDivision"
    ):
        pipeline.run_pipeline("smoke", notebooks=("00_data.ipynb",), log=lambda *a, **k: None)
    assert "1 / 0" in capsys.readouterr().err
    assert (hermetic / "results" / "smoke" / "notebooks" / "00_data.ipynb").is_file()


def test_unknown_profile_and_missing_folders_are_one_line_errors(tmp_path: Path) -> None:
    assert main(["reproduce", "--profile", "nosuch"]) == 2
    assert main(["reproduce", "--profile", "smoke", "--data-root", str(tmp_path / "x")]) == 2


def test_each_table_is_built_from_its_own_step(hermetic: Path) -> None:
    run = tables.reproduced("smoke", "1a2b3c4d5e6f")
    cell = {"method": "sian/neg-ssim", "benchmark": "rain100l", **run, "n": 4}
    own = tables.Score(**cell, test_set="embedded light", psnr=20.0, ssim=0.7, stand_in=True)
    real = tables.Score(**cell, test_set="Rain100L: sample", psnr=21.0, ssim=0.8)
    res = results_dir("smoke")
    tables.save_scores([own], res / "run-state" / "scores" / "table5.json")
    tables.save_scores([own, real], res / "run-state" / "scores" / "table3_4.json")
    build_tables("smoke", ("table3", "table5"))
    t5 = tables.read_csv(res / "table5.csv")
    t3 = tables.read_csv(res / "table3.csv")
    shown = tables.provenance_text(run["kind"], run["detail"])  # as the CSVs write it
    assert [r["test_set"] for r in t5 if r["provenance"] == shown] == ["embedded light"]
    assert len([r for r in t3 if r["provenance"] == shown]) == 2
