"""``TrainConfig``: every training setting in one flat, frozen record, saved as ``config.json``.

Defaults follow nnU-Net v2 (SGD with Nesterov momentum 0.99, learning rate 1e-2 with polynomial decay,
weight decay 3e-5, gradient norm clipped at 12, a third of the patches centred on foreground, 250
iterations per epoch). ``TrainConfig.for_plan`` gives the cpu preset AdamW with a short warm-up and
100-iteration epochs (``CPU_PRESET_DEFAULTS``). Importing this module loads no torch.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from amoseg.atomic import read_json
from amoseg.errors import AmosegError, InputError
from amoseg.model import DEFAULT_MIRROR_AXES, FORMAT_1_MIRROR_AXES

CONFIG_VERSION = 2
FOLDS = ("0", "1", "2", "3", "4", "all")
DEVICES = ("auto", "cpu", "cuda", "mps")
OPTIMIZERS = ("sgd", "adamw")
#: The cpu preset's defaults: a few hundred steps in a short budget suit AdamW with a brief warm-up far
#: better than nnU-Net's SGD, which needs tens of thousands (docs/training.md, "The cpu preset"); two
#: thirds of the patches centred on an organ let the small ones be seen often enough in so few steps;
#: no augmentation, because in a budget of about a thousand steps the network is still learning the
#: organs and augmentation only slows it (5 minutes on the phantoms, 64 x 64 x 32 patches: mean
#: pseudo-Dice 0.80 without, 0.68 with);
#: 100 iterations per epoch give a validation every half minute or so on 2 cores (5 minutes on 24
#: phantoms: 907 iterations and pseudo-Dice 0.805 against 801-819 and 0.795-0.796 with 50).
CPU_PRESET_DEFAULTS = MappingProxyType(
    {
        "optimizer": "adamw",
        "initial_lr": 1e-2,
        "warmup_fraction": 0.03,
        "iterations_per_epoch": 100,
        "foreground_fraction": 2 / 3,
        "augment": False,
    }
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hms]?)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}


@dataclass(frozen=True)
class TrainConfig:
    """How one fold is trained.

    Attributes:
        fold: "0".."4" (five-fold cross-validation) or "all" (every case; validation on a few of them).
        seed: seeds the network's initial weights, the splits, the patches and the augmentation.
        epochs: epochs to train; the learning rate decays to zero over them.
        iterations_per_epoch: training steps per epoch (per rank under DDP).
        time_budget_s: stop after this much training time (seconds, validation included) and still
            write the final checkpoint and curves; the learning rate then decays over the budget.
        batch_size: patches per step and rank; None takes the plan's.
        optimizer: "sgd" (nnU-Net's: Nesterov momentum) or "adamw" (the cpu preset's).
        initial_lr: learning rate at the first step (at the end of the warm-up when there is one).
        warmup_fraction: share of the training over which the learning rate rises linearly from zero
            before the polynomial decay starts.
        momentum: Nesterov momentum (SGD).
        weight_decay: L2 weight decay.
        poly_exponent: lr = initial_lr * (1 - progress) ** poly_exponent, progress in [0, 1].
        grad_clip_norm: global L2 norm the gradients are clipped to.
        foreground_fraction: share of patches centred on a voxel of a foreground class; training
            draws the (organ, modality) pair uniformly among those its cases annotate and hold
            (``training.sampling``).
        augment: apply nnU-Net's data augmentation to training batches.
        mirror_axes: the axes (canonical orientation, ``DEFAULT_MIRROR_AXES``) the augmentation mirrors,
            each with probability 0.5; prediction mirrors the same axes for test-time augmentation.
        residual: residual encoder blocks (DynUNet ``res_block``) whatever the plan says.
        deep_supervision: weight the decoder's lower-resolution outputs into the loss.
        val_patches_per_case: fixed validation patches drawn per validation case.
        max_val_patches: cap on validation patches over all validation cases.
        all_fold_val_cases: validation cases for fold "all" (taken from fold 0's validation set).
        ema_weight: weight of the old value in the exponential moving average of the mean
            pseudo-Dice that picks the best checkpoint (nnU-Net: 0.9).
        device: "auto" (CUDA, else MPS, else CPU), "cpu", "cuda" or "mps".
        amp: mixed precision: bfloat16 on CUDA where supported (else float16 with a gradient scaler) and
            on CPUs with native bfloat16 instructions.
        compile: ``torch.compile`` the network.
        deterministic: deterministic algorithms (``torch.use_deterministic_algorithms``); None means on
            for CPU, off for GPUs. On CPU a resumed run then ends with the same weights as an
            uninterrupted one.
        threads: torch CPU threads; None leaves torch's default (the core count).
        config_version: format of this record.
    """

    fold: str = "0"
    seed: int = 0
    epochs: int = 1000
    iterations_per_epoch: int = 250
    time_budget_s: float | None = None
    batch_size: int | None = None
    optimizer: str = "sgd"
    initial_lr: float = 1e-2
    warmup_fraction: float = 0.0
    momentum: float = 0.99
    weight_decay: float = 3e-5
    poly_exponent: float = 0.9
    grad_clip_norm: float = 12.0
    foreground_fraction: float = 1 / 3
    augment: bool = True
    mirror_axes: tuple[int, ...] = DEFAULT_MIRROR_AXES
    residual: bool = False
    deep_supervision: bool = True
    val_patches_per_case: int = 8
    max_val_patches: int = 64
    all_fold_val_cases: int = 4
    ema_weight: float = 0.9
    device: str = "auto"
    amp: bool = True
    compile: bool = False
    deterministic: bool | None = None
    threads: int | None = None
    config_version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        problems = []
        if str(self.fold) not in FOLDS:
            problems.append(f"fold {self.fold!r} is not one of {', '.join(FOLDS)}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            problems.append("the warm-up fraction must lie in [0, 1)")
        if self.device not in DEVICES:
            problems.append(f"device {self.device!r} is not one of {', '.join(DEVICES)}")
        if self.epochs < 1 or self.iterations_per_epoch < 1:
            problems.append("epochs and iterations per epoch must be at least 1")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            problems.append("the time budget must be positive")
        if self.batch_size is not None and self.batch_size < 1:
            problems.append("the batch size must be at least 1")
        if not 0.0 <= self.foreground_fraction <= 1.0:
            problems.append("the foreground fraction must lie in [0, 1]")
        axes = tuple(int(axis) for axis in self.mirror_axes)
        if any(axis not in (0, 1, 2) for axis in axes) or len(set(axes)) != len(axes):
            problems.append(f"mirror axes {list(self.mirror_axes)} must be distinct axes among 0, 1, 2")
        if problems:
            raise AmosegError("bad training settings: " + "; ".join(problems))
        object.__setattr__(self, "fold", str(self.fold))
        object.__setattr__(self, "mirror_axes", tuple(sorted(axes)))

    @classmethod
    def for_plan(cls, plan, **overrides: Any) -> TrainConfig:
        """Defaults for a plan (``CPU_PRESET_DEFAULTS`` for the cpu preset), then ``overrides``.

        Overrides whose value is None are ignored, so CLI options left out keep the defaults.
        """
        given = {key: value for key, value in overrides.items() if value is not None}
        if plan.preset == "cpu":
            given = {**CPU_PRESET_DEFAULTS, **given}
        return cls(**given)

    def with_changes(self, **changes: Any) -> TrainConfig:
        return replace(self, **{key: value for key, value in changes.items() if value is not None})

    @property
    def total_iterations(self) -> int:
        return self.epochs * self.iterations_per_epoch

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config; keys this version does not know are refused.

        Raises:
            ValueError: unknown keys or a newer format.
        """
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}")
        version = int(data.get("config_version", CONFIG_VERSION))
        if version > CONFIG_VERSION:
            raise ValueError(f"config format {data['config_version']} is newer than this amoseg")
        if version < 2:
            data = {"mirror_axes": FORMAT_1_MIRROR_AXES, **data, "config_version": CONFIG_VERSION}
        return cls(**data)

    def save(self, path: str | Path) -> None:
        from amoseg.atomic import write_json

        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        data = read_json(path, "training config")
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError, AttributeError) as error:
            raise InputError(path, f"not a training config ({error})") from None


def parse_duration(text: str | float | int | None) -> float | None:
    """Seconds in a duration such as "10m", "90s", "1h30m", "1.5h" or "300" (seconds).

    Raises:
        AmosegError: the text is not a duration.
    """
    if text is None or isinstance(text, int | float):
        return None if text is None else float(text)
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        raise AmosegError(f"time budget {text!r} is not a duration; write e.g. 10m, 90s, 1h30m or 300")
    seconds = sum(float(number) * _SECONDS[unit] for number, unit in parts)
    if seconds <= 0:
        raise AmosegError(f"time budget {text!r} must be positive")
    return seconds


def parse_mirror_axes(text: str | tuple[int, ...] | None) -> tuple[int, ...] | None:
    """Axes in "0,1,2", "1,2" or "none" (no mirroring); a tuple or None is returned as it is.

    Raises:
        AmosegError: the text is not a list of axes.
    """
    if text is None or isinstance(text, tuple | list):
        return None if text is None else tuple(text)
    compact = text.strip().lower()
    if compact in ("none", ""):
        return ()
    try:
        return tuple(int(part) for part in compact.split(","))
    except ValueError:
        raise AmosegError(f"mirror axes {text!r} are not axes; write e.g. 1,2 or 0,1,2 or none") from None
