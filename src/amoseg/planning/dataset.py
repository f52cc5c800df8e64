"""``amoseg plan``: read a dataset's fingerprint, plan, and write ``plans.json``.

Planning reads the fingerprint only (``amoseg.data.fingerprint.Fingerprint``), never an image: each
case's orientation was recorded by ``amoseg stats``. Computing a missing fingerprint is the caller's
choice (``compute_fingerprint``), so this stage does not run the stage before it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from amoseg.data.fingerprint import Fingerprint, fingerprint_path
from amoseg.data.layout import discover_together, require_outside
from amoseg.errors import InputError
from amoseg.planning.plan import PLANS_FILE, MeasuredStep, Plan
from amoseg.planning.planner import PRESET_SETTINGS, check_preset, make_plan, size_by_measurement


def plan_dataset(
    datasets: str | Path | Sequence[str | Path],
    *,
    preset: str,
    output: str | Path,
    stats: str | Path | None = None,
    gpu_memory_gb: float | None = None,
    cpu_step_seconds: float | None = None,
    compute_fingerprint: Callable[[list[Path], Path], None] | None = None,
    measure: Callable[[Plan], MeasuredStep] | None = None,
) -> Plan:
    """Plan one dataset, or several for one model, and write the plan to ``output``.

    Several datasets (AMOS with BTCV and CHAOS, say) are planned from one fingerprint over all their
    cases, so each modality's intensity percentiles are exact over every dataset that has it. Each
    dataset keeps its own ``annotated_labels``: preprocessing records them per case.

    Args:
        datasets: a dataset folder, or several (never written to).
        preset: fullres, fast or cpu.
        output: the plans.json to write, or an existing folder to write ``plans.json`` into.
        stats: folder holding ``fingerprint.json`` from ``amoseg stats`` over all of ``datasets``;
            default ``stats/`` beside ``output``.
        gpu_memory_gb: GPU memory budget (GPU presets; default 8).
        cpu_step_seconds: seconds per training step (cpu preset; default 0.4): on this machine when
            ``measure`` is given, else on the reference 2 cores.
        compute_fingerprint: called as ``compute_fingerprint(dataset folders, stats folder)`` when the
            stats folder holds no usable fingerprint (none, an older format, or a damaged one), after
            the request has been checked; None: such a fingerprint is an error.
        measure: for the cpu preset, times one training step of a plan on this machine; the plan is
            then sized by this machine's speed (``planner.size_by_measurement``). None: by the
            reference machine's.

    Raises:
        AmosegError: unknown preset, bad budget, a dataset folder given twice, two datasets of one name or
            sharing a case id, a missing, unreadable or outdated fingerprint, one that describes none
            of a dataset's cases, or an output or stats folder inside a dataset.
    """
    check_preset(preset, gpu_memory_gb, cpu_step_seconds)  # before a missing fingerprint is computed
    found = discover_together(datasets)
    roots = [dataset.root for dataset in found]
    output = plans_path(output)
    stats_folder = Path(stats) if stats is not None else output.parent / "stats"
    for root in roots:
        for path, what in ((output, "the plan file"), (stats_folder, "the stats folder")):
            require_outside(root, path, what)
    if compute_fingerprint is not None and not fingerprint_path(stats_folder).is_file():
        compute_fingerprint(roots, stats_folder)
    try:
        fingerprint = Fingerprint.load(stats_folder)
    except InputError:
        if compute_fingerprint is None:
            raise
        # Older than this amoseg, or damaged: what ``amoseg stats`` writes replaces it.
        compute_fingerprint(roots, stats_folder)
        fingerprint = Fingerprint.load(stats_folder)
    for dataset in found:
        if not fingerprint.case_ids & {case.case_id for case in dataset.cases}:
            together = " with the others planned together" if len(found) > 1 else ""
            raise InputError(
                fingerprint_path(stats_folder),
                f"describes none of the cases in {dataset.root}; point `stats` at the statistics of this "
                f"dataset{together} or remove it",
            )
    if measure is not None and PRESET_SETTINGS[preset].device == "cpu":
        plan = size_by_measurement(fingerprint, preset, measure, cpu_step_seconds=cpu_step_seconds)
    else:
        plan = make_plan(fingerprint, preset, gpu_memory_gb, cpu_step_seconds=cpu_step_seconds)
    plan.save(output)
    return plan


def plans_path(output: str | Path) -> Path:
    """The plan file ``output`` names: itself, or ``plans.json`` inside it when it is a folder."""
    output = Path(output)
    return output / PLANS_FILE if output.is_dir() else output
