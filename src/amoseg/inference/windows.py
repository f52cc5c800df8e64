"""Sliding-window prediction in plan space: Gaussian-weighted windows, mirroring, fold averaging.

Works on a preprocessed image (float32 [x, y, z], plan space) and returns class probabilities
(C, x, y, z) on the same grid. Several windows go through the network per forward pass; mirroring
test-time augmentation averages the predictions of every combination of flips over the axes the model
was trained to be mirrored along (none by default: one pass; 8 for all three axes, as nnU-Net's); several
networks (folds) are averaged with equal weight. The patch and the mirror axes are the model's; the
caller's choices (step, mirroring on or off, batch, precision) are a ``WindowSettings``.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from amoseg.errors import AmosegError
from amoseg.inference.sliding_window import gaussian_importance, padding, window_slices, window_starts
from amoseg.model import DEFAULT_MIRROR_AXES


def mirror_combinations(axes: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Every subset of ``axes``, the identity first: the flips test-time augmentation averages."""
    axes = tuple(sorted(axes))
    return tuple(
        combination for size in range(len(axes) + 1) for combination in itertools.combinations(axes, size)
    )


@dataclass(frozen=True)
class WindowSettings:
    """How the volume is tiled and augmented: the caller's choices, checked when made.

    Attributes:
        step: largest distance between window starts, as a fraction of the patch (0.5 = half overlap).
        mirror: average over the flips of each window along the model's mirror axes (test-time
            augmentation); nothing to average for a model trained without mirroring.
        windows_per_batch: windows per forward pass.
        autocast_dtype: "bfloat16" to run the network under autocast, or None for float32.
    """

    step: float = 0.5
    mirror: bool = True
    windows_per_batch: int = 2
    autocast_dtype: str | None = None

    def __post_init__(self) -> None:
        # Checked before any image is read: a bad step would otherwise fail after preprocessing.
        if not (isinstance(self.step, int | float) and 0 < self.step <= 1):
            raise AmosegError(
                f"window step must be a fraction of the patch in (0, 1], e.g. 0.5; got {self.step}"
            )
        if not (isinstance(self.windows_per_batch, int) and self.windows_per_batch >= 1):
            raise AmosegError(f"windows per batch must be a positive integer; got {self.windows_per_batch}")


def predict_probabilities(
    networks: Sequence,
    image: np.ndarray,
    num_classes: int,
    patch_size: Sequence[int],
    settings: WindowSettings = WindowSettings(),
    device="cpu",
    mirror_axes: Sequence[int] = DEFAULT_MIRROR_AXES,
):
    """Class probabilities for every voxel of a plan-space image.

    Args:
        networks: torch modules mapping (B, 1, x, y, z) to logits (B, C, x, y, z); one per fold.
        image: float32 array [x, y, z], normalized.
        num_classes: C, background included.
        patch_size: window (x, y, z) in voxels; the plan's training patch.
        settings: tiling and augmentation.
        device: torch device for the networks and the accumulators.
        mirror_axes: the axes the networks were trained to be mirrored along (their ``TrainConfig``).

    Returns:
        float32 torch tensor (C, x, y, z) on ``device``; each voxel's probabilities sum to one.
    """
    import torch

    patch_size = tuple(int(size) for size in patch_size)
    device = torch.device(device)
    pads = padding(tuple(image.shape), patch_size)
    volume = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(device)
    if any(before or after for before, after in pads):
        # F.pad takes widths from the last axis backwards.
        flat = [width for pair in reversed(pads) for width in pair]
        volume = torch.nn.functional.pad(volume[None, None], flat, value=float(volume.min()))[0, 0]
    shape = tuple(volume.shape)
    weights = torch.from_numpy(gaussian_importance(patch_size)).to(device)
    total = torch.zeros((num_classes, *shape), dtype=torch.float32, device=device)
    coverage = torch.zeros(shape, dtype=torch.float32, device=device)
    starts = window_starts(shape, patch_size, settings.step)
    flips = mirror_combinations(mirror_axes if settings.mirror else ())
    for batch_start in range(0, len(starts), settings.windows_per_batch):
        batch = [
            window_slices(start, patch_size)
            for start in starts[batch_start : batch_start + settings.windows_per_batch]
        ]
        patches = torch.stack([volume[box] for box in batch])[:, None]
        probabilities = _ensemble(networks, patches, flips, settings.autocast_dtype)
        for index, box in enumerate(batch):
            total[(slice(None), *box)] += probabilities[index] * weights
            coverage[box] += weights
    total /= coverage
    crop = tuple(slice(before, size - after) for (before, after), size in zip(pads, shape, strict=True))
    return total[(slice(None), *crop)]


def _ensemble(networks: Sequence, patches, flips: Sequence[tuple[int, ...]], autocast_dtype: str | None):
    """Mean softmax over networks and flips for a batch of windows (B, 1, x, y, z) -> (B, C, x, y, z)."""
    import torch

    mean = None
    autocast = (
        torch.autocast(device_type=patches.device.type, dtype=torch.bfloat16)
        if autocast_dtype == "bfloat16"
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
