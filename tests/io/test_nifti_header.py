"""NIfTI headers parsed from raw bytes (both versions, both byte orders), and voxels read without ITK
that match what ITK reads, voxel for voxel and in geometry."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import SimpleITK as sitk

from amoseg.errors import InputError
from amoseg.io import Image, make_geometry, read_header, read_image, write_image
from amoseg.io.nifti_header import parse_nifti_header

_CODES = {"u1": 2, "i2": 4, "i4": 8, "f4": 16, "f8": 64, "u2": 512}


def nifti_file(array, version=1, order="<", spacing=(0.7, 0.8, 2.5), origin=(10.0, -5.0, 3.0), slope=1.0):
    """A single-file NIfTI built field by field: sform only, ``array`` indexed [x, y, z]."""
    kind = array.dtype.str[1:]
    dims = [3, *array.shape, 1, 1, 1, 1]
    pixdim = [1.0, *spacing, 0.0, 0.0, 0.0, 0.0]
    srow = [spacing[0], 0, 0, origin[0], 0, spacing[1], 0, origin[1], 0, 0, spacing[2], origin[2]]
    if version == 1:
        head = bytearray(352)
        struct.pack_into(order + "i", head, 0, 348)
        struct.pack_into(order + "8h", head, 40, *dims)
        struct.pack_into(order + "2h", head, 70, _CODES[kind], array.dtype.itemsize * 8)
        struct.pack_into(order + "8f", head, 76, *pixdim)
        struct.pack_into(order + "3f", head, 108, 352.0, slope, 0.0)
        struct.pack_into(order + "2h", head, 252, 0, 1)
        struct.pack_into(order + "12f", head, 280, *srow)
        head[123] = 2 | 8  # xyzt_units: mm, s
        head[344:348] = b"n+1\x00"
    else:
        head = bytearray(544)
        struct.pack_into(order + "i", head, 0, 540)
        head[4:12] = b"n+2\x00\r\n\x1a\n"
        struct.pack_into(order + "2h", head, 12, _CODES[kind], array.dtype.itemsize * 8)
        struct.pack_into(order + "8q", head, 16, *dims)
        struct.pack_into(order + "8d", head, 104, *pixdim)
        struct.pack_into(order + "q2d", head, 168, 544, slope, 0.0)
        struct.pack_into(order + "2i", head, 344, 0, 1)
        struct.pack_into(order + "12d", head, 400, *srow)
        struct.pack_into(order + "i", head, 500, 2 | 8)
    return bytes(head) + array.astype(array.dtype.newbyteorder(order)).tobytes(order="F")


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("order", ["<", ">"])
def test_header_is_parsed_in_either_version_and_byte_order(version, order):
    array = np.zeros((4, 3, 2), np.int16)
    header = parse_nifti_header(nifti_file(array, version, order))
    assert (header.version, header.byte_order, header.shape) == (version, order, (4, 3, 2))
    assert header.pixdim[1:4] == pytest.approx((0.7, 0.8, 2.5), rel=1e-6)
    assert header.dtype == np.dtype(order + "i2")
    assert header.file_bytes == (352 if version == 1 else 544) + array.nbytes
    assert header.problem() is None
    assert header.single_file and not header.scaled


def test_bytes_that_are_not_nifti_give_none():
    assert parse_nifti_header(b"\x00" * 400) is None
    assert parse_nifti_header(b"not an image") is None


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("kind", ["u1", "i2", "f4", "f8", "u2"])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_voxels_read_directly_equal_what_itk_reads(tmp_path, order, kind, suffix):
    rng = np.random.default_rng(1)
    array = rng.integers(0, 200, (7, 5, 3)).astype(kind)
    data = nifti_file(array, 1, order)
    path = tmp_path / f"image{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    image = read_image(path)
    itk_image = sitk.ReadImage(str(path))
    np.testing.assert_array_equal(image.array, sitk.GetArrayFromImage(itk_image).T)
    assert image.array.dtype == sitk.GetArrayFromImage(itk_image).dtype
    assert image.array.dtype.isnative and image.array.flags.writeable
    np.testing.assert_allclose(image.geometry.spacing, itk_image.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(image.geometry.origin, itk_image.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(np.ravel(image.geometry.direction), itk_image.GetDirection(), atol=1e-6)


def test_rescaled_voxels_are_left_to_itk(tmp_path):
    """A slope of 2 makes ITK return floats: amoseg returns exactly what ITK returns."""
    array = np.arange(7 * 5 * 3, dtype=np.int16).reshape(7, 5, 3)
    path = tmp_path / "scaled.nii.gz"
    path.write_bytes(gzip.compress(nifti_file(array, slope=2.0)))
    image = read_image(path)
    np.testing.assert_array_equal(image.array, sitk.GetArrayFromImage(sitk.ReadImage(str(path))).T)
    np.testing.assert_array_equal(image.array, array * 2.0)
    assert image.array.flags.writeable


def _patched(tmp_path, name, offset, code, value):
    """A valid write_image output with one header field overwritten (NIfTI-1, little-endian)."""
    path = tmp_path / name
    write_image(Image(np.ones((6, 5, 4), np.int16), make_geometry((6, 5, 4), (0.7, 0.8, 2.0))), path)
    data = bytearray(path.read_bytes())
    struct.pack_into("<" + code, data, offset, value)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("offset", "value", "problem"),
    [
        (80, 0.0, "spacing along x is 0 in the header (pixdim[1])"),
        (84, -0.8, "spacing along y is -0.8 in the header (pixdim[2])"),
        (88, float("nan"), "spacing along z is NaN in the header (pixdim[3])"),
        (88, float("inf"), "spacing along z is inf in the header (pixdim[3])"),
        (
            108,
            0.0,
            "vox_offset is 0 in the header; the voxels of a .nii file start at a whole byte from 352 on",
        ),
        (108, float("nan"), "vox_offset is NaN in the header; the voxels of a .nii file start"),
        (108, 352.5, "vox_offset is 352.5 in the header; the voxels of a .nii file start"),
        (260, float("nan"), "qform (quaternion or qoffset) contains NaN"),
        (272, float("nan"), "qform (quaternion or qoffset) contains NaN"),
        (284, float("nan"), "sform contains NaN"),
        (324, float("-inf"), "sform contains an infinite value"),
    ],
)
def test_header_fields_itk_would_repair_are_refused(tmp_path, offset, value, problem):
    path = _patched(tmp_path, "bad.nii", offset, "f", value)
    with pytest.raises(InputError) as caught:
        read_header(path)
    assert caught.value.problem.startswith(problem)
    assert caught.value.path == path


def test_nan_in_a_form_whose_code_is_zero_is_ignored(tmp_path):
    path = _patched(tmp_path, "qform_off.nii", 252, "h", 0)  # qform_code = 0
    data = bytearray(path.read_bytes())
    struct.pack_into("<f", data, 260, float("nan"))
    path.write_bytes(bytes(data))
    assert read_header(path).geometry.shape == (6, 5, 4)


@pytest.mark.parametrize("order", ["<", ">"])
def test_big_and_little_endian_nifti2_headers_are_checked(tmp_path, order):
    data = bytearray(nifti_file(np.zeros((4, 3, 2), np.uint8), version=2, order=order))
    struct.pack_into(order + "d", data, 104 + 8 * 3, 0.0)  # pixdim[3]
    path = tmp_path / "zero_z.nii"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"spacing along z is 0 in the header"):
        read_image(path)


def test_a_sound_nifti2_file_is_refused_in_one_clear_line(tmp_path):
    """ITK's NIfTI reader knows NIfTI-1 only: say so instead of "unknown format"."""
    path = tmp_path / "two.nii"
    path.write_bytes(nifti_file(np.zeros((4, 3, 2), np.int16), version=2))
    with pytest.raises(InputError, match="NIfTI-2 is not readable here; save the image as NIfTI-1"):
        read_image(path)
