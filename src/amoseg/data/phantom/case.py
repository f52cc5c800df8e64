"""One phantom case: geometry, anatomy and appearance drawn from the seed, then rendered."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amoseg.data.phantom import tissues
from amoseg.data.phantom.anatomy import draw_anatomy, paint_tissues
from amoseg.data.phantom.appearance import render
from amoseg.data.phantom.grid import draw_grid
from amoseg.io.image import Image, LabelMap
from amoseg.labels import LAST_CT_CASE_ID, Modality

#: One case in this many has a non-axial grid (oblique and/or flipped axes).
NON_AXIAL_EVERY = 4
#: The order in which non-axial cases cycle through orientations ("axial" is the identity).
NON_AXIAL_ORIENTATIONS = ("oblique", "RAS", "oblique RAS", "LAS")


@dataclass(frozen=True)
class CaseInfo:
    """What was drawn for a case beyond its arrays: recorded in the dataset's dataset.json."""

    sex: str
    orientation: str


def orientation_of(case_number: int, seed: int) -> str:
    """ "axial" for most cases; every ``NON_AXIAL_EVERY``-th case of each modality is non-axial.

    Picking by number rather than by chance guarantees that even a four-case dataset holds one; the
    seed shifts which cases they are.
    """
    position = (case_number - LAST_CT_CASE_ID if case_number > LAST_CT_CASE_ID else case_number) + seed
    if position % NON_AXIAL_EVERY:
        return "axial"
    return NON_AXIAL_ORIENTATIONS[(position // NON_AXIAL_EVERY - 1) % len(NON_AXIAL_ORIENTATIONS)]


def generate_case(
    case_number: int,
    modality: Modality,
    seed: int,
    shape: tuple[int, int, int] | None = None,
    spacing: tuple[float, float, float] | None = None,
    *,
    direction: np.ndarray | None = None,
    sex: str | None = None,
) -> tuple[Image, LabelMap]:
    """Generate one synthetic abdomen in memory.

    The same (case_number, seed) gives the same anatomy whatever the modality, shape or spacing, and
    byte-identical arrays for the same arguments.

    Args:
        case_number: AMOS case number (the writer uses 1..500 for CT, 501.. for MR); here it only
            selects the random stream, so any modality may be asked for.
        modality: "CT" (int16 HU) or "MR" (int16, non-negative, arbitrary units).
        seed: dataset seed.
        shape: voxels (x, y, z). Default: drawn, 96..160 in-plane and 32..64 slices.
        spacing: voxel size in mm (x, y, z). Default: drawn, 2.6..3.4 mm in-plane and 4.6..6 mm slices;
            with only ``shape`` given, chosen so the grid covers the body (about 380 x 380 x 290 mm).
            A grid that is too small cuts organs off, and then they may be missing.
        direction: 3x3 direction cosines (columns: world LPS direction of array axes x, y, z).
            Default: axial, except every fourth case (see ``orientation_of``).
        sex: "male" (prostate) or "female" (uterus); default drawn per case.

    Returns:
        (image, label map) on the same geometry, arrays indexed [x, y, z]; labels are uint8 0..15.

    Example:
        >>> image, label = generate_case(1, "CT", seed=0, shape=(64, 64, 32))
        >>> sorted(set(label.array.ravel().tolist())) == list(range(16))
        True
    """
    image, label, _ = generate_case_with_info(
        case_number, modality, seed, shape, spacing, direction=direction, sex=sex
    )
    return image, label


def generate_case_with_info(
    case_number: int,
    modality: Modality,
    seed: int,
    shape: tuple[int, int, int] | None = None,
    spacing: tuple[float, float, float] | None = None,
    *,
    direction: np.ndarray | None = None,
    sex: str | None = None,
) -> tuple[Image, LabelMap, CaseInfo]:
    """``generate_case`` plus what was drawn (sex, orientation)."""
    if modality not in ("CT", "MR"):
        raise ValueError(f"modality must be 'CT' or 'MR', got {modality!r}")
    # Independent streams: asking for another shape or modality must not change the anatomy.
    geometry_rng, anatomy_rng, appearance_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence([seed, case_number]).spawn(3)
    )
    orientation = "custom" if direction is not None else orientation_of(case_number, seed)
    grid = draw_grid(geometry_rng, orientation, shape, spacing, direction)
    anatomy = draw_anatomy(anatomy_rng, sex)
    tissue = paint_tissues(grid, anatomy)
    pixels = render(tissue, modality, grid, appearance_rng)
    info = CaseInfo(sex=anatomy.sex, orientation=orientation)
    return Image(pixels, grid.geometry), LabelMap(tissues.label_array(tissue), grid.geometry), info
