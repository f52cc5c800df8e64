"""The training loop, in one function a reader can hold in their head.

    build the network, optimizer, scaler; restore them from a checkpoint when resuming
    for each epoch until the epochs or the time budget run out:
        for each iteration: next batch (prepared in a thread), learning rate, forward, Dice + CE over
            the deep-supervision outputs, backward, clip gradients at 12, SGD step
        validate on the fixed patches; log; checkpoint "latest" (and "best" when the EMA of the mean
        pseudo-Dice improved)
    checkpoint "final"; record every rank's weight digest (DDP keeps them bitwise equal)

Everything that sets the run up (cache, splits, folders, devices, resuming) lives in ``training.run``.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from amoseg import __version__
from amoseg.planning.plan import NetworkTopology, Plan
from amoseg.training import distributed
from amoseg.training.augment import nnunet_augmentation
from amoseg.training.batch import Batch
from amoseg.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    checkpoint_path,
    restore_rng_states,
    rng_states,
    save_checkpoint,
    topology_to_dict,
    weights_digest,
)
from amoseg.training.config import TrainConfig
from amoseg.training.dataset import CacheCase
from amoseg.training.loader import BatchStream, PatchSource
from amoseg.training.log import epoch_record, plot_curves, print_epoch, progress_bar, write_log
from amoseg.training.loss import deep_supervision_loss
from amoseg.training.network import build_training_network, unwrap
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


def fit(setup: TrainingSetup, resume_from: dict[str, Any] | None = None) -> TrainResult:
    """Train one fold (or continue from a checkpoint's content) and write its outputs."""
    config, device, context = setup.config, setup.device, setup.context
    patch_size = tuple(setup.plan.patch_size)
    batch_size = config.batch_size or setup.plan.batch_size
    num_classes = setup.plan.num_classes
    show = setup.progress and context.is_main

    torch.manual_seed(config.seed)  # the same initial weights on every rank
    model = build_training_network(setup.topology).to(device)
    optimizer = make_optimizer(model, config)
    dtype = autocast_dtype(device, config.amp)
    scaler = make_scaler(device, dtype)
    state = TrainingState()
    if resume_from is not None:
        model.network.load_state_dict(resume_from["network"])
        optimizer.load_state_dict(resume_from["optimizer"])
        if resume_from.get("scaler"):
            scaler.load_state_dict(resume_from["scaler"])
        state = TrainingState(
            epoch=int(resume_from["epoch"]),
            iteration=int(resume_from["iteration"]),
            elapsed_seconds=float(resume_from["elapsed_seconds"]),
            ema_dice=resume_from.get("ema_dice"),
            best_ema_dice=resume_from.get("best_ema_dice"),
            history=list(resume_from["history"]),
        )
        restore_rng_states(resume_from["rng"])
    trained = torch.compile(model) if config.compile else model
    if context.distributed:
        trained = torch.nn.parallel.DistributedDataParallel(
            trained, device_ids=[device.index] if device.type == "cuda" else None
        )

    augmentation = (
        nnunet_augmentation(patch_size, setup.plan.target_spacing_mm, config.mirror_axes)
        if config.augment
        else None
    )
    # On the CPU the loader thread augments while the network runs; on a GPU the batch goes there first.
    augment_in_loader = augmentation is not None and device.type == "cpu"
    source = PatchSource(
        cases=setup.train_cases,
        patch_size=patch_size,
        batch_size=batch_size,
        num_classes=num_classes,
        foreground_fraction=config.foreground_fraction,
        seed=config.seed,
        rank=context.rank,
        transform=augmentation if augment_in_loader else None,
        pin_memory=device.type == "cuda",
    )
    val_requests = validation_requests(
        setup.val_cases,
        patch_size,
        config.val_patches_per_case,
        config.max_val_patches,
        config.seed,
        config.foreground_fraction,
    )

    def save(*names: str) -> None:
        if context.is_main:
            content = checkpoint_content(setup, model, optimizer, scaler, state)
            for name in names:
                save_checkpoint(checkpoint_path(setup.fold_dir, name), {**content, "name": name})

    stopped_by = "epochs"
    started = time.perf_counter() - state.elapsed_seconds
    with BatchStream(source, start=state.iteration) as stream, progress_bar(show) as bar:
        while state.epoch < config.epochs:
            epoch_start = time.perf_counter()
            trained.train()
            loss_sum, steps = torch.zeros((), device=device), 0
            task = (
                bar.add_task(f"epoch {state.epoch + 1}", total=config.iterations_per_epoch) if bar else None
            )
            out_of_time = False
            lr = poly_lr(config, training_progress(config, state.iteration, state.elapsed_seconds))
            for _ in range(config.iterations_per_epoch):
                batch, generator = next(stream)
                batch = batch.to(device, non_blocking=True)
                if augmentation is not None and not augment_in_loader:
                    batch = augmentation(batch, generator)
                lr = poly_lr(config, training_progress(config, state.iteration, state.elapsed_seconds))
                set_lr(optimizer, lr)
                loss_sum += train_step(trained, optimizer, scaler, batch, dtype, config.grad_clip_norm)
                steps += 1
                state.iteration += 1
                state.elapsed_seconds = time.perf_counter() - started
                if bar is not None:
                    bar.advance(task)
                    if steps % 10 == 1:  # reading the loss waits for the GPU; not every step
                        bar.update(
                            task, description=f"epoch {state.epoch + 1} loss {float(loss_sum) / steps:.3f}"
                        )
                if config.time_budget_s is not None:
                    out_of_time = distributed.broadcast_flag(state.elapsed_seconds >= config.time_budget_s)
                    if out_of_time:
                        break
            if bar is not None:
                bar.remove_task(task)
            train_loss = float(distributed.all_reduce_sum(loss_sum.detach().double().cpu())) / (
                steps * context.world_size
            )
            result = validate(
                unwrap_ddp(trained),
                setup.val_cases,
                val_requests,
                patch_size,
                batch_size,
                num_classes,
                device,
                dtype,
                context.rank,
                context.world_size,
            )
            state.epoch += 1
            state.elapsed_seconds = time.perf_counter() - started
            improved = update_ema(state, result.mean_dice, config.ema_weight)
            record = epoch_record(
                epoch=state.epoch,
                iteration=state.iteration,
                lr=lr,
                train_loss=train_loss,
                val_loss=result.loss,
                dice=result.dice,
                ema_dice=math.nan if state.ema_dice is None else state.ema_dice,
                epoch_seconds=time.perf_counter() - epoch_start,
                elapsed_seconds=state.elapsed_seconds,
            )
            state.history.append(record)
            if context.is_main:
                write_log(setup.fold_dir, state.history)
                plot_curves(
                    setup.fold_dir, state.history, title=f"{setup.fold_dir.name}: {setup.plan.plan_id}"
                )
                if improved:
                    save("latest", "best")
                else:
                    save("latest")
            if show:
                print_epoch(bar, record, config.epochs)
            if out_of_time:
                stopped_by = "time budget"
                break

    digests = distributed.all_gather_strings(weights_digest(unwrap(model)))
    if state.history:
        state.history[-1]["weights_sha256_by_rank"] = digests
    if context.is_main:
        write_log(setup.fold_dir, state.history)
        save("final", "latest")
    last = state.history[-1] if state.history else {}
    return TrainResult(
        fold_dir=setup.fold_dir,
        epochs=state.epoch,
        iterations=state.iteration,
        mean_pseudo_dice=math.nan if last.get("mean_pseudo_dice") is None else last["mean_pseudo_dice"],
        pseudo_dice=dict(last.get("pseudo_dice", {})),
        best_ema_dice=state.best_ema_dice,
        elapsed_seconds=state.elapsed_seconds,
        stopped_by=stopped_by,
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


def checkpoint_content(
    setup: TrainingSetup,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    state: TrainingState,
) -> dict[str, Any]:
    """Everything a checkpoint holds (see ``training.checkpoint``); tensors and plain values only."""
    return {
        "format": CHECKPOINT_FORMAT,
        "checkpoint_version": CHECKPOINT_VERSION,
        "amoseg_version": __version__,
        "name": "",
        "fold": setup.config.fold,
        "network": unwrap(model).state_dict(),
        "topology": topology_to_dict(setup.topology),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else {},
        "epoch": state.epoch,
        "iteration": state.iteration,
        "elapsed_seconds": state.elapsed_seconds,
        "ema_dice": state.ema_dice,
        "best_ema_dice": state.best_ema_dice,
        "history": state.history,
        "rng": rng_states(),
        "plan": setup.plan.to_dict(),
        "config": setup.config.to_dict(),
        "labels": setup.labels,
        "dataset": setup.dataset,
    }


def unwrap_ddp(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DDP: validation runs on each rank's own copy, with no collective in forward."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
