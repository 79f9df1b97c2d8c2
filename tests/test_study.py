"""The study's small steps without training: the record's seed table, the figures drawn
from saved tables, and the HTML report's index with its summary."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from derain_lib import tables
from derain_lib.study import record
from derain_lib.study.plan import results_dir
from derain_lib.study.report import export_report
from derain_lib.study.tabulate import write_table
from derain_lib.viz import results as plots

RUN = {"kind": "reproduced", "detail": "smoke, run 1a2b3c4d5e6f"}


@pytest.fixture
def res(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("DERAIN_FIGURES", str(tmp_path / "figures"))
    out = results_dir("smoke")
    out.mkdir(parents=True)
    return out


IDS = ["sian-baseline/neg-ssim", "sian-baseline+lstm/neg-ssim", "sian/neg-ssim"]


def _table5(res: Path, values: tuple[float, float, float], real: bool = False) -> None:
    psnr = dict(zip(IDS, values, strict=True))
    test = "Rain100L: rain100l/test" if real else "embedded light"
    scores = [
        tables.Score(
            method=m,
            benchmark="rain100l",
            **RUN,
            test_set=test,
            n=100 if real else 4,
            psnr=psnr[m],
            ssim=0.9,
            stand_in=not real,
        )
        for m in IDS
    ]
    write_table(res, "table5", scores)


def _rows(method: str, evidence: str, seeds: list[str], psnr: list[float]) -> list[dict]:
    return [
        {"method": method, "variant": "", "benchmark": "rain100l", "test_set": "t",
         "evidence": evidence, "seed": seed, "image": f"{i}", "scene": f"{i}",
         "psnr": p + i, "ssim": 0.9}
        for seed, p in zip(seeds, psnr, strict=True)
        for i in range(3)
    ]  # fmt: skip


def test_the_record_is_one_sorted_table_and_its_seed_means(res: Path) -> None:
    record.update("smoke", _rows("input", "rainy input", [""], [20.0]))
    record.update("smoke", _rows("sian/neg-ssim", "trained here", ["0", "1"], [30.0, 32.0]))
    record.update("smoke", _rows("sian/mae", "trained here", ["0", "1"], [20.5, 24.0]))
    df = record.read("smoke")
    assert list(df.columns) == record.COLUMNS and len(df) == 15
    # sian/mae seed 0 gains 0.5 dB over the input: degenerate, seed 1 (4 dB) is not
    flagged = df[df.degenerate]
    assert set(zip(flagged.method, flagged.seed, strict=True)) == {("sian/mae", "0")}
    table = record.seed_table(df).set_index("method")
    assert table.loc["sian/neg-ssim", "psnr"] == pytest.approx(32.0)  # (31 + 33) / 2
    assert table.loc["sian/neg-ssim", "psnr_sd"] == pytest.approx(np.sqrt(2))
    assert table.loc["sian/neg-ssim", "n_seeds"] == 2 and table.loc["input", "n_seeds"] == 1
    assert table.loc["sian/mae", "degenerate"] and not table.loc["sian/neg-ssim", "degenerate"]
    # replacing a method's rows keeps the others and the file's order
    before = record.path("smoke").read_text()
    record.update("smoke", _rows("sian/neg-ssim", "trained here", ["0", "1"], [30.0, 32.0]))
    assert record.path("smoke").read_text() == before


def test_table_bars_show_ours_beside_the_papers(res: Path) -> None:
    _table5(res, (30.0, 31.5, 32.25))
    fig = plots.table_bars(pd.read_csv(res / "table5.csv"), "Table V")
    assert isinstance(fig, Figure)
    heights = [round(b.get_height(), 2) for b in fig.axes[0].patches]
    assert heights == [30.0, 31.5, 32.25, 37.92, 38.68, 38.80]
    # labels wrap at spaces only: "Baseline+SIAN+LSTM" is not cut into "...+LS" / "TM"
    ticks = [t.get_text().split("\n") for t in fig.axes[0].get_xticklabels()]
    assert [lines[0] for lines in ticks] == ["Baseline", "Baseline+LSTM", "Baseline+SIAN+LSTM"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "this run",
        "paper (its own test set)",
    ]


def test_per_image_scatter_pairs_images_by_name(res: Path) -> None:
    for method, values in (("input", [20.0, 25.0]), ("sian/neg-ssim", [22.0, 24.0])):
        d = res / "eval" / method.replace("/", "_")
        d.mkdir(parents=True)
        (d / "per_image.csv").write_text(
            "name,psnr,ssim\n" + "".join(f"{n},{v},0.5\n" for n, v in zip("ba", values, strict=1))
        )
    computed = {"kind": "computed", "detail": "x"}
    runs = (("input", computed, "input"), ("sian/neg-ssim", RUN, "sian_neg-ssim"))
    csv = "smoke/eval/{}/per_image.csv"
    scores = [
        tables.Score(
            method=m,
            benchmark="rain100l",
            **prov,
            test_set="light",
            n=2,
            psnr=22.0,
            ssim=0.5,
            stand_in=True,
            per_image_csv=csv.format(d),
        )
        for m, prov, d in runs
    ]
    fig = plots.per_image_scatter(res.parent, scores, "input", "sian/neg-ssim")
    xy = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_array_equal(np.asarray(xy), [[20.0, 22.0], [25.0, 24.0]])
    missing = plots.per_image_scatter(res.parent, scores, "prenet-released", "sian/neg-ssim")
    assert "no test set scored with both prenet-released" in missing.axes[0].texts[0].get_text()


def test_report_index_links_chapters_tables_and_figures(res: Path, tmp_path: Path) -> None:
    _table5(res, (30.0, 31.5, 32.25))
    (res / "figures.json").write_text(
        json.dumps([{"path": "figures/smoke/table5_bars.png", "caption": "Table V <bars>"}])
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 04 · Table V: ablation\n\ntext")]
    path = res / "notebooks" / "04_table5_ablation.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    index = export_report("smoke", [path])
    page = index.read_text()
    assert '<a href="04_table5_ablation.html">04 · Table V: ablation</a>' in page
    assert (index.parent / "04_table5_ablation.html").is_file()
    assert '<a href="../table5.csv">table5.csv</a>' in page
    assert '<a href="../../../figures/smoke/table5_bars.png">' in page
    assert "Table V &lt;bars&gt;" in page
    assert re.search(r"<h2[^>]*>Summary", page)


def test_report_summary_says_what_is_exact_and_what_is_not_testable(res: Path) -> None:
    from derain_lib.study import claims
    from derain_lib.study.report import summary

    rows = []
    for m, psnr in (("input", 26.9), ("prenet-released", 37.65), ("sian-released", 38.8)):
        rows += [
            {"method": m, "variant": "", "benchmark": "rain100l", "test_set": "Rain100L: t",
             "evidence": record.evidence_of(m, False), "seed": "", "image": f"{i:03d}",
             "scene": f"{i}", "psnr": psnr + 0.1 * (i % 3) + 0.01 * i, "ssim": 0.98}
            for i in range(100)
        ]  # fmt: skip
    record.update("smoke", rows)
    claims.recompute("smoke")
    text = " ".join(summary("smoke"))
    assert "SIAN released weights on Rain100L (100 images): 39.39 dB / 0.980" in text
    assert "the paper&#x27;s row 38.80 / 0.984" in text
    assert "direction supported" in text and "Holm over 1" in text
    assert "Rain1400: not run" in text
    assert "Parameters: SIAN 491,939, PReNet 168,963" in text


def test_derain_photos_drops_outputs_of_photos_no_longer_there(tmp_path: Path) -> None:
    """A photo removed from the folder (e.g. a snow scene) leaves no stale output behind."""
    import torch

    from derain_lib.data.io import write_png
    from derain_lib.study.figures import derain_photos

    class Half(torch.nn.Module):  # a one-stage "model"
        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            return [x * 0.5]

    photos = []
    for stem in ("a", "b"):
        photos.append(write_png(tmp_path / "in" / f"{stem}.png", np.full((8, 8, 3), 200, np.uint8)))
    out = tmp_path / "out"
    derain_photos({"m/x": Half()}, photos, out)
    assert sorted(p.name for p in (out / "m_x").iterdir()) == ["a.png", "b.png"]
    derain_photos({"m/x": Half()}, photos[:1], out, reuse=True)
    assert sorted(p.name for p in (out / "m_x").iterdir()) == ["a.png"]
    assert sorted(p.name for p in (out / "rainy").iterdir()) == ["a.png"]


def test_a_chapter_run_by_hand_writes_to_a_scratch_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only ``derain reproduce`` writes the committed results/ and figures/: a notebook
    kernel started any other way (JupyterLab, papermill by hand) gets a scratch folder."""
    import os
    import sys
    import types

    from derain_lib import fsutil
    from derain_lib.study import plan

    class ZMQInteractiveShell:  # what a Jupyter kernel's get_ipython() returns
        pass

    monkeypatch.setitem(
        sys.modules, "IPython", types.SimpleNamespace(get_ipython=ZMQInteractiveShell)
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in ("DERAIN_RESULTS", "DERAIN_FIGURES", fsutil.REPRODUCE_ENV):
        monkeypatch.delenv(var, raising=False)
    scratch = fsutil.scratch_when_by_hand()
    assert scratch is not None and str(tmp_path / "cache") in str(scratch)
    assert plan.results_dir("quick") == (scratch / "results" / "quick").resolve()
    assert plan.figures_dir("quick") == (scratch / "figures" / "quick").resolve()
    # under derain reproduce (its kernels inherit the variable), or outside a kernel: as set
    monkeypatch.delenv("DERAIN_RESULTS")
    monkeypatch.setenv(fsutil.REPRODUCE_ENV, "1")
    assert fsutil.scratch_when_by_hand() is None and "DERAIN_RESULTS" not in os.environ
    monkeypatch.delenv(fsutil.REPRODUCE_ENV)
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: None))
    assert fsutil.scratch_when_by_hand() is None
