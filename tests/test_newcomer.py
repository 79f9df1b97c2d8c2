"""What a newcomer tripped over (issue 34), each one line naming the thing, rc 2, nothing
lost: a full disk while training, unpaired images given to ``evaluate``, fetched sets by
name, the labels of ``runs list``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from derain_lib.cli import main
from derain_lib.data.io import write_png
from derain_lib.fsutil import data_root
from derain_lib.runs import list_runs


def cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    """``derain ARGV`` in-process: (rc, stdout, stderr); never a traceback on stderr."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("derain: error: ")]


def _pairs(folder: Path, n: int, extra: tuple[str, ...] = ()) -> Path:
    rng = np.random.default_rng(0)
    for i in range(1, n + 1):
        clean = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
        write_png(folder / "norain" / f"norain-{i:03d}.png", clean)
        write_png(folder / "rainy" / f"rain-{i:03d}.png", np.clip(clean + 20, 0, 255))
    for name in extra:
        write_png(folder / name, rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
    return folder


def test_a_full_disk_while_training_is_one_line_and_the_run_resumes(
    tmp_path: Path, tiny, capsys, monkeypatch
) -> None:
    real_save, calls = torch.save, []

    def full_disk(obj, f, *a, **k):  # the second checkpoint hits a full disk
        calls.append(f)
        if len(calls) == 2:
            Path(f).write_bytes(b"PK\x03\x04 half a zip")
            raise RuntimeError(
                "[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0: "
                "PytorchStreamWriter failed writing file data/3: file write failed"
            )
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", full_disk)
    results = tmp_path / "res"
    rc, _, err = cli(capsys, "train", "--config", "smoke", *tiny.args(), "--results", results,
                     "--no-progress")  # fmt: skip
    assert rc == 2, err
    (line,) = error_lines(err)  # one line, naming the file that could not be written
    assert "step-00000002.pt" in line
    (run,) = list_runs(results)
    kept = sorted(p.name for p in (run.dir / "checkpoints").iterdir())
    assert kept == ["step-00000001.pt"]  # the good one; no partial file under any name
    monkeypatch.setattr(torch, "save", real_save)
    rc, out, err = cli(capsys, "train", "--config", "smoke", *tiny.args(), "--results", results,
                       "--no-progress")  # fmt: skip
    assert rc == 0, err
    (run,) = list_runs(results)
    assert run.status == "finished"


def test_evaluate_names_unpaired_files_unless_told_to_ignore_them(
    tmp_path: Path, shared: Path, capsys
) -> None:
    data = _pairs(tmp_path / "set", 2, extra=("rainy/rain-003.png",))
    results = tmp_path / "res"
    args = ("evaluate", "--weights", shared / "weights" / "sian_rain100l.pth", "--data", data,
            "--results", results, "--no-progress")  # fmt: skip
    rc, out, err = cli(capsys, *args)
    assert rc == 2 and out == ""
    (line,) = error_lines(err)  # names the unpaired file and the flag that goes on anyway
    assert "rain-003.png" in line and "--ignore-unpaired" in line
    assert not list_runs(results)  # refused before any run started
    rc, out, err = cli(capsys, *args, "--ignore-unpaired")
    assert rc == 0, err
    (metrics,) = (results / "runs").glob("*/metrics.json")
    assert json.loads(metrics.read_text())["n"] == 2  # the two pairs, scored


def test_a_fetched_set_is_found_by_name_and_labelled_by_it(
    tmp_path: Path, shared: Path, capsys
) -> None:
    rc, _, err = cli(capsys, "evaluate", "--weights", "sian-rain100l", "--data", "rain100h")
    assert rc == 2
    (line,) = error_lines(err)  # names the set and what to fetch
    assert "rain100h" in line and "derain fetch rain100h-crop480" in line
    _pairs(data_root() / "rain100l" / "test", 2)
    results = tmp_path / "res"
    rc, out, err = cli(capsys, "evaluate", "--weights", shared / "weights" / "sian_rain100l.pth",
                       "--data", "rain100l", "--results", results, "--no-progress")  # fmt: skip
    assert rc == 0, err
    (metrics,) = (results / "runs").glob("*/metrics.json")
    written = metrics.stat().st_mtime_ns
    rc, out, _ = cli(capsys, "runs", "list", "--results", results)
    assert "test rain100l" in out and "test test" not in out  # the set's name, not its folder
    rc, out, err = cli(capsys, "evaluate", "--weights", shared / "weights" / "sian_rain100l.pth",
                       "--data", "rain100l", "--results", results, "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert [metrics] == list((results / "runs").glob("*/metrics.json"))  # the same run
    assert metrics.stat().st_mtime_ns == written  # taken from the cache, nothing recomputed


def test_a_refused_evaluation_leaves_no_run_and_seeds_are_checked(
    tmp_path: Path, shared: Path, capsys
) -> None:
    data = tmp_path / "small"
    write_png(data / "norain" / "norain-001.png", np.zeros((6, 6, 3), np.uint8))
    write_png(data / "rainy" / "rain-001.png", np.ones((6, 6, 3), np.uint8))
    results = tmp_path / "res"
    rc, _, err = cli(capsys, "evaluate", "--weights", shared / "weights" / "sian_rain100l.pth",
                     "--data", data, "--results", results, "--no-progress")  # fmt: skip
    assert rc == 2 and len(error_lines(err)) >= 1
    assert not list(results.glob("runs/*"))  # no "unfinished" run behind
    config = tmp_path / "mine.yaml"
    config.write_text("name: mine\nseeds: zero\ndataset: light\n")
    rc, _, err = cli(capsys, "train", "--config", config)
    assert rc == 2
    (line,) = error_lines(err)  # names the file, the key and the bad value
    assert "mine.yaml" in line and "seeds" in line and "'zero'" in line


@pytest.mark.parametrize("case", ["file_child", "read_only", "empty", "dev_null", "loop"])
def test_input_and_output_problems_are_named_before_torch_loads(
    tmp_path: Path, case: str, capsys
) -> None:
    img = write_png(tmp_path / "in" / "a.png", np.zeros((16, 16, 3), np.uint8))
    inputs, out = [str(img)], str(tmp_path / "out")
    if case == "file_child":
        out = str(img / "out")
        want = (f"-o {out}", str(img), "file")
    elif case == "read_only":
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        out = str(ro / "out")
        want = (f"-o {out}", str(ro), "writable")
        if os.access(ro, os.W_OK):  # root writes anyway: then the file system decides
            pytest.skip("running as root: permission bits do not stop writes")
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        inputs, want = [str(tmp_path / "empty")], ("empty", "no images")
    elif case == "dev_null":
        inputs, want = ["/dev/null"], ("/dev/null", "character device")
    else:
        loop = tmp_path / "loop.png"
        loop.symlink_to(loop)
        inputs, want = [str(loop)], ("loop.png", "symlink loop")
    code = (
        "import sys, time; t = time.perf_counter(); from derain_lib.cli import main; "
        "rc = main(sys.argv[1:]); print('torch' in sys.modules, time.perf_counter() - t); "
        "sys.exit(rc)"
    )
    argv = ["derain", *inputs, "-o", out, "--weights", "sian-rain100l"]
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("derain: error: ") and all(w in line for w in want), line
    assert done.stdout.split()[0] == "False"  # torch never loaded
    assert time.perf_counter() - t < 30


def test_fifos_and_symlink_loops_in_a_folder_are_named_and_counted(
    tmp_path: Path, shared: Path, capsys
) -> None:
    folder = tmp_path / "in"
    write_png(folder / "a.png", np.full((16, 16, 3), 90, np.uint8))
    os.mkfifo(folder / "pipe.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    rc, out, err = cli(capsys, "derain", folder, "-o", tmp_path / "out", "--weights",
                       shared / "weights" / "sian_rain100l.pth", "--no-progress")  # fmt: skip
    assert rc == 2  # each entry that is no image named on its own line; the image derained
    named = [n for n in ("loop.png", "pipe.png") if any(n in x for x in error_lines(err))]
    assert named == ["loop.png", "pipe.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]


def test_score_takes_two_files_as_a_pair_and_bare_runs_lists(tmp_path: Path, capsys) -> None:
    a = write_png(tmp_path / "a.png", np.full((16, 16, 3), 100, np.uint8))
    b = write_png(tmp_path / "b.png", np.full((16, 16, 3), 110, np.uint8))
    rc, out, _ = cli(capsys, "score", a, b, "--json")
    scores = json.loads(out)
    assert rc == 0 and scores["n"] == 1
    # PSNR on MATLAB's Y: 10 grey levels of R, G and B are 10 * 219/255 levels of Y
    assert scores["psnr"] == pytest.approx(20 * np.log10(255 / (10 * 219 / 255)), abs=1e-6)
    rc, _, err = cli(capsys, "score", a, tmp_path)
    (line,) = error_lines(err)
    assert rc == 2 and str(a) in line and str(tmp_path) in line
    rc, out, _ = cli(capsys, "runs", "--results", tmp_path / "res")
    assert rc == 0 and str(tmp_path / "res") in out  # says where it looked


def test_an_rgba_input_keeps_its_alpha(tmp_path: Path, shared: Path, capsys) -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 255, (20, 24, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    weights = shared / "weights" / "sian_rain100l.pth"
    rc, _, err = cli(capsys, "derain", tmp_path / "a.png", "-o", tmp_path / "out.png",
                     "--weights", weights, "--no-progress")  # fmt: skip
    assert rc == 0, err
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == "RGBA"
        out = np.asarray(im)
    assert np.array_equal(out[..., 3], rgba[..., 3])
    assert not np.array_equal(out[..., :3], rgba[..., :3])  # the colours were derained
    rc, _, err = cli(capsys, "derain", tmp_path / "a.png", "-o", tmp_path / "out.jpg",
                     "--weights", weights, "--no-progress")  # fmt: skip
    # the image's own line names the output, then the run's one-line summary
    image_line, summary = error_lines(err)
    assert rc == 2 and "out.jpg" in image_line and "1 of 1" in summary
    assert not (tmp_path / "out.jpg").exists()


def test_notebook_06_in_a_fresh_clone_says_what_to_fetch_or_train(hermetic) -> None:
    """A fresh clone has no fetched weights and no run records; or its run records name a
    run this machine does not have: either way the panel's weights are None with what to
    do, not an AttributeError."""
    from derain_lib.study import figures
    from derain_lib.study.plan import Params, work_dir

    spec, why = figures.panel_weights(Params("quick"), "sian-rain100l")
    assert spec is None and why.startswith("not run: ")  # with the two ways to get weights
    assert "derain fetch weights" in why and "01_train.ipynb" in why
    row = {"method": "sian/neg-ssim", "benchmark": "rain100l", "dataset": "light",
           "stand_in": True, "status": "ok", "run": "0123456789ab",
           "checkpoint": "runs/0123456789ab/model.pt"}  # fmt: skip
    work_dir("quick").mkdir(parents=True)
    (work_dir("quick") / "runs.json").write_text(json.dumps([row]))
    spec, why = figures.panel_weights(Params("quick"), "sian-rain100l")
    assert spec is None and why.startswith("not run: ")
    assert "derain fetch weights" in why and "0123456789ab" in why  # names the missing run
