"""The dataset card: the AMOS card's tables (meta, resolution, intensity, labels) built from statistics.

``build_card`` returns the ``stats.json`` contract; ``card_tables`` turns it into rows (one list per
table, shared by the Markdown and CSV writers) in the card's columns and organ order.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from amoseg.data.statistics import StatisticsAccumulator
from amoseg.errors import InputError
from amoseg.labels import MODALITIES, ORGAN_BY_ID, ORGANS

#: The card's intensity tables list organs in this order (its label table uses id order).
INTENSITY_ORDER = (6, 2, 1, 10, 8, 9, 11, 12, 4, 5, 7, 13, 3, 14, 15)
INTENSITY_KEYS = ("min", "p0.5", "median", "mean", "std", "p99.5", "max")
SUMMARY_KEYS = ("min", "median", "mean", "max")


def build_card(
    accumulator: StatisticsAccumulator,
    *,
    name: str,
    declared_labels: dict[int, str],
    annotated_labels: tuple[int, ...],
    skipped: list[str],
) -> dict:
    """The ``stats.json`` content; organ keys are canonical names, vectors in (x, y, z) order."""
    cases = accumulator.cases
    return {
        "meta": _meta(cases, name, declared_labels, annotated_labels, skipped),
        "resolution": {
            "spacing_mm": _min_median_max([case.spacing_mm for case in cases]),
            "size": _min_median_max([case.shape for case in cases]),
            "cases": len(cases),
        },
        "intensity": {
            modality: {
                ORGAN_BY_ID[organ_id].name: accumulator.intensity(modality, organ_id)
                for organ_id in INTENSITY_ORDER
                if accumulator.intensity(modality, organ_id)
            }
            for modality in MODALITIES
        },
        "labels": _label_statistics(accumulator, annotated_labels),
    }


def _meta(cases, name, declared_labels, annotated_labels, skipped) -> dict:
    modalities = Counter(case.modality for case in cases)
    splits = Counter(case.split for case in cases)
    return {
        "name": name,
        "dimensions": "3D",
        "modalities": {modality: modalities[modality] for modality in MODALITIES if modalities[modality]},
        "splits": {split: splits[split] for split in ("train", "validation", "test") if splits[split]},
        "cases": len(cases),
        "labelled_cases": sum(case.organ_voxels is not None for case in cases),
        "labels": {str(organ_id): label for organ_id, label in declared_labels.items()},
        "number_of_categories": len(declared_labels),
        "annotated_labels": list(annotated_labels),
        "file_formats": sorted({case.file_format for case in cases if case.file_format}),
        "skipped_cases": skipped,
    }


def _min_median_max(vectors: list[tuple]) -> dict[str, list[float]]:
    if not vectors:
        return {"min": [], "median": [], "max": []}
    stacked = np.array(vectors, dtype=float)
    return {
        "min": stacked.min(axis=0).tolist(),
        "median": np.median(stacked, axis=0).tolist(),
        "max": stacked.max(axis=0).tolist(),
    }


def _label_statistics(accumulator: StatisticsAccumulator, annotated_labels: tuple[int, ...]) -> dict:
    """Per organ, over the cases that annotate it and contain it: voxel ratio, volume, instances.

    An organ that the dataset does not annotate is reported as not annotated rather than as zero.
    """
    labelled = [case for case in accumulator.cases if case.organ_voxels is not None]
    result = {}
    for organ in ORGANS:
        if organ.id not in annotated_labels:
            result[organ.name] = {"annotated": False}
            continue
        ratios, volumes = [], []
        for case in labelled:
            voxels = case.organ_voxels[organ.id]
            if voxels and organ.id in case.annotated_labels:
                ratios.append(voxels / float(np.prod(case.shape)))
                volumes.append(voxels * float(np.prod(case.spacing_mm)) / 1000.0)
        result[organ.name] = {
            "annotated": True,
            "voxel_ratio": _summary(ratios),
            "volume_cm3": _summary(volumes),
            "instances": len(ratios),
        }
    return result


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return dict.fromkeys(SUMMARY_KEYS)
    array = np.array(values, dtype=float)
    return {
        "min": float(array.min()),
        "median": float(np.median(array)),
        "mean": float(array.mean()),
        "max": float(array.max()),
    }


def card_tables(card: dict) -> dict[str, list[list[str]]]:
    """Each card table as rows of strings, header first, in the card's columns and order."""
    meta = card["meta"]
    modalities = ", ".join(f"{modality} ({count})" for modality, count in meta["modalities"].items())
    volume = ", ".join(f"{count} for {split}" for split, count in meta["splits"].items())
    tables = {
        "meta": [
            [
                "Dimensions",
                "Modality",
                "Task Type",
                "Anatomical Structures",
                "Anatomical Area",
                "Number of Categories",
                "Data Volume",
                "File Format",
            ],
            [
                meta["dimensions"],
                modalities,
                "Segmentation",
                ", ".join(ORGAN_BY_ID[i].title for i in meta["annotated_labels"]),
                "Abdomen",
                str(len(meta["annotated_labels"])),
                volume,
                ", ".join(meta["file_formats"]),
            ],
        ],
        "resolution": [["Dataset Statistics", "spacing (mm)", "size"]],
    }
    for key in ("min", "median", "max"):
        spacing = card["resolution"]["spacing_mm"][key]
        size = card["resolution"]["size"][key]
        tables["resolution"].append([key, _vector(spacing, 2), _vector(size, 0)])
    for modality in MODALITIES:
        rows = [["Organs"] + [f"{modality} - {_column(key)}" for key in INTENSITY_KEYS]]
        for organ_id in INTENSITY_ORDER:
            organ = ORGAN_BY_ID[organ_id]
            if organ_id not in meta["annotated_labels"]:
                rows.append([organ.title] + ["not annotated"] * len(INTENSITY_KEYS))
                continue
            entry = card["intensity"][modality].get(organ.name, {})
            rows.append([organ.title] + [_number(entry.get(key)) for key in INTENSITY_KEYS])
        tables[f"intensity_{modality.lower()}"] = rows
    header = ["Organ/Tissue"]
    header += [f"Voxel Ratio ({key})" for key in SUMMARY_KEYS]
    header += [f"Actual Size cm³ ({key})" for key in SUMMARY_KEYS]
    header += ["Number of Instances"]
    rows = [header]
    for organ in ORGANS:
        entry = card["labels"][organ.name]
        if not entry["annotated"]:
            rows.append([organ.title] + ["not annotated"] * 8 + ["not annotated"])
            continue
        ratio, volume = entry["voxel_ratio"], entry["volume_cm3"]
        rows.append(
            [organ.title]
            + [_percent(ratio[key]) for key in SUMMARY_KEYS]
            + [_number(volume[key], 0) for key in SUMMARY_KEYS]
            + [str(entry["instances"])]
        )
    tables["labels"] = rows
    return tables


def read_card(path: Path) -> dict:
    """The ``stats.json`` content ``amoseg stats`` wrote, checked to render (``card_markdown``).

    Raises:
        InputError: unreadable, or not an amoseg dataset card.
    """
    from amoseg.atomic import read_json

    card = read_json(path, "dataset card")
    try:
        card_markdown(card)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputError(path, f"not an amoseg dataset card ({type(error).__name__}: {error})") from None
    return card


def card_markdown(card: dict) -> str:
    """The card's tables in Markdown, with how many cases each covers."""
    tables = card_tables(card)
    meta = card["meta"]
    labelled = meta["labelled_cases"]
    modalities = meta["modalities"]
    sections = [
        f"# Dataset card: {meta['name']}",
        f"Computed from {meta['cases']} cases ({labelled} labelled)."
        + (f" Skipped: {len(meta['skipped_cases'])} (see stats.json)." if meta["skipped_cases"] else ""),
        "## Dataset Meta Information",
        _markdown_table(tables["meta"]),
        f"## Resolution Details\n\nOver {card['resolution']['cases']} cases; (x, y, z).",
        _markdown_table(tables["resolution"]),
    ]
    for modality in MODALITIES:
        count = modalities.get(modality, 0)
        sections.append(
            f"## {modality} Intensity Information Statistics\n\nOver the labelled {modality} cases ({count} {modality} cases in all); nan where the organ has no voxels."
        )
        sections.append(_markdown_table(tables[f"intensity_{modality.lower()}"]))
    sections.append(
        f"## Label Information Statistics\n\nOver the {labelled} labelled cases; ratio and size over the cases that contain the organ."
    )
    sections.append(_markdown_table(tables["labels"]))
    return "\n\n".join(sections) + "\n"


def _markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def _column(key: str) -> str:
    return {"p0.5": "0.5%", "p99.5": "99.5%"}.get(key, key)


def _number(value, decimals: int = 2) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "nan"
    return f"{value:.{decimals}f}"


def _percent(value) -> str:
    return "nan" if value is None else f"{100 * value:.2f}%"


def _vector(values, decimals: int) -> str:
    if not values:
        return "nan"
    return "(" + ", ".join(f"{value:.{decimals}f}" if decimals else str(int(value)) for value in values) + ")"
