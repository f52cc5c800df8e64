"""The training loop, in one function a reader can hold in their head (``fit``).

    build the network, optimizer and scaler, restored from a checkpoint when resuming
    for each epoch until the epochs or the time budget run out:
        train_epoch: next batch (prepared in a thread), learning rate, forward, Dice + CE over the
            deep-supervision outputs, backward, clip gradients at 12, SGD step
        validate on the fixed patches; log; checkpoint "latest" (and "best" when the EMA of the mean
            pseudo-Dice improved)
    checkpoint "final"; record every rank's weight digest (DDP keeps them bitwise equal)

Everything that sets the run up (cache, splits, folders, devices, whether to resume) lives in
``training.run``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from amoseg.model.checkpoint import (
    Checkpoint,
    checkpoint_path,
    restore_rng_states,
    rng_states,
    save_checkpoint,
    weights_digest,
)
from amoseg.model.network import build_training_network, unwrap
from amoseg.planning.plan import NetworkTopology, Plan
from amoseg.training import distributed
from amoseg.training.augment import Compose, nnunet_augmentation
from amoseg.training.batch import Batch
from amoseg.training.config import TrainConfig
from amoseg.training.dataset import CacheCase
from amoseg.training.loader import BatchStream, PatchSource
from amoseg.training.log import (
    epoch_record,
    plot_curves,
    plot_organ_curves,
    print_epoch,
    progress_bar,
    slow_step_warning,
    write_log,
)
from amoseg.training.loss import deep_supervision_loss
from amoseg.training.optim import (
    autocast_dtype,
    make_optimizer,
    make_scaler,
    poly_lr,
    set_lr,
    training_progress,
)
from amoseg.training.validation import validate, validation_requests


@dataclass(frozen=True)
class TrainingSetup:
    """What one fold's training needs; made by ``training.run``.

    Attributes:
        plan: the plan (its cache holds the cases).
        config: the training settings.
        topology: the network's constructor arguments as trained.
        train_cases, val_cases: the fold's cases.
        fold_dir: where checkpoints and logs go (rank 0 writes).
        device: the training device of this rank.
        context: DDP rank and world size.
        labels: class id (str) -> organ name, stored in every checkpoint.
        dataset: dataset.json-like label map, stored in every checkpoint.
        progress: show a progress bar and per-epoch lines (rank 0).
    """

    plan: Plan
    config: TrainConfig
    topology: NetworkTopology
    train_cases: list[CacheCase]
    val_cases: list[CacheCase]
    fold_dir: Path
    device: torch.device
    context: distributed.Context
    labels: dict[str, str]
    dataset: dict[str, Any]
    progress: bool = True


@dataclass
class TrainingState:
    """What changes as training goes, besides weights and optimizer."""

    epoch: int = 0
    iteration: int = 0
    elapsed_seconds: float = 0.0
    ema_dice: float | None = None
    best_ema_dice: float | None = None
    history: list[dict] = field(default_factory=list)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> TrainingState:
        return cls(
            epoch=checkpoint.epoch,
            iteration=checkpoint.iteration,
            elapsed_seconds=checkpoint.elapsed_seconds,
            ema_dice=checkpoint.ema_dice,
            best_ema_dice=checkpoint.best_ema_dice,
            history=[dict(record) for record in checkpoint.history],
        )


#: Steps at the start of an epoch left out of the time compared with the plan's step.
SETTLING_STEPS = 2


@dataclass(frozen=True)
class EpochStats:
    """One epoch's training half: mean loss over its steps and ranks, the last learning rate, the steps
    done and their wall time (batches waited for included), and whether the time budget ran out."""

    train_loss: float
    lr: float
    steps: int
    out_of_time: bool
    seconds: float
    settled_seconds: float = math.nan

    @property
    def seconds_per_step(self) -> float:
        """After the epoch's first ``SETTLING_STEPS`` (allocation, the loader's start, compiling), which
        would make a short epoch look slow; the whole epoch when it had no more steps than those."""
        if self.steps > SETTLING_STEPS and not math.isnan(self.settled_seconds):
            return self.settled_seconds / (self.steps - SETTLING_STEPS)
        return self.seconds / self.steps if self.steps else math.nan


@dataclass(frozen=True)
class TrainResult:
    """How a fold's training ended.

    Attributes:
        fold_dir: the fold's folder.
        epochs, iterations: done in all (a resumed run counts the earlier part).
        mean_pseudo_dice: mean over organs of the last validation's pseudo-Dice.
        pseudo_dice: organ name -> last pseudo-Dice (None: not scored).
        best_ema_dice: best EMA of the mean pseudo-Dice (picked ``checkpoint_best``).
        elapsed_seconds: training time, validation included.
        stopped_by: "epochs", "time budget" or "already finished".
    """

    fold_dir: Path
    epochs: int
    iterations: int
    mean_pseudo_dice: float
    pseudo_dice: dict[str, float | None]
    best_ema_dice: float | None
    elapsed_seconds: float
    stopped_by: str

    @classmethod
    def of(cls, fold_dir: Path, state: TrainingState, stopped_by: str) -> TrainResult:
        last = state.history[-1] if state.history else {}
        mean = last.get("mean_pseudo_dice")
        return cls(
            fold_dir=fold_dir,
            epochs=state.epoch,
            iterations=state.iteration,
            mean_pseudo_dice=math.nan if mean is None else mean,
            pseudo_dice=dict(last.get("pseudo_dice", {})),
            best_ema_dice=state.best_ema_dice,
            elapsed_seconds=state.elapsed_seconds,
            stopped_by=stopped_by,
        )


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    batch: Batch,
    dtype: torch.dtype | None,
    clip_norm: float,
) -> torch.Tensor:
    """One SGD step on a batch; returns the loss (detached, on the device)."""
    optimizer.zero_grad(set_to_none=True)
    autocast = torch.autocast(batch.image.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    with autocast:
        outputs = model(batch.image)
    loss = deep_supervision_loss([output.float() for output in outputs], batch.label, batch.annotated)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def fit(setup: TrainingSetup, resume_from: Checkpoint | None = None) -> TrainResult:
    """Train one fold (or continue from a checkpoint) and write its log, curves and checkpoints."""
    config, context = setup.config, setup.context
    show = setup.progress and context.is_main
    model, optimizer, scaler, state = build(setup, resume_from)
    trained = wrap(model, setup)
    dtype = autocast_dtype(setup.device, config.amp)
    augmentation = (
        nnunet_augmentation(setup.plan.patch_size, setup.plan.target_spacing_mm, config.mirror_axes)
        if config.augment
        else None
    )
    # On the CPU the loader thread augments while the network runs; on a GPU the batch goes there first.
    in_loader = augmentation is not None and setup.device.type == "cpu"
    val_requests = validation_requests(
        setup.val_cases,
        setup.plan.patch_size,
        config.val_patches_per_case,
        config.max_val_patches,
        config.seed,
        config.foreground_fraction,
    )

    def save(*names: str) -> None:
        if context.is_main:
            # One record (state dicts, generator states) under each name.
            content = checkpoint(setup, model, optimizer, scaler, state, names[0])
            for name in names:
                save_checkpoint(
                    checkpoint_path(setup.fold_dir, name), dataclasses.replace(content, name=name)
                )

    stopped_by, first_epoch = "epochs", True
    started = time.perf_counter() - state.elapsed_seconds
    source = patch_source(setup, augmentation if in_loader else None)
    with BatchStream(source, start=state.iteration) as stream, progress_bar(show) as bar:
        while state.epoch < config.epochs:
            epoch_start = time.perf_counter()
            stats = train_epoch(
                trained, optimizer, scaler, stream, state, started, setup,
                None if in_loader else augmentation, dtype, bar,
            )  # fmt: skip
            if first_epoch and show and (warning := slow_step_warning(setup.plan, stats.seconds_per_step)):
                bar.console.print(warning, markup=False, highlight=False, soft_wrap=True)
            first_epoch = False
            result = validate(
                unwrap_ddp(trained),
                setup.val_cases,
                val_requests,
                setup.plan.patch_size,
                batch_size(setup),
                setup.plan.num_classes,
                setup.device,
                dtype,
                context,
            )
            state.epoch += 1
            state.elapsed_seconds = time.perf_counter() - started
            improved = update_ema(state, result.mean_dice, config.ema_weight)
            record = epoch_record(
                epoch=state.epoch,
                iteration=state.iteration,
                lr=stats.lr,
                train_loss=stats.train_loss,
                val_loss=result.loss,
                dice=result.dice,
                ema_dice=math.nan if state.ema_dice is None else state.ema_dice,
                epoch_seconds=time.perf_counter() - epoch_start,
                train_seconds=stats.seconds,
                elapsed_seconds=state.elapsed_seconds,
            )
            state.history.append(record)
            if context.is_main:
                write_log(setup.fold_dir, state.history)
                plot_curves(
                    setup.fold_dir, state.history, title=f"{setup.fold_dir.name}: {setup.plan.plan_id}"
                )
                save("latest", "best") if improved else save("latest")
            if show:
                print_epoch(bar, record, config.epochs)
            if stats.out_of_time:
                stopped_by = "time budget"
                break

    digests = distributed.all_gather_strings(weights_digest(unwrap(model)))
    if state.history:
        state.history[-1]["weights_sha256_by_rank"] = digests
    if context.is_main:
        write_log(setup.fold_dir, state.history)
        save("final", "latest")
        plot_organ_curves(setup.fold_dir, state.history, title=f"{setup.fold_dir.name}: {setup.plan.plan_id}")
    return TrainResult.of(setup.fold_dir, state, stopped_by)


def build(
    setup: TrainingSetup, resume_from: Checkpoint | None
) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.amp.GradScaler, TrainingState]:
    """The network, optimizer, scaler and state: fresh (the same initial weights on every rank), or
    as the checkpoint left them, generators included."""
    torch.manual_seed(setup.config.seed)
    model = build_training_network(setup.topology).place(setup.device)
    optimizer = make_optimizer(model, setup.config)
    scaler = make_scaler(setup.device, autocast_dtype(setup.device, setup.config.amp))
    if resume_from is None:
        return model, optimizer, scaler, TrainingState()
    model.network.load_state_dict(resume_from.network)
    optimizer.load_state_dict(resume_from.optimizer)
    if resume_from.scaler:
        scaler.load_state_dict(resume_from.scaler)
    restore_rng_states(resume_from.rng)
    return model, optimizer, scaler, TrainingState.from_checkpoint(resume_from)


def wrap(model: torch.nn.Module, setup: TrainingSetup) -> torch.nn.Module:
    """The module the steps run: compiled when asked, inside DDP when distributed."""
    trained = torch.compile(model) if setup.config.compile else model
    if setup.context.distributed:
        device = setup.device
        trained = torch.nn.parallel.DistributedDataParallel(
            trained, device_ids=[device.index] if device.type == "cuda" else None
        )
    return trained


def batch_size(setup: TrainingSetup) -> int:
    return setup.config.batch_size or setup.plan.batch_size


def patch_source(setup: TrainingSetup, transform: Compose | None) -> PatchSource:
    """This rank's stream of training patches, augmented by ``transform`` in the loader thread."""
    return PatchSource(
        cases=setup.train_cases,
        patch_size=tuple(setup.plan.patch_size),
        batch_size=batch_size(setup),
        num_classes=setup.plan.num_classes,
        foreground_fraction=setup.config.foreground_fraction,
        seed=setup.config.seed,
        rank=setup.context.rank,
        transform=transform,
        pin_memory=setup.device.type == "cuda",
    )


def train_epoch(
    trained: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    stream: BatchStream,
    state: TrainingState,
    started: float,
    setup: TrainingSetup,
    augmentation: Compose | None,
    dtype: torch.dtype | None,
    bar,
) -> EpochStats:
    """One epoch's iterations, or fewer when the time budget runs out (every rank stops together).
    ``augmentation`` is applied here, on the device (None when the loader augments or nothing does)."""
    config, device, context = setup.config, setup.device, setup.context
    trained.train()
    started_epoch = settled = time.perf_counter()
    loss_sum, steps, out_of_time = torch.zeros((), device=device), 0, False
    task = bar.add_task(f"epoch {state.epoch + 1}", total=config.iterations_per_epoch) if bar else None
    lr = poly_lr(config, training_progress(config, state.iteration, state.elapsed_seconds))
    for _ in range(config.iterations_per_epoch):
        batch, generator = next(stream)
        batch = batch.to(device, non_blocking=True)
        if augmentation is not None:
            batch = augmentation(batch, generator)
        lr = poly_lr(config, training_progress(config, state.iteration, state.elapsed_seconds))
        set_lr(optimizer, lr)
        loss_sum += train_step(trained, optimizer, scaler, batch, dtype, config.grad_clip_norm)
        steps += 1
        if steps == SETTLING_STEPS:
            settled = time.perf_counter()
        state.iteration += 1
        state.elapsed_seconds = time.perf_counter() - started
        if bar is not None:
            bar.advance(task)
            if steps % 10 == 1:  # reading the loss waits for the GPU; not every step
                bar.update(task, description=f"epoch {state.epoch + 1} loss {float(loss_sum) / steps:.3f}")
        if config.time_budget_s is not None:
            out_of_time = distributed.broadcast_flag(state.elapsed_seconds >= config.time_budget_s)
            if out_of_time:
                break
    if bar is not None:
        bar.remove_task(task)
    total = float(distributed.all_reduce_sum(loss_sum.detach().double().cpu()))
    return EpochStats(
        train_loss=total / (steps * context.world_size),
        lr=lr,
        steps=steps,
        out_of_time=out_of_time,
        seconds=time.perf_counter() - started_epoch,
        settled_seconds=time.perf_counter() - settled,
    )


def update_ema(state: TrainingState, mean_dice: float, weight: float) -> bool:
    """Fold a validation's mean pseudo-Dice into the EMA; True when the EMA reached a new best."""
    if not math.isnan(mean_dice):
        previous = state.ema_dice
        state.ema_dice = mean_dice if previous is None else weight * previous + (1 - weight) * mean_dice
    improved = state.ema_dice is not None and (
        state.best_ema_dice is None or state.ema_dice > state.best_ema_dice
    )
    if improved:
        state.best_ema_dice = state.ema_dice
    return improved


def checkpoint(
    setup: TrainingSetup,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    state: TrainingState,
    name: str,
) -> Checkpoint:
    """The run as it stands, to be saved under ``name``."""
    return Checkpoint(
        name=name,
        fold=str(setup.config.fold),
        plan=setup.plan,
        topology=setup.topology,
        network=unwrap(model).state_dict(),
        config=setup.config.to_dict(),
        labels=setup.labels,
        dataset=setup.dataset,
        epoch=state.epoch,
        iteration=state.iteration,
        elapsed_seconds=state.elapsed_seconds,
        ema_dice=state.ema_dice,
        best_ema_dice=state.best_ema_dice,
        history=tuple(state.history),
        optimizer=optimizer.state_dict(),
        scaler=scaler.state_dict() if scaler.is_enabled() else {},
        rng=rng_states(),
    )


def unwrap_ddp(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DDP: validation runs on each rank's own copy, with no collective in forward."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
