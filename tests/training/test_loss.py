"""The marginal (partial-label) Dice + CE loss and deep supervision."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from amoseg.training.loss import (
    deep_supervision_loss,
    deep_supervision_weights,
    downsample_label,
    marginal_dice_ce,
    marginal_log_probabilities,
)

C = 16
LIVER, SPLEEN, DUODENUM = 6, 1, 13


def annotated_mask(labels, batch: int = 1) -> torch.Tensor:
    mask = torch.zeros((batch, C), dtype=torch.bool)
    mask[:, 0] = True
    mask[:, list(labels)] = True
    return mask


def scene(predicted_in_region: int, confidence: float = 12.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Label: liver in one corner, background elsewhere. Prediction: liver on the liver, and
    ``predicted_in_region`` confidently inside a background region (where an unannotated duodenum lies)."""
    target = torch.zeros((1, 1, 6, 6, 4), dtype=torch.uint8)
    target[0, 0, :3, :3] = LIVER
    logits = torch.zeros((1, C, 6, 6, 4))
    logits[0, 0] = confidence
    logits[0, :, :3, :3] = 0
    logits[0, LIVER, :3, :3] = confidence
    region = (0, slice(None), slice(4, 6), slice(4, 6))
    logits[region] = 0
    logits[(0, predicted_in_region, slice(4, 6), slice(4, 6))] = confidence
    return logits, target


def test_unannotated_organ_costs_nothing_but_a_fully_annotated_case_punishes_it():
    partial = annotated_mask([LIVER, SPLEEN])
    full = annotated_mask(range(1, C))
    as_background, target = scene(0)
    as_duodenum, _ = scene(DUODENUM)
    assert marginal_dice_ce(as_duodenum, target, partial) == pytest.approx(
        float(marginal_dice_ce(as_background, target, partial)), abs=1e-6
    )
    punished = float(marginal_dice_ce(as_duodenum, target, full))
    assert punished > float(marginal_dice_ce(as_background, target, full)) + 0.1


def test_gradients_split_between_background_and_unannotated_logits_by_their_probabilities():
    torch.manual_seed(0)
    logits = torch.randn((2, C, 4, 4, 3), requires_grad=True)
    target = torch.randint(0, 3, (2, 1, 4, 4, 3)) * 3  # 0 (background), 3 (left kidney), 6 (liver)
    annotated = annotated_mask([3, 6, SPLEEN], batch=2)
    marginal_dice_ce(logits, target, annotated).backward()
    grad = logits.grad
    unannotated = [label for label in range(1, C) if label not in (3, 6, SPLEEN)]
    for label in unannotated:
        # Marginal model: dL/dz_u = dL/dz_bg * p_u / p_bg, voxel by voxel.
        ratio = torch.exp(logits[:, label] - logits[:, 0]).detach()
        torch.testing.assert_close(grad[:, label], grad[:, 0] * ratio, rtol=1e-4, atol=1e-9)
    # Merging is exact: the group's gradients sum to the gradient of the merged background logit.
    merged = logits.detach().clone()
    group = [0, *unannotated]
    merged_logit = torch.logsumexp(merged[:, group], dim=1, keepdim=True).requires_grad_(True)
    others = merged[:, [SPLEEN, 3, 6]].requires_grad_(True)
    reduced = torch.full_like(merged, -math.inf)
    reduced = torch.cat([merged_logit, reduced[:, 1:]], dim=1).clone()
    reduced[:, [SPLEEN, 3, 6]] = others
    marginal_dice_ce(reduced, target, annotated).backward()
    torch.testing.assert_close(grad[:, group].sum(1, keepdim=True), merged_logit.grad, rtol=1e-4, atol=1e-8)


def test_fully_annotated_case_is_ordinary_softmax_cross_entropy_plus_dice():
    torch.manual_seed(1)
    logits = torch.randn((2, C, 5, 4, 3))
    target = torch.randint(0, C, (2, 1, 5, 4, 3))
    full = annotated_mask(range(1, C), batch=2)
    log_probs = marginal_log_probabilities(logits, full)
    torch.testing.assert_close(log_probs, F.log_softmax(logits, dim=1))
    probabilities = F.softmax(logits, dim=1)
    one_hot = F.one_hot(target[:, 0], C).movedim(-1, 1).float()
    intersection = (probabilities * one_hot).sum((0, 2, 3, 4))
    total = (probabilities + one_hot).sum((0, 2, 3, 4))
    dice = ((2 * intersection + 1e-5) / (total + 1e-5))[1:].mean()
    expected = F.cross_entropy(logits, target[:, 0]) + 1 - dice
    torch.testing.assert_close(marginal_dice_ce(logits, target, full), expected)


def test_a_batch_mixing_full_and_partial_cases_matches_the_merge_written_out():
    torch.manual_seed(3)
    logits = torch.randn((2, C, 4, 3, 3))
    annotated = torch.stack([annotated_mask(range(1, C))[0], annotated_mask([LIVER, SPLEEN])[0]])
    target = torch.zeros((2, 1, 4, 3, 3), dtype=torch.long)
    target[0, 0] = torch.randint(0, C, (4, 3, 3))
    target[1, 0] = torch.tensor([0, LIVER, SPLEEN])[torch.randint(0, 3, (4, 3, 3))]
    # The marginal model for the partial case, from its definition: background absorbs the others.
    expected = F.log_softmax(logits, dim=1)
    group = [label for label in range(C) if label not in (LIVER, SPLEEN)]
    expected[1, 0] = torch.logsumexp(logits[1, group], dim=0) - torch.logsumexp(logits[1], dim=0)
    expected[1, group[1:]] = -math.inf
    torch.testing.assert_close(marginal_log_probabilities(logits, annotated), expected)
    probabilities = expected.exp()
    one_hot = F.one_hot(target[:, 0], C).movedim(-1, 1).float()
    dice = (2 * (probabilities * one_hot).sum((0, 2, 3, 4)) + 1e-5) / (
        (probabilities + one_hot).sum((0, 2, 3, 4)) + 1e-5
    )
    cross_entropy = -expected.gather(1, target).mean()
    torch.testing.assert_close(
        marginal_dice_ce(logits, target, annotated), cross_entropy + 1 - dice[1:].mean()
    )


def test_a_label_the_case_does_not_annotate_counts_as_background_not_infinity():
    logits, target = scene(0)
    target[0, 0, 5, 5, 3] = DUODENUM
    loss = marginal_dice_ce(logits, target, annotated_mask([LIVER]))
    assert math.isfinite(float(loss))


def test_deep_supervision_targets_are_nearest_neighbour_and_weights_halve():
    label = torch.randint(0, C, (2, 1, 8, 8, 4), dtype=torch.uint8)
    small = downsample_label(label, (4, 4, 2))
    reference = F.interpolate(label.float(), size=(4, 4, 2), mode="nearest-exact").to(torch.uint8)
    torch.testing.assert_close(small, reference)
    assert deep_supervision_weights(3) == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    with pytest.raises(ValueError, match="multiple"):
        downsample_label(label, (3, 4, 2))


def test_deep_supervision_loss_weights_each_head():
    torch.manual_seed(2)
    label = torch.randint(0, 3, (1, 1, 8, 8, 4))
    annotated = annotated_mask([1, 2])
    full, half = torch.randn((1, C, 8, 8, 4)), torch.randn((1, C, 4, 4, 2))
    expected = (2 / 3) * marginal_dice_ce(full, label, annotated) + (1 / 3) * marginal_dice_ce(
        half, downsample_label(label, (4, 4, 2)), annotated
    )
    torch.testing.assert_close(deep_supervision_loss([full, half], label, annotated), expected)
