"""From plan-space probabilities to a label map on the input's exact grid.

The probabilities are resampled with a linear kernel on every axis (as nnU-Net resamples its softmax,
order 1), never all classes at full resolution at once. A linear kernel's weights are non-negative,
so an output voxel's probabilities are a convex combination of the 2 x 2 x 2 plan-space voxels around
it: where those eight share one argmax, the output voxel has it too, exactly. Such voxels, most of any
organ and of the background, take the plan-space argmax by index lookup; only the voxels whose eight
neighbours disagree (a band along organ boundaries) are interpolated, all classes, in chunks. Then the
crop is undone (background outside the body box) and the reorientation reversed
(``amoseg.preprocessing.case.to_original_grid``), so the result has exactly the input's size, spacing,
origin and direction, in the I/O convention's memory order (``amoseg.io.image``).
"""

from __future__ import annotations

import numpy as np

from amoseg.io.image import LabelMap
from amoseg.preprocessing.case import to_original_grid
from amoseg.preprocessing.properties import CaseProperties
from amoseg.preprocessing.resample import axis_taps, resample_image

#: The kernel probabilities are resampled with, on every axis.
PROBABILITY_KERNELS = ("linear", "linear", "linear")
#: Marks an output voxel whose neighbours disagree, before it is interpolated (no class has this id).
_UNDECIDED = 255
#: Output voxels interpolated per chunk: bounds the (voxels, classes) float32 block held at once.
_CHUNK = 1 << 18
#: Plan-space planes along x whose probabilities are copied class-last at once.
_SLAB = 16


def probabilities_to_label(probabilities, properties: CaseProperties) -> LabelMap:
    """Argmax of plan-space probabilities, taken on the original grid.

    Args:
        probabilities: torch tensor (C, x, y, z) on the plan-space grid of ``properties``, on any device.
        properties: the case's preprocessing record.

    Returns:
        uint8 label map with ``properties.original_geometry``.
    """
    target = tuple(properties.crop_box.shape)
    if tuple(probabilities.shape[1:]) == target:
        cropped = _argmax(probabilities).cpu().numpy()
    else:
        cropped = resampled_argmax(probabilities, target)
    return LabelMap(to_original_grid(cropped, properties), properties.original_geometry)


def resampled_argmax(probabilities, target: tuple[int, int, int]) -> np.ndarray:
    """The argmax of the linearly resampled probabilities (C, x, y, z), on a grid of shape ``target``.

    Equal to resampling every class in full with ``PROBABILITY_KERNELS`` and taking the argmax (up to
    float rounding where two classes tie), without holding more than one chunk of classes at the
    output resolution.
    """
    import torch

    device = probabilities.device
    taps = [
        axis_taps(n_in, n_out, "linear") for n_in, n_out in zip(probabilities.shape[1:], target, strict=True)
    ]
    index = [torch.from_numpy(axis.index).to(device) for axis in taps]
    weight = [torch.from_numpy(axis.weight.astype(np.float32)).to(device) for axis in taps]
    low = _argmax(probabilities)
    decided = torch.where(
        _uniform_cells(low), low, torch.tensor(_UNDECIDED, dtype=torch.uint8, device=device)
    )
    # Each output voxel looks up the cell that starts at its first tap: the taps' index pairs are
    # (i, i + 1) clamped to the image, so the cell's eight voxels hold its two taps per axis.
    output = (
        decided.index_select(0, index[0][:, 0])
        .index_select(1, index[1][:, 0])
        .index_select(2, index[2][:, 0])
    )
    # The undecided voxels, slab by slab along x: each slab's probabilities are copied class-last once,
    # so that one gather fetches a neighbour's whole vector, and the copy stays a slab's size.
    first_x = index[0][:, 0].contiguous()
    for start in range(0, probabilities.shape[1], _SLAB):
        out_start, out_stop = torch.searchsorted(first_x, torch.tensor([start, start + _SLAB], device=device))
        block = output[int(out_start) : int(out_stop)]
        undecided = torch.nonzero(block.reshape(-1) == _UNDECIDED).squeeze(1)
        if len(undecided):
            stop = min(start + _SLAB + 1, probabilities.shape[1])  # second taps reach one plane further
            rows = probabilities[:, start:stop].permute(1, 2, 3, 0).float().contiguous()
            block.view(-1)[undecided] = _interpolated_argmax(
                rows, undecided, int(out_start), start, index, weight
            )
    return output.cpu().numpy()


def _argmax(probabilities):
    """uint8 argmax over the classes; ``max`` finds the same first maximum several times faster on CPU."""
    import torch

    return probabilities.max(dim=0).indices.to(torch.uint8)


def _interpolated_argmax(rows, voxels, out_start: int, low_start: int, index, weight):
    """Argmax of the trilinear mix of the eight neighbours of each output voxel of a slab.

    Args:
        rows: float32 (x, y, z, C) probabilities of the slab's plan-space planes from ``low_start`` on.
        voxels: flat indices into the output slab that starts at output plane ``out_start``.
        index, weight: per-axis linear taps (output voxels, 2) of the whole grids.
    """
    import torch

    low_y, low_z, classes = rows.shape[1:]
    out_y, out_z = len(index[1]), len(index[2])
    flat_rows = rows.view(-1, classes)
    labels = torch.empty(len(voxels), dtype=torch.uint8, device=rows.device)
    for offset in range(0, len(voxels), _CHUNK):
        chunk = voxels[offset : offset + _CHUNK]
        x, rest = chunk // (out_y * out_z) + out_start, chunk % (out_y * out_z)
        y, z = rest // out_z, rest % out_z
        mixed = torch.zeros((len(chunk), classes), dtype=torch.float32, device=rows.device)
        for a in range(2):
            for b in range(2):
                # Each (x, y) tap pair is shared by both z taps: its row offset and weight once.
                plane = ((index[0][x, a] - low_start) * low_y + index[1][y, b]) * low_z
                plane_share = weight[0][x, a] * weight[1][y, b]
                for c in range(2):
                    neighbour = plane + index[2][z, c]
                    mixed.addcmul_(
                        flat_rows.index_select(0, neighbour), (plane_share * weight[2][z, c])[:, None]
                    )
        labels[offset : offset + len(chunk)] = _argmax(mixed.t())
    return labels


def _uniform_cells(labels):
    """bool (x, y, z): whether the 2 x 2 x 2 cell from each voxel on (clamped at the far faces) has one label."""
    import torch

    padded = labels
    for axis in range(3):
        padded = torch.cat([padded, padded.narrow(axis, padded.shape[axis] - 1, 1)], dim=axis)
    size_x, size_y, size_z = labels.shape
    uniform = torch.ones(labels.shape, dtype=torch.bool, device=labels.device)
    for dx in range(2):
        for dy in range(2):
            for dz in range(2):
                if dx or dy or dz:
                    uniform &= padded[dx : dx + size_x, dy : dy + size_y, dz : dz + size_z] == labels
    return uniform


def probabilities_on_original_grid(probabilities, properties: CaseProperties) -> np.ndarray:
    """Probabilities (C, x, y, z) resampled onto the input's grid, float16, background 1 outside the crop.

    For ``--probabilities``: the softmax with its geometry, written compressed; resampled as the label
    map is, so its argmax is the label map before postprocessing.
    """
    target = tuple(properties.crop_box.shape)
    channels = []
    for class_id in range(probabilities.shape[0]):
        scores = probabilities[class_id].cpu().numpy()
        if tuple(scores.shape) != target:
            scores = resample_image(scores, target, PROBABILITY_KERNELS)
        fill = 1.0 if class_id == 0 else 0.0
        channels.append(to_original_grid(np.clip(scores, 0, 1).astype(np.float16), properties, fill=fill))
    return np.stack(channels)
