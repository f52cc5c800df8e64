"""``amoseg evaluate``: outputs on success; on error one line on stderr, exit 1, nothing written."""

from __future__ import annotations

import json

import pytest

from amoseg.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["evaluate", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("amoseg evaluate: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_success_writes_every_output(study, tmp_path, capsys):
    pred, ref = study
    code, out, err = run(capsys, pred, ref, "-o", tmp_path / "out", "--tolerance", "2", "--workers", "2")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "boxplot.png",
        "per_case.csv",
        "summary.json",
        "summary.md",
    ]
    assert "mDSC" in out and "2 mm for every organ" in out
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["tolerance_mm"]["liver"] == 2.0


def test_missing_prediction(study, tmp_path, capsys):
    pred, ref = study
    (pred / "amos_0002_0000.nii.gz").unlink()
    code, _, err = run(capsys, pred, ref, "-o", tmp_path / "out")
    assert code == 1
    assert_one_error_line(
        err, "no prediction for case amos_0002", str(ref / "amos_0002.nii.gz"), "or pass --allow-missing"
    )
    assert not (tmp_path / "out").exists()
    code, _, err = run(capsys, pred, ref, "-o", tmp_path / "out", "--allow-missing")
    assert code == 0, err
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["missing_predictions"] == ["amos_0002"]


def test_prediction_on_a_shifted_grid(study, tmp_path, capsys, write_labels, box_labels):
    pred, ref = study
    shifted = write_labels("pred/amos_0507_0000.nii.gz", box_labels(), origin=(0.0, 5.0, 0.0))
    code, _, err = run(capsys, pred, ref, "-o", tmp_path / "out")
    assert code == 1
    assert_one_error_line(err, str(shifted), "origin differs by 5.000 mm")
    assert not (tmp_path / "out").exists()


def test_missing_and_shifted_together_still_one_line(study, tmp_path, capsys, write_labels, box_labels):
    pred, ref = study
    (pred / "amos_0002_0000.nii.gz").unlink()
    write_labels("pred/amos_0507_0000.nii.gz", box_labels(), origin=(0.0, 5.0, 0.0))
    code, _, err = run(capsys, pred, ref, "-o", tmp_path / "out")
    assert code == 1
    assert_one_error_line(err, "2 problems", "amos_0002", "origin differs by 5.000 mm")
    assert not (tmp_path / "out").exists()


def test_bad_label_value_leaves_an_existing_output_folder_untouched(
    study, tmp_path, capsys, write_labels, box_labels
):
    pred, ref = study
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    bad = box_labels()
    bad[3, 3, 3] = 99
    path = write_labels("pred/amos_0001_0000.nii.gz", bad)
    code, _, err = run(capsys, pred, ref, "-o", out, "--workers", "2")
    assert code == 1
    assert_one_error_line(err, str(path), "label value 99, outside 0..15")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--labels", "1,99"], "label id 99 is not an AMOS organ"),
        (["--tolerance", "0"], "NSD tolerance must be more than 0 and at most 100 mm, got 0 mm"),
        (["--tolerance", "1e5"], "NSD tolerance must be more than 0 and at most 100 mm, got 100000 mm"),
        (["--tolerance", "1e308"], "at most 100 mm, got 1e+308 mm"),
        (["--labels", ""], "no organ to score: labels is empty"),
        (["--labels", " , "], "no organ to score: labels is empty"),
        (["--tolerance-profile", "nope"], "unknown tolerance profile 'nope'"),
    ],
)
def test_bad_options(study, tmp_path, capsys, extra, fragment):
    pred, ref = study
    code, _, err = run(capsys, pred, ref, "-o", tmp_path / "out", *extra)
    assert code == 1
    assert_one_error_line(err, fragment)
    assert not (tmp_path / "out").exists()


def test_tolerance_and_profile_are_exclusive(study, tmp_path, capsys):
    pred, ref = study
    with pytest.raises(SystemExit):
        main(
            [
                "evaluate",
                str(pred),
                str(ref),
                "-o",
                str(tmp_path / "o"),
                "--tolerance",
                "1",
                "--tolerance-profile",
                "flare22",
            ]
        )


def test_a_reference_stored_twice_is_refused(study, tmp_path, capsys, write_labels, box_labels):
    pred, ref = study
    write_labels("dataset/labelsTr/amos_0002.nii", box_labels(shift=3))  # beside amos_0002.nii.gz
    code, _, err = run(capsys, pred, ref, "-o", tmp_path / "out")
    assert code == 1
    assert_one_error_line(err, "2 files for amos_0002 (amos_0002.nii, amos_0002.nii.gz); keep one")
    assert not (tmp_path / "out").exists()


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(study, tmp_path, capsys):
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    pred, ref = study
    staging = tmp_path / f".out.tmp{process.pid}"
    staging.mkdir()
    (staging / "per_case.csv").write_text("case,modality\n")  # half of what a killed run wrote
    other = tmp_path / f".notes.tmp{process.pid}.txt"  # not ours: kept
    other.write_text("mine")
    code, _, err = run(capsys, pred, ref, "-o", tmp_path / "out")
    assert code == 0, err
    assert not staging.exists() and other.exists()
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == [other.name]
