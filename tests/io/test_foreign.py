"""In-memory SimpleITK and nibabel images: world positions checked against the affine and against ITK's
own reader, label maps returned as the kind given, exactly on its grid; anything else refused in one
line."""

from __future__ import annotations

import struct
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from amoseg.errors import AmosegError
from amoseg.io import Image, LabelMap, make_geometry, read_image
from amoseg.io.foreign import from_foreign, to_foreign
from directions import DIRECTIONS

nib = pytest.importorskip("nibabel", reason="nibabel images need the amoseg[nibabel] extra")

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def ras_affine(lps_direction, spacing, lps_origin) -> np.ndarray:
    """A nibabel affine for a grid described in LPS: the first two world rows change sign."""
    affine = np.eye(4)
    affine[:3, :3] = RAS_TO_LPS @ np.asarray(lps_direction) @ np.diag(spacing)
    affine[:3, 3] = RAS_TO_LPS @ np.asarray(lps_origin)
    return affine


def labels_for(image: Image) -> LabelMap:
    """A label map on the image's grid whose every voxel differs from its neighbours along each axis."""
    x, y, z = np.indices(image.geometry.shape)
    return LabelMap(np.asfortranarray((x + 3 * y + 7 * z) % 16).astype(np.int64), image.geometry)


def test_a_hand_worked_affine_gives_spacing_direction_and_origin_in_lps():
    # Voxel (i, j, k) -> RAS (10 - 2i, 20 + 3j, 30 + 4k) -> LPS (-10 + 2i, -20 - 3j, 30 + 4k).
    affine = np.array([[-2.0, 0, 0, 10], [0, 3, 0, 20], [0, 0, 4, 30], [0, 0, 0, 1]])
    image = from_foreign(nib.Nifti1Image(np.zeros((5, 6, 7), np.int16), affine))
    assert image.geometry.shape == (5, 6, 7)
    assert image.geometry.spacing == (2.0, 3.0, 4.0)
    assert image.geometry.origin == (-10.0, -20.0, 30.0)
    assert image.geometry.direction == ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0))
    np.testing.assert_array_equal(image.geometry.affine_lps() @ [1, 1, 1, 1], [-8.0, -23.0, 34.0, 1.0])


AFFINES = {
    "RAS diagonal": np.array([[0.7, 0, 0, -91.5], [0, 0.8, 0, 120.25], [0, 0, 2.5, -30], [0, 0, 0, 1]]),
    "LPI diagonal": np.array([[-1.1, 0, 0, 5], [0, -0.9, 0, 6], [0, 0, -3, 7], [0, 0, 0, 1]]),
    # Voxel axes permuted: i runs superior, j anterior, k left (a sagittal acquisition).
    "sagittal": np.array([[0, 0, -1.2, 60], [0, 0.9, 0, -100], [1.5, 0, 0, -20], [0, 0, 0, 1]]),
    "oblique": np.vstack(
        [np.hstack([DIRECTIONS["oblique"] @ np.diag([0.6, 0.7, 4.0]), [[3], [-4], [5]]]), [0, 0, 0, 1]]
    ),
}


@pytest.mark.parametrize("name", AFFINES)
def test_world_positions_are_the_affines_with_ras_turned_to_lps(name):
    affine = AFFINES[name]
    shape = (6, 5, 4)
    image = from_foreign(nib.Nifti1Image(np.zeros(shape, np.float32), affine))
    for voxel in [(0, 0, 0), (5, 4, 3), (1, 3, 2), (5, 0, 3)]:
        ras = affine @ [*voxel, 1]
        lps = image.geometry.affine_lps() @ [*voxel, 1]
        np.testing.assert_allclose(lps[:3], [-ras[0], -ras[1], ras[2]], rtol=0, atol=1e-12)


@pytest.mark.parametrize("orientation", DIRECTIONS)
def test_geometry_is_what_itk_reads_from_the_same_image_saved_by_nibabel(tmp_path, orientation):
    affine = ras_affine(DIRECTIONS[orientation], (0.75, 0.9, 3.5), (-120.5, 33.25, 901.0))
    nifti = nib.Nifti1Image(np.arange(60, dtype=np.int16).reshape(5, 4, 3), affine)
    nifti.set_qform(affine, code=1)
    nifti.set_sform(affine, code=1)
    nib.save(nifti, tmp_path / "image.nii")
    by_itk = read_image(tmp_path / "image.nii")
    ours = from_foreign(nib.load(tmp_path / "image.nii"))
    assert ours.geometry.shape == by_itk.geometry.shape
    # NIfTI stores its affine in float32; ITK rebuilds it from the quaternion, nibabel from the sform.
    np.testing.assert_allclose(ours.geometry.spacing, by_itk.geometry.spacing, rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours.geometry.origin, by_itk.geometry.origin, rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours.geometry.direction, by_itk.geometry.direction, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours.array, by_itk.array)


def test_nibabel_voxels_keep_their_index_and_scaling():
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    stored = bytearray(nib.Nifti1Image(data, np.eye(4)).to_bytes())
    # scl_slope and scl_inter sit at bytes 112 and 116 of a NIfTI-1 header
    struct.pack_into(f"{nib.Nifti1Header().endianness}ff", stored, 112, 2.0, -1024.0)
    image = from_foreign(nib.Nifti1Image.from_bytes(bytes(stored)))
    assert image.array[1, 2, 3] == 2 * 23 - 1024
    np.testing.assert_array_equal(image.array, 2.0 * data - 1024.0)


def test_big_endian_voxels_become_native_with_the_same_values():
    data = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    image = from_foreign(nib.Nifti1Image(data, np.eye(4)))
    assert image.array.dtype.isnative and image.array.dtype.kind == "i"
    np.testing.assert_array_equal(image.array, data)


@pytest.mark.parametrize("image_class", [nib.Nifti1Image, nib.Nifti2Image])
@pytest.mark.parametrize("codes", [(1, 4), (2, 0), (0, 2)], ids=["qform1_sform4", "qform_only", "sform_only"])
def test_nibabel_label_maps_come_back_with_the_input_affine_header_and_codes(tmp_path, image_class, codes):
    qform_code, sform_code = codes
    affine = ras_affine(DIRECTIONS["oblique RAS"], (0.8, 0.8, 2.5), (17.0, -4.5, 60.25))
    original = image_class(np.full((6, 5, 4), 40.5, np.float32), affine)
    original.set_qform(affine, code=qform_code)
    original.set_sform(affine, code=sform_code)
    original.header["cal_max"] = 400
    path = tmp_path / "image.nii.gz"
    nib.save(original, path)
    given = nib.load(path)

    image = from_foreign(given)
    label = labels_for(image)
    result = to_foreign(label, given)

    assert type(result) is image_class
    np.testing.assert_array_equal(result.affine, given.affine)
    assert result.get_data_dtype() == np.uint8
    assert result.header.get_qform(coded=True)[1] == given.header.get_qform(coded=True)[1] == qform_code
    assert result.header.get_sform(coded=True)[1] == given.header.get_sform(coded=True)[1] == sform_code
    assert result.header.get_intent()[0] == "label"
    assert result.header["cal_max"] == 0
    np.testing.assert_array_equal(np.asanyarray(result.dataobj), label.array)
    # and once saved, the file holds exactly those ids and that geometry
    nib.save(result, tmp_path / "label.nii.gz")
    saved = nib.load(tmp_path / "label.nii.gz")
    assert saved.get_data_dtype() == np.uint8 and saved.header.get_slope_inter() == (None, None)
    np.testing.assert_array_equal(np.asanyarray(saved.dataobj), label.array)
    np.testing.assert_array_equal(saved.affine, given.affine)
    assert saved.header.get_qform(coded=True)[1] == qform_code
    assert saved.header.get_sform(coded=True)[1] == sform_code


def test_a_scaled_input_gives_an_unscaled_label_map():
    nifti = nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), np.eye(4))
    nifti.header.set_slope_inter(0.5, -100.0)
    result = to_foreign(labels_for(from_foreign(nifti)), nifti)
    assert result.header.get_slope_inter() == (None, None)  # nibabel's way of saying 1 and 0
    np.testing.assert_array_equal(np.asanyarray(result.dataobj), labels_for(from_foreign(nifti)).array)


def test_trailing_axes_of_size_one_are_dropped_and_restored():
    nifti = nib.Nifti1Image(np.ones((4, 3, 2, 1), np.int16), np.diag([2.0, 2.0, 2.0, 1.0]))
    image = from_foreign(nifti)
    assert image.array.shape == image.geometry.shape == (4, 3, 2)
    result = to_foreign(labels_for(image), nifti)
    assert result.shape == (4, 3, 2, 1)
    np.testing.assert_array_equal(np.asanyarray(result.dataobj)[..., 0], labels_for(image).array)


def test_other_nibabel_formats_come_back_as_their_own_class():
    affine = np.array([[-1.0, 0, 0, 64], [0, 0, 1, -64], [0, -1, 0, 64], [0, 0, 0, 1]])
    mgh = nib.MGHImage(np.zeros((4, 4, 4), np.float32), affine)
    image = from_foreign(mgh)
    np.testing.assert_allclose(image.geometry.affine_lps() @ [1, 2, 3, 1], [-63, 61, 62, 1], atol=1e-12)
    result = to_foreign(labels_for(image), mgh)
    assert type(result) is nib.MGHImage
    np.testing.assert_array_equal(result.affine, affine)
    np.testing.assert_array_equal(np.asanyarray(result.dataobj), labels_for(image).array)


def test_labels_beyond_255_keep_a_wider_type():
    nifti = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4))
    itk_image = sitk.GetImageFromArray(np.zeros((2, 2, 2), np.int16))
    label = LabelMap(np.full((2, 2, 2), 300, np.int16), from_foreign(nifti).geometry)
    assert to_foreign(label, nifti).get_data_dtype() == np.int16
    label = LabelMap(np.full((2, 2, 2), 300, np.int16), from_foreign(itk_image).geometry)
    assert to_foreign(label, itk_image).GetPixelID() == sitk.sitkInt16


def itk_image_of(array_xyz: np.ndarray, spacing, origin, direction) -> sitk.Image:
    itk_image = sitk.GetImageFromArray(np.ascontiguousarray(array_xyz.T))
    itk_image.SetSpacing(spacing)
    itk_image.SetOrigin(origin)
    itk_image.SetDirection(tuple(np.asarray(direction).ravel()))
    return itk_image


@pytest.mark.parametrize("orientation", DIRECTIONS)
def test_simpleitk_round_trip_is_exact(orientation):
    array = np.random.default_rng(0).normal(size=(7, 5, 3)).astype(np.float32)
    spacing, origin = (0.7031249, 0.7031249, 5.0000001), (-179.6484375, -301.2, 1024.5)
    given = itk_image_of(array, spacing, origin, DIRECTIONS[orientation])

    image = from_foreign(given)
    assert image.geometry.spacing == given.GetSpacing()
    assert image.geometry.origin == given.GetOrigin()
    assert sum(image.geometry.direction, ()) == given.GetDirection()
    for index in [(0, 0, 0), (6, 4, 2), (3, 1, 2)]:
        assert image.array[index] == given.GetPixel(index)
        world = image.geometry.affine_lps() @ [*index, 1]
        np.testing.assert_allclose(world[:3], given.TransformIndexToPhysicalPoint(index), rtol=0, atol=1e-9)

    label = labels_for(image)
    result = to_foreign(label, given)
    assert isinstance(result, sitk.Image) and result.GetPixelID() == sitk.sitkUInt8
    assert result.GetSize() == given.GetSize()
    assert result.GetSpacing() == given.GetSpacing()
    assert result.GetOrigin() == given.GetOrigin()
    assert result.GetDirection() == given.GetDirection()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(result).T, label.array)


def test_an_amoseg_image_passes_through_unchanged():
    image = Image(np.zeros((3, 4, 5), np.int16), make_geometry((3, 4, 5)))
    assert from_foreign(image) is image
    label = labels_for(image)
    assert to_foreign(label, image) is label


def test_a_label_map_off_the_inputs_grid_is_a_programming_error():
    itk_image = sitk.Image(4, 4, 4, sitk.sitkInt16)
    moved = make_geometry((4, 4, 4), origin=(0.0, 0.0, 0.001))
    with pytest.raises(ValueError, match="not on the image's grid: origin differs"):
        to_foreign(LabelMap(np.zeros((4, 4, 4), np.uint8), moved), itk_image)


def sheared() -> nib.Nifti1Image:
    affine = np.array([[1.0, 0.2, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    return nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), affine)


def with_nan() -> sitk.Image:
    array = np.zeros((3, 3, 3), np.float32)
    array[1, 1, 1] = np.nan
    return sitk.GetImageFromArray(array)


REFUSED = {
    "numpy array": (lambda: np.zeros((3, 3, 3)), "cannot segment a numpy.ndarray: pass an amoseg.io.Image"),
    "path": (lambda: "image.nii.gz", "cannot segment a str"),
    "4-D nibabel": (
        lambda: nib.Nifti1Image(np.zeros((4, 4, 4, 2), np.int16), np.eye(4)),
        "shape 4 x 4 x 4 x 2",
    ),
    "sheared affine": (sheared, r"sheared affine \(voxel axes 11.3 degrees off perpendicular\)"),
    "zero column": (
        # NIfTI refuses such an affine itself; nibabel's generic spatial image holds it
        lambda: nib.spatialimages.SpatialImage(np.zeros((3, 3, 3), np.int16), np.diag([1.0, 0.0, 1.0, 1.0])),
        "zero column",
    ),
    "RGB nibabel": (
        lambda: nib.Nifti1Image(np.zeros((3, 3, 3), [("R", "u1"), ("G", "u1"), ("B", "u1")]), np.eye(4)),
        "expected real numbers",
    ),
    "2-D SimpleITK": (lambda: sitk.Image(4, 4, sitk.sitkInt16), "SimpleITK image is 2-D"),
    "4-D SimpleITK": (lambda: sitk.Image([2, 2, 2, 2], sitk.sitkInt16), "SimpleITK image is 4-D"),
    "vector SimpleITK": (lambda: sitk.Image([2, 2, 2], sitk.sitkVectorFloat32, 3), "3 components per voxel"),
    "complex SimpleITK": (lambda: sitk.Image([2, 2, 2], sitk.sitkComplexFloat32), "expected real numbers"),
    "NaN voxel": (with_nan, "SimpleITK image: 1 voxels are NaN or infinite"),
    # ITK aborts the process when asked for such an image's voxel array: it must be refused before
    "run-length label map": (lambda: sitk.Image([2, 2, 2], sitk.sitkLabelUInt8), "label of 8-bit unsigned"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_what_cannot_be_segmented_is_refused_in_one_line(case):
    make, message = REFUSED[case]
    with pytest.raises(AmosegError, match=message) as caught:
        from_foreign(make())
    assert "\n" not in str(caught.value)


def test_to_foreign_refuses_an_unknown_kind_in_one_line():
    label = LabelMap(np.zeros((3, 3, 3), np.uint8), make_geometry((3, 3, 3)))
    with pytest.raises(AmosegError, match=r"cannot return a label map as a numpy\.ndarray"):
        to_foreign(label, np.zeros((3, 3, 3)))


def test_nibabel_stays_unimported_until_a_nibabel_image_is_passed():
    """nibabel is an optional extra: converting SimpleITK images must work without it."""
    code = (
        "import sys, SimpleITK as sitk\n"
        "from amoseg.io.foreign import from_foreign\n"
        "from_foreign(sitk.Image(2, 2, 2, sitk.sitkInt16))\n"
        "print('nibabel' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
