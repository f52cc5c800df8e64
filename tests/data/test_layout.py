"""Dataset discovery: both layouts, both naming styles, modality rules, partial labels, hostile paths."""

from __future__ import annotations

import json
import shutil

import pytest

from amoseg.data.layout import DATASET_JSON, discover, discover_together, find_dataset_json, resolve_modality
from amoseg.data.naming import split_channels
from amoseg.errors import InputError
from amoseg.io import write_image
from helpers import box_case, real_dataset, renamed_copy, write_box_dataset


def test_listed_dataset_with_original_amos_label_spellings(tmp_path):
    root = write_box_dataset(tmp_path / "d", case_numbers=(1, 7, 501))
    meta = json.loads((root / "dataset.json").read_text())
    meta["labels"] = {
        "0": "background",
        "1": "spleen",
        "4": "gall bladder",
        "6": "liver",
        "8": "arota",
        "9": "postcava",
    }
    (root / "dataset.json").write_text(json.dumps(meta))
    dataset = discover(root)
    assert dataset.labels == {1: "spleen", 4: "gallbladder", 6: "liver", 8: "aorta", 9: "inferior_vena_cava"}
    assert [case.case_id for case in dataset.cases] == ["amos_0001", "amos_0007", "amos_0501"]
    # AMOS's dataset.json names its one channel CT; the id rule still makes 501 MR.
    assert [case.modality for case in dataset.cases] == ["CT", "CT", "MR"]
    assert dataset.problems == ()


def test_scanned_layout_with_channel_suffixes(tmp_path):
    root = write_box_dataset(tmp_path / "d", case_numbers=(3, 502), listed=False, suffix=True)
    dataset = discover(root)
    assert [(case.case_id, case.split, case.modality) for case in dataset.cases] == [
        ("amos_0003", "train", "CT"),
        ("amos_0502", "train", "MR"),
    ]
    assert all(
        case.label is not None and case.label.name == f"{case.case_id}.nii.gz" for case in dataset.cases
    )


def test_scanned_test_split_without_labels_keeps_plain_names(tmp_path):
    root = write_box_dataset(tmp_path / "d", case_numbers=(1,), listed=False)
    (root / "imagesTs").mkdir()
    for name in ("amos_0002.nii.gz", "amos_0004.nii.gz"):
        shutil.copy(root / "imagesTr" / "amos_0001.nii.gz", root / "imagesTs" / name)
    test_cases = discover(root).split("test")
    assert [case.case_id for case in test_cases] == ["amos_0002", "amos_0004"]
    assert all(case.label is None for case in test_cases)


def test_channel_suffix_rule():
    assert split_channels(["amos_0001", "amos_0004"]) == {
        "amos_0001": ("amos_0001", 0),
        "amos_0004": ("amos_0004", 0),
    }
    assert split_channels(["la_003_0000", "la_004_0000"]) == {
        "la_003_0000": ("la_003", 0),
        "la_004_0000": ("la_004", 0),
    }
    assert split_channels(["amos_0001_0000"], known_case_ids=["amos_0001"]) == {
        "amos_0001_0000": ("amos_0001", 0)
    }


def test_modality_resolution_order():
    assert resolve_modality("amos_0501", "CT") == "MR"
    assert resolve_modality("amos_0501", "CT", forced=True) == "CT"
    assert resolve_modality("chaos_0005", "MR") == "MR"
    assert resolve_modality("amos_0600", None) == "MR"
    # Only AMOS's own names follow the id rule: other trailing numbers say nothing.
    assert resolve_modality("case_0600", None) is None
    assert resolve_modality("chaos_0001", None) is None
    assert resolve_modality("anonymous", None) is None


def test_a_case_whose_modality_nothing_declares_is_an_error_naming_it(tmp_path):
    image, label = box_case()
    write_image(image, tmp_path / "imagesTr" / "patient_0042.nii.gz")
    write_image(label, tmp_path / "labelsTr" / "patient_0042.nii.gz")
    dataset = discover(tmp_path)
    assert dataset.cases == ()
    [problem] = dataset.problems
    assert problem.severity == "error" and problem.case == "patient_0042"
    assert "CT or MR is not declared" in problem.message and "channel_names" in problem.message


def test_per_case_modality_override(tmp_path):
    root = write_box_dataset(tmp_path / "d", case_numbers=(1, 2))
    meta = json.loads((root / "dataset.json").read_text())
    meta["training"][1]["modality"] = "MRI"
    meta["case_modalities"] = {"amos_0001": "MR"}
    (root / "dataset.json").write_text(json.dumps(meta))
    assert [case.modality for case in discover(root).cases] == ["MR", "MR"]


@pytest.mark.parametrize("bad_path", ["../../x.nii.gz", "/etc/passwd", "imagesTr/../../outside.nii.gz"])
def test_paths_leaving_the_dataset_are_errors(tmp_path, bad_path):
    root = write_box_dataset(tmp_path / "d", case_numbers=(1,))
    meta = json.loads((root / "dataset.json").read_text())
    meta["training"].append({"image": bad_path, "label": "./labelsTr/amos_0001.nii.gz"})
    (root / "dataset.json").write_text(json.dumps(meta))
    errors = [problem for problem in discover(root).problems if problem.severity == "error"]
    assert len(errors) == 1
    assert bad_path in errors[0].message
    assert "outside" in errors[0].message or "absolute" in errors[0].message


def test_missing_unlisted_and_duplicate_files_are_reported(tmp_path):
    root = write_box_dataset(tmp_path / "d", case_numbers=(1, 2, 3))
    meta = json.loads((root / "dataset.json").read_text())
    meta["validation"] = [meta["training"][0]]  # amos_0001 twice
    meta["training"] = meta["training"][:2]  # amos_0003 present but unlisted
    (root / "dataset.json").write_text(json.dumps(meta))
    (root / "labelsTr" / "amos_0002.nii.gz").unlink()
    lines = sorted(problem.line() for problem in discover(root).problems)
    assert lines == [
        "error: amos_0001: duplicate case id (in train and validation)",
        "error: labelsTr/amos_0002.nii.gz: listed in dataset.json but missing",
        "warning: imagesTr/amos_0003.nii.gz: present but not listed in dataset.json",
        "warning: labelsTr/amos_0003.nii.gz: present but not listed in dataset.json",
    ]


def test_malformed_dataset_json_is_one_clear_error(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    (root / "dataset.json").write_text("{not json")
    with pytest.raises(InputError, match=r"dataset\.json: not valid JSON"):
        discover(root)


def test_label_with_wrong_amos_id_is_refused(tmp_path):
    root = write_box_dataset(tmp_path / "d", case_numbers=(1,))
    meta = json.loads((root / "dataset.json").read_text())
    meta["labels"] = {"background": 0, "liver": 1}
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="AMOS uses 6 for liver"):
        discover(root)


def test_real_ct_set_partial_labels_and_absences():
    dataset = discover(real_dataset("btcv-ct"))
    assert len(dataset.cases) == 24
    assert dataset.annotated_labels == tuple(range(1, 13))
    assert {case.modality for case in dataset.cases} == {"CT"}
    absent = {case.case_id: case.absent_labels for case in dataset.cases if case.absent_labels}
    assert absent == {"btcv_0012": (4,), "btcv_0024": (4,)}
    assert all(case.image.name == f"{case.case_id}_0000.nii.gz" for case in dataset.cases)


def test_real_mr_set_is_mr_despite_low_case_ids():
    dataset = discover(real_dataset("chaos-mr"))
    assert len(dataset.cases) == 16
    assert dataset.annotated_labels == (1, 2, 3, 6)
    assert {case.modality for case in dataset.cases} == {"MR"}


def test_the_dataset_json_of_a_folder_is_its_own_else_its_parents(tmp_path):
    labels = tmp_path / "dataset" / "labelsTs"
    labels.mkdir(parents=True)
    assert find_dataset_json(labels) is None
    (tmp_path / "dataset" / DATASET_JSON).write_text("{}")
    assert find_dataset_json(labels) == tmp_path / "dataset" / DATASET_JSON
    assert find_dataset_json(tmp_path / "dataset") == tmp_path / "dataset" / DATASET_JSON
    (labels / DATASET_JSON).write_text("{}")
    assert find_dataset_json(labels) == labels / DATASET_JSON
    # Only one level up: a grandparent's dataset.json describes another folder.
    assert find_dataset_json(labels / "nested") == labels / DATASET_JSON
    assert find_dataset_json(tmp_path / "dataset" / "imagesTs" / "more") is None


def test_datasets_planned_together_need_distinct_folders_names_and_case_ids(tmp_path):
    first = write_box_dataset(tmp_path / "boxes")
    second = renamed_copy(first, tmp_path / "second", "second boxes", id_offset=100)
    found = discover_together([first, second])
    assert [dataset.name for dataset in found] == ["boxes", "second boxes"]
    assert {case.case_id for case in found[1].cases} == {
        "amos_0101",
        "amos_0102",
        "amos_0103",
        "amos_0601",
    }

    with pytest.raises(InputError, match="dataset folder given twice"):
        discover_together([first, tmp_path / "." / "boxes"])
    same_name = renamed_copy(first, tmp_path / "same", "boxes", id_offset=100)
    with pytest.raises(
        InputError,
        match=r"is named 'boxes', as .*boxes is \(dataset.json's \"name\", else the folder's\); datasets planned",
    ):
        discover_together([first, same_name])
    clash = renamed_copy(first, tmp_path / "clash", "clash")
    with pytest.raises(InputError, match=r"case amos_0001 is also in .*boxes \(4 shared case ids\)"):
        discover_together([first, clash])
