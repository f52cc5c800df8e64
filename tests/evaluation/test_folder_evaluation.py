from __future__ import annotations

import math
import re

import numpy as np
import pytest

from amoseg.errors import AmosegError
from amoseg.evaluation import evaluate_folder


def test_dataset_json_gives_labels_and_cases_match_across_naming_styles(study):
    pred, ref = study
    evaluation = evaluate_folder(pred, ref, workers=1)
    assert [case.case_id for case in evaluation.cases] == ["amos_0001", "amos_0002", "amos_0507"]
    assert [case.modality for case in evaluation.cases] == ["CT", "CT", "MR"]
    assert evaluation.labels == (1, 4, 6)  # annotated_labels of REF/../dataset.json
    assert evaluation.tolerances_mm == {1: 1.0, 4: 1.0, 6: 1.0}
    for case in evaluation.cases:
        spleen, gallbladder, liver = case.organs
        assert math.isnan(gallbladder.dsc) and math.isnan(gallbladder.nsd)
        assert spleen.dsc == pytest.approx(2 * 80 / 200) and liver.dsc == pytest.approx(2 * 324 / 756)
        assert spleen.nsd == liver.nsd == 1.0  # shifted by 1 voxel of 1 mm: every surface within 1 mm
    assert evaluation.groups["CT"].cases == 2 and evaluation.groups["MR"].cases == 1
    assert evaluation.groups["all"].not_a_number == 3


def test_labels_override_and_profile(study):
    pred, ref = study
    evaluation = evaluate_folder(pred, ref, labels="6,spleen", tolerance_profile="flare22", workers=1)
    assert evaluation.labels == (1, 6)
    assert evaluation.tolerances_mm == {1: 3.0, 6: 5.0}
    assert evaluation.tolerance_profile == "flare22"


def test_parallel_and_serial_runs_agree(study):
    pred, ref = study
    serial = evaluate_folder(pred, ref, workers=1)
    parallel = evaluate_folder(pred, ref, workers=2)
    assert repr(serial.cases) == repr(parallel.cases)  # repr: NaN == NaN


def test_missing_prediction_fails_in_one_line_unless_allowed(study):
    pred, ref = study
    (pred / "amos_0002_0000.nii.gz").unlink()
    with pytest.raises(AmosegError, match="no prediction for case amos_0002") as error:
        evaluate_folder(pred, ref, workers=1)
    assert "\n" not in str(error.value) and "pass `allow_missing` to score" in str(error.value)
    evaluation = evaluate_folder(pred, ref, workers=1, allow_missing=True)
    assert evaluation.missing_predictions == ("amos_0002",)
    missing = evaluation.cases[1]
    assert missing.organs[0].dsc == 0.0 and missing.organs[0].nsd == 0.0


def test_several_problems_share_one_line(study, write_labels, box_labels):
    pred, ref = study
    (pred / "amos_0002_0000.nii.gz").unlink()
    write_labels("pred/amos_0001_0000.nii.gz", box_labels(), origin=(0.0, 0.0, 5.0))
    with pytest.raises(AmosegError) as error:
        evaluate_folder(pred, ref, workers=1)
    message = str(error.value)
    assert message.startswith("2 problems:") and "\n" not in message
    assert "no prediction for case amos_0002" in message and "origin differs by 5.000 mm" in message


def test_two_predictions_for_one_case_are_refused(study, write_labels, box_labels):
    pred, ref = study
    write_labels("pred/amos_0001.nii.gz", box_labels())
    with pytest.raises(AmosegError, match="2 predictions for case amos_0001"):
        evaluate_folder(pred, ref, workers=1)


def test_predictions_without_reference_are_reported_not_scored(study, write_labels, box_labels):
    pred, ref = study
    write_labels("pred/amos_0099.nii.gz", box_labels())
    evaluation = evaluate_folder(pred, ref, workers=1)
    assert evaluation.unmatched_predictions == ("amos_0099",)
    assert len(evaluation.cases) == 3


def test_single_files(study):
    pred, ref = study
    evaluation = evaluate_folder(pred / "amos_0507_0000.nii.gz", ref / "amos_0507.nii.gz")
    assert [case.case_id for case in evaluation.cases] == ["amos_0507"]
    assert evaluation.labels == (1, 4, 6)  # dataset.json beside the file's folder
    with pytest.raises(AmosegError, match="both be folders or both be single files"):
        evaluate_folder(pred, ref / "amos_0507.nii.gz")


def test_reference_folder_without_labels(tmp_path, study):
    pred, _ = study
    (tmp_path / "empty").mkdir()
    with pytest.raises(AmosegError, match="holds no label maps"):
        evaluate_folder(pred, tmp_path / "empty")


def test_label_value_outside_range_stops_the_run(study, write_labels, box_labels):
    pred, ref = study
    bad = box_labels()
    bad[0, 0, 0] = 16
    path = write_labels("pred/amos_0507_0000.nii.gz", bad)
    for workers in (1, 2):
        with pytest.raises(AmosegError, match=re.escape(f"{path}: prediction holds label value 16")):
            evaluate_folder(pred, ref, workers=workers)


def test_ignore_mask_folder_needs_a_mask_per_case(study, write_labels, box_labels):
    pred, ref = study
    for case_id in ("amos_0001", "amos_0002"):
        write_labels(f"ignore/{case_id}.nii.gz", box_labels() * 0)
    with pytest.raises(AmosegError, match="no ignore mask for case amos_0507"):
        evaluate_folder(pred, ref, ignore_mask=pred.parent / "ignore", workers=1)
    write_labels("ignore/amos_0507.nii.gz", box_labels() * 0)
    masked = evaluate_folder(pred, ref, ignore_mask=pred.parent / "ignore", workers=1)
    assert repr(masked.cases) == repr(evaluate_folder(pred, ref, workers=1).cases)


def test_unlisted_reference_cases_take_the_dataset_channel_modality(tmp_path):
    """chaos-style ids (below 501) in an MR dataset are MR even when dataset.json does not list them."""
    import json

    from amoseg.evaluation.folder import plan_cases, reference_info
    from amoseg.io import LabelMap, make_geometry, write_image

    root = tmp_path / "mr"
    label = LabelMap(np.zeros((4, 4, 4), np.uint8), make_geometry((4, 4, 4)))
    write_image(label, root / "labelsTr" / "chaos_0005.nii.gz")
    write_image(label, tmp_path / "pred" / "chaos_0005.nii.gz")
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "MR"}}))
    info = reference_info(root / "labelsTr")
    plans, _, _ = plan_cases(tmp_path / "pred", root / "labelsTr", info)
    assert [plan.modality for plan in plans] == ["MR"]
