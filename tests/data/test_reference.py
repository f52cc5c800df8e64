"""The quality reference: ranges built from per-case measures worked by hand, exact merging, JSON round
trips that refuse what they do not know, the fallback per modality, and the AMOS card's numbers."""

from __future__ import annotations

import json

import pytest

from amoseg.data.amos_card import (
    CARD_CT_INTENSITY,
    CARD_MR_INTENSITY,
    CARD_VOLUMES_CM3,
    amos_card_reference,
)
from amoseg.data.reference import (
    ModalityReference,
    ObservedRange,
    OrganMeasure,
    OrganReference,
    QualityReference,
    merge_references,
    reference_from_cases,
    with_fallback,
)

LIVER, SPLEEN, AORTA = 6, 1, 8


def _measure(volume_ml, mean, centre_mm, touches_edge=False) -> OrganMeasure:
    return OrganMeasure(volume_ml, mean, centre_mm, touches_edge)


#: Three CT cases and one MR case. The aorta always touches the scan's edge (it crosses the scan).
CT_CASES = [
    {LIVER: _measure(1500.0, 55.0, 120.0), SPLEEN: _measure(200.0, 45.0, 130.0), AORTA: _measure(90.0, 150.0, 100.0, True)},
    {LIVER: _measure(1300.0, 60.0, 80.0), SPLEEN: _measure(150.0, 48.0, 95.0), AORTA: _measure(120.0, 180.0, 70.0, True)},
    # The liver is cut here: its volume says nothing, and it places no other organ.
    {LIVER: _measure(400.0, 52.0, 10.0, True), SPLEEN: _measure(260.0, 40.0, 30.0)},
]  # fmt: skip
MR_CASES = [{LIVER: _measure(1400.0, 300.0, 0.0), SPLEEN: _measure(180.0, 250.0, -12.0)}]


def _reference(ct=CT_CASES, mr=MR_CASES) -> QualityReference:
    return reference_from_cases([*(("CT", case) for case in ct), *(("MR", case) for case in mr)])


def test_ranges_worked_by_hand_keep_whole_organs_for_volumes_and_positions():
    reference = _reference()
    ct = reference.for_modality("CT")
    assert (ct.source, ct.cases) == ("training", 3)
    liver, spleen, aorta = ct.organs[LIVER], ct.organs[SPLEEN], ct.organs[AORTA]
    assert liver.volume_ml == ObservedRange(1300.0, 1500.0, 2)  # the cut liver of 400 mL left out
    assert liver.intensity_mean == ObservedRange(52.0, 60.0, 3)  # every case's mean counts
    assert spleen.volume_ml == ObservedRange(150.0, 260.0, 3)
    assert aorta.volume_ml is None and aorta.intensity_mean == ObservedRange(150.0, 180.0, 2)
    # Spleen above liver: 130 - 120 = 10 and 95 - 80 = 15 mm; not in case 3, whose liver is cut.
    assert dict(spleen.centre_above_mm) == {LIVER: ObservedRange(10.0, 15.0, 2)}
    assert dict(liver.centre_above_mm) == {SPLEEN: ObservedRange(-15.0, -10.0, 2)}
    assert dict(aorta.centre_above_mm) == {}  # never whole
    mr = reference.for_modality("MR")
    assert mr.cases == 1 and mr.organs[SPLEEN].centre_above_mm[LIVER] == ObservedRange(-12.0, -12.0, 1)


def test_no_labelled_case_gives_no_reference():
    assert reference_from_cases([]) is None


def test_merging_two_datasets_references_equals_the_reference_of_all_their_cases():
    first, second = CT_CASES[:2], CT_CASES[2:]
    merged = merge_references([_reference(first, MR_CASES), _reference(second, [])])
    assert merged == _reference(CT_CASES, MR_CASES)
    assert merged.for_modality("CT").cases == 3
    assert merge_references([]) is None


def test_a_range_merges_to_the_extremes_and_adds_cases_unless_one_side_does_not_count():
    assert ObservedRange(1, 5, 2).merged(ObservedRange(-1, 3, 4)) == ObservedRange(-1, 5, 6)
    assert ObservedRange(1, 5, 2).merged(ObservedRange(0, 1)) == ObservedRange(0, 5, None)
    assert ObservedRange.of([]) is None and ObservedRange.of([3.0, -1.0]) == ObservedRange(-1.0, 3.0, 2)


@pytest.mark.parametrize("bounds", [(2.0, 1.0), (float("nan"), 1.0), (0.0, float("inf"))])
def test_a_range_needs_finite_ordered_bounds(bounds):
    with pytest.raises(ValueError, match="finite min <= max"):
        ObservedRange(*bounds)


def test_training_and_card_sources_do_not_merge():
    with pytest.raises(ValueError, match="cannot merge"):
        _reference().for_modality("CT").merged(amos_card_reference().for_modality("CT"))


def test_json_round_trip_is_exact_and_names_organs():
    reference = _reference()
    data = json.loads(json.dumps(reference.to_dict()))
    assert data["CT"]["organs"]["spleen"]["centre_above_mm"] == {
        "liver": {"min": 10.0, "max": 15.0, "cases": 2}
    }
    assert data["CT"]["organs"]["aorta"]["volume_ml"] is None
    assert QualityReference.from_dict(data) == reference
    card = amos_card_reference()
    assert QualityReference.from_dict(json.loads(json.dumps(card.to_dict()))) == card


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda data: data["CT"].update(extra=1), "unknown modality reference keys"),
        (lambda data: data["CT"]["organs"]["liver"].update(typo=1), "unknown organ reference keys"),
        (lambda data: data["CT"]["organs"]["liver"]["volume_ml"].update(p50=1), "unknown range keys"),
        (
            lambda data: data["CT"]["organs"].update(kidney=data["CT"]["organs"]["liver"]),
            "unknown organ 'kidney'",
        ),
        (lambda data: data["CT"].update(source="atlas"), "source 'atlas'"),
        (lambda data: data.update(PET=data["CT"]), "PET"),
    ],
)
def test_unknown_content_is_refused(edit, message):
    data = _reference().to_dict()
    edit(data)
    with pytest.raises(ValueError, match=message):
        QualityReference.from_dict(data)


def test_the_fallback_replaces_each_modality_measured_on_too_few_cases():
    card = amos_card_reference()
    trained = _reference()  # 3 CT cases, 1 MR case
    chosen = with_fallback(trained, card, min_cases=2)
    assert chosen.for_modality("CT") == trained.for_modality("CT")
    assert chosen.for_modality("MR") == card.for_modality("MR")
    assert with_fallback(trained, card, min_cases=4) == card
    assert with_fallback(None, card, min_cases=1) == card


def test_the_card_reference_holds_the_cards_numbers():
    card = amos_card_reference()
    ct, mr = card.for_modality("CT"), card.for_modality("MR")
    assert (ct.source, ct.cases, mr.source) == ("amos_card", None, "amos_card")
    # Label Information Statistics, Liver: 653 .. 5840 cm3 over 200 instances, for CT and MR alike.
    assert ct.organs[LIVER].volume_ml == mr.organs[LIVER].volume_ml == ObservedRange(653, 5840, 200)
    # CT intensity, Liver: 0.5% = -21.97, 99.5% = 86 HU; MR, Liver: 86 .. 277.
    assert ct.organs[LIVER].intensity_mean == ObservedRange(-21.97, 86.0)
    assert mr.organs[LIVER].intensity_mean == ObservedRange(86.0, 277.0)
    assert mr.organs[14].intensity_mean is None and mr.organs[15].intensity_mean is None  # nan in the card
    assert all(not organ.centre_above_mm for organ in [*ct.organs.values(), *mr.organs.values()])
    assert set(ct.organs) == set(mr.organs) == set(range(1, 16))
    assert len(CARD_VOLUMES_CM3) == len(CARD_CT_INTENSITY) == len(CARD_MR_INTENSITY) == 15


def test_the_cards_implausible_spleen_volumes_are_kept_as_printed_but_not_used():
    assert CARD_VOLUMES_CM3["spleen"][:4] == (1379, 2571, 2669, 7330)
    assert CARD_VOLUMES_CM3["spleen"][1] > CARD_VOLUMES_CM3["liver"][1]  # a spleen larger than the liver
    assert amos_card_reference().for_modality("CT").organs[SPLEEN].volume_ml is None


def test_a_reference_is_frozen_all_the_way_down():
    reference = _reference()
    with pytest.raises(TypeError):
        reference.modalities["PET"] = None  # type: ignore[index]
    with pytest.raises(TypeError):
        reference.for_modality("CT").organs[3] = OrganReference()  # type: ignore[index]
    with pytest.raises(TypeError):
        reference.for_modality("CT").organs[SPLEEN].centre_above_mm[3] = None  # type: ignore[index]


def test_modality_reference_describes_its_source():
    assert _reference().for_modality("CT").describe("CT") == "the model's training data (3 labelled CT cases)"
    card = ModalityReference("amos_card", None, {})
    assert card.describe("MR") == "the AMOS 2022 dataset card"


def test_only_amos_organ_ids_are_accepted():
    with pytest.raises(ValueError, match=r"organ ids \[16\] are not AMOS organs"):
        ModalityReference("training", 1, {16: OrganReference()})
    with pytest.raises(ValueError, match=r"organ ids \[0\]"):
        OrganReference(centre_above_mm={0: ObservedRange(0.0, 1.0, 1)})
