"""The short demo: every stage from phantoms to the report, in about a minute and a half."""

import csv
import dataclasses
import json
import math
from collections import defaultdict

import pytest
import SimpleITK as sitk

from amoseg.cli import main
from amoseg.demo import seconds_after_training_per_case
from amoseg.planning.plan import MeasuredStep, Plan
from amoseg.reporting.steps import read_steps
from tiny import tiny_plan

STEPS = ["phantoms", "check", "stats", "plan", "preprocess", "train", "predict", "evaluate", "report"]


def test_short_demo_runs_every_stage_reports_its_figures_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    arguments = ["demo", "--out", str(out), "--minutes", "1.5", "--ct", "4", "--mr", "2"]
    assert main([*arguments, "--cpu-step-seconds", "0.3"]) == 0
    printed = capsys.readouterr().out
    assert Plan.load(out / "plans.json").step_budget_s == 0.3

    assert [step.name for step in read_steps(out)] == STEPS
    assert json.loads((out / "check.json").read_text())["ok"] is True
    assert json.loads((out / "stats" / "stats.json").read_text())["meta"]["modalities"] == {"CT": 4, "MR": 2}
    assert (out / "runs" / "fold_all" / "checkpoint_final.pt").is_file()

    # Every test case is predicted on its image's exact grid.
    test_images = sorted((out / "phantoms" / "imagesTs").glob("*.nii.gz"))
    assert len(test_images) == 2
    for image_path in test_images:
        image = sitk.ReadImage(str(image_path))
        prediction = sitk.ReadImage(str(out / "predictions" / image_path.name))
        assert prediction.GetSize() == image.GetSize()
        assert prediction.GetSpacing() == image.GetSpacing()
        assert prediction.GetOrigin() == image.GetOrigin()
        assert prediction.GetDirection() == image.GetDirection()

    # The printed means are those of the per-case scores (mean over organs of the organ means).
    scores = defaultdict(lambda: defaultdict(list))
    with open(out / "evaluation" / "per_case.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["dsc"] not in ("", "nan"):
                scores[row["modality"]][row["organ"]].append(float(row["dsc"]))
    for modality in ("CT", "MR"):
        organ_means = [sum(values) / len(values) for values in scores[modality].values()]
        expected = sum(organ_means) / len(organ_means)
        assert not math.isnan(expected)
        assert f"{modality} mean DSC {expected:.3f}" in printed
    assert ("target met" in printed) != ("TARGET MISSED" in printed)
    # Every organ is annotated in the phantoms, so no part of a label map goes unscored.
    assert json.loads((out / "evaluation" / "summary.json").read_text())["unscored_prediction_ml"] == {}
    assert "Whole label maps: organs no reference annotates got none." in printed
    assert (out / "report.html").is_file()

    # The closing lines say what the result depended on: steps achieved against planned, the measured
    # step time and precision, and the organs with no voxel in any test case that has them.
    plan = json.loads((out / "plans.json").read_text())
    assert f"Training: {_last_iteration(out)} iterations in " in printed and " planned (" in printed
    assert f"in {plan['measured_step']['precision']} (" in printed and " per step, in " in printed
    missing = _not_found(out / "evaluation" / "per_case.csv")
    if missing:
        assert f"Not found in any test case that has them: {', '.join(missing)}." in printed
    else:
        assert "Every organ was found in the test cases of each modality." in printed

    # A second run reuses the phantoms and continues a training that was cut off before its end.
    phantom = out / "phantoms" / "imagesTr" / "amos_0001.nii.gz"
    first = phantom.stat().st_mtime_ns
    iterations = _last_iteration(out)
    (out / "runs" / "fold_all" / "checkpoint_final.pt").unlink()
    assert main(arguments) == 0
    assert phantom.stat().st_mtime_ns == first
    steps = [step.name for step in read_steps(out)]
    assert steps.count("phantoms") == 1 and steps.count("train") == 2
    assert _last_iteration(out) > iterations


def test_bad_demo_settings_are_one_line_and_exit_1(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--minutes", "0"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "--minutes must be positive" in error


def test_time_kept_after_training_scales_with_the_plans_step_and_windows():
    plan = tiny_plan()
    assert plan.planned_step_s is None
    assert seconds_after_training_per_case(plan) == 6.5
    measured = MeasuredStep(
        seconds=0.4, precision="float32", cpu="test", instruction_set="AVX2", threads=2, gflops=1.0
    )
    # Median case 60 x 50 x 35, patch 32 x 32 x 16, windows at most half a patch apart:
    # ceil(28 / 16) + 1 = 3, ceil(18 / 16) + 1 = 3 and ceil(19 / 8) + 1 = 4, so 36 windows.
    plan = dataclasses.replace(plan, median_shape=(60, 50, 35), patch_size=(32, 32, 16))
    assert seconds_after_training_per_case(
        dataclasses.replace(plan, measured_step=measured)
    ) == pytest.approx(0.085 * 36 * 0.4)
    assert seconds_after_training_per_case(dataclasses.replace(plan, estimated_step_s=0.3)) == pytest.approx(
        0.085 * 36 * 0.3
    )
    # An axis shorter than the patch is padded to it: one window along it.
    small = dataclasses.replace(plan, median_shape=(20, 50, 35), estimated_step_s=0.3)
    assert seconds_after_training_per_case(small) == pytest.approx(0.085 * 12 * 0.3)


def _last_iteration(out) -> int:
    return json.loads((out / "runs" / "fold_all" / "log.jsonl").read_text().splitlines()[-1])["iteration"]


def _not_found(per_case) -> list[str]:
    """ "CT Organ title" for every organ that some test case of the modality has and none got a voxel of."""
    from amoseg.labels import ORGAN_BY_NAME

    present, predicted = defaultdict(int), defaultdict(int)
    with open(per_case, newline="") as handle:
        for row in csv.DictReader(handle):
            if float(row["ref_volume_ml"]) > 0:
                key = (row["modality"], int(row["label"]), row["organ"])
                present[key] += 1
                predicted[key] += float(row["pred_volume_ml"]) > 0
    ordered = sorted(present, key=lambda key: (key[0], key[1]))
    return [f"{key[0]} {ORGAN_BY_NAME[key[2]].title}" for key in ordered if not predicted[key]]


def test_the_demo_plans_with_its_own_step_budget_unless_one_is_given(tmp_path, monkeypatch):
    import amoseg.demo

    seen = []
    monkeypatch.setattr(amoseg.demo, "run_demo", lambda settings, console=None: seen.append(settings))
    assert main(["demo", "--out", str(tmp_path / "d")]) == 0
    assert main(["demo", "--out", str(tmp_path / "d"), "--cpu-step-seconds", "0.5"]) == 0
    assert [settings.cpu_step_seconds for settings in seen] == [0.3, 0.5]
