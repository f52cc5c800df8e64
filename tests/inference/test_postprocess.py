"""Largest-component postprocessing: the pure functions on hand-made label maps with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from amoseg.inference.postprocess import decide_postprocessing, keep_largest, largest_component, score_case
from amoseg.model.postprocessing import MIN_IMPROVEMENT

SHAPE = (20, 16, 12)


def _block(array: np.ndarray, box: tuple[slice, ...], value) -> np.ndarray:
    array[box] = value
    return array


def test_largest_component_keeps_the_biggest_block():
    mask = np.zeros(SHAPE, bool)
    mask[2:5, 2:5, 2:5] = True  # 27 voxels
    mask[10:12, 10:12, 8:10] = True  # 8 voxels, far away
    expected = np.zeros(SHAPE, bool)
    expected[2:5, 2:5, 2:5] = True
    result = largest_component(mask)
    assert result.dtype == bool and result is not mask
    np.testing.assert_array_equal(result, expected)


def test_largest_component_uses_full_connectivity():
    """Two cubes touching at one corner are one organ (26-connectivity), not two."""
    mask = np.zeros(SHAPE, bool)
    mask[2:5, 2:5, 2:5] = True
    mask[5:7, 5:7, 5:7] = True  # shares only the corner (4, 4, 4)-(5, 5, 5)
    np.testing.assert_array_equal(largest_component(mask), mask)
    assert ndimage.label(mask)[1] == 2  # what 6-connectivity would have split


def test_largest_component_of_an_empty_mask_and_of_a_tie():
    assert not largest_component(np.zeros(SHAPE, bool)).any()
    mask = np.zeros(SHAPE, bool)
    mask[1:3, 1:3, 1:3] = True
    mask[10:12, 10:12, 8:10] = True  # as large: the first in C order wins
    expected = np.zeros(SHAPE, bool)
    expected[1:3, 1:3, 1:3] = True
    np.testing.assert_array_equal(largest_component(mask), expected)


def test_keep_largest_cleans_only_the_listed_organs():
    label = np.zeros(SHAPE, np.uint8)
    label[1:9, 1:9, 1:6] = 6  # liver
    label[15:17, 12:14, 9:11] = 6  # a spurious liver blob
    label[1:4, 11:14, 1:4] = 1  # spleen in two parts; not listed
    label[15:18, 1:4, 8:11] = 1
    label[10:12, 1:3, 1:3] = 2  # right kidney, listed, one piece
    before = label.copy()
    result = keep_largest(label, [6, 2, 9])  # 9 is absent: skipped
    np.testing.assert_array_equal(label, before)  # the input is not changed
    expected = label.copy()
    components, _ = ndimage.label(label == 6, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(components.ravel())[1:]
    expected[(label == 6) & (components != np.argmax(sizes) + 1)] = 0
    np.testing.assert_array_equal(result, expected)
    assert (result == 6).sum() == 8 * 8 * 5 and (result == 1).sum() == 2 * 27
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(keep_largest(label, []), label)


def test_score_case_gives_dice_before_and_after():
    reference = np.zeros(SHAPE, np.uint8)
    reference[2:6, 2:6, 2:6] = 6  # 64 voxels
    prediction = reference.copy()
    prediction[15:17, 12:14, 9:11] = 6  # 8 false positives far away
    scores = score_case(prediction, reference, [6, 3])
    assert scores[6][0] == pytest.approx(2 * 64 / (72 + 64))
    assert scores[6][1] == 1.0
    assert math.isnan(scores[3][0]) and math.isnan(scores[3][1])  # in neither map
    with pytest.raises(ValueError, match="differ in shape"):
        score_case(prediction[:-1], reference, [6])


def _two_cases():
    """Liver (6): one piece, predicted with a far blob. Right kidney (2): truly two blocks, both predicted
    with a slight miss. Spleen (1): one piece, predicted exactly (cleaning changes nothing)."""
    references, predictions = [], []
    for shift in (0, 1):
        reference = np.zeros(SHAPE, np.uint8)
        reference[1 + shift : 8, 1:8, 1:6] = 6
        reference[10:13, 1:4, 1:4] = 2
        reference[16:19, 1:4, 7:10] = 2
        reference[12:15, 10:14, 8:11] = 1
        prediction = reference.copy()
        prediction[17:19, 12:15, 1:3] = 6
        prediction[10, 1:4, 1:4] = 0  # one kidney block undersegmented, so the blocks differ in size
        references.append(reference)
        predictions.append(prediction)
    return predictions, references


def test_decision_keeps_the_largest_component_where_it_helps():
    predictions, references = _two_cases()
    decision = decide_postprocessing(predictions, references, [{1, 2, 6}, {1, 2, 6}])
    assert decision.largest_component == (6,)
    assert decision.cases == 2 and decision.min_improvement == MIN_IMPROVEMENT
    expected_before = np.mean(
        [
            2 * (r == 6).sum() / ((p == 6).sum() + (r == 6).sum())
            for p, r in zip(predictions, references, strict=True)
        ]
    )
    assert decision.dice_before["liver"] == pytest.approx(expected_before)
    assert decision.dice_after["liver"] == 1.0
    # The kidney's second block is a true part: keeping one block loses it.
    assert decision.dice_after["right_kidney"] < decision.dice_before["right_kidney"]
    assert decision.dice_before["spleen"] == decision.dice_after["spleen"] == 1.0  # no gain: not chosen


def test_decision_scores_only_annotated_organs_and_needs_the_margin():
    predictions, references = _two_cases()
    # The second case does not annotate the liver, and in the first the blob is too small to matter at
    # a large margin.
    decision = decide_postprocessing(predictions, references, [{6}, {1}], min_improvement=0.5)
    assert decision.largest_component == ()
    assert set(decision.dice_before) == {"liver", "spleen"}
    gain = decision.dice_after["liver"] - decision.dice_before["liver"]
    assert 0 < gain < 0.5
    assert decide_postprocessing(predictions, references, [{6}, {1}]).largest_component == (6,)
    nowhere = decide_postprocessing([np.zeros(SHAPE, np.uint8)], [np.zeros(SHAPE, np.uint8)], [{4}])
    assert nowhere.largest_component == () and math.isnan(nowhere.dice_before["gallbladder"])
    with pytest.raises(ValueError, match="one of each per case"):
        decide_postprocessing(predictions, references, [{6}])
