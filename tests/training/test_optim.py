"""Optimizer choice, learning-rate schedule (warm-up, polynomial decay) and autocast precision."""

from __future__ import annotations

import pytest
import torch

from amoseg.errors import AmosegError
from amoseg.planning.plan import Plan
from amoseg.training import optim
from amoseg.training.config import TrainConfig
from amoseg.training.optim import autocast_dtype, make_optimizer, poly_lr


def test_sgd_is_nnunets_and_adamw_is_selectable():
    model = torch.nn.Linear(3, 2)
    sgd = make_optimizer(model, TrainConfig())
    assert isinstance(sgd, torch.optim.SGD)
    group = sgd.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (
        1e-2,
        0.99,
        True,
        3e-5,
    )
    adamw = make_optimizer(model, TrainConfig(optimizer="adamw", initial_lr=2e-3, weight_decay=1e-4))
    assert isinstance(adamw, torch.optim.AdamW)
    assert (adamw.param_groups[0]["lr"], adamw.param_groups[0]["weight_decay"]) == (2e-3, 1e-4)


def test_poly_decay_without_warmup_matches_nnunet():
    config = TrainConfig(initial_lr=0.01)
    for progress in (0.0, 0.25, 0.5, 0.99):
        assert poly_lr(config, progress) == pytest.approx(0.01 * (1 - progress) ** 0.9)
    assert poly_lr(config, 1.0) == 0.0


def test_warmup_rises_linearly_then_decays_over_the_rest():
    config = TrainConfig(initial_lr=0.004, warmup_fraction=0.2)
    assert poly_lr(config, 0.0) == 0.0
    assert poly_lr(config, 0.1) == pytest.approx(0.002)
    assert poly_lr(config, 0.2) == pytest.approx(0.004)
    # Halfway through the decay part: progress 0.6 is (0.6 - 0.2) / 0.8 = 0.5 of it.
    assert poly_lr(config, 0.6) == pytest.approx(0.004 * 0.5**0.9)
    assert poly_lr(config, 1.0) == 0.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"optimizer": "rmsprop"}, "optimizer"), ({"warmup_fraction": 1.0}, "warm-up")],
)
def test_bad_optimizer_settings_are_refused(changes, message):
    with pytest.raises(AmosegError, match=message):
        TrainConfig(**changes)


def test_cpu_preset_trains_with_adamw_warmup_and_no_augmentation_gpu_presets_as_nnunet(make_tiny_plan):
    cpu_plan: Plan = make_tiny_plan()
    config = TrainConfig.for_plan(cpu_plan)
    assert (
        config.optimizer,
        config.warmup_fraction > 0,
        config.foreground_fraction,
        config.augment,
        config.iterations_per_epoch,
    ) == ("adamw", True, 2 / 3, False, 100)
    gpu_plan = Plan.from_dict({**cpu_plan.to_dict(), "preset": "fullres", "device": "cuda"})
    gpu_config = TrainConfig.for_plan(gpu_plan)
    assert (gpu_config.optimizer, gpu_config.foreground_fraction, gpu_config.augment) == ("sgd", 1 / 3, True)
    # An explicit choice wins over the preset's; None (an option left out) keeps it.
    assert TrainConfig.for_plan(cpu_plan, optimizer="sgd", initial_lr=0.01).optimizer == "sgd"
    assert TrainConfig.for_plan(cpu_plan, augment=True).augment is True
    assert TrainConfig.for_plan(cpu_plan, augment=None).augment is False


@pytest.mark.parametrize("native", [True, False])
def test_autocast_on_cpu_follows_native_bf16_support(monkeypatch, native):
    monkeypatch.setattr(optim, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, amp=False) is None
    assert autocast_dtype(cpu, amp=True) == (torch.bfloat16 if native else None)
    assert autocast_dtype(torch.device("mps"), amp=True) is None


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\nprocessor\t: 1\n")
    skylake = tmp_path / "skylake"
    skylake.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512vl avx512dq\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert "avx512_bf16" in optim.cpu_flags(str(x86)) & optim.NATIVE_BF16_FLAGS
    assert not optim.cpu_flags(str(skylake)) & optim.NATIVE_BF16_FLAGS
    assert "bf16" in optim.cpu_flags(str(arm)) & optim.NATIVE_BF16_FLAGS
    assert optim.cpu_flags(str(tmp_path / "missing")) == frozenset()


@pytest.mark.parametrize(
    "environ, allowed",
    [
        ({}, True),
        ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, False),  # the AVX2-only emulation: float32 training
        ({"ONEDNN_MAX_CPU_ISA": "avx512_core"}, False),  # AVX-512 without bfloat16
        ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, True),
        ({"ONEDNN_MAX_CPU_ISA": "ALL", "ATEN_CPU_CAPABILITY": "avx2"}, False),
        ({"ATEN_CPU_CAPABILITY": "avx512"}, True),
    ],
)
def test_an_instruction_set_cap_below_bf16_keeps_training_in_float32(monkeypatch, environ, allowed):
    assert optim.isa_allows_bf16(environ) is allowed
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    # On a CPU that has native bfloat16 (flags faked), the cap alone decides.
    monkeypatch.setattr(optim, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    optim.cpu_has_native_bf16.cache_clear()
    try:
        assert autocast_dtype(torch.device("cpu"), amp=True) == (torch.bfloat16 if allowed else None)
    finally:
        optim.cpu_has_native_bf16.cache_clear()
