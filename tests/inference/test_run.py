"""`predict` on files, folders and DICOM series: outputs on the input's grid, extras, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from amoseg import api
from amoseg.cli import main
from amoseg.errors import AmosegError, InputError
from amoseg.inference.jobs import plan_jobs
from amoseg.io import Image, make_geometry, read_image, read_label, write_image
from amoseg.labels import ORGAN_BY_ID
from amoseg.model.loading import Model
from helpers import write_dicom_series
from identity_model import IdentityLabels, identity_plan

SPACING = (1.5, 1.5, 4.0)


def _labels(seed: int, shape=(30, 26, 9)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint8)
    labels[4:26, 3:22, 1:8] = 6
    labels[8:14, 6:12, 2:6] = 1
    labels[18:24, 12:20, 3:7] = rng.integers(2, 5)
    return labels


def _image(labels: np.ndarray, geometry) -> Image:
    return Image(np.where(labels > 0, labels.astype(np.int16), -1000).astype(np.int16), geometry)


@pytest.fixture
def model(cpu_plan) -> Model:
    plan = identity_plan(cpu_plan, SPACING, (16, 16, 8))
    labels = {organ_id: organ.name for organ_id, organ in ORGAN_BY_ID.items()}
    return Model(networks=(IdentityLabels(),), plan=plan, labels=labels, folds=("fold_0",))


def test_in_memory_image_gives_a_label_map_on_its_grid(model):
    geometry = make_geometry((30, 26, 9), SPACING, (3.0, 4.0, 5.0), np.diag([-1.0, -1.0, 1.0]))
    labels = _labels(0)
    prediction = api.predict_image(image=_image(labels, geometry), model=model, modality="CT", tta=False)
    assert prediction.label.geometry == geometry
    np.testing.assert_array_equal(prediction.label.array, labels)
    assert set(prediction.seconds) == {"preprocess", "network", "export"}


def test_simpleitk_and_nibabel_images_get_a_label_map_of_their_own_kind(model):
    import SimpleITK as sitk

    nibabel = pytest.importorskip("nibabel", reason="nibabel images need the amoseg[nibabel] extra")

    labels = _labels(2)
    voxels = np.where(labels > 0, labels.astype(np.int16), -1000).astype(np.int16)
    # SimpleITK's array view is [z, y, x]; its geometry is LPS, as amoseg's.
    itk_image = sitk.GetImageFromArray(voxels.transpose(2, 1, 0).copy())
    itk_image.SetSpacing(SPACING)
    itk_image.SetOrigin((3.0, 4.0, 5.0))
    itk_image.SetDirection((-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0))
    itk_label = api.predict_image(image=itk_image, model=model, modality="CT", tta=False).label
    assert isinstance(itk_label, sitk.Image) and itk_label.GetPixelID() == sitk.sitkUInt8
    assert (itk_label.GetSpacing(), itk_label.GetOrigin(), itk_label.GetDirection()) == (
        itk_image.GetSpacing(),
        itk_image.GetOrigin(),
        itk_image.GetDirection(),
    )
    np.testing.assert_array_equal(sitk.GetArrayFromImage(itk_label).transpose(2, 1, 0), labels)

    # nibabel's array is [i, j, k] and its affine RAS: x toward the patient's left here, as LPS's.
    affine = np.array([[-1.5, 0, 0, 10.0], [0, -1.5, 0, -20.0], [0, 0, 4.0, 30.0], [0, 0, 0, 1]])
    nifti = nibabel.Nifti1Image(voxels, affine)
    nifti_label = api.predict_image(image=nifti, model=model, modality="CT", tta=False).label
    assert isinstance(nifti_label, nibabel.Nifti1Image) and nifti_label.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(nifti_label.affine, affine)
    np.testing.assert_array_equal(np.asanyarray(nifti_label.dataobj), labels)

    with pytest.raises(AmosegError, match=r"^`image`: "):
        api.predict_image(image=voxels, model=model, modality="CT")


def test_folder_in_folder_out_with_extras(model, tmp_path):
    geometry = make_geometry((30, 26, 9), SPACING)
    for number in (1, 2):
        write_image(_image(_labels(number), geometry), tmp_path / "in" / f"amos_{number:04d}_0000.nii.gz")
    records = api.predict(
        input=tmp_path / "in",
        output=tmp_path / "out",
        model=model,
        tta=False,
        statistics=True,
        preview=True,
        probabilities=True,
        quiet=True,
    )
    assert [record["case_id"] for record in records] == ["amos_0001", "amos_0002"]
    for number in (1, 2):
        label = read_label(tmp_path / "out" / f"amos_{number:04d}.nii.gz")
        np.testing.assert_array_equal(label.array, _labels(number))
        statistics = json.loads((tmp_path / "out" / f"amos_{number:04d}_statistics.json").read_text())
        liver_voxels = int((_labels(number) == 6).sum())
        assert statistics["liver"]["volume_ml"] == pytest.approx(liver_voxels * 1.5 * 1.5 * 4.0 / 1000)
        assert statistics["liver"]["intensity_mean"] == pytest.approx(6.0)
        assert statistics["pancreas"]["volume_ml"] == 0.0
        assert (tmp_path / "out" / f"amos_{number:04d}_preview.png").stat().st_size > 1000
        stored = np.load(tmp_path / "out" / f"amos_{number:04d}_probabilities.npz")
        assert stored["probabilities"].shape == (16, 30, 26, 9)
        np.testing.assert_array_equal(np.argmax(stored["probabilities"], axis=0), _labels(number))
    description = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert description["labels"]["liver"] == 6 and description["labels"]["background"] == 0
    assert not [path for path in (tmp_path / "out").iterdir() if path.name.startswith(".")]


def test_single_file_to_named_file(model, tmp_path):
    geometry = make_geometry((30, 26, 9), SPACING, (0.0, 0.0, 0.0), np.diag([1.0, -1.0, 1.0]))
    write_image(_image(_labels(3), geometry), tmp_path / "scan.nrrd")
    api.predict(
        input=tmp_path / "scan.nrrd",
        output=tmp_path / "result.nii.gz",
        model=model,
        modality="CT",
        quiet=True,
    )
    result = read_label(tmp_path / "result.nii.gz")
    np.testing.assert_array_equal(result.array, _labels(3))
    assert not (tmp_path / "dataset.json").exists()


def test_dicom_series_gives_an_output_on_the_series_grid(model, tmp_path):
    labels = _labels(4)
    pixels = np.where(labels > 0, labels.astype(np.int16), -1000).astype(np.int16)
    write_dicom_series(tmp_path / "series", pixels, SPACING, (-20.0, 10.0, 50.0))
    api.predict(input=tmp_path / "series", output=tmp_path / "out", model=model, tta=False, quiet=True)
    result = read_label(tmp_path / "out" / "series.nii.gz")
    series = read_image(tmp_path / "series")
    assert result.geometry.differences(series.geometry) == []
    np.testing.assert_array_equal(result.array, labels)


def test_modality_comes_from_the_case_id_or_the_option(tmp_path):
    geometry = make_geometry((4, 4, 4))
    for name in ("amos_0007.nii.gz", "amos_0507.nii.gz"):
        write_image(Image(np.zeros((4, 4, 4), np.int16), geometry), tmp_path / "in" / name)
    assert [job.modality for job in plan_jobs(tmp_path / "in", tmp_path / "out")] == ["CT", "MR"]
    assert [job.modality for job in plan_jobs(tmp_path / "in", tmp_path / "out", "MR")] == ["MR", "MR"]


def test_unreadable_input_and_unwritable_output_are_one_line(model, tmp_path, capsys):
    (tmp_path / "broken.nii.gz").write_text("not an image")
    with pytest.raises(InputError, match="gzip stream is corrupt"):
        api.predict(
            input=tmp_path / "broken.nii.gz",
            output=tmp_path / "o.nii.gz",
            model=model,
            modality="CT",
            quiet=True,
        )
    geometry = make_geometry((30, 26, 9), SPACING)
    write_image(_image(_labels(1), geometry), tmp_path / "good.nii.gz")
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(InputError, match=r"blocker/out: output folder cannot be written \(Not a directory\)"):
        api.predict(
            input=tmp_path / "good.nii.gz",
            output=tmp_path / "blocker" / "out",
            model=model,
            modality="CT",
            quiet=True,
        )
    assert (
        main(
            [
                "predict",
                "-i",
                str(tmp_path / "nowhere.nii.gz"),
                "-o",
                str(tmp_path / "o"),
                "-m",
                str(tmp_path / "no_model"),
            ]
        )
        == 1
    )
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_torchrun_ranks_share_the_cases(model, tmp_path, monkeypatch):
    geometry = make_geometry((30, 26, 9), SPACING)
    for number in (1, 2, 3):
        write_image(_image(_labels(number), geometry), tmp_path / "in" / f"amos_{number:04d}.nii.gz")
    done = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        records = api.predict(
            input=tmp_path / "in", output=tmp_path / "out", model=model, tta=False, quiet=True
        )
        done.append([record["case_id"] for record in records])
    assert done == [["amos_0001", "amos_0003"], ["amos_0002"]]
    assert sorted(path.name for path in (tmp_path / "out").glob("amos_*.nii.gz")) == [
        "amos_0001.nii.gz",
        "amos_0002.nii.gz",
        "amos_0003.nii.gz",
    ]


def test_requested_organs_are_kept_and_checked_against_the_label_map(model, tmp_path):
    geometry = make_geometry((30, 26, 9), SPACING)
    labels = _labels(1)
    prediction = api.predict_image(
        image=_image(labels, geometry), model=model, modality="CT", tta=False, organs="liver"
    )
    np.testing.assert_array_equal(prediction.label.array, np.where(labels == 6, 6, 0))
    import dataclasses

    liver_only = dataclasses.replace(model, labels={6: "liver"})
    with pytest.raises(AmosegError, match="did not learn spleen"):
        api.predict_image(
            image=_image(labels, geometry), model=liver_only, modality="CT", organs="liver,spleen"
        )


def test_a_bad_modality_is_named_by_its_keyword(tmp_path):
    """The library speaks of its parameters; the CLI turns `modality` into --modality."""
    with pytest.raises(AmosegError, match=r"^`modality`: "):
        plan_jobs(tmp_path, tmp_path / "out", "XR")
