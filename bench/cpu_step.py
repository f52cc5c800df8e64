"""Benchmark of one float32 training step on the CPU: the step before and after amoseg's CPU layout,
and what else the back-ends offer.

The trainer's own step (``trainer.train_step``: deep-supervision loss, the plan's optimizer, gradient
clipping) on one random batch of a plan's patch size, in variants that change only how torch runs it:

- ``before``: the step as ``amoseg train`` ran it until the CPU layout: MONAI's instance norms,
  contiguous tensors, deterministic algorithms with torch's fill of uninitialized memory;
- ``amoseg``: as ``amoseg train`` runs it now: instance norms that keep the channels-last layout
  (``model.norms``) and the network in ``torch.channels_last_3d`` (``model.network.cpu_layout``),
  deterministic without the fill (``training.backend``);
- ``group_norm``: ``amoseg`` with torch's group norm (one channel per group) for those instance norms,
  the other layout-keeping form of the same function; ``channels_last``: ``before`` in channels-last
  alone;
- ``nondeterministic``: ``amoseg`` without ``torch.use_deterministic_algorithms``;
- ``compile``: ``amoseg`` under ``torch.compile`` (inductor); its compile time is printed apart, as it
  comes out of a training budget.

These run in one process, under the allocator setting training makes on a CPU
(``training.backend.keep_freed_memory``) unless ``--allocator glibc``. That setting lasts for the
process, so ``--allocator-pairs N`` measures it the other way: N pairs of processes, alternating, one
timing ``before`` under glibc's defaults, the other ``amoseg`` as training runs it, with the page faults
and system time of each step.

Variants alternate in blocks of steps, so drifts in machine speed hit all of them; medians. The FLOPs of
a step are counted by ``torch.utils.flop_counter.FlopCounterMode``; the machine's peak is cores x clock x
FLOPs per cycle (2 FMA units of the widest vector the kernels may use: 32 float32 FLOPs a cycle for AVX2,
64 for AVX-512), an upper bound no convolution reaches. Run it twice, as docs/benchmarks.md does: on the
machine's own instruction set, and as an AVX2-only CPU:

    .venv/bin/python bench/cpu_step.py --plan demo_out/plans.json
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python bench/cpu_step.py --plan demo_out/plans.json
    .venv/bin/python bench/cpu_step.py --plan demo_out/plans.json --allocator-pairs 4
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from train_loader import peak_rss_gib, report

VARIANTS = ("before", "amoseg", "group_norm", "channels_last", "nondeterministic", "compile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, default=Path("demo_out/plans.json"))
    parser.add_argument("--steps", type=int, default=4, help="steps per block")
    parser.add_argument("--rounds", type=int, default=4, help="blocks per variant")
    parser.add_argument("--skip", default="", help="comma-separated variants to leave out (not before)")
    parser.add_argument("--only", help="comma-separated variants to run, and no other")
    parser.add_argument(
        "--allocator",
        choices=("amoseg", "glibc"),
        default="amoseg",
        help="amoseg: freed memory kept, as training sets it; glibc: the C library's defaults",
    )
    parser.add_argument(
        "--allocator-pairs",
        type=int,
        default=0,
        help="instead: this many pairs of processes, before under glibc's allocator against amoseg",
    )
    parser.add_argument("--output", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    if args.allocator_pairs:
        compare_processes(args)
        return

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from amoseg.model.network import build_training_network
    from amoseg.model.norms import replace_instance_norms
    from amoseg.planning.plan import Plan
    from amoseg.training.backend import keep_freed_memory, training_backend
    from amoseg.training.calibrate import cpu_model, instruction_set, random_batch
    from amoseg.training.config import TrainConfig
    from amoseg.training.optim import make_optimizer, make_scaler
    from amoseg.training.trainer import train_step

    if args.allocator == "amoseg":
        keep_freed_memory()
    plan = Plan.load(args.plan)
    config = TrainConfig.for_plan(plan, amp=False)
    scaler = make_scaler(torch.device("cpu"), None)
    batch = random_batch(plan, torch.Generator().manual_seed(0))
    if args.only:
        chosen = [name for name in VARIANTS if name in args.only.split(",")]
    else:
        chosen = [name for name in VARIANTS if name not in args.skip.split(",") or name == "before"]
    baseline = chosen[0]

    def build(name: str):
        torch.manual_seed(0)
        network = build_training_network(plan.network)
        if name in ("amoseg", "nondeterministic", "compile", "group_norm"):
            if name == "group_norm":
                replace_instance_norms(network.network, group_norm_like)
            network.place(torch.device("cpu"))
        elif name == "channels_last":
            network.network.to(memory_format=torch.channels_last_3d)
            network.memory_format = torch.channels_last_3d
        optimizer = make_optimizer(network, config)
        runner = torch.compile(network) if name == "compile" else network
        return runner, optimizer

    def step(name: str) -> float:
        runner, optimizer = variants[name]
        old_backend = name in ("before", "channels_last")
        with training_backend(deterministic=name != "nondeterministic", fill=old_backend):
            start = time.perf_counter()
            train_step(runner, optimizer, scaler, batch, None, config.grad_clip_norm)
            return time.perf_counter() - start

    variants, warmup = {}, {}
    for name in chosen:
        variants[name] = build(name)
        start = time.perf_counter()
        for _ in range(2):  # the first steps allocate, pick kernels, and compile
            step(name)
        warmup[name] = time.perf_counter() - start
    runner, optimizer = build(baseline)
    with FlopCounterMode(display=False) as counter:
        train_step(runner, optimizer, scaler, batch, None, config.grad_clip_norm)
    flops = counter.get_total_flops()

    times: dict[str, list[float]] = {name: [] for name in chosen}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(args.rounds):
        for name in chosen:
            times[name].extend(step(name) for _ in range(args.steps))
    after = resource.getrusage(resource.RUSAGE_SELF)
    steps = sum(len(values) for values in times.values())
    median = {name: statistics.median(values) for name, values in times.items()}
    peak, peak_basis = peak_gflops(torch.get_num_threads())
    result = {
        "plan_id": plan.plan_id,
        "patch_size": list(plan.patch_size),
        "batch_size": plan.batch_size,
        "cpu": cpu_model(),
        "instruction_set": instruction_set(),
        "environment": {
            key: os.environ[key] for key in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if key in os.environ
        },
        "threads": torch.get_num_threads(),
        "allocator": args.allocator,
        "autocast": "off (float32)",
        "step_gflop": round(flops / 1e9, 2),
        "steps_per_variant": len(times[chosen[0]]),
        "median_step_s": {name: round(value, 4) for name, value in median.items()},
        "speed_up_over_" + baseline: {
            name: round(median[baseline] / value, 3) for name, value in median.items()
        },
        "gflops": {name: round(flops / value / 1e9, 1) for name, value in median.items()},
        "peak_gflops": round(peak, 1),
        "peak_basis": peak_basis,
        "share_of_peak": {name: round(flops / value / 1e9 / peak, 3) for name, value in median.items()},
        "first_two_steps_s": {name: round(value, 1) for name, value in warmup.items()},
        "minor_page_faults_per_step": round((after.ru_minflt - usage.ru_minflt) / steps),
        "system_cpu_s_per_step": round((after.ru_stime - usage.ru_stime) / steps, 4),
        "peak_rss_gib": peak_rss_gib(),
    }
    lines = [
        f"{name}: {median[name]:.3f} s per step, {result['speed_up_over_' + baseline][name]:.2f}x {baseline}, "
        f"{result['gflops'][name]:.0f} GFLOP/s = {100 * result['share_of_peak'][name]:.0f} % of peak "
        f"(first two steps {warmup[name]:.1f} s)"
        for name in chosen
    ]
    summary = "\n".join(
        [f"{result['cpu']}, {result['instruction_set']}, {result['threads']} threads; peak {peak:.0f} GFLOP/s "
         f"({peak_basis}); step {result['step_gflop']} GFLOP; allocator {args.allocator}", *lines,
         f"all steps: {result['minor_page_faults_per_step']} page faults and "
         f"{result['system_cpu_s_per_step']:.3f} s of system time per step"]
    )  # fmt: skip
    report(result, summary, args.output)


def compare_processes(args) -> None:
    """``before`` under glibc's allocator defaults against ``amoseg`` under training's setting, each in
    processes of its own (the setting lasts for a process), in alternating pairs; medians over pairs."""
    arms = (("before", "glibc"), ("amoseg", "amoseg"))
    runs: dict[str, list[dict]] = {variant: [] for variant, _ in arms}
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "run.json"
        for _ in range(args.allocator_pairs):
            for variant, allocator in arms:
                command = [
                    sys.executable, __file__, "--plan", str(args.plan), "--only", variant,
                    "--allocator", allocator, "--rounds", str(args.rounds), "--steps", str(args.steps),
                    "--output", str(output),
                ]  # fmt: skip
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
                runs[variant].append(json.loads(output.read_text()))
    first = runs["before"][0]

    def median_of(variant: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[variant])

    seconds = {
        variant: statistics.median(run["median_step_s"][variant] for run in values)
        for variant, values in runs.items()
    }
    pairs = [
        round(before["median_step_s"]["before"] / amoseg["median_step_s"]["amoseg"], 3)
        for before, amoseg in zip(runs["before"], runs["amoseg"], strict=True)
    ]
    result = {
        "plan_id": first["plan_id"],
        "patch_size": first["patch_size"],
        "batch_size": first["batch_size"],
        "cpu": first["cpu"],
        "instruction_set": first["instruction_set"],
        "environment": first["environment"],
        "threads": first["threads"],
        "autocast": first["autocast"],
        "processes": {variant: f"{len(values)} x {values[0]['steps_per_variant']} steps" for variant, values in runs.items()},
        "median_step_s": seconds,
        "speed_up_over_before": round(seconds["before"] / seconds["amoseg"], 3),
        "speed_up_per_pair": pairs,
        "minor_page_faults_per_step": {variant: median_of(variant, "minor_page_faults_per_step") for variant in runs},
        "system_cpu_s_per_step": {variant: median_of(variant, "system_cpu_s_per_step") for variant in runs},
        "peak_rss_gib": {variant: max(run["peak_rss_gib"] for run in values) for variant, values in runs.items()},
    }  # fmt: skip
    lines = [
        f"{variant} ({allocator} allocator): {seconds[variant]:.3f} s per step, "
        f"{result['minor_page_faults_per_step'][variant]:.0f} page faults and "
        f"{result['system_cpu_s_per_step'][variant]:.3f} s of system time per step, "
        f"peak {result['peak_rss_gib'][variant]:.2f} GiB"
        for variant, allocator in arms
    ]
    summary = "\n".join(
        [*lines, f"amoseg {result['speed_up_over_before']:.2f}x before (pairs: {', '.join(map(str, pairs))})"]
    )
    report(result, summary, args.output)


def group_norm_like(norm):
    """torch's group norm with one channel per group, with ``norm``'s parameters."""
    from torch import nn

    group = nn.GroupNorm(norm.num_features, norm.num_features, eps=norm.eps, affine=norm.affine)
    group.load_state_dict(norm.state_dict())
    return group


def peak_gflops(cores: int, cpuinfo: str = "/proc/cpuinfo") -> tuple[float, str]:
    """Cores x clock x float32 FLOPs per cycle, and how it was reckoned."""
    import torch

    megahertz = []
    try:
        for line in Path(cpuinfo).read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "cpu MHz":
                megahertz.append(float(value))
    except (OSError, ValueError):
        pass
    clock = max(megahertz) / 1000 if megahertz else 2.5
    capability = torch.backends.cpu.get_cpu_capability().upper()
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or "").upper()
    wide = "AVX512" in capability and not cap.startswith(("AVX2", "AVX", "SSE"))
    per_cycle = 64 if wide else 32
    basis = (
        f"{cores} cores x {clock:.2f} GHz (cpuinfo{'' if megahertz else ': none, 2.5 assumed'}) x {per_cycle} "
        f"FLOP/cycle ({'AVX-512' if wide else 'AVX2'}, 2 FMA units)"
    )
    return cores * clock * per_cycle, basis


if __name__ == "__main__":
    main()
