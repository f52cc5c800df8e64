"""merge_fingerprints: one planning fingerprint for a CT set and an MR set planned together."""

from __future__ import annotations

import pytest

from amoseg.data.fingerprint import FINGERPRINT_VERSION, merge_fingerprints
from amoseg.errors import AmosegError
from amoseg.planning import make_plan

CT_INTENSITY = {"min": -125.0, "p0.5": -100.0, "median": 90.0, "mean": 85.0, "std": 50.0, "p99.5": 260.0}
MR_INTENSITY = {"min": 0.0, "p0.5": 40.0, "median": 300.0, "mean": 320.0, "std": 120.0, "p99.5": 900.0}


def _fingerprint(name: str, modality: str, case_ids: list[str], spacing, shape, intensity) -> dict:
    return {
        "fingerprint_version": FINGERPRINT_VERSION,
        "dataset": name,
        "cases": [
            {
                "case_id": case_id,
                "modality": modality,
                "split": "train",
                "spacing_mm": list(spacing),
                "shape": list(shape),
                "shape_after_crop": list(shape),
                "labelled": True,
                "axis_permutation": [0, 1, 2],
            }
            for case_id in case_ids
        ],
        "foreground_intensity": {modality: dict(intensity)},
    }


@pytest.fixture
def ct():
    return _fingerprint(
        "btcv-ct", "CT", ["btcv_0001", "btcv_0002"], (1.3, 1.3, 3.0), (257, 257, 140), CT_INTENSITY
    )


@pytest.fixture
def mr():
    return _fingerprint("chaos-mr", "MR", ["chaos_0005"], (1.25, 1.25, 7.7), (256, 256, 36), MR_INTENSITY)


def test_merge_keeps_every_case_and_each_modalitys_intensity(ct, mr):
    merged = merge_fingerprints([ct, mr])
    assert merged["dataset"] == "btcv-ct+chaos-mr"
    assert merged["fingerprint_version"] == FINGERPRINT_VERSION
    assert [case["case_id"] for case in merged["cases"]] == ["btcv_0001", "btcv_0002", "chaos_0005"]
    assert merged["cases"][2]["axis_permutation"] == [0, 1, 2]
    assert merged["foreground_intensity"] == {"CT": CT_INTENSITY, "MR": MR_INTENSITY}


def test_merge_copies_instead_of_sharing(ct, mr):
    merged = merge_fingerprints([ct, mr], name="joint")
    merged["cases"][0]["spacing_mm"][0] = 99.0
    merged["foreground_intensity"]["CT"]["mean"] = 0.0
    assert merged["dataset"] == "joint"
    assert ct["cases"][0]["spacing_mm"][0] == 1.3
    assert ct["foreground_intensity"]["CT"]["mean"] == 85.0


def test_merged_fingerprint_plans_ct_from_the_ct_set_and_mr_per_image(ct, mr):
    plan = make_plan(merge_fingerprints([ct, mr]), "cpu")
    assert plan.dataset == "btcv-ct+chaos-mr"
    assert plan.normalization["CT"].clip_low == CT_INTENSITY["p0.5"]
    assert plan.normalization["CT"].mean == CT_INTENSITY["mean"]
    assert plan.normalization["MR"].method == "per_image_body"


def test_merge_refuses_a_case_in_two_fingerprints(ct):
    other = _fingerprint("copy", "MR", ["btcv_0002"], (1.0, 1.0, 1.0), (10, 10, 10), MR_INTENSITY)
    with pytest.raises(AmosegError, match="btcv_0002 is in both btcv-ct and copy"):
        merge_fingerprints([ct, other])


def test_merge_refuses_one_modalitys_statistics_from_two_sets(ct):
    other = _fingerprint("more-ct", "CT", ["ct_0001"], (1.0, 1.0, 1.0), (10, 10, 10), CT_INTENSITY)
    with pytest.raises(AmosegError, match="CT foreground intensities come from both btcv-ct and more-ct"):
        merge_fingerprints([ct, other])


def test_merge_refuses_nothing_and_mixed_versions(ct, mr):
    with pytest.raises(AmosegError, match="no fingerprint"):
        merge_fingerprints([])
    with pytest.raises(AmosegError, match="versions"):
        merge_fingerprints([ct, {**mr, "fingerprint_version": FINGERPRINT_VERSION + 1}])
