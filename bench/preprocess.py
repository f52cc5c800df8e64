"""Benchmark of preprocessing: seconds and peak memory per case, ours against scipy.ndimage.zoom.

Two CT phantoms: the AMOS card's median case (512 x 512 x 100 at 0.78 x 0.78 x 5 mm) and its largest
(768 x 768 x 512; its spacing is not on the card, 0.6 x 0.6 x 0.8 mm is assumed). Each is taken to the
``fullres`` grid (0.78 x 0.78 x 2 mm: the card's median in-plane spacing and thin-slice z, an assumed
AMOS-like fullres target; see --fullres-spacing) and the ``fast`` grid (3 mm isotropic).

Variants, each in a fresh process so that its peak resident memory (ru_maxrss) is its own:

- ``ours``: ``preprocess_case`` (reorient, crop, torch resampling, normalize, foreground locations),
  with torch using every core, and ``ours-1thread`` with one thread, as scipy has.
- ``scipy``: the same steps with the classic resampling: ``scipy.ndimage.zoom`` order 3 for the
  image and, per class, order 1 on the one-hot mask thresholded at 0.5 (nnU-Net's label scheme), on
  the same output grid (voxel-centre convention, same shapes).
- ``ours-files`` (largest case, fullres): the whole job from an uncompressed .nii on disk to the cache
  folder, as ``amoseg preprocess`` does it.
- ``ours-nocrop`` (largest case, fullres): air raised above the body threshold, so nothing is cropped
  and all 768 x 768 x 512 voxels are resampled: the worst case for memory.

Inputs are generated once into --data and read back as int16/uint8 arrays in ITK's memory order.

    .venv/bin/python bench/preprocess.py --data /tmp/amoseg_bench_preprocess

Targets: at least 3x faster than the scipy baseline on the same output grid; the largest case under
6 GiB peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CASES = {
    "median": {"shape": (512, 512, 100), "spacing": (0.78, 0.78, 5.0)},
    "largest": {"shape": (768, 768, 512), "spacing": (0.6, 0.6, 0.8)},
}
FAST_SPACING = (3.0, 3.0, 3.0)
GIB = 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "amoseg_bench_preprocess")
    parser.add_argument("--cases", default="median,largest", help="comma-separated: median, largest")
    parser.add_argument("--presets", default="fullres,fast", help="comma-separated: fullres, fast")
    parser.add_argument("--fullres-spacing", default="0.78,0.78,2.0", help="fullres target spacing, mm")
    parser.add_argument(
        "--skip-baseline-largest", action="store_true", help="no scipy run on the largest case"
    )
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per variant on the median case")
    parser.add_argument("--output", type=Path, help="also write the results as JSON here")
    parser.add_argument("--run", help=argparse.SUPPRESS)  # internal: one variant in this process
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        _generate(args.data, args.generate)
        return
    if args.run:
        print(json.dumps(run_variant(args.run, args.data, args.case, _floats(args.target), args.repeats)))
        return

    targets = {"fullres": _floats(args.fullres_spacing), "fast": FAST_SPACING}
    rows = []
    for case in args.cases.split(","):
        _ensure_case(args.data, case)
        for preset in args.presets.split(","):
            variants = ["ours", "ours-1thread", "scipy"]
            if case == "largest" and args.skip_baseline_largest:
                variants.remove("scipy")
            if case == "largest" and preset == "fullres":
                variants += ["ours-files", "ours-nocrop"]
            results = {}
            for variant in variants:
                repeats = args.repeats if case == "median" else 1
                results[variant] = _subprocess(args.data, variant, case, targets[preset], repeats)
                print(f"{case} {preset} {variant}: {json.dumps(results[variant])}", flush=True)
            if "scipy" in results:
                results["agreement"] = _agreement(args.data, case, targets[preset])
            rows.append({"case": case, "preset": preset, "target_spacing_mm": targets[preset], **results})
    print()
    print(_table(rows))
    if args.output:
        args.output.write_text(json.dumps({"machine": _machine(), "rows": rows}, indent=2) + "\n")


def run_variant(variant: str, data: Path, case: str, target: tuple, repeats: int) -> dict:
    """One variant on one case, in this (fresh) process; returns seconds and memory."""
    import torch

    torch.set_num_threads(1 if variant == "ours-1thread" else os.cpu_count() or 1)
    plan = _plan(target)
    if variant == "ours-files":
        return _run_files(data, case, plan)
    image, label = _load(data, case)
    if variant == "ours-nocrop":
        # The worst case for memory: a body filling the field of view, so the crop keeps everything.
        np.maximum(image.array, -400, out=image.array)
    loaded = _peak_rss()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        if variant.startswith("ours"):
            from amoseg.preprocessing import preprocess_case

            result = preprocess_case(image, label, "CT", plan, case_id=case)
            output_image, output_label = result.image, result.label
        else:
            output_image, output_label = _scipy_preprocess(image, label, plan)
        seconds.append(time.perf_counter() - start)
        np.save(data / f"{case}_{_tag(target)}_{variant}_image.npy", output_image)
        np.save(data / f"{case}_{_tag(target)}_{variant}_label.npy", output_label)
        del output_image, output_label
    return {
        "seconds": round(min(seconds), 2),
        "peak_gib": round(_peak_rss() / GIB, 2),
        "inputs_gib": round(loaded / GIB, 2),
        "output_shape": list(
            np.load(data / f"{case}_{_tag(target)}_{variant}_label.npy", mmap_mode="r").shape
        ),
        "threads": torch.get_num_threads() if variant.startswith("ours") else 1,
    }


def _scipy_preprocess(image, label, plan) -> tuple[np.ndarray, np.ndarray]:
    """The same pipeline as ``preprocess_case`` with scipy.ndimage.zoom as the resampler."""
    from scipy import ndimage

    from amoseg.io.orientation import canonical_reorientation, reorient_array
    from amoseg.preprocessing.crop import body_crop, cropped_geometry
    from amoseg.preprocessing.normalize import apply_intensity_transform, normalization_parameters
    from amoseg.preprocessing.resample import resampled_shape

    reorientation = canonical_reorientation(image.geometry.direction)
    array = reorient_array(image.array, reorientation)
    labels = reorient_array(label.array, reorientation)
    box, _ = body_crop(array, "CT", labels)
    array, labels = array[box.slices], labels[box.slices]
    transform = normalization_parameters(array, "CT", plan.normalization["CT"])
    geometry = cropped_geometry(image.geometry, box)
    shape = resampled_shape(box.shape, geometry.spacing, plan.target_spacing_mm)
    zoom = np.divide(shape, box.shape)
    resampled = ndimage.zoom(array.astype(np.float32), zoom, order=3, grid_mode=True, mode="grid-mirror")
    assert resampled.shape == shape, (resampled.shape, shape)
    resampled = apply_intensity_transform(resampled, transform)
    output_labels = np.zeros(shape, dtype=np.uint8)
    for organ in np.unique(labels):
        if organ == 0:
            continue
        mask = ndimage.zoom(
            (labels == organ).astype(np.float32), zoom, order=1, grid_mode=True, mode="nearest"
        )
        output_labels[mask >= 0.5] = organ
        del mask
    return resampled, output_labels


def _run_files(data: Path, case: str, plan) -> dict:
    """Read the .nii files, preprocess, write the cache folder: the whole job of `amoseg preprocess`."""
    from amoseg.io import read_image, read_label
    from amoseg.preprocessing import preprocess_case, write_case

    start = time.perf_counter()
    image = read_image(data / f"{case}_image.nii")
    label = read_label(data / f"{case}_label.nii")
    result = preprocess_case(image, label, "CT", plan, case_id=case)
    del image, label
    write_case(data / "cache" / case, result)
    return {"seconds": round(time.perf_counter() - start, 2), "peak_gib": round(_peak_rss() / GIB, 2)}


def _agreement(data: Path, case: str, target: tuple) -> dict:
    """How close ours and scipy's outputs are: normalized-intensity difference and label agreement."""
    tag = _tag(target)
    ours = np.load(data / f"{case}_{tag}_ours_image.npy", mmap_mode="r")
    scipy = np.load(data / f"{case}_{tag}_scipy_image.npy", mmap_mode="r")
    inner = tuple(slice(4, -4) for _ in range(3))
    difference = np.abs(np.asarray(ours[inner]) - np.asarray(scipy[inner]))
    ours_labels = np.load(data / f"{case}_{tag}_ours_label.npy")
    scipy_labels = np.load(data / f"{case}_{tag}_scipy_label.npy")
    foreground = (ours_labels > 0) | (scipy_labels > 0)
    return {
        "image_mean_abs_difference": round(float(difference.mean()), 4),
        "image_p99_abs_difference": round(float(np.percentile(difference, 99)), 3),
        "label_agreement_on_foreground": round(float((ours_labels == scipy_labels)[foreground].mean()), 4),
    }


def _plan(target: tuple):
    """A fullres-family plan whose target spacing is ``target`` (the network is irrelevant here)."""
    import dataclasses

    from amoseg.data.fingerprint import Fingerprint, FingerprintCase, IntensityStatistics
    from amoseg.planning import make_plan

    case = FingerprintCase("a", "CT", "train", tuple(target), (128, 128, 128), (128, 128, 128), True)
    intensity = IntensityStatistics(
        min=-1000.0, p0_5=-160.0, median=80.0, mean=80.0, std=60.0, p99_5=240.0, max=1000.0, voxels=1
    )
    fingerprint = Fingerprint(dataset="bench", cases=(case,), foreground_intensity={"CT": intensity})
    return dataclasses.replace(make_plan(fingerprint, "fullres"), target_spacing_mm=tuple(target))


def _ensure_case(data: Path, case: str) -> None:
    if (data / f"{case}_label.nii").is_file():
        return
    data.mkdir(parents=True, exist_ok=True)
    print(f"generating the {case} case into {data} (once)", flush=True)
    # In a separate process: the generator's working memory should not stay in this one.
    subprocess.run([sys.executable, __file__, "--generate", case, "--data", str(data)], check=True)


def _generate(data: Path, case: str) -> None:
    """Write one phantom as uncompressed NIfTI, read back like any dataset file."""
    from amoseg.data.phantom import generate_case
    from amoseg.io import write_image

    spec = CASES[case]
    image, label = generate_case(
        1, "CT", seed=0, shape=spec["shape"], spacing=spec["spacing"], direction=np.eye(3)
    )
    write_image(image, data / f"{case}_image.nii", compress=False)
    write_image(label, data / f"{case}_label.nii", compress=False)


def _load(data: Path, case: str):
    from amoseg.io import read_image, read_label

    return read_image(data / f"{case}_image.nii"), read_label(data / f"{case}_label.nii")


def _subprocess(data: Path, variant: str, case: str, target: tuple, repeats: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--run",
        variant,
        "--data",
        str(data),
        "--case",
        case,
        "--target",
        ",".join(str(v) for v in target),
        "--repeats",
        str(repeats),
    ]
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _table(rows: list[dict]) -> str:
    lines = [
        "| case | preset | output voxels | ours s (2 thr) | ours s (1 thr) | scipy s | speed-up (2 / 1 thr) "
        "| ours peak GiB | scipy peak GiB | inputs GiB | labels agree |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ours, single, scipy = row["ours"], row["ours-1thread"], row.get("scipy")
        shape = " x ".join(str(v) for v in ours["output_shape"])
        speedup = (
            f"{scipy['seconds'] / ours['seconds']:.1f}x / {scipy['seconds'] / single['seconds']:.1f}x"
            if scipy
            else "-"
        )
        agree = f"{row['agreement']['label_agreement_on_foreground']:.3f}" if scipy else "-"
        lines.append(
            f"| {row['case']} | {row['preset']} | {shape} | {ours['seconds']} | {single['seconds']} | "
            f"{scipy['seconds'] if scipy else '-'} | {speedup} | {ours['peak_gib']} | "
            f"{scipy['peak_gib'] if scipy else '-'} | {ours['inputs_gib']} | {agree} |"
        )
        if "ours-files" in row:
            files = row["ours-files"]
            lines.append(
                f"| {row['case']} | {row['preset']}: .nii read + write cache | {shape} | {files['seconds']} | "
                f"- | - | - | {files['peak_gib']} | - | - | - |"
            )
        if "ours-nocrop" in row:
            full = row["ours-nocrop"]
            full_shape = " x ".join(str(v) for v in full["output_shape"])
            lines.append(
                f"| {row['case']} | {row['preset']}: nothing to crop | {full_shape} | {full['seconds']} | "
                f"- | - | - | {full['peak_gib']} | - | {full['inputs_gib']} | - |"
            )
    return "\n".join(lines)


def _machine() -> dict:
    import platform

    import torch

    return {"cpus": os.cpu_count(), "processor": platform.processor(), "torch": torch.__version__}


def _peak_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def _tag(target: tuple) -> str:
    return "x".join(f"{v:g}" for v in target)


if __name__ == "__main__":
    main()
