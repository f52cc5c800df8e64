"""DSC and NSD against DeepMind's ``surface-distance`` (to 1e-6, in practice ~1e-15), and the empty rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from amoseg.evaluation import surface
from amoseg.evaluation.metrics import dice, nsd, score_organs

TOLERANCE = 1e-6


def blob(rng, shape, fraction=0.4, sigma=2.0):
    field = ndimage.gaussian_filter(rng.random(shape), sigma)
    return field > np.quantile(field, 1 - fraction)


def assert_matches(reference_scores, pred, ref, spacing, tolerance_mm):
    expected_dsc, expected_nsd = reference_scores(pred, ref, spacing, tolerance_mm)
    assert dice(pred, ref) == pytest.approx(expected_dsc, abs=TOLERANCE, nan_ok=True)
    assert nsd(pred, ref, spacing, tolerance_mm) == pytest.approx(expected_nsd, abs=TOLERANCE, nan_ok=True)


@pytest.fixture(params=["lookup", "transform"])
def method(request, monkeypatch):
    """Run a test once with each exact distance method, forced."""
    monkeypatch.setattr(surface, "_TRANSFORM_COST_PER_VOXEL", 1e18 if request.param == "lookup" else 0.0)
    return request.param


@pytest.mark.parametrize("seed", range(6))
def test_random_blobs(reference_scores, method, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(10, 36, 3))
    spacing = tuple(float(s) for s in rng.choice([0.5, 0.7, 1.0, 1.5, 3.0, 5.0], 3))
    tolerance = float(rng.choice([0.5, 1.0, 2.0, 3.0, 5.0]))
    assert_matches(reference_scores, blob(rng, shape), blob(rng, shape), spacing, tolerance)


@pytest.mark.parametrize("tolerance", [1.0, 2.0, 3.0])
def test_thin_tubes_one_voxel_wide(reference_scores, method, tolerance):
    ref = np.zeros((30, 30, 20), dtype=bool)
    pred = np.zeros_like(ref)
    ref[10, 12, 2:18] = True
    ref[5:25, 20, 10] = True
    pred[11, 12, 3:18] = True  # shifted by one voxel, one shorter
    pred[5:25, 21, 10] = True
    assert_matches(reference_scores, pred, ref, (0.7, 0.7, 2.0), tolerance)


def test_single_voxels(reference_scores, method):
    ref = np.zeros((9, 9, 9), dtype=bool)
    pred = np.zeros_like(ref)
    ref[4, 4, 4] = True
    for position in [(4, 4, 4), (5, 4, 4), (4, 6, 4), (6, 6, 6)]:
        pred[:] = False
        pred[position] = True
        for tolerance in (0.5, 1.0, 2.0):
            assert_matches(reference_scores, pred, ref, (1.0, 1.0, 1.0), tolerance)
            assert_matches(reference_scores, pred, ref, (0.7, 0.7, 5.0), tolerance)


def test_masks_touching_the_volume_border(reference_scores, method):
    rng = np.random.default_rng(3)
    ref = blob(rng, (16, 14, 10), fraction=0.6)
    pred = blob(rng, (16, 14, 10), fraction=0.6)
    ref[0, :, :] = pred[:, -1, :] = pred[:, :, 0] = True
    assert ref[0].any() and pred[:, -1].any()
    assert_matches(reference_scores, pred, ref, (0.7, 0.7, 5.0), 1.0)
    full = np.ones((6, 5, 4), dtype=bool)
    assert_matches(reference_scores, full, full, (1.0, 2.0, 3.0), 1.0)


@pytest.mark.parametrize("tolerance", [0.5, 1.0, 2.0, 5.0, 7.5])
def test_anisotropic_spacing(reference_scores, method, tolerance):
    rng = np.random.default_rng(11)
    ref = blob(rng, (40, 40, 12), sigma=3.0)
    pred = np.roll(ndimage.binary_dilation(ref), 1, axis=0)
    assert_matches(reference_scores, pred, ref, (0.7, 0.7, 5.0), tolerance)


def test_distance_exactly_at_the_tolerance_counts(reference_scores):
    ref = np.zeros((10, 10, 10), dtype=bool)
    ref[2:6, 2:6, 2:6] = True
    pred = np.roll(ref, 2, axis=2)  # faces 2 voxels * 0.5 mm = exactly 1 mm apart
    assert_matches(reference_scores, pred, ref, (1.0, 1.0, 0.5), 1.0)
    assert nsd(pred, ref, (1.0, 1.0, 0.5), 1.0) == pytest.approx(1.0)


def test_empty_rules_by_hand():
    empty = np.zeros((5, 5, 5), dtype=bool)
    some = empty.copy()
    some[1:3, 1:3, 1:3] = True
    assert math.isnan(dice(empty, empty)) and math.isnan(nsd(empty, empty, (1, 1, 1)))
    assert dice(some, empty) == 0.0 and nsd(some, empty, (1, 1, 1)) == 0.0  # predicted, not in reference
    assert dice(empty, some) == 0.0 and nsd(empty, some, (1, 1, 1)) == 0.0  # in reference, not predicted
    assert dice(some, some) == 1.0 and nsd(some, some, (1, 1, 1)) == 1.0


def test_dice_by_hand():
    pred = np.array([1, 1, 1, 0, 0], bool)
    ref = np.array([0, 1, 1, 1, 1], bool)
    assert dice(pred, ref) == pytest.approx(2 * 2 / (3 + 4))


def test_score_organs_matches_organ_by_organ(reference_scores, method):
    rng = np.random.default_rng(5)
    shape = (40, 36, 16)
    ref = np.zeros(shape, dtype=np.uint8)
    pred = np.zeros(shape, dtype=np.uint8)
    for label in (1, 2, 6, 15):
        ref[blob(rng, shape, fraction=0.12)] = label
        pred[blob(rng, shape, fraction=0.12)] = label
    pred[pred == 15] = 0  # predicted nowhere
    ref[ref == 2] = 0  # in the prediction only
    spacing = (0.8, 0.8, 3.0)
    tolerances = {1: 1.0, 2: 2.0, 6: 5.0, 15: 3.0, 4: 1.0}
    for order in ("C", "F"):
        scores = score_organs(
            np.asarray(pred, order=order), np.asarray(ref, order=order), spacing, (1, 2, 4, 6, 15), tolerances
        )
        for score in scores:
            expected_dsc, expected_nsd = reference_scores(
                pred == score.label, ref == score.label, spacing, tolerances[score.label]
            )
            assert score.dsc == pytest.approx(expected_dsc, abs=TOLERANCE, nan_ok=True)
            assert score.nsd == pytest.approx(expected_nsd, abs=TOLERANCE, nan_ok=True)
            assert score.tolerance_mm == tolerances[score.label]
        by_label = {score.label: score for score in scores}
        assert by_label[4].absent and math.isnan(by_label[4].dsc) and math.isnan(by_label[4].nsd)
        assert by_label[2].dsc == 0.0 and by_label[2].nsd == 0.0 and by_label[2].ref_voxels == 0
        assert by_label[15].dsc == 0.0 and by_label[15].nsd == 0.0 and by_label[15].pred_voxels == 0


def test_voxel_counts_and_ignore_mask():
    ref = np.zeros((6, 6, 6), dtype=np.uint8)
    pred = np.zeros_like(ref)
    ref[1:4, 1:4, 1:4] = 3  # 27 voxels
    pred[2:5, 1:4, 1:4] = 3  # 27 voxels, 18 shared
    (score,) = score_organs(pred, ref, (1, 1, 1), (3,))
    assert (score.true_positive, score.false_positive, score.false_negative) == (18, 9, 9)
    assert score.true_negative == 216 - 36
    assert score.dsc == pytest.approx(36 / 54)
    ignore = np.zeros(ref.shape, dtype=bool)
    ignore[4, :, :] = True  # the prediction's extra slab
    (masked,) = score_organs(pred, ref, (1, 1, 1), (3,), ignore=ignore)
    assert (masked.true_positive, masked.false_positive, masked.false_negative) == (18, 0, 9)
    assert masked.true_negative == 216 - 36 - 27
    expected = nsd(np.where(ignore, 0, pred) == 3, ref == 3, (1, 1, 1), 1.0)
    assert masked.nsd == expected


@pytest.mark.parametrize("bad", [16, 255])
def test_label_values_outside_the_amos_range_are_refused(bad):
    ref = np.zeros((4, 4, 4), dtype=np.uint8)
    pred = ref.copy()
    pred[1, 1, 1] = bad
    with pytest.raises(ValueError, match=rf"label value {bad}, outside 0\.\.15"):
        score_organs(pred, ref, (1, 1, 1), (1,))
    with pytest.raises(ValueError, match="label value -1"):
        score_organs(np.full((4, 4, 4), -1, np.int16), ref, (1, 1, 1), (1,))
