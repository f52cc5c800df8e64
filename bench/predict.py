"""Benchmark of `amoseg predict`: end-to-end seconds split by stage, overhead over the network, peak memory.

A phantom CT of the card's median size (512 x 512 x 100 at 0.78 x 0.78 x 5 mm) goes through the whole
path (read, preprocess, network, export, write) with a network of the chosen preset. The network's
weights are random: timing and memory do not depend on them. The baseline is the network alone on the
same windows (the same forward passes, flips included, without tiling, accumulation or export),
measured in the same process. Each case runs in a fresh process so that its peak memory is its own.
``--model RUN`` uses a trained model (and its plan) instead: a trained network puts each organ's
probability in a small region, which the export exploits, so its export time is the realistic one.

    .venv/bin/python bench/predict.py --preset cpu
    .venv/bin/python bench/predict.py --preset cpu --case largest --no-tta
    .venv/bin/python bench/predict.py --model demo_out/runs --no-tta

Targets: end-to-end over network time under 1.3; peak memory for the largest case under 8 GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "median": ((512, 512, 100), (0.78, 0.78, 5.0)),
    "largest": ((768, 768, 512), (0.6, 0.6, 0.8)),
}


def _fingerprint(shape, spacing):
    from amoseg.data.fingerprint import FINGERPRINT_VERSION, Fingerprint

    cases = [
        {
            "case_id": f"amos_{number:04d}",
            "modality": "CT",
            "split": "train",
            "spacing_mm": list(spacing),
            "shape": list(shape),
            "shape_after_crop": [int(size * 0.8) for size in shape],
            "labelled": True,
            "axis_permutation": [0, 1, 2],
        }
        for number in range(1, 5)
    ]
    intensity = {"min": -200.0, "p0.5": -100.0, "median": 60.0, "mean": 55.0, "std": 40.0, "p99.5": 250.0}
    return Fingerprint.from_dict(
        {
            "fingerprint_version": FINGERPRINT_VERSION,
            "dataset": "bench",
            "cases": cases,
            "foreground_intensity": {"CT": {**intensity, "max": 400.0, "voxels": 10**6}},
        }
    )


def measure(case: str, preset: str, mirror: bool, threads: int, model_dir: str | None = None) -> dict:
    import numpy as np
    import torch

    from amoseg.data.phantom import generate_case
    from amoseg.inference.predictor import PredictOptions, predict_image
    from amoseg.inference.sliding_window import padding, window_starts
    from amoseg.inference.windows import WindowSettings, mirror_combinations
    from amoseg.io import read_image, write_image
    from amoseg.labels import ORGAN_BY_ID
    from amoseg.model.loading import Model
    from amoseg.model.network import build_network, for_device
    from amoseg.planning import make_plan

    torch.set_num_threads(threads)
    shape, spacing = CASES[case]
    if model_dir:
        from amoseg.model.loading import load_model

        model = load_model(model_dir)
        plan, network = model.plan, model.networks[0]
        preset = f"{plan.preset} (trained: {model_dir})"
    else:
        plan = make_plan(_fingerprint(shape, spacing), preset)
        torch.manual_seed(0)
        network = for_device(build_network(plan), "cpu").eval()  # as load_model places a trained one
        model = Model(networks=(network,), plan=plan, labels={i: o.name for i, o in ORGAN_BY_ID.items()})
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "case.nii.gz", Path(folder) / "out.nii.gz"
        image, _ = generate_case(1, "CT", seed=0, shape=shape, spacing=spacing)
        write_image(image, source)
        del image
        baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        image = read_image(source)
        read_s = time.perf_counter() - start
        options = PredictOptions(windows=WindowSettings(mirror=mirror))
        start = time.perf_counter()
        prediction = predict_image(image, model, "CT", options)
        predict_s = time.perf_counter() - start
        start = time.perf_counter()
        write_image(prediction.label, target)
        write_s = time.perf_counter() - start
    seconds = {"read": read_s, **prediction.seconds, "write": write_s}
    end_to_end = read_s + predict_s + write_s

    # The network alone on the same windows: same count, same batch, same flips.
    from amoseg.preprocessing import preprocess_case

    plan_space = preprocess_case(image, None, "CT", plan).image
    padded = tuple(
        size + a + b
        for size, (a, b) in zip(plan_space.shape, padding(plan_space.shape, plan.patch_size), strict=True)
    )
    windows = len(window_starts(padded, tuple(plan.patch_size), options.windows.step))
    flips = mirror_combinations(model.mirror_axes if mirror else ())
    batch = torch.from_numpy(
        np.random.default_rng(0)
        .normal(size=(options.windows.windows_per_batch, 1, *plan.patch_size))
        .astype(np.float32)
    )
    start = time.perf_counter()
    with torch.inference_mode():
        for fold_network in model.networks:  # every fold, as the prediction runs them all
            for _ in range(0, windows, options.windows.windows_per_batch):
                for axes in flips:
                    flipped = torch.flip(batch, [a + 2 for a in axes]) if axes else batch
                    torch.softmax(fold_network(flipped), dim=1)
    network_s = time.perf_counter() - start
    return {
        "case": case,
        "shape": list(shape),
        "spacing_mm": list(spacing),
        "preset": preset,
        "plan_space_shape": list(plan_space.shape),
        "patch_size": list(plan.patch_size),
        "windows": windows,
        "mirror": mirror,
        "flips": len(flips),
        "threads": threads,
        "seconds": {key: round(value, 3) for key, value in seconds.items()},
        "end_to_end_s": round(end_to_end, 3),
        "network_only_s": round(network_s, 3),
        "overhead_ratio": round(end_to_end / network_s, 3),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "peak_rss_above_start_gib": round(
            (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_rss) / 2**20, 3
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), default="median")
    parser.add_argument("--preset", choices=["cpu", "fast", "fullres"], default="cpu")
    parser.add_argument("--no-tta", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--model", default=None, help="a trained run or fold folder (default: random weights)"
    )
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.case, args.preset, not args.no_tta, args.threads, args.model)))
        return
    command = [
        sys.executable,
        __file__,
        "--measure",
        "--case",
        args.case,
        "--preset",
        args.preset,
        "--threads",
        str(args.threads),
    ]
    if args.no_tta:
        command.append("--no-tta")
    if args.model:
        command += ["--model", args.model]
    result = json.loads(
        subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    )
    print(json.dumps(result, indent=2))
    print(f"overhead (end to end / network): {result['overhead_ratio']:.2f}  (target < 1.3)")
    print(f"peak memory: {result['peak_rss_gib']:.2f} GiB  (target < 8 GiB for the largest case)")


if __name__ == "__main__":
    main()
