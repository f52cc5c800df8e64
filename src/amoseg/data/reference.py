"""The quality reference: per modality and organ, what a model's training data looked like.

``amoseg stats`` measures, in every labelled case of the splits a model trains on (``TRAINING_SPLITS``),
each organ's volume, mean intensity and position along the patient's head-to-feet axis, and keeps for
each the range seen over the cases (``QualityReference``, part of the fingerprint). The plan copies
it, so it travels in ``plans.json`` and in every checkpoint; a prediction's quality flags
(``amoseg.inference.quality``) compare against it. Where the training data measured a range in too
few cases, or never (an organ its datasets do not annotate), the AMOS 2022 dataset card's range for
that organ stands in (``with_fallback``, ``amoseg.data.amos_card``).

What each range holds when measured on training label maps (``source`` "training"):

- ``volume_ml``: organ volume (voxels x voxel volume, mL) over the cases where the organ is whole,
  i.e. does not touch the scan's edge (a cut organ's volume says nothing about the organ).
- ``intensity_mean``: per case, the mean intensity of the organ's voxels (image units: HU for CT);
  the range of those means.
- ``centre_above_mm[other]``: how far this organ's centre lies above the other organ's centre
  (``amoseg.data.placement``, mm, negative below), over the cases where both are whole.

Every range is ``min``, ``max``, the number of ``cases`` it covers and its ``source``. For ``source``
"amos_card" the intensity range is the 0.5th to 99.5th percentile of all the organ's voxels (the
card has no per-case means), and there are no positions: positions only ever come from training.
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

#: Each source in the words of messages and descriptions (``ModalityReference.describe``).
SOURCE_NAMES: Mapping[ReferenceSource, str] = MappingProxyType(
    {"training": "the model's training data", "amos_card": "the AMOS 2022 dataset card"}
)

#: The splits whose labelled cases the reference measures: those preprocessing caches for training.
#: Labelled test cases stay out, so that their flags are an honest check of cases the model never saw.
TRAINING_SPLITS = ("train", "validation")

#: A training range is trusted from this many cases on. A new case from the same population falls
#: outside the min..max of n cases with probability 2 / (n + 1): about 10 % at 20 cases, and every
#: organ has several ranges, so fewer cases would flag most normal scans.
MIN_REFERENCE_CASES = 20


@dataclass(frozen=True)
class ObservedRange:
    """The smallest and largest value seen, over how many cases (None: not stated by the source), and
    where it was seen."""

    min: float
    max: float
    cases: int | None = None
    source: ReferenceSource = "training"

    def __post_init__(self) -> None:
        # Plain Python numbers: the range is stored in checkpoints, which load only plain values.
        object.__setattr__(self, "min", float(self.min))
        object.__setattr__(self, "max", float(self.max))
        if self.cases is not None:
            object.__setattr__(self, "cases", int(self.cases))
        if not (math.isfinite(self.min) and math.isfinite(self.max)) or self.min > self.max:
            raise ValueError(f"a range needs finite min <= max, got {self.min}, {self.max}")
        if self.source not in SOURCES:
            raise ValueError(f"range source {self.source!r} is not one of {list(SOURCES)}")

    @classmethod
    def of(cls, values: Iterable[float]) -> ObservedRange | None:
        """The training range of some values; None for none."""
        values = [float(value) for value in values]
        return cls(min(values), max(values), len(values)) if values else None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"min": self.min, "max": self.max}
        if self.cases is not None:
            data["cases"] = self.cases
        # A training range is written without its source, as before ranges had one: the references
        # stored in fingerprints, plans and checkpoints are all training, and an older amoseg, which
        # refuses unknown keys, still reads them.
        if self.source != "training":
            data["source"] = self.source
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObservedRange:
        _refuse_unknown(data, cls, "range")
        cases = data.get("cases")
        return cls(
            data["min"], data["max"], None if cases is None else int(cases), data.get("source", "training")
        )


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
        source: where it was measured: "training" (the model's training label maps, by ``amoseg
            stats``) or "amos_card" (the AMOS 2022 dataset card's tables). Positions come from it only.
        cases: labelled cases measured (training); None when the source does not say (the card).
        organs: organ id -> its reference; organs neither source holds are left out.
        fallback: the source that filled in the volume and intensity ranges ``source`` measured in too
            few cases or not at all (``with_fallback``); None when none was consulted. Each range says
            which of the two it comes from (``ObservedRange.source``).
    """

    source: ReferenceSource
    cases: int | None
    organs: Mapping[int, OrganReference]
    fallback: ReferenceSource | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"reference source {self.source!r} is not one of {list(SOURCES)}")
        if self.fallback is not None and (self.fallback not in SOURCES or self.fallback == self.source):
            raise ValueError(f"fallback {self.fallback!r} is not a source other than {self.source!r}")
        _check_organ_ids(self.organs)
        object.__setattr__(self, "organs", MappingProxyType(dict(sorted(self.organs.items()))))
        # Only volumes and intensities are ever filled in from a fallback (the card has no positions).
        allowed = {self.source, self.fallback} - {None}
        for organ, reference in self.organs.items():
            measured = {
                item.source for item in (reference.volume_ml, reference.intensity_mean) if item is not None
            }
            placed = {item.source for item in reference.centre_above_mm.values()}
            if not measured <= allowed or not placed <= {self.source}:
                raise ValueError(
                    f"{ORGAN_BY_ID[organ].name}: ranges from {sorted(measured | placed)} in a {self.source} "
                    f"reference with fallback {self.fallback}; positions come from its own source only"
                )

    def describe(self, modality: Modality, source: ReferenceSource | None = None) -> str:
        """Where ranges of ``source`` (default: the reference's own) come from, for people: "the
        model's training data (24 labelled CT cases)", "the AMOS 2022 dataset card"."""
        source = source or self.source
        if source == "training" and self.source == "training":
            return f"{SOURCE_NAMES[source]} ({self.cases} labelled {modality} cases)"
        return SOURCE_NAMES[source]

    def to_dict(self) -> dict[str, Any]:
        data = {
            "source": self.source,
            "cases": self.cases,
            "organs": {
                ORGAN_BY_ID[organ].name: reference.to_dict() for organ, reference in self.organs.items()
            },
        }
        # Written only when set, as for a range's source: a stored training reference has none.
        if self.fallback is not None:
            data["fallback"] = self.fallback
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModalityReference:
        _refuse_unknown(data, cls, "modality reference")
        cases = data.get("cases")
        return cls(
            source=data["source"],
            cases=None if cases is None else int(cases),
            organs={_organ_id(name): OrganReference.from_dict(item) for name, item in data["organs"].items()},
            fallback=data.get("fallback"),
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


def with_fallback(
    trained: QualityReference | None, fallback: QualityReference, min_cases: int
) -> QualityReference:
    """The reference a model's predictions are checked against: per modality, organ and range.

    Each volume and mean-intensity range is the training one when measured in at least ``min_cases``
    cases, else the fallback's (the AMOS card's) for that organ. So a model trained on datasets that
    never annotate an organ (e.g. BTCV: no duodenum, bladder or prostate/uterus), or see it whole in
    too few scans, still has that organ's volume and intensity checked. Positions come from the
    training data only (the card has none). A training range too small with no fallback range to
    replace it is kept, so that the report can say in how few cases it was measured.

    Args:
        trained: the reference measured on the model's training data; None when it carries none.
        fallback: the reference to fill in from (``amoseg.data.amos_card.amos_card_reference``).
        min_cases: the fewest cases a training range must cover to be used.

    Returns:
        per modality: the training reference with ranges filled in (``ModalityReference.fallback``
        names the fallback; each range its own source), or the fallback's where training has none.
    """
    chosen = dict(fallback.modalities)
    for modality, measured in ({} if trained is None else trained.modalities).items():
        other = fallback.modalities.get(modality)
        other_organs = {} if other is None else other.organs
        organs = {}
        for organ in sorted(set(measured.organs) | set(other_organs)):
            own = measured.organs.get(organ, OrganReference())
            spare = other_organs.get(organ, OrganReference())
            organs[organ] = OrganReference(
                volume_ml=_trusted(own.volume_ml, spare.volume_ml, min_cases),
                intensity_mean=_trusted(own.intensity_mean, spare.intensity_mean, min_cases),
                centre_above_mm=own.centre_above_mm,
            )
        chosen[modality] = ModalityReference(
            measured.source, measured.cases, organs, fallback=None if other is None else other.source
        )
    return QualityReference(chosen)


def _trusted(own: ObservedRange | None, spare: ObservedRange | None, min_cases: int) -> ObservedRange | None:
    """``own`` when it covers ``min_cases`` cases, else ``spare``; ``own`` when there is no spare."""
    if own is not None and own.cases is not None and own.cases >= min_cases:
        return own
    return own if spare is None else spare


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
