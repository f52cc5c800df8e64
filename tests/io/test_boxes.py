"""label_boxes: the one bounding-box finder, equal to find_objects whatever the memory order."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from amoseg.io.boxes import label_boxes, mask_box


def _labels() -> np.ndarray:
    labels = np.zeros((9, 7, 5), dtype=np.uint8)
    labels[1:4, 2:6, 0:2] = 1
    labels[5, 0, 4] = 3
    return labels


@pytest.mark.parametrize(
    "layout",
    [
        lambda a: a,
        np.asfortranarray,
        lambda a: np.asfortranarray(a)[::-1, :, 1:],
        lambda a: a.transpose(2, 0, 1),
    ],
)
def test_boxes_equal_find_objects_in_any_memory_order(layout):
    labels = layout(_labels())
    expected = ndimage.find_objects(np.ascontiguousarray(labels))
    assert label_boxes(labels) == expected
    assert label_boxes(labels, 2) == expected[:2] and label_boxes(labels, 2)[1] is None


def test_masks_and_empty_masks():
    mask = _labels() == 1
    assert mask_box(np.asfortranarray(mask)) == (slice(1, 4), slice(2, 6), slice(0, 2))
    assert mask_box(np.zeros((3, 3, 3), dtype=bool)) is None
    assert label_boxes(np.zeros((2, 2, 2), dtype=np.uint8)) == []
