"""CT or MR for an input that does not declare it: AMOS's id rule, else the image's own intensities.

AMOS numbers its cases so that ids up to 500 are CT and ids from 501 on are MR; that rule holds for
AMOS's own names (``amos_0507``) only: ``chaos_0001`` is an MR and ``patient_0042`` could be anything.
For other inputs the intensities decide where they can: a CT in Hounsfield units is integer-valued and
holds air near -1000 HU (outside the body, lungs, bowel gas); MR signal is never negative. An image
that shows neither (a CT clipped to a soft-tissue window, intensities already normalized) is left
undecided and the caller must be told.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amoseg.data.naming import case_number, is_amos_case
from amoseg.labels import Modality, modality_from_case_id

#: Voxels at or below this value (HU) count as air (about -1000) or scanner padding (-1024, -3024).
AIR_HU = -900.0
#: A CT of the abdomen has at least this share of air voxels (the phantoms and clinical scans have
#: 5-70 %); a soft-tissue-clipped CT has none.
MIN_AIR_FRACTION = 0.001
#: Voxels looked at for the integer and air tests: an even stride through the volume.
SAMPLE_VOXELS = 1_000_000


@dataclass(frozen=True)
class ModalityDecision:
    """What was decided (None: nothing decides) and why, in words for the user."""

    modality: Modality | None
    reason: str


def modality_from_name(case_id: str, dataset_modality: Modality | None = None) -> Modality | None:
    """The modality a case's name and its dataset declare; None when neither does.

    Order: AMOS's own ids (``amos_NNNN``) by the id rule (AMOS's dataset.json names its one channel
    "CT" although it holds the MR cases too); then the dataset's channel name. The trailing number
    of any other name says nothing.
    """
    number = case_number(case_id)
    if is_amos_case(case_id) and number is not None:
        return modality_from_case_id(number)
    return dataset_modality


def modality_from_intensities(array: np.ndarray) -> ModalityDecision:
    """Decide CT or MR from voxel values alone (see the module docstring for the rule).

    Args:
        array: the image's voxels, any shape and numeric type.

    Returns:
        CT: integer values with at least ``MIN_AIR_FRACTION`` of the voxels at air level;
        MR: no negative value; otherwise None, with the range that left it undecided.
    """
    flat = np.ravel(array, order="K")  # a view for the contiguous arrays readers give
    if flat.size == 0:
        return ModalityDecision(None, "the image has no voxels")
    sample = flat[:: max(1, flat.size // SAMPLE_VOXELS)]
    low, high = float(flat.min()), float(flat.max())
    integer = np.issubdtype(flat.dtype, np.integer) or bool(np.all(np.mod(sample, 1) == 0))
    air = float(np.mean(sample <= AIR_HU))
    if integer and air >= MIN_AIR_FRACTION:
        return ModalityDecision(
            "CT", f"integer intensities with {air:.1%} of voxels at air level (<= {AIR_HU:g} HU), as in CT"
        )
    if low >= 0:
        return ModalityDecision("MR", f"intensities {low:g}..{high:g} are never negative and hold no CT air")
    return ModalityDecision(
        None, f"intensities {low:g}..{high:g} hold no CT air (<= {AIR_HU:g} HU) yet are partly negative"
    )
