"""Real labels of ../shared/data against eroded, dilated and shifted copies, checked against DeepMind.

DeepMind's code runs per organ on a crop around the organ (its result does not depend on the crop as
long as both masks are inside it with a background margin), which keeps this test quick.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from amoseg.evaluation.metrics import score_organs
from amoseg.evaluation.tolerance import tolerances_for
from amoseg.io import read_label

pytestmark = pytest.mark.realdata

CASES = [("btcv-ct", "btcv_0014"), ("btcv-ct", "btcv_0028"), ("chaos-mr", "chaos_0021")]


def perturbed(labels: np.ndarray, how: str) -> np.ndarray:
    if how == "shifted":
        return np.roll(labels, (2, -1, 1), axis=(0, 1, 2))
    out = np.zeros_like(labels)
    operation = ndimage.binary_erosion if how == "eroded" else ndimage.binary_dilation
    for label in np.unique(labels)[1:]:
        out[operation(labels == label)] = label
    return out


def crop_around(*masks: np.ndarray) -> tuple[slice, ...]:
    union = np.logical_or.reduce(masks)
    box = ndimage.find_objects(union.astype(np.uint8))[0]
    return tuple(slice(max(0, s.start - 2), s.stop + 2) for s in box)


@pytest.mark.parametrize(("dataset", "case"), CASES)
@pytest.mark.parametrize(("how", "profile"), [("eroded", None), ("dilated", None), ("shifted", "flare22")])
def test_real_labels_against_surface_distance(shared_data, reference_scores, dataset, case, how, profile):
    ref_map = read_label(shared_data / dataset / "labelsTr" / f"{case}.nii.gz")
    ref = np.asarray(ref_map.array)
    pred = perturbed(ref, how)
    spacing = ref_map.geometry.spacing
    labels = tuple(int(label) for label in np.unique(ref)[1:])
    tolerances = tolerances_for(labels, profile=profile)
    scores = score_organs(pred, ref_map.array, spacing, labels, tolerances)
    for score in scores:
        pred_mask, ref_mask = pred == score.label, ref == score.label
        box = crop_around(pred_mask, ref_mask)
        expected_dsc, expected_nsd = reference_scores(
            pred_mask[box], ref_mask[box], spacing, tolerances[score.label]
        )
        assert score.dsc == pytest.approx(expected_dsc, abs=1e-6), score
        assert score.nsd == pytest.approx(expected_nsd, abs=1e-6), score
        assert 0 < score.nsd <= 1
