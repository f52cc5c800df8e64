"""``amoseg plan`` on a dataset: the cpu preset measures this machine and says so; ``--no-measure``
plans for the reference machine. Several datasets are planned from one fingerprint over all of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from amoseg.cli import main
from amoseg.data.fingerprint import Fingerprint
from amoseg.planning.plan import Plan
from amoseg.training.calibrate import cpu_model
from helpers import two_box_datasets


def test_the_cpu_plan_records_what_it_measured_on_this_machine(phantom_dataset, tmp_path, capsys):
    dataset = str(phantom_dataset)
    assert main(["plan", dataset, "-o", str(tmp_path / "p.json"), "--preset", "cpu"]) == 0
    out = capsys.readouterr().out
    plan = Plan.load(tmp_path / "p.json")
    step = plan.measured_step
    assert step is not None and plan.estimated_step_s is None and plan.planned_step_s == step.seconds
    assert step.cpu == cpu_model() and step.threads == torch.get_num_threads() and step.gflops > 0
    assert step.instruction_set.startswith(torch.backends.cpu.get_cpu_capability())
    assert "Measuring a training step of patch" in out and f"{step.seconds:.2f} s per step measured on" in out

    assert main(["plan", dataset, "-o", str(tmp_path / "q.json"), "--preset", "cpu", "--no-measure"]) == 0
    reference = Plan.load(tmp_path / "q.json")
    assert reference.measured_step is None and reference.estimated_step_s > 0
    assert "on the reference 2 CPU cores (not measured)" in capsys.readouterr().out


def test_cases_too_small_for_a_trainable_network_are_planned_unmeasured(box_dataset, tmp_path):
    assert main(["plan", str(box_dataset), "-o", str(tmp_path / "p.json"), "--preset", "cpu"]) == 0
    plan = Plan.load(tmp_path / "p.json")
    assert plan.network.num_stages < 3 and plan.measured_step is None and plan.estimated_step_s > 0


def foreground_values(datasets: list[Path], modality: str) -> np.ndarray:
    """Every labelled voxel's intensity over the datasets' cases of one modality (AMOS's id rule), read
    with SimpleITK alone."""
    values = []
    for root in datasets:
        for image_path in sorted((root / "imagesTr").glob("amos_*.nii.gz")):
            if (int(image_path.name[5:9]) > 500) != (modality == "MR"):
                continue
            image = sitk.GetArrayFromImage(sitk.ReadImage(str(image_path)))
            label = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "labelsTr" / image_path.name)))
            values.append(image[label > 0].astype(np.float64))
    return np.concatenate(values)


def test_several_datasets_are_planned_from_one_fingerprint_over_all_their_cases(tmp_path, capsys):
    first, second = two_box_datasets(tmp_path)
    plans = tmp_path / "plans.json"
    command = ["plan", str(first), str(second), "-o", str(plans), "--preset", "cpu", "--no-measure"]
    assert main([*command, "--workers", "1"]) == 0
    fingerprint = Fingerprint.load(tmp_path / "stats")
    assert fingerprint.dataset == "boxes+second boxes"
    assert fingerprint.case_ids == {
        "amos_0001",
        "amos_0002",
        "amos_0003",
        "amos_0501",
        "amos_0004",
        "amos_0005",
        "amos_0502",
    }
    # CT comes from both datasets: its percentiles are exact over both at once, not merged summaries.
    for modality in ("CT", "MR"):
        values = foreground_values([first, second], modality)
        statistics = fingerprint.foreground_intensity[modality]
        assert statistics.voxels == values.size
        expected = np.percentile(values, [0.5, 50, 99.5])
        np.testing.assert_allclose(
            [statistics.p0_5, statistics.median, statistics.p99_5], expected, rtol=1e-6
        )
        assert statistics.mean == pytest.approx(values.mean()) and statistics.std == pytest.approx(
            values.std()
        )
    assert Plan.load(plans).normalization["CT"].mean == pytest.approx(
        foreground_values([first, second], "CT").mean()
    )


def test_datasets_planned_together_are_refused_in_one_line_when_they_cannot_share_a_cache(tmp_path, capsys):
    first, second = two_box_datasets(tmp_path)
    plans = ["-o", str(tmp_path / "plans.json"), "--preset", "cpu", "--no-measure", "--workers", "1"]
    assert main(["plan", str(first), str(first), *plans]) == 1
    assert capsys.readouterr().err.strip() == f"amoseg plan: error: {first}: dataset folder given twice"
    # A fingerprint of the first dataset alone does not plan the two: it is named, not replaced.
    assert main(["plan", str(first), *plans]) == 0
    assert main(["plan", str(first), str(second), *plans]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"describes none of the cases in {second}" in error[0]
