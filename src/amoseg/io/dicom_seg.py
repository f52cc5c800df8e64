"""A label map as a DICOM Segmentation (SEG) of the series it was predicted from.

The SEG is built by highdicom (the optional extra ``amoseg[dicom]``, imported when first needed): one
binary segment per organ the prediction could hold, coded as ``organ_codes`` says, each frame
referencing its source slice. highdicom copies every frame's ImagePositionPatient, the shared
ImageOrientationPatient and PixelSpacing from the source slice it is given, so the geometry is the
source's to the digit; this module's job is to hand it, for every source file, the label-map slice
that lies on it. That pairing goes by position, not by file name or order, and is checked: each file
must lie on one slice of the label map's grid, with its orientation, pixel spacing and size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amoseg.atomic import atomic_path
from amoseg.errors import AmosegError, InputError
from amoseg.io.dicom import series_files
from amoseg.io.image import DIRECTION_TOLERANCE, SPACING_TOLERANCE_MM, Geometry, LabelMap
from amoseg.io.organ_codes import ANATOMICAL_STRUCTURE, Term, organ_coding
from amoseg.labels import ORGAN_BY_ID

#: The file ending of a SEG output.
SEG_SUFFIX = ".dcm"

#: A segment number no label map can have (at most 255 organs): marks ids outside the organs.
_STRAY = 255

#: A source slice lies on a label-map slice when its position is within this fraction of a voxel of
#: it, along every axis: the series reader accepts slice gaps that are off by up to 1 % each.
_POSITION_TOLERANCE_VOXELS = 0.25

_INSTALL = "DICOM SEG output needs highdicom: pip install amoseg[dicom]"

#: What a SEG takes from each source slice, and why it cannot do without it.
_REQUIRED = {
    "SOPClassUID": "a SEG references each source slice by its class and instance UIDs",
    "SOPInstanceUID": "a SEG references each source slice by its class and instance UIDs",
    "FrameOfReferenceUID": "a DICOM SEG must share its source's frame of reference, so write NIfTI instead",
    "ImagePositionPatient": "its slice cannot be placed",
    "ImageOrientationPatient": "its slice cannot be placed",
    "PixelSpacing": "its pixels cannot be placed",
}


@dataclass(frozen=True)
class SegSource:
    """A source series as the SEG needs it: the slices' headers (no pixels) and their files."""

    folder: Path
    files: tuple[Path, ...]
    headers: tuple  # pydicom Datasets, in the order of ``files``


def require_highdicom() -> None:
    """Raise ``AmosegError`` saying how to install highdicom when it is missing."""
    _highdicom()


def read_seg_source(folder: Path) -> SegSource:
    """The headers of every slice of the one series in ``folder``, pixels left unread, each checked
    for what a SEG needs of it: done before any work, so an unusable series is refused up front.

    Raises:
        AmosegError: highdicom is not installed.
        InputError: the folder holds no single DICOM series; a slice is unreadable, has no
            FrameOfReferenceUID (a SEG shares its source's frame of reference) or another tag a SEG
            needs, or is a multi-frame image (a SEG is written for series of single-frame slices).
    """
    _highdicom()
    files = tuple(Path(name) for name in series_files(folder))
    headers = tuple(_read_header(folder, path) for path in files)
    for path, header in zip(files, headers, strict=True):
        _check_header(folder, path, header)
    return SegSource(folder, files, headers)


def write_dicom_seg(
    label: LabelMap,
    source: Path | SegSource,
    path: Path,
    organs: Sequence[int],
    model_id: str = "",
    parameters: Mapping[str, str] | None = None,
) -> None:
    """Write ``label`` as a DICOM SEG of the series it lies on, atomically.

    Args:
        label: a label map on the series' grid (as read by ``amoseg.io.read_image``), values AMOS ids.
        source: the series folder, or its headers from ``read_seg_source``.
        path: the file to write (``.dcm``).
        organs: the organ ids the label map can hold; one segment each, in this order, segment
            number 1 for the first, present in the map or not, so the SEG says what was looked for.
        model_id: recorded as the device serial number (the plan id of the model, say).
        parameters: recorded with the algorithm's identification (name and version: amoseg's).

    Raises:
        AmosegError: highdicom is not installed, or ``organs`` is empty.
        InputError: the series is unusable (``read_seg_source``), or the label map does not lie on
            its slices (shape, orientation, spacing or positions differ), naming the series folder.
        ValueError: ``label`` holds values that are not among ``organs``.
        OutputError: the file could not be written whole; nothing was replaced.
    """
    from amoseg import __version__

    hd = _highdicom()
    from pydicom.sr.codedict import codes

    if not organs:
        raise AmosegError(f"{path}: no organ to write, so no DICOM SEG (a SEG needs one segment or more)")
    series = source if isinstance(source, SegSource) else read_seg_source(Path(source))
    slices = _slice_of_each_file(label.geometry, series)
    segment_numbers = _segment_numbers(label.array, organs)
    # frame i: the label map's slice on file i, rows along y and columns along x as DICOM stores them
    frames = np.stack([segment_numbers[label.array[:, :, k]].T for k in slices])
    if (frames == _STRAY).any():
        stray = np.unique(label.array[~np.isin(label.array, [0, *organs])]).tolist()
        raise ValueError(f"label map holds {stray}, which are not among the organs {list(organs)}")
    sex = str(series.headers[0].get("PatientSex", "") or "")
    algorithm = hd.AlgorithmIdentificationSequence(
        name="amoseg",
        family=codes.cid7162.ArtificialIntelligence,
        version=__version__,
        parameters=dict(parameters) if parameters else None,
    )
    descriptions = [
        _segment_description(hd, number, organ, sex, algorithm) for number, organ in enumerate(organs, 1)
    ]
    headers = [_with_slice_thickness(header, label.geometry) for header in series.headers]
    try:
        seg = hd.seg.Segmentation(
            source_images=headers,
            pixel_array=frames,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            # after its source in a viewer's list of the study's series
            series_number=int(headers[0].get("SeriesNumber") or 0) + 1000,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="amoseg",
            manufacturer_model_name="amoseg",
            software_versions=__version__,
            device_serial_number=model_id or "unknown",
            content_label="AMOSEG",
            content_description="Abdominal organs (AMOS 2022 classes)",
            series_description="amoseg organs",
            # an all-empty map keeps its frames: highdicom would otherwise log that it does so
            omit_empty_frames=bool(frames.any()),
        )
    except ValueError as error:
        raise InputError(series.folder, f"cannot be referenced by a DICOM SEG: {error}") from None
    with atomic_path(path) as temporary:
        seg.save_as(temporary, enforce_file_format=True)


def _highdicom():
    try:
        import highdicom
    except ImportError:
        raise AmosegError(_INSTALL) from None
    return highdicom


def _read_header(folder: Path, path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as error:
        raise InputError(folder, f"{path.name} is not a readable DICOM file ({error})") from None


def _check_header(folder: Path, path: Path, header) -> None:
    for keyword in _REQUIRED:
        if not str(header.get(keyword, "") or "").strip():
            raise InputError(folder, f"{path.name} has no {keyword}; {_REQUIRED[keyword]}")
    if int(header.get("NumberOfFrames", 1) or 1) > 1:
        raise InputError(
            folder,
            f"{path.name} is a multi-frame image; DICOM SEG output takes a series of single-frame slices",
        )


def _slice_of_each_file(geometry: Geometry, series: SegSource) -> list[int]:
    """For each source file, the index k of the label-map slice it lies on; every k exactly once."""
    to_index = np.linalg.inv(geometry.affine_lps())
    nx, ny, nz = geometry.shape
    direction = geometry.direction_matrix
    slices = []
    for path, header in zip(series.files, series.headers, strict=True):
        orientation = np.array([float(value) for value in header.ImageOrientationPatient])
        row_column = np.concatenate([direction[:, 0], direction[:, 1]])
        if np.max(np.abs(orientation - row_column)) > DIRECTION_TOLERANCE:
            raise _off_grid(
                series, path, "its orientation (ImageOrientationPatient) differs from the label map's"
            )
        spacing = [float(value) for value in header.PixelSpacing]  # between rows (y), then columns (x)
        if (
            max(abs(spacing[0] - geometry.spacing[1]), abs(spacing[1] - geometry.spacing[0]))
            > SPACING_TOLERANCE_MM
        ):
            raise _off_grid(series, path, f"its pixel spacing {spacing} mm differs from the label map's")
        if (int(header.Columns), int(header.Rows)) != (nx, ny):
            raise _off_grid(
                series, path, f"it has {header.Columns} x {header.Rows} pixels, the label map {nx} x {ny}"
            )
        position = np.array([float(value) for value in header.ImagePositionPatient])
        index = (to_index @ np.append(position, 1.0))[:3]
        k = int(np.rint(index[2]))
        offset = np.abs(index - (0.0, 0.0, k))
        if np.max(offset) > _POSITION_TOLERANCE_VOXELS or not 0 <= k < nz:
            raise _off_grid(
                series, path, f"its position {position.round(3).tolist()} mm is on no slice of the label map"
            )
        slices.append(k)
    if sorted(slices) != list(range(nz)):
        raise InputError(
            series.folder,
            f"its {len(slices)} slices do not match the label map's {nz} one to one; was it predicted from this series?",
        )
    return slices


def _off_grid(series: SegSource, path: Path, problem: str) -> InputError:
    return InputError(series.folder, f"{path.name} does not lie on the label map's grid: {problem}")


def _segment_numbers(array: np.ndarray, organs: Sequence[int]) -> np.ndarray:
    """A lookup table from AMOS id to segment number (1 for ``organs[0]``, ...; 0 for background,
    ``_STRAY`` for any other id in ``array``)."""
    if array.size and int(array.min()) < 0:
        raise ValueError(f"label map holds {int(array.min())}; AMOS ids are not negative")
    table = np.full(max(int(array.max(initial=0)), *organs) + 1, _STRAY, np.uint8)
    table[0] = 0
    table[list(organs)] = np.arange(1, len(organs) + 1)
    return table


def _segment_description(hd, number: int, organ: int, patient_sex: str, algorithm):
    coding = organ_coding(organ, patient_sex)
    description = hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=coding.label,
        segmented_property_category=_concept(hd, ANATOMICAL_STRUCTURE),
        segmented_property_type=_concept(hd, coding.property_type),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
        display_color=hd.color.CIELabColor.from_rgb(*ORGAN_BY_ID[organ].colour),
    )
    if coding.modifier is not None:
        # highdicom has no argument for the laterality modifier: it goes inside the type's code item
        description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            _concept(hd, coding.modifier)
        ]
    return description


def _concept(hd, term: Term):
    return hd.sr.CodedConcept(value=term.value, scheme_designator=term.scheme, meaning=term.meaning)


def _with_slice_thickness(header, geometry: Geometry):
    """``header``, or a copy given the slice gap as SliceThickness where it has none.

    SliceThickness is type 2 in a CT image (present, possibly empty) but highdicom copies it into the
    SEG, where a segmentation voxel is as thick as the gap between slices.
    """
    if str(header.get("SliceThickness", "") or "").strip():
        return header
    filled = header.copy()
    filled.SliceThickness = f"{geometry.spacing[2]:.6g}"
    return filled
