"""The quality reference: ranges built from per-case measures worked by hand, JSON round trips that
refuse what they do not know, the fallback to the AMOS card per organ and range, and the card's numbers."""

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
    reference_from_cases,
    with_fallback,
)

LIVER, SPLEEN, AORTA, BLADDER = 6, 1, 8, 14


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


def test_a_range_of_values_is_their_extremes_and_count_from_training():
    assert ObservedRange.of([]) is None
    assert ObservedRange.of([3.0, -1.0]) == ObservedRange(-1.0, 3.0, 2, "training")


@pytest.mark.parametrize("bounds", [(2.0, 1.0), (float("nan"), 1.0), (0.0, float("inf"))])
def test_a_range_needs_finite_ordered_bounds(bounds):
    with pytest.raises(ValueError, match="finite min <= max"):
        ObservedRange(*bounds)


def test_json_round_trip_is_exact_and_names_organs():
    reference = _reference()
    data = json.loads(json.dumps(reference.to_dict()))
    assert data["CT"]["organs"]["spleen"]["centre_above_mm"] == {
        "liver": {"min": 10.0, "max": 15.0, "cases": 2}
    }
    assert data["CT"]["organs"]["aorta"]["volume_ml"] is None
    # A training range is stored without its source, as before ranges had one: older readers refuse
    # unknown keys. A card's range names its source, and a filled-in reference its fallback.
    assert data["CT"]["organs"]["liver"]["volume_ml"] == {"min": 1300.0, "max": 1500.0, "cases": 2}
    assert "fallback" not in data["CT"]
    assert QualityReference.from_dict(data) == reference
    card = amos_card_reference()
    assert card.to_dict()["CT"]["organs"]["liver"]["intensity_mean"] == {
        "min": -21.97,
        "max": 86.0,
        "source": "amos_card",
    }
    chosen = with_fallback(reference, card, min_cases=2)
    assert chosen.to_dict()["CT"]["fallback"] == "amos_card"
    for item in (card, chosen):
        assert QualityReference.from_dict(json.loads(json.dumps(item.to_dict()))) == item


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
        (lambda data: data["CT"]["organs"]["liver"]["volume_ml"].update(source="atlas"), "source 'atlas'"),
        (lambda data: data["CT"].update(fallback="training"), "fallback 'training'"),
        # A card range in a training reference that names no fallback: its origin would be a guess.
        (
            lambda data: data["CT"]["organs"]["liver"]["volume_ml"].update(source="amos_card"),
            r"liver: ranges from \['amos_card', 'training'\]",
        ),
        (lambda data: data.update(PET=data["CT"]), "PET"),
    ],
)
def test_unknown_content_is_refused(edit, message):
    data = _reference().to_dict()
    edit(data)
    with pytest.raises(ValueError, match=message):
        QualityReference.from_dict(data)


def test_the_fallback_replaces_each_range_measured_on_too_few_cases_by_the_cards_for_that_organ():
    card = amos_card_reference()
    trained = _reference()  # CT: liver volume 2 cases, intensity 3; spleen 3 and 3; aorta intensity 2
    chosen = with_fallback(trained, card, min_cases=3)
    ct = chosen.for_modality("CT")
    assert (ct.source, ct.cases, ct.fallback) == ("training", 3, "amos_card")
    liver, spleen = ct.organs[LIVER], ct.organs[SPLEEN]
    # Liver: seen whole in 2 cases, too few: the card's volume (653 .. 5840 cm3 over 200 instances);
    # its mean intensity, over 3 cases, stays the training one.
    assert liver.volume_ml == ObservedRange(653, 5840, 200, "amos_card")
    assert liver.intensity_mean == ObservedRange(52.0, 60.0, 3, "training")
    # Positions come from training only, whatever their number of cases.
    assert dict(liver.centre_above_mm) == {SPLEEN: ObservedRange(-15.0, -10.0, 2)}
    # Spleen: the card's volume row is not used, so the training range stays, to be reported as
    # measured in 3 cases; its intensity over 3 cases is used.
    assert spleen.volume_ml == ObservedRange(150.0, 260.0, 3) and spleen.intensity_mean.source == "training"
    # Aorta: never whole in training, so the card's volume (26 .. 373 cm3 over 200); its intensity,
    # over 2 cases, the card's too (0.5% = -31, 99.5% = 80.45 HU).
    assert ct.organs[AORTA].volume_ml == ObservedRange(26, 373, 200, "amos_card")
    assert ct.organs[AORTA].intensity_mean == ObservedRange(-31, 80.45, None, "amos_card")
    # An organ the training data never saw takes the card's ranges: Bladder 14 .. 1255 cm3 over 195.
    assert ct.organs[BLADDER] == card.for_modality("CT").organs[BLADDER]
    assert ct.organs[BLADDER].volume_ml == ObservedRange(14, 1255, 195, "amos_card")
    assert set(ct.organs) == set(range(1, 16))
    # MR, 1 case: the card has no MR volumes, so the 1-case training volumes stay; intensities -> card.
    mr = chosen.for_modality("MR")
    assert mr.organs[LIVER].volume_ml == ObservedRange(1400.0, 1400.0, 1)
    assert mr.organs[LIVER].intensity_mean == ObservedRange(86.0, 277.0, None, "amos_card")


def test_ranges_measured_on_enough_cases_are_kept_and_without_training_the_card_stands_alone():
    card = amos_card_reference()
    trained = _reference()
    chosen = with_fallback(trained, card, min_cases=1)
    for modality in ("CT", "MR"):
        for organ, reference in trained.for_modality(modality).organs.items():
            kept = chosen.for_modality(modality).organs[organ]
            assert kept.centre_above_mm == reference.centre_above_mm
            for kind in ("volume_ml", "intensity_mean"):
                if getattr(reference, kind) is not None:  # the aorta's volume: from the card
                    assert getattr(kept, kind) == getattr(reference, kind)
    assert with_fallback(None, card, min_cases=1) == card
    ct_only = QualityReference({"CT": trained.for_modality("CT")})
    assert with_fallback(ct_only, card, min_cases=1).for_modality("MR") == card.for_modality("MR")


def test_the_card_reference_holds_the_cards_numbers():
    card = amos_card_reference()
    ct, mr = card.for_modality("CT"), card.for_modality("MR")
    assert (ct.source, ct.cases, mr.source) == ("amos_card", None, "amos_card")
    # Label Information Statistics, Liver: 653 .. 5840 cm3 over 200 instances: the 200 CT training
    # cases, apparently; not used for MR.
    assert ct.organs[LIVER].volume_ml == ObservedRange(653, 5840, 200, "amos_card")
    assert all(organ.volume_ml is None for organ in mr.organs.values())
    # CT intensity, Liver: 0.5% = -21.97, 99.5% = 86 HU; MR, Liver: 86 .. 277.
    assert ct.organs[LIVER].intensity_mean == ObservedRange(-21.97, 86.0, None, "amos_card")
    assert mr.organs[LIVER].intensity_mean == ObservedRange(86.0, 277.0, None, "amos_card")
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


def test_modality_reference_describes_its_sources():
    ct = with_fallback(_reference(), amos_card_reference(), min_cases=3).for_modality("CT")
    assert ct.describe("CT") == "the model's training data (3 labelled CT cases)"
    assert ct.describe("CT", "amos_card") == "the AMOS 2022 dataset card"
    card = ModalityReference("amos_card", None, {})
    assert card.describe("MR") == "the AMOS 2022 dataset card"


def test_only_amos_organ_ids_are_accepted():
    with pytest.raises(ValueError, match=r"organ ids \[16\] are not AMOS organs"):
        ModalityReference("training", 1, {16: OrganReference()})
    with pytest.raises(ValueError, match=r"organ ids \[0\]"):
        OrganReference(centre_above_mm={0: ObservedRange(0.0, 1.0, 1)})
