"""The standard codes of the 15 AMOS organs, for a DICOM Segmentation's segment descriptions.

Every segment is coded as DICOM's segmentation templates expect: category "Anatomical Structure"
(CID 7150), property type the organ's SNOMED CT concept (CID 7151, 7154), and the side, where AMOS
tells left from right, as a property type modifier (CID 244 Laterality). That is how the DICOM
standard lists kidney and adrenal gland (one concept each, the side a modifier), rather than with
SNOMED's precoordinated "right kidney structure"; every code below is one of the concepts the
standard's code tables (bundled with pydicom as ``pydicom.sr.codedict``) list with this meaning.

AMOS class 15 is the prostate in men and the uterus in women: one class for two organs. A segment
is coded as the organ the patient has, by Patient's Sex (0010,0040) of the source series; where the
sex is other or not recorded it is coded "Organ", the nearest concept true of both, and its label
says "Prostate/uterus".

Only strings here: nothing to import, so the table can be read (and tested) without pydicom.
"""

from __future__ import annotations

from dataclasses import dataclass

from amoseg.labels import ORGAN_BY_ID


@dataclass(frozen=True)
class Term:
    """A coded concept: (code value, coding scheme designator, code meaning)."""

    value: str
    scheme: str
    meaning: str


@dataclass(frozen=True)
class OrganCoding:
    """How one segment is described.

    Attributes:
        label: the segment label a viewer shows.
        property_type: the organ's concept.
        modifier: the side (Right or Left), for paired organs; None otherwise.
    """

    label: str
    property_type: Term
    modifier: Term | None = None


ANATOMICAL_STRUCTURE = Term("91723000", "SCT", "Anatomical Structure")
RIGHT = Term("24028007", "SCT", "Right")
LEFT = Term("7771000", "SCT", "Left")

_KIDNEY = Term("64033007", "SCT", "Kidney")
_ADRENAL_GLAND = Term("23451007", "SCT", "Adrenal gland")
PROSTATE = Term("41216001", "SCT", "Prostate")
UTERUS = Term("35039007", "SCT", "Uterus")
ORGAN = Term("91772007", "SCT", "Organ")

#: AMOS organ id -> its coding (class 15 by the patient's sex: ``organ_coding``).
ORGAN_CODES: dict[int, OrganCoding] = {
    1: OrganCoding("Spleen", Term("78961009", "SCT", "Spleen")),
    2: OrganCoding("Right kidney", _KIDNEY, RIGHT),
    3: OrganCoding("Left kidney", _KIDNEY, LEFT),
    4: OrganCoding("Gallbladder", Term("28231008", "SCT", "Gallbladder")),
    5: OrganCoding("Esophagus", Term("32849002", "SCT", "Esophagus")),
    6: OrganCoding("Liver", Term("10200004", "SCT", "Liver")),
    7: OrganCoding("Stomach", Term("69695003", "SCT", "Stomach")),
    8: OrganCoding("Aorta", Term("15825003", "SCT", "Aorta")),
    9: OrganCoding("Inferior vena cava", Term("64131007", "SCT", "Inferior vena cava")),
    10: OrganCoding("Pancreas", Term("15776009", "SCT", "Pancreas")),
    11: OrganCoding("Right adrenal gland", _ADRENAL_GLAND, RIGHT),
    12: OrganCoding("Left adrenal gland", _ADRENAL_GLAND, LEFT),
    13: OrganCoding("Duodenum", Term("38848004", "SCT", "Duodenum")),
    # SNOMED's urinary bladder; the standard's tables call it "Bladder".
    14: OrganCoding("Bladder", Term("89837001", "SCT", "Bladder")),
    15: OrganCoding("Prostate/uterus", ORGAN),
}

_BY_SEX = {"M": OrganCoding("Prostate", PROSTATE), "F": OrganCoding("Uterus", UTERUS)}


def organ_coding(organ_id: int, patient_sex: str | None = None) -> OrganCoding:
    """The coding of an AMOS organ; ``patient_sex`` (DICOM's "M", "F", "O" or empty) decides class 15.

    Raises:
        ValueError: ``organ_id`` is not an AMOS organ (1..15).
    """
    if organ_id not in ORGAN_CODES:
        raise ValueError(f"no AMOS organ has id {organ_id}; ids are {min(ORGAN_BY_ID)}..{max(ORGAN_BY_ID)}")
    if organ_id == 15:
        return _BY_SEX.get((patient_sex or "").strip().upper(), ORGAN_CODES[15])
    return ORGAN_CODES[organ_id]
