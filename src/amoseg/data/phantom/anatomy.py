"""One case's anatomy: drawing it, and painting it onto a voxel grid as a tissue map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amoseg.data.phantom import tissues
from amoseg.data.phantom.body import Body, draw_body
from amoseg.data.phantom.grid import Grid
from amoseg.data.phantom.organs import draw_organs
from amoseg.data.phantom.shapes import Warp

#: Fewest voxels an organ keeps: the adrenals (about 3 cm3) can fall between the voxel centres of a
#: coarse grid, and every phantom case must contain all 15 organs.
MIN_ORGAN_VOXELS = 6

SEXES = ("male", "female")


@dataclass(frozen=True)
class Anatomy:
    """A drawn case: body structures (painted first, in order) and organs (then, over the cavity).

    Attributes:
        sex: "male" or "female": decides prostate or uterus.
        body: skin, fat, muscle, skeleton, lungs, heart and bowel.
        organs: (shape, label id) in painting order.
        warp: smooth displacement applied to the organs' coordinates.
    """

    sex: str
    body: Body
    organs: tuple[tuple[object, int], ...]
    warp: Warp


def draw_anatomy(rng: np.random.Generator, sex: str | None = None) -> Anatomy:
    """Draw one case's anatomy; ``sex`` is drawn (even odds) when not given."""
    drawn_sex = SEXES[int(rng.integers(2))]
    sex = sex or drawn_sex
    if sex not in SEXES:
        raise ValueError(f"sex must be 'male' or 'female', got {sex!r}")
    body = draw_body(rng)
    organs = draw_organs(rng, body.placement, sex)
    return Anatomy(sex=sex, body=body, organs=organs, warp=Warp.draw(rng))


def paint_tissues(grid: Grid, anatomy: Anatomy) -> np.ndarray:
    """Sample the anatomy at the grid's voxel centres: a uint8 tissue map indexed [x, y, z].

    Values 1..15 are the AMOS organs, the others the codes of ``tissues``. Each structure is evaluated
    only inside the grid box that covers its bounding box.
    """
    tissue = np.zeros(grid.shape, dtype=np.uint8)
    for shape, code in anatomy.body.structures:
        _paint(tissue, grid, shape, code, tissues.ANY_PAINTABLE)
    for shape, code in anatomy.organs:
        _paint(tissue, grid, shape, code, tissues.ORGAN_PAINTABLE, anatomy.warp)
    counts = np.bincount(tissue.ravel(), minlength=tissues.TISSUE_COUNT)
    for shape, code in anatomy.organs:
        if counts[code] < MIN_ORGAN_VOXELS:
            # Never take voxels from another organ that is itself close to the minimum.
            scarce = [
                other for _, other in anatomy.organs if other != code and counts[other] < 2 * MIN_ORGAN_VOXELS
            ]
            _ensure_voxels(tissue, grid, shape, code, anatomy.warp, scarce)
            counts = np.bincount(tissue.ravel(), minlength=tissues.TISSUE_COUNT)
    return tissue


def _paint(
    tissue: np.ndarray, grid: Grid, shape, code: int, paintable: np.ndarray, warp: Warp | None = None
) -> None:
    for part in shape.parts() if hasattr(shape, "parts") else (shape,):
        values, box = _evaluate(grid, part, warp)
        if values is None:
            continue
        region = tissue[box]
        inside = values < 0
        region[inside if paintable is tissues.ANY_PAINTABLE else inside & paintable[region]] = code


def _evaluate(grid: Grid, shape, warp: Warp | None):
    low, high = shape.bounds()
    if warp is not None:
        # A voxel at p shows the shape at p + warp(p): grow the box by the largest displacement.
        low, high = low - warp.bound_mm, high + warp.bound_mm
    box = grid.index_box((low, high))
    if box is None:
        return None, None
    x, y, z = grid.patient_coordinates(box)
    if warp is not None:
        x, y, z = warp(x, y, z)
    size = tuple(part.stop - part.start for part in box)
    return np.broadcast_to(shape.evaluate(x, y, z), size), box


def _ensure_voxels(tissue: np.ndarray, grid: Grid, shape, code: int, warp: Warp, scarce: list[int]) -> None:
    """Give an organ its ``MIN_ORGAN_VOXELS`` most interior voxels, except voxels of ``scarce`` organs."""
    values, box = _evaluate(grid, shape, warp)
    if values is None:
        return
    region = tissue[box]
    candidates = np.where(np.isin(region, scarce), np.inf, values).ravel()
    count = min(MIN_ORGAN_VOXELS, int(np.isfinite(candidates).sum()))
    if count == 0:
        return
    chosen = np.argpartition(candidates, count - 1)[:count]
    region[np.unravel_index(chosen, region.shape)] = code
