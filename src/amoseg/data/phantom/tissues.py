"""Tissue codes of the phantom's tissue map: organ ids 1..15 are the AMOS labels, the rest unlabelled.

The generator paints one uint8 tissue map; the label map is its organ part and the image is rendered
from it, so labels and intensities can never disagree.
"""

from __future__ import annotations

import numpy as np

from amoseg.labels import MAX_LABEL

AIR = 0
SUBCUTANEOUS_FAT = 16
MUSCLE = 17
VISCERAL_FAT = 18
CORTICAL_BONE = 19
CANCELLOUS_BONE = 20
LUNG = 21
BOWEL = 22
GAS = 23
DISC = 24
CSF = 25
HEART = 26
TISSUE_COUNT = 27

NAMES = {
    AIR: "air",
    SUBCUTANEOUS_FAT: "subcutaneous fat",
    MUSCLE: "muscle",
    VISCERAL_FAT: "visceral fat",
    CORTICAL_BONE: "cortical bone",
    CANCELLOUS_BONE: "cancellous bone",
    LUNG: "lung",
    BOWEL: "bowel",
    GAS: "bowel gas",
    DISC: "intervertebral disc",
    CSF: "cerebrospinal fluid",
    HEART: "heart",
}

#: Where an organ may be painted: the abdominal cavity's fat and bowel, and earlier organs (later
#: organs win). Body wall, skeleton, lungs and heart are never overwritten, so organs stay inside the
#: cavity and bone keeps its shape.
ORGAN_PAINTABLE = np.zeros(256, dtype=bool)
ORGAN_PAINTABLE[[VISCERAL_FAT, BOWEL, GAS, *range(1, MAX_LABEL + 1)]] = True

#: Background structures are painted in order, each over everything before it.
ANY_PAINTABLE = np.ones(256, dtype=bool)


def label_array(tissue: np.ndarray) -> np.ndarray:
    """The AMOS label map (uint8, 0..15) of a tissue map."""
    return np.where(tissue <= MAX_LABEL, tissue, 0).astype(np.uint8)
