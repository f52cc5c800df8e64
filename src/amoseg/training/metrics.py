"""Pseudo-Dice on validation patches: a pure counting function and an accumulator that sums over DDP ranks.

As nnU-Net's online evaluation: true positives, false positives and false negatives per class are
summed over all validation patches, then Dice = 2 TP / (2 TP + FP + FN) per class. Only classes the
patch's case annotates are counted, so a predicted organ that a partially labelled case leaves
unannotated is neither a false positive nor anything else. A class with no voxel in any reference patch
and none predicted has no Dice (NaN) and is left out of the mean.
"""

from __future__ import annotations

import math

import torch


def dice_counts(
    prediction: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """TP, FP, FN per class for a batch.

    Args:
        prediction: integer (B, x, y, z) predicted label ids.
        target: integer (B, x, y, z) or (B, 1, x, y, z) reference ids.
        annotated: bool (B, C): which classes each case's reference annotates.
        num_classes: C.

    Returns:
        int64 (3, C): rows TP, FP, FN; background's column counts like any other.
    """
    if target.dim() == prediction.dim() + 1:
        target = target[:, 0]
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ")
    counts = torch.zeros((3, num_classes), dtype=torch.int64)
    for sample in range(prediction.shape[0]):
        pred = prediction[sample].flatten().long().cpu()
        ref = target[sample].flatten().long().cpu()
        both = torch.bincount(ref[pred == ref], minlength=num_classes)[:num_classes]
        predicted = torch.bincount(pred, minlength=num_classes)[:num_classes]
        reference = torch.bincount(ref, minlength=num_classes)[:num_classes]
        mask = annotated[sample].cpu().to(torch.int64)
        counts += torch.stack([both, predicted - both, reference - both]) * mask
    return counts


def dice_from_counts(counts: torch.Tensor) -> list[float]:
    """Dice per class from (3, C) counts; NaN where 2 TP + FP + FN is 0."""
    tp, fp, fn = (row.double() for row in counts)
    denominator = 2 * tp + fp + fn
    return [float(2 * t / d) if d > 0 else math.nan for t, d in zip(tp, denominator, strict=True)]


def mean_dice(per_class: list[float], skip_background: bool = True) -> float:
    """Mean over the classes that have a Dice (NaN when none has)."""
    values = [value for index, value in enumerate(per_class) if not (skip_background and index == 0)]
    values = [value for value in values if not math.isnan(value)]
    return sum(values) / len(values) if values else math.nan


class DiceAccumulator:
    """Sums ``dice_counts`` over batches; ``reduce`` adds the other DDP ranks' counts."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.counts = torch.zeros((3, num_classes), dtype=torch.int64)

    def add(self, prediction: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor) -> None:
        self.counts += dice_counts(prediction, target, annotated, self.num_classes)

    def reduce(self) -> None:
        """All-reduce the counts across ranks (a no-op without an initialized process group)."""
        from amoseg.training.distributed import all_reduce_sum

        self.counts = all_reduce_sum(self.counts)

    def per_class(self) -> list[float]:
        return dice_from_counts(self.counts)
