"""NIfTI-1 and NIfTI-2 headers read from their raw bytes: the fields amoseg checks before ITK sees them.

ITK's NIfTI reader repairs bad header fields without a word: a zero, negative or NaN ``pixdim``
becomes a 1.0 mm spacing, and NaN in the quaternion or the sform becomes 0, after pages of
numerical-library dumps on stderr. So the header is parsed here with ``struct``, in the byte order
its size field reveals, and checked first. Only the forms whose code is above 0 are checked: a
reader ignores the others.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amoseg.errors import InputError
from amoseg.io.gzip_stream import inflate_start

NIFTI1_HEADER_BYTES = 348
NIFTI2_HEADER_BYTES = 540
#: A single-file NIfTI stores voxels after the header and a 4-byte extension flag.
_MIN_VOXEL_OFFSET = {1: NIFTI1_HEADER_BYTES + 4, 2: NIFTI2_HEADER_BYTES + 4}

#: NIfTI datatype codes of the scalar voxel types amoseg reads itself, as numpy type codes.
_SCALAR_DATATYPES = {
    2: "u1",
    4: "i2",
    8: "i4",
    16: "f4",
    64: "f8",
    256: "i1",
    512: "u2",
    768: "u4",
    1024: "i8",
    1280: "u8",
}

# Offsets and struct codes of the fields used, per version: (offset, format).
_FIELDS = {
    1: {
        "dims": (40, "8h"),
        "datatype": (70, "h"),
        "bitpix": (72, "h"),
        "pixdim": (76, "8f"),
        "vox_offset": (108, "f"),
        "scaling": (112, "2f"),
        "codes": (252, "2h"),
        "quatern": (256, "6f"),
        "srow": (280, "12f"),
        "magic": (344, "4s"),
    },
    2: {
        "magic": (4, "8s"),
        "datatype": (12, "h"),
        "bitpix": (14, "h"),
        "dims": (16, "8q"),
        "pixdim": (104, "8d"),
        "vox_offset": (168, "q"),
        "scaling": (176, "2d"),
        "codes": (344, "2i"),
        "quatern": (352, "6d"),
        "srow": (400, "12d"),
    },
}


@dataclass(frozen=True)
class NiftiHeader:
    """The fields of a NIfTI-1 or NIfTI-2 header that decide where voxels lie and how they map to mm.

    Attributes:
        version: 1 or 2.
        byte_order: ``"<"`` or ``">"``, as ``struct`` and numpy write it.
        magic: ``b"n+1"`` / ``b"n+2"`` for a single file (others are header-and-image pairs).
        shape: voxels per axis, ``dim[1..dim[0]]`` (x first).
        datatype: NIfTI datatype code; bitpix: bits per voxel.
        pixdim: ``pixdim[0..7]``; ``pixdim[1..3]`` are the spacings in mm along x, y, z.
        vox_offset: byte where the voxels start, as stored (NIfTI-1 stores it as a float).
        scl_slope, scl_inter: stored value -> value (a slope of 0 means no scaling).
        qform_code, sform_code: which forms hold a geometry (0: none).
        quatern: quatern_b, c, d and qoffset_x, y, z; srow: srow_x, srow_y, srow_z (4 values each).
    """

    version: int
    byte_order: str
    magic: bytes
    shape: tuple[int, ...]
    datatype: int
    bitpix: int
    pixdim: tuple[float, ...]
    vox_offset: float
    scl_slope: float
    scl_inter: float
    qform_code: int
    sform_code: int
    quatern: tuple[float, ...]
    srow: tuple[float, ...]

    @property
    def voxel_bytes(self) -> int:
        """Bytes of voxel data the header declares (axes of size 0 or less count as 1)."""
        count = math.prod(max(int(size), 1) for size in self.shape)
        return count * max(int(self.bitpix), 0) // 8

    @property
    def voxel_start(self) -> int:
        """Byte where the voxels start: ``vox_offset``, or the header's end if it points inside the
        header (as the NIfTI C library reads it)."""
        header_bytes = NIFTI1_HEADER_BYTES if self.version == 1 else NIFTI2_HEADER_BYTES
        return max(int(self.vox_offset) if math.isfinite(self.vox_offset) else 0, header_bytes)

    @property
    def file_bytes(self) -> int:
        """Bytes of a complete single file: everything up to the voxels, then the voxels."""
        return self.voxel_start + self.voxel_bytes

    @property
    def dtype(self) -> np.dtype | None:
        """Numpy type of the stored voxels, in the file's byte order; None for types amoseg leaves to ITK."""
        code = _SCALAR_DATATYPES.get(self.datatype)
        if code is None or np.dtype(code).itemsize * 8 != self.bitpix:
            return None
        return np.dtype(self.byte_order + code)

    @property
    def scaled(self) -> bool:
        """Whether readers rescale the stored values (a slope other than 0 or 1, or an intercept)."""
        return not (self.scl_slope in (0.0, 1.0) and self.scl_inter == 0.0)

    @property
    def single_file_magic(self) -> bool:
        """The magic of a ``.nii`` file (``n+1``, ``n+2``), not of a header-and-image pair."""
        return self.magic == (b"n+1" if self.version == 1 else b"n+2")

    @property
    def single_file(self) -> bool:
        """A ``.nii`` layout: its magic, and the voxels after the header at a whole byte."""
        return (
            self.single_file_magic
            and math.isfinite(self.vox_offset)
            and self.vox_offset == int(self.vox_offset)
            and self.vox_offset >= _MIN_VOXEL_OFFSET[self.version]
        )

    def problem(self) -> str | None:
        """The first header field that makes the geometry unusable, in words; None when all are sound.

        Checked: the spacing along each spatial axis (finite and positive), where a ``.nii`` file's
        voxels start (``vox_offset``: past the header), the quaternion and its offset when
        ``qform_code > 0``, the three sform rows when ``sform_code > 0`` (all finite).
        """
        for axis in range(min(len(self.shape), 3)):
            spacing = self.pixdim[1 + axis]
            if not spacing > 0 or math.isinf(spacing):
                return f"spacing along {'xyz'[axis]} is {_shown(spacing)} in the header (pixdim[{1 + axis}])"
        if self.single_file_magic and not self.single_file:
            # The C library then reads from the header's end, shifting every voxel by some bytes.
            return (
                f"vox_offset is {_shown(self.vox_offset)} in the header; the voxels of a .nii file start at a "
                f"whole byte from {_MIN_VOXEL_OFFSET[self.version]} on"
            )
        if self.qform_code > 0:
            problem = _nonfinite(self.quatern, "qform (quaternion or qoffset)")
            if problem:
                return problem
        if self.sform_code > 0:
            return _nonfinite(self.srow, "sform")
        return None


def parse_nifti_header(head: bytes) -> NiftiHeader | None:
    """Parse the first bytes of a NIfTI file; None when they are not a NIfTI-1 or NIfTI-2 header.

    The byte order is the one in which the first field reads 348 (NIfTI-1) or 540 (NIfTI-2).
    """
    for order in "<>":
        if len(head) < 4:
            return None
        (size,) = struct.unpack(order + "i", head[:4])
        version = {NIFTI1_HEADER_BYTES: 1, NIFTI2_HEADER_BYTES: 2}.get(size)
        if version is None or len(head) < size:
            continue
        fields = {
            name: struct.unpack_from(order + code, head, offset)
            for name, (offset, code) in _FIELDS[version].items()
        }
        dims = fields["dims"]
        if not 1 <= dims[0] <= 7:
            return None
        return NiftiHeader(
            version=version,
            byte_order=order,
            magic=fields["magic"][0][:3],
            shape=tuple(int(size) for size in dims[1 : 1 + dims[0]]),
            datatype=int(fields["datatype"][0]),
            bitpix=int(fields["bitpix"][0]),
            pixdim=tuple(float(value) for value in fields["pixdim"]),
            vox_offset=float(fields["vox_offset"][0]),
            scl_slope=float(fields["scaling"][0]),
            scl_inter=float(fields["scaling"][1]),
            qform_code=int(fields["codes"][0]),
            sform_code=int(fields["codes"][1]),
            quatern=tuple(float(value) for value in fields["quatern"]),
            srow=tuple(float(value) for value in fields["srow"]),
        )
    return None


def is_nifti_path(path: Path) -> bool:
    return path.name.lower().endswith((".nii", ".nii.gz"))


def read_nifti_header(path: Path) -> NiftiHeader | None:
    """The header of a ``.nii`` or ``.nii.gz`` file; None when the file does not start with one.

    Raises:
        InputError: a ``.nii.gz`` whose gzip stream cannot even give the header, or unreadable.
    """
    try:
        if path.name.lower().endswith(".gz"):
            head = inflate_start(path, NIFTI2_HEADER_BYTES)
        else:
            with path.open("rb") as stream:
                head = stream.read(NIFTI2_HEADER_BYTES)
    except OSError as error:
        raise InputError(path, f"cannot be read ({error.strerror or error})") from None
    return parse_nifti_header(head)


def _shown(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:g}"


def _nonfinite(values: tuple[float, ...], what: str) -> str | None:
    if any(math.isnan(value) for value in values):
        return f"{what} contains NaN"
    if any(math.isinf(value) for value in values):
        return f"{what} contains an infinite value"
    return None
