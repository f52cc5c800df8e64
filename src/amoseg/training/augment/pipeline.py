"""nnU-Net v2's default training augmentation for a plan, as one ``Compose``.

Order as nnU-Net: rotation and scaling, noise, blur, brightness, contrast, low resolution, inverted
gamma, gamma, mirroring. For anisotropic data (the coarsest spacing more than
``amoseg.planning.spacing.ANISOTROPY_THRESHOLD`` times the finest) rotation is only about the thick axis
and low-resolution simulation leaves that axis alone, as nnU-Net's in-plane ("dummy 2D") augmentation
does.
"""

from __future__ import annotations

from collections.abc import Sequence

from amoseg.model import DEFAULT_MIRROR_AXES
from amoseg.planning.spacing import ANISOTROPY_THRESHOLD
from amoseg.training.augment.base import Compose
from amoseg.training.augment.intensity import (
    Brightness,
    Contrast,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    LowResolution,
)
from amoseg.training.augment.spatial import RandomAffine, RandomMirror


def thick_axis(spacing_mm: Sequence[float]) -> int | None:
    """The axis whose spacing is more than ``ANISOTROPY_THRESHOLD`` times the finest, or None for roughly
    isotropic data."""
    finest, coarsest = min(spacing_mm), max(spacing_mm)
    return (
        int(max(range(3), key=lambda axis: spacing_mm[axis]))
        if coarsest > ANISOTROPY_THRESHOLD * finest
        else None
    )


def nnunet_augmentation(
    patch_size: Sequence[int], spacing_mm: Sequence[float], mirror_axes: Sequence[int] = DEFAULT_MIRROR_AXES
) -> Compose:
    """The default pipeline for patches of ``patch_size`` (x, y, z) at ``spacing_mm``, mirroring
    ``mirror_axes`` (default none, ``amoseg.model.DEFAULT_MIRROR_AXES``; nnU-Net: all three)."""
    thick = thick_axis(spacing_mm)
    every_axis = (0, 1, 2)
    in_plane = tuple(axis for axis in every_axis if axis != thick)
    return Compose(
        [
            RandomAffine(
                patch_size=tuple(int(v) for v in patch_size),
                spacing_mm=tuple(float(v) for v in spacing_mm),
                rotation_axes=every_axis if thick is None else (thick,),
            ),
            GaussianNoise(),
            GaussianBlur(),
            Brightness(),
            Contrast(),
            LowResolution(axes=every_axis if thick is None else in_plane),
            Gamma(probability=0.1, invert=True),
            Gamma(probability=0.3),
            RandomMirror(axes=tuple(mirror_axes)),
        ]
    )
