"""Surfaces of binary masks and the area of each surface lying within a tolerance of the other.

Geometry, in the convention of DeepMind's ``surface-distance``: a surface element sits on a voxel
*corner* (the point shared by a 2x2x2 group of voxels); the corner is on the surface when that group
holds both foreground and background, and its area comes from the group's neighbour code
(``amoseg.evaluation.surfels``). Voxels outside the array count as background, so a mask touching the
border of the volume has a closed surface there. Distances are Euclidean, in mm, between corners.

All arrays are indexed [x, y, z] with the spacing in the same order; every block here is a small crop,
never the whole volume.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from amoseg.evaluation.surfels import area_table

Spacing = tuple[float, float, float]

#: Relative cost of one distance-transform voxel against one neighbour lookup, measured with scipy's
#: feature transform and numpy gathers; decides which of two exact methods is cheaper for an organ.
_TRANSFORM_COST_PER_VOXEL = 30.0


@dataclass(frozen=True)
class SurfaceOverlap:
    """Surface areas of a prediction and a reference, in mm², and the parts within the tolerance.

    Attributes:
        pred_area_mm2: total surface area of the prediction.
        ref_area_mm2: total surface area of the reference.
        pred_within_mm2: prediction surface within the tolerance of the reference surface.
        ref_within_mm2: reference surface within the tolerance of the prediction surface.
    """

    pred_area_mm2: float
    ref_area_mm2: float
    pred_within_mm2: float
    ref_within_mm2: float

    @property
    def surface_dice(self) -> float:
        """NSD: overlapping area over total area; NaN when both surfaces are empty."""
        total = self.pred_area_mm2 + self.ref_area_mm2
        return (self.pred_within_mm2 + self.ref_within_mm2) / total if total > 0 else math.nan


def neighbour_codes(padded_mask: np.ndarray) -> np.ndarray:
    """Neighbour code of every corner of a mask that has at least one background layer on each side.

    Args:
        padded_mask: boolean or 0/1 array indexed [x, y, z], shape (nx, ny, nz).

    Returns:
        uint8 array of shape (nx - 1, ny - 1, nz - 1): entry [i, j, k] is the code of the corner shared
        by voxels [i:i+2, j:j+2, k:k+2], with ``corner_weight`` bits (the lowest voxel is bit 128).
    """
    mask = padded_mask.view(np.uint8) if padded_mask.dtype == np.bool_ else padded_mask.astype(np.uint8)
    # The weight 2**(7 - 4dx - 2dy - dz) factorises per axis, so three pairwise passes replace eight
    # shifted sums.
    along_z = (mask[:, :, :-1] << 1) | mask[:, :, 1:]
    along_y = (along_z[:, :-1] << 2) | along_z[:, 1:]
    return (along_y[:-1] << 4) | along_y[1:]


def surface_overlap(
    pred_block: np.ndarray, ref_block: np.ndarray, spacing_mm: Spacing, tolerance_mm: float
) -> SurfaceOverlap:
    """Surface areas of two masks and the parts within ``tolerance_mm`` of the other surface.

    Args:
        pred_block, ref_block: boolean masks of the same shape, indexed [x, y, z]. Blocks cut with
            ``padding_voxels`` background layers on each side are used as they are; others are padded.
        spacing_mm: voxel size (x, y, z) in mm.
        tolerance_mm: a surface element counts as overlapping when the closest corner of the other
            surface is at most this far, in mm (``distance <= tolerance``).

    Returns:
        the areas; an empty mask has area 0, and nothing is within the tolerance of an empty surface.
    """
    table = _area_table(tuple(float(value) for value in spacing_mm))
    padding = padding_voxels(spacing_mm, tolerance_mm)
    pred_block = _with_padding(pred_block, padding)
    ref_block = _with_padding(ref_block, padding)
    pred_codes = neighbour_codes(pred_block)
    ref_codes = neighbour_codes(ref_block)
    pred_surface = (pred_codes != 0) & (pred_codes != 255)
    ref_surface = (ref_codes != 0) & (ref_codes != 255)
    pred_points = np.flatnonzero(pred_surface)
    ref_points = np.flatnonzero(ref_surface)
    pred_areas = table[pred_codes.ravel()[pred_points]]
    ref_areas = table[ref_codes.ravel()[ref_points]]
    if not len(pred_points) or not len(ref_points):
        return SurfaceOverlap(float(pred_areas.sum()), float(ref_areas.sum()), 0.0, 0.0)
    pred_hit = within_tolerance(pred_points, ref_surface, spacing_mm, tolerance_mm)
    ref_hit = within_tolerance(ref_points, pred_surface, spacing_mm, tolerance_mm)
    return SurfaceOverlap(
        pred_area_mm2=float(pred_areas.sum()),
        ref_area_mm2=float(ref_areas.sum()),
        pred_within_mm2=float(pred_areas[pred_hit].sum()),
        ref_within_mm2=float(ref_areas[ref_hit].sum()),
    )


def _with_padding(block: np.ndarray, padding: tuple[int, int, int]) -> np.ndarray:
    """The block itself when its outer layers are background, else a zero-padded C-ordered copy."""
    block = np.asarray(block, dtype=bool)
    has_margin = all(
        block.shape[axis] > 2 * pad
        and not block[(slice(None),) * axis + (slice(0, pad),)].any()
        and not block[(slice(None),) * axis + (slice(-pad, None),)].any()
        for axis, pad in enumerate(padding)
    )
    if has_margin:
        return np.ascontiguousarray(block)
    return np.pad(block, [(pad, pad) for pad in padding])


def within_tolerance(
    points: np.ndarray, surface: np.ndarray, spacing_mm: Spacing, tolerance_mm: float
) -> np.ndarray:
    """For each corner in ``points``, whether some corner of ``surface`` lies within the tolerance.

    Both methods below are exact and give the same answer; the cheaper one is chosen per call. The
    distance of an offset (dx, dy, dz) voxels is ``sqrt((dx*sx)**2 + (dy*sy)**2 + (dz*sz)**2)``,
    evaluated in float64 in the same order as ``scipy.ndimage.distance_transform_edt``, so the
    comparison with the tolerance is decided exactly as in ``surface-distance``.

    Args:
        points: flat (C-order) indices into ``surface`` of the corners to test.
        surface: boolean corner grid, C-contiguous, with at least ``ball_radius_voxels`` empty corners
            along each side.
        spacing_mm: voxel size (x, y, z) in mm.
        tolerance_mm: the tolerance in mm.

    Returns:
        boolean array, one entry per point.
    """
    offsets = ball_offsets(tuple(float(value) for value in spacing_mm), float(tolerance_mm))
    if len(points) * len(offsets) <= _TRANSFORM_COST_PER_VOXEL * surface.size:
        return _within_by_lookup(points, surface, offsets)
    return _within_by_transform(points, surface, spacing_mm, tolerance_mm)


def _within_by_lookup(points: np.ndarray, surface: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Look up each point's neighbours within the ball, nearest first, dropping points already found."""
    strides = np.array(surface.strides) // surface.itemsize
    flat_offsets = offsets @ strides
    flat_surface = surface.ravel()
    hit = np.zeros(len(points), dtype=bool)
    pending = np.arange(len(points))
    candidates = points
    for flat_offset in flat_offsets:
        found = flat_surface[candidates + flat_offset]
        if found.any():
            hit[pending[found]] = True
            keep = ~found
            pending, candidates = pending[keep], candidates[keep]
            if not len(pending):
                break
    return hit


def _within_by_transform(
    points: np.ndarray, surface: np.ndarray, spacing_mm: Spacing, tolerance_mm: float
) -> np.ndarray:
    """Nearest surface corner from scipy's exact feature transform, distance only at ``points``."""
    nearest = ndimage.distance_transform_edt(
        ~surface, sampling=spacing_mm, return_distances=False, return_indices=True
    )
    where = np.unravel_index(points, surface.shape)
    squared = np.zeros(len(points))
    for axis in range(3):
        step = (nearest[axis][where] - where[axis]).astype(np.float64) * spacing_mm[axis]
        squared += step * step
    return np.sqrt(squared) <= tolerance_mm


@functools.lru_cache(maxsize=64)
def ball_offsets(spacing_mm: Spacing, tolerance_mm: float) -> np.ndarray:
    """Integer offsets (dx, dy, dz) whose length in mm is at most the tolerance, nearest first.

    Returns:
        int64 array of shape (n, 3); the first row is (0, 0, 0).
    """
    radius = ball_radius_voxels(spacing_mm, tolerance_mm)
    axes = [np.arange(-r, r + 1) for r in radius]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    steps = grid.astype(np.float64) * np.asarray(spacing_mm)
    squared = steps[:, 0] * steps[:, 0] + steps[:, 1] * steps[:, 1] + steps[:, 2] * steps[:, 2]
    lengths = np.sqrt(squared)
    inside = lengths <= tolerance_mm
    order = np.argsort(lengths[inside], kind="stable")
    offsets = grid[inside][order]
    offsets.setflags(write=False)
    return offsets


def ball_radius_voxels(spacing_mm: Spacing, tolerance_mm: float) -> tuple[int, int, int]:
    """Whole voxels per axis that bound the ball of the tolerance.

    One more than ``floor(tolerance / spacing)``, so that rounding in the division can never drop an
    offset that the distance test would accept.
    """
    return tuple(math.floor(tolerance_mm / float(step)) + 1 for step in spacing_mm)


def padding_voxels(spacing_mm: Spacing, tolerance_mm: float) -> tuple[int, int, int]:
    """Background layers a block needs on each side for ``surface_overlap``."""
    return tuple(1 + radius for radius in ball_radius_voxels(spacing_mm, tolerance_mm))


@functools.lru_cache(maxsize=64)
def _area_table(spacing_mm: Spacing) -> np.ndarray:
    return area_table(spacing_mm)
