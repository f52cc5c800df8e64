"""Sliding-window prediction in plan space: Gaussian-weighted windows, mirroring, fold averaging.

Works on a preprocessed image (float32 [x, y, z], plan space) and returns class probabilities
(C, x, y, z) on the same grid. Several windows go through the network per forward pass; mirroring
test-time augmentation averages the predictions of every combination of flips over the axes the model
was trained to be mirrored along (none by default: one pass; 8 for all three axes, as nnU-Net's); several
networks (folds) are averaged with equal weight.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from amoseg.inference.sliding_window import gaussian_importance, padding, window_slices, window_starts


def mirror_combinations(axes: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Every subset of ``axes``, the identity first: the flips test-time augmentation averages."""
    axes = tuple(sorted(axes))
    return tuple(
        combination for size in range(len(axes) + 1) for combination in itertools.combinations(axes, size)
    )


@dataclass(frozen=True)
class WindowSettings:
    """How the volume is tiled and augmented.

    Attributes:
        patch_size: window (x, y, z) in voxels; the plan's training patch.
        step: largest distance between window starts, as a fraction of the patch (0.5 = half overlap).
        mirror: average over the flips of each window along ``mirror_axes`` (test-time augmentation).
        mirror_axes: the axes the model was trained to be mirrored along (its ``TrainConfig``).
        windows_per_batch: windows per forward pass.
        autocast_dtype: "bfloat16" to run the network under autocast, or None for float32.
    """

    patch_size: tuple[int, int, int]
    step: float = 0.5
    mirror: bool = True
    mirror_axes: tuple[int, ...] = (0, 1, 2)
    windows_per_batch: int = 2
    autocast_dtype: str | None = None


def predict_probabilities(
    networks: Sequence, image: np.ndarray, num_classes: int, settings: WindowSettings, device="cpu"
):
    """Class probabilities for every voxel of a plan-space image.

    Args:
        networks: torch modules mapping (B, 1, x, y, z) to logits (B, C, x, y, z); one per fold.
        image: float32 array [x, y, z], normalized.
        num_classes: C, background included.
        settings: tiling and augmentation.
        device: torch device for the networks and the accumulators.

    Returns:
        float32 torch tensor (C, x, y, z) on ``device``; each voxel's probabilities sum to one.
    """
    import torch

    device = torch.device(device)
    pads = padding(tuple(image.shape), settings.patch_size)
    volume = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(device)
    if any(before or after for before, after in pads):
        # F.pad takes widths from the last axis backwards.
        flat = [width for pair in reversed(pads) for width in pair]
        volume = torch.nn.functional.pad(volume[None, None], flat, value=float(volume.min()))[0, 0]
    shape = tuple(volume.shape)
    weights = torch.from_numpy(gaussian_importance(settings.patch_size)).to(device)
    total = torch.zeros((num_classes, *shape), dtype=torch.float32, device=device)
    coverage = torch.zeros(shape, dtype=torch.float32, device=device)
    starts = window_starts(shape, settings.patch_size, settings.step)
    for batch_start in range(0, len(starts), settings.windows_per_batch):
        batch = [
            window_slices(start, settings.patch_size)
            for start in starts[batch_start : batch_start + settings.windows_per_batch]
        ]
        patches = torch.stack([volume[box] for box in batch])[:, None]
        probabilities = _ensemble(networks, patches, settings)
        for index, box in enumerate(batch):
            total[(slice(None), *box)] += probabilities[index] * weights
            coverage[box] += weights
    total /= coverage
    crop = tuple(slice(before, size - after) for (before, after), size in zip(pads, shape, strict=True))
    return total[(slice(None), *crop)]


def _ensemble(networks: Sequence, patches, settings: WindowSettings):
    """Mean softmax over networks and flips for a batch of windows (B, 1, x, y, z) -> (B, C, x, y, z)."""
    import torch

    flips = mirror_combinations(settings.mirror_axes if settings.mirror else ())
    mean = None
    autocast = (
        torch.autocast(device_type=patches.device.type, dtype=torch.bfloat16)
        if settings.autocast_dtype == "bfloat16"
        else contextlib.nullcontext()
    )
    with torch.inference_mode(), autocast:
        for network in networks:
            for axes in flips:
                dims = [axis + 2 for axis in axes]
                flipped = torch.flip(patches, dims) if dims else patches
                logits = network(flipped)
                probabilities = torch.softmax(logits.float(), dim=1)
                if dims:
                    probabilities = torch.flip(probabilities, dims)
                mean = probabilities if mean is None else mean.add_(probabilities)
    return mean / (len(networks) * len(flips))
