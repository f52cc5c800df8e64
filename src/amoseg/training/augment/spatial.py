"""Spatial transforms: rotation and scaling (one affine resampling), and mirroring.

Image and label go through the same grid; the image is interpolated linearly and filled with the
case's air value outside, the label is sampled with nearest neighbour and filled with background, so
a label can never get a smoothed, invented class. Rotation happens in millimetres, so on anisotropic
voxels an organ keeps its shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from amoseg.training.augment.base import chosen, indices, per_sample, uniform
from amoseg.training.batch import Batch


@dataclass(frozen=True)
class AffineParams:
    """selected: bool (B,); matrices: float64 (B, 3, 3) mapping output to input offsets from the
    patch centre, in millimetres, axes (x, y, z); identity where not selected."""

    selected: torch.Tensor
    matrices: torch.Tensor


@dataclass(frozen=True)
class RandomAffine:
    """nnU-Net's rotation and scaling, about the patch centre.

    Attributes:
        patch_size: (x, y, z) voxels.
        spacing_mm: voxel size (x, y, z); rotations are in physical space.
        rotation_probability: per sample; angles uniform in +-``max_angle_deg`` about each rotated axis.
        rotation_axes: axes rotated about (all three; only the thick axis for anisotropic data, as
            nnU-Net's in-plane augmentation).
        scaling_probability: per sample; one factor in ``scale_range`` for all axes (> 1 zooms out).
    """

    patch_size: tuple[int, int, int]
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    rotation_probability: float = 0.2
    max_angle_deg: float = 30.0
    rotation_axes: tuple[int, ...] = (0, 1, 2)
    scaling_probability: float = 0.2
    scale_range: tuple[float, float] = (0.7, 1.4)

    def draw(self, batch_size: int, generator: torch.Generator) -> AffineParams:
        rotate = chosen(self.rotation_probability, batch_size, generator)
        limit = math.radians(self.max_angle_deg)
        angles = uniform(-limit, limit, (batch_size, 3), generator).double()
        scale = chosen(self.scaling_probability, batch_size, generator)
        factors = uniform(*self.scale_range, (batch_size,), generator).double()
        mask = torch.zeros(3, dtype=torch.bool)
        mask[list(self.rotation_axes)] = True
        angles = torch.where(rotate[:, None] & mask[None, :], angles, torch.zeros_like(angles))
        factors = torch.where(scale, factors, torch.ones_like(factors))
        matrices = torch.stack([rotation_matrix(*row) for row in angles]) * factors[:, None, None]
        return AffineParams(selected=rotate | scale, matrices=matrices)

    def apply(self, batch: Batch, params: AffineParams) -> Batch:
        rows = indices(params.selected)
        if not rows:
            return batch
        theta = affine_theta(params.matrices[rows], self.patch_size, self.spacing_mm)
        image, label = batch.image.clone(), batch.label.clone()
        selected_image = batch.image[rows]
        grid = F.affine_grid(
            theta.to(device=selected_image.device, dtype=selected_image.dtype),
            list(selected_image.shape),
            align_corners=False,
        )
        fill = per_sample(batch.pad_value[rows], selected_image)
        # grid_sample fills with zeros; shifting by the air value first makes the fill air instead.
        image[rows] = F.grid_sample(selected_image - fill, grid, mode="bilinear", align_corners=False) + fill
        label[rows] = (
            F.grid_sample(batch.label[rows].to(grid.dtype), grid, mode="nearest", align_corners=False)
            .round()
            .to(batch.label.dtype)
        )
        return batch.with_tensors(image=image, label=label)


def rotation_matrix(angle_x: float, angle_y: float, angle_z: float) -> torch.Tensor:
    """float64 (3, 3): rotation about x, then y, then z (radians, right-handed)."""
    cx, sx = math.cos(angle_x), math.sin(angle_x)
    cy, sy = math.cos(angle_y), math.sin(angle_y)
    cz, sz = math.cos(angle_z), math.sin(angle_z)
    rx = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]], dtype=torch.float64)
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=torch.float64)
    rz = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], dtype=torch.float64)
    return rz @ ry @ rx


def affine_theta(
    matrices: torch.Tensor, patch_size: tuple[int, int, int], spacing_mm: tuple[float, float, float]
) -> torch.Tensor:
    """``F.affine_grid``'s theta (k, 3, 4) for millimetre matrices (k, 3, 3) about the patch centre.

    With ``align_corners=False`` a normalized coordinate u is the voxel offset from the centre times
    2 / n; grid coordinates run (z, y, x) for a tensor laid out (x, y, z), hence the reversal.
    """
    half = torch.tensor(patch_size, dtype=torch.float64) / 2
    spacing = torch.tensor(spacing_mm, dtype=torch.float64)
    to_voxels = torch.diag(1 / spacing) @ matrices @ torch.diag(spacing)
    normalized = torch.diag(1 / half) @ to_voxels @ torch.diag(half)
    reversed_axes = normalized.flip(-1).flip(-2)
    return torch.cat([reversed_axes, torch.zeros((*matrices.shape[:-2], 3, 1), dtype=torch.float64)], dim=-1)


@dataclass(frozen=True)
class MirrorParams:
    """flips: bool (B, 3): which spatial axes (x, y, z) each sample is flipped along."""

    flips: torch.Tensor


@dataclass(frozen=True)
class RandomMirror:
    """Flip each spatial axis with ``probability`` per sample (nnU-Net: 0.5 on every axis)."""

    probability: float = 0.5
    axes: tuple[int, ...] = (0, 1, 2)

    def draw(self, batch_size: int, generator: torch.Generator) -> MirrorParams:
        flips = torch.rand((batch_size, 3), generator=generator) < self.probability
        mask = torch.zeros(3, dtype=torch.bool)
        mask[list(self.axes)] = True
        return MirrorParams(flips & mask[None, :])

    def apply(self, batch: Batch, params: MirrorParams) -> Batch:
        image, label = batch.image, batch.label
        for axis in range(3):
            rows = params.flips[:, axis]
            if not bool(rows.any()):
                continue
            where = rows.to(image.device).view(-1, 1, 1, 1, 1)
            image = torch.where(where, image.flip(axis + 2), image)
            label = torch.where(where, label.flip(axis + 2), label)
        return batch.with_tensors(image=image, label=label)
