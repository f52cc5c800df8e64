"""Round trips keep geometry exactly; every bad file becomes one InputError naming it."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import SimpleITK as sitk

from amoseg.errors import InputError
from amoseg.io import Image, LabelMap, make_geometry, read_header, read_image, read_label, write_image
from directions import rotation
from helpers import write_dicom_series

# Directions in ITK's LPS world: an RAS-stored volume has its first two axes flipped.
DIRECTIONS = {
    "LPS": np.eye(3),
    "RAS": np.diag([-1.0, -1.0, 1.0]),
    "LAS": np.diag([1.0, -1.0, 1.0]),
    "oblique": rotation(12.0, -7.5),
    "oblique_flipped": rotation(3.0, 20.0) @ np.diag([-1.0, 1.0, -1.0]),
}
# NIfTI stores its affine in float32, so geometry survives to float32 precision there, exactly elsewhere.
FORMATS = {".nii.gz": 1e-6, ".nii": 1e-6, ".nrrd": 1e-12, ".mha": 0.0}


@pytest.mark.parametrize("orientation", DIRECTIONS)
@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip_keeps_voxels_and_geometry(tmp_path, orientation, suffix):
    shape = (7, 5, 3)
    geometry = make_geometry(shape, (0.7, 0.8, 5.0), (-120.5, 33.25, 901.0), DIRECTIONS[orientation])
    array = np.arange(np.prod(shape), dtype=np.int16).reshape(shape) - 50
    path = tmp_path / f"image{suffix}"
    write_image(Image(array, geometry), path)
    back = read_image(path)
    np.testing.assert_array_equal(back.array, array)
    tolerance = FORMATS[suffix]
    np.testing.assert_allclose(back.geometry.spacing, geometry.spacing, rtol=0, atol=tolerance * 10)
    np.testing.assert_allclose(back.geometry.origin, geometry.origin, rtol=0, atol=tolerance * 1000)
    np.testing.assert_allclose(back.geometry.direction, geometry.direction, rtol=0, atol=tolerance)
    assert back.geometry.shape == shape


def test_axis_order_and_world_positions_agree_with_simpleitk(tmp_path):
    """array[x, y, z] is ITK's pixel (x, y, z), and affine_lps maps it where ITK says it is."""
    geometry = make_geometry((4, 3, 2), (0.5, 1.5, 4.0), (1.0, 2.0, 3.0), DIRECTIONS["oblique"])
    array = np.arange(24, dtype=np.int16).reshape(4, 3, 2)
    path = tmp_path / "axes.mha"
    write_image(Image(array, geometry), path)
    itk_image = sitk.ReadImage(str(path))
    for index in [(0, 0, 0), (3, 2, 1), (1, 2, 0)]:
        assert itk_image.GetPixel(index) == array[index]
        expected = itk_image.TransformIndexToPhysicalPoint(index)
        actual = geometry.affine_lps() @ np.array([*index, 1.0])
        np.testing.assert_allclose(actual[:3], expected, atol=1e-9)


def test_label_maps_are_written_as_uint8_and_read_back_as_integers(tmp_path):
    geometry = make_geometry((3, 3, 3))
    label = LabelMap(np.full((3, 3, 3), 15, dtype=np.int64), geometry)
    write_image(label, tmp_path / "label.nii.gz")
    back = read_label(tmp_path / "label.nii.gz")
    assert back.array.dtype == np.uint8
    assert int(back.array.max()) == 15


def test_label_type_refuses_floats():
    with pytest.raises(TypeError):
        LabelMap(np.zeros((2, 2, 2), dtype=np.float32), make_geometry((2, 2, 2)))


def test_float_label_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "float_label.nii.gz"
    write_image(Image(np.zeros((2, 2, 2), dtype=np.float32), make_geometry((2, 2, 2))), path)
    with pytest.raises(InputError, match=r"float_label\.nii\.gz.*integer"):
        read_label(path)


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    write_image(Image(np.zeros((2, 2, 2), np.int16), make_geometry((2, 2, 2))), tmp_path / "a.nii.gz")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.nii.gz"]


def _valid_nifti(tmp_path, name="valid.nii.gz"):
    path = tmp_path / name
    write_image(Image(np.ones((16, 16, 8), np.int16), make_geometry((16, 16, 8))), path)
    return path


def _file(folder, name, content):
    path = folder / name
    if content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("missing.nii.gz", None, "not found"),
        ("empty.nii.gz", b"", "empty"),
        ("text.nii.gz", b"not an image\n", "gzip stream is corrupt"),
        ("text.nrrd", b"not an image\n", "not a readable image"),
    ],
)
def test_unusable_files_give_one_clear_error(tmp_path, name, content, problem):
    path = _file(tmp_path, name, content)
    with pytest.raises(InputError, match=problem) as caught:
        read_image(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kept", [0.3, 0.9])
def test_cut_off_gzip_is_reported_as_corrupt_or_truncated(tmp_path, kept):
    rng = np.random.default_rng(0)
    path = tmp_path / "whole.nii.gz"
    # Random voxels do not compress, so cutting the file cuts the voxel data, not only the header.
    write_image(
        Image(rng.integers(-1000, 1000, (64, 64, 32)).astype(np.int16), make_geometry((64, 64, 32))), path
    )
    data = path.read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(data[: int(len(data) * kept)])
    with pytest.raises(InputError, match="corrupt or truncated"):
        read_image(cut)


def test_cut_off_plain_nifti_is_reported_as_truncated(tmp_path):
    path = tmp_path / "whole.nii"
    write_image(Image(np.ones((64, 64, 32), np.int16), make_geometry((64, 64, 32))), path)
    data = path.read_bytes()
    cut = tmp_path / "cut.nii"
    cut.write_bytes(data[: int(len(data) * 0.9)])
    with pytest.raises(InputError, match="truncated"):
        read_image(cut)


def test_gzip_holding_garbage_is_refused(tmp_path):
    path = tmp_path / "garbage.nii.gz"
    path.write_bytes(gzip.compress(b"\x00" * 400))
    with pytest.raises(InputError, match=r"garbage\.nii\.gz"):
        read_image(path)


def test_two_dimensional_and_four_dimensional_images_are_refused(tmp_path):
    sitk.WriteImage(sitk.Image(8, 8, sitk.sitkInt16), str(tmp_path / "flat.nii.gz"))
    sitk.WriteImage(sitk.Image([4, 4, 4, 3], sitk.sitkInt16), str(tmp_path / "four.nii.gz"))
    with pytest.raises(InputError, match="2-D"):
        read_image(tmp_path / "flat.nii.gz")
    with pytest.raises(InputError, match="4-D"):
        read_image(tmp_path / "four.nii.gz")


def test_huge_header_is_refused_before_allocation(tmp_path):
    """A 100000 x 100000 x 1000 header (4e13 bytes) must be refused from the header alone."""
    header = tmp_path / "huge.mha"
    header.write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 100000 100000 1000\nElementType = MET_SHORT\n"
        "ElementSpacing = 1 1 1\nElementDataFile = huge.raw\n"
    )
    (tmp_path / "huge.raw").write_bytes(b"\x00" * 16)
    with pytest.raises(InputError, match="refusing to load"):
        read_image(header)


def test_huge_nifti_header_is_refused(tmp_path):
    path = _valid_nifti(tmp_path, "huge.nii")
    data = bytearray(path.read_bytes())
    # NIfTI-1 dim[] are int16 at byte 40: declare 32767 x 32767 x 1000 voxels over a 4 kB file.
    data[42:48] = np.array([32767, 32767, 1000], dtype="<i2").tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="refusing to load"):
        read_header(path)


def test_dicom_series_folder_is_read_with_its_geometry(tmp_path):
    array = (np.arange(6 * 5 * 4).reshape(6, 5, 4) - 30).astype(np.int16)
    write_dicom_series(tmp_path / "series", array, (0.8, 0.8, 2.5), (-10.0, 20.0, 30.0))
    image = read_image(tmp_path / "series")
    np.testing.assert_array_equal(image.array, array)
    np.testing.assert_allclose(image.geometry.spacing, (0.8, 0.8, 2.5), atol=1e-6)
    np.testing.assert_allclose(image.geometry.origin, (-10.0, 20.0, 30.0), atol=1e-5)


def test_folder_without_dicom_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="no DICOM series"):
        read_image(tmp_path)


def _metaimage_header(folder, name, size, element_type):
    """A MetaImage header whose data file is tiny: enough for a header-only read."""
    header = folder / name
    header.write_text(
        f"ObjectType = Image\nNDims = 3\nDimSize = {size}\nElementType = {element_type}\n"
        "ElementSpacing = 1 1 1\nElementDataFile = data.raw\n"
    )
    (folder / "data.raw").write_bytes(b"\x00" * 16)
    return header


def test_size_cap_counts_decoded_bytes_not_voxels(tmp_path):
    """The largest AMOS scan as float64 (2.4 GB) is admitted; twice its slices as float64 is not, as uint8 it is."""
    largest_amos = read_header(_metaimage_header(tmp_path, "amos.mha", "768 768 512", "MET_DOUBLE"))
    assert largest_amos.geometry.shape == (768, 768, 512)
    assert read_header(_metaimage_header(tmp_path, "bytes.mha", "768 768 1024", "MET_UCHAR"))
    with pytest.raises(InputError) as caught:
        read_header(_metaimage_header(tmp_path, "doubles.mha", "768 768 1024", "MET_DOUBLE"))
    assert caught.value.problem == (
        "header declares 768 x 768 x 1024 voxels of 8 bytes = 4.83e+09 bytes, more than the limit of "
        "4.29e+09 bytes; refusing to load"
    )


def test_arrays_read_through_itk_share_its_buffer_and_stay_writable(tmp_path):
    path = tmp_path / "image.mha"
    array = np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2)
    write_image(Image(array, make_geometry(array.shape)), path)
    back = read_image(path).array
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable and not back.flags.owndata
    back[1, 2, 1] = -7  # the ITK image behind it stays alive as long as the array does
    assert back[1, 2, 1] == -7


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha"])
def test_the_io_convention_numpy_xyz_in_fortran_order_crosses_without_a_copy(tmp_path, suffix, monkeypatch):
    """Read: numpy [x, y, z] in Fortran order. Write: such an array reaches ITK as a view, not a copy."""
    geometry = make_geometry((5, 4, 3), (1.0, 2.0, 3.0))
    array = np.asfortranarray(np.arange(60, dtype=np.int16).reshape(5, 4, 3))
    handed = []
    original = sitk.GetImageFromArray
    monkeypatch.setattr(
        sitk, "GetImageFromArray", lambda voxels, **kw: handed.append(voxels) or original(voxels, **kw)
    )
    write_image(Image(array, geometry), tmp_path / f"image{suffix}")
    assert np.shares_memory(handed[0], array)
    back = read_image(tmp_path / f"image{suffix}").array
    assert type(back) is np.ndarray and back.shape == (5, 4, 3) and back.flags.f_contiguous
    np.testing.assert_array_equal(back, array)
