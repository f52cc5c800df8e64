from __future__ import annotations

import math

import pytest

from amoseg.evaluation.aggregate import Evaluation
from amoseg.evaluation.case import CaseResult
from amoseg.evaluation.metrics import OrganScore

NAN = math.nan


def organ(label, dsc, nsd, present=True):
    voxels = 10 if present else 0
    return OrganScore(label, dsc, nsd, 1.0, voxels, voxels, 0, 0, 0, 0)


def case(case_id, modality, scores):
    return CaseResult(case_id, modality, tuple(scores), 1.0, None, None)


def test_means_leave_out_not_a_number_and_count_it():
    cases = (
        case("a", "CT", [organ(1, 0.8, 0.6), organ(4, NAN, NAN, present=False)]),
        case("b", "CT", [organ(1, 0.6, 0.4), organ(4, 0.5, 0.3)]),
        case("c", "MR", [organ(1, 1.0, 1.0), organ(4, NAN, NAN, present=False)]),
    )
    evaluation = Evaluation(cases=cases, labels=(1, 4), tolerances_mm={1: 1.0, 4: 1.0})
    ct, mr, everything = (evaluation.groups[name] for name in ("CT", "MR", "all"))
    assert ct.cases == 2 and mr.cases == 1 and everything.cases == 3
    spleen, gallbladder = ct.organs
    assert spleen.dsc_mean == pytest.approx(0.7) and spleen.dsc_std == pytest.approx(0.1)
    assert gallbladder.dsc_mean == 0.5 and gallbladder.scored == 1 and gallbladder.not_a_number == 1
    assert ct.mean_dsc == pytest.approx((0.7 + 0.5) / 2)  # mean over organs of the organ means
    assert ct.mean_nsd == pytest.approx((0.5 + 0.3) / 2)
    assert math.isnan(mr.organs[1].dsc_mean) and mr.mean_dsc == 1.0  # an organ never scored is left out
    assert everything.organs[0].nsd_mean == pytest.approx((0.6 + 0.4 + 1.0) / 3)
    assert everything.not_a_number == 2


def test_an_empty_group_is_nan_not_an_error():
    evaluation = Evaluation(
        cases=(case("a", "CT", [organ(1, 0.8, 0.6)]),), labels=(1,), tolerances_mm={1: 2.0}
    )
    assert evaluation.groups["MR"].cases == 0 and math.isnan(evaluation.groups["MR"].mean_dsc)
