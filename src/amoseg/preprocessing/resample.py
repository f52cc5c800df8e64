"""Separable resampling in float32 through PyTorch: images with a cubic or linear kernel per axis, label
maps one class at a time.

Grid convention: voxel centres, as ``F.interpolate(align_corners=False)``, skimage ``resize`` and
``scipy.ndimage.zoom(grid_mode=True)``. Output voxel ``j`` of an axis resized from ``n_in`` to ``n_out``
voxels samples the input at ``(j + 0.5) * n_in / n_out - 0.5``, so both grids cover the same extent
and an unchanged axis is copied exactly. Samples beyond the edge repeat the edge voxel.

Kernels, one per axis (separable, like nnU-Net's "separate z" handling of the low-resolution axis):

- ``cubic``: Keys' cubic convolution with a = -0.5 (Catmull-Rom). Interpolating and third-order
  accurate like scipy's order-3 B-spline, but with 4 taps and no prefilter pass over the volume.
- ``linear``: for an image's low-resolution axis (nnU-Net uses nearest there; linear is smoother).
- ``nearest``: available, not used by default.

No anti-aliasing filter is applied before downsampling, as in nnU-Net and ``scipy.ndimage.zoom``.

How it runs: one axis at a time, each output slice ``j`` is a weighted sum of 2 or 4 whole input
slices (``torch.mul`` / ``add_`` over contiguous slabs, multi-threaded by torch). The axis with the
largest memory stride is resampled first, so slices are contiguous; before the last axis the tensor is
transposed once. Peak memory is the input plus about two float32 volumes of the larger intermediate size.

Label maps: each class's one-hot mask is resampled (cubic by default, or linear), only inside that
class's bounding box plus the kernel's reach, and merged into a running maximum, a running sum and
the winning class id. Background's score is ``1 - sum`` (every kernel's weights sum to one), so the
memory is two float32 output volumes and one uint8, whatever the number of classes. A class present
in the input that wins no output voxel (a one-voxel-thin organ between samples) is restored on the
voxels where its own score is at least half its maximum, so thin organs survive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from amoseg.io.boxes import label_boxes
from amoseg.planning.spacing import ANISOTROPY_THRESHOLD

if TYPE_CHECKING:
    import torch

Kernel = Literal["nearest", "linear", "cubic"]
Shape3 = tuple[int, int, int]

#: Keys' free parameter: -0.5 is the only choice with third-order accuracy (Catmull-Rom).
_KEYS_A = -0.5


@dataclass(frozen=True)
class AxisTaps:
    """Which input voxels, with which weights, make each output voxel along one axis.

    Attributes:
        index: (n_out, taps) input indices, clamped into [0, n_in).
        weight: (n_out, taps) weights; each row sums to one.
    """

    index: np.ndarray
    weight: np.ndarray


def axis_taps(n_in: int, n_out: int, kernel: Kernel) -> AxisTaps:
    """Taps resizing one axis from ``n_in`` to ``n_out`` voxels (voxel-centre convention)."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"axis sizes must be positive, got {n_in} -> {n_out}")
    position = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    if kernel == "nearest":
        index = np.floor(position + 0.5)[:, None]
        weight = np.ones_like(index)
    else:
        base = np.floor(position)
        t = (position - base)[:, None]
        if kernel == "linear":
            index = base[:, None] + np.arange(2)
            weight = np.concatenate([1 - t, t], axis=1)
        elif kernel == "cubic":
            index = base[:, None] + np.arange(-1, 3)
            weight = np.concatenate(_keys_weights(t), axis=1)
        else:
            raise ValueError(f"unknown kernel {kernel!r}; use nearest, linear or cubic")
    return AxisTaps(np.clip(index, 0, n_in - 1).astype(np.int64), weight)


def _keys_weights(t: np.ndarray) -> tuple[np.ndarray, ...]:
    a = _KEYS_A
    t2, t3 = t * t, t * t * t
    return (
        a * (t3 - 2 * t2 + t),
        (a + 2) * t3 - (a + 3) * t2 + 1,
        -(a + 2) * t3 + (2 * a + 3) * t2 - a * t,
        -a * (t3 - t2),
    )


def resampled_shape(shape: Shape3, spacing_mm: tuple, target_spacing_mm: tuple) -> Shape3:
    """Voxels per axis once resampled: ``round(shape * spacing / target)``, at least one."""
    return tuple(
        max(1, round(float(size * spacing / target)))
        for size, spacing, target in zip(shape, spacing_mm, target_spacing_mm, strict=True)
    )


def image_kernels(
    spacing_mm: tuple,
    target_spacing_mm: tuple,
    threshold: float = ANISOTROPY_THRESHOLD,
    low_resolution_kernel: Kernel = "linear",
    kernel: Kernel = "cubic",
) -> tuple[Kernel, Kernel, Kernel]:
    """``kernel`` on every axis, except ``low_resolution_kernel`` on a strongly anisotropic axis.

    As nnU-Net decides "separate z": the axis with the coarsest spacing counts as low-resolution when
    it is more than ``threshold`` times the finest spacing, in the input or in the target spacing.
    """
    for spacing in (spacing_mm, target_spacing_mm):
        coarsest = int(np.argmax(spacing))
        if spacing[coarsest] > threshold * min(spacing):
            kernels: list[Kernel] = [kernel] * 3
            kernels[coarsest] = low_resolution_kernel
            return tuple(kernels)
    return (kernel, kernel, kernel)


def resample_image(
    array: np.ndarray, output_shape: Shape3, kernels: tuple[Kernel, Kernel, Kernel]
) -> np.ndarray:
    """Resample an intensity volume to ``output_shape``.

    Args:
        array: 3-D numpy array indexed [x, y, z], of any real dtype and any strides (views are not
            copied).
        output_shape: voxels (x, y, z) wanted.
        kernels: one kernel per axis, see ``image_kernels``.

    Returns:
        a new float32 numpy array indexed [x, y, z]. Its memory order is whatever resampling left
        (it follows the input's where no axis had to be transposed); callers that need C order ask
        ``np.ascontiguousarray``, which copies only then.
    """
    tensor = _as_tensor(array)
    taps = [
        None if tensor.shape[axis] == output_shape[axis] else axis_taps(tensor.shape[axis], size, kernel)
        for axis, (size, kernel) in enumerate(zip(output_shape, kernels, strict=True))
    ]
    return separable(tensor, taps).numpy()


def separable(tensor: torch.Tensor, taps: list[AxisTaps | None]) -> torch.Tensor:
    """Apply per-axis taps (None: axis unchanged) to a 3-D tensor; returns float32 of the new shape."""
    import torch

    pending = [axis for axis in range(3) if taps[axis] is not None]
    if not pending:
        return tensor.to(torch.float32, copy=True)
    while pending:
        axis = max(pending, key=tensor.stride)
        innermost = min(tensor.stride(dim) for dim in range(3) if tensor.shape[dim] > 1 or dim == axis)
        if tensor.stride(axis) == innermost and tensor.shape[axis] > 1:
            # Slices across the innermost axis would be strided element by element: transpose once.
            tensor = tensor.movedim(axis, 0).contiguous().movedim(0, axis)
        tensor = _resample_axis(tensor, axis, taps[axis])
        pending.remove(axis)
    return tensor


def _resample_axis(source: torch.Tensor, axis: int, taps: AxisTaps) -> torch.Tensor:
    """Output slice j along ``axis`` = sum over taps of weight * input slice; output keeps the memory order."""
    import torch

    shape = list(source.shape)
    shape[axis] = taps.index.shape[0]
    order = sorted(range(3), key=lambda dim: -source.stride(dim))
    output = torch.empty([shape[dim] for dim in order], dtype=torch.float32).permute(
        np.argsort(order).tolist()
    )
    integer_source = not source.is_floating_point()
    converted: dict[int, torch.Tensor] = {}
    for j, (indices, weights) in enumerate(zip(taps.index.tolist(), taps.weight.tolist(), strict=True)):
        target = output.select(axis, j)
        first = True
        for index, weight in zip(indices, weights, strict=True):
            if weight == 0.0:
                continue
            if integer_source:
                # Each input slice is read by a few consecutive outputs: convert it once.
                if index not in converted:
                    converted[index] = source.select(axis, index).to(torch.float32)
                    for stale in [key for key in converted if key < min(indices)]:
                        del converted[stale]
                piece = converted[index]
            else:
                piece = source.select(axis, index)
            if first:
                torch.mul(piece, weight, out=target)
                first = False
            else:
                target.add_(piece, alpha=weight)
        if first:  # every weight zero (a label block's row outside the class): nothing contributes
            target.zero_()
    return output


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    """Zero-copy torch view of a numpy array; axes with negative strides are flipped back by a copy."""
    import torch

    if any(stride < 0 for stride in array.strides):
        array = np.ascontiguousarray(array)
    if array.dtype == np.uint16 or array.dtype == np.uint32:
        array = array.astype(np.int64 if array.dtype == np.uint32 else np.int32)
    return torch.from_numpy(array)


def resample_labels(
    labels: np.ndarray, output_shape: Shape3, rescue_thin: bool = True, kernel: Kernel = "cubic"
) -> np.ndarray:
    """Resample a label map class by class (interpolated one-hot scores, then the highest score wins).

    Args:
        labels: 3-D integer array (values 0..255), indexed [x, y, z]; any strides.
        output_shape: voxels (x, y, z) wanted.
        kernel: kernel for each class's one-hot mask ("cubic" or "linear").
        rescue_thin: give a class that is present in the input but wins no output voxel the voxels where
            its own score is at least half its maximum (or, when it falls between samples entirely, the
            voxels its input voxels fall into).

    Returns:
        uint8 array of ``output_shape``, C-contiguous.
    """
    import torch

    labels = _small_labels(labels)
    output_shape = tuple(int(size) for size in output_shape)
    boxes = label_boxes(labels)
    full_taps = [
        axis_taps(n_in, n_out, kernel) for n_in, n_out in zip(labels.shape, output_shape, strict=True)
    ]
    best = torch.zeros(output_shape, dtype=torch.float32)
    total = torch.zeros(output_shape, dtype=torch.float32)
    winner = torch.zeros(output_shape, dtype=torch.uint8)
    present = []
    for class_id, box in enumerate(boxes, start=1):
        if box is None:
            continue
        present.append(class_id)
        scores, region = _class_scores(labels, class_id, box, full_taps)
        if scores is None:
            continue
        total[region] += scores
        best_region, winner_region = best[region], winner[region]
        winner_region.masked_fill_(scores > best_region, class_id)
        torch.maximum(best_region, scores, out=best_region)
    # Background scores 1 - total; a class wins where best > 1 - total. Ties go to background.
    result = torch.where(best + total > 1.0, winner, torch.zeros((), dtype=torch.uint8)).numpy()
    del best, total, winner
    if rescue_thin:
        counts = np.bincount(result.ravel(), minlength=256)
        for class_id in present:
            if counts[class_id] == 0:
                _rescue(labels, class_id, boxes[class_id - 1], full_taps, result)
    return result


def _small_labels(labels: np.ndarray) -> np.ndarray:
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"label maps hold integers, got {labels.dtype}")
    if labels.dtype != np.uint8:
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise ValueError("label values must lie in 0..255")
        labels = labels.astype(np.uint8)
    return labels


def box_taps(
    box: tuple[slice, ...], full_taps: list[AxisTaps]
) -> tuple[list[AxisTaps], tuple[slice, ...]] | None:
    """Taps that read only the input ``box``, and the output region they reach; None when it reaches none.

    Input voxels outside the box count as zero, so resampling a block with these taps equals
    resampling the whole volume with everything outside the box set to zero.
    """
    local_taps: list[AxisTaps] = []
    region = []
    for axis_box, taps in zip(box, full_taps, strict=True):
        start, stop = axis_box.start, axis_box.stop
        inside = (taps.index >= start) & (taps.index < stop) & (taps.weight != 0)
        rows = np.flatnonzero(inside.any(axis=1))
        if rows.size == 0:
            return None
        first, last = int(rows[0]), int(rows[-1]) + 1
        region.append(slice(first, last))
        local_taps.append(
            AxisTaps(
                np.clip(taps.index[first:last] - start, 0, stop - start - 1),
                np.where(inside[first:last], taps.weight[first:last], 0.0),
            )
        )
    return local_taps, tuple(region)


def _class_scores(labels: np.ndarray, class_id: int, box: tuple[slice, ...], full_taps: list[AxisTaps]):
    """Resampled one-hot score of one class inside the output region its bounding box reaches."""
    import torch

    reach = box_taps(box, full_taps)
    if reach is None:
        return None, None
    local_taps, region = reach
    mask = _as_tensor(labels[box] == class_id)  # keeps the memory order of the view
    return separable(mask.to(torch.float32), local_taps), region


def _rescue(labels: np.ndarray, class_id: int, box, full_taps: list[AxisTaps], result: np.ndarray) -> None:
    scores, region = _class_scores(labels, class_id, box, full_taps)
    if scores is not None and float(scores.max()) > 0:
        keep = (scores >= 0.5 * scores.max()).numpy()
        result[region][keep] = class_id
        return
    # Downsampling by 2 or more can fall between the voxels of a tiny class: map each of its voxels
    # to the output voxel that contains it.
    points = np.nonzero(labels[box] == class_id)
    index = []
    for axis, (axis_box, coordinates) in enumerate(zip(box, points, strict=True)):
        n_in, n_out = labels.shape[axis], result.shape[axis]
        position = np.floor((coordinates + axis_box.start + 0.5) * n_out / n_in).astype(np.int64)
        index.append(np.clip(position, 0, n_out - 1))
    result[tuple(index)] = class_id
