"""The study as a report a reader opens: the executed notebooks through nbconvert, and an
index page (a summary, then relative links to the chapters, tables, claims and figures, so a
committed report opens from a checkout)."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..fsutil import atomic_write_text
from ..models import build_model, count_parameters
from ..tables import BENCHMARKS, MethodId
from . import record
from .paper import TABLES, paper_value
from .plan import figures_dir, results_dir

if TYPE_CHECKING:  # the study extra (JupyterLab, papermill)
    import nbformat

#: A live widget's output; its state (random ids, times) changes with every run, and a
#: static page cannot drive it, so the report shows the widget's text form instead.
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def chapter_title(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The notebook's first Markdown heading, without the ``#``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("#"):
            return cell.source.lstrip().splitlines()[0].lstrip("#").strip()
    return fallback


def summary(profile: str) -> list[str]:
    """The findings on one screen, as HTML list items in three groups: what is exact (the
    released weights against the paper's rows), what the released models show (the claims
    with a direction verdict, the knock-outs), what is not testable here and why. Numbers
    are rounded as the paper rounds them (PSNR 2 decimals, SSIM 3)."""
    res = results_dir(profile)
    exact, show, untested = [], [], []
    means = record.seed_table(record.read(profile))
    means = means[(means.variant == "") & (means.evidence == record.RELEASED)]
    rows = {MethodId.SIAN_RELEASED: "Ours", MethodId.PRENET_RELEASED: "PReNet [17] (CVPR'19)"}
    for r in means[means.method.isin(rows)].itertuples():
        table = "III" if r.benchmark in ("rain100l", "rain100h") else "IV"
        paper = paper_value(table, rows[r.method], r.benchmark).value
        if paper is None:
            continue
        exact.append(
            f"{'SIAN' if r.method == MethodId.SIAN_RELEASED else 'PReNet'} released weights on "
            f"{BENCHMARKS[r.benchmark]} ({r.n_images} images): {r.psnr:.2f} dB / {r.ssim:.3f}, "
            f"the paper's row {paper[0]:.2f} / {paper[1]:.3f} ({r.psnr - paper[0]:+.2f} dB)"
        )
    if exact:
        sian, prenet = (count_parameters(build_model(n)) for n in ("sian", "prenet"))
        exact.append(f"Parameters: SIAN {sian:,}, PReNet {prenet:,}")
    path = res / "claims.csv"
    cols = ["claim", "table", "evidence", "direction", "size", "reason", "p_holm", "diff_psnr"]
    df = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=cols)
    for r in df[df.p_holm.notna()].itertuples():
        paper = "" if pd.isna(r.paper_diff_psnr) else f", the paper's {r.paper_diff_psnr:+.2f}"
        show.append(
            f"{r.claim}: {r.diff_psnr:+.2f} dB [{r.lo_psnr:+.2f}, {r.hi_psnr:+.2f}]{paper}: "
            f"direction {r.direction}, size {r.size} (Holm over {int(df.p_holm.notna().sum())})"
        )
    ko = df[df.evidence.astype(str).str.startswith("inference-time")]
    if len(ko):
        show.append(
            f"Attention knocked out at inference ({len(ko)} kinds, released SIAN): the PSNR "
            f"cost ranges {ko.diff_psnr.min():+.2f} to {ko.diff_psnr.max():+.2f} dB with the "
            "kind of knock-out: a sensitivity, not Table V's retrained ablation"
        )
    for r in df[df.direction == "not run"].itertuples():
        untested.append(f"{r.claim}: not run: {r.reason}")
    checks = df[df.evidence == record.PIPELINE_CHECK]
    if len(checks):
        tables = ", ".join(dict.fromkeys(checks.table.astype(str)))
        untested.append(
            f"Tables {tables}: {len(checks)} rows are pipeline checks (models trained here on "
            "stand-in data or far below the paper's budget; "
            f"{int(checks.reason.str.contains('degenerate').sum())} with a degenerate model): "
            "they need the paper profile on a GPU"
        )
    groups = [
        (
            "The released weights against the paper's rows (exact where the difference is 0.00)",
            exact,
        ),
        ("What the released models show", show),
        ("Not testable here, and why", untested),
    ]
    return [
        f"<h3>{t}</h3><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in items) + "</ul>"
        for t, items in groups
        if items
    ]


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


def _links(items: list[tuple[str, str, str]]) -> str:
    """An HTML list of links: (href, name, text after it)."""
    return (
        "<ul>"
        + "".join(
            f'<li><a href="{href}">{html.escape(name)}</a>'
            + (f": {html.escape(text)}" if text else "")
            + "</li>"
            for href, name, text in items
        )
        + "</ul>"
    )


def export_report(profile: str, executed: list[Path]) -> Path:
    """Write ``results/<profile>/report/`` from the ``executed`` notebooks; return
    ``index.html``."""
    import nbformat  # the study extra, as papermill and JupyterLab
    from nbconvert import HTMLExporter

    res = results_dir(profile)
    out = res / "report"
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    chapters = []
    for path in executed:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):  # papermill gives its injected cell a random id
            if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
                cell["id"] = f"injected-parameters-{i}"
            for output in cell.get("outputs", []):  # a live widget: its text stands in for it
                output.get("data", {}).pop(WIDGET_VIEW, None)
        nb.metadata.pop("widgets", None)  # its state: random model ids, the last render's time
        title = chapter_title(nb, path.stem)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
        page = out / f"{path.stem}.html"
        atomic_write_text(page, body)
        chapters.append((page.name, title))
    files = [(res / f"{k}.csv", f"Table {t.number}: {t.title}") for k, t in TABLES.items()]
    files += [(res / n, "") for n in ("tables.md", "claims.csv", "claims.md")]
    index = res / "figures.json"
    figs = json.loads(index.read_text()) if index.is_file() else []
    figures = [(figures_dir(profile) / Path(f["path"]).name, f["caption"]) for f in figs]
    parts = [
        "<h2>Summary</h2>",
        *summary(profile),
        "<h2>Chapters</h2>",
        _links([(name, title, "") for name, title in chapters]),
        "<h2>Tables and claims</h2>",
        _links([(_rel(p, out), p.name, t) for p, t in files if p.is_file()]),
        "<h2>Figures</h2>",
        _links([(_rel(p, out), p.name, t) for p, t in figures]),
    ]
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>derain study: profile {html.escape(profile)}</title>"
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto}</style></head><body>"
        f"<h1>SIAN reproduction study: profile <code>{html.escape(profile)}</code></h1>"
        + "".join(parts)
        + "</body></html>\n"
    )
    atomic_write_text(out / "index.html", page)
    return out / "index.html"
