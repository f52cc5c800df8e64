"""Pseudo-Dice counting with annotated classes respected."""

from __future__ import annotations

import math

import torch

from amoseg.training.metrics import DiceAccumulator, dice_counts, mean_dice


def test_counts_only_annotated_classes_and_absent_classes_have_no_dice():
    reference = torch.zeros((2, 4, 4, 1), dtype=torch.long)
    reference[:, :2, :2] = 1
    prediction = reference.clone()
    prediction[:, 3, 3] = 2  # organ 2 predicted where the reference says background
    annotated = torch.tensor([[True, True, True, False], [True, True, False, False]])
    counts = dice_counts(prediction, reference[:, None], annotated, num_classes=4)
    assert counts[:, 1].tolist() == [8, 0, 0]
    # Case 0 annotates organ 2: a false positive; case 1 does not: not counted at all.
    assert counts[:, 2].tolist() == [0, 1, 0]
    accumulator = DiceAccumulator(4)
    accumulator.add(prediction, reference, annotated)
    dice = accumulator.per_class()
    assert dice[1] == 1.0 and dice[2] == 0.0 and math.isnan(dice[3])
    assert mean_dice(dice) == 0.5
