"""Every byte of a .nii.gz is checked on reading (CRC-32, length, cut-offs), NaN and infinite voxels are
refused in every format, and a written file is proven whole by its gzip trailer."""

from __future__ import annotations

import gzip
import struct
import zlib

import numpy as np
import pytest

from amoseg.errors import InputError
from amoseg.io import Image, LabelMap, make_geometry, nifti_voxels, read_image, read_label, write_image
from amoseg.io.nifti_header import read_nifti_header

SHAPE = (64, 64, 40)


def _noisy_nifti(path):
    """A .nii.gz large enough that ITK reads its header without reaching the gzip trailer."""
    array = np.random.default_rng(0).integers(-1000, 1000, SHAPE).astype(np.int16)
    write_image(Image(array, make_geometry(SHAPE)), path)
    return array


def _with_trailer(path, crc=None, length=None):
    data = bytearray(path.read_bytes())
    stored_crc, stored_length = struct.unpack("<II", data[-8:])
    data[-8:] = struct.pack("<II", stored_crc ^ 0x5A5A if crc is None else crc, length or stored_length)
    path.write_bytes(bytes(data))


def test_wrong_crc_with_intact_length_is_refused(tmp_path):
    path = tmp_path / "crc.nii.gz"
    _noisy_nifti(path)
    _with_trailer(path)
    with pytest.raises(InputError) as caught:
        read_image(path)
    assert caught.value.path == path
    assert caught.value.problem.startswith("gzip checksum failed")


def test_bytes_changed_inside_the_deflate_stream_are_refused(tmp_path):
    """Stored (level 0) deflate blocks still inflate after a byte flip: only the CRC can tell."""
    path = tmp_path / "whole.nii.gz"
    _noisy_nifti(path)
    data = bytearray(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=0))
    data[len(data) // 2] ^= 0xFF
    flipped = tmp_path / "flipped.nii.gz"
    flipped.write_bytes(bytes(data))
    assert len(zlib.decompressobj(31).decompress(bytes(data[:-8]))) > 0  # still inflates
    with pytest.raises(InputError, match=r"flipped\.nii\.gz: gzip checksum failed"):
        read_image(flipped)


def test_small_file_with_wrong_crc_is_named_as_such(tmp_path):
    """ITK fails on the header of a small file with a bad CRC; the message must still say why."""
    path = tmp_path / "small.nii.gz"
    write_image(Image(np.ones((4, 3, 2), np.int16), make_geometry((4, 3, 2))), path)
    _with_trailer(path)
    with pytest.raises(InputError, match="gzip checksum failed"):
        read_image(path)


def test_wrong_length_field_is_refused(tmp_path):
    path = tmp_path / "length.nii.gz"
    _noisy_nifti(path)
    data = bytearray(path.read_bytes())
    data[-4:] = struct.pack("<I", 12345)
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="gzip length check failed"):
        read_image(path)


def test_whole_gzip_with_fewer_voxels_than_declared_is_refused(tmp_path):
    path = tmp_path / "short.nii.gz"
    _noisy_nifti(path)
    content = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(content[: len(content) - 1000]))
    with pytest.raises(InputError, match=r"file is truncated: it holds \d+ of the \d+ bytes"):
        read_image(path)


def test_several_gzip_members_and_zero_padding_are_read(tmp_path):
    path = tmp_path / "members.nii.gz"
    array = _noisy_nifti(path)
    content = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(content[:1000]) + gzip.compress(content[1000:]) + b"\x00" * 16)
    np.testing.assert_array_equal(read_image(path).array, array)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".nrrd"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_infinite_voxels_are_refused_by_every_reader(tmp_path, suffix, dtype):
    array = np.ones((5, 4, 3), dtype)
    array[1, 2, 0] = np.nan
    array[4, 3, 2] = -np.inf
    array[0, 0, 1] = np.inf
    path = tmp_path / f"nan{suffix}"
    write_image(Image(array, make_geometry(array.shape)), path)
    with pytest.raises(InputError) as caught:
        read_image(path)
    assert caught.value.problem == "3 voxels are NaN or infinite"


@pytest.mark.parametrize("output_chunk", [3, 7, 4096])
@pytest.mark.parametrize("order", ["<", ">"])
def test_nonfinite_voxels_are_counted_across_any_chunk_boundary(tmp_path, monkeypatch, output_chunk, order):
    monkeypatch.setattr(nifti_voxels, "_OUTPUT_CHUNK", output_chunk)
    monkeypatch.setattr(nifti_voxels, "_PLAIN_CHUNK", output_chunk)
    array = np.ones((5, 4, 3), np.float64)
    array.flat[[0, 7, 33, 59]] = [np.nan, np.inf, -np.inf, np.nan]
    path = tmp_path / "nan.nii"
    write_image(Image(array, make_geometry(array.shape)), path)
    data = bytearray(path.read_bytes())
    if order == ">":  # the same image in big-endian: header fields and voxels byte-swapped
        data = _big_endian_copy(bytes(data), array)
    for stored in (path, tmp_path / "nan.nii.gz"):
        stored.write_bytes(gzip.compress(bytes(data)) if stored.name.endswith(".gz") else bytes(data))
        header = read_nifti_header(stored)
        assert header.byte_order == order
        assert nifti_voxels.check_voxels(stored, header).nonfinite == 4
        assert nifti_voxels.read_voxels(stored, header)[1] == 4


def _big_endian_copy(data: bytes, array: np.ndarray) -> bytearray:
    out = bytearray(data)
    for offset, code in ((0, "i"), (40, "8h"), (70, "2h"), (76, "8f"), (108, "3f"), (252, "2h"), (256, "6f")):
        values = struct.unpack_from("<" + code, data, offset)
        struct.pack_into(">" + code, out, offset, *values)
    values = struct.unpack_from("<12f", data, 280)
    struct.pack_into(">12f", out, 280, *values)
    out[352:] = array.astype(">f8").tobytes(order="F")
    return out


def test_nifti_arrays_are_writable_and_stored_x_fastest(tmp_path):
    path = tmp_path / "label.nii.gz"
    label = np.zeros((6, 5, 4), np.uint8)
    label[1:3, 1:3, 1:3] = 6
    write_image(LabelMap(label, make_geometry(label.shape)), path)
    back = read_label(path).array
    assert back.flags.writeable and back.flags.f_contiguous
    back[0, 0, 0] = 1  # callers may change what they read


def test_written_file_is_proven_by_its_trailer_and_a_changed_one_is_not(tmp_path):
    path = tmp_path / "image.nii.gz"
    array = _noisy_nifti(path)
    voxels = np.ascontiguousarray(array.T)
    header = read_nifti_header(path)
    assert nifti_voxels.gzip_ends_with(path, header, voxels)
    assert nifti_voxels.write_problem(path, voxels) is None
    changed = voxels.copy()
    changed[0, 0, 0] += 1
    assert not nifti_voxels.gzip_ends_with(path, header, changed)
    # Not proven by the trailer, the file is inflated in full, and it is whole.
    assert nifti_voxels.write_problem(path, changed) is None


def test_cut_written_file_is_reported_incomplete(tmp_path):
    path = tmp_path / "image.nii.gz"
    array = _noisy_nifti(path)
    path.write_bytes(path.read_bytes()[:4096])
    assert "corrupt or truncated" in nifti_voxels.write_problem(path, np.ascontiguousarray(array.T))
    plain = tmp_path / "image.nii"
    write_image(Image(array, make_geometry(SHAPE)), plain)
    plain.write_bytes(plain.read_bytes()[:4096])
    problem = nifti_voxels.write_problem(plain, np.ascontiguousarray(array.T))
    assert problem == f"the file written holds 4096 of the {352 + array.nbytes} bytes its header declares"
