from __future__ import annotations

import pytest

from amoseg.evaluation.tolerance import tolerances_for
from amoseg.labels import ORGAN_BY_NAME, ORGAN_IDS


def test_default_is_one_millimetre_for_every_organ():
    assert tolerances_for(ORGAN_IDS) == dict.fromkeys(ORGAN_IDS, 1.0)
    assert tolerances_for((1, 6), tolerance_mm=2.5) == {1: 2.5, 6: 2.5}


def test_flare22_profile():
    table = tolerances_for(ORGAN_IDS, profile="flare22")
    expected = {
        "liver": 5, "pancreas": 5, "stomach": 5,
        "right_kidney": 3, "left_kidney": 3, "spleen": 3, "esophagus": 3, "duodenum": 3,
        "aorta": 2, "inferior_vena_cava": 2, "right_adrenal_gland": 2, "left_adrenal_gland": 2, "gallbladder": 2,
        "bladder": 3, "prostate_uterus": 3,
    }  # fmt: skip
    assert table == {ORGAN_BY_NAME[name].id: float(mm) for name, mm in expected.items()}


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf"), 1e5, 1e308, 100.001])
def test_bad_tolerance_is_refused(value):
    # 1e5 and 1e308 mm used to reach the distance maps and try to allocate terabytes.
    with pytest.raises(ValueError, match=r"more than 0 and at most 100 mm"):
        tolerances_for((1,), tolerance_mm=value)


def test_the_largest_tolerance_is_accepted():
    assert tolerances_for((1, 6), tolerance_mm=100.0) == {1: 100.0, 6: 100.0}


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(ValueError, match="flare22"):
        tolerances_for((1,), profile="flare23")
