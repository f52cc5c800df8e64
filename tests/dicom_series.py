"""A real-looking CT series for DICOM tests: one SimpleITK-written file per slice with the tags a scanner
writes (patient, study, series and frame-of-reference UIDs, position, orientation, thickness), in any
orientation, the files named in an order unrelated to their positions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

_ROOT = "1.2.826.0.1.3680043.2.1125.7"


@dataclass(frozen=True)
class WrittenSeries:
    """What a test knows about the series it wrote, to check a reader or a writer against.

    Attributes:
        folder: the series folder.
        study_uid, series_uid, frame_of_reference_uid: the UIDs every slice carries.
        slices: per slice index k of the written volume (its third axis): file name, SOP Instance
            UID and ImagePositionPatient (LPS, mm).
        orientation: ImageOrientationPatient, the row then the column direction cosines.
    """

    folder: Path
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    slices: tuple[tuple[str, str, tuple[float, float, float]], ...]
    orientation: tuple[float, ...]


def rotation(degrees_about_x: float, degrees_about_y: float, degrees_about_z: float) -> np.ndarray:
    """A proper rotation (determinant +1), as a direction matrix whose columns are the array axes."""
    x, y, z = np.radians([degrees_about_x, degrees_about_y, degrees_about_z])
    about_x = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    about_y = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    about_z = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    return about_z @ about_y @ about_x


def write_ct_series(
    folder: Path,
    array: np.ndarray,
    spacing=(0.8, 0.8, 2.5),
    origin=(-40.0, -30.0, 120.0),
    direction: np.ndarray | None = None,
    *,
    series_number: int = 1,
    patient_sex: str = "M",
    modality: str = "CT",
    frame_of_reference: bool = True,
    seed: int = 0,
    prefix: str = "IM",
) -> WrittenSeries:
    """Write ``array`` (int16, indexed [x, y, z]) as a series of single-frame CT images.

    ``direction``'s columns are the world directions of the array axes; its third column may point
    against the slice normal (the cross product of the first two), as in a series stored head first.
    The files are named and numbered (InstanceNumber) in a shuffled order, so only the positions
    can tell how the slices stack. Each name starts with ``prefix``, so two series can share a folder.
    """
    import SimpleITK as sitk

    direction = np.eye(3) if direction is None else np.asarray(direction, dtype=float)
    folder.mkdir(parents=True, exist_ok=True)
    study_uid, series_uid = f"{_ROOT}.1", f"{_ROOT}.2.{series_number}"
    frame_uid = f"{_ROOT}.3"
    volume = sitk.GetImageFromArray(np.ascontiguousarray(array.T))
    volume.SetSpacing(tuple(float(value) for value in spacing))
    volume.SetOrigin(tuple(float(value) for value in origin))
    volume.SetDirection(tuple(direction.ravel()))
    orientation = (*direction[:, 0], *direction[:, 1])
    shared = {
        "0008|0060": modality,
        "0010|0010": "Phantom^Abdomen",
        "0010|0020": "AMOSEG-TEST",
        "0010|0040": patient_sex,
        "0018|0050": f"{spacing[2]:.6f}",
        "0020|000d": study_uid,
        "0020|000e": series_uid,
        "0020|0011": str(series_number),
        "0020|0037": "\\".join(f"{value:.8f}" for value in orientation),
    }
    if frame_of_reference:
        shared["0020|0052"] = frame_uid
    order = np.random.default_rng(seed).permutation(array.shape[2])
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    slices = []
    for k in range(array.shape[2]):
        image = volume[:, :, k]
        position = volume.TransformIndexToPhysicalPoint((0, 0, k))
        name, sop_uid = f"{prefix}{order[k]:04d}.dcm", f"{_ROOT}.4.{series_number}.{k}"
        tags = {
            **shared,
            "0008|0018": sop_uid,
            "0020|0013": str(int(order[k]) + 1),
            "0020|0032": "\\".join(f"{value:.6f}" for value in position),
        }
        for tag, value in tags.items():
            image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / name))
        writer.Execute(image)
        slices.append((name, sop_uid, tuple(round(value, 6) for value in position)))
    return WrittenSeries(
        folder, study_uid, series_uid, frame_uid, tuple(slices), tuple(round(v, 8) for v in orientation)
    )


@dataclass(frozen=True)
class SegFrame:
    """One frame of a SEG, read with pydicom alone: which segment, on which source slice, where."""

    segment_number: int
    source_sop_uid: str
    position: tuple[float, float, float]
    mask: np.ndarray  # bool, [row, column]


def seg_frames(path: Path) -> list[SegFrame]:
    """The frames of a binary SEG file from its per-frame functional groups."""
    import pydicom

    seg = pydicom.dcmread(path)
    pixels = seg.pixel_array.reshape(int(seg.NumberOfFrames), int(seg.Rows), int(seg.Columns))
    frames = []
    for groups, mask in zip(seg.PerFrameFunctionalGroupsSequence, pixels, strict=True):
        source = groups.DerivationImageSequence[0].SourceImageSequence[0]
        frames.append(
            SegFrame(
                int(groups.SegmentIdentificationSequence[0].ReferencedSegmentNumber),
                str(source.ReferencedSOPInstanceUID),
                tuple(float(value) for value in groups.PlanePositionSequence[0].ImagePositionPatient),
                mask.astype(bool),
            )
        )
    return frames
