"""Misuse cases of issue 23: each row of its table, as a user would hit it.

Every CLI call runs ``derain`` in-process and asserts that stderr holds no ``Traceback``;
docs/reliability.md (rows 11-27) maps each row to its test here."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from derain_lib import backends
from derain_lib import precision as prec
from derain_lib.cli import build_parser, main
from derain_lib.config import load_config
from derain_lib.data.io import ImageReadError, read_image, write_png
from derain_lib.errors import DerainError
from derain_lib.models import build_model
from derain_lib.runs import get_or_run
from derain_lib.study import plan
from derain_lib.weights import OUR_FORMAT, config_mismatch

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "model.kwargs.channels=4",
    "model.kwargs.stages=2",
    "data.patch=48",
    "data.stride=48",
    "train.batch_size=4",
    "train.max_steps=2",
    "train.checkpoint_every=1",
    "train.val_images=0",
    "eval.max_images=1",
]


def cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    """``derain ARGV`` in-process: (rc, stdout, stderr); never a traceback on stderr."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def error_line(err: str) -> str:
    """The last ``derain: error: ...`` line."""
    lines = [line for line in err.splitlines() if line.startswith("derain: error: ")]
    assert lines, err
    return lines[-1]


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    """A small PReNet checkpoint in this project's format."""
    path = tmp_path / "w" / "prenet.pt"
    path.parent.mkdir()
    torch.save(
        {"format": OUR_FORMAT, "model": "prenet", "model_kwargs": {},
         "state_dict": build_model("prenet").state_dict()},
        path,
    )  # fmt: skip
    return path


def _img(path: Path, value: int = 100, size: int = 16) -> Path:
    return write_png(path, np.full((size, size, 3), value, np.uint8))


def huge_png(path: Path, width: int = 60000, height: int = 60000) -> Path:
    """A valid PNG whose header claims ``width`` x ``height`` (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    body += chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


# --- rows 1-3: decompression bombs ---------------------------------------------------------------


def test_row1_oversized_image_is_one_line_naming_file_and_limit(tmp_path, weights, capsys):
    huge = huge_png(tmp_path / "huge.png")
    with pytest.raises(ImageReadError, match="huge.png: .*3600000000 pixels.*limit"):
        read_image(huge)
    rc, _, err = cli(capsys, "derain", huge, "-o", tmp_path / "out", "--weights", weights)
    assert rc == 2 and "huge.png" in error_line(err) and "limit" in err


def test_row2_oversized_image_in_a_batch_is_skipped_and_the_rest_derained(
    tmp_path, weights, capsys
):
    _img(tmp_path / "in" / "a.png")
    huge_png(tmp_path / "in" / "b.png")
    _img(tmp_path / "in" / "c.png")
    rc, _, err = cli(
        capsys, "derain", tmp_path / "in", "-o", tmp_path / "out", "--weights", weights
    )
    assert rc == 2 and "2 derained, 1 failed" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_row3_score_skips_an_oversized_image(tmp_path, capsys):
    for d in ("p", "g"):
        _img(tmp_path / d / "1.png", size=32)
    huge_png(tmp_path / "p" / "2.png")
    _img(tmp_path / "g" / "2.png", size=32)
    rc, out, err = cli(capsys, "score", tmp_path / "p", tmp_path / "g")
    assert rc == 2 and "2.png" in err and "1 pair(s) skipped, 1 scored" in error_line(err)


# --- row 4: reproduce validates before it touches results/ ----------------------------------------


@pytest.fixture
def study_dirs(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """results/ and figures/ in a temporary folder, with a previous smoke run's files."""
    res, fig = tmp_path / "results", tmp_path / "figures"
    monkeypatch.setenv("DERAIN_RESULTS", str(res))
    monkeypatch.setenv("DERAIN_FIGURES", str(fig))
    (res / "smoke").mkdir(parents=True)
    (res / "smoke" / "provenance.json").write_text('{"notebooks": {"00_data.ipynb": 1.0}}\n')
    (res / "smoke" / "figures.json").write_text('{"samples.png": "caption"}\n')
    (fig / "smoke").mkdir(parents=True)
    (fig / "smoke" / "samples.png").write_bytes(b"png")
    return res, fig


def _snapshot(*folders: Path) -> dict[str, bytes]:
    return {
        str(p): p.read_bytes()
        for f in folders
        for p in sorted(f.rglob("*"))
        if p.is_file() and p.name != ".lock"  # the lock file names its last holder
    }


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--set", "train.lr=abc"], "train.lr"),
        (["--set", "nosuch.key=1"], "nosuch"),
        (["--profile", "nosuch"], "nosuch"),
        (["--data-root", "/no/such/folder"], "/no/such/folder"),
        (["--weights-dir", "/no/such/wdir"], "/no/such/wdir"),
    ],
)
def test_row4_reproduce_validates_before_touching_results(study_dirs, capsys, argv, says):
    before = _snapshot(*study_dirs)
    args = ["reproduce", *(["--profile", "smoke"] if "--profile" not in argv else []), *argv]
    rc, _, err = cli(capsys, *args)
    assert rc == 2 and says in error_line(err)
    assert _snapshot(*study_dirs) == before  # provenance.json, figures.json, figures kept


def test_row4_a_failing_notebook_keeps_the_last_good_records(study_dirs, monkeypatch, capsys):
    from derain_lib.study import pipeline

    def fail(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr("papermill.execute_notebook", fail)
    before = _snapshot(study_dirs[0] / "smoke")
    with pytest.raises(DerainError, match="notebook 00_data.ipynb failed: RuntimeError: boom"):
        pipeline.run_pipeline("smoke", log=lambda *a, **k: None)
    after = _snapshot(study_dirs[0] / "smoke")
    assert {k: v for k, v in after.items() if "notebooks" not in k} == before


# --- row 5: --precision auto is a measured choice, one default ------------------------------------


def test_row5_auto_precision_is_measured_and_defaults_agree(tmp_path, weights, capsys, monkeypatch):
    def default(*argv: str) -> str:
        return build_parser().parse_args(list(argv)).precision

    assert default("derain", "a.png", "-o", "o", "--weights", "w") == default(
        "evaluate", "--weights", "w", "--data", "d"
    )
    # a CPU with native bf16 where bf16 is not faster: fp32
    choice, why = prec.choose_auto(
        "cpu", native=True, timings={"fp32": 1.0, "bf16": 1.05}, protocol=False
    )
    assert choice == "fp32" and "measured" in why
    choice, _ = prec.choose_auto("cpu", native=True, timings={"fp32": 1.0, "bf16": 0.5})
    assert choice == "bf16"
    choice, why = prec.choose_auto("cpu", native=True, timings={"fp32": 1.0, "bf16": 0.5},
                                   protocol=True)  # fmt: skip
    assert choice == "fp32" and "protocol" in why
    assert prec.choose_auto("cpu", native=False)[0] == "fp32"
    # the CLI measures (where bf16 is native) and says its choice: equal times -> fp32
    monkeypatch.setattr(backends, "best_time", lambda fn, *a, **k: 1.0)
    src = _img(tmp_path / "a.png")
    rc, _, err = cli(capsys, "derain", src, "-o", tmp_path / "o", "--weights", weights,
                     "--precision", "auto", "--backend", "torch")  # fmt: skip
    assert rc == 0 and "backend torch: torch fp32" in err


# --- row 6: smoke never reads prepared sets unless told ------------------------------------------


def test_row6_smoke_ignores_prepared_sets_unless_told(tmp_path, monkeypatch):
    folder = tmp_path / "rain100l"
    folder.mkdir()

    class Prepared:
        root = str(folder)

    monkeypatch.setattr(plan, "prepared_dataset", lambda b, split: Prepared())
    monkeypatch.delenv(plan.USE_PREPARED_ENV, raising=False)
    smoke = plan.test_sets(plan.Params("smoke"))
    assert all(Path(t.spec) != folder for ts in smoke.values() for t in ts)
    monkeypatch.setenv(plan.USE_PREPARED_ENV, "1")
    told = plan.test_sets(plan.Params("smoke"))
    assert any(Path(t.spec) == folder for t in told["rain100l"])
    lines = plan.data_lines(plan.Params("smoke"))
    assert any("prepared" in line and "rain100l" in line for line in lines)
    assert any("embedded" in line for line in lines)


# --- row 7: one reproduce per profile ------------------------------------------------------------

HOLD = (
    "import sys, time; from derain_lib.fsutil import locked\n"
    "with locked(sys.argv[1], what='profile'):\n"
    "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n"
)


def test_row7_second_reproduce_is_refused_naming_the_holder(study_dirs, capsys):
    folder = study_dirs[0] / "smoke"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        before = _snapshot(*study_dirs)
        rc, _, err = cli(capsys, "reproduce", "--profile", "smoke")
    finally:
        holder.kill()
        holder.wait()
    line = error_line(err)
    assert rc == 2 and f"in use by process {holder.pid}" in line and "--wait" in line
    assert "python" in line  # the holder's command line
    assert _snapshot(*study_dirs) == {k: v for k, v in before.items()}
    assert build_parser().parse_args(["reproduce", "--wait"]).wait is True


# --- row 8: max_steps beyond the epochs ----------------------------------------------------------


def test_row8_max_steps_beyond_the_epochs_is_refused(tmp_path, capsys):
    sets = [a for s in [*TINY, "train.max_steps=100000"] for a in ("--set", s)]
    rc, _, err = cli(capsys, "train", "--config", "smoke", "--results", tmp_path, *sets)
    line = error_line(err)
    assert rc == 2 and "train.max_steps" in line and "train.epochs" in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# --- row 9: ~ expanded ---------------------------------------------------------------------------


def test_row9_tilde_is_expanded_in_every_path(tmp_path, weights, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    _img(tmp_path / "in" / "a.png")
    rc, out, err = cli(capsys, "derain", "~/in/a.png", "-o", "~/out", "--weights", "~/w/prenet.pt",
                       "--weights-dir", "~/w")  # fmt: skip
    assert rc == 0, err
    assert (tmp_path / "out" / "a.png").is_file() and not (tmp_path / "~").exists()


# --- row 10: unknown output extension -------------------------------------------------------------


def test_row10_unknown_output_extension_is_refused(tmp_path, weights, capsys):
    src = _img(tmp_path / "a.png")
    rc, _, err = cli(capsys, "derain", src, "-o", tmp_path / "out.xyz", "--weights", weights)
    assert rc == 2 and "out.xyz" in error_line(err) and ".xyz" in error_line(err)
    assert not (tmp_path / "out.xyz").exists()


# --- row 11: strict config -----------------------------------------------------------------------


def test_row11_strict_config_is_a_real_option():
    args = build_parser().parse_args(["derain", "a.png", "-o", "o", "--weights", "w"])
    assert args.strict_config is True
    args = build_parser().parse_args(
        ["derain", "a.png", "-o", "o", "--weights", "w", "--no-strict-config"]
    )
    assert args.strict_config is False
    with pytest.raises(Exception, match="--no-strict-config"):
        config_mismatch("w.pth", "sian", {"stages": 6}, "sian", {"stages": 3})


# --- row 12: score without pairs -----------------------------------------------------------------


def test_row12_score_prints_no_nan_and_fails_on_unpaired_ground_truth(tmp_path, capsys):
    _img(tmp_path / "p" / "1.png", size=32)
    (tmp_path / "g").mkdir()
    rc, out, err = cli(capsys, "score", tmp_path / "p", tmp_path / "g")
    assert rc == 2 and not re.search(r"\bnan\b", out.lower()) and "mean of" not in out
    _img(tmp_path / "g" / "1.png", size=32)
    _img(tmp_path / "g" / "2.png", size=32)
    rc, out, err = cli(capsys, "score", tmp_path / "p", tmp_path / "g")
    assert rc == 2 and "2.png" in error_line(err) and "no prediction" in error_line(err)


# --- row 13: --skip-existing ---------------------------------------------------------------------


def test_row13_skip_existing_goes_on_with_the_rest(tmp_path, weights, capsys):
    _img(tmp_path / "in" / "a.png")
    _img(tmp_path / "in" / "b.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_bytes(b"earlier output")
    rc, out, err = cli(capsys, "derain", tmp_path / "in", "-o", tmp_path / "out",
                       "--weights", weights, "--skip-existing")  # fmt: skip
    assert rc == 0, err
    assert (tmp_path / "out" / "a.png").read_bytes() == b"earlier output"
    assert (tmp_path / "out" / "b.png").is_file() and "1 skipped" in err


# --- row 14: missing --weights-dir ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["derain", "evaluate", "info"])
def test_row14_missing_weights_dir_is_an_error(tmp_path, command, capsys):
    img = _img(tmp_path / "a.png")
    argv = {
        "derain": ["derain", img, "-o", tmp_path / "o", "--weights", "sian-rain100l"],
        "evaluate": ["evaluate", "--weights", "sian-rain100l", "--data", tmp_path],
        "info": ["info"],
    }[command]
    rc, _, err = cli(capsys, *argv, "--weights-dir", tmp_path / "no" / "such")
    assert rc == 2 and "--weights-dir" in error_line(err) and "no such folder" in error_line(err)


# --- row 15: runs show on an unfinished run ------------------------------------------------------


def test_row15_runs_show_reports_an_unfinished_runs_step(tmp_path, capsys):
    run = get_or_run(load_config("smoke", TINY), tmp_path, progress=False)
    (run.dir / "metrics.json").unlink()
    (run.dir / "model.pt").unlink()
    rc, out, _ = cli(capsys, "runs", "show", run.key, "--results", tmp_path)
    shown = json.loads(out)
    assert rc == 0 and shown["status"] == "unfinished"
    assert shown["step"] == 2 and Path(shown["last_checkpoint"]).name == "step-00000002.pt"


# --- row 17: argument and input errors before torch loads ----------------------------------------

NO_TORCH = (
    "import sys; from derain_lib.cli import main; rc = main(sys.argv[1:]); "
    "print('torch' in sys.modules, rc)"
)


@pytest.mark.parametrize(
    "argv",
    [
        ["derain", "missing.png", "-o", "out", "--weights", "sian-rain100l"],
        ["derain", "ok.png", "-o", "out.xyz", "--weights", "sian-rain100l"],
        ["derain", "ok.png", "-o", "out", "--weights", "nosuch.pth"],
        ["derain", "ok.png", "-o", "out", "--weights", "sian-rain100l", "--weights-dir", "nodir"],
        ["score", "missing", "."],
        ["evaluate", "--weights", "sian-rain100l", "--data", "missing"],
    ],
)
def test_row17_input_errors_are_answered_before_torch_loads(tmp_path, argv):
    _img(tmp_path / "ok.png")
    r = subprocess.run(
        [sys.executable, "-c", NO_TORCH, *argv], cwd=tmp_path, capture_output=True, text=True
    )
    assert r.stdout.split() == ["False", "2"], r.stdout + r.stderr
    assert r.stderr.startswith("derain: error: ") and len(r.stderr.splitlines()) == 1
