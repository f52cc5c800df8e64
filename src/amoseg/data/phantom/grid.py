"""Voxel grids for phantom cases: drawing a case's geometry, and mapping voxels to the patient frame.

The anatomy lives in a patient frame in mm whose axes are the world LPS axes (the patient lies straight
on the table, as the DICOM patient coordinate system assumes) and whose origin sits at the middle of
the abdomen. A case's grid may be rotated or flipped against those axes; sampling always goes through
``world = origin + direction @ (spacing * index)``, so the organs keep their place in the world
whatever the voxel order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from amoseg.data.phantom.shapes import Box, random_rotation
from amoseg.io.image import Geometry, make_geometry

#: In-plane field of view drawn per case (mm): the body is at most about 350 x 270 mm.
FOV_XY_MM = (370.0, 410.0)
#: Cranio-caudal field of view (mm): lung bases at about +130 down to the pelvic floor at about -150.
FOV_Z_MM = 290.0
#: Patient-frame z of the field of view's middle, so that it spans the anatomy above.
FOV_MIDDLE_Z_MM = -10.0
#: Default grid sizes and spacings: small, so that tests and a CPU demo stay fast.
IN_PLANE_VOXELS = (96, 160)
IN_PLANE_SPACING_MM = (2.6, 3.4)
SLICES = (32, 64)
SLICE_SPACING_MM = (4.6, 6.0)

ORIENTATIONS = ("axial", "oblique", "RAS", "LAS", "oblique RAS")


@dataclass(frozen=True)
class Grid:
    """A case's voxel grid and where the patient frame sits in its world.

    Attributes:
        geometry: the grid (shape, spacing, origin, direction), arrays indexed [x, y, z].
        patient_origin: world position (LPS, mm) of the patient frame's origin.
    """

    geometry: Geometry
    patient_origin: tuple[float, float, float]

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.geometry.shape

    def _index_to_patient(self) -> tuple[np.ndarray, np.ndarray]:
        matrix = self.geometry.direction_matrix * np.array(self.geometry.spacing)[None, :]
        offset = np.array(self.geometry.origin) - np.array(self.patient_origin)
        return matrix, offset

    def index_box(self, box: Box) -> tuple[slice, slice, slice] | None:
        """The index slices of the grid that cover a patient-frame box (mm), or None when outside."""
        matrix, offset = self._index_to_patient()
        low, high = box
        corners = np.array(
            [[c0, c1, c2] for c0 in (low[0], high[0]) for c1 in (low[1], high[1]) for c2 in (low[2], high[2])]
        )
        indices = np.linalg.solve(matrix, (corners - offset).T).T
        start = np.maximum(np.floor(indices.min(axis=0)).astype(int), 0)
        stop = np.minimum(np.ceil(indices.max(axis=0)).astype(int) + 1, self.shape)
        if np.any(start >= stop):
            return None
        return tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))

    def patient_coordinates(self, box: tuple[slice, slice, slice] | None = None):
        """Patient-frame coordinates (mm, float32) of the voxels in ``box`` (default: the whole grid).

        Returns three arrays that broadcast to the box's shape. A coordinate that does not depend on an
        index axis keeps size 1 along it (an axial grid's x is ``(n, 1, 1)``), so callers must broadcast.
        """
        box = box or tuple(slice(0, size) for size in self.shape)
        matrix, offset = self._index_to_patient()
        ranges = [np.arange(part.start, part.stop, dtype=float) for part in box]
        coordinates = []
        for row in range(3):
            terms = []
            for axis in np.flatnonzero(matrix[row]):
                shape = [1, 1, 1]
                shape[axis] = len(ranges[axis])
                terms.append(matrix[row, axis] * ranges[axis].reshape(shape))
            # The offset rides on the first (1-D) term, which saves a pass over the full box.
            terms[0] = terms[0] + offset[row]
            total = terms[0].astype(np.float32)
            for term in terms[1:]:
                total = total + term.astype(np.float32)
            coordinates.append(total)
        return tuple(coordinates)


def draw_grid(
    rng: np.random.Generator,
    orientation: str,
    shape: tuple[int, int, int] | None = None,
    spacing: tuple[float, float, float] | None = None,
    direction: np.ndarray | None = None,
) -> Grid:
    """Draw a case's grid: spacing and size within the defaults unless given, placement and direction.

    Args:
        rng: the case's geometry stream.
        orientation: one of ``ORIENTATIONS``; ignored when ``direction`` is given.
        shape: voxels (x, y, z); when only ``shape`` is given, the spacing is chosen to cover the field
            of view.
        spacing: mm (x, y, z); when only ``spacing`` is given, the shape is chosen to cover it.
        direction: 3x3 direction cosines (columns = array axes in LPS), overriding ``orientation``.
    """
    # Every draw happens whatever the arguments, in a fixed order, so that a case keeps its place in
    # the world when a caller asks for another shape, spacing or direction.
    fov_xy = rng.uniform(*FOV_XY_MM)
    in_plane, slice_spacing = rng.uniform(*IN_PLANE_SPACING_MM), rng.uniform(*SLICE_SPACING_MM)
    # A patient lies anywhere on the table: real origins are hundreds of mm from zero.
    patient_origin = np.array([rng.uniform(-15, 15), rng.uniform(-40, 40), rng.uniform(-700, -100)])
    middle = patient_origin + np.array(
        [rng.uniform(-8, 8), rng.uniform(-8, 8), FOV_MIDDLE_Z_MM + rng.uniform(-4, 4)]
    )
    matrix = _direction(rng, orientation) if direction is None else np.asarray(direction, dtype=float)
    # Per array axis, the values of the world axis it runs along: a coronal grid's second axis spans
    # the body's height, not its width.
    world_axis = np.argmax(np.abs(matrix), axis=0)
    fov = np.array([fov_xy, fov_xy, FOV_Z_MM])[world_axis]
    if shape is None and spacing is None:
        default_spacing = np.array([in_plane, in_plane, slice_spacing])[world_axis]
        low, high = np.array([IN_PLANE_VOXELS, IN_PLANE_VOXELS, SLICES])[world_axis].T
        shape = tuple(int(value) for value in np.clip(np.ceil(fov / default_spacing), low, high))
        # Clipping the size may leave the field of view short; coarser spacing restores it.
        spacing = tuple(float(value) for value in np.maximum(default_spacing, fov / np.array(shape)))
    elif spacing is None:
        spacing = tuple(float(value) for value in fov / np.array(shape))
    elif shape is None:
        shape = tuple(int(value) for value in np.ceil(fov / np.array(spacing)))
    half_extent = (np.array(shape) - 1) / 2 * np.array(spacing)
    origin = middle - matrix @ half_extent
    geometry = make_geometry(tuple(shape), tuple(spacing), tuple(origin), matrix)
    return Grid(geometry, tuple(float(value) for value in patient_origin))


def _direction(rng: np.random.Generator, orientation: str) -> np.ndarray:
    flips = {
        "RAS": np.diag([-1.0, -1.0, 1.0]),
        "LAS": np.diag([1.0, -1.0, 1.0]),
        "oblique RAS": np.diag([-1.0, -1.0, 1.0]),
    }
    matrix = flips.get(orientation, np.eye(3))
    if orientation.startswith("oblique"):
        # A few degrees, as a gantry tilt or a tilted reformat gives; far enough from axial that code
        # which assumes a diagonal direction matrix gets it wrong.
        matrix = random_rotation(rng, 8.0) @ matrix
        while _tilt_degrees(matrix) < 3.0:
            matrix = random_rotation(rng, 8.0) @ matrix
    elif orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r}; expected one of {', '.join(ORIENTATIONS)}")
    return matrix


def _tilt_degrees(matrix: np.ndarray) -> float:
    """Largest angle between an array axis and the nearest world axis, in degrees."""
    return float(max(math.degrees(math.acos(min(1.0, np.max(np.abs(matrix[:, axis]))))) for axis in range(3)))
