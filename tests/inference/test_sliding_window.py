"""Window arithmetic: every voxel covered, edges touched, steps bounded, small images padded."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from amoseg.inference.sliding_window import (
    axis_starts,
    gaussian_importance,
    padded_shape,
    padding,
    window_slices,
    window_starts,
)


@pytest.mark.parametrize("size", [32, 33, 47, 64, 100, 257])
@pytest.mark.parametrize("step", [0.25, 0.5, 1.0])
def test_windows_cover_the_axis_with_bounded_steps(size, step):
    patch = 32
    starts = axis_starts(size, patch, step)
    assert starts[0] == 0
    assert starts[-1] == size - patch
    assert all(later > earlier for earlier, later in itertools.pairwise(starts))
    assert all(later - earlier <= step * patch + 0.5 for earlier, later in itertools.pairwise(starts))
    covered = np.zeros(size, bool)
    for start in starts:
        covered[start : start + patch] = True
    assert covered.all()


def test_window_count_by_hand():
    # 100 voxels, patch 32, step 0.5: spacing <= 16 needs ceil(68 / 16) + 1 = 6 windows.
    assert axis_starts(100, 32, 0.5) == [0, 14, 27, 41, 54, 68]
    assert axis_starts(32, 32, 0.5) == [0]
    # 48 voxels: ceil(16 / 16) + 1 = 2 windows.
    assert len(window_starts((100, 32, 48), (32, 32, 32), 0.5)) == 6 * 1 * 2


def test_images_smaller_than_the_patch_are_padded_centrally():
    assert padding((20, 32, 7), (32, 32, 16)) == ((6, 6), (0, 0), (4, 5))
    assert padded_shape((20, 40, 7), (32, 32, 16)) == (32, 40, 16)
    with pytest.raises(ValueError, match="smaller than the patch"):
        axis_starts(20, 32, 0.5)


def test_every_voxel_is_covered_in_3d_after_padding():
    image_shape, patch = (20, 50, 9), (16, 24, 16)
    padded = padded_shape(image_shape, patch)
    count = np.zeros(padded, np.int32)
    for start in window_starts(padded, patch, 0.5):
        count[window_slices(start, patch)] += 1
    assert count.min() >= 1


def test_gaussian_importance_peaks_in_the_centre():
    weights = gaussian_importance((9, 8, 5))
    assert weights.shape == (9, 8, 5)
    assert weights.dtype == np.float32
    assert weights.max() == pytest.approx(1.0)
    assert weights[4, 3, 2] == weights.max() or weights[4, 4, 2] == weights.max()
    assert weights.min() >= 1e-3
    # Symmetric about the centre along every axis.
    np.testing.assert_allclose(weights, weights[::-1, ::-1, ::-1], rtol=1e-6)
