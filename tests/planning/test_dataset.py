"""``amoseg plan`` on a dataset: the cpu preset measures this machine and says so; ``--no-measure``
plans for the reference machine."""

from __future__ import annotations

import torch

from amoseg.cli import main
from amoseg.planning.plan import Plan
from amoseg.training.calibrate import cpu_model


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
