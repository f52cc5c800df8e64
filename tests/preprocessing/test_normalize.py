"""Normalization per modality, and the body crop it relies on."""

from __future__ import annotations

import numpy as np
import pytest

from amoseg.errors import AmosegError
from amoseg.planning import make_plan
from amoseg.preprocessing.crop import CropBox, body_crop, mr_body_mask
from amoseg.preprocessing.normalize import normalization_parameters, normalize


def test_ct_uses_the_dataset_foreground_numbers(fullres_plan, phantom_cases):
    image, label, _ = phantom_cases["ct_a"]
    scheme = fullres_plan.normalization["CT"]
    result = normalize(image.array, "CT", scheme)
    expected = (
        np.clip(image.array.astype(np.float64), scheme.clip_low, scheme.clip_high) - scheme.mean
    ) / scheme.std
    assert np.allclose(result, expected, atol=1e-4)
    # The CT window comes from the labelled voxels of the fingerprint's CT cases only.
    organs = image.array[label.array > 0]
    assert scheme.clip_low >= organs.min() - 1 and scheme.clip_high <= organs.max() + 1


def test_mr_is_z_scored_over_its_own_body(fullres_plan, phantom_cases):
    image, label, _ = phantom_cases["mr_a"]
    scheme = fullres_plan.normalization["MR"]
    body = mr_body_mask(image.array)
    assert body[label.array > 0].mean() > 0.99 and body.mean() < 0.8
    result = normalize(image.array, "MR", scheme, body)
    assert abs(result[body].mean()) < 0.05 and abs(result[body].std() - 1) < 0.05
    # A brighter scanner gives nearly the same normalized image (the body threshold moves a little).
    brighter = normalize(image.array.astype(np.float32) * 3.0, "MR", scheme)
    assert np.abs(brighter - result).mean() < 0.01


def test_scheme_must_match_the_modality(fullres_plan, phantom_cases):
    image, _, _ = phantom_cases["mr_a"]
    with pytest.raises(AmosegError, match="scheme is for CT"):
        normalization_parameters(image.array, "MR", fullres_plan.normalization["CT"])


def test_ct_crop_keeps_the_body_and_every_label():
    image = np.full((40, 30, 20), -1000, dtype=np.int16)
    image[10:30, 5:25, 2:18] = 40
    label = np.zeros(image.shape, dtype=np.uint8)
    label[12:20, 8:12, 1:4] = 6  # one slice sticks out of the body
    box, mask = body_crop(image, "CT", label)
    assert mask is None
    assert box == CropBox((10, 5, 1), (30, 25, 18))
    empty, _ = body_crop(np.full((5, 6, 7), -1000, dtype=np.int16), "CT")
    assert empty == CropBox((0, 0, 0), (5, 6, 7))


def test_normalization_numbers_differ_between_ct_and_mr(phantom_fingerprint):
    plan = make_plan(phantom_fingerprint, "fast")
    assert plan.normalization["CT"].method == "dataset_foreground"
    assert plan.normalization["MR"].method == "per_image_body"
