"""Separable torch resampling: accuracy against scipy, exact identity, labels class by class."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from amoseg.preprocessing.resample import (
    axis_taps,
    image_kernels,
    resample_image,
    resample_labels,
    resampled_shape,
)


def smooth(x, y, z):
    return np.sin(x / 5.0) * np.cos(y / 4.0) + 0.3 * np.sin(z / 6.0 + 1)


def test_cubic_is_third_order_accurate_like_scipy_order_3():
    shape_in, shape_out = (40, 36, 30), (57, 29, 45)
    grid = np.meshgrid(*[np.arange(n) for n in shape_in], indexing="ij")
    volume = smooth(*grid).astype(np.float32)
    # Output voxel j samples input position (j + 0.5) * n_in / n_out - 0.5 (voxel centres).
    positions = [(np.arange(m) + 0.5) * n / m - 0.5 for n, m in zip(shape_in, shape_out, strict=True)]
    truth = smooth(*np.meshgrid(*positions, indexing="ij"))
    ours = resample_image(volume, shape_out, ("cubic",) * 3)
    linear = resample_image(volume, shape_out, ("linear",) * 3)
    scipy = ndimage.zoom(volume, np.divide(shape_out, shape_in), order=3, grid_mode=True, mode="grid-mirror")
    assert ours.shape == scipy.shape == shape_out and ours.dtype == np.float32
    inner = (slice(4, -4),) * 3
    error, scipy_error = np.abs(ours - truth)[inner].max(), np.abs(scipy - truth)[inner].max()
    linear_error = np.abs(linear - truth)[inner].max()
    # Measured: cubic 2.8e-4, scipy order 3 8.2e-4 (its prefilter feels the edges), linear 1.4e-2.
    assert error < 1e-3 and error < 2 * scipy_error and error < linear_error / 20
    # Far from the edges scipy's B-spline is better (1.7e-5) but both are well below linear.
    deep = (slice(8, -8),) * 3
    assert np.abs(ours - truth)[deep].max() < 5e-4


def test_unchanged_axes_are_copied_exactly():
    volume = np.random.default_rng(0).normal(size=(20, 18, 9)).astype(np.float32)
    assert np.array_equal(resample_image(volume, volume.shape, ("cubic",) * 3), volume)
    half = resample_image(volume, (20, 18, 18), ("cubic", "cubic", "linear"))
    assert half.shape == (20, 18, 18)
    taps = axis_taps(9, 9, "cubic")
    assert np.array_equal(taps.index[:, 1], np.arange(9)) and np.allclose(taps.weight[:, 1], 1)


def test_integer_input_views_and_flipped_strides():
    rng = np.random.default_rng(1)
    base = rng.integers(-1000, 1000, size=(30, 24, 12)).astype(np.int16)
    view = np.asfortranarray(base)[::-1, :, 2:]  # negative stride, Fortran order, offset
    out = resample_image(view, (20, 30, 15), ("cubic", "cubic", "linear"))
    reference = resample_image(
        np.ascontiguousarray(view).astype(np.float32), (20, 30, 15), ("cubic", "cubic", "linear")
    )
    assert isinstance(out, np.ndarray) and np.allclose(out, reference, atol=1e-3)


def test_weights_sum_to_one_and_edges_repeat():
    for kernel in ("nearest", "linear", "cubic"):
        taps = axis_taps(17, 40, kernel)
        assert np.allclose(taps.weight.sum(axis=1), 1.0)
        assert taps.index.min() >= 0 and taps.index.max() <= 16


def test_anisotropic_axis_gets_the_low_resolution_kernel():
    assert image_kernels((0.8, 0.8, 5.0), (0.8, 0.8, 2.0)) == ("cubic", "cubic", "linear")
    assert image_kernels((3.0, 3.0, 3.0), (3.0, 3.0, 3.0)) == ("cubic", "cubic", "cubic")
    assert image_kernels((1.0, 4.0, 1.0), (1.0, 1.0, 1.0)) == ("cubic", "linear", "cubic")
    assert resampled_shape((512, 512, 100), (0.78, 0.78, 5.0), (0.78, 0.78, 2.0)) == (512, 512, 250)


@pytest.mark.parametrize("factor", [1.5, 1.25, 0.7, 2.5])
def test_one_voxel_thick_organ_survives(factor):
    labels = np.zeros((40, 40, 40), dtype=np.uint8)
    labels[5:35, 5:35, 5:35] = 6
    labels[8:30, 8:30, 17] = 12  # one voxel thick, inside the liver
    labels[2:38, 2:38, 37] = 5  # one voxel thick, in background
    for kernel in ("cubic", "linear"):
        out = resample_labels(labels, (40, 40, round(40 / factor)), kernel=kernel)
        counts = np.bincount(out.ravel(), minlength=16)
        assert counts[12] > 0 and counts[5] > 0 and counts[6] > 0, (factor, kernel, counts)
        # A rescued plane stays a plane: it spans the in-plane extent it had.
        assert np.any(out == 12, axis=2).sum() >= 0.8 * 22 * 22


def test_labels_keep_shapes_and_never_invent_classes():
    labels = np.zeros((30, 30, 20), dtype=np.uint8)
    labels[5:20, 5:20, 5:15] = 3
    labels[18:28, 10:25, 2:18] = 9
    out = resample_labels(labels, (45, 45, 30))
    assert out.dtype == np.uint8 and out.shape == (45, 45, 30)
    assert set(np.unique(out)) == {0, 3, 9}
    back = resample_labels(out, labels.shape)
    for organ in (3, 9):
        a, b = labels == organ, back == organ
        assert 2 * np.count_nonzero(a & b) / (a.sum() + b.sum()) > 0.97


def test_tiny_class_between_samples_is_mapped_to_its_voxel():
    labels = np.zeros((30, 30, 30), dtype=np.uint8)
    labels[13, 13, 13] = 11  # one voxel, downsampled by 3: may fall between every sample
    out = resample_labels(labels, (10, 10, 10), kernel="linear")
    assert np.count_nonzero(out == 11) >= 1


def test_labels_refuse_floats_and_large_values():
    with pytest.raises(TypeError):
        resample_labels(np.zeros((4, 4, 4), dtype=np.float32), (2, 2, 2))
    with pytest.raises(ValueError, match=r"0\.\.255"):
        resample_labels(np.full((4, 4, 4), 300, dtype=np.int16), (2, 2, 2))
