"""``amoseg check``: each planted problem is named in one line, exit 1 on errors, never a traceback."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from amoseg.cli import main
from amoseg.data.check import check_dataset, read_report
from amoseg.data.layout import discover
from amoseg.errors import InputError
from amoseg.io import Image, LabelMap, make_geometry, read_image, read_label, write_image
from helpers import box_case, real_dataset, write_box_dataset


def test_clean_dataset_passes(box_dataset, tmp_path, capsys):
    assert main(["check", str(box_dataset), "-o", str(tmp_path / "check.json")]) == 0
    report = json.loads((tmp_path / "check.json").read_text())
    assert report["ok"] is True
    assert report["cases_checked"] == 4
    assert report["errors"] == 0
    assert "OK: 4 cases, 0 errors" in capsys.readouterr().out


def _plant_problems(root):
    """One corrupt image, one label holding 20, one label shifted 5 mm, one missing file."""
    corrupt = root / "imagesTr" / "amos_0001.nii.gz"
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    label = read_label(root / "labelsTr" / "amos_0002.nii.gz")
    array = label.array.copy()
    array[0, 0, 0] = 20
    write_image(LabelMap(array, label.geometry), root / "labelsTr" / "amos_0002.nii.gz")
    shifted = read_label(root / "labelsTr" / "amos_0003.nii.gz")
    geometry = shifted.geometry
    moved = make_geometry(
        geometry.shape, geometry.spacing, np.add(geometry.origin, (0, 5.0, 0)), geometry.direction
    )
    write_image(LabelMap(shifted.array, moved), root / "labelsTr" / "amos_0003.nii.gz")
    (root / "imagesTr" / "amos_0004.nii.gz").unlink()


def test_planted_problems_are_each_named_in_one_line(tmp_path, capsys):
    root = write_box_dataset(tmp_path / "d", case_numbers=(1, 2, 3, 4, 501))
    _plant_problems(root)
    assert main(["check", str(root), "-o", str(tmp_path / "check.json")]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    error_lines = [line for line in captured.out.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 4, error_lines
    expected = {
        "imagesTr/amos_0001.nii.gz": "corrupt or truncated",
        "labelsTr/amos_0002.nii.gz": "label values [20] are not declared",
        "labelsTr/amos_0003.nii.gz": "origin differs by 5.000 mm",
        "imagesTr/amos_0004.nii.gz": "listed in dataset.json but missing",
    }
    for path, problem in expected.items():
        assert any(path in line and problem in line for line in error_lines), (path, error_lines)
    report = json.loads((tmp_path / "check.json").read_text())
    assert report["ok"] is False
    assert report["errors"] == 4
    read = read_report(tmp_path / "check.json")  # what the report reads back
    assert not read.ok and len(read.errors) == 4 and read.cases_checked == 5
    assert [problem.line() for problem in read.errors] == error_lines


def test_a_damaged_check_report_is_refused_naming_it(tmp_path):
    path = tmp_path / "check.json"
    path.write_text(json.dumps({"dataset": "d", "cases_checked": 1, "problems": [{"severity": "fatal"}]}))
    with pytest.raises(InputError, match="not an amoseg check report"):
        read_report(path)


def test_phantoms_pass_then_fail_with_each_planted_problem_named(phantom_dataset, tmp_path, capsys):
    """The issue's scenario: `amoseg phantom D --ct 4 --mr 2`, check D, then a damaged copy of D."""
    assert main(["check", str(phantom_dataset), "-o", str(tmp_path / "clean.json")]) == 0
    assert "OK: 6 cases, 0 errors, 0 warnings" in capsys.readouterr().out
    damaged = tmp_path / "D"
    shutil.copytree(phantom_dataset, damaged)
    cases = [case for case in discover(damaged).cases]
    corrupt, wrong_value, shifted, missing = cases[0], cases[1], cases[2], cases[4]
    corrupt.image.write_bytes(corrupt.image.read_bytes()[:300])
    label = read_label(wrong_value.label)
    array = label.array.copy()
    array[0, 0, 0] = 20
    write_image(LabelMap(array, label.geometry), wrong_value.label)
    label = read_label(shifted.label)
    geometry = label.geometry
    # 5 mm along the first image axis, whatever the case's direction.
    origin = np.add(geometry.origin, 5.0 * geometry.direction_matrix[:, 0])
    write_image(
        LabelMap(label.array, make_geometry(geometry.shape, geometry.spacing, origin, geometry.direction)),
        shifted.label,
    )
    missing.image.unlink()

    assert main(["check", str(damaged), "-o", str(tmp_path / "damaged.json")]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    error_lines = [line for line in captured.out.splitlines() if line.startswith("error:")]
    expected = [
        (corrupt.image, "corrupt or truncated"),
        (wrong_value.label, "label values [20] are not declared"),
        (shifted.label, "origin differs by 5.000 mm"),
        (missing.image, "listed in dataset.json but missing"),
    ]
    assert len(error_lines) == len(expected), error_lines
    for path, problem in expected:
        relative = str(path.relative_to(damaged))
        assert sum(relative in line and problem in line for line in error_lines) == 1, (relative, error_lines)


def test_nan_in_image_and_float_label_are_errors(tmp_path):
    root = write_box_dataset(tmp_path / "d", case_numbers=(501, 502))
    image = read_image(root / "imagesTr" / "amos_0501.nii.gz")
    array = image.array.astype(np.float32)
    array[1, 1, 1] = np.nan
    write_image(Image(array, image.geometry), root / "imagesTr" / "amos_0501.nii.gz")
    label = read_label(root / "labelsTr" / "amos_0502.nii.gz")
    write_image(Image(label.array.astype(np.float32), label.geometry), root / "labelsTr" / "amos_0502.nii.gz")
    messages = sorted(problem.line() for problem in check_dataset(root, workers=1, progress=False).errors)
    assert messages == [
        "error: imagesTr/amos_0501.nii.gz: 1 voxels are NaN or infinite",
        "error: labelsTr/amos_0502.nii.gz: label voxels are float32; a label map must have an integer type",
    ]


def test_ct_without_air_is_a_warning_not_an_error(tmp_path):
    root = write_box_dataset(tmp_path / "d", case_numbers=(1,))
    image = read_image(root / "imagesTr" / "amos_0001.nii.gz")
    write_image(
        Image(np.clip(image.array, -100, None), image.geometry), root / "imagesTr" / "amos_0001.nii.gz"
    )
    report = check_dataset(root, workers=1, progress=False)
    assert report.ok
    assert [problem.message.split(" (")[0] for problem in report.warnings] == [
        "CT has no values below -500 HU"
    ]


def test_wrong_dimension_label_is_an_error(tmp_path):
    root = write_box_dataset(tmp_path / "d", case_numbers=(1,))
    image, _ = box_case(shape=(10, 10, 10))
    label = LabelMap(np.zeros((10, 10, 10), np.uint8), image.geometry)
    write_image(label, root / "labelsTr" / "amos_0001.nii.gz")
    (problem,) = check_dataset(root, workers=1, progress=False).errors
    assert "shape 24x20x12 vs 10x10x10" in problem.message


def test_hostile_dataset_json_is_refused(tmp_path, capsys):
    root = write_box_dataset(tmp_path / "d", case_numbers=(1,))
    meta = json.loads((root / "dataset.json").read_text())
    meta["training"].append({"image": "../../secret.nii.gz", "label": "/etc/passwd"})
    (root / "dataset.json").write_text(json.dumps(meta))
    assert main(["check", str(root), "-o", str(tmp_path / "c.json")]) == 1
    out = capsys.readouterr().out
    assert "points outside the dataset folder" in out or "absolute path" in out


def test_missing_dataset_folder_is_one_line(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nowhere"), "-o", str(tmp_path / "c.json")]) == 1
    captured = capsys.readouterr()
    assert "dataset folder not found" in captured.out
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize("name", ["btcv-ct", "chaos-mr"])
def test_real_datasets_pass(name, tmp_path):
    report = check_dataset(real_dataset(name), progress=False)
    assert report.ok, [problem.line() for problem in report.errors]
    assert report.cases_checked == {"btcv-ct": 24, "chaos-mr": 16}[name]
