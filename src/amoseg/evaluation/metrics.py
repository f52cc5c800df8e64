"""The challenge metrics as pure functions on arrays: DSC and NSD per organ.

Definitions (per case and per organ, P the predicted mask, G the reference mask):

* DSC = 2|P∩G| / (|P| + |G|), from voxel counts.
* NSD at tolerance tau (mm), the normalized surface Dice of Nikolov et al. with the surface of
  DeepMind's ``surface-distance``: surface elements sit on voxel corners, with areas from the 2x2x2
  neighbour code and the spacing; distances are exact Euclidean distances in mm between corners.
  NSD = (area of G's surface within tau of P's + area of P's surface within tau of G's) /
  (area of G's surface + area of P's surface).
* Empty masks: absent from both -> NaN for both metrics (left out of every mean, counted apart);
  absent from one of the two -> 0 for both.

Arrays are indexed [x, y, z]; ``spacing_mm`` is the voxel size in mm in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from amoseg.evaluation.surface import Spacing, padding_voxels, surface_overlap
from amoseg.io.boxes import label_boxes, mask_box
from amoseg.labels import MAX_LABEL

Box = tuple[slice, slice, slice]


@dataclass(frozen=True)
class OrganScore:
    """DSC, NSD and voxel counts of one organ in one case.

    Attributes:
        label: AMOS label id.
        dsc: Dice similarity coefficient, 0..1; NaN when the organ is absent from both maps.
        nsd: normalized surface Dice at ``tolerance_mm``, 0..1; NaN when absent from both.
        tolerance_mm: the NSD tolerance used, in mm.
        ref_voxels, pred_voxels: voxels of the organ in the reference and the prediction.
        true_positive, false_positive, false_negative, true_negative: voxel counts; voxels of an
            ignore mask are in none of them.
    """

    label: int
    dsc: float
    nsd: float
    tolerance_mm: float
    ref_voxels: int
    pred_voxels: int
    true_positive: int
    false_positive: int
    false_negative: int
    true_negative: int

    @property
    def absent(self) -> bool:
        """True when the organ is in neither map, so both metrics are NaN."""
        return self.ref_voxels == 0 and self.pred_voxels == 0


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """DSC = 2|P∩G| / (|P| + |G|) of two masks of the same shape.

    Args:
        pred, ref: masks (boolean, or nonzero = foreground) of the same shape.

    Returns:
        a value in 0..1; NaN when both masks are empty; 0 when exactly one is.

    Example:
        >>> dice(np.array([1, 1, 0, 0], bool), np.array([0, 1, 1, 0], bool))
        0.5
    """
    pred, ref = _as_masks(pred, ref)
    total = np.count_nonzero(pred) + np.count_nonzero(ref)
    if total == 0:
        return math.nan
    return 2.0 * np.count_nonzero(pred & ref) / total


def nsd(pred: np.ndarray, ref: np.ndarray, spacing_mm: Sequence[float], tolerance_mm: float = 1.0) -> float:
    """Normalized surface Dice of two 3-D masks at a tolerance, as in DeepMind's ``surface-distance``.

    NSD = (area of the reference surface within ``tolerance_mm`` of the predicted surface + area of the
    predicted surface within ``tolerance_mm`` of the reference surface) / (total area of both).
    Voxels outside the array count as background.

    Args:
        pred, ref: 3-D masks indexed [x, y, z], same shape (boolean, or nonzero = foreground).
        spacing_mm: voxel size (x, y, z) in mm, in the arrays' axis order.
        tolerance_mm: largest surface distance, in mm, that still counts as overlap (inclusive).

    Returns:
        a value in 0..1; NaN when both masks are empty; 0 when exactly one is.
    """
    pred, ref = _as_masks(pred, ref)
    if pred.ndim != 3:
        raise ValueError(f"nsd needs 3-D masks, got shape {pred.shape}")
    spacing = _spacing(spacing_mm)
    pred_box = _box(pred)
    ref_box = _box(ref)
    if pred_box is None and ref_box is None:
        return math.nan
    if pred_box is None or ref_box is None:
        return 0.0
    box = _union(pred_box, ref_box)
    padding = padding_voxels(spacing, tolerance_mm)
    overlap = surface_overlap(
        _padded_block(pred, True, box, padding), _padded_block(ref, True, box, padding), spacing, tolerance_mm
    )
    return overlap.surface_dice


def score_organs(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing_mm: Sequence[float],
    labels: Sequence[int],
    tolerance_mm: float | Mapping[int, float] = 1.0,
    ignore: np.ndarray | None = None,
) -> list[OrganScore]:
    """DSC, NSD and voxel counts for each organ of two label maps, in one pass over the volumes.

    Each organ is cropped to the bounding box of P∪G (plus the margin its tolerance needs) before any
    per-voxel work, so the cost follows the organs' size, not the volume's.

    Args:
        pred, ref: label maps indexed [x, y, z], same shape, integer values in 0..15.
        spacing_mm: voxel size (x, y, z) in mm (the reference's header).
        labels: organ ids to score, e.g. the dataset's ``annotated_labels``; others are ignored.
        tolerance_mm: NSD tolerance in mm, one value or a value per label id.
        ignore: optional mask of the same shape; its nonzero voxels are left out of both maps.

    Returns:
        one ``OrganScore`` per label, in the order given.

    Raises:
        ValueError: shapes differ, or a label map holds a value outside 0..15 (message names the value).
    """
    if pred.shape != ref.shape or pred.ndim != 3:
        raise ValueError(f"label maps must be 3-D and of one shape, got {pred.shape} and {ref.shape}")
    for name, array in (("prediction", pred), ("reference", ref)):
        check_label_values(array, name)
    spacing = _spacing(spacing_mm)
    total_voxels = int(pred.size)
    if ignore is not None:
        if ignore.shape != pred.shape:
            raise ValueError(f"ignore mask shape {ignore.shape} differs from the label maps' {pred.shape}")
        keep = ~ignore.astype(bool, copy=False)
        pred, ref = np.where(keep, pred, 0), np.where(keep, ref, 0)
        total_voxels = int(np.count_nonzero(keep))
    pred_boxes, ref_boxes = _label_boxes(pred), _label_boxes(ref)
    scores = []
    for label in labels:
        tolerance = float(tolerance_mm[label] if isinstance(tolerance_mm, Mapping) else tolerance_mm)
        scores.append(
            _score_organ(
                pred,
                ref,
                int(label),
                pred_boxes[label - 1],
                ref_boxes[label - 1],
                spacing,
                tolerance,
                total_voxels,
            )
        )
    return scores


def check_label_values(array: np.ndarray, name: str = "label map") -> None:
    """Raise ValueError unless ``array`` holds integers within 0..15 (AMOS ids)."""
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} voxels are {array.dtype}; label maps hold integers")
    if array.size == 0:
        return
    low, high = int(array.min()), int(array.max())
    if low < 0 or high > MAX_LABEL:
        bad = low if low < 0 else high
        raise ValueError(f"{name} holds label value {bad}, outside 0..{MAX_LABEL} (the AMOS ids)")


def _score_organ(
    pred: np.ndarray,
    ref: np.ndarray,
    label: int,
    pred_box: Box | None,
    ref_box: Box | None,
    spacing: Spacing,
    tolerance: float,
    total_voxels: int,
) -> OrganScore:
    if pred_box is None and ref_box is None:
        return OrganScore(label, math.nan, math.nan, tolerance, 0, 0, 0, 0, 0, total_voxels)
    box = _union(pred_box, ref_box)
    padding = padding_voxels(spacing, tolerance)
    pred_block = _padded_block(pred, label, box, padding)
    ref_block = _padded_block(ref, label, box, padding)
    pred_voxels = int(np.count_nonzero(pred_block))
    ref_voxels = int(np.count_nonzero(ref_block))
    overlap_voxels = int(np.count_nonzero(pred_block & ref_block))
    if pred_voxels and ref_voxels:
        dsc = 2.0 * overlap_voxels / (pred_voxels + ref_voxels)
        nsd_value = surface_overlap(pred_block, ref_block, spacing, tolerance).surface_dice
    else:
        dsc = nsd_value = 0.0
    false_positive = pred_voxels - overlap_voxels
    false_negative = ref_voxels - overlap_voxels
    return OrganScore(
        label=label,
        dsc=dsc,
        nsd=nsd_value,
        tolerance_mm=tolerance,
        ref_voxels=ref_voxels,
        pred_voxels=pred_voxels,
        true_positive=overlap_voxels,
        false_positive=false_positive,
        false_negative=false_negative,
        true_negative=total_voxels - overlap_voxels - false_positive - false_negative,
    )


def _label_boxes(labels: np.ndarray) -> list[Box | None]:
    """Bounding box of every label 1..15 in one pass (None where absent)."""
    return label_boxes(labels, MAX_LABEL)


def _box(mask: np.ndarray) -> Box | None:
    return mask_box(mask)


def _union(first: Box | None, second: Box | None) -> Box:
    if first is None:
        return second
    if second is None:
        return first
    return tuple(
        slice(min(a.start, b.start), max(a.stop, b.stop)) for a, b in zip(first, second, strict=True)
    )


def _padded_block(array: np.ndarray, value, box: Box, padding: tuple[int, int, int]) -> np.ndarray:
    """``array == value`` inside ``box``, C-ordered, with ``padding`` background layers on each side."""
    inner = tuple(box_slice.stop - box_slice.start for box_slice in box)
    block = np.zeros(tuple(size + 2 * pad for size, pad in zip(inner, padding, strict=True)), dtype=bool)
    target = tuple(slice(pad, pad + size) for pad, size in zip(padding, inner, strict=True))
    np.equal(array[box], value, out=block[target])
    return block


def _as_masks(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"masks must have one shape, got {pred.shape} and {ref.shape}")
    return pred.astype(bool, copy=False), ref.astype(bool, copy=False)


def _spacing(spacing_mm: Sequence[float]) -> Spacing:
    spacing = tuple(float(value) for value in spacing_mm)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be three positive values in mm (x, y, z), got {spacing_mm}")
    return spacing
