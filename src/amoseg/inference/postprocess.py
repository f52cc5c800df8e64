"""Keep only the largest connected component of an organ, where validation shows that it helps.

As nnU-Net's ``determine_postprocessing``: a network sometimes predicts a small blob of an organ far from
the organ itself. For an organ that is one connected piece, removing every component but the largest
deletes such blobs. Whether to do it is decided per organ from the fold's validation cases
(``decide_postprocessing``), stored as ``postprocessing.json`` in the fold folder (its record,
``amoseg.model.postprocessing.Postprocessing``, belongs to the trained model), and applied by the
predictor after the argmax (``keep_largest``).

Pure numpy/scipy functions on label maps indexed [x, y, z]; nothing here touches torch or files.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import ndimage

from amoseg.evaluation.metrics import dice
from amoseg.io.boxes import label_boxes
from amoseg.labels import organ_name
from amoseg.model.postprocessing import MIN_IMPROVEMENT, Postprocessing


@functools.lru_cache(maxsize=4)
def _structure(ndim: int) -> np.ndarray:
    # Full (26-) connectivity, as nnU-Net v2 (skimage's default): at thick slices a thin organ
    # (oesophagus, adrenal gland, duodenum) often touches itself only through an edge or a corner from
    # one slice to the next; 6-connectivity would cut it into pieces and delete all but one. 26 is the
    # conservative choice: fewer, larger components, so less is removed.
    return ndimage.generate_binary_structure(ndim, ndim)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a mask (full connectivity in any dimension).

    Args:
        mask: boolean (or nonzero = foreground) array.

    Returns:
        a new boolean array of the same shape; all False for an empty mask. Of components of equal
        size the first in C order (the lowest index of ``scipy.ndimage.label``) is kept.
    """
    mask = np.asarray(mask, dtype=bool)
    components, count = ndimage.label(mask, structure=_structure(mask.ndim))
    if count <= 1:
        return mask.copy()
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    sizes[0] = 0
    return components == int(np.argmax(sizes))


def keep_largest(label_map: np.ndarray, organs: Iterable[int]) -> np.ndarray:
    """A copy of ``label_map`` where each listed organ keeps only its largest component.

    Voxels of a listed organ outside its largest component become background (0), as in nnU-Net; other
    labels are unchanged. An organ absent from the map is skipped.

    Args:
        label_map: integer label map (any number of dimensions).
        organs: label ids to clean.
    """
    result = np.array(label_map, copy=True)
    organs = sorted({int(organ) for organ in organs if int(organ) > 0})
    if not organs or result.size == 0:
        return result
    # One pass finds every organ's bounding box; labelling inside it costs the organ's size, not the volume's.
    boxes = _boxes(result, max(organs))
    for organ in organs:
        box = boxes[organ - 1]
        if box is None:
            continue
        mask = result[box] == organ
        result[box][mask & ~largest_component(mask)] = 0
    return result


def score_case(
    prediction: np.ndarray, reference: np.ndarray, organs: Iterable[int]
) -> dict[int, tuple[float, float]]:
    """Per organ: (Dice, Dice after keeping the prediction's largest component of that organ).

    Args:
        prediction, reference: label maps of the same shape.
        organs: the organs to score, those the reference annotates (a partially labelled case stores
            the others as background, so they cannot be scored).

    Returns:
        organ id -> (before, after); both NaN when the organ is in neither map (the largest component
        of a non-empty prediction is never empty, so before and after are NaN together).

    Raises:
        ValueError: the shapes differ.
    """
    if prediction.shape != reference.shape:
        raise ValueError(f"prediction {prediction.shape} and reference {reference.shape} differ in shape")
    organs = sorted({int(organ) for organ in organs if int(organ) > 0})
    if not organs:
        return {}
    top = max(organs)
    predicted_boxes, reference_boxes = _boxes(prediction, top), _boxes(reference, top)
    scores = {}
    for organ in organs:
        box = _union(predicted_boxes[organ - 1], reference_boxes[organ - 1])
        if box is None:
            scores[organ] = (math.nan, math.nan)
            continue
        predicted, expected = prediction[box] == organ, reference[box] == organ
        scores[organ] = (dice(predicted, expected), dice(largest_component(predicted), expected))
    return scores


def _boxes(label_map: np.ndarray, top: int) -> list[tuple[slice, ...] | None]:
    """Bounding box of each label 1..top in one pass over the map (None where absent)."""
    return label_boxes(label_map, top)


def _union(first: tuple[slice, ...] | None, second: tuple[slice, ...] | None) -> tuple[slice, ...] | None:
    if first is None or second is None:
        return first or second
    return tuple(
        slice(min(a.start, b.start), max(a.stop, b.stop)) for a, b in zip(first, second, strict=True)
    )


def decide_from_scores(
    scores: Sequence[Mapping[int, tuple[float, float]]], min_improvement: float = MIN_IMPROVEMENT
) -> Postprocessing:
    """The decision from ``score_case``'s results, one per validation case.

    An organ keeps its largest component when its mean Dice over the cases that score it (NaN left out)
    rises by at least ``min_improvement``; a rise implies that the mean does not drop. An organ that
    no case scores is left alone.
    """
    organs = sorted({organ for case in scores for organ in case})
    before, after, chosen = {}, {}, []
    for organ in organs:
        pairs = np.array([case[organ] for case in scores if organ in case], dtype=np.float64)
        scored = pairs[~np.isnan(pairs[:, 0])]
        mean_before = float(scored[:, 0].mean()) if len(scored) else math.nan
        mean_after = float(scored[:, 1].mean()) if len(scored) else math.nan
        before[organ_name(organ)], after[organ_name(organ)] = mean_before, mean_after
        if len(scored) and mean_after >= mean_before + min_improvement:
            chosen.append(organ)
    return Postprocessing(
        largest_component=tuple(chosen),
        dice_before=before,
        dice_after=after,
        cases=len(scores),
        min_improvement=min_improvement,
    )


def decide_postprocessing(
    predictions: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    annotated: Sequence[set[int]],
    min_improvement: float = MIN_IMPROVEMENT,
) -> Postprocessing:
    """Per organ, keep its largest component where that raises the mean validation Dice.

    Args:
        predictions, references: label maps of the validation cases, pairwise of one shape.
        annotated: per case, the organ ids its reference annotates; only those are scored.
        min_improvement: the gain in an organ's mean Dice needed (``MIN_IMPROVEMENT``).

    Raises:
        ValueError: the three lists differ in length, or a pair differs in shape.
    """
    if not len(predictions) == len(references) == len(annotated):
        raise ValueError(
            f"{len(predictions)} predictions, {len(references)} references and {len(annotated)} "
            "annotated sets: one of each per case"
        )
    scores = [
        score_case(prediction, reference, organs)
        for prediction, reference, organs in zip(predictions, references, annotated, strict=True)
    ]
    return decide_from_scores(scores, min_improvement)


__all__ = [
    "decide_from_scores",
    "decide_postprocessing",
    "keep_largest",
    "largest_component",
    "score_case",
]
