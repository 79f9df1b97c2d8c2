"""The training input pipeline: images decoded once, in memory or from a memory-mapped
cache, giving exactly the crops of the images as read_image reads them; one loader for a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from derain_lib.config import load_config
from derain_lib.data.datasets import open_dataset
from derain_lib.data.io import write_png
from derain_lib.data.patches import PatchSet
from derain_lib.data.sources import open_data
from derain_lib.train import data_loader, epoch_batches, run_batches, training_setup


def _pairs(root: Path, n: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for k in range(1, n + 1):
        h, w = 60 + 7 * k, 90 - 5 * k  # sizes differ, widths not multiples of the stride
        for stem in (f"rain-{k:03d}", f"norain-{k:03d}"):
            write_png(root / f"{stem}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return root


def _all(ps) -> list[tuple[bytes, bytes]]:
    return [(a.numpy().tobytes(), b.numpy().tobytes()) for a, b in (ps[i] for i in range(len(ps)))]


def _crops(ds, ps) -> list[tuple[bytes, bytes]]:
    """Every patch cut from the images as read_image reads them, in the PatchSet's order."""
    out = []
    for i in range(len(ps)):
        k, y, x, flip = ps.locate(i)
        pair = [a[:, ::-1] if flip else a for a in ds.load(k)]
        crops = [np.ascontiguousarray(a[y : y + ps.patch, x : x + ps.patch].transpose(2, 0, 1))
                 for a in pair]  # fmt: skip
        out.append((crops[0].tobytes(), crops[1].tobytes()))
    return out


@pytest.mark.parametrize("budget", [None, 0])  # in memory / memory-mapped cache file
def test_decoded_patches_are_the_read_images_crops(tmp_path: Path, budget: int | None) -> None:
    ds = open_dataset(_pairs(tmp_path / "set"))
    ps = PatchSet(ds, 24, 10, True, ram_budget=budget, cache_dir=tmp_path / "cache")
    assert len(ps) > 0 and ps[0][0].dtype == torch.float32
    want = _crops(ds, ps)
    assert _all(ps) == want  # every patch, bit for bit, same index order (flips included)
    if budget == 0:
        assert ps.storage.startswith("memory-mapped")
        assert list((tmp_path / "cache").glob("patches-*.npy"))
        again = PatchSet(ds, 24, 10, True, ram_budget=0, cache_dir=tmp_path / "cache")
        assert _all(again) == want  # read back from the cache file
    else:
        assert ps.storage == "memory"


def test_embedded_training_set_patches_are_exact_crops(tmp_path: Path) -> None:
    cfg = load_config("smoke")
    ds = open_data(cfg.data.train, cfg.data.root)
    d = cfg.data
    ps = PatchSet(ds, d.patch, d.stride, d.hflip)
    assert _all(ps) == _crops(ds, ps)


def test_run_batches_are_the_epoch_batches_in_sequence() -> None:
    n, batch, seed = 23, 4, 7  # 5 steps per epoch
    want = [b for e in range(3) for b in epoch_batches(n, batch, seed, e)]
    assert list(run_batches(n, batch, seed, 0, 0, 15)) == want
    assert list(run_batches(n, batch, seed, 1, 2, 8)) == want[7:15]  # resumed mid-epoch
    assert list(run_batches(n, batch, seed, 0, 0, 6)) == want[:6]  # max_steps mid-epoch
    two = [list(run_batches(n, batch, seed, 0, 0, 5, r, 2)) for r in (0, 1)]
    assert [a + b for a, b in zip(*two, strict=True)] == want[:5]  # DDP shares


def test_loader_yields_the_patchset_batches_in_order(tmp_path: Path) -> None:
    ds = open_dataset(_pairs(tmp_path / "set"))
    ps = PatchSet(ds, patch=24, stride=10, hflip=True)
    args = (len(ps), 4, 3, 0, 0, 2 * (len(ps) // 4))
    setup = {"workers": 2, "pin_memory": False}
    got = list(data_loader(ps, run_batches(*args), setup))
    want = [torch.stack([ps[i][0] for i in b]) for b in run_batches(*args)]
    assert len(got) == len(want)
    assert all(torch.equal(g[0], w) for g, w in zip(got, want, strict=True))


def test_auto_settings_by_device(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config("smoke")
    cpu = training_setup(cfg, torch.device("cpu"))
    assert cpu == {
        "device": "cpu",
        "workers": 0,
        "pin_memory": False,
        "channels_last": False,
        "tf32": False,
        "bf16": False,
    }
    gpu = training_setup(cfg, torch.device("cuda", 0))  # no CUDA call: resolution only
    assert gpu["pin_memory"] and gpu["channels_last"] and gpu["tf32"] and not gpu["bf16"]
    assert gpu["workers"] >= 1
    for cpus, local_world, workers in ((16, 1, 8), (16, 4, 3), (1, 1, 1)):
        monkeypatch.setattr("os.cpu_count", lambda n=cpus: n)
        monkeypatch.setenv("LOCAL_WORLD_SIZE", str(local_world))
        assert training_setup(cfg, torch.device("cuda", 0))["workers"] == workers
    off = load_config("smoke", ["train.channels_last=false", "train.tf32=false", "data.workers=3"])
    gpu = training_setup(off, torch.device("cuda", 0))
    assert (gpu["channels_last"], gpu["tf32"], gpu["workers"]) == (False, False, 3)
