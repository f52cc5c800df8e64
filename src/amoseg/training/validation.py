"""Validation on a fixed set of patches from the fold's validation cases: loss and pseudo-Dice per organ.

The patches are drawn once from the seed (the same for every epoch, every rank and a resumed run), a
third of each case's patches centred on a foreground class drawn among those the case holds. Under DDP
each rank evaluates every world_size-th patch and the counts are summed over ranks.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from amoseg.training.batch import Batch
from amoseg.training.dataset import CacheCase
from amoseg.training.distributed import SINGLE_PROCESS, Context, all_reduce_sum
from amoseg.training.loss import marginal_dice_ce
from amoseg.training.metrics import DiceAccumulator, mean_dice
from amoseg.training.sampling import PatchRequest, draw_request, load_batch

#: Keeps validation's seed stream apart from the training batches' (seed, rank, iteration).
VALIDATION_STREAM = 2**31 - 1


def validation_requests(
    cases: Sequence[CacheCase],
    patch_size: Sequence[int],
    per_case: int,
    max_total: int,
    seed: int,
    foreground_fraction: float,
) -> list[PatchRequest]:
    """Fixed validation patches: ``per_case`` per case (fewer when ``max_total`` requires), the first
    ``ceil(per_case * foreground_fraction)`` of each case foreground-centred."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, VALIDATION_STREAM]))
    per_case = max(1, min(per_case, max_total // max(1, len(cases))))
    foreground = math.ceil(per_case * foreground_fraction)
    return [
        draw_request(cases, index, patch_size, rng, foreground=number < foreground)
        for index in range(len(cases))
        for number in range(per_case)
    ]


@dataclass(frozen=True)
class ValidationResult:
    """loss: mean marginal Dice + CE of the full-resolution output; dice: per class (NaN: not scored)."""

    loss: float
    dice: list[float]

    @property
    def mean_dice(self) -> float:
        return mean_dice(self.dice)


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    cases: Sequence[CacheCase],
    requests: Sequence[PatchRequest],
    patch_size: Sequence[int],
    batch_size: int,
    num_classes: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
    context: Context = SINGLE_PROCESS,
) -> ValidationResult:
    """Evaluate ``model`` (switched to eval mode and back) on this rank's share of ``requests``; the
    loss and Dice counts are summed over the ranks of ``context``."""
    was_training = model.training
    model.eval()
    accumulator = DiceAccumulator(num_classes)
    loss_sum = torch.zeros(2, dtype=torch.float64)
    mine = list(requests)[context.rank :: context.world_size]
    try:
        for start in range(0, len(mine), batch_size):
            chunk = mine[start : start + batch_size]
            batch = Batch.from_numpy(load_batch(cases, chunk, patch_size, num_classes)).to(device)
            autocast = (
                torch.autocast(device.type, dtype=autocast_dtype)
                if autocast_dtype
                else contextlib.nullcontext()
            )
            with autocast:
                logits = model(batch.image)[0]
            loss = marginal_dice_ce(logits.float(), batch.label, batch.annotated)
            loss_sum += torch.tensor([float(loss) * len(chunk), len(chunk)], dtype=torch.float64)
            accumulator.add(logits.argmax(1), batch.label, batch.annotated)
    finally:
        model.train(was_training)
    accumulator.reduce()
    loss_sum = all_reduce_sum(loss_sum)
    loss = float(loss_sum[0] / loss_sum[1]) if loss_sum[1] > 0 else math.nan
    return ValidationResult(loss=loss, dice=accumulator.per_class())
