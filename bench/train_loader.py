"""Benchmark of the training data pipeline: step time with the real loader against ready-made batches.

Same network, same optimizer, same process: the baseline trains on one batch drawn (and augmented)
before the clock starts, so its steps are the network's alone; the pipeline trains on batches drawn
from the memory-mapped cache and augmented (nnU-Net's transforms, in torch) by the loader thread while
the network runs, exactly as ``amoseg train`` does on a CPU. A third variant, ``sequential``,
prepares each batch in the training thread (no prefetching) to show what the thread hides. The three
alternate in blocks (baseline, pipeline, sequential, baseline, ...) so drifts in machine speed hit all
of them; the ratio of median step times to the baseline's is the overhead.

The data: phantoms (8 CT + 4 MR, ``amoseg phantom``), planned with the cpu preset and preprocessed;
made once into --data and reused.

    .venv/bin/python bench/train_loader.py --data /tmp/amoseg_bench_train

Target: the pipeline's step time at most 1.15 x the baseline's.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path


def prepare(data: Path, step_seconds: float | None) -> tuple[Path, Path]:
    """(plans.json, cache root) for the phantom set in ``data``, made when missing."""
    from amoseg import api

    dataset, plans = data / "phantoms", data / "plans.json"
    if not (dataset / "dataset.json").is_file():
        api.phantom(output=dataset, n_ct=8, n_mr=4, seed=0, quiet=True)
    if not plans.is_file():
        api.plan(dataset=dataset, preset="cpu", output=plans, cpu_step_seconds=step_seconds, quiet=True)
    api.preprocess(dataset=dataset, plan=plans, output=data / "preprocessed", quiet=True)
    return plans, data / "preprocessed"


def run_facts(plan, dtype) -> dict:
    """What a training-step benchmark ran with: plan, patch, batch, precision and threads."""
    import torch

    return {
        "plan_id": plan.plan_id,
        "patch_size": list(plan.patch_size),
        "batch_size": plan.batch_size,
        "autocast": str(dtype).removeprefix("torch.") if dtype else "off (float32)",
        "threads": torch.get_num_threads(),
    }


def describe(facts: dict) -> str:
    return (
        f"plan {facts['plan_id']}: patch {tuple(facts['patch_size'])}, batch {facts['batch_size']}, "
        f"{facts['threads']} threads, autocast {facts['autocast']}"
    )


def report(result: dict, summary: str, output: Path | None, setting: str = "") -> None:
    """Print what ran and the figures; also write the results as JSON to ``output`` when given."""
    print(describe(result) + setting)
    print(summary)
    if output:
        output.write_text(json.dumps(result, indent=2) + "\n")


def peak_rss_gib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "amoseg_bench_train")
    parser.add_argument("--steps", type=int, default=5, help="steps per block")
    parser.add_argument("--rounds", type=int, default=8, help="blocks per variant")
    parser.add_argument("--cpu-step-seconds", type=float, help="plan's step budget (default: the planner's)")
    parser.add_argument("--no-augment", action="store_true", help="leave augmentation out of the pipeline")
    parser.add_argument("--output", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    import torch

    from amoseg.model.network import build_training_network
    from amoseg.planning import Plan
    from amoseg.preprocessing.cache import PlanCache
    from amoseg.training.augment import nnunet_augmentation
    from amoseg.training.config import TrainConfig
    from amoseg.training.dataset import index_cases
    from amoseg.training.loader import BatchStream, PatchSource
    from amoseg.training.optim import autocast_dtype, make_optimizer, make_scaler
    from amoseg.training.trainer import train_step

    plans, cache = prepare(args.data, args.cpu_step_seconds)
    plan = Plan.load(plans)
    cases = index_cases(PlanCache.open(cache, plan), plan)
    config = TrainConfig.for_plan(plan)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # as training.backend runs training
    model = build_training_network(plan.network).place(torch.device("cpu"))
    optimizer = make_optimizer(model, config)
    # The precision `amoseg train` uses here: bfloat16 autocast on CPUs with native bf16, else float32.
    dtype = autocast_dtype(torch.device("cpu"), config.amp)
    scaler = make_scaler(torch.device("cpu"), dtype)
    augmentation = None if args.no_augment else nnunet_augmentation(plan.patch_size, plan.target_spacing_mm)
    source = PatchSource(
        cases=cases,
        patch_size=plan.patch_size,
        batch_size=plan.batch_size,
        num_classes=plan.num_classes,
        foreground_fraction=config.foreground_fraction,
        seed=0,
        transform=augmentation,
    )
    ready, _ = source.batch(10**6)

    def step(batch) -> float:
        start = time.perf_counter()
        train_step(model, optimizer, scaler, batch, dtype, config.grad_clip_norm)
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"baseline": [], "pipeline": [], "sequential": []}
    loader_seconds: list[float] = []
    iteration = 10**5  # the sequential variant's own batches
    with BatchStream(source, start=0) as stream:
        for _ in range(3):  # warm-up: first steps allocate, the thread fills its queue
            step(next(stream)[0])
            step(ready)
        for _ in range(args.rounds):
            for _ in range(args.steps):
                times["baseline"].append(step(ready))
            for _ in range(args.steps):
                start = time.perf_counter()
                batch, _ = next(stream)
                step(batch)
                times["pipeline"].append(time.perf_counter() - start)
            # The thread's queue is full meanwhile, so it only waits.
            for _ in range(args.steps):
                start = time.perf_counter()
                batch, _ = source.batch(iteration)
                loader_seconds.append(time.perf_counter() - start)
                step(batch)
                times["sequential"].append(time.perf_counter() - start)
                iteration += 1

    median = {name: statistics.median(values) for name, values in times.items()}
    result = {
        **run_facts(plan, dtype),
        "augment": augmentation is not None,
        "steps_per_variant": len(times["baseline"]),
        "median_step_s": {name: round(value, 4) for name, value in median.items()},
        "median_batch_preparation_s": round(statistics.median(loader_seconds), 4),
        "ratio_pipeline_to_baseline": round(median["pipeline"] / median["baseline"], 3),
        "ratio_sequential_to_baseline": round(median["sequential"] / median["baseline"], 3),
        "peak_rss_gib": peak_rss_gib(),
    }
    summary = (
        f"median step: ready-made batches {median['baseline']:.3f} s, real pipeline {median['pipeline']:.3f} s "
        f"(ratio {result['ratio_pipeline_to_baseline']:.3f}, target <= 1.15); without the loader thread "
        f"{median['sequential']:.3f} s (ratio {result['ratio_sequential_to_baseline']:.3f}); preparing one batch "
        f"takes {result['median_batch_preparation_s']:.3f} s; peak resident memory {result['peak_rss_gib']:.2f} GiB"
    )
    report(result, summary, args.output, f", augmentation {'on' if result['augment'] else 'off'}")


if __name__ == "__main__":
    main()
