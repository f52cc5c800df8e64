"""Surface elements of a binary mask: 2x2x2 neighbour codes and the area each code stands for.

The surface follows the convention of DeepMind's ``surface-distance`` package, so that NSD values agree
with the challenge's reference code. The area table is derived here from first principles rather than
stored: for each of the 256 neighbour codes, marching cubes on the 2x2x2 cell puts a vertex at the
midpoint of every edge between a foreground and a background corner, the vertices are joined into
closed polygons face by face, and each polygon is split into triangles. Two choices fix the surface,
and both were confirmed against ``surface-distance`` for every code and many spacings:

* A face whose diagonal corners disagree (foreground, background, foreground, background) is cut so
  that the corners of the minority side are separated (the foreground ones when the cell holds four of
  each). This is the classic marching-cubes table, which treats a code and its complement alike.
* A polygon that is not planar is split into the triangles that give the largest total area on a unit
  grid: that triangulation follows the polygon's folds instead of cutting across them.

A triangle's area vector (half the cross product of two edges, in voxel units) scales to millimetres
by ``(sy*sz, sx*sz, sx*sy)`` per component, which is how the area of a code depends on the spacing.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

Corner = tuple[int, int, int]
Point = tuple[float, float, float]

#: The corners of a 2x2x2 cell as offsets (dx, dy, dz) from its lowest voxel.
CELL_CORNERS: tuple[Corner, ...] = tuple(itertools.product((0, 1), repeat=3))


def corner_weight(corner: Corner) -> int:
    """The bit a cell corner contributes to the neighbour code.

    The lowest corner (0, 0, 0) is the most significant bit (128) and (1, 1, 1) the least (1); that is
    the bit order of ``surface-distance``, which the code table is indexed by.
    """
    dx, dy, dz = corner
    return 1 << (7 - (4 * dx + 2 * dy + dz))


def area_table(spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Area in mm² of the surface inside a cell, for each of the 256 neighbour codes.

    Args:
        spacing_mm: voxel size (x, y, z) in mm, in the array's axis order.

    Returns:
        float64 array of shape (256,); codes 0 (all background) and 255 (all foreground) have area 0.
    """
    sx, sy, sz = (float(value) for value in spacing_mm)
    scale = np.array([sy * sz, sx * sz, sx * sy])
    table = np.zeros(256)
    for code, normals in enumerate(_area_vectors()):
        if len(normals):
            table[code] = np.linalg.norm(normals * scale, axis=1).sum()
    return table


@functools.cache
def _area_vectors() -> tuple[np.ndarray, ...]:
    """Per code, the area vectors (voxel units) of its triangles, shape (triangles, 3)."""
    vectors = []
    for code in range(256):
        foreground = {corner for corner in CELL_CORNERS if code & corner_weight(corner)}
        triangles = [
            triangle for polygon in _polygons(foreground) for triangle in _largest_triangulation(polygon)
        ]
        vectors.append(np.array([_area_vector(*triangle) for triangle in triangles]).reshape(-1, 3))
    return tuple(vectors)


def _faces() -> list[tuple[Corner, Corner, Corner, Corner]]:
    """The six faces of the cell, each as its four corners in cyclic order."""
    faces = []
    for axis in range(3):
        other_a, other_b = (index for index in range(3) if index != axis)
        for value in (0, 1):
            cycle = []
            for a, b in ((0, 0), (1, 0), (1, 1), (0, 1)):
                corner = [0, 0, 0]
                corner[axis], corner[other_a], corner[other_b] = value, a, b
                cycle.append(tuple(corner))
            faces.append(tuple(cycle))
    return faces


def _midpoint(a: Corner, b: Corner) -> Point:
    return tuple((p + q) / 2 for p, q in zip(a, b, strict=True))


def _polygons(foreground: set[Corner]) -> list[list[Point]]:
    """Closed polygons of the cell's surface, built from one segment (or two) per face."""
    separate_foreground = len(foreground) <= 4
    segments = []
    for cycle in _faces():
        inside = [corner in foreground for corner in cycle]
        crossings = [i for i in range(4) if inside[i] != inside[(i + 1) % 4]]
        if len(crossings) == 2:
            first, second = ((cycle[i], cycle[(i + 1) % 4]) for i in crossings)
            segments.append((_midpoint(*first), _midpoint(*second)))
        elif len(crossings) == 4:
            # Ambiguous face: cut off each corner of the minority side on its own.
            for i in range(4):
                if inside[i] == separate_foreground:
                    before, after = cycle[(i - 1) % 4], cycle[(i + 1) % 4]
                    segments.append((_midpoint(before, cycle[i]), _midpoint(cycle[i], after)))
    neighbours: dict[Point, list[Point]] = {}
    for a, b in segments:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    polygons, visited = [], set()
    for start in neighbours:
        if start in visited:
            continue
        polygon, previous, current = [start], None, start
        visited.add(start)
        while True:
            following = [p for p in neighbours[current] if p != previous and p not in visited]
            if not following:
                break
            previous, current = current, following[0]
            polygon.append(current)
            visited.add(current)
        polygons.append(polygon)
    return polygons


def _area_vector(a: Point, b: Point, c: Point) -> np.ndarray:
    return 0.5 * np.cross(np.subtract(b, a), np.subtract(c, a))


def _largest_triangulation(polygon: list[Point]) -> list[tuple[Point, Point, Point]]:
    """Triangles of the polygon's triangulation with the largest total area (interval DP)."""
    count = len(polygon)
    best: dict[tuple[int, int], tuple[float, list[tuple[int, int, int]]]] = {}
    for length in range(1, count):
        for i in range(count - length):
            j = i + length
            if length == 1:
                best[i, j] = (0.0, [])
                continue
            options = []
            for k in range(i + 1, j):
                area = float(np.linalg.norm(_area_vector(polygon[i], polygon[k], polygon[j])))
                options.append(
                    (best[i, k][0] + best[k, j][0] + area, [*best[i, k][1], *best[k, j][1], (i, k, j)])
                )
            best[i, j] = max(options, key=lambda option: option[0])
    return [(polygon[i], polygon[k], polygon[j]) for i, k, j in best[0, count - 1][1]]
