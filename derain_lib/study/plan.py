"""What a profile means: its configs, the benchmarks its data stand for, its test sets,
from the notebooks' parameters (:class:`Params`). Nothing here trains, scores or plots."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config, profile_config, profile_datasets
from ..data.catalog import prepared_dataset
from ..data.datasets import open_dataset
from ..data.io import list_images
from ..errors import DerainError
from ..fsutil import data_root as derain_data_root
from ..fsutil import real_path, shown_path
from ..tables import BENCHMARKS, STAND_IN_FOR, MethodId, not_run

#: ``1`` (``derain reproduce --use-prepared``): smoke scores the prepared test sets too, as the
#: other profiles always do (a set prepared earlier must not change smoke's time unasked).
USE_PREPARED_ENV = "DERAIN_USE_PREPARED"
#: Profiles that read prepared test sets only when told (:data:`USE_PREPARED_ENV`).
TOLD_ONLY = ("smoke",)

#: Which training data set's model a benchmark is scored with, trained here or released
#: (Rain12: the Rain100L models, as PReNet does).
TRAINED_ON = {
    "rain100l": "rain100l",
    "rain100h": "rain100h",
    "rain1400": "rain1400",
    "rain12": "rain100l",
}
#: Trained methods: id -> (model name, loss).
TRAINED = {
    MethodId.SIAN: ("sian", "ssim"),
    MethodId.SIAN_MAE: ("sian", "l1"),
    MethodId.SIAN_MSE: ("sian", "mse"),
    MethodId.BASELINE: ("sian-baseline", "ssim"),
    MethodId.BASELINE_LSTM: ("sian-baseline+lstm", "ssim"),
}
#: Trained methods per benchmark: Tables II and V need Rain100L/H only.
TRAIN_PLAN = {
    "rain100l": tuple(TRAINED),
    "rain100h": tuple(TRAINED),
    "rain1400": (MethodId.SIAN,),
}
_BENCH_NAME = re.compile(r"rain(100l|100h|1400|12)(?!\d)")


@dataclass(frozen=True)
class Params:
    """The notebooks' parameters: the profile, where real data (benchmark folders named
    after the benchmark, ``real_rain/``) and released weights are, config overrides for
    every run (``KEY=VALUE``) and the device every model trains and runs on."""

    profile: str
    data_root: str | None = None
    weights_dir: str | None = None
    overrides: tuple[str, ...] = field(default_factory=tuple)
    device: str = "auto"  # where models train and run: auto | cpu | cuda | cuda:N

    def __post_init__(self) -> None:
        object.__setattr__(self, "overrides", tuple(self.overrides or ()))
        for name in ("data_root", "weights_dir"):  # as shown (records) -> a real folder
            value = getattr(self, name)
            object.__setattr__(self, name, str(real_path(value)) if value else None)


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
    """The profile's config for ``dataset`` with the overrides, then ``extra`` (``data.root``
    = ``data_root`` for real data; ``train.device`` unless ``auto``, so run keys stay)."""
    device = [] if p.device == "auto" else [f"train.device={p.device}"]
    overrides = [*device, *p.overrides, *(extra or [])]
    cfg = profile_config(p.profile, dataset, overrides)
    if p.data_root and not cfg.data.train.startswith("embedded:"):
        cfg = profile_config(p.profile, dataset, [*overrides, f"data.root={p.data_root}"])
    return cfg


def datasets(p: Params) -> dict[str, str]:
    """Benchmark -> the profile's data set (``light``, ``rain100h`` ...) for it."""
    out = {}
    for d in profile_datasets(p.profile):
        b = d if d in BENCHMARKS else STAND_IN_FOR.get(d)
        if b is None:
            raise DerainError(f"profile {p.profile}: data set {d!r} is no benchmark")
        out[b] = d
    return out


def test_spec(cfg: Config) -> str:
    """A config's test data as a TestSet spec: the embedded name or an absolute folder."""
    if cfg.data.test.startswith("embedded:"):
        return cfg.data.test
    return str((Path(cfg.data.root).expanduser() / cfg.data.test).resolve())


def test_sets(p: Params) -> dict[str, list[TestSet]]:
    """Benchmark -> test sets: the profile's own, then real ones found under data_root."""
    out: dict[str, list[TestSet]] = {b: [] for b in BENCHMARKS}
    for b, d in datasets(p).items():
        spec = test_spec(config_for(p, d))
        if spec.startswith("embedded:"):
            label = f"embedded {spec.split(':')[1]} test ({p.profile}), stand-in"
            out[b].append(TestSet(b, spec, label, True))
        elif Path(spec).is_dir():
            out[b].append(TestSet(b, spec, f"{BENCHMARKS[b]}: {Path(spec).name}", False))
    found = [(b, path, "--data-root") for b, path in found_real(p.data_root)]
    if uses_prepared(p):
        for b, path in prepared_sets():  # derain fetch downloads into the data root
            fetched = path.is_relative_to(derain_data_root().resolve())
            found.append((b, path, "fetched, indexed" if fetched else "prepared index"))
    for b, path, source in found:
        if all(Path(t.spec) != path for t in out[b]):
            label = f"{BENCHMARKS[b]}: {path.parent.name}/{path.name}"
            out[b].append(TestSet(b, str(path), label, False, source))
    return out


def uses_prepared(p: Params) -> bool:
    """Whether the profile scores the prepared test sets (:data:`TOLD_ONLY`: when told)."""
    return p.profile not in TOLD_ONLY or os.environ.get(USE_PREPARED_ENV) == "1"


def data_lines(p: Params) -> list[str]:
    """What data the profile found and from where, one line per training and test set."""
    lines = []
    for b, d in datasets(p).items():
        train = config_for(p, d).data
        where = (
            train.train
            if train.train.startswith("embedded:")
            else shown_path(Path(train.root).expanduser() / train.train)
        )
        lines.append(f"data: {BENCHMARKS[b]} training: {where} (profile {p.profile})")
    for b, sets in test_sets(p).items():
        for t in sets:
            where = t.spec if t.spec.startswith("embedded:") else shown_path(t.spec)
            lines.append(f"data: {BENCHMARKS[b]} test: {t.label}: {where} ({t.source})")
    if not uses_prepared(p):
        lines.append(
            f"data: prepared test sets not read (profile {p.profile}; --use-prepared reads them)"
        )
    return lines


def is_own(p: Params, t: TestSet) -> bool:
    """Whether ``t`` is the profile's own test set of its benchmark (not one found)."""
    d = datasets(p).get(t.benchmark)
    return d is not None and test_spec(config_for(p, d)) == t.spec


def eval_reference(p: Params, benchmark: str) -> Config:
    """The config whose ``eval`` settings score ``benchmark`` (else the profile's first)."""
    ds = datasets(p)
    return config_for(p, ds.get(benchmark) or next(iter(ds.values())))


def found_real(data_root: str | Path | None) -> list[tuple[str, Path]]:
    """(benchmark, folder) of every paired test folder under ``data_root`` by name (two
    levels deep, ``*train*`` skipped)."""
    if not data_root:
        return []
    root = Path(data_root).resolve()
    found: list[tuple[str, Path]] = []
    for d in sorted([root, *root.glob("*"), *root.glob("*/*")]):
        if not d.is_dir() or "train" in d.name.lower():
            continue
        names = f"{d.parent.name if d != root else ''}/{d.name}".lower()
        m = _BENCH_NAME.search(names.replace("_", "").replace("-", ""))
        if m is None or any(q == d or q in d.parents for _, q in found):
            continue
        try:
            open_dataset(d)
        except DerainError:
            continue
        found.append(("rain" + m.group(1), d))
    return found


def prepared_sets() -> list[tuple[str, Path]]:
    """(benchmark, folder) of the test sets prepared with ``derain data prepare``."""
    out = []
    for b in BENCHMARKS:
        try:
            out.append((b, Path(prepared_dataset(b, "test").root).resolve()))
        except DerainError:
            continue
    return out


def real_photos(data_root: str | Path | None) -> list[Path]:
    """Real rainy photographs (no ground truth) under ``data_root/real_rain``."""
    if not data_root:
        return []
    folder = real_path(data_root) / "real_rain"  # a notebook parameter: as shown
    return list_images(folder) if folder.is_dir() else []


def no_data_reason(p: Params, benchmark: str) -> str:
    """The "not run" provenance of a benchmark without test data."""
    where = f"under --data-root {shown_path(p.data_root)}" if p.data_root else "(no --data-root)"
    return not_run(
        f"no {BENCHMARKS[benchmark]} test data: profile {p.profile} has none, none was "
        f"found {where} and none is prepared (derain data prepare {benchmark} --from PATH)"
    )
