"""``amoseg stats``: read every case once, in parallel, and write the dataset card and fingerprint.

Outputs in the chosen folder: ``stats.json`` (the contract of ``amoseg.data.card.build_card``),
``stats.md`` (the card's tables), one CSV per table, ``fingerprint.json`` for planning, and plots.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from amoseg.atomic import remove_stale_temporaries, write_json, write_text
from amoseg.data.card import build_card, card_markdown, card_tables
from amoseg.data.check import label_values, undeclared_labels
from amoseg.data.fingerprint import Fingerprint, build_fingerprint
from amoseg.data.layout import Case, discover_together, require_outside
from amoseg.data.statistics import MAX_FLOAT_VALUES, CaseStatistics, StatisticsAccumulator, case_statistics
from amoseg.errors import AmosegError, InputError
from amoseg.io.sitk_io import read_header, read_image, read_label


@dataclass(frozen=True)
class Skipped:
    """A case left out of the statistics, and why (one line)."""

    case_id: str
    reason: str


def describe_dataset(
    datasets: str | Path | Sequence[str | Path],
    output: str | Path,
    *,
    workers: int | None = None,
    strict: bool = False,
    progress: bool = True,
    plots: bool = True,
    max_float_values: int = MAX_FLOAT_VALUES,
) -> dict:
    """Compute the card and the fingerprint of a dataset, or of several together, and write them to
    ``output``.

    Several datasets (planned together for one model) give one card and one fingerprint over all
    their cases, each case with its own dataset's annotated labels: percentiles over CT from two
    datasets can only be exact when computed over both at once.

    A case that cannot be read, or whose image and label lie on different grids, is reported in one
    line and skipped; with ``strict`` it stops the run (``AmosegError``) before anything is written.

    Returns:
        the card (the content of ``stats.json``).

    Raises:
        AmosegError: no readable case, or as ``data.layout.discover_together``.
    """
    from amoseg.parallel import bounded_map, default_workers
    from amoseg.progress import track

    found = discover_together(datasets)
    for dataset in found:
        require_outside(dataset.root, output, "the statistics folder")
    # Cases discovery refused or found missing are reported like unreadable ones, never dropped silently.
    skipped = [
        Skipped(problem.case or "dataset", problem.line()) for dataset in found for problem in dataset.errors
    ]
    if strict and skipped:
        raise AmosegError(skipped[0].reason)
    for item in skipped:
        print(f"skipped {item.case_id}: {item.reason}")
    refused = {item.case_id for item in skipped}
    cases = [
        (case, frozenset(dataset.labels))
        for dataset in found
        for case in dataset.cases
        if case.case_id not in refused
    ]
    if not cases:
        raise AmosegError(f"{', '.join(str(dataset.root) for dataset in found)}: no readable cases found")
    accumulator = StatisticsAccumulator(max_float_values=max_float_values)
    results = bounded_map(_case_job, cases, default_workers(workers, len(cases)))
    for result in track(results, total=len(cases), description="statistics", enabled=progress):
        if isinstance(result, Skipped):
            if strict:
                raise AmosegError(f"{result.case_id}: {result.reason}")
            print(f"skipped {result.case_id}: {result.reason}")
            skipped.append(result)
        else:
            accumulator.add(result)
    accumulator.cases.sort(key=lambda case: case.case_id)
    name = "+".join(dataset.name for dataset in found)
    # Label ids are AMOS's in every dataset; where two name one id differently, the first one's name.
    declared = {label: text for dataset in reversed(found) for label, text in dataset.labels.items()}
    annotated = sorted({label for dataset in found for label in dataset.annotated_labels})
    card = build_card(
        accumulator,
        name=name,
        declared_labels=dict(sorted(declared.items())),
        annotated_labels=tuple(annotated),
        skipped=[f"{item.case_id}: {item.reason}" for item in sorted(skipped, key=lambda s: s.case_id)],
    )
    _write_outputs(Path(output), card, build_fingerprint(accumulator, name), accumulator, plots)
    return card


def _case_job(job: tuple[Case, frozenset[int]]) -> CaseStatistics | Skipped:
    case, declared = job
    try:
        image_header = read_header(case.image)
        label = None
        if case.label is not None and case.label.exists():
            differences = image_header.geometry.differences(read_header(case.label).geometry)
            if differences:
                return Skipped(case.case_id, "label and image grids differ: " + "; ".join(differences))
            label = read_label(case.label)
            problem = undeclared_labels(label_values(label.array), declared)
            if problem:
                return Skipped(case.case_id, f"{case.label}: {problem}")
        image = read_image(case.image)
    except InputError as error:
        return Skipped(case.case_id, str(error))
    return case_statistics(
        case.case_id,
        case.modality,
        case.split,
        image,
        label,
        case.annotated_labels,
        file_format=_format(case.image),
    )


def _format(path: Path) -> str:
    if path.is_dir():
        return "DICOM"
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


#: Plot files of ``amoseg.data.plots`` (names without suffix), for cleaning up after a kill.
_PLOT_NAMES = ("volumes", "intensity_ct", "intensity_mr", "spacing")


def _write_outputs(output: Path, card: dict, fingerprint: Fingerprint, accumulator, plots: bool) -> None:
    output.mkdir(parents=True, exist_ok=True)
    # Hidden temporaries of a killed run; the folder may hold the user's files, so only ours go.
    remove_stale_temporaries(output, [*card_tables(card), *_PLOT_NAMES, "fingerprint", "stats"])
    for name, rows in card_tables(card).items():
        write_text(output / f"{name}.csv", _csv(rows))
    if plots:
        from amoseg.data.plots import plot_statistics

        plot_statistics(card, accumulator, output)
    fingerprint.save(output)
    write_text(output / "stats.md", card_markdown(card))
    # Written last: a stats.json present means the run finished.
    write_json(output / "stats.json", card)


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()
