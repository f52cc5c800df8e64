"""Where organs lie along the patient's head-to-feet axis, and which stretch of that axis a scan covers.

Positions are world coordinates along LPS z, the patient's superior direction, in mm: one number per
organ that means the same in every scan whatever its voxel order or obliquity (``world = origin +
direction @ (spacing * index)``, ``amoseg.io.image``). The dataset statistics (``amoseg stats``) and the
quality flags of a prediction (``amoseg.inference.quality``) measure organs with these same functions,
so a position learned from training label maps and one measured on a prediction compare like with like.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from amoseg.io.boxes import label_boxes
from amoseg.io.image import Geometry
from amoseg.labels import MAX_LABEL

#: Row of the direction matrix that gives world z (superior) per array axis.
_SUPERIOR = 2


@dataclass(frozen=True)
class OrganPlacement:
    """One organ's place in one scan.

    Attributes:
        centre_superior_mm: median of its voxels' world z (LPS, toward the head), mm. The median rather
            than the mean or the box centre, so that a small stray blob barely moves it.
        touches_edge: some voxel lies on a face of the grid, so part of the organ may lie outside the
            scan: its volume is then a lower bound and its centre is biased toward the scan's inside.
            Only the grid's faces count: an organ cut by a CT's circular reconstruction field of view
            or at the border of padding does not touch them, and passes for whole (docs/quality.md).
    """

    centre_superior_mm: float
    touches_edge: bool


def organ_placements(
    labels: np.ndarray, geometry: Geometry, organs: Iterable[int] | None = None
) -> dict[int, OrganPlacement]:
    """The placement of every organ present in a label map.

    Args:
        labels: integer label map indexed [x, y, z] (any strides), on ``geometry``'s grid.
        geometry: the grid's geometry.
        organs: the label ids to measure; None: every id 1..15 present.

    Returns:
        organ id -> its placement; organs absent from the map are left out.

    Raises:
        ValueError: the label map's shape is not the geometry's.
    """
    if tuple(labels.shape) != tuple(geometry.shape):
        raise ValueError(f"label map of shape {labels.shape} on a grid of shape {geometry.shape}")
    wanted = None if organs is None else {int(organ) for organ in organs}
    step_mm = superior_step_mm(geometry)
    boxes = label_boxes(labels, MAX_LABEL)
    placements: dict[int, OrganPlacement] = {}
    for organ, box in enumerate(boxes, start=1):
        if box is None or (wanted is not None and organ not in wanted):
            continue
        indices = np.nonzero(labels[box] == organ)
        heights = np.full(indices[0].shape, geometry.origin[_SUPERIOR], dtype=np.float64)
        for axis, (index, part) in enumerate(zip(indices, box, strict=True)):
            if step_mm[axis] != 0.0:
                heights += step_mm[axis] * (index + part.start)
        touches = any(
            part.start == 0 or part.stop == size for part, size in zip(box, geometry.shape, strict=True)
        )
        placements[organ] = OrganPlacement(float(np.median(heights)), bool(touches))
    return placements


def superior_step_mm(geometry: Geometry) -> tuple[float, float, float]:
    """How far world z (superior) moves per voxel step along each array axis, mm."""
    row = geometry.direction[_SUPERIOR]
    # Direction cosines of an axial grid carry float noise (1e-17) off the diagonal: treat it as zero so
    # that an in-plane axis never counts as moving along the patient.
    return tuple(
        0.0 if abs(cosine) < 1e-9 else float(cosine * spacing)
        for cosine, spacing in zip(row, geometry.spacing, strict=True)
    )


def superior_coverage_mm(geometry: Geometry) -> tuple[float, float] | None:
    """The stretch of world z (superior, mm) that the scan covers over its whole cross-section.

    Along the array axis closest to the patient's long axis, every line of voxels covers an interval
    of world z between its first and last voxel centre; on an oblique grid the intervals of different
    lines are shifted. The coverage is the part common to all of them (the intersection over the four
    corner lines), so a height inside it is inside the scan wherever the organ lies in the plane.
    For an axial grid it is simply the span from the lowest to the highest slice centre.

    Returns:
        (lowest, highest) world z in mm; None when no height is covered by every line (a grid tilted
        so far that its lines do not overlap along the patient).
    """
    step_mm = np.array(superior_step_mm(geometry))
    along = int(np.argmax(np.abs(step_mm)))
    across = [axis for axis in range(3) if axis != along]
    length = step_mm[along] * (geometry.shape[along] - 1)
    low, high = -np.inf, np.inf
    for first in (0, geometry.shape[across[0]] - 1):
        for second in (0, geometry.shape[across[1]] - 1):
            start = geometry.origin[_SUPERIOR] + step_mm[across[0]] * first + step_mm[across[1]] * second
            low = max(low, min(start, start + length))
            high = min(high, max(start, start + length))
    if low > high:
        return None
    return float(low), float(high)
