"""Benchmark of `amoseg stats`: seconds per case against just reading the files, and peak memory.

Phantoms of the card's median size (512 x 512 x 100) are generated once into --data (reused on later
runs). The baseline reads every image and label file with the same number of worker processes; the
statistics run then computes the whole card (plots left out: they cost the same whatever the data).

    .venv/bin/python bench/stats.py --cases 50 --data /tmp/amoseg_bench_stats

Target: statistics time within 1.5 x the read time; memory bounded whatever the number of cases.
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

from amoseg.atomic import write_json
from amoseg.data.describe import describe_dataset
from amoseg.data.layout import discover
from amoseg.data.phantom import generate_case
from amoseg.io import read_image, read_label, write_image
from amoseg.parallel import bounded_map, default_workers

SHAPE = (512, 512, 100)
SPACING = (0.78, 0.78, 5.0)


def _case_number(index: int) -> int:
    return index + 1 if index % 5 else 501 + index  # the AMOS mix: mostly CT, some MR


def _make_case(job: tuple[Path, int]) -> None:
    root, index = job
    number = _case_number(index)
    case_id = f"amos_{number:04d}"
    label_path = root / "labelsTr" / f"{case_id}.nii.gz"
    if not label_path.exists():
        modality = "CT" if number <= 500 else "MR"
        image, label = generate_case(number, modality, seed=index, shape=SHAPE, spacing=SPACING)
        write_image(image, root / "imagesTr" / f"{case_id}.nii.gz")
        write_image(label, label_path)


def make_cases(root: Path, count: int, workers: int) -> None:
    """Generate the phantoms in worker processes, so the measuring process starts small."""
    for _ in bounded_map(_make_case, [(root, index) for index in range(count)], workers):
        pass
    entries = [
        {"image": f"./imagesTr/amos_{number:04d}.nii.gz", "label": f"./labelsTr/amos_{number:04d}.nii.gz"}
        for number in map(_case_number, range(count))
    ]
    write_json(root / "dataset.json", {"name": "bench-stats", "training": entries})


def _read_case(paths: tuple[Path, Path]) -> int:
    return read_image(paths[0]).array.size + read_label(paths[1]).array.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "amoseg_bench_stats")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.data, args.workers)
        return

    workers = default_workers(args.workers, args.cases)
    make_cases(args.data, args.cases, workers)
    # Measure in a fresh process: its peak memory is then the statistics run's alone.
    command = [sys.executable, __file__, "--measure", "--data", str(args.data), "--workers", str(workers)]
    subprocess.run(command, check=True)


def measure(data: Path, workers: int) -> None:
    cases = discover(data).cases

    def read_all() -> float:
        start = time.perf_counter()
        for _ in bounded_map(_read_case, [(case.image, case.label) for case in cases], workers):
            pass
        return time.perf_counter() - start

    # The baseline runs before and after the statistics, so drift on a noisy machine hits both.
    read_before = read_all()
    with tempfile.TemporaryDirectory() as output:
        start = time.perf_counter()
        card = describe_dataset(data, output, workers=workers, progress=False, plots=False)
        stats_seconds = time.perf_counter() - start
    read_seconds = (read_before + read_all()) / 2
    assert card["meta"]["cases"] == len(cases)

    kib = 1024
    results = {
        "cases": len(cases),
        "shape": list(SHAPE),
        "workers": workers,
        "read_seconds_per_case": read_seconds / len(cases),
        "stats_seconds_per_case": stats_seconds / len(cases),
        "ratio_stats_over_read": stats_seconds / read_seconds,
        "peak_rss_main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib,
        "peak_rss_largest_worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib,
    }
    print(json.dumps(results, indent=2))
    print(f"ratio (stats / read): {results['ratio_stats_over_read']:.2f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
