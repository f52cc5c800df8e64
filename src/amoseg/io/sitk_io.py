"""Reading and writing images through SimpleITK: the only module that touches it.

Supported: ``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd`` files, and a folder that
holds one DICOM series. Every failure becomes an ``InputError`` naming the file and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from amoseg.atomic import atomic_path
from amoseg.errors import InputError
from amoseg.io.image import Geometry, Image, LabelMap, make_geometry

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")

#: Largest volume accepted, decided from the header before any allocation. The largest AMOS scan
#: (768 x 768 x 512) has 3.0e8 voxels; this allows 3.5 times that.
MAX_VOXELS = 1_073_741_824


@dataclass(frozen=True)
class Header:
    """What a file says about itself, read without loading voxels."""

    geometry: Geometry
    pixel_type: str
    dimension: int
    components: int


def has_image_suffix(path: Path) -> bool:
    return path.name.lower().endswith(IMAGE_SUFFIXES)


def strip_image_suffix(name: str) -> str:
    """``amos_0001_0000.nii.gz`` -> ``amos_0001_0000``; names without a known suffix are unchanged."""
    lower = name.lower()
    for suffix in IMAGE_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_header(path: str | Path, max_voxels: int = MAX_VOXELS) -> Header:
    """Read geometry and pixel type without loading voxels; refuse what cannot be a usable volume.

    Raises:
        InputError: missing, empty or unreadable file, not 3-D, not scalar, or larger than
            ``max_voxels`` (checked from the header alone).
    """
    path = Path(path)
    if path.is_dir():
        return _dicom_header(path, max_voxels)
    _check_file(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise InputError(path, _diagnose(path, error)) from None
    size = tuple(int(value) for value in reader.GetSize())
    dimension = int(reader.GetDimension())
    components = int(reader.GetNumberOfComponents())
    _check_size(path, size, components, max_voxels)
    if dimension != 3:
        raise InputError(path, f"image is {dimension}-D ({_fmt_size(size)}); expected a 3-D volume")
    if components != 1:
        raise InputError(path, f"image has {components} components per voxel; expected one (scalar)")
    return Header(
        geometry=_geometry(path, size, reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection()),
        pixel_type=sitk.GetPixelIDValueAsString(reader.GetPixelID()),
        dimension=dimension,
        components=components,
    )


def read_image(path: str | Path, max_voxels: int = MAX_VOXELS) -> Image:
    """Read an intensity image (file or DICOM series folder) into an ``Image`` indexed [x, y, z]."""
    array, geometry = _read(Path(path), max_voxels)
    return Image(array, geometry)


def read_label(path: str | Path, max_voxels: int = MAX_VOXELS) -> LabelMap:
    """Read a label map; its voxels must have an integer type.

    Raises:
        InputError: as ``read_header``, or the voxels are not integers.
    """
    array, geometry = _read(Path(path), max_voxels)
    if not np.issubdtype(array.dtype, np.integer):
        raise InputError(path, f"label voxels are {array.dtype}; a label map must have an integer type")
    return LabelMap(array, geometry)


def write_image(image: Image | LabelMap, path: str | Path, compress: bool = True) -> None:
    """Write an image or label map atomically, with exactly its spacing, origin and direction.

    Label maps are stored as uint8 when their values allow it (AMOS ids fit), else as they are.
    """
    array = image.array
    if isinstance(image, LabelMap) and array.size and array.min() >= 0 and array.max() <= 255:
        array = array.astype(np.uint8, copy=False)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    # [x, y, z] -> SimpleITK's [z, y, x]; .T of a Fortran-ordered array is a C-ordered view, no copy.
    itk_image = sitk.GetImageFromArray(np.ascontiguousarray(array.T), isVector=False)
    geometry = image.geometry
    itk_image.SetSpacing(geometry.spacing)
    itk_image.SetOrigin(geometry.origin)
    itk_image.SetDirection(tuple(value for row in geometry.direction for value in row))
    with atomic_path(path) as temporary:
        sitk.WriteImage(itk_image, str(temporary), useCompression=compress)


def _read(path: Path, max_voxels: int) -> tuple[np.ndarray, Geometry]:
    header = read_header(path, max_voxels)
    if path.name.lower().endswith(".nii.gz") and not _gzip_nifti_complete(path):
        raise InputError(path, "gzip stream is corrupt or truncated")
    if path.name.lower().endswith(".nii") and not _plain_nifti_complete(path):
        raise InputError(path, "file is truncated: shorter than its header declares")
    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(_dicom_files(path))
            itk_image = reader.Execute()
        else:
            itk_image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise InputError(
            path, f"voxel data unreadable, file corrupt or truncated ({_first_line(error)})"
        ) from None
    array = sitk.GetArrayFromImage(itk_image).T  # [z, y, x] -> [x, y, z], a view
    geometry = header.geometry
    if path.is_dir():  # the series' geometry is only known once all slices are read
        geometry = _geometry(
            path, itk_image.GetSize(), itk_image.GetSpacing(), itk_image.GetOrigin(), itk_image.GetDirection()
        )
    return array, geometry


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(path, "file not found")
    if not path.is_file():
        raise InputError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty (0 bytes)")


def _check_size(path: Path, size: tuple[int, ...], components: int, max_voxels: int) -> None:
    voxels = int(np.prod(size, dtype=object)) * components
    if voxels > max_voxels:
        raise InputError(
            path,
            f"header declares {_fmt_size(size)} = {voxels:.3g} voxels, more than the limit of "
            f"{max_voxels:.3g}; refusing to load",
        )


def _geometry(path: Path, size, spacing, origin, direction) -> Geometry:
    try:
        return make_geometry(tuple(size), tuple(spacing), tuple(origin), tuple(direction))
    except ValueError as error:
        raise InputError(path, f"invalid header geometry: {error}") from None


def _dicom_files(folder: Path) -> list[str]:
    try:
        series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    except RuntimeError as error:
        raise InputError(folder, f"cannot scan for DICOM ({_first_line(error)})") from None
    if not series_ids:
        raise InputError(folder, "folder holds no DICOM series")
    if len(series_ids) > 1:
        raise InputError(folder, f"folder holds {len(series_ids)} DICOM series; point to a folder with one")
    return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_ids[0]))


def dicom_modality(folder: str | Path) -> str:
    """CT or MR from the DICOM Modality tag (0008,0060) of a series folder; CT when the tag says neither.

    Raises:
        InputError: the folder holds no single DICOM series.
    """
    from amoseg.labels import parse_modality

    reader = sitk.ImageFileReader()
    reader.SetFileName(_dicom_files(Path(folder))[0])
    try:
        reader.ReadImageInformation()
        tag = reader.GetMetaData("0008|0060").strip() if reader.HasMetaDataKey("0008|0060") else ""
    except RuntimeError as error:
        raise InputError(folder, f"not a readable DICOM series ({_first_line(error)})") from None
    try:
        return parse_modality(tag)
    except ValueError:
        return "CT"


def _dicom_header(folder: Path, max_voxels: int) -> Header:
    files = _dicom_files(folder)
    first = _slice_header(Path(files[0]))
    size = (first.geometry.shape[0], first.geometry.shape[1], len(files))
    _check_size(folder, size, 1, max_voxels)
    geometry = make_geometry(size, first.geometry.spacing, first.geometry.origin, first.geometry.direction)
    return Header(geometry=geometry, pixel_type=first.pixel_type, dimension=3, components=1)


def _slice_header(path: Path) -> Header:
    """Header of one DICOM slice file (a 2-D image stored as a one-slice volume)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise InputError(path, f"not a readable DICOM file ({_first_line(error)})") from None
    size = tuple(reader.GetSize()) + (1,) * (3 - reader.GetDimension())
    spacing = tuple(reader.GetSpacing()) + (1.0,) * (3 - reader.GetDimension())
    origin = tuple(reader.GetOrigin()) + (0.0,) * (3 - reader.GetDimension())
    direction = reader.GetDirection() if reader.GetDimension() == 3 else None
    return Header(
        geometry=make_geometry(size[:3], spacing[:3], origin[:3], direction),
        pixel_type=sitk.GetPixelIDValueAsString(reader.GetPixelID()),
        dimension=3,
        components=int(reader.GetNumberOfComponents()),
    )


def _gzip_nifti_complete(path: Path) -> bool:
    """Whether a .nii.gz holds all the bytes its header promises.

    ITK fills a cut-off gzip stream with zeros without complaint, so check it here. The gzip trailer
    stores the uncompressed size modulo 2**32; it is compared with the size the NIfTI header implies,
    and only on a mismatch (a cut file, or an unusual multi-member gzip) is the whole stream inflated
    to decide.
    """
    import gzip
    import struct
    import zlib

    try:
        with gzip.open(path) as stream:
            head = stream.read(352)
        with path.open("rb") as raw:
            raw.seek(-4, 2)
            (trailer_size,) = struct.unpack("<I", raw.read(4))
    except (OSError, EOFError, zlib.error, struct.error):
        return False
    expected = _nifti_byte_count(head)
    if expected is not None and expected % 2**32 == trailer_size:
        return True
    total = 0
    try:
        with gzip.open(path) as stream:
            while chunk := stream.read(1 << 24):
                total += len(chunk)
    except (OSError, EOFError, zlib.error):
        return False
    return expected is None or total >= expected


def count_nonfinite(path: str | Path) -> int:
    """Number of NaN or infinite voxels in an image file.

    ITK's NIfTI reader turns NaN into 0 without a word, so for float NIfTI files the stored voxels
    are read directly; other formats keep NaN and are read through SimpleITK.
    """
    import gzip

    path = Path(path)
    if path.name.lower().endswith((".nii", ".nii.gz")):
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as stream:
            head = stream.read(352)
            layout = _nifti_float_layout(head)
            if layout is None:
                return 0
            dtype, offset = layout
            stream.seek(offset)
            count = 0
            while chunk := stream.read(dtype.itemsize << 22):
                values = np.frombuffer(chunk[: len(chunk) - len(chunk) % dtype.itemsize], dtype=dtype)
                count += int(values.size - np.count_nonzero(np.isfinite(values)))
            return count
    array = read_image(path).array
    if not np.issubdtype(array.dtype, np.floating):
        return 0
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def _nifti_float_layout(head: bytes) -> tuple[np.dtype, int] | None:
    """(float dtype, voxel offset) of a NIfTI-1/2 header with float voxels; None otherwise."""
    import struct

    float_types = {16: "f4", 64: "f8"}
    for order in "<>":
        size = struct.unpack(order + "i", head[:4])[0] if len(head) >= 4 else 0
        if size == 348 and len(head) >= 348:
            datatype = struct.unpack(order + "h", head[70:72])[0]
            offset = int(struct.unpack(order + "f", head[108:112])[0])
        elif size == 540 and len(head) >= 352:
            datatype = struct.unpack(order + "h", head[12:14])[0]
            offset = struct.unpack(order + "q", head[168:176])[0]
        else:
            continue
        if datatype not in float_types:
            return None
        return np.dtype(order + float_types[datatype]), max(offset, size)
    return None


def _plain_nifti_complete(path: Path) -> bool:
    with path.open("rb") as stream:
        expected = _nifti_byte_count(stream.read(352))
    return expected is None or path.stat().st_size >= expected


def _nifti_byte_count(head: bytes) -> int | None:
    """Header plus voxel bytes of a NIfTI-1 or NIfTI-2 file, from its first 352 bytes."""
    import struct

    for order in "<>":
        if len(head) >= 348 and struct.unpack(order + "i", head[:4])[0] == 348:
            dims = struct.unpack(order + "8h", head[40:56])
            bitpix = struct.unpack(order + "h", head[72:74])[0]
            offset = int(struct.unpack(order + "f", head[108:112])[0])
        elif len(head) >= 352 and struct.unpack(order + "i", head[:4])[0] == 540:
            bitpix = struct.unpack(order + "h", head[14:16])[0]
            dims = struct.unpack(order + "8q", head[16:80])
            offset = struct.unpack(order + "q", head[168:176])[0]
        else:
            continue
        count = int(np.prod([max(int(d), 1) for d in dims[1 : 1 + max(int(dims[0]), 0)]], dtype=object))
        return max(offset, 348) + count * bitpix // 8
    return None


def _diagnose(path: Path, error: RuntimeError) -> str:
    """Say why a file that SimpleITK cannot open is unreadable, in words a user can act on."""
    if path.name.lower().endswith(".gz"):
        import gzip
        import zlib

        try:
            with gzip.open(path) as stream:
                while stream.read(1 << 24):
                    pass
        except (OSError, EOFError, zlib.error):
            return "gzip stream is corrupt or truncated"
    return f"not a readable image: unknown format or corrupt header ({_first_line(error)})"


def _fmt_size(size: tuple[int, ...]) -> str:
    return " x ".join(str(int(value)) for value in size)


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # ITK messages start with a file:line location; the last informative line says what went wrong.
    useful = [line for line in lines if not line.startswith(("/", "sitk::ERROR: Exception thrown"))]
    text = (useful or lines or ["unknown error"])[-1]
    return text.removeprefix("sitk::ERROR: ")[:200]
