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
    log_probs = torch.log_softmax(logits, dim=1)
    annotated = annotated.detach().to(device="cpu", dtype=torch.bool).clone()
    annotated[:, 0] = True
    if bool(annotated.all()):
        return log_probs
    # Only partially annotated cases pay for the merge: it costs several passes over all channels.
    rows = []
    for row, claimed in zip(log_probs, annotated, strict=True):
        if bool(claimed.all()):
            rows.append(row)
            continue
        group = ~claimed
        group[0] = True
        merged = torch.logsumexp(row[group.to(row.device)], dim=0, keepdim=True)
        organs = row[1:].masked_fill(~claimed[1:].to(row.device).view(-1, 1, 1, 1), float("-inf"))
        rows.append(torch.cat([merged, organs]))
    return torch.stack(rows)


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
    classes = logits.shape[1]
    log_probs = marginal_log_probabilities(logits, annotated)
    # A label id the case does not claim to annotate is background to the loss (and never an infinite
    # cross-entropy): a dataset.json that forgets an organ only weakens its supervision.
    known = annotated.to(device=target.device, dtype=torch.bool).clone()
    known[:, 0] = True
    target = target * known.gather(1, target.flatten(1)).view_as(target)
    at_target = log_probs.gather(1, target[:, None])
    cross_entropy = -at_target.mean()
    # Batch Dice: sums over cases and voxels. Unannotated classes have probability 0 and no label voxel,
    # so a case adds nothing to a class it does not annotate. The intersection adds each voxel's
    # probability of its own label to that label's sum, which avoids a one-hot copy of the label.
    labels = target.flatten()
    intersection = log_probs.new_zeros(classes).index_add(0, labels, at_target.exp().flatten())
    label_voxels = torch.bincount(labels, minlength=classes).to(log_probs.dtype)
    total = log_probs.exp().sum((0, *range(2, logits.dim()))) + label_voxels
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
