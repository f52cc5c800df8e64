"""Reorientation by permutation and flips: every voxel keeps its world position, and it undoes exactly."""

from __future__ import annotations

import numpy as np
import pytest

from amoseg.io import make_geometry
from amoseg.io.orientation import (
    canonical_reorientation,
    reorient_array,
    reorient_geometry,
    undo_reorient_array,
)
from directions import DIRECTIONS


@pytest.mark.parametrize("name", DIRECTIONS)
def test_voxels_keep_their_world_position(name):
    rng = np.random.default_rng(0)
    geometry = make_geometry((7, 5, 4), (0.7, 1.1, 3.0), (-20.0, 14.0, 3.5), DIRECTIONS[name])
    array = rng.integers(0, 1000, size=geometry.shape)
    reorientation = canonical_reorientation(geometry.direction)
    canonical = reorient_array(array, reorientation)
    canonical_geometry = reorient_geometry(geometry, reorientation)
    assert canonical.shape == canonical_geometry.shape
    # The canonical direction is the closest to the identity: positive diagonal, the largest entries.
    direction = canonical_geometry.direction_matrix
    assert np.all(np.diag(direction) > 0.7)
    inverse = np.linalg.inv(geometry.affine_lps())
    for index in np.ndindex(canonical.shape):
        world = canonical_geometry.affine_lps() @ np.array([*index, 1.0])
        original = np.round(inverse @ world)[:3].astype(int)
        assert np.allclose(inverse @ world, [*original, 1.0], atol=1e-9)
        assert canonical[index] == array[tuple(original)]
    assert np.array_equal(undo_reorient_array(canonical, reorientation), array)


def test_identity_is_recognised():
    assert canonical_reorientation(np.eye(3)).is_identity
    assert not canonical_reorientation(DIRECTIONS["RAS"]).is_identity
    # File axes point to P, I and R: canonical x (L) is file axis 2, flipped; y (P) axis 0; z (S) axis 1.
    sagittal = canonical_reorientation(DIRECTIONS["sagittal"])
    assert sagittal.permutation == (2, 0, 1) and sagittal.flipped == (True, False, True)
