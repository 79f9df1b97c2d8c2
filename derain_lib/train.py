"""The training loop: seeded data order, atomic checkpoints (the last two kept), DDP under
``torchrun``; a run killed at any moment resumes bit-identical to an uninterrupted one (CPU)."""

from __future__ import annotations

import contextlib
import csv
import itertools
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .config import Config, ConfigError, config_hash
from .data.datasets import PairedDataset
from .data.patches import PatchSet
from .data.sources import open_data
from .device import resolve_device, tf32
from .errors import DerainError
from .evaluate import evaluate
from .fsutil import atomic_path, atomic_write_text
from .losses import stage_losses
from .models import build_model
from .weights import OUR_FORMAT, WeightsError, config_mismatch, model_config, read_checkpoint

LOG_FIELDS = ["epoch", "step", "loss", "lr", "val_psnr", "val_ssim", "patches_per_s", "elapsed_s"]
CHECKPOINT_DIR = "checkpoints"
FINAL_MODEL = "model.pt"
TENSORBOARD_DIR = "tensorboard"
TENSORBOARD_TAGS = {"loss": "loss/total", "lr": "learning_rate", "val_psnr": "val/psnr",
                    "val_ssim": "val/ssim", "patches_per_s": "patches_per_s"}  # fmt: skip


class TrainingDiverged(DerainError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def epoch_batches(
    n: int, batch: int, seed: int, epoch: int, start: int = 0, rank: int = 0, world: int = 1
) -> Iterator[list[int]]:
    """Patch indices of ``epoch``'s whole batches from step ``start`` on (``rank``'s share)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    local = batch // world
    for s in range(start, n // batch):
        first = s * batch + rank * local
        yield order[first : first + local].tolist()


def run_batches(
    n: int, batch: int, seed: int, epoch: int, step: int, count: int,
    rank: int = 0, world: int = 1,
) -> Iterator[list[int]]:  # fmt: skip
    """The batch sampler of the rest of a run: ``count`` batches from ``(epoch, step)`` on."""
    starts = ((e, step if e == epoch else 0) for e in itertools.count(epoch))
    run = (b for e, s in starts for b in epoch_batches(n, batch, seed, e, s, rank, world))
    return itertools.islice(run, max(0, count))


def training_patches(cfg: Config, train_data: PairedDataset) -> PatchSet:
    """The training patches ``cfg.data`` cuts from ``train_data`` (decoded when first used)."""
    return PatchSet(train_data, cfg.data.patch, cfg.data.stride, cfg.data.hflip)


def training_setup(cfg: Config, device: torch.device) -> dict:
    """What the run trains with on ``device`` (``auto`` settings resolved: on CUDA only;
    workers: this process's share of the cores less one, at most 8, enough for one GPU)."""
    t, cuda, workers = cfg.train, device.type == "cuda", cfg.data.workers
    if workers == "auto":
        share = (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        workers = max(1, min(8, share - 1)) if cuda else 0
    return {"device": str(device), "workers": workers, "pin_memory": cuda,
            "channels_last": cuda if t.channels_last == "auto" else bool(t.channels_last),
            "tf32": cuda if t.tf32 == "auto" else bool(t.tf32), "bf16": bool(t.bf16)}  # fmt: skip


def steps_per_epoch(cfg: Config, n_patches: int) -> int:
    """Whole batches of ``train.batch_size`` in ``n_patches``; none is a :class:`ConfigError`."""
    if (steps := n_patches // cfg.train.batch_size) == 0:
        raise ConfigError(
            f"{cfg.data.train}: {n_patches} patches of {cfg.data.patch} px, fewer than one "
            f"batch of {cfg.train.batch_size}"
        )
    return steps


def planned_steps(cfg: Config, n_patches: int) -> int:
    """The global step :func:`train` stops at (``train.epochs``, capped by ``max_steps``)."""
    total = cfg.train.epochs * steps_per_epoch(cfg, n_patches)
    return total if cfg.train.max_steps is None else min(total, cfg.train.max_steps)


def build_model_from_config(cfg: Config) -> nn.Module:
    """``cfg.model`` to a model; bad names or arguments are a :class:`ConfigError`."""
    try:
        return build_model(cfg.model.name, **cfg.model.kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model {cfg.model.name!r} with {cfg.model.kwargs}: {e}") from None


def make_optimizer(cfg: Config, model: nn.Module):
    """Adam (Eq. 15) and the LR schedule (stepped once per epoch)."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, betas=tuple(cfg.train.betas))
    milestones = list(cfg.train.milestones) if cfg.train.scheduler == "multistep" else []
    return opt, torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=cfg.train.gamma)


def dist_info() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) without."""
    return tuple(int(os.environ.get(k, d)) for k, d in
                 (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)))  # fmt: skip


def pick_device(setting: str, local_rank: int = 0) -> torch.device:
    """``train.device`` to a device (``auto``/``cuda``: this process's GPU under torchrun)."""
    try:
        return resolve_device(setting, local_rank)
    except DerainError as e:
        raise ConfigError(f"train.device: {e}") from None


def atomic_save(obj: dict, path: Path) -> None:
    """``torch.save`` through :func:`atomic_path`; a failed write (a full disk) is one line."""
    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
    except RuntimeError as e:  # PytorchStreamWriter: "file write failed" (no space left)
        why = "no space left on the device?" if "write" in str(e) else str(e).splitlines()[0]
        raise DerainError(
            f"{path}: cannot write the checkpoint ({why}); the last one is kept: free space "
            "and run the same command again to resume from it"
        ) from None


def model_file(cfg: Config, model: nn.Module, **extra: object) -> dict:
    """What :func:`derain_lib.weights.load_model` reads (CPU, contiguous), plus ``extra``."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return {"format": OUR_FORMAT, "model": cfg.model.name, "model_kwargs": dict(cfg.model.kwargs),
            "model_config": model_config(model), "state_dict": state, "config": cfg.to_dict(),
            "config_hash": config_hash(cfg), **extra}  # fmt: skip


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """``checkpoints/step-*.pt`` of a run, newest first."""
    found = (Path(run_dir) / CHECKPOINT_DIR).glob("step-*.pt")
    return sorted(found, key=lambda p: int(p.stem.split("-")[1]), reverse=True)


def _read_or_set_aside(path: Path, what: str, key: str) -> dict | None:
    """``path`` read; one without ``key`` or unreadable is renamed ``*.corrupt`` (None)."""
    try:
        state = read_checkpoint(path)
        if key not in state:
            raise WeightsError(f"{path}: not a training checkpoint (no {key})")
        return state
    except WeightsError as e:
        print(f"derain: warning: {e}; {what}", file=sys.stderr)
        os.replace(path, path.with_name(path.name + ".corrupt"))
        return None


def latest_checkpoint(run_dir: str | Path) -> tuple[Path, dict] | None:
    """The newest readable checkpoint; unreadable ones are renamed ``*.corrupt`` and skipped."""
    for path in list_checkpoints(run_dir):
        if state := _read_or_set_aside(path, "using the previous checkpoint", "position"):
            return path, state
    return None


class Log:
    """``log.csv`` (rank 0), cut back to ``keep_lines`` on resume; TensorBoard beside it when
    tensorboard is installed."""

    def __init__(self, run_dir: Path, keep_lines: int | None) -> None:
        path = run_dir / "log.csv"
        lines = path.read_text().splitlines(keepends=True)[:keep_lines] if keep_lines else []
        atomic_write_text(path, "".join(lines or [",".join(LOG_FIELDS) + "\n"]))
        self.lines, self.tb = max(1, len(lines)), None
        self.f = open(path, "a", newline="")  # noqa: SIM115 (open for the whole run)
        self.csv = csv.DictWriter(self.f, fieldnames=LOG_FIELDS)
        with contextlib.suppress(ImportError):  # the tensorboard extra
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / TENSORBOARD_DIR))

    def write(self, stages: list | None = None, **row: object) -> None:
        self.csv.writerow(row)
        self.f.flush()
        self.lines += 1
        if self.tb is not None:
            scalars = {tag: row[name] for name, tag in TENSORBOARD_TAGS.items() if name in row}
            scalars.update({f"loss/stage_{k}": v for k, v in enumerate(stages or [], 1)})
            for tag, value in scalars.items():
                self.tb.add_scalar(tag, float(value), int(row["step"]))

    def close(self) -> None:
        self.f.close()
        if self.tb is not None:
            self.tb.close()


def data_loader(patches: PatchSet, sampler: Iterator[list[int]], setup: dict) -> DataLoader:
    """One loader for the rest of the run (images decoded first: the workers share them)."""
    patches.decode()
    workers = int(setup["workers"])
    return DataLoader(patches, batch_sampler=sampler, num_workers=workers,
                      pin_memory=bool(setup["pin_memory"]), persistent_workers=workers > 0,
                      prefetch_factor=4 if workers > 0 else None)  # fmt: skip


def train(cfg: Config, run_dir: str | Path, progress: bool = True) -> dict:
    """Train ``cfg`` in ``run_dir`` (resuming); returns what provenance records of it. Under
    ``torchrun`` every process calls it; a finished run returns before joining a group."""
    run_dir = Path(run_dir)
    final = run_dir / FINAL_MODEL
    if final.exists() and (s := _read_or_set_aside(final, f"set aside as {final}.corrupt, "
                                                   "resuming", "train_info")):  # fmt: skip
        return s["train_info"]
    rank, world, local_rank = dist_info()
    device = pick_device(cfg.train.device, local_rank)
    owns_group = world > 1 and not dist.is_initialized()
    if owns_group:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _train(cfg, run_dir, device, rank, world, progress)
    finally:
        if owns_group:
            dist.destroy_process_group()


def _train(
    cfg: Config, run_dir: Path, device: torch.device, rank: int, world: int, progress: bool
) -> dict:
    t, main = cfg.train, rank == 0
    if t.batch_size % world:
        raise ConfigError(f"train.batch_size {t.batch_size} is not divisible by {world} processes")
    patches = training_patches(cfg, open_data(cfg.data.train, cfg.data.root))
    epoch_steps, total = steps_per_epoch(cfg, len(patches)), planned_steps(cfg, len(patches))
    val_set = open_data(cfg.data.test, cfg.data.root) if t.val_images > 0 else None
    torch.manual_seed(t.seed)
    model = build_model_from_config(cfg)
    opt, sched = make_optimizer(cfg, model)
    pos = {"epoch": 0, "step": 0, "global_step": 0}
    elapsed0, last_val, log_lines, resumed_from = 0.0, {}, None, None
    if (found := latest_checkpoint(run_dir)) is not None:
        resumed_from, s = found
        config_mismatch(resumed_from, str(s.get("model")), s.get("model_config", {}),
                        cfg.model.name, model_config(model))  # fmt: skip
        for part, key in ((model, "state_dict"), (opt, "optimizer"), (sched, "scheduler")):
            part.load_state_dict(s[key])
        torch.set_rng_state(s["rng"]["torch"])
        if "cuda" in s["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(s["rng"]["cuda"])
        pos, elapsed0, last_val, log_lines = (
            s[k] for k in ("position", "elapsed_s", "last_val", "log_lines")
        )
    setup = training_setup(cfg, device)
    layout = torch.channels_last if setup["channels_last"] else torch.preserve_format
    model.to(device, memory_format=layout)
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    t_start = time.perf_counter()

    def elapsed() -> float:
        return elapsed0 + time.perf_counter() - t_start

    def train_info() -> dict:
        return {"global_step": pos["global_step"], "epochs_done": pos["epoch"],
                "train_wall_s": elapsed(), "last_val": last_val, "world_size": world,
                "resumed_from": resumed_from and str(resumed_from),
                "training_setup": setup}  # fmt: skip

    def write_log(**row: object) -> None:
        if log is not None:
            log.write(**row, elapsed_s=f"{elapsed():.2f}")

    def checkpoint() -> None:
        if not main:
            return
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        state = model_file(
            cfg, model, optimizer=opt.state_dict(), scheduler=sched.state_dict(), rng=rng,
            position=dict(pos), log_lines=log.lines, elapsed_s=elapsed(), last_val=last_val,
            training_setup=setup,
        )  # fmt: skip
        atomic_save(state, run_dir / CHECKPOINT_DIR / f"step-{pos['global_step']:08d}.pt")
        for old in list_checkpoints(run_dir)[2:]:
            old.unlink(missing_ok=True)

    sampler = run_batches(len(patches), t.batch_size, t.seed, pos["epoch"], pos["step"],
                          total - pos["global_step"], rank, world)  # fmt: skip
    bar = tqdm(total=total, initial=pos["global_step"], unit="step",
               desc=f"train {cfg.name}/{cfg.dataset}", disable=not (progress and main))  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    log = Log(run_dir, log_lines) if main else None
    try:
        with tf32(setup["tf32"]):
            t0 = time.perf_counter()
            for rainy, clean in data_loader(patches, sampler, setup):
                rainy = rainy.to(device, non_blocking=True, memory_format=layout)
                clean = clean.to(device, non_blocking=True, memory_format=layout)
                with torch.autocast(device.type, torch.bfloat16, enabled=setup["bf16"]):
                    outputs = net(rainy)
                stages = stage_losses(outputs, clean, t.loss)
                loss = sum(stages)  # Eq. 13
                mean = loss.detach().clone()
                if world > 1:
                    dist.all_reduce(mean)
                value = float(mean) / world
                if not math.isfinite(value):
                    last = list_checkpoints(run_dir)
                    raise TrainingDiverged(
                        f"step {pos['global_step'] + 1} (epoch {pos['epoch'] + 1}): the "
                        f"{t.loss} loss is {value}; training stopped. Last good checkpoint: "
                        f"{last[0] if last else 'none (diverged before the first)'}"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                pos["step"], pos["global_step"] = pos["step"] + 1, pos["global_step"] + 1
                now = time.perf_counter()
                speed, t0 = t.batch_size / max(now - t0, 1e-9), now
                write_log(
                    epoch=pos["epoch"] + 1, step=pos["global_step"], loss=f"{value:.6g}",
                    lr=sched.get_last_lr()[0], patches_per_s=f"{speed:.2f}",
                    stages=[s.detach() for s in stages],
                )  # fmt: skip
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}", patches_s=f"{speed:.1f}")
                if pos["step"] == epoch_steps:
                    pos["epoch"], pos["step"] = pos["epoch"] + 1, 0
                    sched.step()
                elif pos["global_step"] < total:
                    if pos["global_step"] % t.checkpoint_every == 0:
                        checkpoint()
                    continue
                if main and val_set is not None:  # an epoch's (or the run's) end
                    r = evaluate(model, val_set, max_images=t.val_images, save_images=False)
                    last_val = {"val_psnr": r.psnr, "val_ssim": r.ssim}
                    write_log(
                        epoch=pos["epoch"] if pos["step"] == 0 else pos["epoch"] + 1,
                        step=pos["global_step"], val_psnr=f"{r.psnr:.4f}", val_ssim=f"{r.ssim:.5f}",
                    )  # fmt: skip
                checkpoint()
                t0 = time.perf_counter()
        if main:
            info = train_info()
            atomic_save(model_file(cfg, model, train_info=info), run_dir / FINAL_MODEL)
    finally:
        bar.close()
        if log is not None:
            log.close()
    if world > 1:
        dist.barrier()
    return train_info()
