"""``Batch``: a training batch as torch tensors, on the device where it is augmented and trained on."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from amoseg.training.sampling import PatchBatch


@dataclass(frozen=True, eq=False)
class Batch:
    """Patches and what the loss needs to know about their cases.

    Attributes:
        image: float32 (B, 1, x, y, z), normalized intensities.
        label: uint8 (B, 1, x, y, z), label ids; unannotated organs are stored as 0.
        annotated: bool (B, C): background (always True) and the organs each case annotates.
        pad_value: float32 (B,): each case's air value, used where a transform needs to fill.
    """

    image: torch.Tensor
    label: torch.Tensor
    annotated: torch.Tensor
    pad_value: torch.Tensor

    @classmethod
    def from_numpy(cls, patches: PatchBatch) -> Batch:
        return cls(
            image=torch.from_numpy(patches.image),
            label=torch.from_numpy(patches.label),
            annotated=torch.from_numpy(patches.annotated),
            pad_value=torch.from_numpy(patches.pad_value),
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return Batch(
            image=self.image.to(device, non_blocking=non_blocking),
            label=self.label.to(device, non_blocking=non_blocking),
            annotated=self.annotated.to(device, non_blocking=non_blocking),
            pad_value=self.pad_value.to(device, non_blocking=non_blocking),
        )

    def pin_memory(self) -> Batch:
        return Batch(
            self.image.pin_memory(),
            self.label.pin_memory(),
            self.annotated.pin_memory(),
            self.pad_value.pin_memory(),
        )

    def with_tensors(self, **changes: torch.Tensor) -> Batch:
        return replace(self, **changes)

    @property
    def size(self) -> int:
        return int(self.image.shape[0])
