"""Optimizer, learning-rate schedule and precision.

nnU-Net v2's by default: SGD with Nesterov momentum 0.99 and weight decay 3e-5; learning rate
``initial * (1 - progress) ** 0.9`` where progress is the share of the planned iterations done, or of
the time budget spent, whichever is larger (so a time-budgeted run still ends with its learning rate
near zero). The cpu preset's few hundred steps suit AdamW with a short linear warm-up better
(docs/training.md, "The cpu preset"). Mixed precision: bfloat16 autocast on CUDA (float16 with a
gradient scaler where bfloat16 is missing) and on CPUs with native bfloat16 instructions.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from amoseg.training.config import TrainConfig


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.initial_lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        model.parameters(),
        lr=config.initial_lr,
        momentum=config.momentum,
        nesterov=True,
        weight_decay=config.weight_decay,
    )


def training_progress(config: TrainConfig, iteration: int, elapsed_seconds: float) -> float:
    """Share of the training done, in [0, 1]: of the iterations, or of the time budget when that is further."""
    progress = iteration / config.total_iterations
    if config.time_budget_s:
        progress = max(progress, elapsed_seconds / config.time_budget_s)
    return min(max(progress, 0.0), 1.0)


def poly_lr(config: TrainConfig, progress: float) -> float:
    """nnU-Net's polynomial decay, after the linear warm-up when the config has one."""
    warmup = config.warmup_fraction
    if progress < warmup:
        return config.initial_lr * progress / warmup
    decayed = (progress - warmup) / (1.0 - warmup)
    return config.initial_lr * (1.0 - decayed) ** config.poly_exponent


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """bfloat16 on CUDA where supported, else float16; bfloat16 on a CPU with native bfloat16
    instructions (twice as fast there; emulated elsewhere, where it would be slower than float32);
    None (float32) on MPS, on other CPUs, or without ``amp``."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


#: CPU flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic: x86's AVX512-BF16 and AMX, Arm's BF16.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16, AMX or Arm BF16) and oneDNN can use it.

    oneDNN's own check (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) also accepts AVX512 CPUs that
    only emulate bfloat16, three to four times slower than float32, so the CPU's flags decide.
    """
    try:
        if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
            return False
    except (AttributeError, RuntimeError):
        return False
    return bool(cpu_flags() & NATIVE_BF16_FLAGS) and isa_allows_bf16()


#: Instruction-set caps below native bfloat16, as ``ONEDNN_MAX_CPU_ISA`` (oneDNN's kernels) and
#: ``ATEN_CPU_CAPABILITY`` (torch's own) name them. With one set, as to measure what an AVX2-only CPU
#: does, bfloat16 would be emulated there and slower than float32, so training stays in float32.
ISA_CAPS_WITHOUT_BF16 = frozenset(
    {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI", "DEFAULT"}
)


def isa_allows_bf16(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether no instruction-set cap in ``environ`` keeps oneDNN or torch below native bfloat16."""
    caps = (
        environ.get(name, "") for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
    )
    return not any(cap.strip().upper() in ISA_CAPS_WITHOUT_BF16 for cap in caps)


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The feature flags of the first CPU in ``cpuinfo`` (empty where there is no such file)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def make_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A gradient scaler, active only for float16 (bfloat16 has float32's range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
