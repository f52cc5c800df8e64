"""Dice + cross-entropy with partial labels (the marginal loss), over deep-supervision outputs.

A case that annotates only some organs stores the others as background, so the label says "background"
where an unannotated organ may well be. The marginal loss (Shi et al., "Marginal loss and exclusion loss
for partially supervised multi-organ segmentation", MedIA 2021) merges the probabilities of the
unannotated organs into background before comparing with the label:

    p_bg' = p_bg + sum(p_u for unannotated u)    (log-sum-exp of their logits, for stability)

so a confident, correct prediction of an unannotated organ costs nothing, and the gradients on the
background logit and on the unannotated logits are split in proportion to their probabilities. A fully
annotated case gives the ordinary softmax cross-entropy and soft Dice. Dice (nnU-Net's: batch Dice, no
background term, smooth 1e-5) runs over the organs annotated in at least one case of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

DICE_SMOOTH = 1e-5


def marginal_log_probabilities(logits: torch.Tensor, annotated: torch.Tensor) -> torch.Tensor:
    """Log-probabilities with unannotated classes merged into background.

    Args:
        logits: (B, C, x, y, z).
        annotated: bool (B, C); column 0 (background) is treated as True whatever it holds.

    Returns:
        float32 (B, C, x, y, z): channel 0 the merged background, annotated organs their own
        log-probability, unannotated organs -inf (probability 0).
    """
    logits = logits.float()
    if annotated.shape != logits.shape[:2]:
        raise ValueError(
            f"annotated {tuple(annotated.shape)} does not match logits {tuple(logits.shape[:2])}"
        )
    annotated = annotated.to(device=logits.device, dtype=torch.bool).clone()
    annotated[:, 0] = True
    mask = annotated.reshape(*annotated.shape, *([1] * (logits.dim() - 2)))
    background_group = ~mask
    background_group[:, 0] = True
    normalizer = torch.logsumexp(logits, dim=1, keepdim=True)
    merged = torch.logsumexp(logits.masked_fill(~background_group, float("-inf")), dim=1, keepdim=True)
    organs = (logits[:, 1:] - normalizer).masked_fill(~mask[:, 1:], float("-inf"))
    return torch.cat([merged - normalizer, organs], dim=1)


def marginal_dice_ce(
    logits: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor, smooth: float = DICE_SMOOTH
) -> torch.Tensor:
    """Cross-entropy plus (1 - soft Dice) under the marginal model; a scalar.

    Args:
        logits: (B, C, x, y, z).
        target: integer (B, 1, x, y, z) or (B, x, y, z) label ids, each either 0 or annotated in its case.
        annotated: bool (B, C).
        smooth: Dice smoothing; a class absent from label and prediction scores (almost) 1.
    """
    if target.dim() == logits.dim():
        target = target[:, 0]
    target = target.long()
    log_probs = marginal_log_probabilities(logits, annotated)
    # A label id the case does not claim to annotate is background to the loss (and never an infinite
    # cross-entropy): a dataset.json that forgets an organ only weakens its supervision.
    known = annotated.to(device=target.device, dtype=torch.bool).clone()
    known[:, 0] = True
    target = target * known.gather(1, target.flatten(1)).view_as(target)
    cross_entropy = -log_probs.gather(1, target[:, None]).mean()
    probabilities = log_probs.exp()
    one_hot = F.one_hot(target, logits.shape[1]).movedim(-1, 1).to(probabilities.dtype)
    spatial = tuple(range(2, logits.dim()))
    # Batch Dice: sums over cases and voxels. Unannotated classes have probability 0 and no label voxel,
    # so a case adds nothing to a class it does not annotate.
    intersection = (probabilities * one_hot).sum(spatial).sum(0)
    total = (probabilities.sum(spatial) + one_hot.sum(spatial)).sum(0)
    dice = (2 * intersection + smooth) / (total + smooth).clamp_min(1e-8)
    scored = annotated.to(device=logits.device, dtype=torch.bool).any(0)
    scored[0] = False
    mean_dice = dice[scored].mean() if bool(scored.any()) else dice.new_tensor(1.0)
    return cross_entropy + (1 - mean_dice)


def deep_supervision_weights(heads: int) -> list[float]:
    """1, 1/2, 1/4, ... for the outputs from full resolution down, normalized to sum 1 (nnU-Net)."""
    raw = [0.5**index for index in range(heads)]
    return [value / sum(raw) for value in raw]


def downsample_label(label: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Nearest-neighbour label at a coarser ``shape`` (x, y, z) that divides its own, as nnU-Net.

    Voxel j of a factor-f axis takes input voxel f j + f // 2 (``nearest-exact``), without interpolating:
    plain strided indexing, so no class is ever invented.
    """
    slices = [slice(None)] * (label.dim() - 3)
    for size, target in zip(label.shape[-3:], shape, strict=True):
        if size % target:
            raise ValueError(f"label shape {tuple(label.shape[-3:])} is not a multiple of {tuple(shape)}")
        factor = size // target
        slices.append(slice(factor // 2, None, factor))
    return label[tuple(slices)]


def deep_supervision_loss(
    outputs: Sequence[torch.Tensor], target: torch.Tensor, annotated: torch.Tensor
) -> torch.Tensor:
    """Weighted marginal Dice + CE over the network's outputs, finest first.

    Args:
        outputs: logits (B, C, x_i, y_i, z_i), full resolution first, each coarser one dividing it.
        target: (B, 1, x, y, z) label ids at full resolution.
        annotated: bool (B, C).
    """
    weights = deep_supervision_weights(len(outputs))
    total = outputs[0].new_zeros((), dtype=torch.float32)
    for weight, output in zip(weights, outputs, strict=True):
        total = total + weight * marginal_dice_ce(
            output, downsample_label(target, output.shape[-3:]), annotated
        )
    return total
