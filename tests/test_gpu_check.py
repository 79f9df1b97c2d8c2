"""benchmarks/gpu_check.py at toy size on the CPU, so the GPU check cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_tiny_on_cpu_writes_every_measurement(shared, tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DERAIN_SHARED": str(shared)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--out", str(tmp_path), "--device", "cpu",
         "--tiny"],  # fmt: skip
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads((tmp_path / "gpu_check.json").read_text())
    md = (tmp_path / "GPU_RESULTS.md").read_text()
    assert r["notebook_modules_imported"] == []
    for prec in ("fp32", "tf32", "bf16"):
        for cl in (False, True):
            t = r["train"][f"{prec}/{cl}/False"]
            assert t["patches_per_s"] > 0 and t["loss"] < 0  # -SSIM summed over stages
        assert "error" in r["train"][f"{prec}/False/True"]  # compile not run at toy size
        for hw in ("24x16", "32x24"):
            assert r["inference"][f"{prec}/{hw}"]["s"] > 0
    s = r["samples"]
    assert sorted(s["reference"]) == ["rain-001.png", "rain-025.png", "rain-050.png",
                                      "rain-100.png"]  # fmt: skip
    # on the CPU, fp32 is the reference itself: the same computation, the same scores
    assert s["fp32"] == s["reference"] and s["fp32_within_0.01dB"] is True
    assert s["bf16"] != s["fp32"]  # the bf16 path ran (its change is reported, not bounded)
    d = r["determinism"]
    assert len(d["losses"]) == 2 and len(d["losses"][0]) == 5
    assert d["identical"] is True and d["max_diff"] == 0.0  # CPU training is deterministic
    p = r["paper_profile"]
    assert p["patches_per_model"] == {"rain100l": 2_400_000, "rain100h": 2_700_000}
    best = max(v["patches_per_s"] for v in r["train"].values() if "patches_per_s" in v)
    assert p["patches_per_s"] == best
    assert abs(p["hours_per_model"]["rain100l"] - 2_400_000 / best / 3600) < 1e-6
    for heading in ("## Training", "## Inference", "## Released Rain100L", "## Determinism",
                    "## Paper profile", "## The library's training loop",
                    "## Whole test set through the CLI",
                    "## Paper profile on 1 and N GPUs"):  # fmt: skip
        assert heading in md
    assert f"{best:.2f} patches/s" in md
    # the library's own loop, old and new input pipelines, each trained for real
    loops = r["loop"]
    assert len(loops) == 3 and all(t["patches_per_s"] > 0 and t["loss"] < 0 for t in loops.values())
    old, new, bf16 = loops.values()
    assert old["setup"]["channels_last"] is False and new["setup"]["bf16"] is False
    assert bf16["setup"]["bf16"] is True and new["setup"]["device"] == "cpu"
    assert old["steps"] == new["steps"] == 5  # 1 warm-up + 4 timed steps each
    # the whole test set through `derain evaluate --device cpu` (one image at toy size)
    c = r["cli_inference"]
    assert c["device"] == "cpu" and c["images"] == 1 and c["eval_s"] > 0
    ref = json.loads((shared / "weights" / "reference" / "reference.json").read_text())
    assert abs(c["psnr"] - ref["per_image"]["rain-001.png"]["sian_rain100l"]["psnr"]) < 1e-3
    # the paper profile's hours for 1..8 GPUs, from the best loop rate
    h = r["profile_hours"]
    assert h["patches_per_s"] == max(t["patches_per_s"] for t in loops.values())
    every = h["tables"]["all (each run once)"]
    assert every["runs"] == h["runs"] >= 11
    assert every["1"] >= every["2"] >= every["4"] >= every["8"] > 0
    assert every["1"] >= max(t["1"] for t in h["tables"].values())


def test_profile_hours_from_a_rate(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "benchmarks.gpu_check", "--out", str(tmp_path),
           "--profile-hours", "--rate", "100", "--gpus", "1", "3"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "At 100.0 patches/s per GPU" in proc.stdout and "| 3 GPUs (h) |" in proc.stdout
    # Rain100L: 200 images x 60 patches x 2 (flips) x 100 epochs / 100 patches/s
    from benchmarks.gpu_check import profile_hours

    h = profile_hours(100.0, [1, 3])
    one = h["tables"]["Table II (losses)"]
    per_l = 100 * (200 * 60 * 2 // 18) * 18 / 100 / 3600  # epochs x whole batches x batch
    per_h = 100 * (1800 * 15 // 18) * 18 / 100 / 3600
    assert abs(one["1"] - 3 * (per_l + per_h)) < 1e-6
