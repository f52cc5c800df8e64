"""Image I/O under faults, each in a fresh process: a file-size limit during writes, memory while
reading a large volume, and stderr that shows amoseg's one line and nothing from ITK underneath."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from amoseg.io import Image, make_geometry, write_image
from helpers import run_amoseg, run_python, write_box_dataset, write_dicom_series

#: A file-size limit (ulimit -f) far below any image written here.
SIZE_LIMIT_BYTES = 4096


# --- failed writes are reported, and replace nothing -------------------------------------------------

_WRITE_UNDER_LIMIT = """
import resource, sys
import numpy as np
from amoseg.errors import OutputError
from amoseg.io import Image, make_geometry, write_image
array = np.random.default_rng(1).integers(-1000, 1000, (64, 64, 32)).astype(np.int16)
image = Image(array, make_geometry(array.shape))
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    write_image(image, sys.argv[1])
except OutputError as error:
    print(error)
    raise SystemExit(3)
"""


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".nrrd"])
def test_write_cut_short_by_a_file_size_limit_is_an_error_and_keeps_the_old_file(tmp_path, suffix):
    target = tmp_path / f"image{suffix}"
    old = np.random.default_rng(0).integers(-1000, 1000, (64, 64, 32)).astype(np.int16)
    write_image(Image(old, make_geometry(old.shape)), target)
    before = target.read_bytes()
    result = run_python(_WRITE_UNDER_LIMIT, target, SIZE_LIMIT_BYTES)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.strip().startswith(f"{target}: not written: file too large")
    assert result.stdout.strip().endswith("nothing replaced")
    assert result.stderr == ""  # no "** ERROR: NWAD" from the NIfTI library
    assert target.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == [target.name]  # no temporary left


def test_phantom_command_under_a_file_size_limit_fails_in_one_line(tmp_path):
    result = run_amoseg(
        "phantom",
        tmp_path / "D",
        "--ct",
        "1",
        "--mr",
        "1",
        "--workers",
        "1",
        file_size_limit=SIZE_LIMIT_BYTES,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("amoseg phantom: error: ")
    assert ".nii.gz: not written: file too large" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


# --- a volume is held once in memory while it is read ---------------------------------------------------

# The high-water mark of this process's own address space (VmHWM): ru_maxrss would start from the
# parent's resident size, which a forked pytest worker may hold above the volume's.
_READ_AND_MEASURE = """
import sys
import amoseg.io.sitk_io  # SimpleITK and numpy loaded before the baseline: only the read is measured
from amoseg.io import read_image
def high_water():
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024
baseline = high_water()
image = read_image(sys.argv[1])
peak = high_water()
image.array[0, 0, 0] = 7
print(baseline, peak, image.array.nbytes, int(image.array[300, 300, 200]), int(image.array[0, 0, 0]))
"""

# 512 x 512 x 512 int16: 256 MiB decoded, a box of 100 in zeros (a few hundred kB compressed).
_SHAPE = (512, 512, 512)


def _slabs():
    """The volume's z slices as bytes (x fastest), without ever holding the whole volume."""
    empty = np.zeros(_SHAPE[1::-1], np.int16)
    boxed = empty.copy()
    boxed[100:400, 100:400] = 100
    for z in range(_SHAPE[2]):
        yield (boxed if 100 <= z < 400 else empty).tobytes()


def _write_large_nifti(path: Path) -> None:
    template = path.with_name("template.nii")
    write_image(Image(np.zeros((512, 512, 1), np.int16), make_geometry((512, 512, 1))), template)
    header = bytearray(template.read_bytes()[:352])
    struct.pack_into("<h", header, 46, _SHAPE[2])  # dim[3]
    with gzip.open(path, "wb", compresslevel=1) as stream:
        stream.write(bytes(header))
        for slab in _slabs():
            stream.write(slab)


def _write_large_metaimage(path: Path) -> None:
    header = (
        "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
        "CompressedData = False\nTransformMatrix = 1 0 0 0 1 0 0 0 1\nOffset = 0 0 0\n"
        "ElementSpacing = 0.8 0.8 1\nDimSize = 512 512 512\nElementType = MET_SHORT\nElementDataFile = LOCAL\n"
    )
    with path.open("wb") as stream:
        stream.write(header.encode())
        for slab in _slabs():
            stream.write(slab)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "write"), [("large.nii.gz", _write_large_nifti), ("large.mha", _write_large_metaimage)]
)
def test_reading_a_large_volume_holds_it_once(tmp_path, name, write):
    path = tmp_path / name
    write(path)
    result = run_python(_READ_AND_MEASURE, path)
    assert result.returncode == 0, result.stderr
    baseline, peak, volume_bytes, inside, changed = (int(value) for value in result.stdout.split())
    assert volume_bytes == 512 * 512 * 512 * 2
    assert (inside, changed) == (100, 7)  # the voxels are right, and the array is writable
    assert peak - baseline < 1.4 * volume_bytes, (
        f"read took {(peak - baseline) / volume_bytes:.2f} x the volume"
    )


# --- stderr shows amoseg's one line, nothing from ITK -----------------------------------------------------

_READ_AND_REPORT = """
import sys
from amoseg.errors import InputError
from amoseg.io import read_image
try:
    read_image(sys.argv[1])
except InputError as error:
    print(error, file=sys.stderr)
"""


def test_reading_a_series_with_a_missing_slice_prints_only_the_error(tmp_path):
    folder = tmp_path / "series"
    write_dicom_series(folder, np.zeros((8, 8, 6), np.int16), (0.8, 0.8, 5.0), (0.0, 0.0, 0.0))
    (folder / "slice_003.dcm").unlink()
    result = run_python(_READ_AND_REPORT, folder)
    assert result.stderr.splitlines() == [
        f"{folder}: slices are not evenly spaced: a 10 mm gap between slices 3 and 4 "
        "(slice_002.dcm, slice_004.dcm) where the others are 5 mm (a missing slice?)"
    ]


def test_itk_warnings_on_a_file_that_is_read_are_not_printed(tmp_path):
    """pixdim disagreeing with the sform scales makes ITK warn "unexpected scales in sform"."""
    path = tmp_path / "odd_scales.nii"
    write_image(Image(np.ones((6, 5, 4), np.int16), make_geometry((6, 5, 4), (0.7, 0.8, 2.0))), path)
    data = bytearray(path.read_bytes())
    struct.pack_into("<f", data, 84, 0.9)  # pixdim[2]
    path.write_bytes(bytes(data))
    result = run_python(_READ_AND_REPORT, path)
    assert result.returncode == 0
    assert result.stderr == ""


def test_metaimage_with_nan_direction_prints_only_the_error(tmp_path):
    path = tmp_path / "nan.mha"
    write_image(Image(np.ones((6, 5, 4), np.int16), make_geometry((6, 5, 4))), path)
    path.write_bytes(path.read_bytes().replace(b"TransformMatrix = 1 0 0", b"TransformMatrix = nan 0 0"))
    result = run_python(_READ_AND_REPORT, path)
    assert result.stderr.splitlines() == [f"{path}: TransformMatrix contains NaN"]


# (field offset in a NIfTI-1 header, value, the problem reported)
_HEADER_FAULTS = {
    "zero_spacing": (88, 0.0, "spacing along z is 0 in the header (pixdim[3])"),
    "nan_qoffset": (268, float("nan"), "qform (quaternion or qoffset) contains NaN"),
    "nan_sform": (280, float("nan"), "sform contains NaN"),
}


@pytest.mark.parametrize("fault", _HEADER_FAULTS)
def test_check_names_header_faults_without_numerical_dumps(tmp_path, fault):
    offset, value, problem = _HEADER_FAULTS[fault]
    root = write_box_dataset(tmp_path / "d", case_numbers=(1, 2))
    image = root / "imagesTr" / "amos_0001.nii.gz"
    content = bytearray(gzip.decompress(image.read_bytes()))
    struct.pack_into("<f", content, offset, value)
    image.write_bytes(gzip.compress(bytes(content)))
    result = run_amoseg("check", root, "-o", tmp_path / "check.json", "--workers", "1")
    assert result.returncode == 1
    assert f"imagesTr/amos_0001.nii.gz: {problem}" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "vnl" not in (result.stdout + result.stderr).lower()
    assert result.stderr == ""
