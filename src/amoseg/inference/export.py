"""From plan-space probabilities to a label map on the input's exact grid.

Class by class, never all classes at full resolution at once: each class's probability map is resampled
to the crop box's shape with the image kernels, and a running maximum keeps the winning class. Then the
crop is undone (background outside the body box) and the reorientation reversed, so the result has
exactly the input's size, spacing, origin and direction.
"""

from __future__ import annotations

import numpy as np

from amoseg.io.image import LabelMap
from amoseg.preprocessing.crop import uncrop
from amoseg.preprocessing.orientation import undo_reorient_array
from amoseg.preprocessing.properties import CaseProperties
from amoseg.preprocessing.resample import resample_image


def probabilities_to_label(probabilities, properties: CaseProperties) -> LabelMap:
    """Argmax of plan-space probabilities, taken on the original grid.

    Args:
        probabilities: torch tensor (C, x, y, z) on the plan-space grid of ``properties``.
        properties: the case's preprocessing record.

    Returns:
        uint8 label map with ``properties.original_geometry``.
    """
    import torch

    target = tuple(properties.crop_box.shape)
    if tuple(probabilities.shape[1:]) == target:
        cropped = torch.argmax(probabilities, dim=0).to(torch.uint8).cpu().numpy()
    else:
        best = None
        winner = torch.zeros(target, dtype=torch.uint8)
        for class_id in range(probabilities.shape[0]):
            scores = resample_image(probabilities[class_id].cpu().numpy(), target, properties.image_kernels)
            if best is None:
                best = scores
                continue
            better = scores > best
            winner[better] = class_id
            torch.maximum(best, scores, out=best)
        cropped = winner.numpy()
    canonical = uncrop(cropped, properties.crop_box, properties.reoriented_shape)
    array = np.ascontiguousarray(undo_reorient_array(canonical, properties.reorientation))
    return LabelMap(array, properties.original_geometry)


def probabilities_on_original_grid(probabilities, properties: CaseProperties) -> np.ndarray:
    """Probabilities (C, x, y, z) resampled onto the input's grid, float16, background 1 outside the crop.

    For ``--probabilities``: the softmax with its geometry, written compressed.
    """
    target = tuple(properties.crop_box.shape)
    channels = []
    for class_id in range(probabilities.shape[0]):
        scores = probabilities[class_id].cpu().numpy()
        if tuple(scores.shape) != target:
            scores = resample_image(scores, target, properties.image_kernels).numpy()
        fill = 1.0 if class_id == 0 else 0.0
        canonical = uncrop(
            np.clip(scores, 0, 1).astype(np.float16),
            properties.crop_box,
            properties.reoriented_shape,
            fill=fill,
        )
        channels.append(np.ascontiguousarray(undo_reorient_array(canonical, properties.reorientation)))
    return np.stack(channels)
