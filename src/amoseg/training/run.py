"""``amoseg train``: set one fold's training up (cache, splits, run folder, device, resuming) and run it.

Run folder::

    RUNS/splits.json                five folds stratified by dataset and modality, made once and reused
    RUNS/fold_<k>/config.json       the TrainConfig
                  plans.json        the plan (the predictor preprocesses with it)
                  dataset.json      label map: names and ids, annotated organs, modalities
                  log.jsonl         one line per epoch
                  curves.png        losses and pseudo-Dice, learning rate, epoch time
                  checkpoint_{latest,best,final}.pt
                  validation.json   whole-case Dice of the final network (training.final_validation)
                  postprocessing.json  organs whose largest component alone is kept when predicting
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amoseg.errors import AmosegError, InputError
from amoseg.labels import ORGAN_BY_ID
from amoseg.model.learned import RULE as LEARNED_RULE
from amoseg.model.learned import learned_from_record, learned_labels
from amoseg.planning.plan import PLANS_FILE, Plan
from amoseg.preprocessing.cache import PlanCache
from amoseg.training.config import TrainConfig
from amoseg.training.dataset import CacheCase, index_cases
from amoseg.training.splits import fold_cases, load_or_make_splits

if TYPE_CHECKING:
    from amoseg.training.trainer import TrainResult

CONFIG_FILE = "config.json"
LABELS_FILE = "dataset.json"
#: Settings a resumed run may change; everything else comes from the interrupted run's checkpoint.
RESUMABLE_CHANGES = ("epochs", "time_budget_s", "device", "compile", "threads")


def class_names(plan: Plan) -> dict[str, str]:
    """Class id (as a string) -> canonical organ name, "0" background: what each output channel is."""
    return {
        str(label): "background" if label == 0 else ORGAN_BY_ID[label].name
        for label in range(plan.num_classes)
        if label == 0 or label in ORGAN_BY_ID
    }


def label_map(plan: Plan, cases: list[CacheCase], train_cases: list[CacheCase]) -> dict[str, Any]:
    """The dataset.json-like record of what the network's channels mean, and which of them the fold
    learned per modality (``amoseg.model.learned``: from its training cases only)."""
    names = {"background": 0}
    names.update(
        {ORGAN_BY_ID[label].name: label for label in range(1, plan.num_classes) if label in ORGAN_BY_ID}
    )
    return {
        "name": plan.dataset,
        "labels": names,
        "num_classes": plan.num_classes,
        "annotated_labels": sorted({label for case in cases for label in case.annotated}),
        "modalities": sorted({case.modality for case in cases}),
        "learned_labels": {modality: list(ids) for modality, ids in learned_labels(train_cases).items()},
        "learned_rule": LEARNED_RULE,
        "plan_id": plan.plan_id,
        "orientation": plan.orientation,
    }


def read_label_map(fold_dir: str | Path) -> dict[str, Any]:
    """A fold folder's ``dataset.json`` (``label_map``'s record).

    Raises:
        InputError: missing, unreadable, or not a JSON object.
    """
    from amoseg.atomic import read_json

    path = Path(fold_dir) / LABELS_FILE
    record = read_json(path, "fold label map")
    if not isinstance(record, dict):
        raise InputError(path, "not a fold's label map (a JSON object)")
    return record


def resolve_device(requested: str):
    """The torch device for "auto", "cpu", "cuda" or "mps" (this rank's GPU under torchrun).

    Raises:
        AmosegError: the requested device is not available here.
    """
    import torch

    from amoseg.training.distributed import context_from_environment

    if requested == "auto":
        requested = (
            "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
        )
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise AmosegError("`device` cuda: no CUDA GPU is available to this torch; use `device` cpu")
        local_rank = context_from_environment().local_rank
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    if requested == "mps" and not torch.backends.mps.is_available():
        raise AmosegError("`device` mps: Apple's MPS backend is not available here; use `device` cpu")
    return torch.device(requested)


def resume_decision(resume: bool, checkpoints: Collection[str], validated: bool) -> str:
    """What ``train`` does with a fold folder, from what the folder holds.

    Args:
        resume: whether the run was asked to continue.
        checkpoints: the names of the checkpoints there ("final", "best", "latest").
        validated: whether the final validation's record is there.

    Returns:
        "start" (from scratch), "continue" (from the latest checkpoint), "validate" (finished, but
        stopped before or during the final validation: run it, then report finished), "finished"
        (nothing to do), or "refuse" (a run is there and continuing it was not asked).
    """
    if not resume:
        return "refuse" if checkpoints else "start"
    if "final" in checkpoints:
        return "finished" if validated else "validate"
    return "continue" if "latest" in checkpoints else "start"


def resumed_config(stored: TrainConfig, changes: Mapping[str, Any]) -> TrainConfig:
    """The interrupted run's settings with the ``RESUMABLE_CHANGES`` given in ``changes``.

    Raises:
        AmosegError: ``changes`` names a setting a resumed run keeps.
    """
    unknown = sorted(set(changes) - set(RESUMABLE_CHANGES))
    if unknown:
        raise AmosegError(
            f"a resumed run keeps its settings ({', '.join(unknown)} given); only "
            f"{', '.join(RESUMABLE_CHANGES)} may change"
        )
    return stored.with_changes(**changes)


def train(
    preprocessed: str | Path,
    plan: str | Path | Plan,
    output: str | Path,
    config: TrainConfig,
    *,
    resume: bool = False,
    resume_changes: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``config.fold`` on the plan's cache in ``preprocessed``; outputs go to ``output/fold_<k>/``.

    Under ``torchrun`` every process calls this; rank 0 writes. With ``resume`` the fold continues from
    its ``checkpoint_latest.pt`` (from scratch when there is none; nothing to do when it has finished)
    with the stored settings, changed only by ``resume_changes`` (keys from ``RESUMABLE_CHANGES``).
    Torch's settings are given back afterwards; on a CPU the C library's allocator keeps freed memory
    for the rest of the process (``backend.keep_freed_memory``).

    Raises:
        AmosegError: no cache for the plan, a case made by another plan, a fold that does not exist or
            has no validation case, a run folder that already holds a run (without ``resume``), or a
            device that is not available.
    """
    from amoseg.model.checkpoint import CHECKPOINT_NAMES, checkpoint_path, read_checkpoint
    from amoseg.model.network import training_topology
    from amoseg.training import distributed
    from amoseg.training.backend import keep_freed_memory, training_backend
    from amoseg.training.final_validation import VALIDATION_FILE
    from amoseg.training.trainer import TrainingSetup, TrainingState, TrainResult, fit

    plan = plan if isinstance(plan, Plan) else Plan.load(plan)
    cases = index_cases(PlanCache.open(preprocessed, plan), plan)
    runs = Path(output)
    context = distributed.context_from_environment()
    fold_dir = runs / f"fold_{config.fold}"
    present = [name for name in CHECKPOINT_NAMES if checkpoint_path(fold_dir, name).is_file()]
    action = resume_decision(resume, present, (fold_dir / VALIDATION_FILE).is_file())
    if action == "refuse":
        raise InputError(
            fold_dir, "already holds a training run; continue it with `resume`, or choose another `output`"
        )
    if action in ("validate", "finished"):
        final = read_checkpoint(checkpoint_path(fold_dir, "final"))
        if action == "validate" and context.is_main:
            stored = TrainConfig.from_dict(final.config)
            val_cases = _split(runs, cases, stored, write=False)[1]
            _validate_fold(fold_dir, stored, val_cases, resolve_device(config.device), progress)
        if progress and context.is_main:
            print(f"{fold_dir} has finished training (checkpoint_final.pt); nothing to resume")
        return TrainResult.of(fold_dir, TrainingState.from_checkpoint(final), "already finished")
    resume_from = None
    if action == "continue":
        latest = checkpoint_path(fold_dir, "latest")
        resume_from = read_checkpoint(latest)
        if resume_from.plan.plan_id != plan.plan_id:
            raise InputError(
                latest,
                f"was trained with plan {resume_from.plan.plan_id}, not {plan.plan_id}; pass that plan",
            )
        config = resumed_config(TrainConfig.from_dict(resume_from.config), resume_changes or {})
    elif resume and progress and context.is_main:
        print(f"No checkpoint in {fold_dir} yet: starting the fold from scratch")

    train_cases, val_cases = _split(runs, cases, config, write=context.is_main)
    topology = training_topology(plan, residual=config.residual, deep_supervision=config.deep_supervision)

    device = resolve_device(config.device)
    if device.type == "cpu":
        keep_freed_memory()
    with training_backend(**_backend_settings(config, device, context)):
        distributed.start(context, device)
        try:
            if context.is_main:
                from amoseg.atomic import remove_stale_temporaries, write_json

                fold_dir.mkdir(parents=True, exist_ok=True)
                # Half-written checkpoints of a killed run (hidden temporaries): never read, only removed.
                remove_stale_temporaries(runs, ["splits"])
                remove_stale_temporaries(fold_dir)
                config.save(fold_dir / CONFIG_FILE)
                plan.save(fold_dir / PLANS_FILE)
                write_json(fold_dir / LABELS_FILE, label_map(plan, cases, train_cases))
            distributed.barrier()
            if progress and context.is_main:
                _announce(plan, config, topology, train_cases, val_cases, device, context, resume_from)
            setup = TrainingSetup(
                plan=plan,
                config=config,
                topology=topology,
                train_cases=train_cases,
                val_cases=val_cases,
                fold_dir=fold_dir,
                device=device,
                context=context,
                labels=class_names(plan),
                dataset=label_map(plan, cases, train_cases),
                progress=progress,
            )
            result = fit(setup, resume_from)
            distributed.barrier()
            if context.is_main:
                # After the barrier the other ranks are free to leave: this uses no collective.
                _validate_fold(fold_dir, config, val_cases, device, progress)
        finally:
            distributed.stop()
    return result


def _split(runs: Path, cases: list[CacheCase], config: TrainConfig, write: bool):
    """The fold's (training, validation) cases from ``runs/splits.json`` (made there when missing)."""
    splits = load_or_make_splits(
        runs, {case.case_id: case.stratum for case in cases}, config.seed, write=write
    )
    train_ids, val_ids = fold_cases(splits, config.fold, config.all_fold_val_cases)
    by_id = {case.case_id: case for case in cases}
    return [by_id[case] for case in train_ids], [by_id[case] for case in val_ids]


def _validate_fold(fold_dir: Path, config: TrainConfig, val_cases: list[CacheCase], device, progress: bool):
    """Final validation of the final checkpoint (validation.json, postprocessing.json).

    Fold "all" trains on its validation cases: their Dice would flatter the model and a postprocessing
    decision made on them would be biased, so it gets neither (copy a cross-validation fold's
    postprocessing.json into it to apply one).
    """
    if str(config.fold) == "all" or not val_cases:
        return
    from amoseg.model.checkpoint import load_network
    from amoseg.training.final_validation import final_validation

    network, checkpoint = load_network(fold_dir, device, checkpoint="final")
    learned = learned_from_record(checkpoint.dataset)
    final_validation(
        fold_dir, network, checkpoint.plan, val_cases, device, progress=progress, learned=learned
    )


def _backend_settings(config: TrainConfig, device, context) -> dict[str, Any]:
    """``training_backend``'s arguments for this run: deterministic on a CPU unless the config says,
    and on a node shared by several CPU processes, its cores divided among them."""
    threads = config.threads
    if threads is None and context.distributed and device.type == "cpu":
        # Processes on one node share its cores; more threads than cores only thrash.
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", context.world_size))
        threads = max(1, (os.cpu_count() or 1) // local_processes)
    deterministic = config.deterministic if config.deterministic is not None else device.type == "cpu"
    return {"deterministic": bool(deterministic), "device_type": device.type, "threads": threads}


def _announce(plan, config, topology, train_cases, val_cases, device, context, resume_from) -> None:
    patch = " x ".join(str(value) for value in plan.patch_size)
    budget = f", time budget {config.time_budget_s:.0f} s" if config.time_budget_s else ""
    where = f"{device}" + (f" x {context.world_size} processes" if context.distributed else "")
    start = f"resuming after epoch {resume_from.epoch}" if resume_from else "starting"
    print(
        f"Training fold {config.fold} of plan {plan.plan_id} on {where}: {len(train_cases)} training and "
        f"{len(val_cases)} validation cases, patch {patch}, batch {config.batch_size or plan.batch_size}, "
        f"{'residual' if topology.res_block else 'plain'} U-Net"
        f"{' with single-convolution blocks' if topology.single_conv_blocks else ''}, {config.epochs} epochs of "
        f"{config.iterations_per_epoch} iterations{budget}; {start}"
    )
