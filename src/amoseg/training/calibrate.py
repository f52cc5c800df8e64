"""Measure a plan's training step on this machine, as training will run it: the cpu preset is sized
by it (``planning.planner.size_by_measurement``), and ``amoseg train`` compares its own steps with it.

The step is the trainer's own (``trainer.train_step``: deep-supervision loss, gradient clipping, the
optimizer of the plan's training config) on random patches of the plan's size, in the precision
training will use here (bfloat16 autocast only where the CPU computes it natively and no
instruction-set cap forbids it, ``optim.autocast_dtype``) and with the determinism setting training
uses on a CPU (``training.backend``, including its allocator setting), in the layout training uses
(``DeepSupervision.place``).
"""

from __future__ import annotations

import os
import time

import torch

from amoseg.model.network import build_training_network
from amoseg.planning.plan import MeasuredStep, Plan
from amoseg.training.backend import keep_freed_memory, training_backend
from amoseg.training.batch import Batch
from amoseg.training.config import TrainConfig
from amoseg.training.optim import autocast_dtype, make_optimizer, make_scaler
from amoseg.training.trainer import train_step

#: Untimed steps first: the first ones allocate and pick kernels.
WARMUP_STEPS = 1


def measure_training_step(plan: Plan, *, repeats: int = 2, amp: bool = True) -> MeasuredStep:
    """The best of ``repeats`` timed training steps of ``plan``'s network on this CPU.

    ``gflops`` is left 0: the planner fills it from its compute model's FLOPs.
    """
    device = torch.device("cpu")
    config = TrainConfig.for_plan(plan, amp=amp)
    dtype = autocast_dtype(device, config.amp)
    # The caller's generators and torch settings are left as they were: planning from Python must not
    # reseed or reconfigure a program. The allocator setting stays (it cannot be read back), as it
    # does after training, which it is measured for.
    keep_freed_memory()
    with training_backend(deterministic=config.deterministic is not False), torch.random.fork_rng(devices=[]):
        generator = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        model = build_training_network(plan.network).place(device)
        optimizer = make_optimizer(model, config)
        scaler = make_scaler(device, dtype)
        batch = random_batch(plan, generator)
        seconds = []
        for step in range(WARMUP_STEPS + repeats):
            start = time.perf_counter()
            train_step(model, optimizer, scaler, batch, dtype, config.grad_clip_norm)
            if step >= WARMUP_STEPS:
                seconds.append(time.perf_counter() - start)
    return MeasuredStep(
        seconds=round(min(seconds), 4),
        precision="bfloat16" if dtype == torch.bfloat16 else "float32",
        cpu=cpu_model(),
        instruction_set=instruction_set(),
        threads=torch.get_num_threads(),
        gflops=0.0,
    )


def random_batch(plan: Plan, generator: torch.Generator) -> Batch:
    """A batch of the plan's patch size: normal intensities, every class present and annotated."""
    shape = (plan.batch_size, 1, *plan.patch_size)
    return Batch(
        image=torch.randn(shape, generator=generator),
        label=torch.randint(0, plan.num_classes, shape, generator=generator, dtype=torch.uint8),
        annotated=torch.ones((plan.batch_size, plan.num_classes), dtype=torch.bool),
        pad_value=torch.zeros(plan.batch_size),
    )


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The processor's model name ("unknown CPU" where the system does not say)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return " ".join(value.split())
    except OSError:
        pass
    return "unknown CPU"


def instruction_set() -> str:
    """torch's CPU capability, and the oneDNN cap where one is set (what the kernels may use)."""
    capability = torch.backends.cpu.get_cpu_capability()
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return f"{capability}, oneDNN capped at {cap.upper()}" if cap else capability
