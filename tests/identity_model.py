"""An identity-like "network" for prediction tests: it reads each voxel's label id from its CT value."""

from __future__ import annotations

import dataclasses

import torch

from amoseg.planning.plan import NormalizationScheme

NUM_CLASSES = 16
#: CT normalization that keeps label ids (used as HU values) apart: clip wide, z-score by (x - 7) / 5.
IDENTITY_SCHEME = NormalizationScheme(
    "CT", "dataset_foreground", clip_low=-1000.0, clip_high=1000.0, mean=7.0, std=5.0
)


class IdentityLabels(torch.nn.Module):
    """Logits -(HU - c)^2 for class c, from a CT image normalized with ``scheme``."""

    def __init__(self, scheme: NormalizationScheme = IDENTITY_SCHEME) -> None:
        super().__init__()
        self.mean, self.std = scheme.mean, scheme.std
        classes = torch.arange(NUM_CLASSES, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.register_buffer("classes", classes)

    def forward(self, x):
        hounsfield = x * self.std + self.mean
        return -((hounsfield - self.classes) ** 2)


def identity_plan(base_plan, target_spacing_mm, patch_size):
    """``base_plan`` with the identity normalization, a given spacing and patch."""
    return dataclasses.replace(
        base_plan,
        target_spacing_mm=tuple(target_spacing_mm),
        patch_size=tuple(patch_size),
        normalization={"CT": IDENTITY_SCHEME},
    )
