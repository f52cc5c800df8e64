"""Fixtures for the preprocessing tests: phantom cases in memory, their fingerprint, and plans."""

from __future__ import annotations

import numpy as np
import pytest

from amoseg.data.fingerprint import Fingerprint, build_fingerprint
from amoseg.data.phantom import generate_case
from amoseg.data.statistics import StatisticsAccumulator, case_statistics
from amoseg.labels import ORGAN_IDS

#: Phantoms of about 2.2-2.5 mm in-plane and 4-4.5 mm slices: fine enough that the smallest organs
#: (adrenal glands) span a few hundred voxels, coarse enough to keep the suite fast.
PHANTOMS = {
    "ct_a": (1, "CT", (171, 171, 68)),
    "ct_b": (2, "CT", (182, 182, 72)),
    "mr_a": (501, "MR", (160, 160, 64)),
}


def fingerprint_of(cases: dict) -> Fingerprint:
    """The fingerprint ``amoseg stats`` would write for in-memory (image, label, modality) cases."""
    accumulator = StatisticsAccumulator()
    for case_id, (image, label, modality) in cases.items():
        accumulator.add(case_statistics(case_id, modality, "train", image, label, ORGAN_IDS))
    return build_fingerprint(accumulator, "phantoms")


@pytest.fixture(scope="session")
def phantom_cases() -> dict:
    """case id -> (Image, LabelMap, modality); axial grids of different spacings."""
    cases = {}
    for case_id, (number, modality, shape) in PHANTOMS.items():
        image, label = generate_case(number, modality, seed=0, shape=shape, direction=np.eye(3))
        cases[case_id] = (image, label, modality)
    return cases


@pytest.fixture(scope="session")
def phantom_fingerprint(phantom_cases) -> Fingerprint:
    return fingerprint_of(phantom_cases)


@pytest.fixture(scope="session")
def fullres_plan(phantom_fingerprint):
    from amoseg.planning import make_plan

    return make_plan(phantom_fingerprint, "fullres")


def dice_per_organ(reference: np.ndarray, other: np.ndarray) -> dict[int, float]:
    """Dice of every organ present in ``reference``."""
    scores = {}
    for organ in np.unique(reference):
        if organ == 0:
            continue
        a, b = reference == organ, other == organ
        scores[int(organ)] = float(2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))
    return scores
