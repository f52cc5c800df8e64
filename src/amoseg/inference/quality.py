"""Quality flags on a predicted label map: per organ, what a clinician should look at again.

``organ_report`` gives, per organ the output can hold, the statistics of ``amoseg predict
--statistics`` (volume, intensity mean, std and median) and the flags raised against a reference
(``amoseg.data.reference``: per organ and range the model's training data, or the AMOS card where
the training data measured too few cases; each range names its source):

- ``volume_low`` / ``volume_high``: volume outside the reference's range. Only a whole organ is
  compared: one that touches the scan's edge may lie partly outside it, and the reference holds only
  whole organs (a long vessel that crosses the scan is cut in every scan, and never compared).
- ``missing``: the organ is absent although the scan covers where it should be. Where it should be
  is read off the organs that were found: the training data says how far above or below each of them
  its centre lies (a range per pair of organs); each found organ that is whole (not touching the
  scan's edge) gives an interval for the missing organ's centre, widened by ``POSITION_MARGIN_MM`` on
  both sides; the intervals are intersected. The organ is flagged only when that interval lies inside
  the stretch the scan covers along the patient (``amoseg.data.placement.superior_coverage_mm``).
- ``split``: more than one large 26-connected piece; a piece is large from ``LARGE_PIECE_FRACTION`` of
  the organ's volume and at least ``LARGE_PIECE_MIN_ML``.
- ``intensity_low`` / ``intensity_high``: the mean intensity of the organ's voxels outside the
  reference's range for the scan's modality.

A range measured in fewer than ``min_cases`` cases (default ``MIN_REFERENCE_CASES``) is not used. A
check that applies but cannot be made says why under ``not_checked``. Rules, thresholds and limits:
docs/quality.md.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import ndimage

from amoseg.data.placement import OrganPlacement, organ_placements, superior_coverage_mm
from amoseg.data.reference import (
    MIN_REFERENCE_CASES,
    SOURCE_NAMES,
    ModalityReference,
    ObservedRange,
    OrganReference,
    QualityReference,
)
from amoseg.io.boxes import label_boxes
from amoseg.io.image import Image, LabelMap
from amoseg.labels import MAX_LABEL, ORGAN_BY_ID, Modality

#: A piece of an organ is large from this share of the organ's volume ...
LARGE_PIECE_FRACTION = 0.1
#: ... and from this many mL, so that a few stray voxels of a small organ never count.
LARGE_PIECE_MIN_ML = 1.0
#: Each interval for a missing organ's centre is widened by this much on both sides (mm): a new
#: patient's organs may lie a little further apart than any training case's.
POSITION_MARGIN_MM = 15.0

_UNITS = {"CT": "HU", "MR": "MR units"}
#: What an intensity range is, per source: the training data keeps each case's mean, the card only
#: percentiles over all of an organ's voxels (amoseg.data.amos_card).
_INTENSITY_BASIS = {
    "training": f"per-case means in {SOURCE_NAMES['training']}",
    "amos_card": f"{SOURCE_NAMES['amos_card']}, 0.5th to 99.5th percentile of all its voxels",
}
_MR_CAVEAT = (
    " MR intensities depend on the scanner, sequence and scaling: this compares only with MR scans "
    "acquired like the reference's."
)

Flag = dict[str, Any]


def organ_report(
    image: Image,
    label: LabelMap,
    modality: Modality,
    labels: Mapping[int, str],
    reference: QualityReference,
    *,
    min_cases: int = MIN_REFERENCE_CASES,
) -> dict[str, dict[str, Any]]:
    """Per organ: volume and intensity statistics, and the quality flags against ``reference``.

    A drop-in for the statistics ``amoseg predict --statistics`` writes: the same keys per organ, and
    beside them ``flags`` (a list, empty when nothing was found), ``not_checked`` (check -> why it
    could not be made) and ``reference`` (the source and the ranges compared with).

    Args:
        image: the intensity image the prediction was made from.
        label: the predicted label map, on the image's grid.
        modality: "CT" or "MR", the image's; chooses the reference and the intensity unit.
        labels: class id -> the name to report it under; the organs the output can hold. An organ
            listed but absent from the map is reported with volume 0 and checked for ``missing``.
        reference: the ranges to compare with (``amoseg.model.loading.Model.quality_reference``).
        min_cases: a range (volume, intensity, position beside a found organ) is used only when
            measured in at least this many cases; a range whose source does not count its cases (the
            AMOS card's intensities) is always used.

    Returns:
        organ name -> {"volume_ml", "intensity_mean", "intensity_std", "intensity_median", "flags",
        "not_checked", "reference"}, in the order of ``labels``. Volumes in mL; intensities in image
        units (HU for CT), None for an absent organ. Each flag holds "code" and "message" and the
        numbers behind it (docs/quality.md).

    Raises:
        ValueError: the image and the label map differ in shape.

    Example:
        >>> report = organ_report(image, label, "CT", {6: "liver"}, model.quality_reference())
        >>> [flag["code"] for flag in report["liver"]["flags"]]
        ['volume_high']
    """
    if image.array.shape != label.array.shape:
        raise ValueError(
            f"image of shape {image.array.shape} and label map of shape {label.array.shape} differ"
        )
    geometry = label.geometry
    voxel_ml = geometry.voxel_volume_mm3 / 1000.0
    boxes = label_boxes(label.array, MAX_LABEL)
    checks = _Checks(
        modality,
        reference.for_modality(modality),
        organ_placements(label.array, geometry),
        superior_coverage_mm(geometry),
        min_cases,
    )
    result: dict[str, dict[str, Any]] = {}
    for class_id, name in labels.items():
        box = boxes[class_id - 1] if 1 <= class_id <= len(boxes) else None
        if box is None:
            entry = _statistics(np.empty(0), voxel_ml)
            flags, not_checked = checks.absent(class_id)
        else:
            # Within the organ's box: the same voxels as over the whole grid, at the box's cost.
            mask = label.array[box] == class_id
            entry = _statistics(image.array[box][mask], voxel_ml)
            flags, not_checked = checks.present(class_id, entry, mask, voxel_ml)
        result[name] = {
            **entry,
            "flags": flags,
            "not_checked": not_checked,
            "reference": checks.reference_entry(class_id),
        }
    return result


def legend_flags(report: Mapping[str, Mapping[str, Any]], labels: Mapping[int, str]) -> dict[int, list[str]]:
    """Short flag texts per organ id, for the legend of ``amoseg.plotting.preview.save_preview``.

    Args:
        report: ``organ_report``'s result.
        labels: the class id -> name map the report was made with.

    Returns:
        organ id -> its flags in a few words each ("volume high (2512 mL)"); organs without flags
        left out.
    """
    texts: dict[int, list[str]] = {}
    for class_id, name in labels.items():
        flags = report.get(name, {}).get("flags", [])
        if flags:
            texts[class_id] = [_short(flag) for flag in flags]
    return texts


def _statistics(inside: np.ndarray, voxel_ml: float) -> dict[str, Any]:
    if inside.size == 0:
        return {"volume_ml": 0.0, "intensity_mean": None, "intensity_std": None, "intensity_median": None}
    return {
        "volume_ml": float(inside.size * voxel_ml),
        "intensity_mean": float(inside.mean(dtype=np.float64)),
        "intensity_std": float(inside.std(dtype=np.float64)),
        "intensity_median": float(np.median(inside)),
    }


class _Checks:
    """The checks of one scan: its modality's reference, the organs found and the scan's coverage."""

    def __init__(
        self,
        modality: Modality,
        reference: ModalityReference | None,
        placements: dict[int, OrganPlacement],
        coverage_mm: tuple[float, float] | None,
        min_cases: int,
    ) -> None:
        self.modality = modality
        self.reference = reference
        self.placements = placements
        self.coverage_mm = coverage_mm
        self.min_cases = min_cases

    def organ(self, class_id: int) -> OrganReference:
        organs = {} if self.reference is None else self.reference.organs
        return organs.get(class_id, OrganReference())

    def usable(self, observed: ObservedRange | None) -> bool:
        return observed is not None and (observed.cases is None or observed.cases >= self.min_cases)

    def why_unusable(self, observed: ObservedRange | None, what: str) -> str:
        if observed is not None:
            return (
                f"{SOURCE_NAMES[observed.source]} measured the {what} in {observed.cases} cases, fewer "
                f"than {self.min_cases}"
            )
        # No range at all: name every source consulted, so that a reader does not look for it in a
        # fallback that was tried as well.
        names = [SOURCE_NAMES[name] for name in (self.reference.source, self.reference.fallback) if name]
        if len(names) == 1:
            return f"{names[0]} holds no {what}"
        return f"neither {names[0]} nor {names[1]} holds any {what}"

    def reference_entry(self, class_id: int) -> dict[str, Any] | None:
        """The ranges compared with and where each comes from: ``source`` is the one source of both
        ranges, "mixed" when they come from two (each range then says which), None when there is none."""
        if self.reference is None:
            return None
        organ = self.organ(class_id)
        ranges = {"volume": organ.volume_ml, "mean intensity": organ.intensity_mean}
        sources = {observed.source for observed in ranges.values() if observed is not None}
        if len(sources) == 1:
            (source,) = sources
            description = self.reference.describe(self.modality, source)
        elif sources:
            source = "mixed"
            description = "; ".join(
                f"{what}: {self.reference.describe(self.modality, observed.source)}"
                for what, observed in ranges.items()
                if observed is not None
            )
        else:
            source, description = None, self.why_unusable(None, "range for it")
        return {
            "source": source,
            "description": description,
            "volume_ml": _range_entry(organ.volume_ml),
            "intensity_mean": _range_entry(organ.intensity_mean),
        }

    def present(
        self, class_id: int, entry: dict[str, Any], mask: np.ndarray, voxel_ml: float
    ) -> tuple[list[Flag], dict[str, str]]:
        title = _title(class_id)
        flags = [flag for flag in [_split_flag(title, mask, voxel_ml)] if flag]
        if self.reference is None:
            reason = f"the reference holds no {self.modality} data"
            return flags, {"volume": reason, "intensity": reason}
        organ = self.organ(class_id)
        not_checked: dict[str, str] = {}
        if self.placements[class_id].touches_edge:
            not_checked["volume"] = (
                f"the {title} touches the edge of the scan and may lie partly outside it: its volume "
                "is not compared"
            )
        elif not self.usable(organ.volume_ml):
            not_checked["volume"] = self.why_unusable(
                organ.volume_ml, f"{self.modality} volume of a whole {title}"
            )
        else:
            basis = SOURCE_NAMES[organ.volume_ml.source]
            flags += _range_flags(
                "volume", f"{title} volume", entry["volume_ml"], "mL", organ.volume_ml, basis
            )
        if not self.usable(organ.intensity_mean):
            not_checked["intensity"] = self.why_unusable(
                organ.intensity_mean, f"{self.modality} mean intensity of the {title}"
            )
        else:
            found = _range_flags(
                "intensity",
                f"{title} mean intensity",
                entry["intensity_mean"],
                _UNITS[self.modality],
                organ.intensity_mean,
                _INTENSITY_BASIS[organ.intensity_mean.source],
            )
            for flag in found:
                flag["message"] += _MR_CAVEAT if self.modality == "MR" else ""
            flags += found
        return flags, not_checked

    def absent(self, class_id: int) -> tuple[list[Flag], dict[str, str]]:
        title = _title(class_id)
        if self.reference is None:
            return [], {"missing": f"the reference holds no {self.modality} data"}
        offsets = self.organ(class_id).centre_above_mm
        # Positions come from the reference's own source only (ModalityReference.fallback fills in
        # volumes and intensities, never positions).
        source = SOURCE_NAMES[self.reference.source]
        if not offsets:
            return [], {"missing": f"{source} holds no position for the {title}"}
        if self.coverage_mm is None:
            return [], {"missing": "the scan is tilted too far to tell which heights it covers"}
        intervals = {
            anchor: (
                placement.centre_superior_mm + offsets[anchor].min - POSITION_MARGIN_MM,
                placement.centre_superior_mm + offsets[anchor].max + POSITION_MARGIN_MM,
            )
            for anchor, placement in sorted(self.placements.items())
            if not placement.touches_edge and self.usable(offsets.get(anchor))
        }
        if not intervals:
            return [], {
                "missing": f"no organ was found whole that {source} places the {title} from "
                f"(seen whole beside it in at least {self.min_cases} cases)"
            }
        low = max(interval[0] for interval in intervals.values())
        high = min(interval[1] for interval in intervals.values())
        anchors = [ORGAN_BY_ID[anchor].name for anchor in intervals]
        if low > high:
            return [], {
                "missing": f"the organs found ({', '.join(anchors)}) disagree on where the {title} "
                f"should be: they lie unlike in {source}"
            }
        bottom, top = self.coverage_mm
        expected = f"its centre is expected between z = {_number(low)} and {_number(high)} mm"
        covered = f"the scan covers z = {_number(bottom)} to {_number(top)} mm"
        if low < bottom or high > top:
            return [], {
                "missing": f"{expected}, not wholly inside the scan ({covered}): it may lie outside it"
            }
        flag = {
            "code": "missing",
            "message": (
                f"No {title} found, though the scan covers where it should be: {expected} (placed from "
                f"the {', '.join(_title(anchor) for anchor in intervals)} as in {source}), and {covered}"
            ),
            "expected_centre_mm": [low, high],
            "scan_coverage_mm": [bottom, top],
            "placed_from": anchors,
        }
        return [flag], {}


def _range_entry(observed: ObservedRange | None) -> dict[str, Any] | None:
    # Every range of the report names its source, a training one too (whose stored form omits it).
    return None if observed is None else {**observed.to_dict(), "source": observed.source}


def _range_flags(
    check: str, what: str, value: float, unit: str, observed: ObservedRange, basis: str
) -> list[Flag]:
    """No flag inside the range; else ``<check>_low`` or ``<check>_high`` with the numbers."""
    if observed.min <= value <= observed.max:
        return []
    side = "high" if value > observed.max else "low"
    cases = "" if observed.cases is None else f" over {observed.cases} cases"
    message = (
        f"{_capital(what)} {_number(value)} {unit} is {'above' if side == 'high' else 'below'} the range "
        f"of {basis} ({_number(observed.min)} to {_number(observed.max)} {unit}{cases})"
    )
    return [
        {
            "code": f"{check}_{side}",
            "message": message,
            "value": value,
            "unit": unit,
            "range": [observed.min, observed.max],
            "cases": observed.cases,
        }
    ]


def _split_flag(title: str, mask: np.ndarray, voxel_ml: float) -> Flag | None:
    components, count = ndimage.label(mask, structure=_full_connectivity())
    if count < 2:
        return None
    sizes_ml = np.bincount(components.ravel())[1:] * voxel_ml
    threshold_ml = max(LARGE_PIECE_FRACTION * float(sizes_ml.sum()), LARGE_PIECE_MIN_ML)
    pieces_ml = sorted((float(size) for size in sizes_ml if size >= threshold_ml), reverse=True)
    if len(pieces_ml) < 2:
        return None
    listed = ", ".join(_number(piece) for piece in pieces_ml)
    return {
        "code": "split",
        "message": (
            f"{_capital(title)} is in {len(pieces_ml)} large separate pieces ({listed} mL) where one is "
            f"expected; a piece counts from {_number(threshold_ml)} mL ({LARGE_PIECE_FRACTION:.0%} of the "
            f"organ, at least {_number(LARGE_PIECE_MIN_ML)} mL)"
        ),
        "pieces_ml": pieces_ml,
        "large_piece_min_ml": threshold_ml,
    }


@functools.lru_cache(maxsize=1)
def _full_connectivity() -> np.ndarray:
    # 26-connectivity, as the largest-component postprocessing: at thick slices a thin organ touches
    # itself from one slice to the next often only through an edge or a corner.
    return ndimage.generate_binary_structure(3, 3)


def _short(flag: Mapping[str, Any]) -> str:
    code = flag["code"]
    if code in ("volume_high", "volume_low", "intensity_high", "intensity_low"):
        what, side = code.split("_")
        return f"{what} {side} ({_number(flag['value'])} {flag['unit']})"
    if code == "split":
        return f"in {len(flag['pieces_ml'])} pieces"
    return code


def _title(class_id: int) -> str:
    organ = ORGAN_BY_ID.get(class_id)
    return organ.title.lower() if organ else f"label {class_id}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _number(value: float) -> str:
    """Three significant digits or more, without an exponent: 2512.3 -> "2512", 12.34 -> "12.3"."""
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
