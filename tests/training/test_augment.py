"""Batch augmentation: parameters drawn first and applied deterministically; geometry conventions."""

from __future__ import annotations

import math

import pytest
import torch

from amoseg.training.augment import (
    Brightness,
    Contrast,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    LowResolution,
    RandomAffine,
    RandomMirror,
    nnunet_augmentation,
)
from amoseg.training.augment.pipeline import thick_axis
from amoseg.training.augment.spatial import AffineParams, MirrorParams, rotation_matrix
from amoseg.training.batch import Batch

SHAPE = (12, 10, 8)


def make_batch(size: int = 4, shape=SHAPE, seed: int = 0) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    label = torch.zeros((size, 1, *shape), dtype=torch.uint8)
    label[:, :, 2:6, 3:7, 1:5] = 6
    label[:, :, 7:10, 1:4, 4:7] = 11
    image = label.float() / 4 + 0.1 * torch.randn((size, 1, *shape), generator=generator)
    annotated = torch.ones((size, 16), dtype=torch.bool)
    return Batch(image, label, annotated, torch.full((size,), -2.0))


def test_same_seed_same_batch_other_seed_other_batch():
    pipeline = nnunet_augmentation(SHAPE, (1.0, 1.0, 1.0))
    runs = [pipeline(make_batch(8), torch.Generator().manual_seed(seed)) for seed in (3, 3, 4)]
    torch.testing.assert_close(runs[0].image, runs[1].image, rtol=0, atol=0)
    torch.testing.assert_close(runs[0].label, runs[1].label, rtol=0, atol=0)
    assert not torch.equal(runs[0].image, runs[2].image)


@pytest.mark.parametrize(
    "transform",
    [
        RandomAffine(SHAPE, rotation_probability=1, scaling_probability=1),
        RandomMirror(),
        GaussianNoise(probability=1),
        GaussianBlur(probability=1),
        Brightness(probability=1),
        Contrast(probability=1),
        LowResolution(probability=1),
        Gamma(probability=1),
        Gamma(probability=1, invert=True),
    ],
    ids=lambda transform: type(transform).__name__,
)
def test_draw_then_apply_is_deterministic_and_labels_keep_their_classes(transform):
    batch = make_batch()
    params = transform.draw(batch.size, torch.Generator().manual_seed(0))
    first, second = transform.apply(batch, params), transform.apply(batch, params)
    torch.testing.assert_close(first.image, second.image, rtol=0, atol=0)
    assert first.image.shape == batch.image.shape and first.label.dtype == torch.uint8
    assert set(first.label.unique().tolist()) <= {0, 6, 11}
    assert not torch.equal(first.image, batch.image)
    if not isinstance(transform, RandomAffine | RandomMirror):
        assert torch.equal(first.label, batch.label)


def test_rotation_of_90_degrees_about_z_matches_rot90():
    shape = (8, 8, 4)
    batch = make_batch(1, shape)
    affine = RandomAffine(shape)
    matrix = rotation_matrix(0.0, 0.0, math.pi / 2)[None]
    rotated = affine.apply(batch, AffineParams(torch.tensor([True]), matrix))
    # Output voxel p samples input voxel R p, R (x, y) = (-y, x): out[x, y] = in[-y, x] about the centre,
    # which is rot90 from y towards x (k=-1 over the x, y axes).
    assert torch.equal(rotated.label, torch.rot90(batch.label, k=-1, dims=(2, 3)))
    torch.testing.assert_close(rotated.image, torch.rot90(batch.image, k=-1, dims=(2, 3)), atol=1e-5, rtol=0)


def test_identity_affine_changes_nothing_and_zooming_out_fills_with_air():
    batch = make_batch(2)
    affine = RandomAffine(SHAPE)
    same = affine.apply(
        batch, AffineParams(torch.tensor([True, False]), torch.eye(3, dtype=torch.float64).repeat(2, 1, 1))
    )
    torch.testing.assert_close(same.image, batch.image, atol=1e-5, rtol=0)
    assert torch.equal(same.label, batch.label)
    zoomed = affine.apply(
        batch,
        AffineParams(torch.tensor([True, True]), 2.0 * torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)),
    )
    assert float(zoomed.image[0, 0, 0, 0, 0]) == pytest.approx(-2.0)
    assert int(zoomed.label[0, 0, 0, 0, 0]) == 0


def test_rotation_is_in_millimetres_on_anisotropic_voxels():
    """A 90 degree turn about x on 1 x 1 x 2 mm voxels: 8 voxels along y become 4 along z."""
    shape = (4, 16, 8)
    label = torch.zeros((1, 1, *shape), dtype=torch.uint8)
    label[0, 0, :, 4:12, 3:5] = 1  # a bar 8 mm long along y, 4 mm thick along z
    batch = Batch(label.float(), label, torch.ones((1, 16), dtype=torch.bool), torch.zeros(1))
    affine = RandomAffine(shape, spacing_mm=(1.0, 1.0, 2.0))
    turned = affine.apply(batch, AffineParams(torch.tensor([True]), rotation_matrix(math.pi / 2, 0, 0)[None]))
    occupied = turned.label[0, 0].nonzero()
    extent = (occupied.max(0).values - occupied.min(0).values + 1).tolist()
    assert extent[1:] == [4, 4]  # 4 mm along y (4 voxels), 8 mm along z (4 voxels)


def test_mirroring_flips_image_and_label_together():
    batch = make_batch(2)
    flips = torch.tensor([[True, False, True], [False, False, False]])
    mirrored = RandomMirror().apply(batch, MirrorParams(flips))
    assert torch.equal(mirrored.label[0], batch.label[0].flip(1).flip(3))
    assert torch.equal(mirrored.image[1], batch.image[1])


@pytest.mark.parametrize(("axes", "mirrored"), [((0, 1, 2), {0, 1, 2}), ((1, 2), {1, 2}), ((), set())])
def test_the_pipeline_mirrors_only_the_axes_it_is_given(axes, mirrored):
    """Over 200 samples each allowed axis is flipped about half the time and the others never."""
    mirror = nnunet_augmentation(SHAPE, (1.0, 1.0, 1.0), mirror_axes=axes).transforms[-1]
    assert isinstance(mirror, RandomMirror)
    flips = mirror.draw(200, torch.Generator().manual_seed(0)).flips
    for axis in range(3):
        share = flips[:, axis].float().mean().item()
        assert (0.35 < share < 0.65) if axis in mirrored else share == 0.0, (axis, share)


def test_gamma_keeps_mean_and_std():
    batch = make_batch(2)
    gamma = Gamma(probability=1)
    out = gamma.apply(batch, gamma.draw(2, torch.Generator().manual_seed(1)))
    for index in range(2):
        assert float(out.image[index].mean()) == pytest.approx(float(batch.image[index].mean()), abs=1e-4)
        assert float(out.image[index].std()) == pytest.approx(float(batch.image[index].std()), rel=1e-3)


def test_anisotropic_data_rotates_in_plane_only():
    assert thick_axis((0.8, 0.8, 5.0)) == 2 and thick_axis((1.0, 1.2, 2.0)) is None
    pipeline = nnunet_augmentation((32, 32, 8), (0.8, 0.8, 5.0))
    affine = pipeline.transforms[0]
    params = affine.draw(64, torch.Generator().manual_seed(0))
    rotated = params.matrices[params.selected]
    # Rotations about z only: the z row and column stay (0, 0, s).
    torch.testing.assert_close(rotated[:, 2, :2], torch.zeros_like(rotated[:, 2, :2]))
