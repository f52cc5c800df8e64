"""Intensity transforms of the image (the label is untouched), nnU-Net v2's defaults.

Probabilities are per sample and already include nnU-Net's per-channel probability (one channel here):
noise 0.1, blur 0.2 x 0.5, brightness 0.15, contrast 0.15, low resolution 0.25 x 0.5, inverted gamma
0.1, gamma 0.3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from amoseg.training.augment.base import chosen, indices, per_sample, uniform
from amoseg.training.batch import Batch


@dataclass(frozen=True)
class ScalarParams:
    """selected: bool (B,); values: float32 (B,) or (B, 3) per sample; seed: for noise fields."""

    selected: torch.Tensor
    values: torch.Tensor
    seed: int = 0


def _replace_rows(batch: Batch, rows: list[int], new_rows: torch.Tensor) -> Batch:
    image = batch.image.clone()
    image[rows] = new_rows
    return batch.with_tensors(image=image)


@dataclass(frozen=True)
class GaussianNoise:
    """Add zero-mean Gaussian noise whose variance is uniform in ``variance_range`` per sample."""

    probability: float = 0.1
    variance_range: tuple[float, float] = (0.0, 0.1)

    def draw(self, batch_size: int, generator: torch.Generator) -> ScalarParams:
        selected = chosen(self.probability, batch_size, generator)
        variance = uniform(*self.variance_range, (batch_size,), generator)
        # The noise field itself is drawn on the training device from this seed: no large CPU draw.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        return ScalarParams(selected, variance.sqrt(), seed)

    def apply(self, batch: Batch, params: ScalarParams) -> Batch:
        rows = indices(params.selected)
        if not rows:
            return batch
        image = batch.image[rows]
        device_generator = torch.Generator(device=image.device).manual_seed(params.seed)
        noise = torch.randn(image.shape, generator=device_generator, device=image.device, dtype=image.dtype)
        return _replace_rows(batch, rows, image + noise * per_sample(params.values[rows], image))


@dataclass(frozen=True)
class GaussianBlur:
    """Blur with a Gaussian whose sigma (voxels) is drawn per sample and axis in ``sigma_range``."""

    probability: float = 0.1
    sigma_range: tuple[float, float] = (0.5, 1.0)
    axes: tuple[int, ...] = (0, 1, 2)

    def draw(self, batch_size: int, generator: torch.Generator) -> ScalarParams:
        selected = chosen(self.probability, batch_size, generator)
        return ScalarParams(selected, uniform(*self.sigma_range, (batch_size, 3), generator))

    def apply(self, batch: Batch, params: ScalarParams) -> Batch:
        rows = indices(params.selected)
        if not rows:
            return batch
        blurred = []
        for row in rows:
            sample = batch.image[row : row + 1]
            for axis in self.axes:
                sample = blur_axis(sample, float(params.values[row, axis]), axis)
            blurred.append(sample)
        return _replace_rows(batch, rows, torch.cat(blurred))


def blur_axis(image: torch.Tensor, sigma: float, axis: int) -> torch.Tensor:
    """Gaussian blur of (1, 1, x, y, z) along one spatial axis, edges replicated; sigma in voxels."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(device=image.device, dtype=image.dtype)
    shape = [1, 1, 1, 1, 1]
    shape[axis + 2] = kernel.numel()
    padding = [0] * 6
    # F.pad counts from the last axis backwards.
    padding[2 * (2 - axis)] = padding[2 * (2 - axis) + 1] = radius
    padded = F.pad(image, padding, mode="replicate")
    return F.conv3d(padded, kernel.view(shape))


@dataclass(frozen=True)
class _UniformFactor:
    """A transform chosen with ``probability`` per sample, with one factor uniform in ``factor_range``."""

    probability: float = 0.15
    factor_range: tuple[float, float] = (0.75, 1.25)

    def draw(self, batch_size: int, generator: torch.Generator) -> ScalarParams:
        selected = chosen(self.probability, batch_size, generator)
        return ScalarParams(selected, uniform(*self.factor_range, (batch_size,), generator))


@dataclass(frozen=True)
class Brightness(_UniformFactor):
    """Multiply the image by a factor uniform in ``factor_range``."""

    def apply(self, batch: Batch, params: ScalarParams) -> Batch:
        rows = indices(params.selected)
        if not rows:
            return batch
        image = batch.image[rows]
        return _replace_rows(batch, rows, image * per_sample(params.values[rows], image))


@dataclass(frozen=True)
class Contrast(_UniformFactor):
    """Scale deviations from the mean by a factor in ``factor_range``, then clip to the former range."""

    def apply(self, batch: Batch, params: ScalarParams) -> Batch:
        rows = indices(params.selected)
        if not rows:
            return batch
        image = batch.image[rows]
        flat = image.flatten(1)
        mean = per_sample(flat.mean(1), image)
        low, high = per_sample(flat.amin(1), image), per_sample(flat.amax(1), image)
        result = (image - mean) * per_sample(params.values[rows], image) + mean
        return _replace_rows(batch, rows, torch.minimum(torch.maximum(result, low), high))


@dataclass(frozen=True)
class LowResolution:
    """Downsample (nearest) by a zoom in ``zoom_range``, then upsample back (trilinear).

    ``axes`` are the zoomed axes (nnU-Net leaves a thick-slice axis alone).
    """

    probability: float = 0.125
    zoom_range: tuple[float, float] = (0.5, 1.0)
    axes: tuple[int, ...] = (0, 1, 2)

    def draw(self, batch_size: int, generator: torch.Generator) -> ScalarParams:
        selected = chosen(self.probability, batch_size, generator)
        return ScalarParams(selected, uniform(*self.zoom_range, (batch_size,), generator))

    def apply(self, batch: Batch, params: ScalarParams) -> Batch:
        rows = indices(params.selected)
        if not rows:
            return batch
        shape = tuple(batch.image.shape[2:])
        results = []
        for row in rows:
            zoom = float(params.values[row])
            small = tuple(
                max(1, round(size * zoom)) if axis in self.axes else size for axis, size in enumerate(shape)
            )
            sample = F.interpolate(batch.image[row : row + 1], size=small, mode="nearest-exact")
            results.append(F.interpolate(sample, size=shape, mode="trilinear", align_corners=False))
        return _replace_rows(batch, rows, torch.cat(results))


def gamma_values(batch_size: int, generator: torch.Generator, low: float, high: float) -> torch.Tensor:
    """nnU-Net's contrast draw: half the time below 1 (in [low, 1)), half above (in [1, high))."""
    below = torch.rand(batch_size, generator=generator) < 0.5
    under, over = uniform(low, 1.0, (batch_size,), generator), uniform(1.0, high, (batch_size,), generator)
    return torch.where(below, under, over)


@dataclass(frozen=True)
class Gamma:
    """Gamma on the image rescaled to [0, 1], keeping its mean and standard deviation.

    ``invert`` applies it to the negated image (brightens dark structures instead of bright ones).
    """

    probability: float = 0.3
    gamma_range: tuple[float, float] = (0.7, 1.5)
    invert: bool = False

    def draw(self, batch_size: int, generator: torch.Generator) -> ScalarParams:
        selected = chosen(self.probability, batch_size, generator)
        return ScalarParams(selected, gamma_values(batch_size, generator, *self.gamma_range))

    def apply(self, batch: Batch, params: ScalarParams) -> Batch:
        rows = indices(params.selected)
        if not rows:
            return batch
        image = -batch.image[rows] if self.invert else batch.image[rows]
        flat = image.flatten(1)
        mean, std = per_sample(flat.mean(1), image), per_sample(flat.std(1), image)
        low, high = per_sample(flat.amin(1), image), per_sample(flat.amax(1), image)
        span = high - low + 1e-7
        result = ((image - low) / span).clamp_min(0) ** per_sample(params.values[rows], image) * span + low
        flat_result = result.flatten(1)
        new_mean, new_std = per_sample(flat_result.mean(1), image), per_sample(flat_result.std(1), image)
        result = (result - new_mean) / (new_std + 1e-7) * std + mean
        return _replace_rows(batch, rows, -result if self.invert else result)
