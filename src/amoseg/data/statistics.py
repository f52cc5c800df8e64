"""Dataset statistics: the AMOS dataset card's tables and the planning fingerprint, computed exactly.

One pass over the cases. Each case is reduced by ``case_statistics`` (a pure function of its image and
label) to a small summary: geometry, organ voxel counts and, per organ, the intensity distribution of
its voxels and the few numbers the quality reference keeps (volume, mean intensity, position along
the patient; ``amoseg.data.reference``). Summaries are merged in a ``StatisticsAccumulator`` whose
memory grows with the number of cases only by those small summaries, except for float-valued images
(below).

Intensity percentiles equal ``numpy.percentile`` (linear method) over all voxels of an organ in all
labelled cases of a modality:

- integer-valued images (CT in HU, most MR) are counted in exact histograms, one bin per integer value,
  so percentiles, mean and std are exact in bounded memory;
- float-valued images keep the organ's voxel values as float32 while they fit ``max_float_values``;
  past that budget a uniform random subsample is kept and the organ's entry is marked
  ``"exact": false`` with the kept fraction. Min, max, mean, std and the voxel count stay exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from amoseg.data.placement import organ_placements
from amoseg.data.reference import OrganMeasure
from amoseg.io.boxes import mask_box
from amoseg.io.image import Image, LabelMap
from amoseg.io.orientation import canonical_reorientation
from amoseg.labels import MAX_LABEL, Modality

#: Integer intensities in this range are histogrammed densely (covers int16 and uint16 images).
HISTOGRAM_LOW = -32768
HISTOGRAM_HIGH = 65535
_BINS = HISTOGRAM_HIGH - HISTOGRAM_LOW + 1

#: Float voxel values kept per (modality, organ) before subsampling: 2**27 float32 = 512 MiB.
MAX_FLOAT_VALUES = 2**27

PERCENTILES = {"p0.5": 0.5, "median": 50.0, "p99.5": 99.5}


@dataclass(frozen=True)
class OrganIntensity:
    """Intensities of one organ in one case: a sparse histogram (integers) or the values (floats)."""

    values: np.ndarray  # distinct integer values, or every float value
    counts: np.ndarray | None  # voxels per distinct value; None for float values


@dataclass(frozen=True)
class CaseStatistics:
    """What one case contributes to the dataset statistics.

    Attributes:
        spacing_mm, shape: in array axis order (x, y, z).
        axis_permutation: canonical axis k is array axis ``axis_permutation[k]``
            (``amoseg.io.orientation.canonical_reorientation`` of the image's direction).
        cropped_shape: shape of the bounding box of the non-zero image voxels (nnU-Net's crop).
        organ_voxels: voxels per label id 1..15 (index 0 unused); None for cases without a label.
        intensity: per organ id present, its intensities; empty without a label.
        organ_measures: per organ id present and annotated, its volume, mean intensity and placement
            (the quality reference, ``amoseg.data.reference``); empty without a label.
    """

    case_id: str
    modality: Modality
    split: str
    spacing_mm: tuple[float, float, float]
    shape: tuple[int, int, int]
    cropped_shape: tuple[int, int, int]
    annotated_labels: tuple[int, ...]
    organ_voxels: tuple[int, ...] | None
    intensity: dict[int, OrganIntensity] = field(default_factory=dict)
    file_format: str = ""
    axis_permutation: tuple[int, int, int] = (0, 1, 2)
    organ_measures: dict[int, OrganMeasure] = field(default_factory=dict)


def case_statistics(
    case_id: str,
    modality: Modality,
    split: str,
    image: Image,
    label: LabelMap | None,
    annotated_labels: tuple[int, ...],
    file_format: str = "",
) -> CaseStatistics:
    """Reduce one case to its contribution; image and label must share a grid (checked by the caller)."""
    array = image.array
    nonzero_box = _nonzero_shape(array)
    organ_voxels = None
    intensity: dict[int, OrganIntensity] = {}
    organ_measures: dict[int, OrganMeasure] = {}
    if label is not None:
        # Organs fill a few per cent of a scan: find their voxels in one pass, then work on those only.
        # Both arrays are flattened in the same (Fortran) order, a view for arrays read by amoseg.io.
        flat_labels = np.ravel(label.array, order="F")
        foreground = np.flatnonzero(flat_labels > 0)
        organ_ids = flat_labels[foreground]
        values = np.ravel(array, order="F")[foreground]
        counts = np.bincount(organ_ids, minlength=MAX_LABEL + 1)[: MAX_LABEL + 1]
        counts[0] = flat_labels.size - foreground.size
        organ_voxels = tuple(int(count) for count in counts)
        # A label value the dataset does not annotate is not a trustworthy organ sample.
        intensity = {
            organ_id: organ_values
            for organ_id, organ_values in _organ_intensities(values, organ_ids, counts).items()
            if organ_id in annotated_labels
        }
        organ_measures = _organ_measures(label, intensity, counts)
    return CaseStatistics(
        case_id=case_id,
        modality=modality,
        split=split,
        spacing_mm=tuple(float(value) for value in image.geometry.spacing),
        shape=tuple(int(value) for value in array.shape),
        cropped_shape=nonzero_box,
        annotated_labels=tuple(annotated_labels),
        organ_voxels=organ_voxels,
        intensity=intensity,
        file_format=file_format,
        axis_permutation=canonical_reorientation(image.geometry.direction).permutation,
        organ_measures=organ_measures,
    )


def _organ_measures(
    label: LabelMap, intensity: dict[int, OrganIntensity], counts: np.ndarray
) -> dict[int, OrganMeasure]:
    """Volume, mean intensity and placement of each organ with intensities (present and annotated)."""
    voxel_ml = label.geometry.voxel_volume_mm3 / 1000.0
    placements = organ_placements(label.array, label.geometry, intensity)
    measures = {}
    for organ_id, values in sorted(intensity.items()):
        as_float = values.values.astype(np.float64)
        mean = float(
            as_float.mean() if values.counts is None else np.average(as_float, weights=values.counts)
        )
        placement = placements[organ_id]
        measures[organ_id] = OrganMeasure(
            volume_ml=float(counts[organ_id] * voxel_ml),
            intensity_mean=mean,
            centre_superior_mm=placement.centre_superior_mm,
            touches_edge=placement.touches_edge,
        )
    return measures


def _nonzero_shape(array: np.ndarray) -> tuple[int, int, int]:
    box = mask_box(array != 0)
    if box is None:
        return (0, 0, 0)
    return tuple(int(part.stop - part.start) for part in box)


def _organ_intensities(
    values: np.ndarray, organ_ids: np.ndarray, counts: np.ndarray
) -> dict[int, OrganIntensity]:
    """Per organ, the intensities of its voxels, from the foreground voxels' values and organ ids."""
    if values.size == 0:
        return {}
    result: dict[int, OrganIntensity] = {}
    if _integer_valued(values):
        values = values.astype(np.int64)
        low = int(values.min())
        span = int(values.max()) - low + 1
        if span * (MAX_LABEL + 1) <= 2**26:
            # One bincount over (organ, value) pairs instead of a pass per organ.
            joint = np.bincount(
                organ_ids.astype(np.int64) * span + (values - low), minlength=span * (MAX_LABEL + 1)
            )
            joint = joint.reshape(MAX_LABEL + 1, span)
            for organ_id in np.flatnonzero(counts[1:]) + 1:
                row = joint[organ_id]
                present = np.flatnonzero(row)
                result[int(organ_id)] = OrganIntensity(present + low, row[present])
            return result
        for organ_id in np.flatnonzero(counts[1:]) + 1:
            distinct, number = np.unique(values[organ_ids == organ_id], return_counts=True)
            result[int(organ_id)] = OrganIntensity(distinct, number)
        return result
    values = values.astype(np.float32)
    order = np.argsort(organ_ids, kind="stable")
    boundaries = np.cumsum(counts[1:])
    for index, chunk in enumerate(np.split(values[order], boundaries[:-1])):
        if chunk.size:
            result[index + 1] = OrganIntensity(chunk, None)
    return result


def _integer_valued(values: np.ndarray) -> bool:
    if np.issubdtype(values.dtype, np.integer):
        return True
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


class _Distribution:
    """Exact distribution of many voxel values, fed case by case."""

    def __init__(self, max_float_values: int, seed: int) -> None:
        self.histogram: np.ndarray | None = None  # dense, over HISTOGRAM_LOW..HISTOGRAM_HIGH
        self.floats: list[np.ndarray] = []
        self.float_count = 0
        self.keep_fraction = 1.0
        self.max_float_values = max_float_values
        self.rng = np.random.default_rng(seed)
        self.count = 0
        self.total = 0.0
        self.total_squares = 0.0
        self.low = np.inf
        self.high = -np.inf

    def add(self, intensity: OrganIntensity) -> None:
        values, counts = intensity.values, intensity.counts
        if counts is None:
            counts_for_moments = None
            self._add_floats(values.astype(np.float32))
        elif values.min() >= HISTOGRAM_LOW and values.max() <= HISTOGRAM_HIGH:
            if self.histogram is None:
                self.histogram = np.zeros(_BINS, dtype=np.int64)
            np.add.at(self.histogram, values - HISTOGRAM_LOW, counts)
            counts_for_moments = counts
        else:  # integers beyond the dense range: expand them (rare: int32 images)
            counts_for_moments = counts
            self._add_floats(np.repeat(values, counts).astype(np.float32))
        as_float = values.astype(np.float64)
        if counts_for_moments is None:
            self.count += int(values.size)
            self.total += float(as_float.sum())
            self.total_squares += float(np.square(as_float).sum())
        else:
            self.count += int(counts_for_moments.sum())
            self.total += float((as_float * counts_for_moments).sum())
            self.total_squares += float((np.square(as_float) * counts_for_moments).sum())
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))

    def _add_floats(self, values: np.ndarray) -> None:
        if self.keep_fraction < 1.0:
            values = values[self.rng.random(values.size) < self.keep_fraction]
        self.floats.append(values)
        self.float_count += values.size
        while self.float_count > self.max_float_values:
            # Halve what is kept, uniformly, so the sample stays unbiased across cases.
            self.keep_fraction /= 2
            self.floats = [chunk[self.rng.random(chunk.size) < 0.5] for chunk in self.floats]
            self.float_count = sum(chunk.size for chunk in self.floats)

    def summary(self) -> dict[str, float | int | bool]:
        if self.count == 0:
            return {}
        mean = self.total / self.count
        variance = max(self.total_squares / self.count - mean * mean, 0.0)
        result: dict[str, float | int | bool] = {"min": self.low}
        percentiles = self._percentiles()
        result.update({"p0.5": percentiles["p0.5"], "median": percentiles["median"]})
        result.update({"mean": mean, "std": float(np.sqrt(variance))})
        result.update({"p99.5": percentiles["p99.5"], "max": self.high, "voxels": self.count})
        result["exact"] = self.keep_fraction == 1.0
        if self.keep_fraction < 1.0:
            result["sampled_fraction"] = self.keep_fraction
        return result

    def _percentiles(self) -> dict[str, float]:
        if not self.floats:
            return {name: _histogram_percentile(self.histogram, q) for name, q in PERCENTILES.items()}
        values = np.concatenate(self.floats).astype(np.float64)
        if self.histogram is not None:
            present = np.flatnonzero(self.histogram)
            values = np.concatenate([values, np.repeat(present + HISTOGRAM_LOW, self.histogram[present])])
        return {name: float(np.percentile(values, q)) for name, q in PERCENTILES.items()}


def _histogram_percentile(histogram: np.ndarray, q: float) -> float:
    """numpy.percentile(values, q) (linear method) from a dense histogram of integer values."""
    cumulative = np.cumsum(histogram)
    count = int(cumulative[-1])
    position = q / 100.0 * (count - 1)
    below = int(np.floor(position))
    above = min(below + 1, count - 1)
    low_value = float(np.searchsorted(cumulative, below, side="right") + HISTOGRAM_LOW)
    high_value = float(np.searchsorted(cumulative, above, side="right") + HISTOGRAM_LOW)
    fraction = position - below
    # numpy's lerp, including its form for fractions of one half and above.
    if fraction >= 0.5:
        return high_value - (high_value - low_value) * (1 - fraction)
    return low_value + (high_value - low_value) * fraction


class StatisticsAccumulator:
    """Merges ``CaseStatistics`` one at a time; memory independent of the number of cases (integers)."""

    def __init__(self, max_float_values: int = MAX_FLOAT_VALUES, seed: int = 0) -> None:
        self.cases: list[CaseStatistics] = []  # without their intensity payload
        self.max_float_values = max_float_values
        self.seed = seed
        self.organ_intensity: dict[tuple[Modality, int], _Distribution] = {}
        self.foreground: dict[Modality, _Distribution] = {}

    def add(self, stats: CaseStatistics) -> None:
        for organ_id, intensity in stats.intensity.items():
            key = (stats.modality, organ_id)
            if key not in self.organ_intensity:
                self.organ_intensity[key] = _Distribution(self.max_float_values, self.seed + organ_id)
            self.organ_intensity[key].add(intensity)
            if stats.modality not in self.foreground:
                self.foreground[stats.modality] = _Distribution(self.max_float_values, self.seed)
            self.foreground[stats.modality].add(intensity)
        self.cases.append(
            CaseStatistics(
                case_id=stats.case_id,
                modality=stats.modality,
                split=stats.split,
                spacing_mm=stats.spacing_mm,
                shape=stats.shape,
                cropped_shape=stats.cropped_shape,
                annotated_labels=stats.annotated_labels,
                organ_voxels=stats.organ_voxels,
                file_format=stats.file_format,
                axis_permutation=stats.axis_permutation,
                organ_measures=stats.organ_measures,
            )
        )

    def intensity(self, modality: Modality, organ_id: int) -> dict:
        distribution = self.organ_intensity.get((modality, organ_id))
        return distribution.summary() if distribution else {}

    def foreground_intensity(self, modality: Modality) -> dict:
        distribution = self.foreground.get(modality)
        return distribution.summary() if distribution else {}
