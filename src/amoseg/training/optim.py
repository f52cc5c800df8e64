"""Optimizer, learning-rate schedule and precision, as nnU-Net v2.

SGD with Nesterov momentum 0.99 and weight decay 3e-5; learning rate ``initial * (1 - progress) ** 0.9``
where progress is the share of the planned iterations done, or of the time budget spent, whichever is
larger (so a time-budgeted run still ends with its learning rate near zero); mixed precision on CUDA.
"""

from __future__ import annotations

import torch

from amoseg.training.config import TrainConfig


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.SGD:
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
    """nnU-Net's polynomial decay."""
    return config.initial_lr * (1.0 - progress) ** config.poly_exponent


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """bfloat16 on CUDA where supported, else float16; None (float32) on CPU and MPS or without ``amp``."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def make_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A gradient scaler, active only for float16 (bfloat16 has float32's range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
