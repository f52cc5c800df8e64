"""Data augmentation on whole batches in PyTorch, on the training device.

Every random transform first draws its parameters from a ``torch.Generator`` (``draw``), then applies
them deterministically (``apply``): the same seed gives the same batch on any device.
"""

from amoseg.training.augment.base import Compose, RandomTransform
from amoseg.training.augment.intensity import (
    Brightness,
    Contrast,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    LowResolution,
)
from amoseg.training.augment.pipeline import nnunet_augmentation
from amoseg.training.augment.spatial import RandomAffine, RandomMirror

__all__ = [
    "Brightness",
    "Compose",
    "Contrast",
    "Gamma",
    "GaussianBlur",
    "GaussianNoise",
    "LowResolution",
    "RandomAffine",
    "RandomMirror",
    "RandomTransform",
    "nnunet_augmentation",
]
