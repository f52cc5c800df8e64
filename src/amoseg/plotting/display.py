"""The display frame: how a stored volume is turned so that pictures of it read the radiological way.

Pure functions, no plotting. A volume is first reoriented to LPS index order (axis permutation and
flips only, no interpolation, the nearest axes for an oblique grid, as
``amoseg.io.orientation.canonical_reorientation`` chooses them): +x toward the patient's
left, +y toward posterior, +z toward superior. Planes are then cut from it in the radiological
convention:

| plane | normal | image's left / right | image's top / bottom |
|---|---|---|---|
| axial | z | patient's right (R) / left (L) | anterior (A) / posterior (P) |
| coronal | y | patient's right (R) / left (L) | superior (S) / inferior (I) |
| sagittal | x | anterior (A) / posterior (P) | superior (S) / inferior (I) |

A 2-D plane is an array indexed ``[row, column]``: row 0 is the image's top, column 0 its left, ready
for ``imshow``. Every stored orientation of the same anatomy (LPS, RAS, LAS, a slightly oblique grid)
therefore gives the same picture.

Example:
    >>> frame = DisplayFrame.of(image.geometry)
    >>> labels = frame.to_display(label.array)
    >>> centre = labelled_centre(labels, organ=6)  # the liver, in display-frame voxel indices
    >>> pixels = plane_pixels(labels, "axial", centre)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from amoseg.io.image import Geometry
from amoseg.io.orientation import (
    Reorientation,
    canonical_reorientation,
    reorient_array,
    reorient_geometry,
)

Plane = Literal["axial", "coronal", "sagittal"]
PLANES: tuple[Plane, ...] = ("axial", "coronal", "sagittal")

#: Display-frame axis along each plane's normal (0 = x, 1 = y, 2 = z).
NORMAL_AXIS: dict[str, int] = {"axial": 2, "coronal": 1, "sagittal": 0}

#: Display-frame axes drawn along the image's (rows, columns) for each plane.
_ROW_COLUMN_AXES: dict[str, tuple[int, int]] = {"axial": (1, 0), "coronal": (2, 0), "sagittal": (2, 1)}
#: Whether the row axis runs upward (index 0 at the image's bottom): true for superior-up planes.
_ROWS_REVERSED: dict[str, bool] = {"axial": False, "coronal": True, "sagittal": True}

#: Error-map values of ``error_map``.
CORRECT = 0
FALSE_POSITIVE = 1
FALSE_NEGATIVE = 2
WRONG_ORGAN = 3


@dataclass(frozen=True)
class Edges:
    """Orientation letters on the image's four edges."""

    left: str
    right: str
    top: str
    bottom: str


EDGES: dict[str, Edges] = {
    "axial": Edges(left="R", right="L", top="A", bottom="P"),
    "coronal": Edges(left="R", right="L", top="S", bottom="I"),
    "sagittal": Edges(left="A", right="P", top="S", bottom="I"),
}


@dataclass(frozen=True)
class DisplayFrame:
    """How one stored grid maps onto the display frame (LPS index order).

    Attributes:
        stored: the grid as stored (arrays indexed [x, y, z] along its own axes).
        reorientation: permutation and flips from the stored axes to L, P, S.
        geometry: the grid of the reoriented arrays; same voxels in the world, axes nearest L, P, S.
    """

    stored: Geometry
    reorientation: Reorientation
    geometry: Geometry

    @classmethod
    def of(cls, geometry: Geometry) -> DisplayFrame:
        reorientation = canonical_reorientation(geometry.direction_matrix)
        return cls(geometry, reorientation, reorient_geometry(geometry, reorientation))

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.geometry.shape

    def to_display(self, array: np.ndarray) -> np.ndarray:
        """A view of a stored array (shape of the stored grid) in the display frame."""
        if tuple(array.shape) != tuple(self.stored.shape):
            raise ValueError(
                f"array of shape {tuple(array.shape)} does not fit the grid {tuple(self.stored.shape)}: "
                "give arrays stored on the same grid as the image"
            )
        return reorient_array(array, self.reorientation)

    def to_display_index(self, stored_index: tuple[int, int, int]) -> tuple[int, int, int]:
        """A stored voxel index (x, y, z) as a display-frame voxel index."""
        result = []
        for axis in range(3):
            source = self.reorientation.permutation[axis]
            value = int(stored_index[source])
            if self.reorientation.flipped[axis]:
                value = self.stored.shape[source] - 1 - value
            result.append(value)
        return tuple(result)

    def world_mm(self, index: tuple[float, float, float]) -> np.ndarray:
        """LPS world position (mm) of a display-frame voxel index."""
        geometry = self.geometry
        return np.asarray(geometry.origin) + geometry.direction_matrix @ (
            np.asarray(geometry.spacing) * np.asarray(index, dtype=float)
        )


@dataclass(frozen=True)
class PlaneView:
    """What a picture of one plane needs besides its pixels.

    Attributes:
        plane: "axial", "coronal" or "sagittal".
        slice_index: display-frame index along the plane's normal (0-based).
        slice_count: slices along the normal.
        position_mm: LPS world coordinate along the normal's world axis (z for axial, y for coronal,
            x for sagittal) of the plane's centre voxel, in mm.
        aspect: height / width of one pixel, for ``imshow(aspect=...)``.
        edges: the orientation letters of the image's edges.
    """

    plane: str
    slice_index: int
    slice_count: int
    position_mm: float
    aspect: float
    edges: Edges

    @property
    def caption(self) -> str:
        """E.g. ``"slice 17/40, z = -123.4 mm"``: slices numbered from 1, the LPS world coordinate."""
        world_axis = "xyz"[NORMAL_AXIS[self.plane]]
        return f"slice {self.slice_index + 1}/{self.slice_count}, {world_axis} = {self.position_mm:.1f} mm"


def plane_view(frame: DisplayFrame, plane: str, centre: tuple[int, int, int]) -> PlaneView:
    """The plane through ``centre`` (display-frame voxel index x, y, z) normal to ``plane``'s axis."""
    _check_plane(plane)
    normal = NORMAL_AXIS[plane]
    row_axis, column_axis = _ROW_COLUMN_AXES[plane]
    spacing = frame.geometry.spacing
    index = _clip_index(centre, frame.shape)
    return PlaneView(
        plane=plane,
        slice_index=index[normal],
        slice_count=frame.shape[normal],
        position_mm=float(frame.world_mm(index)[normal]),
        aspect=spacing[row_axis] / spacing[column_axis],
        edges=EDGES[plane],
    )


def plane_pixels(array: np.ndarray, plane: str, centre: tuple[int, int, int]) -> np.ndarray:
    """The 2-D slice of a display-frame array through ``centre``, as [row, column] for ``imshow``.

    Row 0 is the image's top, column 0 its left, in the radiological convention of the module's table.
    A ``centre`` outside the array is clipped to its edge.
    """
    _check_plane(plane)
    normal = NORMAL_AXIS[plane]
    index = _clip_index(centre, array.shape)
    section = np.take(array, index[normal], axis=normal)
    row_axis, column_axis = _ROW_COLUMN_AXES[plane]
    # ``section`` keeps the two remaining axes in increasing order; put the row axis first.
    pixels = section.T if row_axis > column_axis else section
    return pixels[::-1] if _ROWS_REVERSED[plane] else pixels


def pixel_of(
    index: tuple[float, float, float], plane: str, shape: tuple[int, int, int]
) -> tuple[float, float]:
    """Where a display-frame voxel index (x, y, z) lands in ``plane_pixels``: (row, column)."""
    _check_plane(plane)
    row_axis, column_axis = _ROW_COLUMN_AXES[plane]
    row = float(index[row_axis])
    if _ROWS_REVERSED[plane]:
        row = shape[row_axis] - 1 - row
    return row, float(index[column_axis])


def labelled_centre(labels: np.ndarray, organ: int | None = None) -> tuple[int, int, int] | None:
    """Median voxel index (x, y, z) of the voxels labelled ``organ`` (any organ when None).

    The median, not the mean, so the slices through it cut the organ even when it is curved. None when
    no voxel is labelled.
    """
    mask = labels > 0 if organ is None else labels == organ
    found = np.argwhere(mask)
    if found.size == 0:
        return None
    return tuple(int(value) for value in np.median(found, axis=0))


def error_map(prediction: np.ndarray, reference: np.ndarray, organ: int | None = None) -> np.ndarray:
    """Voxel-wise disagreement of two label arrays of the same shape, as uint8.

    With ``organ``: ``FALSE_POSITIVE`` where only the prediction has that organ, ``FALSE_NEGATIVE``
    where only the reference has it. Without: ``FALSE_POSITIVE`` where an organ is predicted on
    reference background, ``FALSE_NEGATIVE`` where a reference organ is predicted as background,
    ``WRONG_ORGAN`` where both hold different organs. ``CORRECT`` (0) elsewhere.
    """
    if prediction.shape != reference.shape:
        raise ValueError(
            f"prediction {tuple(prediction.shape)} and reference {tuple(reference.shape)} differ in shape"
        )
    errors = np.zeros(prediction.shape, dtype=np.uint8)
    if organ is not None:
        predicted, expected = prediction == organ, reference == organ
        errors[predicted & ~expected] = FALSE_POSITIVE
        errors[expected & ~predicted] = FALSE_NEGATIVE
        return errors
    differ = prediction != reference
    errors[differ & (reference == 0)] = FALSE_POSITIVE
    errors[differ & (prediction == 0)] = FALSE_NEGATIVE
    errors[differ & (reference > 0) & (prediction > 0)] = WRONG_ORGAN
    return errors


def _check_plane(plane: str) -> None:
    if plane not in NORMAL_AXIS:
        raise ValueError(f"plane must be one of {', '.join(PLANES)}, got {plane!r}")


def _clip_index(index: tuple[int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int]:
    return tuple(int(min(max(int(value), 0), size - 1)) for value, size in zip(index, shape, strict=True))
