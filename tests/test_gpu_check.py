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
                    "## Paper profile"):  # fmt: skip
        assert heading in md
    assert f"{best:.2f} patches/s" in md
