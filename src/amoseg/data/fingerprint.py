"""The planning fingerprint: what ``amoseg plan`` needs to know about a dataset (``fingerprint.json``).

Like nnU-Net's ``dataset_fingerprint.json`` (spacings, shapes after cropping to the non-zero region,
foreground intensity statistics), but per modality instead of per channel, so a CT+MR dataset gets
separate CT and MR statistics. Foreground intensities are computed exactly over every labelled voxel
rather than from nnU-Net's 10,000 samples per case. Each case also records its axis permutation to the
canonical orientation (``amoseg.io.orientation``), read from the header the stats stage opens anyway,
so planning never opens an image. Optionally it holds the quality reference
(``amoseg.data.reference``): per modality and organ, the volumes, mean intensities and positions seen in
the labelled cases, which the plan carries to the trained model for the quality flags of predictions.

``Fingerprint`` is the only code that reads or writes ``fingerprint.json``: ``amoseg stats`` writes it
(``Fingerprint.save``), ``amoseg plan`` reads it (``Fingerprint.load``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from amoseg.data.reference import TRAINING_SPLITS, QualityReference, reference_from_cases
from amoseg.data.statistics import StatisticsAccumulator
from amoseg.errors import InputError
from amoseg.labels import MODALITIES, Modality

#: 2: each case records ``axis_permutation``. A version-1 file lacks it and must be recomputed.
#: 3: an optional ``quality_reference``. A version-2 file lacks it and still serves planning.
FINGERPRINT_VERSION = 3
#: The oldest format planning can still use.
OLDEST_USABLE_VERSION = 2
FINGERPRINT_FILE = "fingerprint.json"

Int3 = tuple[int, int, int]
Vector3 = tuple[float, float, float]


def fingerprint_path(stats_folder: str | Path) -> Path:
    """Where ``amoseg stats`` writes the fingerprint inside its output folder."""
    return Path(stats_folder) / FINGERPRINT_FILE


@dataclass(frozen=True)
class FingerprintCase:
    """One case's geometry, as stored in its file.

    Attributes:
        case_id: the dataset's case id.
        modality: CT or MR.
        split: the dataset split (train, validation, test).
        spacing_mm, shape: per file axis (x, y, z), mm and voxels.
        shape_after_crop: voxels per file axis of the box around the non-zero voxels; (0, 0, 0) for an
            all-zero image.
        labelled: whether the case has a label map.
        axis_permutation: canonical axis k is file axis ``axis_permutation[k]``
            (``amoseg.io.orientation.canonical_reorientation`` of the header's direction).
    """

    case_id: str
    modality: Modality
    split: str
    spacing_mm: Vector3
    shape: Int3
    shape_after_crop: Int3
    labelled: bool
    axis_permutation: Int3 = (0, 1, 2)

    def __post_init__(self) -> None:
        if sorted(self.axis_permutation) != [0, 1, 2]:
            raise ValueError(f"{self.case_id}: axis_permutation {list(self.axis_permutation)} is not one")
        if self.modality not in MODALITIES:
            raise ValueError(f"{self.case_id}: modality {self.modality!r} is not one of {list(MODALITIES)}")

    @property
    def canonical_spacing_mm(self) -> Vector3:
        """Spacing in the canonical orientation's axis order (mm)."""
        return tuple(self.spacing_mm[axis] for axis in self.axis_permutation)

    @property
    def canonical_planning_shape(self) -> Int3:
        """The shape planning counts, canonical axis order: after the crop, or whole for an all-zero image
        (its empty crop would say nothing about the scan's size)."""
        shape = self.shape_after_crop if min(self.shape_after_crop) > 0 else self.shape
        return tuple(shape[axis] for axis in self.axis_permutation)

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "modality": self.modality,
            "split": self.split,
            "spacing_mm": list(self.spacing_mm),
            "shape": list(self.shape),
            "shape_after_crop": list(self.shape_after_crop),
            "labelled": self.labelled,
            "axis_permutation": list(self.axis_permutation),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FingerprintCase:
        """Raises ValueError, KeyError or TypeError: unknown or missing keys, or bad values."""
        _refuse_unknown(data, cls, "case")
        return cls(
            case_id=str(data["case_id"]),
            modality=data["modality"],
            split=str(data["split"]),
            spacing_mm=_vector(data["spacing_mm"], float),
            shape=_vector(data["shape"], int),
            shape_after_crop=_vector(data["shape_after_crop"], int),
            labelled=bool(data["labelled"]),
            axis_permutation=_vector(data["axis_permutation"], int),
        )


@dataclass(frozen=True)
class IntensityStatistics:
    """Foreground (labelled voxels) intensities of one modality over the whole dataset, image units.

    Attributes:
        p0_5, median, p99_5: percentiles (``numpy.percentile``, linear method), written "p0.5",
            "median", "p99.5".
        exact: False when float intensities were subsampled (``amoseg.data.statistics``).
        sampled_fraction: the share of float values kept when not exact, else None.
    """

    min: float
    p0_5: float
    median: float
    mean: float
    std: float
    p99_5: float
    max: float
    voxels: int
    exact: bool = True
    sampled_fraction: float | None = None

    _JSON_NAMES = MappingProxyType({"p0_5": "p0.5", "p99_5": "p99.5"})

    def to_dict(self) -> dict[str, Any]:
        data = {self._JSON_NAMES.get(item.name, item.name): getattr(self, item.name) for item in fields(self)}
        if self.sampled_fraction is None:
            del data["sampled_fraction"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntensityStatistics:
        """Raises ValueError, KeyError or TypeError: unknown or missing keys, or bad values."""
        names = {json_name: name for name, json_name in cls._JSON_NAMES.items()}
        values = {names.get(key, key): value for key, value in data.items()}
        _refuse_unknown(values, cls, "foreground intensity")
        fraction = values.get("sampled_fraction")
        return cls(
            **{key: float(values[key]) for key in ("min", "p0_5", "median", "mean", "std", "p99_5", "max")},
            voxels=int(values["voxels"]),
            exact=bool(values.get("exact", True)),
            sampled_fraction=None if fraction is None else float(fraction),
        )


@dataclass(frozen=True)
class Fingerprint:
    """A dataset's fingerprint: per-case geometry and per-modality foreground intensities.

    Attributes:
        dataset: the dataset's name.
        cases: one record per case the stats stage read, sorted by case id.
        foreground_intensity: modality -> its statistics; only modalities with labelled voxels.
        quality_reference: per modality and organ, the ranges the quality flags of a prediction
            compare against; None in a fingerprint written before it existed, or without labelled cases.
    """

    dataset: str
    cases: tuple[FingerprintCase, ...]
    foreground_intensity: Mapping[Modality, IntensityStatistics]
    quality_reference: QualityReference | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "cases", tuple(self.cases))
        object.__setattr__(self, "foreground_intensity", MappingProxyType(dict(self.foreground_intensity)))

    @property
    def case_ids(self) -> frozenset[str]:
        return frozenset(case.case_id for case in self.cases)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "fingerprint_version": FINGERPRINT_VERSION,
            "dataset": self.dataset,
            "cases": [case.to_dict() for case in self.cases],
            "foreground_intensity": {
                modality: statistics.to_dict() for modality, statistics in self.foreground_intensity.items()
            },
        }
        if self.quality_reference is not None:
            data["quality_reference"] = self.quality_reference.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fingerprint:
        """Rebuild a fingerprint written by this version of amoseg, or by one of format 2 (without the
        quality reference).

        Raises:
            ValueError: a newer format, or one older than 2 (it lacks what planning needs), unknown or
                missing keys; KeyError or TypeError for malformed entries.
        """
        known = {"fingerprint_version", "dataset", "cases", "foreground_intensity", "quality_reference"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown keys {unknown}")
        version = int(data.get("fingerprint_version", 1))
        if version > FINGERPRINT_VERSION:
            raise ValueError(
                f"fingerprint format {version} is newer than this amoseg's ({FINGERPRINT_VERSION})"
            )
        if version < OLDEST_USABLE_VERSION:
            raise ValueError(
                f"fingerprint format {version} is older than this amoseg's ({FINGERPRINT_VERSION}) and "
                "lacks the cases' orientation"
            )
        if version < 3 and "quality_reference" in data:
            raise ValueError(f"a format-{version} fingerprint cannot hold a quality_reference")
        reference = data.get("quality_reference")
        if not isinstance(data.get("cases"), list):
            raise ValueError("no case list")
        return cls(
            dataset=str(data.get("dataset", "")),
            cases=tuple(FingerprintCase.from_dict(case) for case in data["cases"]),
            foreground_intensity={
                modality: IntensityStatistics.from_dict(statistics)
                for modality, statistics in (data.get("foreground_intensity") or {}).items()
            },
            quality_reference=None if reference is None else QualityReference.from_dict(reference),
        )

    def save(self, stats_folder: str | Path) -> None:
        """Write ``fingerprint.json`` into ``stats_folder`` atomically."""
        from amoseg.atomic import write_json

        write_json(fingerprint_path(stats_folder), self.to_dict())

    @classmethod
    def load(cls, stats_folder: str | Path) -> Fingerprint:
        """Read the fingerprint ``amoseg stats`` wrote into ``stats_folder``.

        Raises:
            InputError: missing, unreadable, of another format version, or not a fingerprint; the one
                line says to rerun ``amoseg stats``.
        """
        from amoseg.atomic import read_json

        path = fingerprint_path(stats_folder)
        data = read_json(path, "fingerprint")
        try:
            if not isinstance(data, Mapping):
                raise TypeError("the file does not hold a JSON object")
            return cls.from_dict(data)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise InputError(
                path, f"not a usable amoseg fingerprint: {error}; rerun `amoseg stats`"
            ) from None


def build_fingerprint(accumulator: StatisticsAccumulator, name: str) -> Fingerprint:
    """The fingerprint of the cases an accumulator has seen, in the order it holds them."""
    cases = tuple(
        FingerprintCase(
            case_id=case.case_id,
            modality=case.modality,
            split=case.split,
            spacing_mm=case.spacing_mm,
            shape=case.shape,
            shape_after_crop=case.cropped_shape,
            labelled=case.organ_voxels is not None,
            axis_permutation=case.axis_permutation,
        )
        for case in accumulator.cases
    )
    intensity = {}
    for modality in MODALITIES:
        summary = accumulator.foreground_intensity(modality)
        if summary:
            intensity[modality] = IntensityStatistics.from_dict(summary)
    reference = reference_from_cases(
        (case.modality, case.organ_measures)
        for case in accumulator.cases
        if case.organ_voxels is not None and case.split in TRAINING_SPLITS
    )
    return Fingerprint(dataset=name, cases=cases, foreground_intensity=intensity, quality_reference=reference)


def _refuse_unknown(data: Mapping[str, Any], record: type, what: str) -> None:
    unknown = sorted(set(data) - {item.name for item in fields(record)})
    if unknown:
        raise ValueError(f"unknown {what} keys {unknown}")


def _vector(values: Sequence, kind: type) -> tuple:
    if len(values) != 3:
        raise ValueError(f"expected three values (x, y, z), got {list(values)}")
    return tuple(kind(value) for value in values)
