"""The AMOS 2022 classes: ids, canonical names, overlay colours, and the CT/MR rule for case ids.

This module is the single source of truth for task metadata. It imports nothing heavy, so the CLI and
every stage can use it without paying for numpy or torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Modality = Literal["CT", "MR"]
MODALITIES: tuple[Modality, ...] = ("CT", "MR")

#: Highest case id that is CT in AMOS; ids from 501 on are MR.
LAST_CT_CASE_ID = 500


@dataclass(frozen=True)
class Organ:
    """One AMOS class.

    Attributes:
        id: label value in the label maps (1..15).
        name: canonical snake_case name, used as a key in every JSON output.
        title: human-readable name for tables and plots.
        colour: overlay colour as (r, g, b), 0..255.
    """

    id: int
    name: str
    title: str
    colour: tuple[int, int, int]


ORGANS: tuple[Organ, ...] = (
    Organ(1, "spleen", "Spleen", (157, 108, 162)),
    Organ(2, "right_kidney", "Right kidney", (185, 102, 83)),
    Organ(3, "left_kidney", "Left kidney", (255, 127, 80)),
    Organ(4, "gallbladder", "Gallbladder", (139, 150, 98)),
    Organ(5, "esophagus", "Esophagus", (211, 171, 143)),
    Organ(6, "liver", "Liver", (221, 130, 101)),
    Organ(7, "stomach", "Stomach", (102, 194, 165)),
    Organ(8, "aorta", "Aorta", (224, 40, 40)),
    Organ(9, "inferior_vena_cava", "Inferior vena cava", (0, 151, 206)),
    Organ(10, "pancreas", "Pancreas", (249, 180, 111)),
    Organ(11, "right_adrenal_gland", "Right adrenal gland", (244, 214, 49)),
    Organ(12, "left_adrenal_gland", "Left adrenal gland", (128, 64, 255)),
    Organ(13, "duodenum", "Duodenum", (64, 224, 208)),
    Organ(14, "bladder", "Bladder", (222, 198, 90)),
    Organ(15, "prostate_uterus", "Prostate/uterus", (255, 105, 180)),
)

ORGAN_BY_ID: dict[int, Organ] = {organ.id: organ for organ in ORGANS}
ORGAN_BY_NAME: dict[str, Organ] = {organ.name: organ for organ in ORGANS}
ORGAN_IDS: tuple[int, ...] = tuple(organ.id for organ in ORGANS)
MAX_LABEL = max(ORGAN_IDS)

# Spellings found in the original AMOS dataset.json and in other abdominal sets, mapped to canonical names.
_ALIASES: dict[str, str] = {
    "arota": "aorta",
    "postcava": "inferior_vena_cava",
    "ivc": "inferior_vena_cava",
    "vena_cava": "inferior_vena_cava",
    "gall_bladder": "gallbladder",
    "oesophagus": "esophagus",
    "prostate": "prostate_uterus",
    "uterus": "prostate_uterus",
    "prostate_or_uterus": "prostate_uterus",
    "urinary_bladder": "bladder",
    "kidney_right": "right_kidney",
    "kidney_left": "left_kidney",
    "adrenal_gland_right": "right_adrenal_gland",
    "adrenal_gland_left": "left_adrenal_gland",
    "right_adrenal": "right_adrenal_gland",
    "left_adrenal": "left_adrenal_gland",
}


def normalise_name(name: str) -> str:
    """Lower-case a label name and collapse spaces, slashes and dashes to underscores."""
    return re.sub(r"[\s/\-]+", "_", name.strip().lower()).strip("_")


def organ_from_name(name: str) -> Organ:
    """Look up an organ by any accepted spelling ("Right Kidney", "arota", "prostate/uterus").

    Raises:
        KeyError: the name is not an AMOS organ.
    """
    key = normalise_name(name)
    key = _ALIASES.get(key, key)
    if key not in ORGAN_BY_NAME:
        raise KeyError(f"unknown organ name {name!r}")
    return ORGAN_BY_NAME[key]


def organ_name(label: int) -> str:
    """The canonical name of an organ id ("liver" for 6); the id as text for an id outside AMOS's."""
    return ORGAN_BY_ID[label].name if label in ORGAN_BY_ID else str(label)


def modality_from_case_id(case_id: int) -> Modality:
    """AMOS rule: ids up to 500 are CT, ids from 501 on are MR."""
    return "CT" if case_id <= LAST_CT_CASE_ID else "MR"


def parse_modality(text: str) -> Modality:
    """Map a channel name from a dataset.json ("CT", "MRI", "T2", "t1_in") to CT or MR.

    Raises:
        ValueError: the name says neither CT nor MR.
    """
    key = text.strip().upper()
    if key in {"CT", "CTA", "NCCT", "CECT"}:
        return "CT"
    if key.startswith(("MR", "T1", "T2", "FLAIR", "DWI", "ADC", "DIXON")):
        return "MR"
    raise ValueError(f"channel name {text!r} is neither CT nor MR")


def parse_label_ids(text: str) -> tuple[int, ...]:
    """Parse "1,2,6" or organ names ("liver,spleen") into sorted label ids.

    Raises:
        ValueError: an entry is neither an AMOS id nor an organ name.
    """
    ids: set[int] = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item.isdigit():
            if int(item) not in ORGAN_BY_ID:
                raise ValueError(f"label id {item} is not an AMOS organ (1..{MAX_LABEL})")
            ids.add(int(item))
        else:
            try:
                ids.add(organ_from_name(item).id)
            except KeyError as error:
                raise ValueError(str(error.args[0])) from None
    return tuple(sorted(ids))
