"""A plan's training step measured on this machine, as training runs it."""

from __future__ import annotations

import torch

from amoseg.training import calibrate
from tiny import tiny_plan


def test_the_step_is_timed_in_the_precision_training_uses_here(monkeypatch):
    plan = tiny_plan()
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    step = calibrate.measure_training_step(plan, repeats=1)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is left as it was
    assert step.seconds > 0 and step.threads == torch.get_num_threads() and step.gflops == 0.0
    native = calibrate.autocast_dtype(torch.device("cpu"), True) == torch.bfloat16
    assert step.precision == ("bfloat16" if native else "float32")
    assert step.instruction_set.startswith(torch.backends.cpu.get_cpu_capability())
    assert calibrate.measure_training_step(plan, repeats=1, amp=False).precision == "float32"
    assert not torch.are_deterministic_algorithms_enabled()  # training's setting is restored


def test_an_instruction_set_cap_is_stated_with_the_capability(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert calibrate.instruction_set().endswith(", oneDNN capped at AVX2")


def test_the_cpu_model_comes_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC  7B13 64-Core Processor\nflags\t: avx2\n")
    assert calibrate.cpu_model(str(cpuinfo)) == "AMD EPYC 7B13 64-Core Processor"
    assert calibrate.cpu_model(str(tmp_path / "missing")) == "unknown CPU"
