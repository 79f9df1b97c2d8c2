"""The reproduction pipeline: ordered notebooks run by papermill, and the steps they call.

``derain reproduce --profile quick`` executes ``notebooks/00_data.ipynb`` ...
``06_attention_explorer.ipynb`` in order, with a fixed kernel and working directory
(``notebooks/``), one progress line per notebook, and the executed copies saved under
``results/<profile>/notebooks/``. Each notebook writes its artifacts (JSON, CSV, PNG) under
``results/<profile>/`` and ``figures/<profile>/``; the next one reads them. Expensive work goes
through the run cache (:func:`derain_lib.runs.get_or_run`), so a re-run reuses finished runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DerainError
from .fsutil import atomic_write_text, project_root
from .tables import (
    BENCHMARKS,
    Score,
    load_scores,
    not_run,
    released,
    reproduced,
    save_scores,
    write_markdown,
    write_tables,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = (
    "00_data.ipynb",
    "01_train.ipynb",
    "02_table2_loss.ipynb",
    "03_tables3_4_benchmarks.ipynb",
    "04_table5_ablation.ipynb",
    "05_figures.ipynb",
    "06_attention_explorer.ipynb",
    "07_claims.ipynb",
)
KERNEL = "derain"  # installed into the venv by `make setup` (ipykernel install --sys-prefix)


class NotebookFailed(DerainError):
    """A notebook of the pipeline raised: names the notebook, the cell and the error."""


def results_root() -> Path:
    """Where ``results/`` lives: env ``DERAIN_RESULTS`` or ``<project>/results``."""
    return Path(os.environ.get("DERAIN_RESULTS") or project_root() / "results").resolve()


def figures_root() -> Path:
    """Where ``figures/`` lives: env ``DERAIN_FIGURES`` or ``<project>/figures``."""
    return Path(os.environ.get("DERAIN_FIGURES") or project_root() / "figures").resolve()


def kernel_name() -> str:
    """The fixed kernel: ``derain`` when installed, else the environment's ``python3``."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL if KERNEL in KernelSpecManager().find_kernel_specs() else "python3"


# --- the study: what each notebook computes -------------------------------------------------

#: Profile data set names that stand in for a benchmark (the embedded synthetic sets).
STAND_IN_FOR = {"light": "rain100l", "heavy": "rain100h"}
#: Which released weights a benchmark is scored with (Rain12: the Rain100L models, as PReNet).
RELEASED_FOR = {
    "rain100l": "rain100l",
    "rain100h": "rain100h",
    "rain1400": "rain1400",
    "rain12": "rain100l",
}
#: Which training data set's model a benchmark is scored with.
TRAINED_ON = {
    "rain100l": "rain100l",
    "rain100h": "rain100h",
    "rain1400": "rain1400",
    "rain12": "rain100l",
}
#: Trained methods: id -> (model name, loss); the full model with neg-SSIM is shared by
#: Tables II, III/IV and V.
TRAINED = {
    "sian/neg-ssim": ("sian", "ssim"),
    "sian/mae": ("sian", "l1"),
    "sian/mse": ("sian", "mse"),
    "sian-baseline/neg-ssim": ("sian-baseline", "ssim"),
    "sian-baseline+lstm/neg-ssim": ("sian-baseline+lstm", "ssim"),
}
#: Trained methods per benchmark: Tables II and V need Rain100L/H only.
TRAIN_PLAN = {
    "rain100l": tuple(TRAINED),
    "rain100h": tuple(TRAINED),
    "rain1400": ("sian/neg-ssim",),
}
#: The notebook step (scores/<step>.json) each table is built from.
TABLE_STEPS = {"table2": "table2", "table3": "table3_4", "table4": "table3_4", "table5": "table5"}
#: Images per test set kept as PNG for the figures (rainy, ground truth, each method's output).
FIGURE_IMAGES = 4
#: Columns of the Fig. 7-9 analogues and of the real-rain figure (Fig. 10).
FIGURE_METHODS = ("input", "prenet-released", "sian-released", "sian/neg-ssim")
REAL_METHODS = ("prenet-released", "sian-released", "sian/neg-ssim")
METHOD_LABELS = {
    "input": "rainy",
    "prenet-released": "PReNet (released)",
    "sian-released": "SIAN (released)",
    "sian/neg-ssim": "SIAN (trained here)",
}
_BENCH_NAME = re.compile(r"rain(100l|100h|1400|12)(?!\d)")


def benchmark_of(dataset: str) -> str | None:
    """The benchmark a profile data set (``light``, ``rain100h`` ...) stands for or is."""
    return dataset if dataset in BENCHMARKS else STAND_IN_FOR.get(dataset)


@dataclass(frozen=True)
class TestSet:
    """A test set the study scores on: a benchmark, where its files are, a label."""

    benchmark: str
    spec: str  # "embedded:<preset>:test:<size>" or an absolute folder
    label: str
    stand_in: bool

    @property
    def id(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.+-]+", "-", self.label).strip("-")


@dataclass
class Study:
    """One profile's pipeline state: where its data, weights and results are.

    ``data_root`` (optional) is searched for real benchmark folders (named after the
    benchmark, e.g. ``rain100l_sample/`` or ``rain100h/test/``) and real rain photos
    (``real_rain/``); ``weights_dir`` for the released weight files.
    """

    profile: str
    data_root: str | None = None
    weights_dir: str | None = None
    overrides: list[str] = field(default_factory=list)

    @property
    def results(self) -> Path:
        return results_root() / self.profile

    @property
    def figures(self) -> Path:
        return figures_root() / self.profile

    def config(self, dataset: str, extra: list[str] | None = None):
        """The profile's config for ``dataset`` with the study's overrides, then ``extra``
        (``data.root`` = ``data_root`` when the profile trains on real data)."""
        from .config import profile_config

        overrides = [*self.overrides, *(extra or [])]
        cfg = profile_config(self.profile, dataset, overrides)
        if self.data_root and not cfg.data.train.startswith("embedded:"):
            cfg = profile_config(self.profile, dataset, [*overrides, f"data.root={self.data_root}"])
        return cfg

    def datasets(self) -> dict[str, str]:
        """Benchmark -> the profile's data set name for it."""
        from .config import profile_datasets

        out = {}
        for d in profile_datasets(self.profile):
            b = benchmark_of(d)
            if b is None:
                raise DerainError(f"profile {self.profile}: data set {d!r} is no benchmark")
            out[b] = d
        return out

    def test_sets(self) -> dict[str, list[TestSet]]:
        """Benchmark -> test sets: the profile's own, then real ones found under data_root."""
        out: dict[str, list[TestSet]] = {b: [] for b in BENCHMARKS}
        for b, d in self.datasets().items():
            spec = self._test_spec(self.config(d))
            if spec.startswith("embedded:"):
                label = f"embedded {spec.split(':')[1]} test ({self.profile}), stand-in"
                out[b].append(TestSet(b, spec, label, True))
            elif Path(spec).is_dir():
                out[b].append(TestSet(b, spec, f"{BENCHMARKS[b]}: {Path(spec).name}", False))
        for b, path in self.found_real() + self.prepared():
            if all(Path(t.spec) != path for t in out[b]):
                label = f"{BENCHMARKS[b]}: {path.parent.name}/{path.name}"
                out[b].append(TestSet(b, str(path), label, False))
        return out

    def found_real(self) -> list[tuple[str, Path]]:
        """(benchmark, folder) of every paired test folder under data_root, by folder name."""
        from .data.datasets import open_dataset

        if not self.data_root:
            return []
        root = Path(self.data_root).resolve()
        found = []
        for d in sorted([root, *root.glob("*"), *root.glob("*/*")]):
            if not d.is_dir() or "train" in d.name.lower():
                continue
            names = f"{d.parent.name if d != root else ''}/{d.name}".lower()
            m = _BENCH_NAME.search(names.replace("_", "").replace("-", ""))
            if m is None or any(p == d or p in d.parents for _, p in found):
                continue
            try:
                open_dataset(d)
            except DerainError:
                continue
            found.append(("rain" + m.group(1), d))
        return found

    @staticmethod
    def prepared() -> list[tuple[str, Path]]:
        """(benchmark, folder) of the test sets prepared with ``derain data prepare``."""
        from .data.catalog import prepared_dataset

        out = []
        for b in BENCHMARKS:
            try:
                out.append((b, Path(prepared_dataset(b, "test").root).resolve()))
            except DerainError:
                continue
        return out

    def real_photos(self) -> list[Path]:
        """Real rainy photographs (no ground truth) under ``data_root/real_rain``."""
        from .data.io import list_images

        folder = Path(self.data_root or "") / "real_rain"
        return list_images(folder) if self.data_root and folder.is_dir() else []

    # --- 00: data ---------------------------------------------------------------------------

    def prepare_data(self) -> list[dict]:
        """Open (building the embedded sets on first use) and fingerprint every data set.

        Writes ``data.json``: per benchmark its test sets (n, partial, data sha256) or why
        there are none, and the profile's training sets.
        """
        from .evaluate import open_data

        rows = []
        for b, sets in self.test_sets().items():
            if not sets:
                rows.append(
                    {
                        "benchmark": b,
                        "role": "test",
                        "set": "",
                        "n": 0,
                        "status": self.no_data_reason(b),
                    }
                )
            for t in sets:
                ds = open_data(t.spec)
                rows.append(
                    {
                        "benchmark": b,
                        "role": "test",
                        "set": t.label,
                        "n": len(ds),
                        "partial": ds.partial,
                        "stand_in": t.stand_in,
                        "sha256": ds.manifest_sha256(),
                        "status": "ok",
                    }
                )
        for b, d in self.datasets().items():
            cfg = self.config(d)
            try:
                ds = open_data(cfg.data.train, cfg.data.root)
            except DerainError as e:
                rows.append(
                    {
                        "benchmark": b,
                        "role": "train",
                        "set": cfg.data.train,
                        "n": 0,
                        "status": f"missing: {e}",
                    }
                )
                continue
            rows.append(
                {
                    "benchmark": b,
                    "role": "train",
                    "set": cfg.data.train,
                    "n": len(ds),
                    "partial": ds.partial,
                    "stand_in": cfg.data.train.startswith("embedded:"),
                    "sha256": ds.manifest_sha256(),
                    "status": "ok",
                }
            )
        _write_json(self.results / "data.json", rows)
        return rows

    def data_samples_figure(self):
        """First pair of each test set (rainy above clean) and a real rainy photo if found."""
        from matplotlib.figure import Figure

        from .data.io import read_image
        from .evaluate import open_data

        panels = []
        for sets in self.test_sets().values():
            for t in sets:
                rainy, clean = open_data(t.spec).load(0)
                panels.append((t.label, rainy, clean))
        photos = self.real_photos()
        if photos:
            panels.append(
                (f"real rain: {photos[0].name} (no ground truth)", read_image(photos[0]), None)
            )
        fig = Figure(figsize=(3.2 * len(panels), 4.6))
        axes = fig.subplots(2, len(panels), squeeze=False)
        for c, (label, rainy, clean) in enumerate(panels):
            for r, img in enumerate((rainy, clean)):
                axes[r, c].set_axis_off()
                if img is not None:
                    axes[r, c].imshow(img)
            axes[0, c].set_title(label, fontsize=8)
            axes[1, c].set_title("ground truth" if clean is not None else "", fontsize=8)
        fig.tight_layout()
        return fig

    def no_data_reason(self, benchmark: str) -> str:
        where = f"under --data-root {self.data_root}" if self.data_root else "(no --data-root)"
        return not_run(
            f"no {BENCHMARKS[benchmark]} test data: profile {self.profile} has none, none was "
            f"found {where} and none is prepared (derain data prepare {benchmark} --from PATH)"
        )

    # --- 01: training -----------------------------------------------------------------------

    def train_all(self) -> list[dict]:
        """Train (or take from the run cache) every model the tables need; writes runs.json."""
        from .evaluate import open_data
        from .runs import get_or_run

        rows = []
        for b, d in self.datasets().items():
            for mid in TRAIN_PLAN.get(b, ()):
                model, loss = TRAINED[mid]
                cfg = self.config(d, [f"model.name={model}", f"train.loss={loss}"])
                row = {
                    "method": mid,
                    "benchmark": b,
                    "dataset": d,
                    "model": model,
                    "loss": loss,
                    "stand_in": cfg.data.train.startswith("embedded:"),
                }
                try:
                    open_data(cfg.data.train, cfg.data.root)
                except DerainError as e:
                    rows.append({**row, "status": not_run(f"no training data: {e}")})
                    continue
                t0 = time.perf_counter()
                run = get_or_run(cfg)
                rows.append(
                    {
                        **row,
                        "status": "ok",
                        "run": run.key,
                        "test": self._test_spec(cfg),
                        "run_dir": str(run.dir),
                        "checkpoint": str(run.checkpoint_path),
                        "seconds_this_session": round(time.perf_counter() - t0, 1),
                        "metrics": run.metrics,
                    }
                )
        _write_json(self.results / "runs.json", rows)
        return rows

    def runs(self) -> list[dict]:
        path = self.results / "runs.json"
        if not path.is_file():
            raise DerainError(f"{path}: missing; run notebooks/01_train.ipynb first")
        return json.loads(path.read_text())

    # --- 02-04: scores ----------------------------------------------------------------------

    def score(
        self, step: str, methods: list[str], benchmarks: list[str], own_only: bool = False
    ) -> list[Score]:
        """Score ``methods`` on every test set of ``benchmarks``; writes scores/<step>.json.

        ``own_only`` keeps to the profile's own test sets (Tables II and V compare trained
        variants with each other); otherwise real sets found under data_root count too.
        Each (model file, data) score is cached in its eval folder.
        """
        sets = self.test_sets()
        runs = self.runs() if any(m in TRAINED for m in methods) else []
        out = []
        for b in benchmarks:
            chosen = [t for t in sets[b] if not own_only or t.stand_in or self._own(t)]
            for m in methods:
                if not chosen:
                    out.append(Score(m, b, self.no_data_reason(b)))
                for t in chosen:
                    out.append(self._score_one(m, t, runs))
        save_scores(out, self.results / "scores" / f"{step}.json")
        return out

    def _own(self, t: TestSet) -> bool:
        d = self.datasets().get(t.benchmark)
        return d is not None and self._test_spec(self.config(d)) == t.spec

    @staticmethod
    def _test_spec(cfg) -> str:
        """A config's test data as a TestSet spec: the embedded name or an absolute folder."""
        if cfg.data.test.startswith("embedded:"):
            return cfg.data.test
        return str((Path(cfg.data.root).expanduser() / cfg.data.test).resolve())

    def _model_for(self, method: str, b: str, runs: list[dict]) -> tuple[Path | None, str, str]:
        """(weights file or None for the input, provenance, note) or (None, 'not run: ..', '')."""
        from .weights import RELEASED, find_released, search_dirs

        if method == "input":
            return None, "computed (rainy input vs ground truth)", ""
        if method.endswith("-released"):
            w = RELEASED[f"{method.removesuffix('-released')}-{RELEASED_FOR[b]}"]
            path = find_released(w.name, self.weights_dir)
            if path is None:
                dirs = ", ".join(map(str, search_dirs(self.weights_dir)))
                return None, not_run(f"released weights {w.filename} not found in {dirs}"), ""
            note = "" if RELEASED_FOR[b] == b else f"scored with the {w.name} weights"
            return path, released(w.filename, w.sha256), note
        trained_on = TRAINED_ON[b]
        run = next(
            (r for r in runs if r["method"] == method and r["benchmark"] == trained_on), None
        )
        if run is None:
            return (
                None,
                not_run(f"profile {self.profile} trains no {BENCHMARKS[trained_on]} model"),
                "",
            )
        if run["status"] != "ok":
            return None, run["status"], ""
        note = f"trained on {run['dataset']}" if run["dataset"] != b else ""
        if run["stand_in"]:
            note = f"trained on the embedded {run['dataset']} stand-in data"
        return Path(run["checkpoint"]), reproduced(self.profile, run["run"]), note

    def _score_one(self, method: str, t: TestSet, runs: list[dict]) -> Score:
        """Score one method on one test set; model evaluations go through the run cache."""
        path, provenance, note = self._model_for(method, t.benchmark, runs)
        if provenance.startswith("not run"):
            return Score(method, t.benchmark, provenance, t.label, stand_in=t.stand_in)
        if path is None:
            out_dir, m = self._score_input(t)
        else:
            run = self._eval_run(method, path, t, runs)
            out_dir, m = run.dir, run.metrics
        return Score(
            method,
            t.benchmark,
            provenance,
            t.label,
            m["n"],
            m["psnr"],
            m["ssim"],
            t.stand_in,
            (out_dir / "per_image.csv").relative_to(results_root()).as_posix(),
            note,
        )

    def _eval_run(self, method: str, path: Path, t: TestSet, runs: list[dict]):
        """The training run itself on its own test set, else an evaluation-only cached run."""
        from .config import Config, ModelConfig, config_from_dict
        from .runs import get_or_run, open_run

        for r in runs:
            if r["method"] == method and r.get("checkpoint") == str(path) and r["test"] == t.spec:
                return open_run(r["run"])
        base = Config(
            name=self.profile,
            dataset=t.benchmark,
            model=ModelConfig(name=self._model_name(method), weights=str(path)),
            eval=self._eval_settings(method, t),
        )
        base.data.test, base.data.root = t.spec, "."
        return get_or_run(config_from_dict(base.to_dict()), progress=False)

    def _eval_settings(self, method: str, t: TestSet):
        """The eval settings ``method`` is scored with on ``t``: the profile's, except that
        the Input and released weights score every image of a real test set (the profile's
        ``eval.max_images`` caps the stand-ins and the models trained here)."""
        from dataclasses import replace

        ref = self._eval_reference(t.benchmark).eval
        full = not t.stand_in and (method == "input" or method.endswith("-released"))
        return replace(ref, max_images=None) if full else ref

    def _eval_reference(self, benchmark: str):
        """The config whose ``eval`` settings score ``benchmark`` (its data set's, else the
        profile's first)."""
        return self.config(self.datasets().get(benchmark) or next(iter(self.datasets())))

    @staticmethod
    def _model_name(method: str) -> str:
        if method.endswith("-released"):
            return method.removesuffix("-released")
        return TRAINED[method][0]

    def _score_input(self, t: TestSet) -> tuple[Path, dict]:
        """The Input row: the rainy image scored as if it were the output (cached per data)."""
        from .evaluate import evaluate, open_data

        ds = open_data(t.spec)
        out_dir = self.results / "eval" / "input" / t.id
        cached = out_dir / "metrics.json"
        sha = ds.manifest_sha256()
        max_images = self._eval_settings("input", t).max_images
        key = {"data": sha, "max_images": max_images}
        if cached.is_file() and json.loads(cached.read_text()).get("key") == key:
            return out_dir, json.loads(cached.read_text())
        res = evaluate(_rainy_input(), ds, out_dir, max_images=max_images)
        self._keep_ground_truth(ds, out_dir)
        m = {**res.summary(), "key": key, "test": t.spec}
        _write_json(cached, m)
        return out_dir, m

    def _keep_ground_truth(self, ds, out_dir: Path) -> None:
        """PNGs of the first ground truths, for the figures (which read results/ only)."""
        from .data.io import write_png
        from .metrics import quantize

        for i in range(min(FIGURE_IMAGES, len(ds))):
            _, clean = ds.load(i)
            name = Path(ds.pairs[i].name).stem
            write_png(out_dir / "ground_truth" / f"{name}.png", quantize(clean))

    def tables(self, names: tuple[str, ...] = ()) -> Path:
        """Write tableN.csv for ``names`` from the scores their notebook step recorded
        (:data:`TABLE_STEPS`); re-render tables.md."""
        for name in names:
            path = self.results / "scores" / f"{TABLE_STEPS[name]}.json"
            write_tables(self.results, load_scores([path]), [name])
        rec = self.results / "provenance.json"
        header = ""
        if rec.is_file():
            p = json.loads(rec.read_text())
            q = p["parameters"]
            header = (
                f"Measured {p['started']} on {p['machine']} ({p['cpu_count']} CPUs), "
                f"whole pipeline {p['wall_seconds']} s, git {p['git_sha'][:12]}; "
                f"data root {q['data_root']}, weights dir {q['weights_dir']}, "
                f"overrides {' '.join(q['overrides']) or 'none'}."
            )
        return write_markdown(self.results, self.profile, header)

    # --- 05: figures (from files under results/ only) -----------------------------------------

    def add_figure(self, fig, name: str, caption: str) -> Path:
        """Save ``fig`` as figures/<profile>/<name> and record its caption in figures.json."""
        from .viz import save_figure

        path = save_figure(fig, self.figures / name)
        index = self.results / "figures.json"
        figs = json.loads(index.read_text()) if index.is_file() else []
        rel = f"figures/{self.profile}/{name}"
        figs = [f for f in figs if f["path"] != rel] + [{"path": rel, "caption": caption}]
        _write_json(index, figs)
        return path

    def scores(self) -> list[Score]:
        return load_scores(sorted((self.results / "scores").glob("*.json")))

    def comparison_figure(
        self, benchmark: str, methods: tuple[str, ...] = FIGURE_METHODS, images: int = 2
    ):
        """Rainy | each method | ground truth for the first images of ``benchmark``'s first
        test set (real data before the stand-in), titled with per-image PSNR; None if unscored.
        """
        import pandas as pd
        from matplotlib.figure import Figure

        from .data.io import read_image

        scored = [s for s in self.scores() if s.benchmark == benchmark and s.ran]
        inputs = sorted((s for s in scored if s.method == "input"), key=lambda s: s.stand_in)
        if not inputs:
            return None
        test = inputs[0].test_set
        cols = [
            (m, next((s for s in scored if s.method == m and s.test_set == test), None))
            for m in methods
        ]
        base = results_root() / inputs[0].per_image_csv
        names = list(pd.read_csv(base)["name"])[: min(images, FIGURE_IMAGES)]
        fig = Figure(figsize=(2.4 * (len(cols) + 1), 1.9 * len(names) + 0.6))
        axes = fig.subplots(len(names), len(cols) + 1, squeeze=False)
        for r, name in enumerate(names):
            stem = Path(name).stem
            for c, (m, sc) in enumerate(cols):
                ax = axes[r, c]
                ax.set_axis_off()
                if sc is None:
                    ax.text(0.5, 0.5, f"{METHOD_LABELS[m]}\nnot run", ha="center", va="center")
                    continue
                csv_path = results_root() / sc.per_image_csv
                psnr = pd.read_csv(csv_path).set_index("name").loc[name, "psnr"]
                ax.imshow(read_image(csv_path.parent / "outputs" / f"{stem}.png"))
                ax.set_title(f"{METHOD_LABELS[m]}\n{psnr:.2f} dB", fontsize=8)
            ax = axes[r, -1]
            ax.set_axis_off()
            ax.imshow(read_image(base.parent / "ground_truth" / f"{stem}.png"))
            ax.set_title(f"ground truth\n{stem}", fontsize=8)
        fig.suptitle(test, fontsize=9)
        fig.tight_layout()
        return fig

    def training_curves_figure(self):
        """Loss per step and validation PSNR per epoch of every training run (from log.csv)."""
        from matplotlib.figure import Figure

        from .runs import open_run

        done = [r for r in self.runs() if r["status"] == "ok"]
        benches = [b for b in BENCHMARKS if any(r["benchmark"] == b for r in done)]
        if not benches:
            return None
        fig = Figure(figsize=(10, 3.2 * len(benches)))
        axes = fig.subplots(len(benches), 2, squeeze=False)
        for i, b in enumerate(benches):
            for r in (r for r in done if r["benchmark"] == b):
                log = open_run(r["run"]).log
                loss = log.dropna(subset=["loss"])
                val = log.dropna(subset=["val_psnr"])
                axes[i, 0].plot(loss["step"], loss["loss"], ".-", label=r["method"], lw=0.8, ms=3)
                axes[i, 1].plot(val["step"], val["val_psnr"], "o-", label=r["method"], ms=3)
            axes[i, 0].set_title(f"{r['dataset']}: training loss (per its own loss)", fontsize=9)
            axes[i, 1].set_title(f"{r['dataset']}: validation PSNR (dB)", fontsize=9)
            for ax in axes[i]:
                ax.set_xlabel("step")
                ax.legend(fontsize=7)
        fig.tight_layout()
        return fig

    def export_attention(self, method: str = "sian/neg-ssim", benchmark: str = "rain100l"):
        """Attention masks (mean over channels), rain layers and stage outputs of ``method`` on
        the first test image of ``benchmark``, saved as results/<profile>/attention/*.npz;
        returns the file (None if the model or the scores are absent)."""
        from .data.io import read_image
        from .viz import compute_attention
        from .weights import load_model

        path, provenance, _ = self._model_for(method, benchmark, self.runs())
        inputs = sorted(
            (
                s
                for s in self.scores()
                if s.method == "input" and s.benchmark == benchmark and s.ran
            ),
            key=lambda s: s.stand_in,
        )
        if path is None or not inputs:
            return None
        outputs = (results_root() / inputs[0].per_image_csv).parent / "outputs"
        image = read_image(sorted(outputs.glob("*.png"))[0])
        att = compute_attention(load_model(path, allow_download=False).model, image)
        out = self.results / "attention" / f"{method.replace('/', '_')}_{benchmark}.npz"
        out.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"image": att.image, "provenance": np.array(provenance)}
        for k in range(att.n_stages):  # masks as their mean over channels: the panel's view
            arrays[f"outputs_{k}"], arrays[f"rain_{k}"] = att.outputs[k], att.rain[k]
            for sc, v in att.masks[k].items():
                arrays[f"masks_{k}_{sc}"] = v.mean(axis=0, keepdims=True)
        np.savez_compressed(out, **arrays)
        return out

    def attention_figure(self, npz: Path):
        """The mean attention mask per stage and scale (viz.attention_panel), from the npz."""
        from .viz import Attention, attention_panel

        z = np.load(npz)
        n = sum(1 for k in z.files if k.startswith("outputs_"))
        scales = sorted({int(k.split("_")[2]) for k in z.files if k.startswith("masks_")})

        masks = [{sc: z[f"masks_{k}_{sc}"] for sc in scales} for k in range(n)]
        att = Attention(
            z["image"],
            [z[f"outputs_{k}"] for k in range(n)],
            [z[f"rain_{k}"] for k in range(n)],
            masks,
            [{} for _ in range(n)],  # DoG and octave layers are not saved (hundreds of MB)
            [{} for _ in range(n)],
        )
        return attention_panel(att, "mask", title=f"attention masks M_(s): {z['provenance']}")

    def derain_real(self, methods: tuple[str, ...] = REAL_METHODS, images: int = 2) -> list[Path]:
        """Derain the first real photos under data_root/real_rain with ``methods`` (released
        weights for Rain100H, as the paper's Fig. 10); PNGs under results/<profile>/real/."""
        from .data.io import read_image, write_png
        from .evaluate import predict
        from .metrics import quantize
        from .weights import load_model

        photos = self.real_photos()[:images]
        written = []
        for m in methods:
            path, _, _ = self._model_for(m, "rain100h", self.runs())
            if path is None:
                continue
            model = load_model(path, allow_download=False).model
            for p in photos:
                out = self.results / "real" / m.replace("/", "_") / f"{p.stem}.png"
                if not out.is_file():
                    write_png(out, quantize(predict(model, read_image(p))))
                written.append(out)
        for p in photos:
            dst = self.results / "real" / "rainy" / f"{p.stem}.png"
            if not dst.is_file():
                write_png(dst, quantize(read_image(p)))
        return written

    def real_figure(self):
        """Real rainy photos and their derained versions, from results/<profile>/real/."""
        from matplotlib.figure import Figure

        from .data.io import read_image

        real = self.results / "real"
        rainy = sorted((real / "rainy").glob("*.png")) if real.is_dir() else []
        if not rainy:
            return None
        cols = ["rainy"] + [m for m in REAL_METHODS if (real / m.replace("/", "_")).is_dir()]
        fig = Figure(figsize=(2.8 * len(cols), 2.2 * len(rainy) + 0.4))
        axes = fig.subplots(len(rainy), len(cols), squeeze=False)
        for r, p in enumerate(rainy):
            for c, m in enumerate(cols):
                ax = axes[r, c]
                ax.set_axis_off()
                ax.imshow(read_image(real / m.replace("/", "_") / p.name))
                ax.set_title(f"{METHOD_LABELS.get(m, m)}\n{p.stem}", fontsize=8)
        fig.tight_layout()
        return fig


def _rainy_input():
    """The "Input" row's model: returns the rainy image unchanged, as its one stage."""
    from torch import nn

    class RainyInput(nn.Module):
        def forward(self, x):
            return [x]

    return RainyInput()


def _write_json(path: Path, obj: object) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1, default=str) + "\n")


def _failure_message(nb: str, saved: Path, err: Exception) -> str:
    """One line for the CLI; the failing cell's source goes to stderr before it."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        print(f"--- failing cell {err.cell_index} of {nb}:", file=sys.stderr)
        print(err.source, file=sys.stderr)
        print("---", file=sys.stderr)
        return (
            f"notebook {nb} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {err.evalue}; executed copy: {saved}"
        )
    return f"notebook {nb} failed: {type(err).__name__}: {err}; executed copy: {saved}"


FIGURES_NOTEBOOK = "05_figures.ipynb"


def clear_figures(profile: str) -> list[Path]:
    """Remove the figures and captions of an earlier run of ``profile`` (before notebook 05
    redraws them), so no figure of another run or data set survives. Returns what went."""
    gone = sorted(figures_root().joinpath(profile).glob("*.png"))
    index = results_root() / profile / "figures.json"
    if index.is_file():
        gone.append(index)
    for p in gone:
        p.unlink()
    return gone


def run_pipeline(
    profile: str,
    data_root: str | Path | None = None,
    weights_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    notebooks: tuple[str, ...] = NOTEBOOKS,
    log=print,
) -> dict:
    """Execute the notebooks in order with papermill; return the timing record.

    Writes ``results/<profile>/notebooks/<name>`` for each and ``provenance.json`` (parameters,
    kernel, git SHA, machine, wall time per notebook). A failing notebook raises
    :class:`NotebookFailed` naming it and its failing cell.
    """
    import papermill as pm

    from .config import resolve_config_path
    from .runs import git_sha
    from .threads import configure

    configure()  # the kernels inherit the OpenMP settings (derain_lib/threads.py)

    resolve_config_path(profile)  # an unknown profile fails here, before any notebook runs
    src_dir = ROOT / "notebooks"
    missing = [nb for nb in notebooks if not (src_dir / nb).is_file()]
    if not src_dir.is_dir() or len(missing) == len(notebooks):
        raise DerainError(f"{src_dir}: notebooks not found (run from a source checkout)")
    out_dir = results_root() / profile / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {
        "profile": profile,
        "data_root": str(Path(data_root).resolve()) if data_root else None,
        "weights_dir": str(Path(weights_dir).resolve()) if weights_dir else None,
        "overrides": list(overrides or []),
    }
    kernel = kernel_name()
    record = {
        "profile": profile,
        "parameters": params,
        "kernel": kernel,
        "git_sha": git_sha(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average": list(os.getloadavg()),
        "thread_settings": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME")},
        "notebooks": {},
    }
    t_all = time.perf_counter()
    todo = [nb for nb in notebooks if nb not in missing]
    if FIGURES_NOTEBOOK in todo:
        clear_figures(profile)
    for i, nb in enumerate(todo, 1):
        saved = out_dir / nb
        t0 = time.perf_counter()
        log(f"[{i}/{len(todo)}] {nb} ...", flush=True)
        try:
            pm.execute_notebook(
                str(src_dir / nb),
                str(saved),
                parameters=params,
                kernel_name=kernel,
                language="python",
                cwd=str(src_dir),
                progress_bar=False,
                log_output=False,
            )
        except Exception as e:  # papermill wraps any cell error; name the notebook and cell
            raise NotebookFailed(_failure_message(nb, saved, e)) from None
        dt = time.perf_counter() - t0
        record["notebooks"][nb] = round(dt, 1)
        log(f"[{i}/{len(todo)}] {nb} done in {dt:.1f} s -> {saved}", flush=True)
    for nb in missing:
        log(f"skipped {nb}: not present in {src_dir}")
    record["skipped"] = missing
    record["wall_seconds"] = round(time.perf_counter() - t_all, 1)
    _write_json(results_root() / profile / "provenance.json", record)
    md = Study(profile, params["data_root"], params["weights_dir"], params["overrides"]).tables()
    log(f"profile {profile}: {record['wall_seconds']:.1f} s; tables: {md}")
    return record


def _cmd_reproduce(args: argparse.Namespace) -> int:
    if args.data_root and not Path(args.data_root).is_dir():
        raise DerainError(f"--data-root {args.data_root}: no such folder")
    if args.weights_dir and not Path(args.weights_dir).is_dir():
        raise DerainError(f"--weights-dir {args.weights_dir}: no such folder")
    run_pipeline(args.profile, args.data_root, args.weights_dir, args.set)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """``derain reproduce``: run the notebooks of a profile end to end."""
    p = sub.add_parser(
        "reproduce",
        help="run the study's notebooks in order (papermill) and write Tables II-V",
        epilog="example: derain reproduce --profile quick --data-root ../shared/data "
        "--weights-dir ../shared/weights",
    )
    p.add_argument("--profile", default="quick", help="smoke | quick | paper (default quick)")
    p.add_argument("--data-root", help="folder holding real benchmark data (optional)")
    p.add_argument("--weights-dir", help="folder holding released weight files (optional)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run of the profile, e.g. train.device=cuda",
    )
    p.set_defaults(func=_cmd_reproduce)
