"""Table rows with provenance: ``tableN.csv`` from the scores of the step that measured
them, and ``tables.md`` (every table, the run's record and the figure captions).

A measured row's PSNR and SSIM are the mean over the training seeds of each seed's mean over
the images (``n_seeds``, ``psnr_sd``, ``ssim_sd`` beside them; one value for released weights
and the Input), from the record ``scores.csv`` (:func:`.record.seed_table`)."""

from __future__ import annotations

import json

import pandas as pd

from ..fsutil import atomic_write_text
from ..tables import (
    NOT_RUN,
    TABLES,
    MethodId,
    Step,
    TableSpec,
    load_scores,
    write_markdown,
    write_tables,
)
from . import record
from .paths import results_dir, work_dir


def build_tables(profile: str, names: tuple[str | TableSpec, ...] = ()):
    """Write ``tableN.csv`` for ``names`` (table keys or specs) from the scores their step
    recorded (:attr:`~derain_lib.tables.TableSpec.step`), then re-render ``tables.md``;
    returns its path."""
    res = results_dir(profile)
    means = record.seed_table(record.read(profile)).query("variant == ''")
    means = means.set_index(["method", "test_set"])
    for name in names:
        spec = name if isinstance(name, TableSpec) else TABLES[name]
        scores = load_scores([work_dir(profile) / "scores" / f"{spec.step}.json"])
        write_tables(res, scores, [spec.key])
        with_seed_means(res / f"{spec.key}.csv", means)
    rec = res / "provenance.json"
    header = ""
    if rec.is_file():
        p = json.loads(rec.read_text())
        q = p["parameters"]
        header = (
            f"Data root {q['data_root']}, weights dir {q['weights_dir']}, "
            f"overrides {' '.join(q['overrides']) or 'none'}. When, where, on which commit "
            "and how long: `provenance.json` (kept apart so that a re-run that changes no "
            "number leaves this file as it is)."
        )
    return write_markdown(res, profile, header)


def with_seed_means(path, means: pd.DataFrame) -> None:
    """Rewrite the measured rows of the table CSV at ``path`` with the seed means of the
    record (``means``: :func:`.record.seed_table` indexed by method and test set)."""
    df = pd.read_csv(path, keep_default_na=False, dtype=str)
    if "method_id" not in df.columns or df.empty:
        return
    records = df.to_dict("records")
    for r in records:
        r |= {"n_seeds": "", "psnr_sd": "", "ssim_sd": ""}
        key = (r["method_id"], r["test_set"])
        if r["kind"] == "paper" or key not in means.index:
            continue
        m = means.loc[key]
        r |= {"psnr": round(m.psnr, 4), "ssim": round(m.ssim, 4)}
        if r["diff_psnr"] != "":
            r["diff_psnr"] = round(m.psnr - float(r["paper_psnr"]), 4)
            r["diff_ssim"] = round(m.ssim - float(r["paper_ssim"]), 4)
        if MethodId(r["method_id"]).trained:
            r["n_seeds"] = int(m.n_seeds)
        if m.n_seeds > 1:
            r |= {"psnr_sd": round(m.psnr_sd, 4), "ssim_sd": round(m.ssim_sd, 4)}
        if m.degenerate:
            r["kind"] = "degenerate"
            r["note"] = "; ".join(
                x for x in (r["note"], f"degenerate: {record.DEGENERATE_RULE}") if x
            )
    atomic_write_text(path, pd.DataFrame(records).to_csv(index=False))


def read_table(profile: str, name: str | TableSpec, measured_only: bool = False) -> pd.DataFrame:
    """``results/<profile>/<name>.csv``; ``measured_only`` drops the paper-only rows."""
    key = name.key if isinstance(name, TableSpec) else name
    df = pd.read_csv(results_dir(profile) / f"{key}.csv")
    return df[df.kind != "paper"] if measured_only else df


def not_run_items(profile: str) -> list[dict]:
    """What did not run, from the saved results (not from printed output): every score
    record of ``kind`` ``not_run`` or ``degenerate`` (``scores/<step>.json``) and every
    training run that did not finish (``runs.json``, ``seeds.json``); one
    ``{"notebook", "what"}`` per item, the notebook named by its step."""
    notebook = {
        Step.TABLE2: "02_table2_loss.ipynb",
        Step.TABLE3_4: "03_tables3_4_benchmarks.ipynb",
        Step.TABLE5: "04_table5_ablation.ipynb",
    }
    items = []
    for step in Step:
        path = work_dir(profile) / "scores" / f"{step}.json"
        if not path.is_file():
            continue
        for s in load_scores([path]):
            if s.kind in ("not_run", "degenerate"):
                what = f"{s.method} on {s.test_set or s.benchmark}: {s.provenance}"
                items.append({"notebook": notebook[step], "what": what})
    df = record.read(profile)
    bad = df[df.degenerate].drop_duplicates(["method", "test_set", "seed"])
    for r in bad.itertuples():
        what = f"{r.method} seed {r.seed} on {r.test_set}: degenerate: {record.DEGENERATE_RULE}"
        step = Step.TABLE5 if r.method.startswith("sian-baseline") else Step.TABLE2
        items.append({"notebook": notebook[step], "what": what})
    for name, nb in (("runs.json", "01_train.ipynb"), ("seeds.json", "08_claims.ipynb")):
        path = work_dir(profile) / name
        rows = json.loads(path.read_text()) if path.is_file() else []
        for r in rows:
            if r.get("status", "ok") != "ok":
                seed = f" seed {r['seed']}" if "seed" in r else ""
                why = r["status"].removeprefix(NOT_RUN)
                items.append(
                    {"notebook": nb, "what": f"{r['method']} {r['benchmark']}{seed}: {why}"}
                )
    return list({(i["notebook"], i["what"]): i for i in items}.values())
