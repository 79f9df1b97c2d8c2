"""The study as a report: the executed notebooks and an index page (a summary, relative links
to the chapters, tables, claims and figures), all through nbconvert."""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path

import pandas as pd

from ..fsutil import atomic_write_text
from ..models import build_model, count_parameters
from ..tables import BENCHMARKS
from . import record
from .paper import DATA, TABLE3, TABLES, paper_value
from .plan import figures_dir, results_dir

#: A live widget's output, which changes with every run: the report shows its text form.
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def summary(profile: str) -> list[str]:
    """The findings on one screen, as Markdown sections: what is exact, what the released
    models show, what is not testable here and why."""
    exact, show = [], []
    means = record.seed_table(record.read(profile))
    released = {m.id: m for m in TABLE3.methods if m.id.released}
    mine = (means.variant == "") & (means.evidence == record.RELEASED)
    for r in means[mine & means.method.isin(released)].itertuples():
        m = released[r.method]
        table = "III" if r.benchmark in TABLE3.benchmarks else "IV"
        paper = paper_value(table, m.paper_row, r.benchmark).value  # printed for both
        exact.append(
            f"{m.label.split()[0]} released weights on {BENCHMARKS[r.benchmark]} "
            f"({r.n_images} images): {r.psnr:.2f} dB / {r.ssim:.3f}, the paper's row "
            f"{paper[0]:.2f} / {paper[1]:.3f} ({r.psnr - paper[0]:+.2f} dB)"
        )
    if exact:
        sian, prenet = (count_parameters(build_model(n)) for n in ("sian", "prenet"))
        exact.append(f"Parameters: SIAN {sian:,}, PReNet {prenet:,}")
    path = results_dir(profile) / "claims.csv"
    df = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=DATA["columns"]["claims"])
    for r in df[df.p_holm.notna()].itertuples():
        paper = "" if pd.isna(r.paper_diff_psnr) else f", the paper's {r.paper_diff_psnr:+.2f}"
        show.append(
            f"{r.claim}: {r.diff_psnr:+.2f} dB [{r.lo_psnr:+.2f}, {r.hi_psnr:+.2f}]{paper}: "
            f"direction {r.direction}, size {r.size} (Holm over {int(df.p_holm.notna().sum())})"
        )
    if len(ko := df[df.evidence.astype(str).str.startswith("inference-time")]):
        show.append(
            f"Attention knocked out at inference ({len(ko)} kinds, released SIAN): the PSNR "
            f"cost ranges {ko.diff_psnr.min():+.2f} to {ko.diff_psnr.max():+.2f} dB with the "
            "kind of knock-out: a sensitivity, not Table V's retrained ablation"
        )
    untested = [
        f"{r.claim}: not run: {r.reason}" for r in df[df.direction == "not run"].itertuples()
    ]
    if len(checks := df[df.evidence == record.PIPELINE_CHECK]):
        untested.append(
            f"Tables {', '.join(dict.fromkeys(checks.table.astype(str)))}: {len(checks)} rows "
            "are pipeline checks (models trained here on stand-in data or far below the "
            f"paper's budget; {int(checks.reason.str.contains('degenerate').sum())} with a "
            "degenerate model): they need the paper profile on a GPU"
        )
    groups = {
        "The released weights against the paper's rows (exact where the difference is 0.00)": exact,
        "What the released models show": show,
        "Not testable here, and why": untested,
    }
    return [
        f"### {t}\n\n" + "\n".join(f"- {escape(x)}" for x in items)
        for t, items in groups.items()
        if items
    ]


def export_report(profile: str, executed: list[Path]) -> Path:
    """Write ``results/<profile>/report/`` from the ``executed`` notebooks; returns the index."""
    import nbformat  # the study extra, as papermill and JupyterLab
    from nbconvert import HTMLExporter

    res = results_dir(profile)
    out = res / "report"
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")

    def page(nb: nbformat.NotebookNode, name: str, title: str) -> None:
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
        atomic_write_text(out / f"{name}.html", body)

    def link(target: Path, text: str = "", name: str = "") -> str:
        to = Path(os.path.relpath(target, out)).as_posix()
        return f"- [{escape(name or target.name)}]({to})" + (f": {escape(text)}" if text else "")

    chapters = []
    for path in executed:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):  # papermill gives its injected cell a random id
            if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
                cell["id"] = f"injected-parameters-{i}"
            for output in cell.get("outputs", []):  # a live widget: its text stands in for it
                output.get("data", {}).pop(WIDGET_VIEW, None)
        nb.metadata.pop("widgets", None)  # its state: random model ids, the last render's time
        heads = [c.source.lstrip() for c in nb.cells if c.cell_type == "markdown"]
        head = next((h for h in heads if h.startswith("#")), path.stem)  # its first heading
        title = head.splitlines()[0].lstrip("#").strip()
        page(nb, path.stem, title)
        chapters.append(link(out / f"{path.stem}.html", name=title))
    files = {f"{k}.csv": f"Table {t.number}: {t.title}" for k, t in TABLES.items()}
    files |= dict.fromkeys(("tables.md", "claims.csv", "claims.md"), "")
    index = res / "figures.json"
    figs = json.loads(index.read_text()) if index.is_file() else []
    figures = [link(figures_dir(profile) / Path(f["path"]).name, f["caption"]) for f in figs]
    tables = [link(res / n, t) for n, t in files.items() if (res / n).is_file()]
    text = "\n\n".join(
        [f"# SIAN reproduction study: profile `{profile}`", "## Summary", *summary(profile)]
        + ["## Chapters", "\n".join(chapters), "## Tables and claims", "\n".join(tables)]
        + ["## Figures", "\n".join(figures)]
    )
    cell = nbformat.v4.new_markdown_cell(text, id="index")
    page(nbformat.v4.new_notebook(cells=[cell]), "index", f"derain study: profile {profile}")
    return out / "index.html"
