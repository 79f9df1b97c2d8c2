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

The input pipeline keeps a GPU busy: the training images are decoded once
(:class:`~derain_lib.data.patches.DecodedPatchSet`: the same patches in the same order as
:class:`~derain_lib.data.patches.PatchSet`), one DataLoader serves the whole run (its
workers persist across epochs; ``data.workers: auto`` starts several on CUDA, none on the
CPU), batches go through pinned memory with non-blocking copies. On CUDA, training uses
TF32 and channels_last by default (``train.tf32``, ``train.channels_last``) and bf16
autocast when asked (``train.bf16``); what was used is in :attr:`TrainOutcome.setup`.

:func:`train` is three steps: :func:`resume` (the position and states of the last
checkpoint), :meth:`Loop.epoch` (optimiser steps to the end of an epoch or of the run)
and :meth:`Loop.checkpoint`.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from .config import Config, ConfigError, config_hash
from .data.datasets import PairedDataset
from .data.patches import DecodedPatchSet
from .data.sources import open_data
from .device import resolve_device
from .errors import DerainError
from .evaluate import evaluate
from .fsutil import atomic_path, atomic_write_text
from .losses import stage_losses
from .models import build_model
from .weights import OUR_FORMAT, WeightsError, config_mismatch, model_config, read_checkpoint

if TYPE_CHECKING:  # the tensorboard extra
    from torch.utils.tensorboard import SummaryWriter

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


class RunBatches:
    """Patch indices of the rest of a run, batch by batch: :class:`EpochBatches` of epoch
    ``epoch`` from ``step`` on, then of the next epochs, ``count`` batches in all (one
    batch sampler for the whole run, so one DataLoader and its workers serve every epoch)."""

    def __init__(
        self,
        n: int,
        batch: int,
        seed: int,
        epoch: int,
        step: int,
        count: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.n, self.batch, self.seed, self.epoch, self.step = n, batch, seed, epoch, step
        self.count, self.rank, self.world = count, rank, world

    def __len__(self) -> int:
        return max(0, self.count)

    def __iter__(self) -> Iterator[list[int]]:
        left, epoch, step = self.count, self.epoch, self.step
        while left > 0:
            for b in EpochBatches(
                self.n, self.batch, self.seed, epoch, step, self.rank, self.world
            ):
                if left == 0:
                    return
                yield b
                left -= 1
            epoch, step = epoch + 1, 0


def training_patches(cfg: Config, train_data: PairedDataset) -> DecodedPatchSet:
    """The training patches ``cfg.data`` cuts from ``train_data`` (its opened training set);
    images are decoded when the first patch is asked for (or :meth:`~DecodedPatchSet.decode`)."""
    d = cfg.data
    return DecodedPatchSet(train_data, d.patch, d.stride, d.hflip)


def auto_workers(device: torch.device, cpus: int | None = None, local_world: int = 1) -> int:
    """``data.workers: auto``: no worker on the CPU (the cores train); on CUDA this
    process's share of the cores less one, at most 8 (enough to keep one GPU busy:
    benchmarks/gpu_check.py)."""
    if device.type != "cuda":
        return 0
    cpus = os.cpu_count() if cpus is None else cpus
    return max(1, min(8, (cpus or 1) // max(1, local_world) - 1))


def training_setup(cfg: Config, device: torch.device) -> dict:
    """What the run trains with on ``device``: ``workers``, ``pin_memory``,
    ``channels_last``, ``tf32``, ``bf16`` (``auto`` settings resolved: on CUDA only)."""
    t, on_cuda = cfg.train, device.type == "cuda"
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    workers = cfg.data.workers
    return {
        "device": str(device),
        "workers": auto_workers(device, local_world=local_world) if workers == "auto" else workers,
        "pin_memory": on_cuda,
        "channels_last": on_cuda if t.channels_last == "auto" else bool(t.channels_last),
        "tf32": on_cuda if t.tf32 == "auto" else bool(t.tf32),
        "bf16": bool(t.bf16),
    }


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
    """``train.device`` to a device (:func:`~derain_lib.device.resolve_device`: ``auto`` and
    ``cuda`` take this process's GPU under torchrun)."""
    try:
        return resolve_device(setting, local_rank)
    except DerainError as e:
        raise ConfigError(f"train.device: {e}") from None


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
    """``torch.save`` through :func:`derain_lib.fsutil.atomic_path` (temp file, fsync, rename).
    A write that fails (a full disk: torch's writer raises RuntimeError) is one line naming
    the file; the last checkpoint stays, so the run resumes from it."""
    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
    except RuntimeError as e:  # PytorchStreamWriter: "file write failed" (no space left)
        why = "no space left on the device?" if "write" in str(e) else str(e).splitlines()[0]
        raise DerainError(
            f"{path}: cannot write the checkpoint ({why}); the last one is kept: free space "
            "and run the same command again to resume from it"
        ) from None


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


#: TensorBoard's folder in a run, beside ``log.csv`` (written when tensorboard is installed).
TENSORBOARD_DIR = "tensorboard"
#: The ``log.csv`` fields TensorBoard shows, under these tags.
TENSORBOARD_TAGS = {"loss": "loss/total", "lr": "learning_rate", "val_psnr": "val/psnr",
                    "val_ssim": "val/ssim", "patches_per_s": "patches_per_s"}  # fmt: skip


def tensorboard_writer(run_dir: Path) -> SummaryWriter | None:
    """A ``SummaryWriter`` on ``run_dir/tensorboard`` when tensorboard is installed (the
    ``tensorboard`` extra), else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # raises without tensorboard
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / TENSORBOARD_DIR))


class CsvLog:
    """``log.csv``: one row per step (loss) and one per epoch (validation PSNR/SSIM); the
    same scalars, and the loss of each stage, for TensorBoard beside it when installed."""

    def __init__(
        self, path: Path, keep_lines: int | None, enabled: bool = True, tb: SummaryWriter = None
    ) -> None:
        self.path, self.enabled, self.tb = path, enabled, tb
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

    def write(self, stages: list | None = None, **row: object) -> None:
        """One row; ``stages``: each stage's loss (TensorBoard only)."""
        if self.enabled:
            self.w.writerow({k: row.get(k, "") for k in LOG_FIELDS})
            self.f.flush()
            self.lines += 1
        if self.tb is not None:
            step = int(row["step"])
            for field, tag in TENSORBOARD_TAGS.items():
                if row.get(field, "") != "":
                    self.tb.add_scalar(tag, float(row[field]), step)
            for k, value in enumerate(stages or [], 1):
                self.tb.add_scalar(f"loss/stage_{k}", float(value), step)

    def close(self) -> None:
        if self.enabled:
            self.f.close()
        if self.tb is not None:
            self.tb.close()


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
    setup: dict = field(default_factory=dict)  # training_setup(): what the run trained with


def _validate(model: nn.Module, val_set, n: int) -> dict:
    if val_set is None or n <= 0:
        return {}
    r = evaluate(model, val_set, max_images=n, save_images=False)
    return {"val_psnr": r.psnr, "val_ssim": r.ssim}


@dataclass
class Position:
    """Where a run stands: epoch and step in it, global step, time trained, lines of
    ``log.csv`` written, the last validation scores."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    elapsed_s: float = 0.0
    log_lines: int | None = None
    last_val: dict = field(default_factory=dict)


def finished(final: Path) -> TrainOutcome | None:
    """The outcome of a run whose ``model.pt`` exists (None: not finished; an unreadable
    one is set aside as ``*.corrupt``, so the run resumes)."""
    if not final.exists():
        return None
    try:
        state = read_checkpoint(final)
    except WeightsError as e:
        aside = final.with_name(final.name + ".corrupt")
        print(f"derain: warning: {e}; set aside as {aside}, resuming", file=sys.stderr)
        os.replace(final, aside)
        return None
    return TrainOutcome(
        final,
        int(state.get("global_step", 0)),
        int(state.get("epochs_done", 0)),
        float(state.get("elapsed_s", 0.0)),
        None,
        dict(state.get("last_val", {})),
        setup=dict(state.get("training_setup", {})),
    )


def resume(
    cfg: Config, run_dir: Path, model: nn.Module, opt, sched
) -> tuple[Position, Path | None]:
    """The resume step: the newest readable checkpoint's model, optimiser, scheduler and
    RNG states loaded, and its position; a fresh :class:`Position` without one."""
    found = latest_checkpoint(run_dir)
    if found is None:
        return Position(), None
    path, state = found
    have = state.get("model_config", {})
    config_mismatch(path, str(state.get("model")), have, cfg.model.name, model_config(model))
    model.load_state_dict(state["state_dict"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    pos = state["position"]
    return Position(
        int(pos["epoch"]),
        int(pos["step"]),
        int(pos["global_step"]),
        float(state["elapsed_s"]),
        int(state["log_lines"]),
        dict(state.get("last_val", {})),
    ), path


@dataclass
class Loop:
    """One run's training state between steps: what :meth:`epoch` and :meth:`checkpoint`
    work on."""

    cfg: Config
    run_dir: Path
    model: nn.Module
    net: nn.Module
    opt: torch.optim.Optimizer
    sched: object
    device: torch.device
    setup: dict
    pos: Position
    epoch_steps: int
    total: int
    log: CsvLog
    bar: tqdm
    main_proc: bool
    distributed: bool
    t_start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return self.pos.elapsed_s + time.perf_counter() - self.t_start

    def checkpoint(self) -> None:
        """The checkpoint step: ``checkpoints/step-N.pt`` written atomically (rank 0), the
        last two kept."""
        if not self.main_proc:
            return
        p = self.pos
        state = model_file(
            self.cfg,
            self.model,
            optimizer=self.opt.state_dict(),
            scheduler=self.sched.state_dict(),
            rng=_rng_state(),
            position={"epoch": p.epoch, "step": p.step, "global_step": p.global_step},
            log_lines=self.log.lines,
            elapsed_s=self.elapsed(),
            last_val=p.last_val,
            training_setup=self.setup,
        )
        atomic_save(state, self.run_dir / CHECKPOINT_DIR / f"step-{p.global_step:08d}.pt")
        _prune(self.run_dir)

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.device, non_blocking=True)
        if self.setup["channels_last"]:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def epoch(self, batches: Iterator) -> None:
        """The epoch step: optimiser steps from ``batches`` until the epoch or the run
        ends (a checkpoint every ``train.checkpoint_every`` steps on the way), then the
        epoch's end: the LR schedule steps, validation (rank 0) and a checkpoint."""
        t_cfg, p = self.cfg.train, self.pos
        t0 = time.perf_counter()
        for rainy, clean in batches:
            rainy, clean = self._to_device(rainy), self._to_device(clean)
            with torch.autocast(self.device.type, torch.bfloat16, enabled=self.setup["bf16"]):
                outputs = self.net(rainy)
            stages = stage_losses(outputs, clean, t_cfg.loss)
            loss = sum(stages)  # Eq. 13
            value = _mean_across(loss, self.distributed)
            if not math.isfinite(value):
                last = list_checkpoints(self.run_dir)
                raise TrainingDiverged(
                    f"step {p.global_step + 1} (epoch {p.epoch + 1}): the {t_cfg.loss} loss is "
                    f"{value}; training stopped. Last good checkpoint: "
                    f"{last[0] if last else 'none (diverged before the first)'}"
                )
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            p.step, p.global_step = p.step + 1, p.global_step + 1
            now = time.perf_counter()
            speed = t_cfg.batch_size / max(now - t0, 1e-9)
            t0 = now
            self.log.write(
                epoch=p.epoch + 1,
                step=p.global_step,
                loss=f"{value:.6g}",
                lr=self.sched.get_last_lr()[0],
                patches_per_s=f"{speed:.2f}",
                elapsed_s=f"{self.elapsed():.2f}",
                stages=[s.detach() for s in stages],
            )
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{value:.4f}", patches_s=f"{speed:.1f}")
            if p.step == self.epoch_steps or p.global_step >= self.total:
                break
            if p.global_step % t_cfg.checkpoint_every == 0:
                self.checkpoint()
        if p.step == self.epoch_steps:
            p.epoch, p.step = p.epoch + 1, 0
            self.sched.step()

    def end_of_epoch(self, val_set) -> None:
        """Validation on rank 0 (a row of ``log.csv``), then a checkpoint."""
        p = self.pos
        if self.main_proc:
            p.last_val = _validate(self.model, val_set, self.cfg.train.val_images)
            if p.last_val:
                self.log.write(
                    epoch=p.epoch if p.step == 0 else p.epoch + 1,
                    step=p.global_step,
                    val_psnr=f"{p.last_val['val_psnr']:.4f}",
                    val_ssim=f"{p.last_val['val_ssim']:.5f}",
                    elapsed_s=f"{self.elapsed():.2f}",
                )
        self.checkpoint()


def data_loader(
    patches: DecodedPatchSet, sampler: RunBatches, setup: dict
) -> torch.utils.data.DataLoader:
    """One loader for the rest of the run: images decoded first (workers share them),
    ``setup["workers"]`` persistent workers, pinned memory on CUDA."""
    patches.decode()
    workers = int(setup["workers"])
    return torch.utils.data.DataLoader(
        patches,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=bool(setup["pin_memory"]),
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )


@contextlib.contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul


def train(cfg: Config, run_dir: str | Path, progress: bool = True) -> TrainOutcome:
    """Train ``cfg`` in ``run_dir`` (resuming from its checkpoints); returns the final model file.

    Writes ``log.csv``, ``checkpoints/step-N.pt`` (the last two) and, at the end,
    ``model.pt``. Under ``torchrun`` every process calls this; rank 0 writes the files.
    A finished run returns at once, before any process group is joined; a process group
    this call creates is ended on every way out.
    """
    run_dir = Path(run_dir)
    done = finished(run_dir / FINAL_MODEL)
    if done is not None:
        return done
    rank, world, local_rank = dist_info()
    device = pick_device(cfg.train.device, local_rank)
    owns_group = _init_distributed(device, world)
    try:
        return _train(cfg, run_dir, device, rank, world, progress)
    finally:
        if owns_group:
            dist.destroy_process_group()


def _train(
    cfg: Config, run_dir: Path, device: torch.device, rank: int, world: int, progress: bool
) -> TrainOutcome:
    t_cfg, distributed, main_proc = cfg.train, world > 1, rank == 0
    if t_cfg.batch_size % world:
        raise ConfigError(
            f"train.batch_size {t_cfg.batch_size} is not divisible by {world} processes"
        )
    # before seeding: importing tensorboard draws from the random generators
    tb = tensorboard_writer(run_dir) if main_proc else None
    torch.manual_seed(t_cfg.seed)
    np.random.seed(t_cfg.seed % 2**32)
    random.seed(t_cfg.seed)
    model = build_model_from_config(cfg)
    patches = training_patches(cfg, open_data(cfg.data.train, cfg.data.root))
    epoch_steps = steps_per_epoch(cfg, len(patches))
    total = planned_steps(cfg, len(patches))
    val_set = open_data(cfg.data.test, cfg.data.root) if t_cfg.val_images > 0 else None
    opt, sched = make_optimizer(cfg, model)
    pos, resumed_from = resume(cfg, run_dir, model, opt, sched)

    setup = training_setup(cfg, device)
    model.to(device)
    if setup["channels_last"]:
        model.to(memory_format=torch.channels_last)
    net = nn.parallel.DistributedDataParallel(model) if distributed else model
    run_dir.mkdir(parents=True, exist_ok=True)
    log = CsvLog(run_dir / "log.csv", pos.log_lines, enabled=main_proc, tb=tb)
    bar = tqdm(
        total=total,
        initial=pos.global_step,
        disable=not (progress and main_proc),
        unit="step",
        desc=f"train {cfg.name}/{cfg.dataset}",
    )
    loop = Loop(
        cfg, run_dir, model, net, opt, sched, device, setup, pos, epoch_steps, total, log, bar,
        main_proc, distributed,
    )  # fmt: skip
    sampler = RunBatches(
        len(patches), t_cfg.batch_size, t_cfg.seed, pos.epoch, pos.step,
        total - pos.global_step, rank, world,
    )  # fmt: skip
    try:
        with _tf32(setup["tf32"]):
            batches = iter(data_loader(patches, sampler, setup))
            while pos.global_step < total:
                loop.epoch(batches)
                loop.end_of_epoch(val_set)
        if main_proc:
            final = model_file(
                cfg,
                model,
                global_step=pos.global_step,
                epochs_done=pos.epoch,
                elapsed_s=loop.elapsed(),
                last_val=pos.last_val,
                training_setup=setup,
            )
            atomic_save(final, run_dir / FINAL_MODEL)
    finally:
        bar.close()
        log.close()
    if distributed:
        dist.barrier()
    return TrainOutcome(
        run_dir / FINAL_MODEL, pos.global_step, pos.epoch, loop.elapsed(), resumed_from,
        pos.last_val, world, setup,
    )  # fmt: skip
