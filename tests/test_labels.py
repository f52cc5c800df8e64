import pytest

from amoseg.labels import (
    ORGAN_BY_ID,
    ORGANS,
    modality_from_case_id,
    organ_from_name,
    parse_label_ids,
    parse_modality,
)


def test_fifteen_organs_with_amos_ids_in_order():
    assert [organ.id for organ in ORGANS] == list(range(1, 16))
    assert ORGAN_BY_ID[8].name == "aorta"
    assert ORGAN_BY_ID[15].name == "prostate_uterus"
    assert len({organ.colour for organ in ORGANS}) == 15, "overlay colours must tell organs apart"


@pytest.mark.parametrize(
    ("spelling", "organ_id"),
    [
        ("arota", 8),
        ("postcava", 9),
        ("gall bladder", 4),
        ("Gallbladder", 4),
        ("right kidney", 2),
        ("prostate/uterus", 15),
        ("right adrenal gland", 11),
        ("inferior_vena_cava", 9),
    ],
)
def test_original_amos_spellings_are_accepted(spelling, organ_id):
    assert organ_from_name(spelling).id == organ_id


def test_unknown_organ_name_is_refused():
    with pytest.raises(KeyError, match="heart"):
        organ_from_name("heart")


def test_case_id_rule_for_modality():
    assert modality_from_case_id(1) == "CT"
    assert modality_from_case_id(500) == "CT"
    assert modality_from_case_id(501) == "MR"
    assert modality_from_case_id(600) == "MR"


@pytest.mark.parametrize(
    ("text", "expected"), [("CT", "CT"), ("ct", "CT"), ("MRI", "MR"), ("T2", "MR"), ("MR", "MR")]
)
def test_channel_names_map_to_modality(text, expected):
    assert parse_modality(text) == expected


def test_channel_name_that_is_neither_is_refused():
    with pytest.raises(ValueError, match="PET"):
        parse_modality("PET")


def test_label_id_lists_accept_ids_and_names():
    assert parse_label_ids("6, 1,2") == (1, 2, 6)
    assert parse_label_ids("liver,arota") == (6, 8)
    with pytest.raises(ValueError, match="16"):
        parse_label_ids("16")
