"""A label map written as a DICOM SEG: standard codes, references to the source series, frames on the
source slices whatever the orientation and the order of the files, and one-line refusals."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from amoseg.errors import AmosegError, InputError
from amoseg.io import LabelMap, make_geometry, read_image
from amoseg.io.dicom_seg import SegSource, read_seg_source, write_dicom_seg
from amoseg.io.organ_codes import ANATOMICAL_STRUCTURE, LEFT, ORGAN_CODES, RIGHT, organ_coding
from dicom_series import rotation, seg_frames, write_ct_series
from helpers import tree_snapshot

hd = pytest.importorskip("highdicom")
pydicom = pytest.importorskip("pydicom")

SPACING = (0.8, 0.7, 2.5)

#: The codes the segments must carry, written out from SNOMED CT by hand: label, type, side.
EXPECTED = {
    1: ("Spleen", "78961009", None),
    2: ("Right kidney", "64033007", "24028007"),
    3: ("Left kidney", "64033007", "7771000"),
    4: ("Gallbladder", "28231008", None),
    5: ("Esophagus", "32849002", None),
    6: ("Liver", "10200004", None),
    7: ("Stomach", "69695003", None),
    8: ("Aorta", "15825003", None),
    9: ("Inferior vena cava", "64131007", None),
    10: ("Pancreas", "15776009", None),
    11: ("Right adrenal gland", "23451007", "24028007"),
    12: ("Left adrenal gland", "23451007", "7771000"),
    13: ("Duodenum", "38848004", None),
    14: ("Bladder", "89837001", None),
}

ORIENTATIONS = {
    "axial": np.eye(3),
    # rows run right to left and the slices are stored head first: both flipped
    "flipped": np.diag([-1.0, 1.0, -1.0]),
    # tilted about all three axes, the third axis against the slice normal
    "oblique": rotation(12.0, -8.0, 25.0) @ np.diag([1.0, 1.0, -1.0]),
}


def _labels(shape=(7, 6, 5)) -> np.ndarray:
    """Organs in blobs that no flip, transposition or slice shift maps onto themselves."""
    labels = np.zeros(shape, np.uint8)
    labels[0:3, 0:2, 0:2] = 6
    labels[4:7, 1:3, 1:4] = 1
    labels[1:2, 4:6, 3:5] = 2
    labels[5, 5, 4] = 15
    return labels


def _write(tmp_path, labels, direction=None, **options):
    pixels = np.where(labels > 0, labels.astype(np.int16), -1000).astype(np.int16)
    return write_ct_series(tmp_path / "series", pixels, SPACING, (-40.0, 25.0, 110.0), direction, **options)


def _label_as_read(folder) -> LabelMap:
    """The label map on the grid amoseg reads the series on, from the label ids stored as CT values."""
    image = read_image(folder)
    return LabelMap(np.where(image.array > 0, image.array, 0).astype(np.uint8), image.geometry)


@pytest.mark.parametrize("organ_id", sorted(EXPECTED))
def test_each_organ_has_its_snomed_code_as_the_standards_tables_list_it(organ_id):
    from pydicom.sr.codedict import codes

    label, type_value, side = EXPECTED[organ_id]
    coding = ORGAN_CODES[organ_id]
    assert (coding.label, coding.property_type.value, coding.modifier and coding.modifier.value) == (
        label,
        type_value,
        side,
    )
    # the standard's own lists: category (CID 7150), type (CID 7151), laterality (CID 244)
    listed = {(code.value, code.scheme_designator, code.meaning) for code in codes.cid7151.concepts.values()}
    assert (coding.property_type.value, "SCT", coding.property_type.meaning) in listed
    categories = {(code.value, code.meaning) for code in codes.cid7150.concepts.values()}
    assert (ANATOMICAL_STRUCTURE.value, ANATOMICAL_STRUCTURE.meaning) in categories
    sides = {(code.value, code.meaning) for code in codes.cid244.concepts.values()}
    assert {(RIGHT.value, "Right"), (LEFT.value, "Left")} <= sides


@pytest.mark.parametrize(
    ("sex", "label", "value"),
    [("M", "Prostate", "41216001"), ("F", "Uterus", "35039007"), ("O", "Prostate/uterus", "91772007")],
)
def test_prostate_or_uterus_is_coded_by_the_patients_sex(tmp_path, sex, label, value):
    from pydicom.sr.codedict import codes

    labels = np.zeros((3, 3, 2), np.uint8)
    labels[1, 1, :] = 15
    series = _write(tmp_path, labels, patient_sex=sex)
    write_dicom_seg(_label_as_read(series.folder), series.folder, tmp_path / "seg.dcm", [15])
    segment = hd.seg.segread(tmp_path / "seg.dcm").SegmentSequence[0]
    assert segment.SegmentLabel == label
    code = segment.SegmentedPropertyTypeCodeSequence[0]
    assert code.CodeValue == value
    listed = {(item.value, item.scheme_designator, item.meaning) for item in codes.cid7151.concepts.values()}
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) in listed
    assert organ_coding(15, sex.lower()).label == label


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_seg_frames_lie_on_the_source_slices_and_hold_the_label_map(tmp_path, orientation):
    labels = _labels()
    series = _write(tmp_path, labels, ORIENTATIONS[orientation])
    before = tree_snapshot(series.folder)
    organs = [6, 1, 2, 10, 15]  # pancreas (10) is looked for but absent
    write_dicom_seg(_label_as_read(series.folder), series.folder, tmp_path / "seg.dcm", organs, "plan-1")

    assert tree_snapshot(series.folder) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["seg.dcm", "series"]
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    assert seg.SOPClassUID == pydicom.uid.SegmentationStorage
    assert seg.SegmentationType == "BINARY"
    assert (seg.StudyInstanceUID, seg.FrameOfReferenceUID) == (
        series.study_uid,
        series.frame_of_reference_uid,
    )
    assert seg.SeriesInstanceUID != series.series_uid
    assert (seg.PatientID, seg.DeviceSerialNumber) == ("AMOSEG-TEST", "plan-1")
    (referenced,) = seg.ReferencedSeriesSequence
    assert referenced.SeriesInstanceUID == series.series_uid
    sop_uids = {sop_uid for _, sop_uid, _ in series.slices}
    assert {item.ReferencedSOPInstanceUID for item in referenced.ReferencedInstanceSequence} == sop_uids

    segments = [
        (
            item.SegmentNumber,
            item.SegmentLabel,
            item.SegmentedPropertyCategoryCodeSequence[0].CodeValue,
            item.SegmentedPropertyTypeCodeSequence[0].CodeValue,
            item.SegmentAlgorithmType,
            item.SegmentAlgorithmName,
        )
        for item in seg.SegmentSequence
    ]
    assert segments == [
        (1, "Liver", "91723000", "10200004", "AUTOMATIC", "amoseg"),
        (2, "Spleen", "91723000", "78961009", "AUTOMATIC", "amoseg"),
        (3, "Right kidney", "91723000", "64033007", "AUTOMATIC", "amoseg"),
        (4, "Pancreas", "91723000", "15776009", "AUTOMATIC", "amoseg"),
        (5, "Prostate", "91723000", "41216001", "AUTOMATIC", "amoseg"),
    ]
    kidney_type = seg.SegmentSequence[2].SegmentedPropertyTypeCodeSequence[0]
    assert kidney_type.SegmentedPropertyTypeModifierCodeSequence[0].CodeValue == "24028007"

    shared = seg.SharedFunctionalGroupsSequence[0]
    np.testing.assert_allclose(
        [float(value) for value in shared.PlaneOrientationSequence[0].ImageOrientationPatient],
        series.orientation,
        atol=1e-6,
    )
    assert [float(value) for value in shared.PixelMeasuresSequence[0].PixelSpacing] == [0.7, 0.8]

    slice_of = {sop_uid: k for k, (_, sop_uid, _) in enumerate(series.slices)}
    found = set()
    for frame in seg_frames(tmp_path / "seg.dcm"):
        k = slice_of[frame.source_sop_uid]
        np.testing.assert_allclose(frame.position, series.slices[k][2], atol=1e-5)
        organ = organs[frame.segment_number - 1]
        np.testing.assert_array_equal(frame.mask, (labels[:, :, k] == organ).T)
        found.add((organ, k))
    assert found == {(organ, k) for organ in organs for k in range(5) if (labels[:, :, k] == organ).any()}


def test_frames_follow_the_slice_positions_not_the_order_the_headers_come_in(tmp_path):
    labels = _labels()
    series = _write(tmp_path, labels, ORIENTATIONS["oblique"])
    read = read_seg_source(series.folder)
    shuffled = SegSource(read.folder, read.files[::-1], read.headers[::-1])
    write_dicom_seg(_label_as_read(series.folder), shuffled, tmp_path / "seg.dcm", [6, 1, 2, 15])
    slice_of = {sop_uid: k for k, (_, sop_uid, _) in enumerate(series.slices)}
    for frame in seg_frames(tmp_path / "seg.dcm"):
        organ = [6, 1, 2, 15][frame.segment_number - 1]
        np.testing.assert_array_equal(frame.mask, (labels[:, :, slice_of[frame.source_sop_uid]] == organ).T)


def test_an_empty_label_map_keeps_its_segments_and_frames(tmp_path):
    series = _write(tmp_path, np.zeros((4, 3, 3), np.uint8))
    write_dicom_seg(_label_as_read(series.folder), series.folder, tmp_path / "seg.dcm", [6, 1])
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    assert [item.SegmentLabel for item in seg.SegmentSequence] == ["Liver", "Spleen"]
    assert all(not frame.mask.any() for frame in seg_frames(tmp_path / "seg.dcm"))


def test_a_label_map_off_the_series_grid_is_refused_naming_the_series(tmp_path):
    series = _write(tmp_path, _labels())
    label = _label_as_read(series.folder)
    geometry = label.geometry
    shifted = make_geometry(
        geometry.shape, geometry.spacing, np.add(geometry.origin, (0.0, 0.0, 1.25)), geometry.direction
    )
    with pytest.raises(InputError, match=r"does not lie on the label map's grid: its position") as caught:
        write_dicom_seg(LabelMap(label.array, shifted), series.folder, tmp_path / "seg.dcm", [1, 2, 6, 15])
    assert caught.value.path == series.folder
    padded = np.zeros((7, 6, 6), np.uint8, order="F")
    padded[:, :, :5] = label.array
    taller = make_geometry((7, 6, 6), geometry.spacing, geometry.origin, geometry.direction)
    with pytest.raises(InputError, match=r"its 5 slices do not match the label map's 6 one to one"):
        write_dicom_seg(LabelMap(padded, taller), series.folder, tmp_path / "seg.dcm", [1, 2, 6, 15])
    assert not (tmp_path / "seg.dcm").exists()


def test_label_ids_outside_the_organs_are_refused(tmp_path):
    series = _write(tmp_path, _labels())
    with pytest.raises(
        ValueError, match=r"label map holds \[2, 15\], which are not among the organs \[1, 6\]"
    ):
        write_dicom_seg(_label_as_read(series.folder), series.folder, tmp_path / "seg.dcm", [1, 6])


def test_a_series_without_a_frame_of_reference_is_refused_before_any_work(tmp_path):
    series = _write(tmp_path, _labels(), frame_of_reference=False)
    with pytest.raises(InputError, match=r"has no FrameOfReferenceUID; a DICOM SEG must share") as caught:
        read_seg_source(series.folder)
    assert caught.value.path == series.folder


def test_without_highdicom_the_error_says_what_to_install(tmp_path, monkeypatch):
    series = _write(tmp_path, _labels())
    monkeypatch.setitem(sys.modules, "highdicom", None)  # as if not installed: importing it fails
    with pytest.raises(AmosegError) as caught:
        write_dicom_seg(_label_as_read(series.folder), series.folder, tmp_path / "seg.dcm", [1])
    assert str(caught.value) == "DICOM SEG output needs highdicom: pip install amoseg[dicom]"
    with pytest.raises(AmosegError, match=r"pip install amoseg\[dicom\]"):
        read_seg_source(series.folder)


def test_a_multi_frame_file_is_refused_before_any_work(tmp_path):
    series = _write(tmp_path, np.zeros((4, 4, 1), np.uint8))
    path = series.folder / series.slices[0][0]
    header = pydicom.dcmread(path)
    header.NumberOfFrames = 2
    header.save_as(path)
    with pytest.raises(InputError) as caught:
        read_seg_source(series.folder)
    assert (caught.value.path, caught.value.problem) == (
        series.folder,
        f"{path.name} is a multi-frame image; DICOM SEG output takes a series of single-frame slices",
    )
