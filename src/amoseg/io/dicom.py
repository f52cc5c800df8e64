"""DICOM series: which files form the volume, and whether their slices lie on one regular grid.

ITK stacks a series' slices in the order GDCM sorts them and spaces them evenly by their mean gap, so
a missing slice, a repeated one or a tilted one gives a volume on the wrong grid with only a console
warning (58 slices 5.03 mm apart with one missing become 57 slices 5.12 mm apart). Every slice's
ImagePositionPatient (0020,0032) and ImageOrientationPatient (0020,0037) are therefore checked, and a
series whose slices do not make a regular grid is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from amoseg.errors import InputError
from amoseg.io.itk_quiet import quiet_itk
from amoseg.labels import Modality, parse_modality

#: Two slice gaps agree when they differ by at most this many mm or this fraction of the typical gap,
#: whichever is larger: DICOM stores positions to about 1e-3 mm, and a missing slice doubles a gap.
GAP_TOLERANCE_MM = 0.01
GAP_TOLERANCE_FRACTION = 0.01
#: Slices share an orientation when their direction cosines differ by at most this much.
ORIENTATION_TOLERANCE = 1e-4

_POSITION_TAG = "0020|0032"
_ORIENTATION_TAG = "0020|0037"
_MODALITY_TAG = "0008|0060"


def series_files(folder: Path) -> list[str]:
    """The files of the one DICOM series in ``folder``, in GDCM's order (by position along the normal).

    Raises:
        InputError: the folder holds no DICOM series, or more than one.
    """
    try:
        with quiet_itk():
            series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
            files = (
                sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_ids[0])
                if len(series_ids) == 1
                else ()
            )
    except RuntimeError as error:
        raise InputError(folder, f"cannot scan for DICOM ({_last_line(error)})") from None
    if not series_ids:
        raise InputError(folder, "folder holds no DICOM series")
    if len(series_ids) > 1:
        raise InputError(folder, f"folder holds {len(series_ids)} DICOM series; point to a folder with one")
    return list(files)


def slice_gap(folder: Path, files: list[str]) -> float | None:
    """Check, from the slice headers alone, that ``files`` form a regular grid; return its slice gap.

    Returns:
        the distance between neighbouring slices along the slice normal, in mm; None for a series
        of one file (one slice, or a multi-frame file), which has no gaps to check.

    Raises:
        InputError: a slice without position or orientation, slices with different orientations,
            two slices at one position, or uneven gaps between slices.
    """
    if len(files) < 2:
        return None
    with quiet_itk():  # one capture for the whole series rather than one per file
        placements = [_placement(folder, Path(name), _header_reader(folder, Path(name))) for name in files]
    return _uniform_gap(folder, files, placements)


def read_series(folder: Path, files: list[str]) -> sitk.Image:
    """Read the slices ``files`` as one volume, refused unless they form a regular grid (as ``slice_gap``).

    The slice headers come with the voxels, in the same pass over the files, so the check reads
    nothing more.

    Raises:
        InputError: unreadable slices, or as ``slice_gap``.
    """
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        with quiet_itk():
            image = reader.Execute()
    except RuntimeError as error:
        raise InputError(
            folder, f"DICOM slices unreadable, a file corrupt or truncated ({_last_line(error)})"
        ) from None
    if len(files) > 1:
        placements = [
            _placement(folder, Path(name), _SeriesSliceTags(reader, index))
            for index, name in enumerate(files)
        ]
        _uniform_gap(folder, files, placements)
    return image


def dicom_modality(folder: str | Path) -> Modality | None:
    """CT or MR from the Modality tag (0008,0060) of a series folder; None when it says neither or is absent.

    Raises:
        InputError: the folder holds no single DICOM series, or its first file is unreadable.
    """
    folder = Path(folder)
    reader = _header_reader(folder, Path(series_files(folder)[0]))
    tag = reader.GetMetaData(_MODALITY_TAG).strip() if reader.HasMetaDataKey(_MODALITY_TAG) else ""
    try:
        return parse_modality(tag)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Placement:
    position: np.ndarray  # ImagePositionPatient, mm
    orientation: np.ndarray  # ImageOrientationPatient: row, then column direction cosines


class _SeriesSliceTags:
    """The tags of one slice of a series reader, asked for as from a single-file reader."""

    def __init__(self, reader: sitk.ImageSeriesReader, index: int) -> None:
        self.reader, self.index = reader, index

    def HasMetaDataKey(self, key: str) -> bool:
        return self.reader.HasMetaDataKey(self.index, key)

    def GetMetaData(self, key: str) -> str:
        return self.reader.GetMetaData(self.index, key)


def _header_reader(folder: Path, path: Path) -> sitk.ImageFileReader:
    """A reader that has read the header of one DICOM file.

    The DICOM reader is named rather than found by probing every format, and private tags are
    skipped: together twice as fast over a series' headers.
    """
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO("GDCMImageIO")
    reader.LoadPrivateTagsOff()
    try:
        with quiet_itk():
            reader.ReadImageInformation()
    except RuntimeError as error:
        raise InputError(folder, f"{path.name} is not a readable DICOM file ({_last_line(error)})") from None
    return reader


def _placement(folder: Path, path: Path, tags) -> _Placement:
    position = _numbers(folder, path, tags, _POSITION_TAG, "ImagePositionPatient", 3)
    orientation = _numbers(folder, path, tags, _ORIENTATION_TAG, "ImageOrientationPatient", 6)
    return _Placement(position, orientation)


def _numbers(folder: Path, path: Path, tags, tag: str, name: str, count: int) -> np.ndarray:
    group_element = tag.replace("|", ",")
    if not tags.HasMetaDataKey(tag):
        raise InputError(folder, f"{path.name} has no {name} ({group_element}); its slice cannot be placed")
    text = tags.GetMetaData(tag).strip()
    try:
        values = np.array([float(part) for part in text.split("\\")], dtype=float)
    except ValueError:
        values = np.array([])
    if values.size != count or not np.all(np.isfinite(values)):
        raise InputError(folder, f"{path.name} has an unreadable {name} ({group_element}): {text[:60]!r}")
    return values


def _uniform_gap(folder: Path, files: list[str], slices: list[_Placement]) -> float:
    """The common gap between neighbouring slices in mm, refusing any other arrangement.

    Positions are projected on the slice normal (the cross product of the row and column
    directions), in the order the slices are stacked.
    """
    first = slices[0].orientation
    for index, placement in enumerate(slices[1:], start=1):
        if np.max(np.abs(placement.orientation - first)) > ORIENTATION_TOLERANCE:
            raise InputError(
                folder,
                f"slices have different orientations (ImageOrientationPatient): {_name(files, 0)} "
                f"and {_name(files, index)}; a series must be one stack of parallel slices",
            )
    normal = np.cross(first[:3], first[3:])
    depths = np.array([float(np.dot(placement.position, normal)) for placement in slices])
    # Duplicates need not be neighbours: GDCM falls back to another order when positions repeat.
    by_depth = np.argsort(depths, kind="stable")
    close = np.flatnonzero(np.diff(depths[by_depth]) <= GAP_TOLERANCE_MM)
    if close.size:
        first_copy, second_copy = by_depth[close[0]], by_depth[close[0] + 1]
        raise InputError(
            folder,
            f"two slices at the same position: {_name(files, first_copy)} and {_name(files, second_copy)} "
            f"({depths[first_copy]:.4g} mm along the slice normal); remove the duplicate",
        )
    gaps = np.diff(depths)
    if np.any(np.sign(gaps) != np.sign(gaps[0])):
        raise InputError(
            folder, "slice positions go back and forth along the slice normal; cannot stack them"
        )
    sizes = np.abs(gaps)
    typical = float(np.median(sizes))
    worst = int(np.argmax(np.abs(sizes - typical)))
    if abs(sizes[worst] - typical) > max(GAP_TOLERANCE_MM, GAP_TOLERANCE_FRACTION * typical):
        hint = " (a missing slice?)" if sizes[worst] > 1.5 * typical else ""
        raise InputError(
            folder,
            f"slices are not evenly spaced: a {sizes[worst]:.4g} mm gap between slices {worst + 1} and "
            f"{worst + 2} ({_name(files, worst)}, {_name(files, worst + 1)}) where the others are "
            f"{typical:.4g} mm{hint}",
        )
    return float(np.mean(sizes))


def _name(files: list[str], index: int) -> str:
    return Path(files[index]).name


def _last_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines or ["unknown error"])[-1].removeprefix("sitk::ERROR: ")[:200]
