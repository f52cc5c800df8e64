"""``amoseg preprocess``: a dataset's labelled training and validation cases into ``OUTPUT/<plan id>/``.

Cases already complete for the same plan are skipped (``overwrite`` redoes them). A case that cannot
be read or processed is reported in one line and the others go on; the run then fails (exit 1) naming
how many failed, so a rerun picks up only what is missing. Test cases, labelled or not, are left to
the predictor, which preprocesses them on the fly with ``preprocess_case``: they never enter a
training cache.

Several datasets planned together (``amoseg plan D1 D2``) are preprocessed one after the other into
the same cache; each case records its dataset, so a case id that two datasets share is refused
rather than silently replaced.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from amoseg.atomic import read_json, write_json
from amoseg.data.layout import Case, discover, require_outside
from amoseg.errors import AmosegError, InputError
from amoseg.planning.plan import Plan
from amoseg.preprocessing.cache import PlanCache

#: Splits that are preprocessed: what training and model selection read.
SPLITS = ("train", "validation")


@dataclass(frozen=True)
class CaseOutcome:
    """What happened to one case: status is "done", "skipped" or "failed"."""

    case_id: str
    status: str
    seconds: float = 0.0
    message: str = ""


@dataclass
class PreprocessReport:
    """The run's outcome: where it wrote, and every case's status."""

    folder: Path
    outcomes: list[CaseOutcome] = field(default_factory=list)

    def with_status(self, status: str) -> list[CaseOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == status]


def preprocess_dataset(
    dataset: str | Path,
    plan: Plan,
    output: str | Path,
    *,
    overwrite: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> PreprocessReport:
    """Preprocess a dataset's labelled train and validation cases with ``plan`` into ``output/<plan id>/``.

    Args:
        dataset: dataset folder (never written to).
        plan: the plan (``Plan.load("plans.json")``).
        output: cache root; the plan's folder is created inside it.
        overwrite: redo cases that are already complete.
        workers: parallel processes (default: CPU count, at most the number of cases); the CPU cores
            are shared out among them as torch threads.
        progress: show a progress bar.

    Returns:
        the report; failures are in it, the caller decides how to end (``api.preprocess`` raises).

    Raises:
        AmosegError: the dataset has no labelled case, the output lies inside the dataset, a modality
            of the dataset has no normalization in the plan, or a case id is already in the cache from
            another dataset.
    """
    from amoseg.parallel import bounded_map, default_workers
    from amoseg.progress import track

    root = Path(dataset)
    found = discover(root)
    # What discovery refused (a path outside the dataset, a listed file missing, no modality) fails
    # like an unreadable case: reported, the others done, the run then exits 1.
    test_cases = {case.case_id for case in found.split("test")}  # never preprocessed: not our concern
    refused = [
        CaseOutcome(problem.case or "dataset.json", "failed", message=problem.line())
        for problem in found.errors
        if problem.case not in test_cases
    ]
    refused_ids = {outcome.case_id for outcome in refused}
    cases = [
        case for case in found.labelled_cases if case.split in SPLITS and case.case_id not in refused_ids
    ]
    if not cases:
        reason = f" ({refused[0].message})" if refused else ""
        raise AmosegError(f"{root}: no labelled training or validation cases to preprocess{reason}")
    require_outside(root, output, "the preprocessing cache")
    for modality in sorted({case.modality for case in cases}):
        plan.normalization_for(modality)

    _refuse_collisions(PlanCache.at(output, plan), found.name, cases)  # before anything is written
    cache = PlanCache.create(output, plan)
    report = PreprocessReport(cache.folder)
    for outcome in refused:
        print(f"failed {outcome.case_id}: {outcome.message}")
        report.outcomes.append(outcome)
    todo = []
    for case in cases:
        if not overwrite and cache.is_complete(case.case_id):
            report.outcomes.append(CaseOutcome(case.case_id, "skipped"))
        else:
            todo.append(case)
    if todo:
        count = default_workers(workers, len(todo))
        threads = max(1, (os.cpu_count() or 1) // count)
        job = partial(
            _case_job,
            plan_json=plan.to_json(),
            cache=cache,
            threads=threads,
            declared=tuple(found.labels),
            dataset=found.name,
        )
        results = bounded_map(job, todo, count)
        for outcome in track(results, total=len(todo), description="preprocess", enabled=progress):
            if outcome.status == "failed":
                print(f"failed {outcome.case_id}: {outcome.message}")
            report.outcomes.append(outcome)
    report.outcomes.sort(key=lambda outcome: outcome.case_id)
    _write_summary(cache, plan, found.name, root, report)
    return report


def _refuse_collisions(cache: PlanCache, dataset: str, cases: list[Case]) -> None:
    """A case id the cache already holds from another dataset: writing it would replace that dataset's
    case (``overwrite`` included), and training would never know."""
    for case in cases:
        if not cache.is_complete(case.case_id):
            continue
        source = cache.properties(case.case_id).dataset
        if source and source != dataset:
            raise InputError(
                cache.case_folder(case.case_id),
                f"case {case.case_id} of {dataset} is already in this cache from dataset {source}; "
                "case ids must be unique across the datasets of one cache: rename one of them",
            )


def _write_summary(cache: PlanCache, plan: Plan, dataset: str, root: Path, report: PreprocessReport) -> None:
    """One entry per dataset preprocessed into the cache: a second dataset keeps the first one's."""
    path = cache.summary_path()
    try:
        previous = read_json(path, "preprocessing summary") if path.is_file() else {}
    except AmosegError:
        previous = {}  # a damaged summary is only a record: this run's entry replaces it
    datasets = previous.get("datasets") if isinstance(previous, dict) else None
    datasets = datasets if isinstance(datasets, dict) else {}
    datasets[dataset] = {
        "folder": str(root),
        "cases": {o.case_id: {"status": o.status, "seconds": round(o.seconds, 3)} for o in report.outcomes},
        "failed": {o.case_id: o.message for o in report.with_status("failed")},
    }
    write_json(path, {"plan_id": plan.plan_id, "datasets": datasets})


def _case_job(
    case: Case, plan_json: str, cache: PlanCache, threads: int, declared: tuple[int, ...], dataset: str
) -> CaseOutcome:
    import torch

    from amoseg.data.check import label_values, undeclared_labels
    from amoseg.io.sitk_io import read_image, read_label
    from amoseg.preprocessing.case import preprocess_case

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        image = read_image(case.image)
        label = read_label(case.label) if case.label is not None else None
        problem = undeclared_labels(label_values(label.array), set(declared)) if label is not None else None
        if problem:
            raise InputError(case.label, problem)
        result = preprocess_case(
            image,
            label,
            case.modality,
            Plan.from_json(plan_json),
            case_id=case.case_id,
            split=case.split,
            annotated_labels=case.annotated_labels,
            absent_labels=case.absent_labels,
            dataset=dataset,
        )
        del image, label
        cache.write(result)
    except (AmosegError, ValueError, TypeError) as error:
        return CaseOutcome(case.case_id, "failed", time.perf_counter() - start, str(error))
    finally:
        torch.set_num_threads(previous)
    return CaseOutcome(case.case_id, "done", time.perf_counter() - start)
