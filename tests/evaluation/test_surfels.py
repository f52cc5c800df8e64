"""The surface-area table, derived from marching cubes, against DeepMind's stored table."""

from __future__ import annotations

import numpy as np
import pytest

from amoseg.evaluation.surfels import CELL_CORNERS, area_table, corner_weight


def test_corner_bits_cover_the_byte_once():
    weights = sorted(corner_weight(corner) for corner in CELL_CORNERS)
    assert weights == [1, 2, 4, 8, 16, 32, 64, 128]
    assert corner_weight((0, 0, 0)) == 128 and corner_weight((1, 1, 1)) == 1


@pytest.mark.parametrize(
    "spacing", [(1.0, 1.0, 1.0), (0.7, 0.7, 5.0), (0.78, 0.78, 5.0), (1.25, 1.25, 7.7), (5.0, 0.3, 1.7)]
)
def test_table_matches_surface_distance_for_every_code(surface_distance, spacing):
    theirs = surface_distance.lookup_tables.create_table_neighbour_code_to_surface_area(spacing)
    np.testing.assert_allclose(area_table(spacing), theirs, rtol=1e-12, atol=1e-12)


def test_table_matches_for_random_spacings(surface_distance):
    rng = np.random.default_rng(7)
    for _ in range(20):
        spacing = tuple(rng.uniform(0.1, 8.0, 3))
        theirs = surface_distance.lookup_tables.create_table_neighbour_code_to_surface_area(spacing)
        np.testing.assert_allclose(area_table(spacing), theirs, rtol=1e-12, atol=1e-12)


def test_hand_computed_entries():
    table = area_table((1.0, 1.0, 1.0))
    assert table[0] == 0 and table[255] == 0
    # one foreground corner: the triangle through three edge midpoints, area sqrt(3)/8
    assert table[1] == pytest.approx(np.sqrt(3) / 8, abs=1e-15)
    # a whole face of four corners: the unit square at mid-height
    assert table[0b00001111] == pytest.approx(1.0, abs=1e-15)
    # a code and its complement describe the same surface
    np.testing.assert_allclose(table, table[::-1], rtol=0, atol=1e-14)
