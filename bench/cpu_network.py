"""Benchmark of the cpu preset's network: a training step with single-convolution blocks against two.

The cpu preset plans ``single_conv_blocks``: its full-resolution encoder block and every decoder block
run one convolution instead of DynUNet's two. This measures what that saves. One plan (the cpu preset
on phantoms, 8 CT + 4 MR, made once into --data as ``bench/train_loader.py`` makes it), one real batch
from its cache drawn before the clock starts, the precision ``amoseg train`` uses (bfloat16 autocast on
CPUs with native bfloat16), the trainer's own step (loss over the deep-supervision heads, AdamW,
gradient clipping). The two networks, built from the same seed, alternate in blocks of steps so that
drifts in machine speed hit both; medians of the step times; the ratio is one convolution to two.

    .venv/bin/python bench/cpu_network.py --data /tmp/amoseg_bench_train
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from train_loader import peak_rss_gib, prepare, report, run_facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "amoseg_bench_train")
    parser.add_argument("--steps", type=int, default=5, help="steps per block")
    parser.add_argument("--rounds", type=int, default=6, help="blocks per network")
    parser.add_argument("--output", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    import torch

    from amoseg.model.network import build_training_network
    from amoseg.planning import Plan
    from amoseg.planning import topology as model
    from amoseg.preprocessing.cache import PlanCache
    from amoseg.training.config import TrainConfig
    from amoseg.training.dataset import index_cases
    from amoseg.training.loader import PatchSource
    from amoseg.training.optim import autocast_dtype, make_optimizer, make_scaler
    from amoseg.training.trainer import train_step

    plans, cache = prepare(args.data, None)
    plan = Plan.load(plans)
    config = TrainConfig.for_plan(plan)
    source = PatchSource(
        cases=index_cases(PlanCache.open(cache, plan), plan),
        patch_size=plan.patch_size,
        batch_size=plan.batch_size,
        num_classes=plan.num_classes,
        foreground_fraction=config.foreground_fraction,
        seed=0,
    )
    batch, _ = source.batch(0)
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # as training.backend runs training
    dtype = autocast_dtype(torch.device("cpu"), config.amp)
    variants = {}
    for name, single in (("two", False), ("one", True)):
        topology = dataclasses.replace(plan.network, single_conv_blocks=single)
        torch.manual_seed(0)
        network = build_training_network(topology).place(torch.device("cpu"))
        variants[name] = (
            topology,
            network,
            make_optimizer(network, config),
            make_scaler(torch.device("cpu"), dtype),
        )

    def step(name: str) -> float:
        _, network, optimizer, scaler = variants[name]
        start = time.perf_counter()
        train_step(network, optimizer, scaler, batch, dtype, config.grad_clip_norm)
        return time.perf_counter() - start

    times: dict[str, list[float]] = {name: [] for name in variants}
    for name in variants:  # warm-up: the first steps allocate
        for _ in range(3):
            step(name)
    for _ in range(args.rounds):
        for name in variants:
            times[name].extend(step(name) for _ in range(args.steps))

    median = {name: statistics.median(values) for name, values in times.items()}
    flops = {
        name: model.training_flops(topology, plan.patch_size, plan.batch_size)
        for name, (topology, _, _, _) in variants.items()
    }
    result = {
        **run_facts(plan, dtype),
        "steps_per_network": len(times["one"]),
        "median_step_s": {name: round(value, 4) for name, value in median.items()},
        "ratio_one_to_two": round(median["one"] / median["two"], 3),
        "flops_ratio_one_to_two": round(flops["one"] / flops["two"], 3),
        "peak_rss_gib": peak_rss_gib(),
    }
    summary = (
        f"median step: two convolutions per block {median['two']:.3f} s, one in the full-resolution and "
        f"decoder blocks {median['one']:.3f} s (ratio {result['ratio_one_to_two']:.3f}; the compute model's "
        f"FLOP ratio {result['flops_ratio_one_to_two']:.3f}); peak resident memory "
        f"{result['peak_rss_gib']:.2f} GiB (both networks in one process)"
    )
    report(result, summary, args.output)


if __name__ == "__main__":
    main()
