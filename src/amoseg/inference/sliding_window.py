"""Sliding-window arithmetic: pure functions on shapes, no torch.

Windows tile a volume of shape ``image_shape`` (x, y, z) with patches of ``patch_size``; consecutive
windows along an axis start at most ``step * patch`` voxels apart, and the first and last windows touch
the volume's edges, so every voxel is covered. A volume smaller than the patch along an axis is padded
to the patch first (``padding``), then cropped back.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

Shape3 = tuple[int, int, int]


def padding(image_shape: Shape3, patch_size: Shape3) -> tuple[tuple[int, int], ...]:
    """(before, after) padding per axis so that every axis is at least the patch; centred."""
    widths = []
    for size, patch in zip(image_shape, patch_size, strict=True):
        missing = max(patch - size, 0)
        widths.append((missing // 2, missing - missing // 2))
    return tuple(widths)


def padded_shape(image_shape: Shape3, patch_size: Shape3) -> Shape3:
    """The shape the windows tile: ``image_shape`` after ``padding``."""
    pads = padding(image_shape, patch_size)
    return tuple(size + before + after for size, (before, after) in zip(image_shape, pads, strict=True))


def axis_starts(size: int, patch: int, step: float) -> list[int]:
    """Start indices along one axis of length ``size`` (>= ``patch``), evenly spread, edges included.

    The number of windows is ``ceil((size - patch) / (step * patch)) + 1``, the fewest whose spacing
    does not exceed ``step * patch``; starts are rounded from an even spread between 0 and size - patch.

    Raises:
        ValueError: ``size`` smaller than ``patch``, or ``step`` outside (0, 1].
    """
    if size < patch:
        raise ValueError(f"axis of {size} voxels is smaller than the patch ({patch}); pad it first")
    if not 0 < step <= 1:
        raise ValueError(f"step must be in (0, 1], got {step}")
    if size == patch:
        return [0]
    count = math.ceil((size - patch) / (step * patch)) + 1
    spread = (size - patch) / (count - 1)
    return [round(index * spread) for index in range(count)]


def window_starts(image_shape: Shape3, patch_size: Shape3, step: float) -> list[Shape3]:
    """Every window's start (x, y, z), in C order over the three axes."""
    per_axis = [axis_starts(size, patch, step) for size, patch in zip(image_shape, patch_size, strict=True)]
    return [tuple(start) for start in itertools.product(*per_axis)]


def window_slices(start: Shape3, patch_size: Shape3) -> tuple[slice, slice, slice]:
    return tuple(slice(begin, begin + size) for begin, size in zip(start, patch_size, strict=True))


def gaussian_importance(patch_size: Shape3, sigma_scale: float = 1.0 / 8, floor: float = 1e-3) -> np.ndarray:
    """Weights that favour a window's centre, where the network sees the most context.

    A separable Gaussian with sigma ``sigma_scale * patch`` per axis, scaled to a maximum of 1, with a
    floor so that border voxels covered by a single window still get a usable weight.

    Returns:
        float32 array of ``patch_size``.
    """
    profiles = []
    for size in patch_size:
        centre = (size - 1) / 2
        sigma = max(sigma_scale * size, 1e-6)
        position = np.arange(size, dtype=np.float64)
        profiles.append(np.exp(-0.5 * ((position - centre) / sigma) ** 2))
    weights = profiles[0][:, None, None] * profiles[1][None, :, None] * profiles[2][None, None, :]
    weights /= weights.max()
    return np.maximum(weights, floor).astype(np.float32)
