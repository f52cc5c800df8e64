"""A DICOM series is read only when its slices make one regular grid; each fault is named in one line."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from amoseg.errors import InputError
from amoseg.io import read_header, read_image
from amoseg.io.sitk_io import dicom_modality
from dicom_series import write_ct_series
from helpers import write_dicom_series


def _series(tmp_path, slices=7, spacing_z=5.0, modality="CT"):
    array = (np.arange(6 * 5 * slices).reshape(6, 5, slices) % 200 - 100).astype(np.int16)
    folder = tmp_path / "series"
    write_dicom_series(folder, array, (0.8, 0.8, spacing_z), (-10.0, 20.0, 30.0), modality=modality)
    return folder, array


def _rewrite_slice(source, target, tags: dict[str, str]) -> None:
    """Write ``source`` again as ``target`` with some tags changed (UIDs kept unless given)."""
    image = sitk.ReadImage(str(source))
    for tag, value in tags.items():
        image.SetMetaData(tag, value)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetFileName(str(target))
    writer.Execute(image)


def test_regular_series_is_read_and_its_header_carries_the_slice_gap(tmp_path):
    folder, array = _series(tmp_path)
    np.testing.assert_array_equal(read_image(folder).array, array)
    assert read_header(folder).geometry.spacing == pytest.approx((0.8, 0.8, 5.0))
    assert read_header(folder).geometry.shape == (6, 5, 7)


@pytest.mark.parametrize("reader", [read_image, read_header])
def test_series_with_a_missing_slice_is_refused(tmp_path, reader):
    folder, _ = _series(tmp_path)
    (folder / "slice_003.dcm").unlink()
    with pytest.raises(InputError) as caught:
        reader(folder)
    assert caught.value.path == folder
    assert caught.value.problem == (
        "slices are not evenly spaced: a 10 mm gap between slices 3 and 4 (slice_002.dcm, slice_004.dcm) "
        "where the others are 5 mm (a missing slice?)"
    )


def test_small_jitter_in_positions_is_accepted(tmp_path):
    folder, _ = _series(tmp_path, spacing_z=5.0)
    source = folder / "slice_004.dcm"
    _rewrite_slice(source, source, {"0020|0032": "-10.000000\\20.000000\\50.004000"})  # 4 um off
    assert read_image(folder).geometry.shape == (6, 5, 7)


def test_two_slices_at_one_position_are_refused(tmp_path):
    folder, _ = _series(tmp_path)
    _rewrite_slice(
        folder / "slice_002.dcm",
        folder / "slice_002_copy.dcm",
        {"0008|0018": "1.2.826.0.1.3680043.2.1125.3.99", "0020|0013": "99"},
    )
    with pytest.raises(InputError, match=r"series: two slices at the same position: slice_002"):
        read_image(folder)


def test_slices_with_different_orientations_are_refused(tmp_path):
    folder, _ = _series(tmp_path)
    source = folder / "slice_005.dcm"
    _rewrite_slice(source, source, {"0020|0037": "0.995\\0.0998\\0\\-0.0998\\0.995\\0"})
    with pytest.raises(InputError, match=r"slices have different orientations .*slice_005\.dcm"):
        read_header(folder)


@pytest.mark.parametrize(("tag", "expected"), [("CT", "CT"), ("MR", "MR"), ("OT", None), ("PT", None)])
def test_modality_is_none_when_the_tag_says_neither_ct_nor_mr(tmp_path, tag, expected):
    folder, _ = _series(tmp_path, slices=2, modality=tag)
    assert dicom_modality(folder) == expected


@pytest.mark.parametrize("content", [None, "notes.txt"])
def test_a_folder_without_a_dicom_series_is_refused(tmp_path, content):
    folder = tmp_path / "empty"
    folder.mkdir()
    if content:
        (folder / content).write_text("not DICOM")
    with pytest.raises(InputError) as caught:
        read_image(folder)
    assert (caught.value.path, caught.value.problem) == (folder, "folder holds no DICOM series")


def test_a_folder_with_two_series_is_refused(tmp_path):
    slices = np.zeros((4, 4, 3), np.int16)
    write_ct_series(tmp_path / "two", slices, series_number=1, prefix="A")
    write_ct_series(tmp_path / "two", slices, series_number=2, prefix="B")
    with pytest.raises(InputError) as caught:
        read_header(tmp_path / "two")
    assert caught.value.path == tmp_path / "two"
    assert caught.value.problem == "folder holds 2 DICOM series; point to a folder with one"


def test_unevenly_spaced_slices_are_refused_without_the_missing_slice_hint(tmp_path):
    folder, _ = _series(tmp_path)
    source = folder / "slice_003.dcm"
    _rewrite_slice(source, source, {"0020|0032": "-10.000000\\20.000000\\47.000000"})  # 2 mm off
    with pytest.raises(InputError) as caught:
        read_image(folder)
    assert caught.value.path == folder
    assert caught.value.problem == (
        "slices are not evenly spaced: a 7 mm gap between slices 3 and 4 (slice_002.dcm, slice_003.dcm) "
        "where the others are 5 mm"
    )
