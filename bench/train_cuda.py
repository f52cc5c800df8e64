"""CUDA training throughput with mixed precision: steps per second of a fullres-like plan.

The plan: ``make_plan`` with the fullres preset (8 GB budget) on a fingerprint of AMOS-like CT cases
(0.78 x 0.78 x 5 mm, 512 x 512 x 100 voxels); no data on disk. Batches are synthetic (blocks of random
organ labels with matching intensities) and augmented on the GPU with nnU-Net's transforms, as
``amoseg train`` does on a GPU; each step is the trainer's own ``train_step`` (bf16 autocast where the GPU
supports it, else fp16 with a gradient scaler; Dice + CE over the deep-supervision outputs; SGD).
After ``--warmup`` steps, ``--steps`` steps are timed; steps per second and the peak memory are printed.

    .venv/bin/python bench/train_cuda.py [--steps 300] [--compile] [--residual] [--no-augment]

Without a CUDA device it says so and exits with status 2, measuring nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def amos_like_plan(memory_gb: float):
    from amoseg.data.fingerprint import FINGERPRINT_VERSION, Fingerprint
    from amoseg.planning import make_plan

    cases = [
        {
            "case_id": f"amos_{number:04d}",
            "modality": "CT",
            "split": "train",
            "spacing_mm": [0.78, 0.78, 5.0],
            "shape": [512, 512, 100],
            "shape_after_crop": [420, 330, 100],
            "labelled": True,
            "axis_permutation": [0, 1, 2],
        }
        for number in range(1, 9)
    ]
    ct = {"min": -1000.0, "p0.5": -120.0, "median": 40.0, "mean": 37.0, "std": 40.0, "p99.5": 250.0}
    fingerprint = Fingerprint.from_dict(
        {
            "fingerprint_version": FINGERPRINT_VERSION,
            "dataset": "amos-like",
            "cases": cases,
            "foreground_intensity": {"CT": {**ct, "max": 1e3, "voxels": 10**6}},
        }
    )
    return make_plan(fingerprint, "fullres", gpu_memory_gb=memory_gb)


def synthetic_batch(plan, generator, device):
    """Blocks of random organ ids (8 x 8 x 4 voxels each) and intensities that follow them."""
    import torch

    from amoseg.training.batch import Batch

    batch, patch = plan.batch_size, plan.patch_size
    coarse = torch.randint(
        0, plan.num_classes, (batch, 1, patch[0] // 8, patch[1] // 8, patch[2] // 4), generator=generator
    )
    label = torch.nn.functional.interpolate(coarse.float(), size=patch, mode="nearest").to(torch.uint8)
    image = label.float() / 8 + 0.3 * torch.randn((batch, 1, *patch), generator=generator)
    annotated = torch.ones((batch, plan.num_classes), dtype=torch.bool)
    return Batch(image, label, annotated, torch.full((batch,), -3.0)).to(device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument("--gpu-memory", type=float, default=8.0, help="plan's memory budget, GB")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--residual", action="store_true", help="residual encoder blocks")
    parser.add_argument("--no-augment", action="store_true", help="skip the GPU augmentation")
    parser.add_argument("--no-amp", action="store_true", help="float32")
    parser.add_argument("--output", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print(
            "train_cuda: no CUDA device here, nothing measured; run it on a machine with a GPU",
            file=sys.stderr,
        )
        return 2

    from amoseg.model.network import build_training_network, training_topology
    from amoseg.training.augment import nnunet_augmentation
    from amoseg.training.config import TrainConfig
    from amoseg.training.optim import autocast_dtype, make_optimizer, make_scaler
    from amoseg.training.trainer import train_step

    device = torch.device("cuda", 0)
    torch.backends.cudnn.benchmark = True
    plan = amos_like_plan(args.gpu_memory)
    config = TrainConfig.for_plan(plan, residual=args.residual)
    torch.manual_seed(0)
    model = build_training_network(training_topology(plan, residual=args.residual)).to(device)
    trained = torch.compile(model) if args.compile else model
    optimizer = make_optimizer(model, config)
    dtype = autocast_dtype(device, not args.no_amp)
    scaler = make_scaler(device, dtype)
    augmentation = None if args.no_augment else nnunet_augmentation(plan.patch_size, plan.target_spacing_mm)
    generator = torch.Generator().manual_seed(0)
    batches = [synthetic_batch(plan, generator, device) for _ in range(4)]

    def step(index: int) -> None:
        batch = batches[index % len(batches)]
        if augmentation is not None:
            batch = augmentation(batch, generator)
        train_step(trained, optimizer, scaler, batch, dtype, config.grad_clip_norm)

    for index in range(args.warmup):
        step(index)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for index in range(args.steps):
        step(index)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = {
        "device": torch.cuda.get_device_name(device),
        "plan_id": plan.plan_id,
        "patch_size": list(plan.patch_size),
        "batch_size": plan.batch_size,
        "filters": list(plan.network.filters),
        "dtype": str(dtype).removeprefix("torch.") if dtype else "float32",
        "compile": args.compile,
        "residual": args.residual,
        "augment": augmentation is not None,
        "steps": args.steps,
        "steps_per_second": round(args.steps / seconds, 3),
        "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2),
    }
    print(
        f"{result['device']}: {result['steps_per_second']} steps/s ({args.steps} steps, patch "
        f"{plan.patch_size}, batch {plan.batch_size}, {result['dtype']}, compile {args.compile}, "
        f"augmentation {'on GPU' if result['augment'] else 'off'}), peak {result['peak_memory_gb']} GB"
    )
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
