"""What a profile means (configs, test sets), where its outputs live, and step 00 (the data)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from ..config import Config, profile_config, profile_datasets
from ..data.catalog import prepared_dataset
from ..data.datasets import open_dataset
from ..data.io import list_images, read_image, write_png
from ..data.sources import open_data
from ..errors import DerainError
from ..fsutil import (
    REPRODUCE_ENV,
    atomic_write_text,
    data_root,
    figures_root,
    real_path,
    results_root,
)
from ..fsutil import shown_path as shown
from ..metrics import quantize
from ..tables import BENCHMARKS, STAND_IN_FOR, not_run

#: ``1`` (``--use-prepared``): smoke scores the prepared test sets too, as the others always do.
USE_PREPARED_ENV = "DERAIN_USE_PREPARED"
#: The study's plan as data (``plan.yaml``): what trains for which benchmark, the probes'
#: knock-outs, the figures promised.
PLAN = yaml.safe_load(Path(__file__).with_name("plan.yaml").read_text())
TRAINED_ON: dict[str, str] = PLAN["trained_on"]  # benchmark -> the data its models train on
TRAINED: dict[str, list[str]] = PLAN["trained"]  # method -> [model name, loss]
_BENCH_NAME = re.compile(r"rain(100l|100h|1400|12)(?!\d)")


def results_dir(profile: str) -> Path:
    """``results/<profile>/``: a profile's tables, score records and executed notebooks."""
    return results_root().resolve() / profile


def work_dir(profile: str) -> Path:
    """``results/<profile>/run-state/`` (not committed): records kept between the steps."""
    return results_dir(profile) / "run-state"


def figures_dir(profile: str) -> Path:
    """``figures/<profile>/``: the PNGs the notebooks draw from ``results/<profile>/``."""
    return figures_root() / profile


def read_scenes(profile: str) -> dict[str, dict[str, str]]:
    """Test set label -> image name -> scene (``run-state/scenes.json``)."""
    return json.loads(p.read_text()) if (p := work_dir(profile) / "scenes.json").is_file() else {}


def write_json(path: Path, obj: object) -> Path:
    """``obj`` as indented JSON at ``path``, written atomically (parent folders created)."""
    return atomic_write_text(path, json.dumps(obj, indent=1, default=str) + "\n")


def progress(line: str) -> None:
    """``line`` to the terminal under ``derain reproduce`` (never the notebook), else printed."""
    print(line, file=sys.__stderr__ if os.environ.get(REPRODUCE_ENV) else sys.stdout, flush=True)


def run_fact(name: str, value: object) -> None:
    """A fact that differs run to run (times, load): kept out of the notebook under reproduce."""
    if not (target := os.environ.get(REPRODUCE_ENV)):
        print(f"{name}: {json.dumps(value, default=str)}", flush=True)
        return
    with open(target, "a") as f:
        f.write(json.dumps([name, value], default=str) + "\n")


@dataclass(frozen=True)
class Params:
    """The notebooks' parameters (papermill's): as ``derain reproduce`` passes them."""

    profile: str
    data_root: str | None = None
    weights_dir: str | None = None
    overrides: tuple[str, ...] | list[str] = ()
    device: str = "auto"  # where models train and run: auto | cpu | cuda | cuda:N

    def __post_init__(self) -> None:
        for name in ("data_root", "weights_dir"):  # as shown (records) -> a real folder
            if value := getattr(self, name):
                object.__setattr__(self, name, str(real_path(value)))


@dataclass(frozen=True)
class TestSet:
    """A test set the study scores on: a benchmark, where its files are, a label."""

    benchmark: str
    spec: str  # "embedded:<preset>:test:<size>" or an absolute folder
    label: str
    stand_in: bool
    source: str = "profile"  # where it was found: profile, --data-root, prepared, fetched

    @property
    def id(self) -> str:
        """The label as a file name."""
        return re.sub(r"[^A-Za-z0-9_.+-]+", "-", self.label).strip("-")


def config_for(p: Params, dataset: str, extra: list[str] | None = None) -> Config:
    """The profile's config for ``dataset`` with ``p``'s data root and overrides, then ``extra``."""
    device = [] if p.device == "auto" else [f"train.device={p.device}"]
    cfg = profile_config(p.profile, dataset, overrides := [*device, *p.overrides, *(extra or [])])
    if cfg.data.train.startswith("embedded:"):
        return cfg
    if p.data_root:
        cfg = profile_config(p.profile, dataset, [*overrides, f"data.root={p.data_root}"])
    if not (Path(cfg.data.root).expanduser() / cfg.data.train).is_dir():
        with contextlib.suppress(DerainError):
            train = str(Path(prepared_dataset(dataset, "train").root).resolve())
            cfg = replace(cfg, data=replace(cfg.data, train=train))
    return cfg


def datasets(p: Params) -> dict[str, str]:
    """Benchmark -> the profile's data set (``light``, ``rain100h`` ...) for it."""
    out = {}
    for d in profile_datasets(p.profile):
        if (b := d if d in BENCHMARKS else STAND_IN_FOR.get(d)) is None:
            raise DerainError(f"profile {p.profile}: data set {d!r} is no benchmark")
        out[b] = d
    return out


def test_spec(cfg: Config) -> str:
    """A config's test data as a TestSet spec: the embedded name or an absolute folder."""
    if cfg.data.test.startswith("embedded:"):
        return cfg.data.test
    return str((Path(cfg.data.root).expanduser() / cfg.data.test).resolve())


def test_sets(p: Params) -> dict[str, list[TestSet]]:
    """Benchmark -> test sets: the profile's own, those named so two levels under data_root
    (paired images in a folder named after it), then those prepared."""
    out: dict[str, list[TestSet]] = {b: [] for b in BENCHMARKS}
    for b, d in datasets(p).items():
        spec = test_spec(config_for(p, d))
        if spec.startswith("embedded:"):
            out[b].append(TestSet(b, spec, f"embedded {spec.split(':')[1]} test ({p.profile}), "
                                  "stand-in", True))  # fmt: skip
        elif Path(spec).is_dir():
            out[b].append(TestSet(b, spec, f"{BENCHMARKS[b]}: {Path(spec).name}", False))
    found: list[tuple[str, Path, str]] = []  # (benchmark, folder, where): by name under data_root
    root = Path(p.data_root).resolve() if p.data_root else None
    for d in sorted([root, *root.glob("*"), *root.glob("*/*")]) if root else ():
        names = f"{d.parent.name if d != root else ''}/{d.name}".lower()
        m = _BENCH_NAME.search(names.replace("_", "").replace("-", ""))
        inside = any(q == d or q in d.parents for _, q, _ in found)  # a found set's subfolder
        if m is None or inside or not d.is_dir() or "train" in d.name.lower():
            continue
        with contextlib.suppress(DerainError):  # no paired images
            open_dataset(d)
            found.append(("rain" + m.group(1), d, "--data-root"))
    for b in BENCHMARKS if p.profile != "smoke" or os.environ.get(USE_PREPARED_ENV) == "1" else ():
        with contextlib.suppress(DerainError):  # none prepared
            path = Path(prepared_dataset(b, "test").root).resolve()
            fetched = path.is_relative_to(data_root().resolve())
            found.append((b, path, "fetched, indexed" if fetched else "prepared index"))
    for b, path, source in found:
        if all(Path(t.spec) != path for t in out[b]):
            label = f"{BENCHMARKS[b]}: {path.parent.name}/{path.name}"
            out[b].append(TestSet(b, str(path), label, False, source))
    return out


def data_lines(p: Params) -> list[str]:
    """What data the profile found and from where, one line per training and test set."""
    lines = []
    for b, d in datasets(p).items():
        data = config_for(p, d).data
        where = data.train if data.train.startswith("embedded:") else shown(
            Path(data.root).expanduser() / data.train)  # fmt: skip
        lines.append(f"data: {BENCHMARKS[b]} training: {where} (profile {p.profile})")
    lines += [f"data: {BENCHMARKS[b]} test: {t.label}: {t.spec if t.stand_in else shown(t.spec)}"
              f" ({t.source})" for b, sets in test_sets(p).items() for t in sets]  # fmt: skip
    if p.profile == "smoke" and os.environ.get(USE_PREPARED_ENV) != "1":  # the rule of test_sets
        lines.append(f"data: prepared test sets not read (profile {p.profile}; --use-prepared "
                     "reads them)")  # fmt: skip
    return lines


def real_photos(data_root: str | Path | None) -> list[Path]:
    """Real rainy photographs (no ground truth) under ``data_root/real_rain``."""
    folder = real_path(data_root) / "real_rain" if data_root else None  # as shown
    return list_images(folder) if folder and folder.is_dir() else []


def no_data_reason(p: Params, benchmark: str) -> str:
    """The "not run" provenance of a benchmark without test data."""
    where = f"under --data-root {shown(p.data_root)}" if p.data_root else "(no --data-root)"
    return not_run(f"no {BENCHMARKS[benchmark]} test data: profile {p.profile} has none, none was "
                   f"found {where} and none is prepared (derain data prepare {benchmark} --from "
                   "PATH)")  # fmt: skip


def data_inventory(p: Params) -> list[dict]:
    """Step 00: each test and training set's size, sha256, or why it is missing (``data.json``)."""

    def row(b: str, role: str, name: str, spec: str, root: str, stand_in: bool) -> dict:
        try:
            ds = open_data(spec, root)
        except DerainError as e:
            return dict(benchmark=b, role=role, set=name, n=0, status=f"missing: {e}")
        return dict(benchmark=b, role=role, set=name, n=len(ds), partial=ds.partial,
                    stand_in=stand_in, sha256=ds.manifest_sha256(), status="ok")  # fmt: skip

    rows = []
    for b, sets in test_sets(p).items():
        if not sets:
            rows.append(dict(benchmark=b, role="test", set="", n=0, status=no_data_reason(p, b)))
        rows += [row(b, "test", t.label, t.spec, ".", t.stand_in) for t in sets]
    for b, d in datasets(p).items():
        data = config_for(p, d).data
        rows.append(row(b, "train", data.train, data.train, data.root,
                        data.train.startswith("embedded:")))  # fmt: skip
    write_json(results_dir(p.profile) / "data.json", rows)
    return rows


def save_samples(p: Params) -> list[dict]:
    """Step 00: the first pair of each test set and real photo as PNGs (``samples.json``)."""
    out, index = results_dir(p.profile), []
    for t in (t for sets in test_sets(p).values() for t in sets):
        entry = {"label": t.label, "rainy": f"samples/{t.id}/rainy.png",
                 "clean": f"samples/{t.id}/clean.png"}  # fmt: skip
        for image, key in zip(open_data(t.spec).load(0), ("rainy", "clean"), strict=True):
            write_png(out / entry[key], quantize(image))
        index.append(entry)
    if photos := real_photos(p.data_root):
        rel = f"samples/real_rain/{photos[0].stem}.png"
        write_png(out / rel, quantize(read_image(photos[0])))
        index.append({"label": f"real rain: {photos[0].name} (no ground truth)",
                      "rainy": rel, "clean": ""})  # fmt: skip
    write_json(out / "samples.json", index)
    return index
