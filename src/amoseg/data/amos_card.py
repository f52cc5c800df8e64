"""The AMOS 2022 dataset card's organ tables: the quality reference of a model that carries none.

Numbers copied from the AMOS 2022 dataset card (OpenMedLab's card for the AMOS dataset, Ji et al.,
"AMOS: A Large-Scale Abdominal Multi-Organ Benchmark for Versatile Medical Image Segmentation",
arXiv:2206.08023; https://amos22.grand-challenge.org/), sections "Label Information Statistics"
(organ volumes) and "CT Intensity Information Statistics" / "MR Intensity Information Statistics".
They are kept here as printed, so they can be checked against the card line by line;
``amos_card_reference`` decides what of them is used, and says why where something is left out.

Limits of this reference (docs/quality.md):

- the volume table is not split by modality, and its instance counts (at most 200) match the 200 CT
  cases of AMOS's training split, not its 240 CT and MR ones: apparently it describes CT volumes, and
  it is used for CT only (``VOLUME_MODALITIES``);
- the label table has rows that cannot be right: the spleen's volumes (``UNUSED_VOLUME_ROWS``), and
  the right kidney's voxel ratio, whose minimum (0.22 %) is above its median (0.17 %). The voxel
  ratios are not copied here; the right kidney's volumes (14 to 343 cm³, median 135) are plausible
  and used;
- the card has no per-case mean intensities, only statistics over all voxels of an organ, so the
  intensity range is the band of the 0.5th to 99.5th percentile of those voxels: far wider than the
  range of per-case means, a lenient check;
- MR intensities are in the AMOS MR scans' own arbitrary units;
- it holds no organ positions, so an absent organ is never flagged as missing against it.
"""

from __future__ import annotations

from amoseg.data.reference import ModalityReference, ObservedRange, OrganReference, QualityReference
from amoseg.labels import ORGAN_BY_NAME, Modality

#: "Label Information Statistics": organ -> Actual Size cm³ (min, median, mean, max), Number of Instances.
CARD_VOLUMES_CM3: dict[str, tuple[float, float, float, float, int]] = {
    "spleen": (1379, 2571, 2669, 7330, 200),
    "right_kidney": (14, 135, 142, 343, 200),
    "left_kidney": (10, 142, 150, 1008, 199),
    "gallbladder": (1, 24, 30, 143, 189),
    "esophagus": (0, 12, 15, 60, 199),
    "liver": (653, 1231, 1318, 5840, 200),
    "stomach": (0, 244, 325, 1254, 198),
    "aorta": (26, 92, 116, 373, 200),
    "inferior_vena_cava": (31, 69, 69, 135, 200),
    "pancreas": (15, 70, 69, 183, 200),
    "right_adrenal_gland": (1, 3, 3, 8, 199),
    "left_adrenal_gland": (0, 3, 3, 9, 200),
    "duodenum": (19, 50, 55, 146, 200),
    "bladder": (14, 85, 128, 1255, 195),
    "prostate_uterus": (7, 30, 51, 268, 192),
}

#: Intensity columns of the card's two intensity tables, in order.
INTENSITY_COLUMNS = ("min", "p0.5", "median", "mean", "std", "p99.5", "max")

#: "CT Intensity Information Statistics", HU, columns as ``INTENSITY_COLUMNS``.
CARD_CT_INTENSITY: dict[str, tuple[float, ...]] = {
    "liver": (-90.03, -21.97, 49.99, 47.95, 18.58, 86, 112),
    "right_kidney": (-75.99, -31, 25.03, 23.96, 16, 62.02, 91.98),
    "spleen": (-103.03, -33.02, 28.02, 26.94, 16.2, 62.99, 99),
    "pancreas": (-80.99, -31, 20.02, 19.79, 15.38, 57.99, 122.99),
    "aorta": (-56.03, -31, 39.98, 36.83, 19.98, 80.45, 96.01),
    "inferior_vena_cava": (-156.01, -12.02, 57.99, 56.87, 17.93, 98.03, 338.02),
    "right_adrenal_gland": (-714.97, -221.36, 26.98, 22.03, 39.45, 75.99, 176.03),
    "left_adrenal_gland": (-130, -38.02, 42, 39.93, 20.91, 86.98, 315.99),
    "gallbladder": (-86.97, -39, 42, 39.63, 21.98, 91.98, 122.99),
    "esophagus": (-91.98, -31, 36.01, 34.35, 20.47, 81.97, 115.97),
    "stomach": (-75.01, -54.38, 18.98, 16.91, 26.27, 73, 91.01),
    "duodenum": (-72.02, -43.03, 25.03, 23.15, 21.97, 72.03, 85.03),
    "left_kidney": (-646, -98.12, 34.98, 31.41, 28.92, 81.97, 166.02),
    "bladder": (-116.03, -33.02, 13, 12.52, 12.79, 44.99, 502.02),
    "prostate_uterus": (-57.01, -23.01, 42, 42.65, 25.47, 112.98, 154.97),
}

#: "MR Intensity Information Statistics", the MR scans' own units; None where the card prints nan
#: (the AMOS MR scans do not label bladder and prostate/uterus).
CARD_MR_INTENSITY: dict[str, tuple[float, ...] | None] = {
    "liver": (0, 86, 169, 170.95, 26.52, 277, 409),
    "right_kidney": (0, 38, 166, 166.14, 38.39, 272, 364),
    "spleen": (0, 14, 155, 155.34, 42.12, 291, 384),
    "pancreas": (49, 72.98, 237.5, 245.64, 75.55, 440.76, 469),
    "aorta": (0, 0, 141, 131.62, 48.39, 224.55, 247),
    "inferior_vena_cava": (0, 92, 213, 216.82, 43.13, 352, 421),
    "right_adrenal_gland": (0, 0, 168, 153.38, 62.73, 277, 374),
    "left_adrenal_gland": (5, 83, 215, 227.39, 78.59, 411.19, 460),
    "gallbladder": (25, 61, 143, 144.95, 34.98, 270, 392),
    "esophagus": (4, 97, 258, 252.16, 46.85, 365, 427),
    "stomach": (0, 19.43, 177.5, 169.28, 54.34, 263.05, 276),
    "duodenum": (82, 94.8, 191.5, 189.41, 32.36, 254.67, 258),
    "left_kidney": (0, 0, 167, 155.1, 64.18, 285, 350),
    "bladder": None,
    "prostate_uterus": None,
}

#: Volume rows of the card not used as a reference. The card's spleen row (1379 to 7330 cm³, median
#: 2571) is larger than its liver row and about ten times a normal spleen (roughly 0.1 to 0.3 L): a
#: range that would call every normal spleen too small and miss every enlarged one. Most likely a
#: mistake in the card; the spleen's volume is not checked against it.
UNUSED_VOLUME_ROWS = frozenset({"spleen"})

#: The modalities the card's volumes are used for. Its label table gives one set of volumes, over at
#: most 200 instances; AMOS's training split holds 200 CT and 40 MR scans, so the table apparently
#: counts the CT cases (the AMOS MR scans do not label the bladder and prostate/uterus it lists
#: either). Nothing says these volumes hold for MR, whose fields of view and patients differ: an MR
#: volume is checked only against a training reference measured on MR.
VOLUME_MODALITIES: frozenset[Modality] = frozenset({"CT"})


def amos_card_reference() -> QualityReference:
    """The card's tables as a ``QualityReference`` (source "amos_card") for CT and MR.

    Volume (CT only): the card's min..max cm³ (= mL), over its number of instances; intensity: the
    0.5th..99.5th percentile band of the organ's voxels; no positions.
    """
    low, high = INTENSITY_COLUMNS.index("p0.5"), INTENSITY_COLUMNS.index("p99.5")
    tables: dict[Modality, dict[str, tuple[float, ...] | None]] = {
        "CT": CARD_CT_INTENSITY,
        "MR": CARD_MR_INTENSITY,
    }
    modalities = {}
    for modality, intensities in tables.items():
        organs = {}
        for name, (minimum, _, _, maximum, instances) in CARD_VOLUMES_CM3.items():
            row = intensities[name]
            volume_used = modality in VOLUME_MODALITIES and name not in UNUSED_VOLUME_ROWS
            organs[ORGAN_BY_NAME[name].id] = OrganReference(
                volume_ml=ObservedRange(minimum, maximum, instances, "amos_card") if volume_used else None,
                intensity_mean=None if row is None else ObservedRange(row[low], row[high], None, "amos_card"),
            )
        modalities[modality] = ModalityReference(source="amos_card", cases=None, organs=organs)
    return QualityReference(modalities)
