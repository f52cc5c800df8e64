"""Neighbour codes, the tolerance ball, and the two exact ways of testing distances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from amoseg.evaluation import surface
from amoseg.evaluation.surface import ball_offsets, neighbour_codes, surface_overlap


def test_codes_match_a_correlation_with_the_reference_kernel(surface_distance):
    rng = np.random.default_rng(0)
    mask = np.zeros((12, 10, 9), dtype=bool)
    mask[1:-1, 1:-1, 1:-1] = rng.random((10, 8, 7)) < 0.5
    kernel = surface_distance.lookup_tables.ENCODE_NEIGHBOURHOOD_3D_KERNEL
    # the reference's correlation puts the code of the corner below voxel i at index i
    expected = ndimage.correlate(mask.astype(np.uint8), kernel, mode="constant", cval=0)[1:, 1:, 1:]
    np.testing.assert_array_equal(neighbour_codes(mask), expected)


def test_ball_holds_exactly_the_offsets_within_the_tolerance():
    spacing = (0.78, 0.78, 5.0)
    offsets = ball_offsets(spacing, 1.0)
    assert offsets[0].tolist() == [0, 0, 0]
    assert sorted(map(tuple, offsets.tolist())) == sorted(
        [(0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0)]
    )
    # an offset at exactly the tolerance counts (distance <= tolerance)
    assert [0, 0, 1] in ball_offsets((1.0, 1.0, 1.0), 1.0).tolist()
    assert [1, 1, 0] not in ball_offsets((1.0, 1.0, 1.0), 1.0).tolist()


@pytest.mark.parametrize("tolerance", [0.5, 1.0, 2.0, 5.0])
def test_lookup_and_distance_transform_agree(tolerance):
    rng = np.random.default_rng(1)
    shape = (40, 36, 14)
    spacing = (0.7, 0.7, 2.5)
    border = (8, 8, 3)
    target = np.zeros(shape, dtype=bool)
    inner = tuple(slice(b, n - b) for b, n in zip(border, shape, strict=True))
    target[inner] = rng.random(target[inner].shape) < 0.01
    points = np.flatnonzero(
        np.pad(
            np.ones([n - 2 * b for n, b in zip(shape, border, strict=True)], bool), [(b, b) for b in border]
        )
    )
    by_lookup = surface._within_by_lookup(points, target, ball_offsets(spacing, tolerance))
    by_transform = surface._within_by_transform(points, target, spacing, tolerance)
    np.testing.assert_array_equal(by_lookup, by_transform)
    assert 0 < by_lookup.sum() < len(points)


def test_single_voxel_surface_area_by_hand():
    mask = np.zeros((3, 3, 3), dtype=bool)
    mask[1, 1, 1] = True
    spacing = (0.5, 2.0, 3.0)
    sx, sy, sz = spacing
    overlap = surface_overlap(mask, mask, spacing, 1.0)
    # eight corners, each a corner triangle with area vector (sy*sz, sx*sz, sx*sy) / 8
    expected = np.sqrt((sy * sz) ** 2 + (sx * sz) ** 2 + (sx * sy) ** 2)
    assert overlap.pred_area_mm2 == pytest.approx(expected, rel=1e-14)
    assert overlap.surface_dice == 1.0


def test_two_voxels_two_apart_by_hand():
    pred = np.zeros((7, 3, 3), dtype=bool)
    ref = np.zeros_like(pred)
    pred[2, 1, 1] = ref[4, 1, 1] = True
    # facing corners are 1 mm apart, the far ones 2 mm: half of each surface is within 1 mm
    assert surface_overlap(pred, ref, (1.0, 1.0, 1.0), 1.0).surface_dice == pytest.approx(0.5, abs=1e-15)
    assert surface_overlap(pred, ref, (1.0, 1.0, 1.0), 0.999).surface_dice == 0.0
    assert surface_overlap(pred, ref, (1.0, 1.0, 1.0), 2.0).surface_dice == pytest.approx(1.0, abs=1e-15)
