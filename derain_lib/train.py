"""The training loop: seeded data order, atomic checkpoints, exact resume, DDP.

Determinism: the seed fixes the initial weights and, per epoch, the order of the training
patches (``torch.Generator`` seeded from the seed and the epoch), so the data position is
just ``(epoch, step in epoch)``. A checkpoint holds the model, optimiser, scheduler, the
RNG states (torch, numpy, python) and that position; it is written to a temporary file,
fsynced and renamed, so a run killed at any moment (even ``kill -9``) resumes from the
last complete checkpoint and ends bit-identical to an uninterrupted run (on CPU). The
last two checkpoints are kept; an unreadable latest one is set aside and the previous
one used.

Several processes (``torchrun --nproc_per_node N``) train with DistributedDataParallel
(gloo on CPU, nccl on GPUs); ``train.batch_size`` is the global batch, split evenly.
"""

from __future__ import annotations

import csv
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from .config import Config, ConfigError, config_hash
from .data.datasets import PairedDataset
from .data.patches import PatchSet
from .data.sources import open_data
from .errors import DerainError
from .evaluate import evaluate
from .fsutil import atomic_path, atomic_write_text
from .losses import stage_loss
from .models import build_model
from .weights import OUR_FORMAT, WeightsError, config_mismatch, model_config, read_checkpoint

LOG_FIELDS = ["epoch", "step", "loss", "lr", "val_psnr", "val_ssim", "patches_per_s", "elapsed_s"]
CHECKPOINT_DIR = "checkpoints"
FINAL_MODEL = "model.pt"


class TrainingDiverged(DerainError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The permutation of the ``n`` training patches used in ``epoch`` (seeded, no state)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


class EpochBatches:
    """Patch indices of one epoch, batch by batch, from ``start_step`` on (a batch sampler).

    Each of ``world`` processes takes its ``rank``-th share of every global batch; the
    last incomplete batch of an epoch is dropped.
    """

    def __init__(
        self,
        n: int,
        batch: int,
        seed: int,
        epoch: int,
        start_step: int = 0,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.n, self.batch, self.seed, self.epoch = n, batch, seed, epoch
        self.start, self.rank, self.world = start_step, rank, world
        self.local = batch // world

    def steps(self) -> int:
        return self.n // self.batch

    def __len__(self) -> int:
        return max(0, self.steps() - self.start)

    def __iter__(self):
        order = epoch_order(self.n, self.seed, self.epoch)
        for s in range(self.start, self.steps()):
            chunk = order[s * self.batch : (s + 1) * self.batch]
            yield chunk[self.rank * self.local : (self.rank + 1) * self.local].tolist()


def training_patches(cfg: Config, train_data: PairedDataset) -> PatchSet:
    """The training patches ``cfg.data`` cuts from ``train_data`` (its opened training set)."""
    d = cfg.data
    return PatchSet(train_data, d.patch, d.stride, d.hflip)


def steps_per_epoch(cfg: Config, n_patches: int) -> int:
    """The optimiser steps of one epoch over ``n_patches`` training patches: whole batches
    of ``train.batch_size`` (the last incomplete one is dropped, as :class:`EpochBatches`
    does). Fewer patches than one batch is a :class:`ConfigError`."""
    steps = n_patches // cfg.train.batch_size
    if steps == 0:
        raise ConfigError(
            f"{cfg.data.train}: {n_patches} patches of {cfg.data.patch} px, fewer than one "
            f"batch of {cfg.train.batch_size}"
        )
    return steps


def planned_steps(cfg: Config, n_patches: int) -> int:
    """The optimiser steps :func:`train` runs in all on ``n_patches`` training patches:
    ``train.epochs`` x :func:`steps_per_epoch`, capped by ``train.max_steps``. :func:`train`
    stops at this global step (a resumed run too), and progress reports count up to it."""
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
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=cfg.train.gamma)
    return opt, sched


# --- distributed -------------------------------------------------------------------------


def dist_info() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) without."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


def pick_device(setting: str, local_rank: int = 0) -> torch.device:
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("train.device is cuda, but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _init_distributed(device: torch.device, world: int) -> bool:
    """Join torchrun's process group; True if this call created it (and must end it)."""
    if world <= 1 or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def _mean_across(value: torch.Tensor, distributed: bool) -> float:
    value = value.detach()
    if distributed:
        value = value.clone()
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return float(value)


# --- checkpoints -------------------------------------------------------------------------


def atomic_save(obj: dict, path: Path) -> None:
    """``torch.save`` through :func:`derain_lib.fsutil.atomic_path` (temp file, fsync, rename)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": [version, list(internal), gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _state_dict(model: nn.Module) -> dict:
    """CPU, contiguous tensors (channels_last weights saved in the standard layout)."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def model_file(cfg: Config, model: nn.Module, **extra: object) -> dict:
    """A dict :func:`derain_lib.weights.load_model` reads, plus ``extra`` keys."""
    return {
        "format": OUR_FORMAT,
        "model": cfg.model.name,
        "model_kwargs": dict(cfg.model.kwargs),
        "model_config": model_config(model),
        "state_dict": _state_dict(model),
        "config": cfg.to_dict(),
        "config_hash": config_hash(cfg),
        **extra,
    }


def _step_of(path: Path) -> int:
    return int(path.stem.split("-")[1])


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """``checkpoints/step-*.pt`` of a run, newest first."""
    d = Path(run_dir) / CHECKPOINT_DIR
    if not d.is_dir():
        return []
    return sorted(d.glob("step-*.pt"), key=_step_of, reverse=True)


def latest_checkpoint(run_dir: str | Path) -> tuple[Path, dict] | None:
    """The newest readable checkpoint; unreadable ones are renamed ``*.corrupt`` and skipped."""
    for path in list_checkpoints(run_dir):
        try:
            state = read_checkpoint(path)
            if "position" not in state or "optimizer" not in state:
                raise WeightsError(f"{path}: not a training checkpoint (no position)")
            return path, state
        except WeightsError as e:
            print(f"derain: warning: {e}; using the previous checkpoint", file=sys.stderr)
            os.replace(path, path.with_name(path.name + ".corrupt"))
    return None


def _prune(run_dir: Path, keep: int = 2) -> None:
    for old in list_checkpoints(run_dir)[keep:]:
        old.unlink(missing_ok=True)


# --- the log -----------------------------------------------------------------------------


class CsvLog:
    """``log.csv``: one row per step (loss) and one per epoch (validation PSNR/SSIM)."""

    def __init__(self, path: Path, keep_lines: int | None, enabled: bool = True) -> None:
        self.path, self.enabled = path, enabled
        self.lines = 0
        if not enabled:
            return
        lines = path.read_text().splitlines(keepends=True) if path.exists() else []
        lines = lines[: keep_lines or 0] if lines else []
        if not lines:
            lines = [",".join(LOG_FIELDS) + "\n"]
        atomic_write_text(path, "".join(lines))
        self.lines = len(lines)
        self.f = open(path, "a", newline="")  # noqa: SIM115 (open for the whole run)
        self.w = csv.DictWriter(self.f, fieldnames=LOG_FIELDS)

    def write(self, **row: object) -> None:
        if self.enabled:
            self.w.writerow({k: row.get(k, "") for k in LOG_FIELDS})
            self.f.flush()
            self.lines += 1

    def close(self) -> None:
        if self.enabled:
            self.f.close()


# --- training ----------------------------------------------------------------------------


@dataclass
class TrainOutcome:
    model_path: Path
    global_step: int
    epochs_done: int
    elapsed_s: float
    resumed_from: Path | None
    last_val: dict
    world_size: int = 1


def _validate(model: nn.Module, val_set, n: int) -> dict:
    if val_set is None or n <= 0:
        return {}
    r = evaluate(model, val_set, max_images=n, save_images=False)
    return {"val_psnr": r.psnr, "val_ssim": r.ssim}


def train(cfg: Config, run_dir: str | Path, progress: bool = True) -> TrainOutcome:
    """Train ``cfg`` in ``run_dir`` (resuming from its checkpoints); returns the final model file.

    Writes ``log.csv``, ``checkpoints/step-N.pt`` (the last two) and, at the end,
    ``model.pt``. Under ``torchrun`` every process calls this; rank 0 writes the files.
    """
    run_dir = Path(run_dir)
    final = run_dir / FINAL_MODEL
    rank, world, local_rank = dist_info()
    device = pick_device(cfg.train.device, local_rank)
    owns_group = _init_distributed(device, world)
    distributed = world > 1
    t_cfg = cfg.train
    if t_cfg.batch_size % world:
        raise ConfigError(
            f"train.batch_size {t_cfg.batch_size} is not divisible by {world} processes"
        )

    torch.manual_seed(t_cfg.seed)
    np.random.seed(t_cfg.seed % 2**32)
    random.seed(t_cfg.seed)
    model = build_model_from_config(cfg)
    patches = training_patches(cfg, open_data(cfg.data.train, cfg.data.root))
    epoch_steps = steps_per_epoch(cfg, len(patches))
    total = planned_steps(cfg, len(patches))
    val_set = open_data(cfg.data.test, cfg.data.root) if t_cfg.val_images > 0 else None

    opt, sched = make_optimizer(cfg, model)
    epoch, step, g, elapsed_before, log_lines = 0, 0, 0, 0.0, None
    if final.exists():
        try:
            state = read_checkpoint(final)
            return TrainOutcome(
                final,
                int(state.get("global_step", total)),
                int(state.get("epochs_done", 0)),
                float(state.get("elapsed_s", 0.0)),
                None,
                dict(state.get("last_val", {})),
            )
        except WeightsError as e:
            aside = final.with_name(final.name + ".corrupt")
            print(f"derain: warning: {e}; set aside as {aside}, resuming", file=sys.stderr)
            os.replace(final, aside)
    resumed = latest_checkpoint(run_dir)
    if resumed is not None:
        path, state = resumed
        have = state.get("model_config", {})
        config_mismatch(path, str(state.get("model")), have, cfg.model.name, model_config(model))
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        pos = state["position"]
        epoch, step, g = int(pos["epoch"]), int(pos["step"]), int(pos["global_step"])
        elapsed_before, log_lines = float(state["elapsed_s"]), int(state["log_lines"])
        last_val = dict(state.get("last_val", {}))
    else:
        last_val = {}

    model.to(device)
    if t_cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    net = nn.parallel.DistributedDataParallel(model) if distributed else model
    main_proc = rank == 0
    run_dir.mkdir(parents=True, exist_ok=True)
    log = CsvLog(run_dir / "log.csv", log_lines, enabled=main_proc)
    use_bf16 = t_cfg.bf16
    bar = tqdm(
        total=total,
        initial=g,
        disable=not (progress and main_proc),
        unit="step",
        desc=f"train {cfg.name}/{cfg.dataset}",
    )

    t_start = time.perf_counter()

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - t_start

    def checkpoint() -> None:
        if main_proc:
            state = model_file(
                cfg,
                model,
                optimizer=opt.state_dict(),
                scheduler=sched.state_dict(),
                rng=_rng_state(),
                position={"epoch": epoch, "step": step, "global_step": g},
                log_lines=log.lines,
                elapsed_s=elapsed(),
                last_val=last_val,
            )
            atomic_save(state, run_dir / CHECKPOINT_DIR / f"step-{g:08d}.pt")
            _prune(run_dir)

    try:
        while g < total:
            batches = EpochBatches(
                len(patches), t_cfg.batch_size, t_cfg.seed, epoch, step, rank, world
            )
            loader = torch.utils.data.DataLoader(
                patches, batch_sampler=batches, num_workers=cfg.data.workers
            )
            t0 = time.perf_counter()
            for rainy, clean in loader:
                rainy, clean = rainy.to(device), clean.to(device)
                if t_cfg.channels_last:
                    rainy = rainy.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, torch.bfloat16, enabled=use_bf16):
                    outputs = net(rainy)
                loss = stage_loss(outputs, clean, t_cfg.loss)
                value = _mean_across(loss, distributed)
                if not math.isfinite(value):
                    last = list_checkpoints(run_dir)
                    raise TrainingDiverged(
                        f"step {g + 1} (epoch {epoch + 1}): the {t_cfg.loss} loss is {value}; "
                        f"training stopped. Last good checkpoint: "
                        f"{last[0] if last else 'none (diverged before the first)'}"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step, g = step + 1, g + 1
                now = time.perf_counter()
                speed = t_cfg.batch_size / max(now - t0, 1e-9)
                t0 = now
                log.write(
                    epoch=epoch + 1,
                    step=g,
                    loss=f"{value:.6g}",
                    lr=sched.get_last_lr()[0],
                    patches_per_s=f"{speed:.2f}",
                    elapsed_s=f"{elapsed():.2f}",
                )
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}", patches_s=f"{speed:.1f}")
                end_of_epoch, done = step == epoch_steps, g >= total
                if end_of_epoch or done:
                    break
                if g % t_cfg.checkpoint_every == 0:
                    checkpoint()
            if step == epoch_steps:
                epoch, step = epoch + 1, 0
                sched.step()
            if main_proc:
                last_val = _validate(model, val_set, t_cfg.val_images)
                if last_val:
                    log.write(
                        epoch=epoch if step == 0 else epoch + 1,
                        step=g,
                        val_psnr=f"{last_val['val_psnr']:.4f}",
                        val_ssim=f"{last_val['val_ssim']:.5f}",
                        elapsed_s=f"{elapsed():.2f}",
                    )
            checkpoint()
        if main_proc:
            atomic_save(
                model_file(
                    cfg,
                    model,
                    global_step=g,
                    epochs_done=epoch,
                    elapsed_s=elapsed(),
                    last_val=last_val,
                ),
                final,
            )
    finally:
        bar.close()
        log.close()
    if distributed:
        dist.barrier()
    if owns_group:
        dist.destroy_process_group()
    resumed_from = resumed[0] if resumed else None
    return TrainOutcome(final, g, epoch, elapsed(), resumed_from, last_val, world)
