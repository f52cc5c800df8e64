"""The learned-organs rule, worked out by hand on a few cases."""

from __future__ import annotations

from types import SimpleNamespace

from amoseg.model.learned import MIN_CASES, learned_from_record, learned_labels


def _case(modality, present):
    return SimpleNamespace(modality=modality, present=tuple(present))


def test_an_organ_needs_two_training_cases_of_the_modality():
    assert MIN_CASES == 2
    cases = [
        _case("MR", [1, 2, 3, 6]),
        _case("CT", [1, 2, 3, 4, 6]),
        _case("MR", [1, 6]),
        _case("CT", [1, 2, 3, 6, 13]),  # duodenum in one CT case only
        _case("CT", [6]),
    ]
    # CT: spleen 2, right kidney 2, left kidney 2, gallbladder 1, liver 3, duodenum 1 cases.
    # MR: spleen 2, kidneys 1 each, liver 2 cases. CT comes first whatever the order of the cases.
    assert learned_labels(cases) == {"CT": (1, 2, 3, 6), "MR": (1, 6)}
    assert list(learned_labels(cases)) == ["CT", "MR"]


def test_a_modality_that_taught_nothing_is_listed_empty():
    assert learned_labels([_case("MR", [6]), _case("CT", [6]), _case("CT", [6])]) == {"CT": (6,), "MR": ()}


def test_the_record_is_read_back_and_older_records_fall_back_to_the_annotated_organs():
    assert learned_from_record({"learned_labels": {"CT": [6, 1], "MR": []}}) == {"CT": (1, 6), "MR": ()}
    older = {"annotated_labels": [1, 2, 3, 6, 12], "modalities": ["CT", "MR"]}
    assert learned_from_record(older) == {"CT": (1, 2, 3, 6, 12), "MR": (1, 2, 3, 6, 12)}
