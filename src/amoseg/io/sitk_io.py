"""Reading and writing images through SimpleITK: the one place where arrays cross to and from ITK.

Supported: ``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd`` files, and a folder that
holds one DICOM series. Every failure becomes an ``InputError`` naming the file and the problem; a
write that does not complete becomes an ``OutputError`` and replaces nothing.

ITK lets some faults pass, so they are checked here first: header fields it would repair in silence
(``nifti_header``, ``text_headers``), every byte of a ``.nii.gz`` and NaN or infinite voxels
(``nifti_voxels``), the slice grid of a DICOM series (``dicom``), and the completeness of each file
written. A volume is held once in memory: NIfTI voxels are read straight into the returned array,
and other arrays share ITK's buffer instead of copying it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from amoseg.atomic import atomic_path
from amoseg.errors import InputError
from amoseg.io import nifti_voxels
from amoseg.io.dicom import dicom_modality as dicom_modality  # re-exported: every reader is here
from amoseg.io.dicom import read_series, series_files, slice_gap
from amoseg.io.gzip_stream import stream_problem
from amoseg.io.image import Geometry, Image, LabelMap, make_geometry
from amoseg.io.itk_quiet import quiet_itk
from amoseg.io.nifti_header import NiftiHeader, is_nifti_path, read_nifti_header
from amoseg.io.pixel_types import numpy_dtype, voxel_bytes
from amoseg.io.text_headers import text_header_problem

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")

#: Largest decoded volume accepted, in bytes (voxels x bytes per voxel of the stored type), decided
#: from the header before any allocation. The largest AMOS scan, 768 x 768 x 512 voxels, takes 2.4 GB
#: as float64; 4 GiB admits it with room for a wider field of view, and refuses a header declaring
#: terabytes before it can exhaust the machine's memory.
MAX_BYTES = 4 << 30

#: Floats are checked for NaN in slabs of this many voxels (a few MB of temporaries each).
_NONFINITE_CHUNK = 1 << 22


@dataclass(frozen=True)
class Header:
    """What a file says about itself, read without loading voxels."""

    geometry: Geometry
    pixel_type: str
    dimension: int
    components: int


@dataclass(frozen=True)
class _Source:
    """A file or series as its header describes it: all that reading its voxels needs."""

    header: Header
    dtype: np.dtype | None  # ITK's voxel type; None for types without a numpy twin
    nifti: NiftiHeader | None = None
    dicom_files: list[str] | None = None


def has_image_suffix(path: Path) -> bool:
    return path.name.lower().endswith(IMAGE_SUFFIXES)


def strip_image_suffix(name: str) -> str:
    """``amos_0001_0000.nii.gz`` -> ``amos_0001_0000``; names without a known suffix are unchanged."""
    lower = name.lower()
    for suffix in IMAGE_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_header(path: str | Path, max_bytes: int = MAX_BYTES) -> Header:
    """Read geometry and pixel type without loading voxels; refuse what cannot be a usable volume.

    Raises:
        InputError: missing, empty or unreadable file; a header field ITK would silently repair
            (zero, negative or NaN spacing; NaN in the qform, sform, origin or direction); not 3-D;
            not scalar; a DICOM series whose slices are not one regular grid; or a decoded volume
            larger than ``max_bytes`` (checked from the header alone).
    """
    return _source(Path(path), max_bytes).header


def read_image(path: str | Path, max_bytes: int = MAX_BYTES) -> Image:
    """Read an intensity image (file or DICOM series folder) into an ``Image`` indexed [x, y, z].

    The array is writable and held once in memory.

    Raises:
        InputError: as ``read_header``; a ``.nii.gz`` whose gzip checksum or length fails or that is
            cut short; fewer voxel bytes than the header declares; any NaN or infinite voxel.
    """
    array, geometry = _read(Path(path), max_bytes)
    return Image(array, geometry)


def read_label(path: str | Path, max_bytes: int = MAX_BYTES) -> LabelMap:
    """Read a label map; its voxels must have an integer type.

    Raises:
        InputError: as ``read_image``, or the voxels are not integers.
    """
    array, geometry = _read(Path(path), max_bytes)
    if not np.issubdtype(array.dtype, np.integer):
        raise InputError(path, f"label voxels are {array.dtype}; a label map must have an integer type")
    return LabelMap(array, geometry)


def write_image(image: Image | LabelMap, path: str | Path, compress: bool = True) -> None:
    """Write an image or label map atomically, with exactly its spacing, origin and direction.

    Label maps are stored as uint8 when their values allow it (AMOS ids fit), else as they are. The
    finished file is proven complete before it replaces anything (ITK's NIfTI writer cuts a file
    short at a file-size limit without an error): a ``.nii.gz`` must end with the gzip trailer of
    exactly the header and voxels written (else it is inflated in full, checksum checked, and must
    hold exactly the bytes its header implies), a ``.nii`` must have that size, and other formats
    must read back.

    Raises:
        OutputError: the file could not be written whole (disk full, file-size limit, permission);
            whatever stood at ``path`` before is kept.
    """
    array = image.array
    if isinstance(image, LabelMap) and array.size and array.min() >= 0 and array.max() <= 255:
        array = array.astype(np.uint8, copy=False)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    # [x, y, z] -> SimpleITK's [z, y, x]: for an array in the I/O convention (Fortran order,
    # amoseg.io.image) .T is a C-ordered view and nothing is copied here; any other order costs a copy.
    voxels = np.ascontiguousarray(array.T)
    itk_image = sitk.GetImageFromArray(voxels, isVector=False)
    geometry = image.geometry
    itk_image.SetSpacing(geometry.spacing)
    itk_image.SetOrigin(geometry.origin)
    itk_image.SetDirection(tuple(value for row in geometry.direction for value in row))
    # quiet_itk outside atomic_path: a failed write's C-level complaints are dropped, not replayed.
    with (
        quiet_itk(),
        atomic_path(path, verify=lambda written: _written_problem(written, voxels)) as temporary,
    ):
        try:
            sitk.WriteImage(itk_image, str(temporary), useCompression=compress)
        except RuntimeError as error:
            # As an OSError, atomic_path names the cause (file-size limit, full disk) in its message.
            raise OSError(_first_line(error)) from None


def _read(path: Path, max_bytes: int) -> tuple[np.ndarray, Geometry]:
    # A series' slice grid is checked from the headers that come with its voxels.
    array, geometry, nonfinite = _voxels(path, _source(path, max_bytes, check_grid=False))
    if nonfinite:
        raise InputError(path, f"{nonfinite} voxels are NaN or infinite")
    return array, geometry


def _source(path: Path, max_bytes: int, check_grid: bool = True) -> _Source:
    if path.is_dir():
        return _dicom_source(path, max_bytes, check_grid)
    _check_file(path)
    nifti = read_nifti_header(path) if is_nifti_path(path) else None
    problem = nifti.problem() if nifti is not None else text_header_problem(path)
    if problem:
        raise InputError(path, problem)
    try:
        reader = _information(path)
    except InputError:
        if nifti is not None and nifti.version == 2:  # ITK reads NIfTI-1 only
            raise InputError(path, "NIfTI-2 is not readable here; save the image as NIfTI-1") from None
        raise
    size = tuple(int(value) for value in reader.GetSize())
    dimension = int(reader.GetDimension())
    components = int(reader.GetNumberOfComponents())
    _check_bytes(path, size, voxel_bytes(reader.GetPixelID(), components), max_bytes)
    if dimension != 3:
        raise InputError(path, f"image is {dimension}-D ({_fmt_size(size)}); expected a 3-D volume")
    if components != 1:
        raise InputError(path, f"image has {components} components per voxel; expected one (scalar)")
    header = Header(
        geometry=_geometry(path, size, reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection()),
        pixel_type=sitk.GetPixelIDValueAsString(reader.GetPixelID()),
        dimension=dimension,
        components=components,
    )
    return _Source(header, numpy_dtype(reader.GetPixelID()), nifti=nifti)


def _dicom_source(folder: Path, max_bytes: int, check_grid: bool) -> _Source:
    """A series' header from its first slice, the slice count, and the gap measured over all slices.

    ``check_grid`` False leaves the slice grid to be checked while the voxels are read.
    """
    files = series_files(folder)
    first = Path(files[0])
    reader = _information(first)
    missing = 3 - int(reader.GetDimension())
    size = tuple(int(value) for value in reader.GetSize()) + (1,) * missing
    spacing = tuple(reader.GetSpacing()) + (1.0,) * missing
    gap_mm = slice_gap(folder, files) if check_grid else None
    if len(files) > 1:
        size, spacing = (*size[:2], len(files)), (*spacing[:2], gap_mm or spacing[2])
    components = int(reader.GetNumberOfComponents())
    _check_bytes(folder, size[:3], voxel_bytes(reader.GetPixelID(), components), max_bytes)
    if components != 1:
        raise InputError(first, f"image has {components} components per voxel; expected one (scalar)")
    origin = tuple(reader.GetOrigin()) + (0.0,) * missing
    direction = reader.GetDirection() if missing == 0 else np.eye(3).ravel()
    geometry = _geometry(first, size[:3], spacing[:3], origin, direction)
    header = Header(geometry, sitk.GetPixelIDValueAsString(reader.GetPixelID()), dimension=3, components=1)
    return _Source(header, numpy_dtype(reader.GetPixelID()), dicom_files=files)


def _information(path: Path) -> sitk.ImageFileReader:
    """An ITK reader that has read the header of ``path`` (no voxels)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with quiet_itk():
            reader.ReadImageInformation()
    except RuntimeError as error:
        # A small .nii.gz fails here on a bad checksum: say so rather than "unknown format".
        problem = stream_problem(path) if path.name.lower().endswith(".gz") else None
        problem = problem or f"not a readable image: unknown format or corrupt header ({_first_line(error)})"
        raise InputError(path, problem) from None
    return reader


def _voxels(path: Path, source: _Source) -> tuple[np.ndarray, Geometry, int]:
    """The voxels indexed [x, y, z], their geometry, and how many of them are NaN or infinite."""
    nifti = source.nifti
    if nifti is not None and _readable_directly(nifti, source):
        array, nonfinite = nifti_voxels.read_voxels(path, nifti)
        return array, source.header.geometry, nonfinite
    if nifti is not None:  # rescaled by ITK: check the stored bytes beside ITK's own read
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(nifti_voxels.check_voxels, path, nifti)
            try:
                itk_image = _itk_read(path, source)
            except InputError:
                pending.result()  # a corrupt stream explains ITK's failure best: raise that first
                raise
            check = pending.result()
        problem = nifti_voxels.truncation_problem(check.stored_bytes, nifti)
        if problem:
            raise InputError(path, problem)
        return _shared_array(itk_image), source.header.geometry, check.nonfinite
    itk_image = _itk_read(path, source)
    array = _shared_array(itk_image)
    geometry = source.header.geometry
    if source.dicom_files is not None:  # ITK places a series from all its slices: take its word
        geometry = _geometry(
            path, itk_image.GetSize(), itk_image.GetSpacing(), itk_image.GetOrigin(), itk_image.GetDirection()
        )
    return array, geometry, _nonfinite_in(array)


def _readable_directly(nifti: NiftiHeader, source: _Source) -> bool:
    """Whether the stored voxels are exactly what ITK would return: same type, no scaling, same shape."""
    dtype = nifti.dtype
    return (
        nifti.single_file
        and not nifti.scaled
        and dtype is not None
        and dtype.newbyteorder("=") == source.dtype
        and tuple(nifti.shape[:3]) == source.header.geometry.shape
        and all(size == 1 for size in nifti.shape[3:])
    )


def _itk_read(path: Path, source: _Source) -> sitk.Image:
    if source.dicom_files is not None:
        return read_series(path, source.dicom_files)
    try:
        with quiet_itk():
            return sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise InputError(
            path, f"voxel data unreadable, file corrupt or truncated ({_first_line(error)})"
        ) from None


class _ItkBuffer:
    """Exposes an ITK image's pixel buffer to numpy as writable memory, and keeps the image alive.

    An array made from it has this object as its ``base``, so the buffer lives exactly as long as
    any array using it. The image is referenced nowhere else, so writing into it is safe.
    """

    def __init__(self, itk_image: sitk.Image) -> None:
        view = sitk.GetArrayViewFromImage(itk_image)  # read-only, [z, y, x], does not own the image
        self.itk_image = itk_image
        self.__array_interface__ = {
            "version": 3,
            "shape": view.shape,
            "typestr": view.dtype.str,
            "data": (view.__array_interface__["data"][0], False),
        }


def _shared_array(itk_image: sitk.Image) -> np.ndarray:
    """The voxels of an ITK image indexed [x, y, z], sharing its memory (no copy)."""
    return np.asarray(_ItkBuffer(itk_image)).T


def _nonfinite_in(array: np.ndarray) -> int:
    if array.dtype.kind != "f":
        return 0
    flat = np.ravel(array, order="K")  # a view: arrays here are contiguous
    return sum(
        int(chunk.size - np.count_nonzero(np.isfinite(chunk)))
        for chunk in (
            flat[start : start + _NONFINITE_CHUNK] for start in range(0, flat.size, _NONFINITE_CHUNK)
        )
    )


def _written_problem(path: Path, voxels: np.ndarray) -> str | None:
    """Why a just-written file is incomplete; None when it holds the whole image.

    ``voxels`` are the image's voxels indexed [z, y, x], C-ordered: the order files store them.
    """
    try:
        if is_nifti_path(path):
            return nifti_voxels.write_problem(path, voxels)
        written = sitk.ReadImage(str(path))
    except InputError as error:
        return error.problem
    except RuntimeError as error:
        return f"the file written does not read back ({_first_line(error)})"
    size = tuple(int(value) for value in written.GetSize())[::-1]
    return None if size == voxels.shape else f"the file written reads back as {_fmt_size(size[::-1])}"


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(path, "file not found")
    if not path.is_file():
        raise InputError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty (0 bytes)")


def _check_bytes(path: Path, size: tuple[int, ...], bytes_per_voxel: int, max_bytes: int) -> None:
    """Refuse a volume whose decoded voxels would take more than ``max_bytes``."""
    total = int(np.prod(size, dtype=object)) * bytes_per_voxel
    if total > max_bytes:
        raise InputError(
            path,
            f"header declares {_fmt_size(size)} voxels of {bytes_per_voxel} bytes = {total:.3g} bytes, more "
            f"than the limit of {max_bytes:.3g} bytes; refusing to load",
        )


def _geometry(path: Path, size, spacing, origin, direction) -> Geometry:
    try:
        return make_geometry(tuple(size), tuple(spacing), tuple(origin), tuple(direction))
    except ValueError as error:
        raise InputError(path, f"invalid header geometry: {error}") from None


def _fmt_size(size: tuple[int, ...]) -> str:
    return " x ".join(str(int(value)) for value in size)


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # ITK messages start with a file:line location; the last informative line says what went wrong.
    useful = [line for line in lines if not line.startswith(("/", "sitk::ERROR: Exception thrown"))]
    text = (useful or lines or ["unknown error"])[-1]
    return text.removeprefix("sitk::ERROR: ")[:200]
