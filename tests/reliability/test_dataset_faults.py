"""Dataset faults met by `check`, `stats`, `plan` and `preprocess`: cases lost without a word, label
values only `check` refused, hostile dataset.json files, outputs written into the dataset."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from amoseg.cli import main
from amoseg.io import LabelMap, read_label, write_image
from helpers import box_case, one_error_line, tree_snapshot, write_box_dataset


def _problems(capsys) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith(("error:", "warning:"))]


def test_one_name_stored_twice_is_an_error_not_a_silent_pick(tmp_path, capsys):
    root = write_box_dataset(tmp_path / "D", listed=False)
    image, _ = box_case(seed=7)
    write_image(image, root / "imagesTr" / "amos_0001.nii")  # beside amos_0001.nii.gz
    assert main(["check", str(root), "-o", str(tmp_path / "check.json")]) == 1
    assert any(
        "2 files for amos_0001 (amos_0001.nii, amos_0001.nii.gz); keep one" in line
        for line in _problems(capsys)
    )
    plans = tmp_path / "plans.json"
    assert main(["plan", str(root), "-o", str(plans), "--preset", "cpu", "--no-measure"]) == 0
    capsys.readouterr()
    assert main(["preprocess", str(root), "--plan", str(plans), "-o", str(tmp_path / "pre")]) == 1
    assert "failed amos_0001: error: amos_0001: imagesTr: 2 files for amos_0001" in capsys.readouterr().out
    assert not list((tmp_path / "pre").glob("*/amos_0001"))


def test_images_tr_being_a_file_fails_the_check(tmp_path, capsys):
    root = write_box_dataset(tmp_path / "D", listed=False)
    shutil.move(root / "imagesTr", root / "imagesTs")  # the cases stay, as test cases
    (root / "imagesTr").write_text("not a folder")
    assert main(["check", str(root), "-o", str(tmp_path / "check.json")]) == 1
    assert "error: imagesTr: is a file, not a folder; its cases cannot be read" in _problems(capsys)


def test_a_case_refused_by_discovery_fails_preprocessing(tmp_path, capsys):
    root = write_box_dataset(tmp_path / "D")
    meta = json.loads((root / "dataset.json").read_text())
    meta["training"].append({"image": "../outside.nii.gz", "label": "./labelsTr/amos_0001.nii.gz"})
    (root / "dataset.json").write_text(json.dumps(meta))
    plans = tmp_path / "plans.json"
    assert main(["plan", str(root), "-o", str(plans), "--preset", "cpu", "--no-measure"]) == 0
    capsys.readouterr()
    # It used to be dropped silently, with exit 0.
    assert main(["preprocess", str(root), "--plan", str(plans), "-o", str(tmp_path / "pre")]) == 1
    captured = capsys.readouterr()
    assert "points outside the dataset folder" in captured.out
    one_error_line(captured.err, "1 of 5 cases failed")
    assert len(list((tmp_path / "pre").glob("*/amos_*/properties.json"))) == 4


def test_stats_reports_what_discovery_refused(tmp_path, capsys):
    root = write_box_dataset(tmp_path / "D")
    meta = json.loads((root / "dataset.json").read_text())
    meta["training"].append({"image": "./imagesTr/amos_0009.nii.gz", "label": "./labelsTr/amos_0009.nii.gz"})
    (root / "dataset.json").write_text(json.dumps(meta))
    assert main(["stats", str(root), "-o", str(tmp_path / "stats"), "--no-plots"]) == 0
    assert "skipped amos_0009: error: imagesTr/amos_0009.nii.gz: listed in dataset.json but missing" in (
        capsys.readouterr().out
    )
    assert main(["stats", str(root), "-o", str(tmp_path / "strict"), "--strict", "--no-plots"]) == 1


@pytest.mark.parametrize("command", ["check", "stats"])
def test_check_and_stats_never_write_into_the_dataset(tmp_path, capsys, command):
    root = write_box_dataset(tmp_path / "D")
    before = tree_snapshot(root)
    output = root / ("check.json" if command == "check" else "stats")
    assert main([command, str(root), "-o", str(output)]) == 1
    one_error_line(
        capsys.readouterr().err, str(output), "inside the dataset folder; inputs are never modified"
    )
    assert tree_snapshot(root) == before


def _relabel(root, case_id, change):
    path = root / "labelsTr" / f"{case_id}.nii.gz"
    label = read_label(path)
    write_image(LabelMap(change(label.array), label.geometry), path)
    return path


def test_a_label_value_check_refuses_is_refused_by_preprocess_too(tmp_path, capsys):
    root = write_box_dataset(tmp_path / "D")
    path = _relabel(root, "amos_0002", lambda array: np.where(array == 1, 16, array).astype(np.uint8))
    assert main(["check", str(root), "-o", str(tmp_path / "check.json")]) == 1
    capsys.readouterr()
    plans = tmp_path / "plans.json"
    assert main(["plan", str(root), "-o", str(plans), "--preset", "cpu", "--no-measure"]) == 0
    capsys.readouterr()
    assert main(["preprocess", str(root), "--plan", str(plans), "-o", str(tmp_path / "pre")]) == 1
    out = capsys.readouterr().out
    assert f"failed amos_0002: {path}: label values [16] are not declared in dataset.json labels" in out
    assert not list((tmp_path / "pre").glob("*/amos_0002"))


@pytest.mark.parametrize(
    ("dtype", "value"), [(np.uint16, 65535), (np.uint32, 4_000_000_000), (np.int16, -1), (np.int32, -(2**31))]
)
def test_huge_or_negative_label_ids_are_one_problem_not_a_huge_histogram(tmp_path, capsys, dtype, value):
    # A histogram up to 4e9 would need 32 GB; check used to build one.
    root = write_box_dataset(tmp_path / "D")
    _relabel(root, "amos_0003", lambda array: np.where(array == 6, value, array.astype(dtype)).astype(dtype))
    assert main(["check", str(root), "-o", str(tmp_path / "check.json"), "--workers", "1"]) == 1
    assert f"label values [{value}] are not declared" in "\n".join(_problems(capsys))


def test_a_dataset_json_nested_a_hundred_thousand_deep_is_one_line(tmp_path, capsys):
    root = write_box_dataset(tmp_path / "D")
    (root / "dataset.json").write_text("[" * 100_000 + "]" * 100_000)
    for argv in (
        ["check", str(root), "-o", str(tmp_path / "c.json")],
        ["stats", str(root), "-o", str(tmp_path / "s")],
        ["plan", str(root), "-o", str(tmp_path / "p.json")],
    ):
        assert main(argv) == 1
        captured = capsys.readouterr()
        assert "JSON nested too deeply" in captured.out + captured.err
        assert "Traceback" not in captured.err and "RecursionError" not in captured.out


def test_a_case_whose_modality_nothing_declares_fails_the_check(tmp_path, capsys):
    image, label = box_case()
    write_image(image, tmp_path / "D" / "imagesTr" / "patient_0042.nii.gz")
    write_image(label, tmp_path / "D" / "labelsTr" / "patient_0042.nii.gz")
    assert main(["check", str(tmp_path / "D"), "-o", str(tmp_path / "check.json")]) == 1
    assert any("CT or MR is not declared" in line for line in _problems(capsys))


def test_a_read_only_dataset_goes_through_every_stage_untouched(tmp_path, capsys):
    root = write_box_dataset(tmp_path / "D")
    before = tree_snapshot(root)
    paths = [root, *root.rglob("*")]
    for path in paths:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        work = tmp_path / "work"
        assert main(["check", str(root), "-o", str(work / "check.json")]) == 0
        assert main(["stats", str(root), "-o", str(work / "stats"), "--no-plots"]) == 0
        assert (
            main(["plan", str(root), "-o", str(work / "plans.json"), "--preset", "cpu", "--no-measure"]) == 0
        )
        assert (
            main(["preprocess", str(root), "--plan", str(work / "plans.json"), "-o", str(work / "pre")]) == 0
        )
    finally:
        for path in paths:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert tree_snapshot(root) == before


def test_stats_killed_mid_run_leaves_nothing_half_written_and_reruns(phantom_dataset, tmp_path, dead_pid):
    import signal
    import subprocess
    import sys
    import time

    output = tmp_path / "stats"
    output.mkdir()
    leftover = output / f".stats.tmp{dead_pid}.json"  # what a run killed while writing leaves
    leftover.write_text('{"meta": ')
    process = subprocess.Popen(
        [sys.executable, "-m", "amoseg", "stats", str(phantom_dataset), "-o", str(output), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(3.0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    for path in output.glob("*.json"):  # whatever is there is whole
        json.loads(path.read_text())
    assert main(["stats", str(phantom_dataset), "-o", str(output), "--workers", "1"]) == 0
    assert json.loads((output / "stats.json").read_text())["meta"]["cases"] == 6
    assert not [path.name for path in output.iterdir() if path.name.startswith(".")]


def _nan_voxels(path):
    from amoseg.io import Image, read_image

    image = read_image(path)
    array = image.array.astype(np.float32)
    array[3, 4, 5], array[6, 7, 8] = np.nan, np.inf
    write_image(Image(array, image.geometry), path)
    return "2 voxels are NaN or infinite"


def _wrong_checksum(path):
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the CRC-32 of the gzip trailer; the length field stays intact
    path.write_bytes(bytes(data))
    return "gzip checksum failed"


@pytest.mark.parametrize("damage", [_nan_voxels, _wrong_checksum])
def test_a_damaged_image_is_refused_by_every_stage_that_reads_it(tiny_model, tmp_path, capsys, damage):
    root = write_box_dataset(tmp_path / "D")
    plans = tmp_path / "plans.json"
    assert main(["plan", str(root), "-o", str(plans), "--preset", "cpu", "--no-measure"]) == 0
    image = root / "imagesTr" / "amos_0002.nii.gz"
    problem = damage(image)
    capsys.readouterr()
    assert main(["check", str(root), "-o", str(tmp_path / "check.json")]) == 1
    assert f"error: imagesTr/amos_0002.nii.gz: {problem}" in capsys.readouterr().out
    assert main(["stats", str(root), "-o", str(tmp_path / "stats"), "--no-plots"]) == 0
    assert f"skipped amos_0002: {image}: {problem}" in capsys.readouterr().out
    assert main(["stats", str(root), "-o", str(tmp_path / "strict"), "--strict"]) == 1
    one_error_line(capsys.readouterr().err, problem)
    assert main(["preprocess", str(root), "--plan", str(plans), "-o", str(tmp_path / "pre")]) == 1
    assert f"failed amos_0002: {image}: {problem}" in capsys.readouterr().out
    assert main(["predict", "-i", str(image), "-o", str(tmp_path / "out"), "-m", str(tiny_model)]) == 1
    one_error_line(capsys.readouterr().err, str(image), problem)
