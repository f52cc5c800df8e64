"""Reorientation to one canonical orientation by axis permutation and flips only (no interpolation).

Canonical orientation: the array axes point, as closely as the grid allows, along ITK's LPS world axes:
+x toward the patient's left, +y toward posterior, +z toward superior. That is the identity direction
matrix (nibabel axis codes L, P, S). An oblique grid keeps its residual rotation in the direction of
the reoriented geometry; everything after this step works in voxel space, so no voxel is interpolated
here and the step is undone exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

from amoseg.io.image import Geometry, make_geometry

#: Name of the canonical orientation, as ITK's LPS world axes the array axes point along.
CANONICAL_ORIENTATION = "LPS"


@dataclass(frozen=True)
class Reorientation:
    """How an array was turned into the canonical orientation.

    Attributes:
        permutation: canonical axis i is original axis ``permutation[i]``.
        flipped: canonical axis i runs opposite to that original axis.
    """

    permutation: tuple[int, int, int]
    flipped: tuple[bool, bool, bool]

    @property
    def is_identity(self) -> bool:
        return self.permutation == (0, 1, 2) and not any(self.flipped)

    def to_dict(self) -> dict:
        return {"permutation": list(self.permutation), "flipped": list(self.flipped)}

    @classmethod
    def from_dict(cls, data: dict) -> Reorientation:
        return cls(tuple(int(v) for v in data["permutation"]), tuple(bool(v) for v in data["flipped"]))


def canonical_reorientation(direction: np.ndarray | tuple) -> Reorientation:
    """The permutation and flips that bring a direction matrix closest to the identity (LPS axes).

    Among the six axis permutations, the one whose chosen direction cosines have the largest total
    magnitude wins; ties (exactly 45 degrees) go to the first in lexicographic order, so the choice is
    deterministic.
    """
    matrix = np.asarray(direction, dtype=float).reshape(3, 3)
    best = max(permutations(range(3)), key=lambda perm: sum(abs(matrix[i, perm[i]]) for i in range(3)))
    flipped = tuple(bool(matrix[i, best[i]] < 0) for i in range(3))
    return Reorientation(tuple(int(axis) for axis in best), flipped)


def reorient_array(array: np.ndarray, reorientation: Reorientation) -> np.ndarray:
    """A view of ``array`` (indexed [x, y, z] in its own grid) in the canonical orientation."""
    view = np.transpose(array, reorientation.permutation)
    flips = tuple(axis for axis, flip in enumerate(reorientation.flipped) if flip)
    return np.flip(view, flips) if flips else view


def undo_reorient_array(array: np.ndarray, reorientation: Reorientation) -> np.ndarray:
    """A view of a canonical-orientation array back in the original axis order and directions."""
    flips = tuple(axis for axis, flip in enumerate(reorientation.flipped) if flip)
    view = np.flip(array, flips) if flips else array
    return np.transpose(view, np.argsort(reorientation.permutation))


def reorient_geometry(geometry: Geometry, reorientation: Reorientation) -> Geometry:
    """The geometry of ``reorient_array``'s result: same voxels in the world, axes permuted and flipped."""
    direction = geometry.direction_matrix
    permutation, flipped = reorientation.permutation, reorientation.flipped
    # The new first voxel is the old voxel at the far end of every flipped axis.
    corner = np.zeros(3)
    for axis in range(3):
        if flipped[axis]:
            corner[permutation[axis]] = geometry.shape[permutation[axis]] - 1
    origin = np.asarray(geometry.origin) + direction @ (np.asarray(geometry.spacing) * corner)
    signs = np.where(flipped, -1.0, 1.0)
    return make_geometry(
        shape=tuple(geometry.shape[axis] for axis in permutation),
        spacing=tuple(geometry.spacing[axis] for axis in permutation),
        origin=tuple(origin),
        direction=direction[:, list(permutation)] * signs[None, :],
    )
