"""Voxels of a NIfTI file read from its bytes, every byte of a ``.nii.gz`` checked on the way.

Why not through ITK: its NIfTI reader holds the voxels twice while reading (a 2 GB volume peaks at
4 GB resident), fills a cut-off gzip stream with zeros, never checks the gzip checksum, and turns NaN
into 0. Here the decompressed bytes go straight into the one array returned, zlib checks the CRC-32
and length that end each gzip member, and NaN and infinite values are counted in the same pass. ITK
still reads the header (the geometry), and the voxels of files it would rescale (``scl_slope``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from zlib_ng import zlib_ng as zlib

from amoseg.errors import InputError
from amoseg.io import gzip_stream
from amoseg.io.nifti_header import NiftiHeader, read_nifti_header

#: Most decompressed bytes held at a time, so that a stream inflating 1000-fold stays bounded.
_OUTPUT_CHUNK = gzip_stream.OUTPUT_CHUNK
#: Bytes of an uncompressed file read at a time.
_PLAIN_CHUNK = 1 << 24


@dataclass(frozen=True)
class VoxelCheck:
    """What a full pass over a NIfTI file found.

    Attributes:
        stored_bytes: bytes in the file (after decompression for ``.nii.gz``), header included.
        nonfinite: voxels that are NaN or infinite (0 for integer types, or when not counted).
    """

    stored_bytes: int
    nonfinite: int


def read_voxels(path: Path, header: NiftiHeader) -> tuple[np.ndarray, int]:
    """Read the voxels of a single-file NIfTI into one array indexed [x, y, z], native byte order.

    ``header.dtype`` must not be None and axes past the third must have size 1; scaling
    (``scl_slope``) is not applied: the caller leaves scaled files to ITK.

    Returns:
        the array (Fortran-ordered: x varies fastest, as stored) and the number of NaN or
        infinite voxels.

    Raises:
        InputError: corrupt gzip stream (bad checksum, bad length, cut off), or fewer voxel bytes
            than the header declares.
    """
    array = np.empty(header.shape[:3], dtype=header.dtype, order="F")
    target = array.reshape(-1, order="F").view(np.uint8)
    counter = _NonfiniteCounter(array.dtype)
    start = header.voxel_start
    if path.name.lower().endswith(".gz"):
        filled = 0

        def store(piece: memoryview) -> None:
            nonlocal filled
            target[filled : filled + len(piece)] = np.frombuffer(piece, np.uint8)
            filled += len(piece)
            counter.feed(piece)

        _feed(gzip_stream.inflate(path, _OUTPUT_CHUNK), start, start + target.size, store)
    else:
        filled = _read_plain_into(path, start, target, counter)
    if filled < target.size:
        raise InputError(path, _truncated(start + filled, header.file_bytes))
    if not array.dtype.isnative:
        array = array.byteswap(inplace=True).view(array.dtype.newbyteorder("="))
    return array, counter.count


def check_voxels(path: Path, header: NiftiHeader, count_nonfinite: bool = True) -> VoxelCheck:
    """Go over a NIfTI file without keeping its voxels: its true length, and its NaN or infinite voxels.

    A ``.nii.gz`` is always decompressed in full (that is what checks its CRC-32); a ``.nii`` is only
    read when floats are to be counted.

    Raises:
        InputError: corrupt gzip stream (bad checksum, bad length, cut off).
    """
    dtype = header.dtype
    counter = _NonfiniteCounter(dtype if count_nonfinite and dtype is not None else None)
    start = header.voxel_start
    gzipped = path.name.lower().endswith(".gz")
    if not gzipped and counter.dtype is None:
        return VoxelCheck(path.stat().st_size, 0)
    chunks = gzip_stream.inflate(path, _OUTPUT_CHUNK) if gzipped else _read_plain(path)
    stored = _feed(chunks, start, start + header.voxel_bytes, counter.feed)
    return VoxelCheck(stored, counter.count)


def gzip_ends_with(path: Path, header: NiftiHeader, voxels: np.ndarray) -> bool:
    """Whether a ``.nii.gz`` ends with the gzip trailer of exactly its header followed by ``voxels``.

    A cheap proof that a writer finished: zlib writes the trailer (CRC-32 and length of everything
    it was given) only after the last compressed byte, and stops writing at the first failure. The
    CRC is computed from ``voxels`` in memory (C-ordered as stored: x fastest), about 8 times
    faster than inflating a label map's highly compressed stream. False means "not proven": the
    caller then inflates the whole file.
    """
    start = header.voxel_start
    if voxels.nbytes != header.voxel_bytes or not voxels.flags.c_contiguous:
        return False
    try:
        head = gzip_stream.inflate_start(path, start)
        with path.open("rb") as raw:
            raw.seek(-8, 2)
            stored_crc, stored_length = struct.unpack("<II", raw.read(8))
    except (InputError, OSError, struct.error):
        return False
    if len(head) != start:
        return False
    crc = zlib.crc32(voxels, zlib.crc32(head))
    return stored_crc == crc and stored_length == (start + voxels.nbytes) % 2**32


def write_problem(path: Path, voxels: np.ndarray) -> str | None:
    """Why a just-written NIfTI file is incomplete; None when it holds its header and all ``voxels``.

    ``voxels`` are the image's voxels as stored (C-ordered [z, y, x]). A ``.nii.gz`` is proven whole
    by its trailer when that matches (``gzip_ends_with``), else inflated in full; a ``.nii`` by its
    size.

    A corrupt or cut-off ``.nii.gz`` gives the message its reader would give.
    """
    try:
        header = read_nifti_header(path)
        if header is None:
            return "the file written has no NIfTI header"
        if path.name.lower().endswith(".gz") and gzip_ends_with(path, header, voxels):
            return None
        # Not proven by the trailer (a cut file, or voxels ITK stored differently): inflate it all.
        stored = check_voxels(path, header, count_nonfinite=False).stored_bytes
    except InputError as error:
        return error.problem
    if stored != header.file_bytes:
        return f"the file written holds {stored} of the {header.file_bytes} bytes its header declares"
    return None


def truncation_problem(stored_bytes: int, header: NiftiHeader) -> str | None:
    """The message for a file shorter than its header declares; None when it is long enough."""
    if stored_bytes >= header.file_bytes:
        return None
    return _truncated(stored_bytes, header.file_bytes)


def _truncated(stored_bytes: int, declared_bytes: int) -> str:
    return f"file is truncated: it holds {stored_bytes} of the {declared_bytes} bytes its header declares"


def _feed(chunks: Iterable[bytes], start: int, stop: int, sink: Callable[[memoryview], None]) -> int:
    """Pass bytes [start, stop) of a stream to ``sink`` in order; return the stream's total length."""
    position = 0
    for chunk in chunks:
        view = memoryview(chunk)
        low, high = max(start - position, 0), min(stop - position, len(view))
        if low < high:
            sink(view[low:high])
        position += len(view)
    return position


def _read_plain(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(_PLAIN_CHUNK):
            yield chunk


def _read_plain_into(path: Path, start: int, target: np.ndarray, counter: _NonfiniteCounter) -> int:
    """Read bytes from ``start`` of an uncompressed file into ``target`` (uint8); return the count read."""
    view = memoryview(target)
    filled = 0
    with path.open("rb") as stream:
        stream.seek(start)
        while filled < len(view):
            got = stream.readinto(view[filled : filled + _PLAIN_CHUNK])
            if not got:
                break
            counter.feed(view[filled : filled + got])
            filled += got
    return filled


class _NonfiniteCounter:
    """Counts NaN and infinite values in a byte stream cut anywhere (a value may span two pieces).

    ``dtype`` None, or an integer type, counts nothing.
    """

    def __init__(self, dtype: np.dtype | None) -> None:
        self.dtype = dtype if dtype is not None and dtype.kind == "f" else None
        self.count = 0
        self._carry = b""

    def feed(self, piece: memoryview) -> None:
        if self.dtype is None:
            return
        size = self.dtype.itemsize
        if self._carry:
            need = size - len(self._carry)
            self._carry += bytes(piece[:need])
            piece = piece[need:]
            if len(self._carry) < size:
                return
            self._count(memoryview(self._carry))
            self._carry = b""
        whole = len(piece) - len(piece) % size
        self._count(piece[:whole])
        self._carry = bytes(piece[whole:])

    def _count(self, data: memoryview) -> None:
        if len(data):
            values = np.frombuffer(data, dtype=self.dtype)
            self.count += int(values.size - np.count_nonzero(np.isfinite(values)))
