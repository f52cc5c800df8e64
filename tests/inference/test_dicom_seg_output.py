"""`amoseg predict --output-type dicom-seg`: DICOM in, DICOM SEG out, voxel for voxel the NIfTI output of
the same prediction; every unusable input is one line naming it.

The fold folder holds a real checkpoint file of the identity-like model (as in
test_predict_postprocessing), so the CLI runs end to end: it reads each voxel's organ from its CT value.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from amoseg import api
from amoseg.cli import main
from amoseg.errors import InputError
from amoseg.inference.jobs import plan_jobs
from amoseg.io import read_label, write_image
from amoseg.io.image import Image, make_geometry
from amoseg.labels import ORGAN_BY_ID
from amoseg.model.checkpoint import Checkpoint, read_checkpoint, save_checkpoint
from amoseg.model.loading import Model
from amoseg.training.config import TrainConfig
from dicom_series import rotation, seg_frames, write_ct_series
from identity_model import IdentityLabels, identity_plan

hd = pytest.importorskip("highdicom")

SPACING = (1.5, 1.5, 4.0)
ALL_ORGANS = sorted(ORGAN_BY_ID)


def _labels() -> np.ndarray:
    labels = np.zeros((30, 26, 9), np.uint8)
    labels[4:26, 3:22, 1:8] = 6
    labels[8:14, 6:12, 2:6] = 1
    labels[18:24, 12:20, 3:7] = 3
    labels[20:23, 4:7, 5:8] = 15
    return labels


def _pixels(labels: np.ndarray) -> np.ndarray:
    return np.where(labels > 0, labels.astype(np.int16), -1000).astype(np.int16)


@pytest.fixture
def fold(cpu_plan, tmp_path, monkeypatch):
    """A fold folder of the identity model, loaded by the real ``load_model``."""
    import amoseg.model.checkpoint as checkpoint

    plan = identity_plan(cpu_plan, SPACING, (16, 16, 8))
    monkeypatch.setattr(
        checkpoint,
        "load_network",
        lambda folder, device="cpu", checkpoint=None: (
            IdentityLabels(),
            read_checkpoint(folder / "checkpoint_final.pt"),
        ),
    )
    folder = tmp_path / "run" / "fold_0"
    folder.mkdir(parents=True)
    labels = {str(organ_id): organ.name for organ_id, organ in ORGAN_BY_ID.items()}
    stored = Checkpoint(
        name="final",
        fold="0",
        plan=plan,
        topology=plan.network,
        network={},  # the identity network stands in for the weights
        config=TrainConfig().to_dict(),
        labels={"0": "background", **labels},
        dataset={},
    )
    save_checkpoint(folder / "checkpoint_final.pt", stored)
    return folder


@pytest.fixture
def model(cpu_plan) -> Model:
    plan = identity_plan(cpu_plan, SPACING, (16, 16, 8))
    labels = {organ_id: organ.name for organ_id, organ in ORGAN_BY_ID.items()}
    return Model(networks=(IdentityLabels(),), plan=plan, labels=labels, folds=("fold_0",))


def _one_error_line(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error, error
    return error


def test_cli_seg_agrees_voxel_for_voxel_with_the_nifti_output(fold, tmp_path):
    labels = _labels()
    direction = rotation(6.0, -4.0, 15.0) @ np.diag([1.0, 1.0, -1.0])  # oblique, stored head first
    series = write_ct_series(tmp_path / "CT_0001", _pixels(labels), SPACING, (-20.0, 10.0, 50.0), direction)
    model = ["-m", str(fold), "--no-tta"]
    inputs = ["predict", "-i", str(series.folder), "-o", str(tmp_path / "out")]
    assert main([*inputs, *model]) == 0
    assert main([*inputs, *model, "--output-type", "dicom-seg"]) == 0

    nifti = read_label(tmp_path / "out" / "CT_0001.nii.gz")
    to_index = np.linalg.inv(nifti.geometry.affine_lps())
    seg = hd.seg.segread(tmp_path / "out" / "CT_0001.dcm")
    # every organ the model can write is a segment, in id order, found in the label map or not
    assert [item.SegmentLabel for item in seg.SegmentSequence] == [
        "Spleen",
        "Right kidney",
        "Left kidney",
        "Gallbladder",
        "Esophagus",
        "Liver",
        "Stomach",
        "Aorta",
        "Inferior vena cava",
        "Pancreas",
        "Right adrenal gland",
        "Left adrenal gland",
        "Duodenum",
        "Bladder",
        "Prostate",
    ]
    positions = {sop_uid: position for _, sop_uid, position in series.slices}
    slice_of = {sop_uid: k for k, (_, sop_uid, _) in enumerate(series.slices)}
    covered = set()
    for frame in seg_frames(tmp_path / "out" / "CT_0001.dcm"):
        index = to_index @ np.append(positions[frame.source_sop_uid], 1.0)
        np.testing.assert_allclose(index[:2], 0.0, atol=1e-4)
        k = int(np.rint(index[2]))
        organ = ALL_ORGANS[frame.segment_number - 1]
        np.testing.assert_array_equal(frame.mask, (nifti.array[:, :, k] == organ).T)
        # and both are the labels written as CT values, on the slice that file holds
        np.testing.assert_array_equal(frame.mask, (labels[:, :, slice_of[frame.source_sop_uid]] == organ).T)
        covered.add((organ, k))
    in_nifti = {(organ, k) for organ in ALL_ORGANS for k in range(9) if (nifti.array[:, :, k] == organ).any()}
    assert covered == in_nifti and len(in_nifti) == 18  # 7 liver, 4 spleen, 4 kidney, 3 prostate


def test_seg_holds_the_organs_asked_for_and_goes_to_a_named_file(model, tmp_path):
    series = write_ct_series(tmp_path / "series", _pixels(_labels()), SPACING, patient_sex="F")
    records = api.predict(
        input=series.folder,
        output=tmp_path / "result.dcm",
        model=model,
        tta=False,
        organs="liver,prostate_uterus",
        output_type="dicom-seg",
        statistics=True,
        quiet=True,
    )
    assert records[0]["output"] == str(tmp_path / "result.dcm")
    seg = hd.seg.segread(tmp_path / "result.dcm")
    assert [
        (item.SegmentLabel, item.SegmentedPropertyTypeCodeSequence[0].CodeValue)
        for item in seg.SegmentSequence
    ] == [
        ("Liver", "10200004"),
        ("Uterus", "35039007"),
    ]
    # the extras beside it; no dataset.json, as the SEG describes its own segments
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "result.dcm",
        "series",
        "series_statistics.json",
    ]


def test_plan_puts_the_seg_in_the_output_folder_under_the_series_name(tmp_path):
    series = write_ct_series(tmp_path / "series", np.zeros((4, 4, 3), np.int16))
    (job,) = plan_jobs(series.folder, tmp_path / "out", output_type="dicom-seg")
    assert (job.target, job.output_type, job.modality) == (tmp_path / "out" / "series.dcm", "dicom-seg", "CT")
    (job,) = plan_jobs(series.folder, tmp_path / "out")
    assert (job.target, job.output_type) == (tmp_path / "out" / "series.nii.gz", "nifti")
    with pytest.raises(
        InputError, match=r"out\.nii\.gz: a DICOM SEG is written to a \.dcm file or into a folder"
    ):
        plan_jobs(series.folder, tmp_path / "out.nii.gz", output_type="dicom-seg")


@pytest.mark.parametrize("kind", ["file", "folder of files"])
def test_cli_dicom_seg_of_an_image_file_is_one_line_naming_it(fold, tmp_path, capsys, kind):
    geometry = make_geometry((30, 26, 9), SPACING)
    write_image(Image(_pixels(_labels()), geometry), tmp_path / "in" / "amos_0001.nii.gz")
    source = tmp_path / "in" / "amos_0001.nii.gz" if kind == "file" else tmp_path / "in"
    command = ["predict", "-i", str(source), "-o", str(tmp_path / "out"), "-m", str(fold)]
    assert main([*command, "--output-type", "dicom-seg"]) == 1
    error = _one_error_line(capsys)
    article = "an image file" if kind == "file" else "a folder of image files"
    assert error.startswith(f"amoseg predict: error: {source}: is {article}; ")
    assert "--output-type dicom-seg needs a DICOM series folder" in error
    assert not (tmp_path / "out").exists()


def test_cli_dicom_seg_without_highdicom_says_what_to_install(fold, tmp_path, capsys, monkeypatch):
    series = write_ct_series(tmp_path / "series", _pixels(_labels()), SPACING)
    monkeypatch.setitem(sys.modules, "highdicom", None)  # as if not installed: importing it fails
    command = ["predict", "-i", str(series.folder), "-o", str(tmp_path / "out"), "-m", str(fold)]
    assert main([*command, "--output-type", "dicom-seg"]) == 1
    assert _one_error_line(capsys) == (
        "amoseg predict: error: DICOM SEG output needs highdicom: pip install amoseg[dicom]"
    )


def _empty(folder) -> None:
    folder.mkdir()


def _two_series(folder) -> None:
    write_ct_series(folder, np.zeros((4, 4, 3), np.int16), series_number=1, prefix="A")
    write_ct_series(folder, np.zeros((4, 4, 3), np.int16), series_number=2, prefix="B")


def _missing_slice(folder) -> None:
    series = write_ct_series(folder, np.zeros((4, 4, 5), np.int16), spacing=(1.0, 1.0, 2.5))
    (folder / series.slices[2][0]).unlink()


def _uneven(folder) -> None:
    import pydicom

    series = write_ct_series(folder, np.zeros((4, 4, 5), np.int16), spacing=(1.0, 1.0, 2.5))
    header = pydicom.dcmread(folder / series.slices[2][0])
    header.ImagePositionPatient = [*series.slices[2][2][:2], series.slices[2][2][2] + 1.0]
    header.save_as(folder / series.slices[2][0])


def _no_frame_of_reference(folder) -> None:
    write_ct_series(folder, np.zeros((4, 4, 3), np.int16), frame_of_reference=False)


@pytest.mark.parametrize(
    ("make", "problem", "output_types"),
    [
        (_empty, "folder holds no DICOM series", ("nifti", "dicom-seg")),
        (_two_series, "folder holds 2 DICOM series; point to a folder with one", ("nifti", "dicom-seg")),
        (_missing_slice, "slices are not evenly spaced: a 5 mm gap", ("nifti", "dicom-seg")),
        (_uneven, "slices are not evenly spaced: a 3.5 mm gap", ("nifti", "dicom-seg")),
        (_no_frame_of_reference, "has no FrameOfReferenceUID", ("dicom-seg",)),
    ],
    ids=["no series", "two series", "missing slice", "uneven spacing", "no frame of reference"],
)
def test_cli_a_bad_dicom_folder_is_one_line_naming_it(fold, tmp_path, capsys, make, problem, output_types):
    folder = tmp_path / "series"
    make(folder)
    for output_type in output_types:
        command = ["predict", "-i", str(folder), "-o", str(tmp_path / "out"), "-m", str(fold)]
        assert main([*command, "--output-type", output_type, "--modality", "CT"]) == 1
        error = _one_error_line(capsys)
        assert error.startswith(f"amoseg predict: error: {folder}: ") and problem in error, error
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
