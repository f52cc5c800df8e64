"""Benchmark: bfloat16 autocast against float32 prediction with a trained model.

Every image of a folder is predicted twice with the same trained model, once in float32 and once under
bfloat16 autocast, alternating which goes first; prints the network seconds of each, their ratio, and
per organ the Dice between the two label maps (the agreement, not accuracy) over all cases. bf16 is
worth making the default only where every organ's agreement stays at or above 0.99.

    .venv/bin/python bench/predict_bf16.py --model RUN_DIR --images DATASET/imagesTs [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

AGREEMENT_TARGET = 0.99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="trained run or fold folder")
    parser.add_argument(
        "--images", type=Path, required=True, help="folder of images (modality from case ids)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tta", action="store_true", help="mirroring test-time augmentation")
    args = parser.parse_args()

    import numpy as np
    import torch

    from amoseg.data.naming import case_number, image_files
    from amoseg.inference.predictor import PredictOptions, predict_image
    from amoseg.inference.windows import WindowSettings
    from amoseg.io import read_image
    from amoseg.io.sitk_io import strip_image_suffix
    from amoseg.labels import ORGAN_BY_ID, modality_from_case_id
    from amoseg.model.loading import load_model

    torch.set_num_threads(args.threads)
    model = load_model(args.model, device=args.device)
    images = image_files(args.images)
    if not images:
        parser.error(f"{args.images}: no images")
    options = {
        name: PredictOptions(
            windows=WindowSettings(mirror=args.tta, autocast_dtype=dtype),
            device=args.device,
            postprocess=False,
        )
        for name, dtype in (("fp32", None), ("bf16", "bfloat16"))
    }
    seconds = {"fp32": 0.0, "bf16": 0.0}
    overlap = np.zeros((3, 16), dtype=np.int64)  # |A and B|, |A|, |B| per label
    for index, path in enumerate(images):
        modality = modality_from_case_id(case_number(strip_image_suffix(path.name)))
        image = read_image(path)
        order = ("fp32", "bf16") if index % 2 == 0 else ("bf16", "fp32")
        labels = {}
        for name in order:
            started = time.perf_counter()
            prediction = predict_image(image, model, modality, options[name])
            seconds[name] += prediction.seconds.get("network", time.perf_counter() - started)
            labels[name] = prediction.label.array
        a, b = labels["fp32"].ravel(), labels["bf16"].ravel()
        overlap[0] += np.bincount(a[a == b], minlength=16)[:16]
        overlap[1] += np.bincount(a, minlength=16)[:16]
        overlap[2] += np.bincount(b, minlength=16)[:16]
        print(
            f"{path.name} ({modality}): fp32 and bf16 agree on {float(np.mean(a == b)):.5f} of voxels",
            flush=True,
        )

    agreement = {}
    for label in range(1, 16):
        denominator = overlap[1, label] + overlap[2, label]
        if denominator:
            agreement[ORGAN_BY_ID[label].name] = round(float(2 * overlap[0, label] / denominator), 4)
    worst = min(agreement.values()) if agreement else float("nan")
    result = {
        "cases": len(images),
        "device": args.device,
        "tta": args.tta,
        "network_seconds": {name: round(value, 2) for name, value in seconds.items()},
        "bf16_over_fp32_time": round(seconds["bf16"] / seconds["fp32"], 3),
        "dice_bf16_vs_fp32": agreement,
        "worst_organ_agreement": worst,
        "bf16_default_allowed": bool(worst >= AGREEMENT_TARGET),
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
