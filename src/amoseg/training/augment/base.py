"""The two-step form every random transform has: ``draw`` its parameters, then ``apply`` them.

``draw`` uses only the given ``torch.Generator`` (on the CPU) and draws the same amount of random
numbers whatever it decides, so one seed gives one sequence of parameters on any device; ``apply`` is a
deterministic function of the batch and the parameters. A transform acts on a subset of the samples
(``selected``), drawn per sample with its probability; ``apply`` touches only those.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch

from amoseg.training.batch import Batch


class RandomTransform(Protocol):
    def draw(self, batch_size: int, generator: torch.Generator) -> Any:
        """Parameters for a batch (CPU tensors)."""

    def apply(self, batch: Batch, params: Any) -> Batch:
        """The batch transformed with ``params``."""


def uniform(low: float, high: float, size: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    """float32 uniform in [low, high) on the CPU."""
    return low + (high - low) * torch.rand(tuple(size), generator=generator)


def chosen(probability: float, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """bool (B,): which samples a transform applied with ``probability`` acts on."""
    return torch.rand(batch_size, generator=generator) < probability


def indices(selected: torch.Tensor) -> list[int]:
    return [int(index) for index in torch.nonzero(selected).flatten()]


def per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(k,) values shaped (k, 1, 1, 1, 1) on ``like``'s device and dtype, to broadcast over samples."""
    return values.to(device=like.device, dtype=like.dtype).view(-1, *([1] * (like.dim() - 1)))


class Compose:
    """Transforms in order; each draws from the same generator right before it is applied."""

    def __init__(self, transforms: Sequence[RandomTransform]) -> None:
        self.transforms = tuple(transforms)

    def __call__(self, batch: Batch, generator: torch.Generator) -> Batch:
        for transform in self.transforms:
            batch = transform.apply(batch, transform.draw(batch.size, generator))
        return batch

    def __repr__(self) -> str:
        return f"Compose({', '.join(type(item).__name__ for item in self.transforms)})"
