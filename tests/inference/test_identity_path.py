"""An identity-like model must give back its input labels exactly through the whole prediction path.

The image holds each voxel's label id as its CT value (HU); the "network" turns the normalized
intensity back into HU and puts its logits on the nearest id. Preprocessing (reorientation, crop,
normalization), tiling, mirroring, fold averaging and export (uncrop, undo orientation) must then
reproduce the label map voxel for voxel and its geometry exactly. The plan's target spacing is the
input's own, so no interpolation blurs the test.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from amoseg.inference.export import probabilities_to_label
from amoseg.inference.windows import WindowSettings, predict_probabilities
from amoseg.io import Image, LabelMap, make_geometry
from amoseg.io.orientation import canonical_reorientation
from amoseg.preprocessing import preprocess_case
from identity_model import NUM_CLASSES, IdentityLabels, identity_plan


def _rotation(degrees: float) -> np.ndarray:
    angle = math.radians(degrees)
    return np.array(
        [[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]]
    )


DIRECTIONS = {
    "LPS": np.eye(3),
    "RAS": np.diag([-1.0, -1.0, 1.0]),
    "oblique": _rotation(9.0),
    "coronal": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
}


def _case(direction: np.ndarray, shape=(37, 30, 11), spacing=(0.9, 1.2, 4.0)):
    rng = np.random.default_rng(0)
    labels = np.zeros(shape, np.uint8)
    labels[3:30, 4:25, 1:10] = rng.integers(0, NUM_CLASSES, size=(27, 21, 9))
    labels[10:14, 10:14, 4:6] = 6
    image = labels.astype(np.int16)
    image[labels == 0] = -1000  # air, so the body crop has something to cut away
    geometry = make_geometry(shape, spacing, (12.5, -40.0, 300.0), direction)
    return Image(image, geometry), LabelMap(labels, geometry)


def _plan_for(geometry, base_plan, patch):
    """A plan whose target spacing is the case's own spacing in the canonical orientation."""
    permutation = canonical_reorientation(geometry.direction).permutation
    return identity_plan(base_plan, tuple(geometry.spacing[axis] for axis in permutation), patch)


@pytest.mark.parametrize("orientation", DIRECTIONS)
@pytest.mark.parametrize(("patch", "mirror"), [((16, 16, 8), True), ((64, 64, 32), False)])
def test_identity_model_reproduces_labels_exactly(cpu_plan, orientation, patch, mirror):
    image, label = _case(DIRECTIONS[orientation])
    plan = _plan_for(image.geometry, cpu_plan, patch)
    case = preprocess_case(image, None, "CT", plan)
    network = IdentityLabels(plan.normalization["CT"])
    settings = WindowSettings(step=0.5, mirror=mirror, windows_per_batch=3)
    probabilities = predict_probabilities(
        [network, network], case.image, NUM_CLASSES, patch, settings, mirror_axes=(0, 1, 2)
    )
    torch.testing.assert_close(probabilities.sum(0), torch.ones(probabilities.shape[1:]))
    restored = probabilities_to_label(probabilities, case.properties)
    assert restored.geometry == image.geometry
    np.testing.assert_array_equal(restored.array, label.array)


def test_export_resamples_class_by_class_to_the_original_grid(cpu_plan):
    """Probabilities on a coarser plan grid come back on the input grid, close to the input labels."""
    geometry = make_geometry((40, 36, 12), (1.0, 1.0, 3.0), (5.0, 0.0, -20.0), DIRECTIONS["RAS"])
    labels = np.zeros(geometry.shape, np.uint8)
    labels[5:35, 6:30, 2:10] = 6
    labels[15:25, 12:20, 4:8] = 1
    image = np.where(labels > 0, 100, -1000).astype(np.int16)
    plan = dataclasses.replace(_plan_for(geometry, cpu_plan, (16, 16, 8)), target_spacing_mm=(2.0, 2.0, 3.0))
    case = preprocess_case(Image(image, geometry), LabelMap(labels, geometry), "CT", plan)
    assert case.image.shape[:2] == (15, 12)  # the 30 x 24 body box at 2 mm
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(case.label.astype(np.int64)), NUM_CLASSES)
    probabilities = one_hot.permute(3, 0, 1, 2).float()
    restored = probabilities_to_label(probabilities, case.properties)
    assert restored.geometry == geometry
    for organ in (1, 6):
        reference, predicted = labels == organ, restored.array == organ
        dice = 2 * (reference & predicted).sum() / (reference.sum() + predicted.sum())
        assert dice > 0.95, (organ, dice)


@pytest.mark.parametrize(
    ("shape", "target"),
    [((20, 18, 10), (47, 40, 10)), ((20, 18, 10), (9, 31, 23)), ((1, 18, 10), (4, 18, 3))],
)
def test_export_matches_resampling_every_class_everywhere(shape, target):
    """The lookup-or-interpolate argmax equals resampling every class in full, then the argmax.

    Up- and downsampling, an unchanged axis and a one-voxel axis. Where the two best classes of the
    full resampling are closer than float rounding, either answer is right, so those voxels are left out.
    """
    from amoseg.inference.export import PROBABILITY_KERNELS, resampled_argmax
    from amoseg.preprocessing.resample import resample_image

    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(size=(NUM_CLASSES, *shape)).astype(np.float32))
    logits[0] += 4.0  # mostly background, as a trained model predicts
    for organ, (x, y, z) in enumerate([(5, 5, 5), (12, 9, 3), (15, 14, 7)], start=1):
        x = min(x, shape[0] - 1)
        logits[organ, max(x - 3, 0) : x + 3, y - 3 : y + 3, z - 2 : z + 2] += 9.0
    probabilities = torch.softmax(logits, dim=0)
    channels = [
        resample_image(probabilities[c].numpy(), target, PROBABILITY_KERNELS) for c in range(NUM_CLASSES)
    ]
    full = torch.from_numpy(np.stack(channels))
    top2 = full.topk(2, dim=0).values
    clear = (top2[0] - top2[1] > 1e-5).numpy()
    exported = resampled_argmax(probabilities, target)
    assert exported.shape == target and exported.dtype == np.uint8
    np.testing.assert_array_equal(exported[clear], full.argmax(0).numpy()[clear])
    assert clear.mean() > 0.99
    assert set(np.unique(exported)) >= {0, 1, 2, 3}
