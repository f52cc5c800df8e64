"""Organ placement along the patient and the stretch a scan covers, against hand-worked grids and a
brute-force computation of every voxel's world position."""

from __future__ import annotations

import math

import numpy as np
import pytest

from amoseg.data.placement import organ_placements, superior_coverage_mm
from amoseg.io.image import make_geometry


def _world_z(geometry, indices: np.ndarray) -> np.ndarray:
    """World z of voxel indices (N x 3) through the 4 x 4 affine: independent of the module's arithmetic."""
    homogeneous = np.c_[indices, np.ones(len(indices))]
    return (homogeneous @ geometry.affine_lps().T)[:, 2]


def _tilted(angle_degrees: float) -> np.ndarray:
    """Rotation about x: array axis z leans toward world y, array axis y toward world -z."""
    angle = math.radians(angle_degrees)
    return np.array(
        [[1.0, 0.0, 0.0], [0.0, math.cos(angle), math.sin(angle)], [0.0, -math.sin(angle), math.cos(angle)]]
    )


def test_the_centre_is_the_median_height_of_the_organs_voxels_worked_by_hand():
    geometry = make_geometry((10, 10, 8), (1.0, 1.0, 5.0), (0.0, 0.0, 100.0))
    labels = np.zeros((10, 10, 8), dtype=np.uint8, order="F")
    labels[2:7, 2:4, 2] = 6  # 10 voxels on slice 2 (z = 110 mm)
    labels[3, 3, 3] = 6  # one on slice 3 (115 mm)
    labels[3, 3, 5] = 6  # one on slice 5 (125 mm): the median of 12 heights is still 110
    labels[4:6, 4:6, 4:6] = 1  # 4 on slice 4 and 4 on slice 5: median 122.5 mm
    placements = organ_placements(labels, geometry)
    assert placements[6].centre_superior_mm == pytest.approx(110.0)
    assert placements[1].centre_superior_mm == pytest.approx(122.5)
    assert set(placements) == {1, 6}
    assert organ_placements(labels, geometry, organs=[1]).keys() == {1}


def test_touching_any_face_of_the_grid_marks_an_organ_as_possibly_cut():
    geometry = make_geometry((10, 10, 8))
    labels = np.zeros((10, 10, 8), dtype=np.uint8)
    labels[3:5, 3:5, 0:2] = 8  # on the bottom slice
    labels[9, 3:5, 3:5] = 9  # on the last x column
    labels[3:5, 3:5, 3:5] = 6  # inside
    placements = organ_placements(labels, geometry)
    assert (placements[8].touches_edge, placements[9].touches_edge, placements[6].touches_edge) == (
        True,
        True,
        False,
    )


@pytest.mark.parametrize(
    "direction", [np.eye(3), np.diag([-1.0, -1.0, 1.0]), np.diag([1.0, 1.0, -1.0]), _tilted(20.0)]
)
def test_centres_match_every_voxels_world_position_whatever_the_orientation(direction):
    rng = np.random.default_rng(1)
    geometry = make_geometry((12, 14, 9), (1.5, 1.2, 4.0), (-30.0, 12.0, 250.0), direction)
    labels = np.zeros(geometry.shape, dtype=np.uint8)
    labels[2:9, 3:11, 1:8][rng.random((7, 8, 7)) < 0.4] = 4
    placements = organ_placements(labels, geometry)
    expected = float(np.median(_world_z(geometry, np.argwhere(labels == 4))))
    assert placements[4].centre_superior_mm == pytest.approx(expected, abs=1e-9)


def test_axial_coverage_runs_from_the_lowest_to_the_highest_slice_centre():
    axial = make_geometry((10, 10, 8), (1.0, 1.0, 5.0), (0.0, 0.0, 100.0))
    assert superior_coverage_mm(axial) == pytest.approx((100.0, 135.0))
    feet_first = make_geometry((10, 10, 8), (1.0, 1.0, 5.0), (0.0, 0.0, 100.0), np.diag([1.0, 1.0, -1.0]))
    assert superior_coverage_mm(feet_first) == pytest.approx((65.0, 100.0))


def test_an_oblique_scan_covers_only_the_heights_every_line_of_voxels_reaches():
    geometry = make_geometry((6, 10, 20), (1.0, 2.0, 3.0), (0.0, 0.0, 0.0), _tilted(10.0))
    # Brute force: each (x, y) line along array z covers [min z, max z]; intersect over all lines.
    lows, highs = [], []
    for i in range(6):
        for j in range(10):
            heights = _world_z(geometry, np.array([[i, j, k] for k in range(20)]))
            lows.append(heights.min())
            highs.append(heights.max())
    assert superior_coverage_mm(geometry) == pytest.approx((max(lows), min(highs)))
    # By hand: z leans by cos 10 deg (3 mm slices, 19 steps); y lowers it by sin 10 deg per 2 mm row.
    cos, sin = math.cos(math.radians(10.0)), math.sin(math.radians(10.0))
    assert superior_coverage_mm(geometry) == pytest.approx((0.0, 19 * 3.0 * cos - 9 * 2.0 * sin))


def test_a_grid_tilted_until_its_lines_do_not_overlap_covers_nothing():
    # At 44 degrees array z still rises fastest, but its 5 slices rise 2.9 mm while the 20 rows of
    # array y shift them by 13 mm: no height is reached by every line.
    geometry = make_geometry((4, 20, 5), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), _tilted(44.0))
    lines = [_world_z(geometry, np.array([[0, j, k] for k in range(5)])) for j in (0, 19)]
    assert max(line.min() for line in lines) > min(line.max() for line in lines)
    assert superior_coverage_mm(geometry) is None


def test_a_label_map_on_another_grid_is_refused_with_both_shapes():
    with pytest.raises(ValueError, match=r"\(4, 4, 4\).*\(5, 5, 5\)"):
        organ_placements(np.zeros((4, 4, 4), dtype=np.uint8), make_geometry((5, 5, 5)))
