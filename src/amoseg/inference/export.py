"""From plan-space probabilities to a label map on the input's exact grid.

Class by class, never all classes at full resolution at once: each organ's probability map is resampled
to the crop box's shape with the image kernels, only inside the box where that organ's probability
reaches ``PROBABILITY_FLOOR`` (so a trained model's organs cost their own size), and a running maximum
keeps the winning class, background being what the organs leave. Then the crop is undone (background outside the body box) and the reorientation reversed, so the result has
exactly the input's size, spacing, origin and direction.
"""

from __future__ import annotations

import numpy as np

from amoseg.io.image import LabelMap
from amoseg.preprocessing.crop import uncrop
from amoseg.preprocessing.orientation import undo_reorient_array
from amoseg.preprocessing.properties import CaseProperties
from amoseg.preprocessing.resample import axis_taps, box_taps, resample_image, separable

#: An organ probability below this is taken as zero when resampling back (see ``_resampled_argmax``).
PROBABILITY_FLOOR = 1e-3


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
        cropped = _resampled_argmax(probabilities, target, properties.image_kernels)
    canonical = uncrop(cropped, properties.crop_box, properties.reoriented_shape)
    array = np.ascontiguousarray(undo_reorient_array(canonical, properties.reorientation))
    return LabelMap(array, properties.original_geometry)


def _resampled_argmax(probabilities, target: tuple[int, int, int], kernels) -> np.ndarray:
    """Argmax after resampling, organ by organ inside the box where its probability reaches the floor.

    As for label maps, background is what the organs leave: ``1 - sum``. An organ's probability below
    ``PROBABILITY_FLOOR`` outside its box is taken as zero; with 15 organs that moves background by at
    most 0.015, and no organ can win where its probability is that small.
    """
    import torch

    full_taps = [
        axis_taps(n_in, n_out, kernel)
        for n_in, n_out, kernel in zip(probabilities.shape[1:], target, kernels, strict=True)
    ]
    best = torch.zeros(target, dtype=torch.float32)
    total = torch.zeros(target, dtype=torch.float32)
    winner = torch.zeros(target, dtype=torch.uint8)
    for class_id in range(1, probabilities.shape[0]):
        scores = probabilities[class_id].float().cpu()
        where = torch.nonzero(scores >= PROBABILITY_FLOOR)
        if not len(where):
            continue
        low, high = where.min(dim=0).values.tolist(), where.max(dim=0).values.tolist()
        box = tuple(slice(start, stop + 1) for start, stop in zip(low, high, strict=True))
        reach = box_taps(box, full_taps)
        if reach is None:
            continue
        local_taps, region = reach
        resampled = separable(scores[box].contiguous(), local_taps)
        total[region] += resampled
        best_region, winner_region = best[region], winner[region]
        winner_region.masked_fill_(resampled > best_region, class_id)
        torch.maximum(best_region, resampled, out=best_region)
    return torch.where(best > 1.0 - total, winner, torch.zeros((), dtype=torch.uint8)).numpy()


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
