"""Many cases: match predictions to references, check every grid up front, score cases in parallel.

Nothing is scored until every case has a prediction (or ``allow_missing``) on the reference's grid,
so a bad folder fails in seconds and with every problem named, before any output exists.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from amoseg.data.naming import case_ids_in_folder, describe_same_name, image_files, same_name_files
from amoseg.errors import AmosegError, InputError
from amoseg.evaluation.aggregate import Evaluation
from amoseg.evaluation.case import CaseResult, evaluate_case, require_same_grid
from amoseg.evaluation.tolerance import tolerances_for
from amoseg.labels import ORGAN_IDS, Modality, parse_label_ids

#: How many problems one error line lists before summarising the rest.
_LISTED_PROBLEMS = 5


@dataclass(frozen=True)
class CasePlan:
    """One case to score: its files and modality (None: undeclared)."""

    case_id: str
    modality: Modality | None
    reference: Path
    prediction: Path | None
    ignore_mask: Path | None = None


@dataclass(frozen=True)
class ReferenceInfo:
    """What the reference's dataset.json says: annotated labels and per-case modality."""

    dataset_json: Path | None
    annotated_labels: tuple[int, ...] | None
    modalities: dict[str, Modality]
    dataset_modality: Modality | None = None


def evaluate_folder(
    pred: str | Path,
    ref: str | Path,
    *,
    labels: str | Sequence[int] | None = None,
    tolerance_mm: float | None = None,
    tolerance_profile: str | None = None,
    ignore_mask: str | Path | None = None,
    allow_missing: bool = False,
    workers: int | None = None,
    progress: bool = False,
) -> Evaluation:
    """Score every reference case against its prediction.

    Args:
        pred, ref: two folders of label maps, matched by case id (``amos_0001.nii.gz`` and
            ``amos_0001_0000.nii.gz`` both name case ``amos_0001``), or two single files.
        labels: organ ids (or a string such as "1,2,6" or "liver,spleen") to score; default: the
            reference dataset.json's ``annotated_labels`` (found in REF or its parent folder), else all 15.
        tolerance_mm, tolerance_profile: NSD tolerance, as in ``tolerances_for``.
        ignore_mask: an image (one for every case) or a folder of images matched by case id; nonzero
            voxels are left out of both prediction and reference.
        allow_missing: score a reference case without prediction as an empty prediction instead of
            failing.
        workers: parallel processes (default: CPU count); cases are the unit of work.
        progress: show a progress bar on stderr.

    Raises:
        AmosegError: one line naming every problem found (missing predictions, grids that differ,
            unreadable files, label values outside 0..15).
    """
    pred, ref = Path(pred), Path(ref)
    try:
        if isinstance(labels, str):
            labels = parse_label_ids(labels)
        if labels is not None and not labels:
            raise ValueError(
                "no organ to score: labels is empty; give ids or names, e.g. 1,2,6 or liver,spleen"
            )
        tolerances = tolerances_for(ORGAN_IDS, tolerance_mm, tolerance_profile)
    except ValueError as error:
        raise AmosegError(str(error)) from None
    info = reference_info(ref)
    labels = tuple(sorted(set(labels if labels is not None else info.annotated_labels or ORGAN_IDS)))
    tolerances = {label: tolerances[label] for label in labels}
    plans, unmatched, problems = plan_cases(
        pred, ref, info, ignore_mask=ignore_mask, allow_missing=allow_missing
    )
    raise_problems(problems + grid_problems(plans))
    results = _score(plans, labels, tolerance_mm, tolerance_profile, workers, progress)
    return Evaluation(
        cases=tuple(sorted(results, key=lambda result: result.case_id)),
        labels=labels,
        tolerances_mm=tolerances,
        tolerance_profile=tolerance_profile,
        unmatched_predictions=unmatched,
    )


def reference_info(ref: Path) -> ReferenceInfo:
    """Read the dataset.json in REF or its parent (for a file: its folder or that folder's parent)."""
    from amoseg.data.layout import discover, find_dataset_json

    found = find_dataset_json(ref if ref.is_dir() else ref.parent)
    if found is None:
        return ReferenceInfo(dataset_json=None, annotated_labels=None, modalities={})
    dataset = discover(found.parent)
    return ReferenceInfo(
        dataset_json=found,
        annotated_labels=dataset.annotated_labels,
        modalities={case.case_id: case.modality for case in dataset.cases},
        dataset_modality=dataset.modality,
    )


def plan_cases(
    pred: Path,
    ref: Path,
    info: ReferenceInfo,
    *,
    ignore_mask: str | Path | None = None,
    allow_missing: bool = False,
) -> tuple[list[CasePlan], tuple[str, ...], list[str]]:
    """Pair each reference case with its prediction (and ignore mask).

    Returns:
        the plans of the cases that can be scored, in case order; the case ids of predictions that
        have no reference; and one message per problem (several predictions for one case, predictions
        missing without ``allow_missing``, ignore masks missing).

    Raises:
        AmosegError: PRED or REF missing or of different kinds, or no reference label maps.
    """
    from amoseg.data.layout import resolve_modality
    from amoseg.io.sitk_io import strip_image_suffix

    for path, name in ((pred, "PRED"), (ref, "REF")):
        if not path.exists():
            raise InputError(path, f"{name} not found")
    if ref.is_file() != pred.is_file():
        raise AmosegError(f"PRED ({pred}) and REF ({ref}) must both be folders or both be single files")
    if ref.is_file():
        references = {strip_image_suffix(ref.name): ref}
        predictions = {strip_image_suffix(ref.name): [pred]}
    else:
        references = {strip_image_suffix(path.name): path for path in image_files(ref)}
        if not references:
            raise InputError(
                ref,
                "holds no label maps (.nii.gz, .nii, .nrrd, .mha); point REF to the folder of "
                "reference labels, e.g. labelsTr",
            )
        predictions = case_ids_in_folder(pred, references)
    masks = _ignore_masks(ignore_mask, references)
    problems: list[str] = []
    if ref.is_dir():
        for name, paths in same_name_files(ref).items():
            problems.append(f"{ref}: {describe_same_name(name, paths)}")
            references.pop(name, None)
    missing: list[str] = []
    plans = []
    for case_id, reference in references.items():
        found = predictions.get(case_id, [])
        if len(found) > 1:
            names = ", ".join(path.name for path in found)
            problems.append(f"{pred}: {len(found)} predictions for case {case_id} ({names}); keep one")
            continue
        if not found and not allow_missing:
            missing.append(case_id)
            continue
        if ignore_mask is not None and case_id not in masks:
            problems.append(f"{ignore_mask}: no ignore mask for case {case_id}")
            continue
        plans.append(
            CasePlan(
                case_id=case_id,
                modality=info.modalities.get(case_id) or resolve_modality(case_id, info.dataset_modality),
                reference=reference,
                prediction=found[0] if found else None,
                ignore_mask=masks.get(case_id),
            )
        )
    if len(missing) == 1:
        problems.insert(
            0,
            f"{pred}: no prediction for case {missing[0]} (reference {references[missing[0]]}); add it, "
            "or pass `allow_missing` to score it as empty",
        )
    elif missing:
        problems.insert(
            0,
            f"{pred}: no prediction for {len(missing)} reference cases ({_few(missing)}); add them, or pass "
            "`allow_missing` to score them as empty",
        )
    unmatched = tuple(sorted(set(predictions) - set(references)))
    return plans, unmatched, problems


def grid_problems(plans: Sequence[CasePlan]) -> list[str]:
    """Read every header; one message per file that is unreadable or off its reference's grid."""
    from amoseg.io.sitk_io import read_header

    problems = []
    for plan in plans:
        try:
            reference = read_header(plan.reference).geometry
            for other in (plan.prediction, plan.ignore_mask):
                if other is not None:
                    require_same_grid(reference, read_header(other).geometry, other, plan.reference)
        except AmosegError as error:
            problems.append(str(error))
    return problems


def raise_problems(problems: Sequence[str]) -> None:
    """Raise one AmosegError whose single line lists the problems (the first few, then a count)."""
    if not problems:
        return
    if len(problems) == 1:
        raise AmosegError(problems[0])
    listed = " | ".join(problems[:_LISTED_PROBLEMS])
    more = len(problems) - _LISTED_PROBLEMS
    raise AmosegError(f"{len(problems)} problems: {listed}" + (f" | and {more} more" if more > 0 else ""))


def _few(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED_PROBLEMS])
    return shown + (f" and {len(names) - _LISTED_PROBLEMS} more" if len(names) > _LISTED_PROBLEMS else "")


def _ignore_masks(ignore_mask: str | Path | None, references: dict[str, Path]) -> dict[str, Path]:
    if ignore_mask is None:
        return {}
    path = Path(ignore_mask)
    if not path.exists():
        raise InputError(path, "ignore mask not found")
    if path.is_file():
        return dict.fromkeys(references, path)
    return {case_id: files[0] for case_id, files in case_ids_in_folder(path, references).items()}


@dataclass(frozen=True)
class _Task:
    plan: CasePlan
    labels: tuple[int, ...]
    tolerance_mm: float | None
    tolerance_profile: str | None


def _run_task(task: _Task) -> CaseResult | str:
    """Score one case; an input problem comes back as its message (InputError does not pickle)."""
    plan = task.plan
    try:
        return evaluate_case(
            plan.prediction,
            plan.reference,
            labels=task.labels,
            tolerance_mm=task.tolerance_mm,
            tolerance_profile=task.tolerance_profile,
            ignore_mask=plan.ignore_mask,
            case_id=plan.case_id,
            modality=plan.modality,
        )
    except AmosegError as error:
        return str(error)


def _score(
    plans: Sequence[CasePlan],
    labels: tuple[int, ...],
    tolerance_mm: float | None,
    tolerance_profile: str | None,
    workers: int | None,
    progress: bool,
) -> list[CaseResult]:
    tasks = [_Task(plan, labels, tolerance_mm, tolerance_profile) for plan in plans]
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    if workers == 1:
        with _ProgressBar(len(tasks), progress) as bar:
            return [bar.collect(_run_task(task)) for task in tasks]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        # Submit before the progress bar starts its refresh thread, so that workers are forked from a
        # process with no other thread running.
        pending = {pool.submit(_run_task, task) for task in tasks}
        try:
            with _ProgressBar(len(tasks), progress) as bar:
                results = []
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    results.extend(bar.collect(future.result()) for future in done)
                return results
        except BaseException:
            # Stop at the first bad case: the queued ones would only delay the error.
            pool.shutdown(wait=True, cancel_futures=True)
            raise


class _ProgressBar:
    """A rich progress bar on stderr that turns a worker's error message into an AmosegError."""

    def __init__(self, total: int, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn("evaluate"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        self._progress = Progress(*columns, console=Console(stderr=True), disable=not enabled, transient=True)
        self._task = self._progress.add_task("evaluate", total=total)

    def __enter__(self) -> _ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._progress.stop()

    def collect(self, outcome: CaseResult | str) -> CaseResult:
        if isinstance(outcome, str):
            raise AmosegError(outcome)
        self._progress.advance(self._task)
        return outcome
