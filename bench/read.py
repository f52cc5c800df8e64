"""Benchmark of image reading: amoseg's reader against SimpleITK's, time and peak memory.

amoseg reads single-file NIfTI voxels itself (``amoseg.io.nifti_voxels``): one pass that inflates the
gzip stream straight into the returned array, checks its CRC-32 and length, and counts NaN and
infinite voxels; ITK still reads the header. The baseline is what amoseg did before and what most
tools do: ``sitk.ReadImage`` then ``sitk.GetArrayFromImage`` (no checksum; NaN read as 0). Other
formats go through ITK in both, amoseg sharing ITK's buffer instead of copying it.

Files (made once into --data): a CT phantom of the dataset card's median size (512 x 512 x 100) as
int16 .nii.gz, float32 .nii.gz and int16 .mha, and its label map as uint8 .nii.gz. Each reader runs
--repeats times per file, alternating, in one process; the medians give the time ratio. Peak memory
is measured in a fresh process per reader and file, above that process's resident size after import.

    .venv/bin/python bench/read.py --data /tmp/amoseg_bench_read

Targets: time ratio at most 1.0 for NIfTI (the checks are free), peak memory about one volume.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (512, 512, 100)
SPACING = (0.78, 0.78, 5.0)
FILES = ("ct_int16.nii.gz", "ct_float32.nii.gz", "ct_int16.mha", "label_uint8.nii.gz")


def make_files(data: Path) -> None:
    from amoseg.data.phantom import generate_case
    from amoseg.io import Image, write_image

    if all((data / name).is_file() for name in FILES):
        return
    image, label = generate_case(1, "CT", seed=0, shape=SHAPE, spacing=SPACING)
    write_image(image, data / "ct_int16.nii.gz")
    write_image(Image(image.array.astype(np.float32), image.geometry), data / "ct_float32.nii.gz")
    write_image(image, data / "ct_int16.mha")
    write_image(label, data / "label_uint8.nii.gz")


def read_amoseg(path: Path) -> np.ndarray:
    from amoseg.io import read_image

    return read_image(path).array


def read_simpleitk(path: Path) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).T


READERS = {"amoseg": read_amoseg, "simpleitk": read_simpleitk}


def high_water_kib() -> int:
    """This process's peak resident size so far (Linux's VmHWM), in KiB."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])


def peak_above_baseline_mib(reader: str, path: Path) -> float:
    """Resident memory a fresh process gains while reading ``path`` (MiB)."""
    # VmHWM is the fresh address space's own high-water mark; ru_maxrss would start from this
    # process's resident size, inherited through fork.
    code = (
        "import sys; sys.path.insert(0, sys.argv[3]); import read as bench; import amoseg.io, SimpleITK; "
        "base = bench.high_water_kib(); array = bench.READERS[sys.argv[1]](bench.Path(sys.argv[2])); "
        "print((bench.high_water_kib() - base) / 1024)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, reader, str(path), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "amoseg_bench_read")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    make_files(args.data)

    results = {}
    for name in FILES:
        path = args.data / name
        seconds: dict[str, list[float]] = {reader: [] for reader in READERS}
        for _ in range(args.repeats):  # alternating, so drift on a noisy machine hits both
            for reader, read in READERS.items():
                start = time.perf_counter()
                array = read(path)
                seconds[reader].append(time.perf_counter() - start)
                del array
        ours, theirs = (statistics.median(seconds[reader]) for reader in READERS)
        volume_mib = np.prod(SHAPE) * np.dtype(name.split("_")[1].split(".")[0]).itemsize / 2**20
        peaks = {reader: peak_above_baseline_mib(reader, path) for reader in READERS}
        results[name] = {
            "amoseg_s": round(ours, 4),
            "simpleitk_s": round(theirs, 4),
            "time_ratio": round(ours / theirs, 3),
            "volume_mib": round(float(volume_mib), 1),
            "peak_amoseg_mib": round(peaks["amoseg"], 1),
            "peak_simpleitk_mib": round(peaks["simpleitk"], 1),
        }
    print(json.dumps(results, indent=2))
    for name, row in results.items():
        print(
            f"{name:20s} time amoseg/SimpleITK {row['time_ratio']:.2f}; peak "
            f"{row['peak_amoseg_mib'] / row['volume_mib']:.2f} vs "
            f"{row['peak_simpleitk_mib'] / row['volume_mib']:.2f} volumes"
        )
    main_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {main_peak:.0f} MiB")


if __name__ == "__main__":
    main()
