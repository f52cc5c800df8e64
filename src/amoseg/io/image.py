"""In-memory images: an array plus its geometry, in one array convention used everywhere.

The convention, for every volume that crosses the I/O boundary (what the readers return, what the
writers take, what the predictor hands back):

- type: a numpy array. torch enters only at the network and inside resampling, and never leaves the
  function that uses it: a function returns the type it takes.
- axis order: ``[x, y, z]`` (ITK index order, NIfTI voxel order ``[i, j, k]``), so ``shape``,
  ``spacing`` and the columns of ``direction`` all refer to the same axes, and the dataset card's
  (x, y, z) tables read straight off them.
- memory order: Fortran order of ``[x, y, z]`` (x varies fastest). That is exactly SimpleITK's
  C-ordered ``[z, y, x]`` buffer and a file's voxel order, seen through ``.T``: a volume is read into
  it and written from it without a copy. Conversion from and to SimpleITK happens in
  ``amoseg.io.sitk_io`` and nowhere else. Code that builds a volume for the original grid allocates
  it in this order (``amoseg.preprocessing.case.to_original_grid``).

Functions accept any strides (views: reoriented, cropped, flipped) and say so where it matters for
speed; ``amoseg.io.boxes.label_boxes`` finds bounding boxes in memory order whatever the order.
Plan space is the exception, by design: the preprocessing cache and the network's input are C order
(``amoseg.preprocessing.cache``), what torch and patch reads want.

World coordinates are ITK's LPS, in millimetres: ``world = origin + direction @ (spacing * index)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Vector3 = tuple[float, float, float]
Matrix3 = tuple[Vector3, Vector3, Vector3]

#: Default tolerances when two geometries must match: spacing and origin in mm, direction cosines.
SPACING_TOLERANCE_MM = 1e-3
ORIGIN_TOLERANCE_MM = 1e-2
DIRECTION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Geometry:
    """Size and placement of a 3-D voxel grid.

    Attributes:
        shape: voxels per axis (x, y, z).
        spacing: voxel size in mm per axis (x, y, z).
        origin: world position (LPS, mm) of the centre of voxel (0, 0, 0).
        direction: 3x3 matrix, row-major; column k is the world direction of array axis k.
    """

    shape: tuple[int, int, int]
    spacing: Vector3
    origin: Vector3
    direction: Matrix3

    @property
    def direction_matrix(self) -> np.ndarray:
        return np.array(self.direction, dtype=float)

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    def affine_lps(self) -> np.ndarray:
        """4x4 matrix from voxel index (x, y, z, 1) to LPS world position in mm."""
        affine = np.eye(4)
        affine[:3, :3] = self.direction_matrix * np.array(self.spacing)[None, :]
        affine[:3, 3] = self.origin
        return affine

    def differences(
        self,
        other: Geometry,
        spacing_tolerance_mm: float = SPACING_TOLERANCE_MM,
        origin_tolerance_mm: float = ORIGIN_TOLERANCE_MM,
        direction_tolerance: float = DIRECTION_TOLERANCE,
    ) -> list[str]:
        """Say how ``other`` differs from this grid beyond the tolerances; empty when they match.

        Each entry is a short phrase with the size of the difference, e.g.
        ``"origin differs by 5.000 mm"``.
        """
        problems = []
        if tuple(self.shape) != tuple(other.shape):
            problems.append(f"shape {_fmt_shape(self.shape)} vs {_fmt_shape(other.shape)}")
            # Further comparisons still help: a resampled label differs in spacing too.
        spacing_gap = float(np.max(np.abs(np.subtract(self.spacing, other.spacing))))
        if spacing_gap > spacing_tolerance_mm:
            problems.append(
                f"spacing {_fmt_vec(self.spacing)} vs {_fmt_vec(other.spacing)} mm "
                f"(differs by {spacing_gap:.3g} mm)"
            )
        origin_gap = float(np.linalg.norm(np.subtract(self.origin, other.origin)))
        if origin_gap > origin_tolerance_mm:
            problems.append(f"origin differs by {origin_gap:.3f} mm")
        direction_gap = float(np.max(np.abs(self.direction_matrix - other.direction_matrix)))
        if direction_gap > direction_tolerance:
            problems.append(f"direction differs by {direction_gap:.3g} (largest cosine difference)")
        return problems


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(int(size)) for size in shape)


def _fmt_vec(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{value:.4g}" for value in values) + ")"


def make_geometry(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    direction: np.ndarray | tuple | None = None,
) -> Geometry:
    """Build a Geometry from loose inputs (lists, arrays), checking they describe a valid 3-D grid."""
    matrix = np.eye(3) if direction is None else np.asarray(direction, dtype=float).reshape(3, 3)
    if len(shape) != 3 or len(spacing) != 3 or len(origin) != 3:
        raise ValueError("shape, spacing and origin need three values each (x, y, z)")
    if min(spacing) <= 0:
        raise ValueError(f"spacing must be positive, got {spacing}")
    if abs(abs(np.linalg.det(matrix)) - 1.0) > 1e-3:
        raise ValueError("direction must be an orthonormal 3x3 matrix")
    return Geometry(
        shape=tuple(int(size) for size in shape),
        spacing=tuple(float(value) for value in spacing),
        origin=tuple(float(value) for value in origin),
        direction=tuple(tuple(float(value) for value in row) for row in matrix),
    )


@dataclass(frozen=True, eq=False)
class Image:
    """An intensity image: voxel array indexed [x, y, z] and its geometry."""

    array: np.ndarray
    geometry: Geometry

    def __post_init__(self) -> None:
        _check_array(self.array, self.geometry)


@dataclass(frozen=True, eq=False)
class LabelMap:
    """A label map: integer voxel array indexed [x, y, z] and its geometry.

    A separate type from Image so that no code path can smooth or normalise labels by mistake.
    """

    array: np.ndarray
    geometry: Geometry

    def __post_init__(self) -> None:
        _check_array(self.array, self.geometry)
        if not np.issubdtype(self.array.dtype, np.integer):
            raise TypeError(f"label maps hold integers, got {self.array.dtype}")


def _check_array(array: np.ndarray, geometry: Geometry) -> None:
    if array.ndim != 3:
        raise ValueError(f"expected a 3-D array, got {array.ndim}-D")
    if tuple(array.shape) != tuple(geometry.shape):
        raise ValueError(f"array shape {array.shape} does not match geometry shape {geometry.shape}")
