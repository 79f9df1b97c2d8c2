"""Safe by default (issue 13): inputs never overwritten, atomic outputs, batches that survive
bad files, locked runs, validated configs, one-line errors instead of tracebacks, and no
file written inside the installed package. docs/reliability.md maps each probe to a test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import Tiny, shared_dir
from PIL import Image

from derain_lib import fsutil
from derain_lib.cli import main
from derain_lib.config import load_config
from derain_lib.data.io import write_png
from derain_lib.errors import DerainError
from derain_lib.models import build_model
from derain_lib.runs import find_run, get_or_run
from derain_lib.weights import OUR_FORMAT

ROOT = Path(__file__).resolve().parents[1]
TINY = Tiny()("train.val_images=0", "eval.max_images=1")  # tests/conftest.py's, shrunk


def cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """``derain ARGV`` in-process: (rc, stdout, stderr); never a traceback on stderr."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def error_line(err: str) -> str:
    """The final ``derain: error: ...`` line (exactly one line of stderr is that line)."""
    lines = [line for line in err.splitlines() if line.startswith("derain: error: ")]
    assert lines, err
    return lines[-1]


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    """A small PReNet checkpoint in this project's format."""
    model = build_model("prenet")
    path = tmp_path / "w" / "prenet.pt"
    path.parent.mkdir()
    torch.save(
        {
            "format": OUR_FORMAT,
            "model": "prenet",
            "model_kwargs": {},
            "state_dict": model.state_dict(),
        },
        path,
    )
    return path


def _img(path: Path, value: int = 100, size: int = 16) -> Path:
    return write_png(path, np.full((size, size, 3), value, np.uint8))


# --- 1. never overwrite inputs --------------------------------------------------------------


def test_output_onto_inputs_is_refused(tmp_path: Path, weights: Path, capsys) -> None:
    src = _img(tmp_path / "in" / "a.png")
    before = src.read_bytes()
    rc, _, err = cli(capsys, "derain", tmp_path / "in", "-o", tmp_path / "in", "--weights", weights)
    assert rc == 2 and "is an input image; refusing to overwrite" in error_line(err)
    rc, _, err = cli(capsys, "derain", src, "-o", src, "--weights", weights)
    assert rc == 2 and "is an input image" in error_line(err)
    assert src.read_bytes() == before


def test_existing_output_needs_overwrite_and_image_name_is_a_file(
    tmp_path: Path, weights: Path, capsys
) -> None:
    src = _img(tmp_path / "a.png")
    out = tmp_path / "foo.jpg"
    rc, stdout, _ = cli(capsys, "derain", src, "-o", out, "--weights", weights)
    assert rc == 0 and out.is_file() and Image.open(out).format == "JPEG"
    assert stdout.strip() == str(out)
    rc, _, err = cli(capsys, "derain", src, "-o", out, "--weights", weights)
    assert rc == 2 and "exists; pass --overwrite" in error_line(err)
    rc, _, _ = cli(capsys, "derain", src, "-o", out, "--weights", weights, "--overwrite")
    assert rc == 0


# --- 2. atomic outputs ------------------------------------------------------------------------


def test_a_writer_failing_midway_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    real_save = Image.Image.save

    def dies_midway(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG half")  # some bytes reach the disk, then the crash
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", dies_midway)
    with pytest.raises(DerainError, match="img2.png: cannot write"):
        write_png(tmp_path / "img2.png", np.zeros((8, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(Image.Image, "save", real_save)
    write_png(tmp_path / "img2.png", np.zeros((8, 8, 3), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["img2.png"]


def test_sigkill_during_writes_leaves_only_complete_files(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import numpy as np, sys
        from derain_lib.data.io import write_png
        a = np.random.default_rng(0).integers(0, 255, (600, 600, 3), dtype=np.uint8)
        i = 0
        while True:
            write_png({str(tmp_path)!r} + f"/img{{i % 5}}.png", a, compress_level=9)
            i += 1
            if i == 1:
                print("started", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    finals = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert finals
    for p in finals:
        with Image.open(p) as im:
            im.load()  # a truncated PNG would raise here
            assert im.size == (600, 600)


# --- 3. a batch survives bad files ------------------------------------------------------------


def test_bad_image_does_not_stop_the_batch(tmp_path: Path, weights: Path, capsys) -> None:
    _img(tmp_path / "in" / "a.png")
    (tmp_path / "in" / "b.png").write_bytes(b"not an image at all")
    _img(tmp_path / "in" / "c.png")
    rc, out, err = cli(
        capsys, "derain", tmp_path / "in", "-o", tmp_path / "out", "--weights", weights
    )
    assert rc == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]
    assert out.split() == [str(tmp_path / "out" / "a.png"), str(tmp_path / "out" / "c.png")]
    assert "b.png: not a readable image" in err and "2 derained, 1 failed" in err


# --- 4. one process per run folder --------------------------------------------------------------


HOLD = "import sys, time; from derain_lib.fsutil import locked\nwith locked(sys.argv[1]):\n" \
       "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n"  # fmt: skip


def _holder(folder: Path, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_process_is_refused_or_waits(tmp_path: Path) -> None:
    holder = _holder(tmp_path, 2.0)
    with (
        pytest.raises(DerainError, match=f"in use by process {holder.pid}"),
        fsutil.locked(tmp_path),
    ):
        pass
    t = time.perf_counter()
    with fsutil.locked(tmp_path, wait=True):
        waited = time.perf_counter() - t  # the holder keeps the lock for 2 s
    assert waited > 1.0
    holder.wait()


def test_train_refuses_a_run_folder_another_process_holds(tmp_path: Path, capsys) -> None:
    run_dir = find_run(load_config("smoke", TINY), tmp_path).dir
    holder = _holder(run_dir, 30.0)
    try:
        argv = ["train", "--config", "smoke", "--results", tmp_path, "--no-progress"]
        rc, _, err = cli(capsys, *argv, *[a for s in TINY for a in ("--set", s)])
    finally:
        holder.kill()
        holder.wait()
    assert rc == 2 and f"in use by process {holder.pid}" in error_line(err)
    assert not (run_dir / "log.csv").exists()


# --- 5. configs validated before a run folder exists ---------------------------------------------


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.batch_size=-1", "train.batch_size"),
        ("train.checkpoint_every=0", "train.checkpoint_every"),
        ("train.lr=.nan", "train.lr"),
        ("train.lr=0", "train.lr"),
        ("data.patch=4", "data.patch"),
        ("train.max_steps=0", "train.max_steps"),
        ("train.epochs=0", "train.epochs"),
        ("eval.tile=4", "eval.tile"),
        ("eval.overlap=64", "eval.overlap"),
    ],
)
def test_bad_config_values_leave_no_run(tmp_path: Path, capsys, override: str, key: str) -> None:
    argv = ["train", "--config", "smoke", "--set", override, "--set", "eval.tile=32"]
    if key == "eval.tile":
        argv = argv[:-2]
    rc, _, err = cli(capsys, *argv, "--results", tmp_path)
    line = error_line(err)
    assert rc == 2 and key in line and "allowed" in line
    assert not (tmp_path / "runs").exists()


def test_zero_training_steps_leave_no_run(tmp_path: Path) -> None:
    cfg = load_config("smoke", [*TINY, "train.batch_size=100000"])
    with pytest.raises(DerainError, match="fewer than one batch"):
        get_or_run(cfg, tmp_path, progress=False)
    assert list((tmp_path / "runs").iterdir()) == []


def test_cli_tile_and_max_images_ranges(tmp_path: Path, weights: Path, capsys) -> None:
    src = _img(tmp_path / "a.png")
    rc, _, err = cli(capsys, "derain", src, "-o", tmp_path / "o", "--weights", weights, "--tile", 4)
    assert rc == 2 and "--tile: 4 is too small" in error_line(err)
    data = shared_dir()  # any folder: the range check comes first
    argv = ["evaluate", "--weights", weights, "--data", data, "--results", tmp_path]
    rc, _, err = cli(capsys, *argv, "--max-images", 0)
    assert rc == 2 and "eval.max_images: 0 is out of range" in error_line(err)


# --- 6. damaged run folders ---------------------------------------------------------------------


def test_damaged_run_is_listed_and_repaired(tmp_path: Path, capsys) -> None:
    cfg = load_config("smoke", TINY)
    run = get_or_run(cfg, tmp_path, progress=False)
    psnr = run.metrics["psnr"]
    (run.dir / "metrics.json").write_text('{"n": 1, "psnr": ')
    (run.dir / "model.pt").write_bytes(b"\x00" * 100)
    rc, out, _ = cli(capsys, "runs", "list", "--results", tmp_path)
    assert rc == 0 and f"{run.key} damaged" in " ".join(out.split()) and "metrics.json" in out
    again = get_or_run(cfg, tmp_path, progress=False)
    assert again.status == "finished" and again.metrics["psnr"] == pytest.approx(psnr)
    assert (run.dir / "metrics.json.corrupt").is_file() and (run.dir / "model.pt.corrupt").is_file()
    (run.dir / "config.yaml").write_text("model: [unclosed")
    rc, out, _ = cli(capsys, "runs", "list", "--results", tmp_path)
    assert rc == 0 and "damaged" in out and "config.yaml" in out


# --- 7. one-line errors --------------------------------------------------------------------------


class Unsafe:
    """An arbitrary Python object: ``weights_only`` loading refuses it."""


def _ckpt(tmp_path: Path, name: str, obj: object) -> Path:
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_weights_problems_are_one_line(tmp_path: Path, weights: Path, capsys) -> None:
    src = _img(tmp_path / "a.png")
    sd = build_model("prenet").state_dict()
    base = {"format": OUR_FORMAT, "model": "prenet", "model_kwargs": {}, "state_dict": sd}
    rand = tmp_path / "random.pt"
    rand.write_bytes(np.random.default_rng(0).integers(0, 255, 4096, dtype=np.uint8).tobytes())

    cases = [
        (weights, ["--model", "nosuch"], "unknown model; known models: sian"),
        (
            _ckpt(tmp_path, "nomodel.pt", {k: v for k, v in base.items() if k != "model"}),
            [],
            "names no known model",
        ),
        (
            _ckpt(tmp_path, "str.pt", {**base, "state_dict": {**sd, "stem.weight": "x"}}),
            [],
            "'stem.weight' is a str, not a tensor",
        ),
        (_ckpt(tmp_path, "kw.pt", {**base, "model_kwargs": [1]}), [], "is a list, not a mapping"),
        (rand, [], "not a torch checkpoint: torch cannot read it"),
        (_ckpt(tmp_path, "unsafe.pt", {"x": Unsafe()}), [], "the file may be unsafe"),
    ]
    for path, extra, words in cases:
        rc, _, err = cli(capsys, "derain", src, "-o", tmp_path / "o", "--weights", path, *extra)
        line = error_line(err)
        assert rc == 2 and words in line, line
        assert not any(tok.isdigit() for tok in line.split(":")[-1].split()), line


def test_output_problems_are_one_line(
    tmp_path: Path, weights: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _img(tmp_path / "a.png")
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    rc, _, err = cli(capsys, "derain", src, "-o", notes, "--weights", weights)
    assert rc == 2 and "notes.txt: exists and is not an image" in error_line(err)
    assert notes.read_text() == "mine"
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores the mode: refuse the way the kernel would

            def refuse(*args: object, **kwargs: object) -> None:
                raise PermissionError(13, "Permission denied")

            monkeypatch.setattr(fsutil.os, "replace", refuse)
        rc, _, err = cli(capsys, "derain", src, "-o", ro / "x.png", "--weights", weights)
        assert rc == 2 and "x.png: cannot write (Permission denied)" in error_line(err)
    finally:
        ro.chmod(0o700)


def test_score_skips_bad_pairs_and_writes_strict_json(tmp_path: Path, capsys) -> None:
    _img(tmp_path / "p/rain-1.png", size=16)
    _img(tmp_path / "g/norain-1.png", size=20)
    _img(tmp_path / "p/rain-2.png", size=16)
    _img(tmp_path / "g/norain-2.png", size=16)
    _img(tmp_path / "p/readme.png")
    rc, out, err = cli(capsys, "score", tmp_path / "p", tmp_path / "g", "--json")
    assert rc == 2 and "1 pair(s) skipped, 1 scored" in error_line(err)
    assert "rain-1.png: size 16x16 differs" in err
    s = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert s["n"] == 1 and s["psnr"] is None and "identical" in s["psnr_note"]
    assert s["per_image"][0]["psnr"] is None and s["unpaired_pred"][0].endswith("readme.png")


# --- 9. data prepare reports what it ignored ------------------------------------------------------


def test_prepare_reports_junk_files(shared: Path, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(shared / "data/rain100l_sample", copy)
    (copy / "rainy" / "Thumbs.db").write_bytes(b"junk")
    (copy / "notes.txt").write_text("mine")
    argv = ["data", "prepare", "rain100l", "--from", copy, "--index-out", tmp_path / "i.json"]
    rc, out, _ = cli(capsys, *argv, "--allow-mismatch", "--headers-only")
    line = next(x for x in out.splitlines() if x.startswith("ignored "))
    assert rc == 0 and "notes.txt" in line and "rainy/Thumbs.db" in line, out
    ignored = json.loads((tmp_path / "i.json").read_text())["ignored"]
    assert {"notes.txt", "rainy/Thumbs.db"} <= set(ignored)
    (copy / "rainy" / "rain-001.png").write_bytes(b"\x89PNG broken")
    rc, _, err = cli(capsys, *argv, "--allow-mismatch")
    assert rc == 2 and "rain-001.png" in err


# --- 10. nothing written into the installed package ----------------------------------------------


def test_an_installed_copy_writes_nothing_into_its_folder(shared: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(ROOT / "derain_lib", site / "derain_lib")
    before = sorted(p.relative_to(site) for p in site.rglob("*") if "__pycache__" not in p.parts)
    work = tmp_path / "elsewhere" / "sub"
    work.mkdir(parents=True)
    (tmp_path / "elsewhere" / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DERAIN_")}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path))
    code = (
        "from derain_lib.runs import results_root; from derain_lib.study.plan import "
        "figures_root; from derain_lib.fsutil import data_root; "
        "print(results_root(), figures_root(), data_root())"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    proj = tmp_path / "elsewhere"
    assert r.stdout.split() == [
        str(proj / "results"),
        str(proj / "figures"),
        str(tmp_path / "xdg" / "derain" / "data"),
    ]
    src = shared / "data/rain100l_sample"
    argv = ["-m", "derain_lib.cli", "data", "prepare", "rain100l", "--from", str(src)]
    r = subprocess.run([sys.executable, *argv, "--allow-mismatch", "--headers-only"], cwd=work,
                       env=env, capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "xdg/derain/data/index/rain100l-test.json").is_file()
    help_text = subprocess.run(
        [sys.executable, "-m", "derain_lib.cli", "train", "--help"], cwd=work, env=env,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "pyproject.toml" in " ".join(help_text.split())
    after = sorted(p.relative_to(site) for p in site.rglob("*") if "__pycache__" not in p.parts)
    assert after == before
