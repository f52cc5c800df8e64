"""`amoseg predict` faults: outputs that would destroy inputs, modalities guessed from names, bad
window steps, failed writes, leftovers of killed runs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from amoseg import api
from amoseg.cli import main
from amoseg.io import Image, make_geometry, read_image, read_label, write_image
from helpers import one_error_line, real_dataset, run_amoseg, tree_snapshot, write_dicom_series


@pytest.fixture
def ct_scan(phantom_dataset, tmp_path):
    """A CT phantom copied to ``tmp/scan.nii.gz``."""
    scan = tmp_path / "scan.nii.gz"
    shutil.copy(phantom_dataset / "imagesTr" / "amos_0001.nii.gz", scan)
    return scan


def test_output_equal_to_input_is_refused_and_the_input_kept(tiny_model, ct_scan, capsys):
    before = ct_scan.read_bytes()
    assert main(["predict", "-i", str(ct_scan), "-o", str(ct_scan), "-m", str(tiny_model)]) == 1
    one_error_line(capsys.readouterr().err, str(ct_scan), "output would overwrite the input")
    assert ct_scan.read_bytes() == before


@pytest.mark.parametrize("through_link", [False, True])
def test_a_folder_predicted_into_itself_is_refused(
    tiny_model, phantom_dataset, tmp_path, capsys, through_link
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("amos_0001.nii.gz", "amos_0003.nii.gz"):  # plain names: outputs would take them
        shutil.copy(phantom_dataset / "imagesTr" / name, inputs / name)
    output = inputs
    if through_link:
        output = tmp_path / "link"
        output.symlink_to(inputs, target_is_directory=True)
    before = tree_snapshot(inputs)
    assert main(["predict", "-i", str(inputs), "-o", str(output), "-m", str(tiny_model)]) == 1
    one_error_line(capsys.readouterr().err, "choose another output")
    assert tree_snapshot(inputs) == before


def test_a_datasets_own_dataset_json_is_not_replaced(tiny_model, phantom_dataset, tmp_path, capsys):
    dataset = tmp_path / "D"
    shutil.copytree(phantom_dataset, dataset)
    before = (dataset / "dataset.json").read_bytes()
    argv = ["predict", "-i", str(dataset / "imagesTs"), "-o", str(dataset), "-m", str(tiny_model)]
    assert main(argv) == 1
    one_error_line(capsys.readouterr().err, "dataset.json: belongs to a dataset")
    assert (dataset / "dataset.json").read_bytes() == before
    assert not list(dataset.glob("amos_*.nii.gz"))


def test_two_files_for_one_case_are_refused(tiny_model, phantom_dataset, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    image = read_image(phantom_dataset / "imagesTr" / "amos_0001.nii.gz")
    write_image(image, inputs / "amos_0001.nii.gz")
    write_image(image, inputs / "amos_0001.nii")
    assert main(["predict", "-i", str(inputs), "-o", str(tmp_path / "out"), "-m", str(tiny_model)]) == 1
    one_error_line(capsys.readouterr().err, "2 files for amos_0001", "amos_0001.nii, amos_0001.nii.gz")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("step", ["0", "-1", "nan", "2", "inf"])
def test_a_bad_window_step_is_one_line(tiny_model, ct_scan, tmp_path, capsys, step):
    out = tmp_path / "out.nii.gz"
    assert main(["predict", "-i", str(ct_scan), "-o", str(out), "-m", str(tiny_model), "--step", step]) == 1
    one_error_line(capsys.readouterr().err, "window step must be a fraction of the patch in (0, 1]")
    assert not out.exists()


def test_a_failed_write_is_an_error_and_the_old_output_stays(tiny_model, ct_scan, tmp_path):
    out = tmp_path / "out" / "scan.nii.gz"
    assert run_amoseg("predict", "-i", ct_scan, "-o", out, "-m", tiny_model).returncode == 0
    before = out.read_bytes()
    assert len(before) > 4096
    result = run_amoseg("predict", "-i", ct_scan, "-o", out, "-m", tiny_model, file_size_limit=4096)
    assert result.returncode == 1
    one_error_line(result.stderr, str(out), "file too large")
    assert "Predicted" not in result.stdout
    assert out.read_bytes() == before
    assert [path.name for path in out.parent.iterdir()] == ["scan.nii.gz"]  # no temporary left


def test_a_killed_runs_temporaries_go_and_the_users_files_stay(tiny_model, ct_scan, tmp_path, dead_pid):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".scan.tmp{dead_pid}.nii.gz"
    stale.write_bytes(b"half a file")
    users = out / f".holiday.tmp{dead_pid}.jpg"  # matches the pattern, but is not this run's output
    users.write_bytes(b"photo")
    api.predict(input=ct_scan, output=out, model=tiny_model, quiet=True)
    assert not stale.exists() and users.exists()
    assert (out / "scan.nii.gz").is_file()


def _copy_mr(phantom_dataset, path):
    shutil.copy(phantom_dataset / "imagesTr" / "amos_0501.nii.gz", path)
    return path


@pytest.mark.parametrize("name", ["chaos_0001_0000.nii.gz", "patient_0042.nii.gz", "scan.nii.gz"])
def test_an_mr_not_named_by_amos_is_read_as_mr_and_the_reason_printed(
    tiny_model, phantom_dataset, tmp_path, capsys, name
):
    # The trailing number's AMOS rule used to call all three CT (ids <= 500, or no number at all).
    scan = _copy_mr(phantom_dataset, tmp_path / name)
    assert main(["predict", "-i", str(scan), "-o", str(tmp_path / "out"), "-m", str(tiny_model)]) == 0
    out = capsys.readouterr().out
    case_id = name.removesuffix(".nii.gz").removesuffix("_0000")
    assert f"{case_id}: MR, because its intensities 0.." in out and "never negative" in out


def test_a_ct_not_named_by_amos_is_read_as_ct_from_its_air(tiny_model, ct_scan, tmp_path):
    [record] = api.predict(input=ct_scan, output=tmp_path / "out", model=tiny_model, quiet=True)
    assert record["modality"] == "CT"


def test_amos_names_keep_the_id_rule_and_modality_overrides(tiny_model, phantom_dataset, tmp_path):
    scan = _copy_mr(phantom_dataset, tmp_path / "amos_0007.nii.gz")  # an MR under a CT id
    [record] = api.predict(input=scan, output=tmp_path / "a", model=tiny_model, quiet=True)
    assert record["modality"] == "CT"
    [record] = api.predict(input=scan, output=tmp_path / "b", model=tiny_model, modality="MR", quiet=True)
    assert record["modality"] == "MR"


def test_an_image_that_decides_nothing_asks_for_the_modality(tiny_model, phantom_dataset, tmp_path, capsys):
    # A CT clipped to a soft-tissue window, as the BTCV set is: negative values, but no air.
    image = read_image(phantom_dataset / "imagesTr" / "amos_0001.nii.gz")
    clipped = Image(np.clip(image.array, -125, 275).astype(np.int16), image.geometry)
    scan = tmp_path / "scan.nii.gz"
    write_image(clipped, scan)
    out = tmp_path / "out"
    assert main(["predict", "-i", str(scan), "-o", str(out), "-m", str(tiny_model)]) == 1
    one_error_line(capsys.readouterr().err, str(scan), "cannot tell CT from MR", "pass --modality CT or MR")
    assert main(["predict", "-i", str(scan), "-o", str(out), "-m", str(tiny_model), "--modality", "CT"]) == 0


def test_a_dicom_series_whose_tag_says_neither_is_decided_by_its_intensities(
    tiny_model, phantom_dataset, tmp_path, capsys
):
    image = read_image(phantom_dataset / "imagesTr" / "amos_0501.nii.gz")  # MR intensities
    series = tmp_path / "series"
    write_dicom_series(series, image.array.astype(np.int16), image.geometry.spacing, (0.0, 0.0, 0.0), "OT")
    assert main(["predict", "-i", str(series), "-o", str(tmp_path / "out"), "-m", str(tiny_model)]) == 0
    assert "series: MR, because its intensities" in capsys.readouterr().out


def test_a_dicom_series_says_its_modality_tag(tiny_model, phantom_dataset, tmp_path, capsys):
    image = read_image(phantom_dataset / "imagesTr" / "amos_0501.nii.gz")
    series = tmp_path / "series"
    write_dicom_series(series, image.array.astype(np.int16), image.geometry.spacing, (0.0, 0.0, 0.0), "MR")
    assert main(["predict", "-i", str(series), "-o", str(tmp_path / "out"), "-m", str(tiny_model)]) == 0
    assert "series: MR, because the DICOM Modality tag says MR" in capsys.readouterr().out


@pytest.mark.realdata
def test_real_chaos_mr_without_its_dataset_json_is_read_as_mr(tiny_model, tmp_path):
    source = real_dataset("chaos-mr") / "imagesTr" / "chaos_0005_0000.nii.gz"
    scan = tmp_path / "chaos_0005_0000.nii.gz"
    shutil.copy(source, scan)
    [record] = api.predict(input=scan, output=tmp_path / "out", model=tiny_model, quiet=True)
    assert record["modality"] == "MR"


@pytest.mark.realdata
def test_real_clipped_ct_without_its_dataset_json_asks_for_the_modality(tiny_model, tmp_path, capsys):
    scan = tmp_path / "btcv_0001_0000.nii.gz"
    shutil.copy(real_dataset("btcv-ct") / "imagesTr" / "btcv_0001_0000.nii.gz", scan)
    assert main(["predict", "-i", str(scan), "-o", str(tmp_path / "out"), "-m", str(tiny_model)]) == 1
    one_error_line(capsys.readouterr().err, "cannot tell CT from MR", "-125..275")


def test_the_label_description_is_written_for_a_folder(tiny_model, phantom_dataset, tmp_path):
    api.predict(input=phantom_dataset / "imagesTs", output=tmp_path / "out", model=tiny_model, quiet=True)
    description = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert "plan_id" in description
    # A second run into the same folder replaces its own description without complaint.
    api.predict(input=phantom_dataset / "imagesTs", output=tmp_path / "out", model=tiny_model, quiet=True)
    labels = read_label(next((tmp_path / "out").glob("amos_*.nii.gz")))
    assert labels.array.dtype == np.uint8
    assert make_geometry((1, 1, 1)) is not None
