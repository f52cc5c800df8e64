"""``amoseg plan``: read (or compute) a dataset's fingerprint, plan, and write ``plans.json``."""

from __future__ import annotations

import copy
from pathlib import Path

from amoseg.atomic import read_json
from amoseg.data.layout import require_outside
from amoseg.errors import AmosegError, InputError
from amoseg.planning.plan import PLANS_FILE, Plan
from amoseg.planning.planner import check_preset, make_plan

FINGERPRINT_FILE = "fingerprint.json"


def plan_dataset(
    dataset: str | Path,
    *,
    preset: str,
    output: str | Path,
    stats: str | Path | None = None,
    gpu_memory_gb: float | None = None,
    cpu_step_seconds: float | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> Plan:
    """Plan a dataset and write the plan to ``output``.

    Args:
        dataset: dataset folder (never written to).
        preset: fullres, fast or cpu.
        output: the plans.json to write, or an existing folder to write ``plans.json`` into.
        stats: folder holding ``fingerprint.json`` from ``amoseg stats``; default ``stats/`` beside
            ``output``. When the fingerprint is missing it is computed there first (no plots).
        gpu_memory_gb: GPU memory budget (GPU presets; default 8).
        cpu_step_seconds: seconds per training step on 2 cores (cpu preset; default 0.4).
        workers: processes for computing a missing fingerprint.
        progress: progress bar while computing a missing fingerprint.

    Raises:
        AmosegError: unknown preset, bad budget, unreadable fingerprint, or an output or stats folder
            inside the dataset.
    """
    check_preset(preset, gpu_memory_gb, cpu_step_seconds)  # before a missing fingerprint is computed
    root = Path(dataset)
    if not root.is_dir():
        raise InputError(root, "dataset folder not found")
    output = plans_path(output)
    stats_folder = Path(stats) if stats is not None else output.parent / "stats"
    for path, what in ((output, "the plan file"), (stats_folder, "the stats folder")):
        require_outside(root, path, what)
    fingerprint_path = stats_folder / FINGERPRINT_FILE
    if not fingerprint_path.is_file():
        from amoseg.data.describe import describe_dataset

        if progress:
            print(f"No fingerprint in {stats_folder}; computing it (amoseg stats) first")
        describe_dataset(root, stats_folder, workers=workers, progress=progress, plots=False)
    fingerprint = with_canonical_axes(read_fingerprint(fingerprint_path), root)
    if not any("axis_permutation" in case for case in fingerprint["cases"]):
        raise InputError(
            fingerprint_path,
            f"describes none of the cases in {root}; point --stats at this dataset's statistics or remove it",
        )
    plan = make_plan(fingerprint, preset, gpu_memory_gb, cpu_step_seconds=cpu_step_seconds)
    plan.save(output)
    return plan


def plans_path(output: str | Path) -> Path:
    """The plan file ``output`` names: itself, or ``plans.json`` inside it when it is a folder."""
    output = Path(output)
    return output / PLANS_FILE if output.is_dir() else output


def read_fingerprint(path: Path) -> dict:
    """The content of a fingerprint.json.

    Raises:
        InputError: unreadable, not JSON, or without a case list.
    """
    fingerprint = read_json(path, "fingerprint")
    if not isinstance(fingerprint, dict) or not isinstance(fingerprint.get("cases"), list):
        raise InputError(path, "not an amoseg fingerprint (no case list); rerun `amoseg stats`")
    return fingerprint


def with_canonical_axes(fingerprint: dict, dataset: Path) -> dict:
    """A copy whose case entries carry ``axis_permutation`` to the canonical orientation.

    Read from each image's header (no voxels loaded). Cases whose image cannot be found or read keep
    their own axis order.
    """
    from amoseg.data.layout import discover
    from amoseg.io.sitk_io import read_header
    from amoseg.preprocessing.orientation import canonical_reorientation

    images = {case.case_id: case.image for case in discover(dataset).cases}
    result = copy.deepcopy(fingerprint)
    for case in result["cases"]:
        image = images.get(case.get("case_id"))
        if image is None:
            continue
        try:
            direction = read_header(image).geometry.direction
        except AmosegError:
            continue
        case["axis_permutation"] = list(canonical_reorientation(direction).permutation)
    return result
