"""Benchmark: amoseg's DSC + NSD against DeepMind's ``surface-distance``, in the same run.

A synthetic 512 x 512 x 100 CT-like case (0.78 x 0.78 x 5 mm) holds all 15 AMOS organs as smoothly
deformed ellipsoids and tubes; the "prediction" is a perturbed copy (organs shifted, grown, shrunk and
with ragged boundaries). Both implementations score the same two arrays, organ by organ; the script
prints both times, their ratio, the largest difference between their numbers and the peak memory.

Usage:
    .venv/bin/python bench/evaluate.py [--repeats 3] [--tolerance 1.0 | --profile flare22]

``surface-distance`` is a test-only dependency; its release still uses ``np.Inf``/``np.NaN``, which
NumPy 2 removed, so they are restored here before it is imported (never in the product).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import tracemalloc
import warnings

import numpy as np
from scipy import ndimage

from amoseg.evaluation.metrics import score_organs
from amoseg.evaluation.tolerance import tolerances_for
from amoseg.labels import ORGAN_IDS

SHAPE = (512, 512, 100)
SPACING_MM = (0.78, 0.78, 5.0)

# Centre (x, y, z) in mm from the volume's corner and semi-axes in mm, per organ id; tubes are long
# thin ellipsoids. Positions are only roughly anatomical: what matters is size, shape and adjacency.
_ORGAN_SHAPES: dict[int, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    1: ((285, 210, 270), (45, 35, 55)),  # spleen
    2: ((140, 240, 225), (28, 25, 50)),  # right kidney
    3: ((260, 240, 230), (28, 25, 50)),  # left kidney
    4: ((135, 145, 245), (15, 14, 35)),  # gallbladder
    5: ((205, 215, 330), (7, 7, 60)),  # esophagus
    6: ((125, 180, 275), (85, 75, 70)),  # liver
    7: ((245, 150, 280), (55, 35, 55)),  # stomach
    8: ((210, 245, 230), (11, 11, 120)),  # aorta
    9: ((180, 230, 230), (10, 12, 110)),  # inferior vena cava
    10: ((210, 195, 230), (60, 12, 15)),  # pancreas
    11: ((165, 235, 290), (8, 4, 18)),  # right adrenal gland
    12: ((245, 235, 290), (8, 4, 18)),  # left adrenal gland
    13: ((170, 175, 205), (18, 14, 45)),  # duodenum
    14: ((200, 160, 90), (40, 32, 30)),  # bladder
    15: ((200, 190, 55), (18, 16, 16)),  # prostate/uterus
}


def make_reference(seed: int = 0) -> np.ndarray:
    """A label map indexed [x, y, z], Fortran-ordered like the arrays ``amoseg.io`` reads."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(SHAPE[::-1], dtype=np.uint8).T
    # Largest first, so that small organs lying against big ones are not painted over.
    by_size = sorted(_ORGAN_SHAPES.items(), key=lambda item: -np.prod(item[1][1]))
    for label, (centre, axes) in by_size:
        box = tuple(
            slice(max(0, int((c - 1.3 * a) / s)), min(n, int((c + 1.3 * a) / s) + 1))
            for c, a, s, n in zip(centre, axes, SPACING_MM, SHAPE, strict=True)
        )
        grid = np.meshgrid(
            *[
                (np.arange(b.start, b.stop) * s - c) / a
                for b, s, c, a in zip(box, SPACING_MM, centre, axes, strict=True)
            ],
            indexing="ij",
            sparse=True,
        )
        radius = grid[0] ** 2 + grid[1] ** 2 + grid[2] ** 2
        coarse = rng.normal(size=(6, 6, 6))
        wobble = ndimage.zoom(coarse, [size / 6 for size in radius.shape], order=3)[
            tuple(slice(0, n) for n in radius.shape)
        ]
        labels[box][radius <= 1.0 + 0.25 * wobble] = label
    return labels


def perturb(reference: np.ndarray, seed: int = 1) -> np.ndarray:
    """A plausible prediction: each organ shifted, grown or shrunk, with a ragged boundary."""
    rng = np.random.default_rng(seed)
    prediction = np.zeros_like(reference)
    boxes = ndimage.find_objects(reference.T, max_label=15)
    for label in ORGAN_IDS:
        if boxes[label - 1] is None:
            continue
        box = tuple(
            slice(max(0, b.start - 4), min(n, b.stop + 4))
            for b, n in zip(boxes[label - 1][::-1], SHAPE, strict=True)
        )
        mask = reference[box] == label
        mask = np.roll(mask, tuple(int(v) for v in rng.integers(-2, 3, 3) * (1, 1, 0)), axis=(0, 1, 2))
        change = rng.choice(["grow", "shrink", "none"])
        if change == "grow":
            mask = ndimage.binary_dilation(mask)
        elif change == "shrink":
            mask = ndimage.binary_erosion(mask)
        edge = mask ^ ndimage.binary_erosion(mask)
        mask &= ~(edge & (rng.random(mask.shape) < 0.3))
        prediction[box][mask] = label
    return prediction


def deepmind_scores(
    prediction: np.ndarray, reference: np.ndarray, tolerances: dict[int, float]
) -> list[tuple[float, float]]:
    """DSC and NSD per organ with DeepMind's code, organ by organ on full-volume masks."""
    import surface_distance

    scores = []
    for label in ORGAN_IDS:
        ref_mask, pred_mask = reference == label, prediction == label
        distances = surface_distance.compute_surface_distances(ref_mask, pred_mask, SPACING_MM)
        scores.append(
            (
                surface_distance.compute_dice_coefficient(ref_mask, pred_mask),
                surface_distance.compute_surface_dice_at_tolerance(distances, tolerances[label]),
            )
        )
    return scores


def amoseg_scores(
    prediction: np.ndarray, reference: np.ndarray, tolerances: dict[int, float]
) -> list[tuple[float, float]]:
    return [(s.dsc, s.nsd) for s in score_organs(prediction, reference, SPACING_MM, ORGAN_IDS, tolerances)]


def _timed(function, repeats: int) -> tuple[float, list]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each implementation; the median is reported"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--tolerance", type=float, default=1.0, help="NSD tolerance in mm for every organ")
    group.add_argument("--profile", choices=["flare22"], help="per-organ tolerance table instead")
    args = parser.parse_args(argv)

    np.Inf, np.NaN = np.inf, np.nan  # surface-distance 0.1 still uses the names NumPy 2 removed
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # its scipy.ndimage.filters imports

    tolerances = tolerances_for(ORGAN_IDS, tolerance_mm=args.tolerance, profile=args.profile)
    reference = make_reference(seed=0)
    prediction = perturb(reference, seed=1)
    voxels = np.bincount(reference.T.ravel(), minlength=16)[1:]
    print(
        f"case: {'x'.join(map(str, SHAPE))} voxels at {' x '.join(map(str, SPACING_MM))} mm, 15 organs "
        f"({int(voxels.min())}..{int(voxels.max())} voxels each)"
    )
    print(f"tolerance: {args.profile or f'{args.tolerance:g} mm for every organ'}")

    amoseg_time, ours = _timed(lambda: amoseg_scores(prediction, reference, tolerances), args.repeats)
    deepmind_time, theirs = _timed(lambda: deepmind_scores(prediction, reference, tolerances), args.repeats)
    difference = float(np.max(np.abs(np.array(ours) - np.array(theirs))))

    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    amoseg_scores(prediction, reference, tolerances)
    scoring_peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    inputs = reference.nbytes + prediction.nbytes
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    mib = 2**20
    print(f"amoseg:          {amoseg_time:8.3f} s   (median of {args.repeats})")
    print(f"surface-distance:{deepmind_time:8.3f} s   (median of {args.repeats}, organ by organ)")
    print(f"ratio:           {deepmind_time / amoseg_time:8.1f} x faster")
    print(
        f"max |difference| over 15 DSC + 15 NSD: {difference:.3g}  "
        f"({'identical' if difference <= 1e-12 else 'DIFFERENT'} to 1e-12)"
    )
    print(f"mean DSC {np.mean([d for d, _ in ours]):.4f}, mean NSD {np.mean([n for _, n in ours]):.4f}")
    print(
        f"peak memory: amoseg scoring {(scoring_peak + inputs) / mib:.0f} MiB "
        f"(inputs {inputs / mib:.0f} MiB + {scoring_peak / mib:.0f} MiB working, tracemalloc); "
        f"whole benchmark process max RSS {max_rss:.0f} MiB"
    )
    return 0 if difference <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
