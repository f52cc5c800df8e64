"""The quality reference: per modality and organ, what a model's training data looked like.

``amoseg stats`` measures, in every labelled case of the splits a model trains on (``TRAINING_SPLITS``),
each organ's volume, mean intensity and position along the patient's head-to-feet axis, and keeps for
each the range seen over the cases (``QualityReference``, part of the fingerprint). The plan copies
it, so it travels in ``plans.json`` and in every checkpoint; a prediction's quality flags
(``amoseg.inference.quality``) compare against it. When a model carries none, the AMOS 2022 dataset
card's tables stand in (``amoseg.data.amos_card``).

What each range holds (``source`` "training"):

- ``volume_ml``: organ volume (voxels x voxel volume, mL) over the cases where the organ is whole,
  i.e. does not touch the scan's edge (a cut organ's volume says nothing about the organ).
- ``intensity_mean``: per case, the mean intensity of the organ's voxels (image units: HU for CT);
  the range of those means.
- ``centre_above_mm[other]``: how far this organ's centre lies above the other organ's centre
  (``amoseg.data.placement``, mm, negative below), over the cases where both are whole.

Every range is ``min``, ``max`` and the number of ``cases`` it covers, so ranges of several datasets
merge exactly (``merge_references``). For ``source`` "amos_card" the intensity range is the 0.5th to
99.5th percentile of all the organ's voxels (the card has no per-case means) and there are no
positions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

from amoseg.labels import MODALITIES, ORGAN_BY_ID, ORGAN_BY_NAME, Modality

ReferenceSource = Literal["training", "amos_card"]
SOURCES: tuple[ReferenceSource, ...] = ("training", "amos_card")

#: The splits whose labelled cases the reference measures: those preprocessing caches for training.
#: Labelled test cases stay out, so that their flags are an honest check of cases the model never saw.
TRAINING_SPLITS = ("train", "validation")

#: A training range is trusted from this many cases on. A new case from the same population falls
#: outside the min..max of n cases with probability 2 / (n + 1): about 10 % at 20 cases, and every
#: organ has several ranges, so fewer cases would flag most normal scans.
MIN_REFERENCE_CASES = 20


@dataclass(frozen=True)
class ObservedRange:
    """The smallest and largest value seen, and over how many cases (None: not stated by the source)."""

    min: float
    max: float
    cases: int | None = None

    def __post_init__(self) -> None:
        # Plain Python numbers: the range is stored in checkpoints, which load only plain values.
        object.__setattr__(self, "min", float(self.min))
        object.__setattr__(self, "max", float(self.max))
        if self.cases is not None:
            object.__setattr__(self, "cases", int(self.cases))
        if not (math.isfinite(self.min) and math.isfinite(self.max)) or self.min > self.max:
            raise ValueError(f"a range needs finite min <= max, got {self.min}, {self.max}")

    @classmethod
    def of(cls, values: Iterable[float]) -> ObservedRange | None:
        """The range of some values; None for none."""
        values = [float(value) for value in values]
        return cls(min(values), max(values), len(values)) if values else None

    def merged(self, other: ObservedRange) -> ObservedRange:
        """The range of both sets of cases."""
        cases = None if self.cases is None or other.cases is None else self.cases + other.cases
        return ObservedRange(min(self.min, other.min), max(self.max, other.max), cases)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"min": self.min, "max": self.max}
        if self.cases is not None:
            data["cases"] = self.cases
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObservedRange:
        _refuse_unknown(data, cls, "range")
        cases = data.get("cases")
        return cls(data["min"], data["max"], None if cases is None else int(cases))


@dataclass(frozen=True)
class OrganReference:
    """What one organ looked like in one modality (see the module docstring for each range)."""

    volume_ml: ObservedRange | None = None
    intensity_mean: ObservedRange | None = None
    centre_above_mm: Mapping[int, ObservedRange] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_organ_ids(self.centre_above_mm)
        object.__setattr__(
            self, "centre_above_mm", MappingProxyType(dict(sorted(self.centre_above_mm.items())))
        )

    def merged(self, other: OrganReference) -> OrganReference:
        offsets = dict(self.centre_above_mm)
        for organ, observed in other.centre_above_mm.items():
            offsets[organ] = offsets[organ].merged(observed) if organ in offsets else observed
        return OrganReference(
            volume_ml=_merged(self.volume_ml, other.volume_ml),
            intensity_mean=_merged(self.intensity_mean, other.intensity_mean),
            centre_above_mm=offsets,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "volume_ml": None if self.volume_ml is None else self.volume_ml.to_dict(),
            "intensity_mean": None if self.intensity_mean is None else self.intensity_mean.to_dict(),
            "centre_above_mm": {
                ORGAN_BY_ID[organ].name: observed.to_dict()
                for organ, observed in self.centre_above_mm.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrganReference:
        _refuse_unknown(data, cls, "organ reference")
        return cls(
            volume_ml=_optional_range(data.get("volume_ml")),
            intensity_mean=_optional_range(data.get("intensity_mean")),
            centre_above_mm={
                _organ_id(name): ObservedRange.from_dict(observed)
                for name, observed in (data.get("centre_above_mm") or {}).items()
            },
        )


@dataclass(frozen=True)
class ModalityReference:
    """The reference of one modality.

    Attributes:
        source: "training" (measured on a model's training label maps by ``amoseg stats``) or
            "amos_card" (the AMOS 2022 dataset card's tables).
        cases: labelled cases measured (training); None when the source does not say (the card).
        organs: organ id -> its reference; organs never seen are left out.
    """

    source: ReferenceSource
    cases: int | None
    organs: Mapping[int, OrganReference]

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"reference source {self.source!r} is not one of {list(SOURCES)}")
        _check_organ_ids(self.organs)
        object.__setattr__(self, "organs", MappingProxyType(dict(sorted(self.organs.items()))))

    def describe(self, modality: Modality) -> str:
        """Where the ranges come from, for people: "the model's training data (24 CT cases)"."""
        if self.source == "amos_card":
            return "the AMOS 2022 dataset card"
        return f"the model's training data ({self.cases} labelled {modality} cases)"

    def merged(self, other: ModalityReference) -> ModalityReference:
        if self.source != other.source:
            raise ValueError(f"cannot merge a {self.source} reference with a {other.source} one")
        organs = dict(self.organs)
        for organ, reference in other.organs.items():
            organs[organ] = organs[organ].merged(reference) if organ in organs else reference
        cases = None if self.cases is None or other.cases is None else self.cases + other.cases
        return ModalityReference(self.source, cases, organs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "cases": self.cases,
            "organs": {
                ORGAN_BY_ID[organ].name: reference.to_dict() for organ, reference in self.organs.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModalityReference:
        _refuse_unknown(data, cls, "modality reference")
        cases = data.get("cases")
        return cls(
            source=data["source"],
            cases=None if cases is None else int(cases),
            organs={_organ_id(name): OrganReference.from_dict(item) for name, item in data["organs"].items()},
        )


@dataclass(frozen=True)
class QualityReference:
    """Per modality, the ranges a prediction is checked against.

    Example:
        >>> reference = QualityReference({"CT": ModalityReference("training", 1, {6: OrganReference(
        ...     volume_ml=ObservedRange(1200.0, 1200.0, 1))})})
        >>> reference.for_modality("CT").organs[6].volume_ml.max
        1200.0
    """

    modalities: Mapping[Modality, ModalityReference]

    def __post_init__(self) -> None:
        unknown = sorted(set(self.modalities) - set(MODALITIES))
        if unknown:
            raise ValueError(f"modalities {unknown} are not among {list(MODALITIES)}")
        ordered = {
            modality: self.modalities[modality] for modality in MODALITIES if modality in self.modalities
        }
        object.__setattr__(self, "modalities", MappingProxyType(ordered))

    def for_modality(self, modality: Modality) -> ModalityReference | None:
        return self.modalities.get(modality)

    def to_dict(self) -> dict[str, Any]:
        return {modality: reference.to_dict() for modality, reference in self.modalities.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityReference:
        """Raises ValueError, KeyError or TypeError: unknown keys or organs, bad values."""
        return cls({modality: ModalityReference.from_dict(item) for modality, item in data.items()})


@dataclass(frozen=True)
class OrganMeasure:
    """One organ in one labelled training case, as the reference needs it.

    Attributes:
        volume_ml: voxels x voxel volume, mL.
        intensity_mean: mean intensity of its voxels, image units.
        centre_superior_mm, touches_edge: as ``amoseg.data.placement.OrganPlacement``.
    """

    volume_ml: float
    intensity_mean: float
    centre_superior_mm: float
    touches_edge: bool


def reference_from_cases(
    cases: Iterable[tuple[Modality, Mapping[int, OrganMeasure]]],
) -> QualityReference | None:
    """The training reference of some labelled cases.

    Args:
        cases: per labelled case, its modality and the measures of the organs it annotates and holds.

    Returns:
        the reference, or None when there is no labelled case.
    """
    counts: dict[Modality, int] = {}
    volumes: dict[tuple[Modality, int], list[float]] = {}
    means: dict[tuple[Modality, int], list[float]] = {}
    offsets: dict[tuple[Modality, int, int], list[float]] = {}
    for modality, organs in cases:
        counts[modality] = counts.get(modality, 0) + 1
        whole = {organ: measure for organ, measure in organs.items() if not measure.touches_edge}
        for organ, measure in organs.items():
            means.setdefault((modality, organ), []).append(measure.intensity_mean)
        for organ, measure in whole.items():
            volumes.setdefault((modality, organ), []).append(measure.volume_ml)
            for other, anchor in whole.items():
                if other != organ:
                    height = measure.centre_superior_mm - anchor.centre_superior_mm
                    offsets.setdefault((modality, organ, other), []).append(height)
    if not counts:
        return None
    modalities = {}
    for modality in counts:
        organs = sorted({organ for key, organ in [*volumes, *means] if key == modality})
        modalities[modality] = ModalityReference(
            source="training",
            cases=counts[modality],
            organs={
                organ: OrganReference(
                    volume_ml=ObservedRange.of(volumes.get((modality, organ), [])),
                    intensity_mean=ObservedRange.of(means.get((modality, organ), [])),
                    centre_above_mm={
                        other: ObservedRange.of(heights)
                        for (key, this, other), heights in offsets.items()
                        if key == modality and this == organ
                    },
                )
                for organ in organs
            },
        )
    return QualityReference(modalities)


def merge_references(references: Iterable[QualityReference]) -> QualityReference | None:
    """One reference for several datasets' cases: each range covers all their cases, exactly (min of
    the minima, max of the maxima, cases added). None when given none."""
    merged: dict[Modality, ModalityReference] = {}
    for reference in references:
        for modality, item in reference.modalities.items():
            merged[modality] = merged[modality].merged(item) if modality in merged else item
    return QualityReference(merged) if merged else None


def with_fallback(
    trained: QualityReference | None, fallback: QualityReference, min_cases: int
) -> QualityReference:
    """Per modality, the training reference when it measured at least ``min_cases`` labelled cases,
    else the fallback's (the AMOS card's)."""
    chosen = dict(fallback.modalities)
    if trained is not None:
        for modality, item in trained.modalities.items():
            if item.cases is not None and item.cases >= min_cases:
                chosen[modality] = item
    return QualityReference(chosen)


def _merged(first: ObservedRange | None, second: ObservedRange | None) -> ObservedRange | None:
    if first is None or second is None:
        return first or second
    return first.merged(second)


def _optional_range(data: Mapping[str, Any] | None) -> ObservedRange | None:
    return None if data is None else ObservedRange.from_dict(data)


def _check_organ_ids(organs: Mapping[int, Any]) -> None:
    unknown = sorted(organ for organ in organs if organ not in ORGAN_BY_ID)
    if unknown:
        raise ValueError(f"organ ids {unknown} are not AMOS organs (1..{len(ORGAN_BY_ID)})")


def _organ_id(name: str) -> int:
    if name not in ORGAN_BY_NAME:
        raise ValueError(f"unknown organ {name!r} in the quality reference")
    return ORGAN_BY_NAME[name].id


def _refuse_unknown(data: Mapping[str, Any], record: type, what: str) -> None:
    unknown = sorted(set(data) - {item.name for item in fields(record)})
    if unknown:
        raise ValueError(f"unknown {what} keys {unknown}")
