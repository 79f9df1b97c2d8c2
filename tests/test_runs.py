"""The run cache: finished runs come back without recomputing, unfinished ones resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import derain_lib.runs as runs_mod
from derain_lib.cli import main
from derain_lib.config import config_hash, load_config
from derain_lib.errors import DerainError
from derain_lib.labels import run_labels
from derain_lib.runs import (
    find_run,
    get_or_run,
    list_runs,
    open_run,
    restored,
    results_root,
    stored,
)
from derain_lib.weights import load_model


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("results")


@pytest.fixture(scope="module")
def run(root: Path, tiny):
    return get_or_run(tiny.config(), root, progress=False)


def test_finished_run_holds_everything(tiny, run) -> None:
    names = {p.name for p in run.dir.iterdir()}
    assert {"config.yaml", "log.csv", "checkpoints", "model.pt", "metrics.json"} <= names
    assert {"provenance.json", "per_image.csv", "outputs"} <= names
    assert run.status == "finished"
    m = run.metrics
    assert m["n"] == 2 and math.isfinite(m["psnr"]) and 0 < m["ssim"] <= 1
    assert len(run.per_image) == 2 and len(list((run.dir / "outputs").glob("*.png"))) == 2
    p = run.provenance
    cfg = tiny.config()
    assert p["config_hash"] == config_hash(cfg) == config_hash(run.config)
    assert p["run"] == run.key and len(run.key) == 12
    assert set(p["data_manifests"]) == {"train", "test"}
    assert all(len(h) == 64 for h in p["data_manifests"].values())
    assert len(p["git_sha"].split("+")[0]) == 40 or p["git_sha"] == "unknown"
    assert {"torch", "numpy", "scikit-image", "python"} <= set(p["packages"])
    assert p["device"] == "cpu" and p["wall_s"] > 0 and p["global_step"] == 2
    assert load_model(run.checkpoint_path).model_name == "sian"


def test_finished_run_is_returned_without_recomputing(tiny, run, root: Path, monkeypatch) -> None:
    def boom(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runs_mod, "train", boom)  # the name get_or_run calls
    again = get_or_run(tiny.config(), root, progress=False)
    assert again.dir == run.dir and again.metrics == run.metrics
    other = tiny.config("train.seed=5")
    with pytest.raises(AssertionError, match="trained again"):
        get_or_run(other, root, progress=False)  # another config is another run


def test_unfinished_run_resumes(tiny, run, root: Path, tmp_path: Path) -> None:
    import shutil

    copy_root = tmp_path / "r"
    shutil.copytree(root, copy_root)
    d = copy_root / "runs" / run.key
    (d / "metrics.json").unlink()
    (d / "model.pt").unlink()
    (d / "checkpoints" / "step-00000002.pt").unlink()
    assert open_run(run.key, copy_root).status == "unfinished"
    resumed = get_or_run(tiny.config(), copy_root, progress=False)
    assert resumed.dir == d and resumed.status == "finished"
    assert resumed.provenance["resumed_from"].endswith("step-00000001.pt")
    assert resumed.metrics == run.metrics  # bit-identical weights, identical scores


def test_evaluation_only_run_of_a_weights_file(run, root: Path) -> None:
    cfg = load_config("smoke", ["eval.max_images=2", f"model.weights={run.checkpoint_path}"])
    ev = get_or_run(cfg, root, progress=False)
    assert ev.key != run.key and not (ev.dir / "log.csv").exists()
    assert ev.provenance["weights"]["sha256"] == ev.provenance["model_sha256"]
    assert ev.metrics["psnr"] == run.metrics["psnr"]  # same model, same images


def test_the_scoring_backend_is_derain_backend_else_torch(run, tmp_path: Path, monkeypatch) -> None:
    """``derain reproduce --backend`` reaches the notebooks' runs through $DERAIN_BACKEND."""
    from derain_lib.cli import build_parser

    assert build_parser().parse_args(["reproduce"]).backend == "torch"
    asked: list[str] = []
    real = runs_mod.select

    def spy(model, sha256, backend, *args, **kwargs):  # noqa: ANN001, ANN202
        asked.append(backend)
        return real(model, sha256, "torch", *args, **kwargs)

    monkeypatch.setattr(runs_mod, "select", spy)
    cfg = load_config("smoke", ["eval.max_images=1", f"model.weights={run.checkpoint_path}"])
    get_or_run(cfg, tmp_path / "a", progress=False)
    monkeypatch.setenv("DERAIN_BACKEND", "openvino")
    get_or_run(cfg, tmp_path / "b", progress=False)
    get_or_run(cfg, tmp_path / "c", progress=False, backend="onnxruntime")  # said outright
    assert asked == ["torch", "openvino", "onnxruntime"]


def test_results_root_from_env(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path))
    assert results_root() == tmp_path
    assert results_root(tmp_path / "x") == tmp_path / "x"


def test_list_and_open_runs(run, root: Path) -> None:
    keys = [r.key for r in list_runs(root)]
    assert run.key in keys
    assert open_run(run.key[:6], root).dir == run.dir
    with pytest.raises(DerainError, match=f"{root / 'runs'}: no run matching 'zzz'"):
        open_run("zzz", root)


def test_cli_train_runs_and_evaluate(tiny, run, root: Path, capsys) -> None:
    args = tiny.args()
    assert main(["train", "--config", "smoke", *args, "--results", str(root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"run {run.key}" in out and "mean of 2" in out
    assert main(["runs", "list", "--results", str(root)]) == 0
    assert run.key in capsys.readouterr().out
    assert main(["runs", "show", run.key[:8], "--results", str(root)]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"] == run.metrics
    ev = [
        "evaluate", "--weights", str(run.checkpoint_path), "--data", "embedded:light:test:smoke",
        "--max-images", "1", "--tile", "32", "--overlap", "8", "--results", str(root),
        "--no-progress",
    ]  # fmt: skip
    assert main(ev) == 0
    assert "mean of 1" in capsys.readouterr().out


def test_code_fingerprint_covers_version_and_sources(monkeypatch) -> None:
    fp = runs_mod.code_fingerprint()
    assert len(fp) == 12 and fp == runs_mod.code_fingerprint()
    monkeypatch.setattr(runs_mod, "CODE_SOURCES", runs_mod.CODE_SOURCES[:-1])  # config.py out
    assert runs_mod.code_fingerprint() != fp
    monkeypatch.undo()
    monkeypatch.setattr(runs_mod, "__version__", runs_mod.__version__ + ".post1")
    assert runs_mod.code_fingerprint() != fp


def test_other_code_is_a_new_run_and_the_old_one_is_stale(tiny, run, root: Path, tmp_path, capsys):
    import shutil

    copy_root = tmp_path / "r"
    shutil.copytree(root, copy_root)
    cfg = tiny.config()
    old = open_run(run.key, copy_root)
    assert old.code == runs_mod.code_fingerprint() and not old.stale
    assert run.provenance["code_fingerprint"] == old.code
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runs_mod, "code_fingerprint", lambda: "f" * 12)  # the code changed
        assert find_run(cfg, copy_root).key != run.key and old.stale
        assert main(["runs", "list", "--results", str(copy_root)]) == 0
        row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(run.key))
        assert row.split()[2] == "stale"
        new = get_or_run(cfg, copy_root, progress=False)  # trained again, not reused
        assert new.key != run.key and new.code == "f" * 12 and not new.stale
        assert new.provenance["global_step"] == 2 and new.provenance["resumed_from"] is None
        assert main(["runs", "prune", "--results", str(copy_root)]) == 2
        assert "--stale" in capsys.readouterr().err
        n = len(list_runs(copy_root))  # every run copied from ``root`` is stale now
        assert main(["runs", "prune", "--stale", "--results", str(copy_root)]) == 0
        assert f"{n - 1} stale runs removed, 1 kept" in capsys.readouterr().out
        assert not old.dir.exists() and [r.key for r in list_runs(copy_root)] == [new.key]


def test_cli_config_errors_are_one_line(capsys, tmp_path: Path) -> None:
    assert (
        main(["train", "--config", "smoke", "--set", "train.lrr=1", "--results", str(tmp_path)])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("derain: error:") and "train.lrr" in err and "'lr'" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_smoke_profile_end_to_end(tmp_path: Path) -> None:
    """The real smoke profile (SIAN full): trains and evaluates; CI's end-to-end check."""
    r = get_or_run(load_config("smoke"), tmp_path, progress=False)
    m = r.metrics
    assert m["n"] == 4 and math.isfinite(m["psnr"]) and r.provenance["global_step"] == 8
    assert len(r.log.dropna(subset=["loss"])) == 8


def _fake_runs(tmp_path: Path, overrides: dict[str, list[str]]) -> list:
    """Run folders holding only a config and the current code fingerprint (status
    ``unfinished``), one per key."""
    from derain_lib.config import dump_config

    for key, extra in overrides.items():
        d = tmp_path / "runs" / key
        d.mkdir(parents=True)
        (d / "config.yaml").write_text(dump_config(load_config("quick", extra)))
        (d / runs_mod.CODE_FILE).write_text(runs_mod.code_fingerprint() + "\n")
    return list_runs(tmp_path)


def test_run_labels_tell_apart_runs_that_differ_by_seed_loss_or_variant(tmp_path: Path) -> None:
    runs = _fake_runs(
        tmp_path,
        {
            "a00000000000": [],
            "b00000000000": ["train.seed=1"],
            "c00000000000": ["train.loss=l1"],
            "d00000000000": ["model.name=sian-baseline"],
            "e00000000000": ["model.weights=/w/sian_rain100l.pth"],
        },
    )
    labels = dict(zip([r.key for r in runs], run_labels(runs), strict=True))
    assert labels == {
        "a00000000000": "quick · light · sian · loss ssim · seed 0 · unfinished",
        "b00000000000": "quick · light · sian · loss ssim · seed 1 · unfinished",
        "c00000000000": "quick · light · sian · loss l1 · seed 0 · unfinished",
        "d00000000000": "quick · light · sian-baseline · loss ssim · seed 0 · unfinished",
        "e00000000000": "quick · test embedded:light:test:quick · sian · "
        "weights sian_rain100l.pth · unfinished",
    }


def test_run_labels_name_the_config_values_that_differ_else_the_key(tmp_path: Path) -> None:
    runs = _fake_runs(
        tmp_path,
        {
            "a00000000000": [],
            "b00000000000": ["train.max_steps=5", "train.lr=0.01"],
            "c00000000000": ["train.max_steps=5", "train.lr=0.01"],
        },
    )
    labels = dict(zip([r.key for r in runs], run_labels(runs, status=False), strict=True))
    base = "quick · light · sian · loss ssim · seed 0 · train.lr="
    steps = load_config("quick").train.max_steps  # the profile's own value
    assert labels == {
        "a00000000000": base + f"0.001 · train.max_steps={steps}",
        "b00000000000": base + "0.01 · train.max_steps=5 · b00000000000",
        "c00000000000": base + "0.01 · train.max_steps=5 · c00000000000",
    }


def test_runs_list_prints_one_label_per_run(tmp_path: Path, capsys) -> None:
    _fake_runs(tmp_path, {"a00000000000": [], "b00000000000": ["train.seed=1"]})
    assert main(["runs", "list", "--results", str(tmp_path)]) == 0
    rows = sorted(capsys.readouterr().out.splitlines()[1:])
    assert [r.split("  ", 1)[0].split()[:3] for r in rows] == [
        ["a00000000000", "unfinished", "current"],
        ["b00000000000", "unfinished", "current"],
    ]
    assert rows[0].endswith("quick · light · sian · loss ssim · seed 0")
    assert rows[1].endswith("quick · light · sian · loss ssim · seed 1")


def test_records_keep_run_paths_relative_to_the_results_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path / "results"))
    inside = tmp_path / "results" / "runs" / "abc123" / "model.pt"
    assert stored(inside) == "runs/abc123/model.pt"
    assert restored(stored(inside)) == inside.resolve()
    outside = tmp_path / "elsewhere" / "w.pth"
    assert stored(outside) == str(outside.resolve())
    assert restored(stored(outside)) == outside.resolve()


def test_a_run_is_a_snapshot_read_once(run, root: Path, monkeypatch) -> None:
    """Run.load reads the folder once: afterwards no property touches the disk (the code
    fingerprint is hashed again only when a source changes), and a Run cannot be changed."""
    import dataclasses

    snap = runs_mod.Run.load(run.dir)
    reads = []
    real_read = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda p, *a, **k: reads.append(p) or real_read(p))
    monkeypatch.setattr(Path, "read_bytes", lambda p: reads.append(p) or b"")
    for _ in range(3):
        _ = (snap.config, snap.metrics, snap.provenance, snap.status, snap.damage, snap.code)
        _ = (snap.checkpoint_path, snap.stale, snap.key)
    assert reads == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.status = "new"  # type: ignore[misc]
    assert snap == runs_mod.Run.load(run.dir) and snap.status == "finished"


def test_training_a_run_hashes_its_data_once(tiny, tmp_path: Path, monkeypatch) -> None:
    from derain_lib.data.datasets import PairedDataset
    from derain_lib.study.training import train_run

    monkeypatch.setenv("DERAIN_RESULTS", str(tmp_path))
    hashed = []
    real = PairedDataset.manifest_sha256
    monkeypatch.setattr(PairedDataset, "manifest_sha256", lambda d: hashed.append(d) or real(d))
    cfg = tiny.config("eval.max_images=1")
    trained = train_run("tiny", cfg)
    assert trained.status == "finished" and len(hashed) == 2  # train and test, once each
    again = train_run("tiny", cfg)  # from the run cache
    assert again == trained and len(hashed) == 4


def test_a_run_whose_output_is_its_input_is_listed_as_degenerate(run, root: Path, tmp_path, capsys):
    import shutil

    copy_root = tmp_path / "r"
    shutil.copytree(root, copy_root)
    fake = open_run(run.key, copy_root)
    fake.degenerate  # noqa: B018 (the input's scores are computed and cached)
    rainy = pd.read_csv(fake.dir / "input_psnr.csv")
    assert list(rainy.name) == list(fake.per_image.name)
    learned = fake.per_image.assign(psnr=rainy.psnr.to_numpy() + [1.0, 0.004])
    learned.to_csv(fake.dir / "per_image.csv", index=False)
    fake = open_run(run.key, copy_root)  # a Run is a snapshot: read the changed folder again
    assert fake.degenerate is None  # one image changed: the model does something
    out = fake.per_image.assign(psnr=rainy.psnr.to_numpy() + 0.004)  # the output = the input
    out.to_csv(fake.dir / "per_image.csv", index=False)
    fake = open_run(run.key, copy_root)
    assert "output equals input" in fake.degenerate
    assert main(["runs", "list", "--results", str(copy_root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(i for i, ln in enumerate(lines) if ln.startswith(run.key))
    assert lines[row].split()[1] == "degenerate"
    assert "degenerate: output equals input" in lines[row + 1]


def test_a_damaged_provenance_is_damage_not_a_traceback(tmp_path: Path, capsys) -> None:
    _fake_runs(tmp_path, {"a00000000000": []})
    prov = tmp_path / "runs" / "a00000000000" / "provenance.json"
    prov.write_text("{not json")
    (run,) = list_runs(tmp_path)
    assert run.status == "damaged" and run.damage.startswith(f"{prov}: damaged")
    assert run.provenance == {}
    assert main(["runs", "list", "--results", str(tmp_path)]) == 0
    assert "a00000000000 damaged" in capsys.readouterr().out
