"""The box at the top of the report: the result first, then what it rests on and what went wrong.

Headline DSC and NSD per modality (``evaluation/summary.json``), the organs a prediction left empty
(``per_case.csv``), what the label maps gave to organs no reference annotates, and warnings a reader
must see before trusting the numbers: training cut by its time budget, steps slower than planned,
validation on training cases (fold "all"), synthetic data, an NSD tolerance below the voxel size.
"""

from __future__ import annotations

from amoseg.data.layout import read_dataset_json
from amoseg.evaluation.records import read_summary
from amoseg.labels import ORGAN_BY_ID, ORGAN_BY_NAME
from amoseg.reporting import html
from amoseg.reporting.evaluation_sections import GROUP_ORDER, Scores
from amoseg.reporting.scores import not_predicted
from amoseg.reporting.study import StudyFiles
from amoseg.reporting.training_facts import FoldFacts, fold_facts, readable


def summary_box(files: StudyFiles, scores: Scores) -> str:
    """The HTML of the box (``id="summary"``)."""
    summary = readable(read_summary, files.layout.evaluation / "summary.json") or {}
    items = [*_headline(summary), *_empty_organs(scores), *_unscored(summary)]
    facts = _fold_facts(files)
    warnings = [
        *_training_warnings(facts),
        *_data_warnings(files),
        *_tolerance_warnings(files, summary, scores),
    ]
    body = (
        html.bullet_list(items) if items else html.missing("No evaluation yet: `amoseg evaluate` writes it.")
    )
    if warnings:
        body += '\n<p class="warning"><strong>Read with care:</strong></p>\n' + html.bullet_list(warnings)
    return html.summary_box("Result on the test cases", body)


def _headline(summary: dict) -> list[str]:
    groups = summary.get("groups") or {}
    by_modality = [name for name in GROUP_ORDER[:-1] if (groups.get(name) or {}).get("cases")]
    lines = []
    # Cases of no declared modality count in "all" only: then "all" is the headline.
    for name in by_modality or ["all"]:
        group = groups.get(name) or {}
        if group.get("cases"):
            lines.append(
                f"**{name}: mean DSC {_fixed(group.get('mDSC'))}, NSD {_fixed(group.get('mNSD'))}** "
                f"over {group['cases']} test case{'s' if group['cases'] > 1 else ''}"
            )
    return lines


def _empty_organs(scores: Scores) -> list[str]:
    """Organs whose prediction was empty where the reference had them, per modality."""
    if scores.problem:
        return []
    lines = []
    for group in GROUP_ORDER[:-1]:
        empty = not_predicted(scores.rows, group)
        never = [f"{ORGAN_BY_ID[label].title} ({e}/{n})" for label, (e, n) in empty.items() if e == n]
        some = [f"{ORGAN_BY_ID[label].title} ({e}/{n})" for label, (e, n) in empty.items() if e < n]
        if never:
            lines.append(f"{group}, **not found** in any test case: {', '.join(never)}")
        if some:
            lines.append(f"{group}, not found in some test cases: {', '.join(some)}")
    return lines


def _unscored(summary: dict) -> list[str]:
    unscored = summary.get("unscored_prediction_ml")
    if unscored is None:
        return []
    if not unscored:
        return ["Whole label maps: no voxel went to an organ the references do not annotate"]
    parts = [
        f"{ORGAN_BY_NAME[name].title if name in ORGAN_BY_NAME else name} {entry['ml']:.1f} mL in {entry['cases']}"
        for name, entry in unscored.items()
    ]
    return [f"Predicted in organs no reference annotates (not scored): {', '.join(parts)} cases"]


def _fold_facts(files: StudyFiles) -> list[FoldFacts]:
    from amoseg.training.log import read_log

    found = []
    for fold in files.folds:
        try:
            facts = fold_facts(fold, read_log(fold))
        except (OSError, ValueError):
            continue
        if facts is not None:
            found.append(facts)
    return found


def _training_warnings(facts: list[FoldFacts]) -> list[str]:
    lines = []
    for fold in facts:
        if fold.stopped_by_budget:
            lines.append(f"`{fold.name}`: training stopped by its time budget after {fold.progress_text()}")
        if fold.slow:
            lines.append(
                f"`{fold.name}`: iterations took {fold.measured_step_s:.2f} s against the plan's "
                f"{fold.planned_step_s:.2f} s, so the budget held fewer steps than planned"
            )
        if fold.validates_on_training_cases:
            lines.append(
                f"`{fold.name}` validates on its own training cases: its pseudo-Dice is optimistic "
                "(the test-case scores are not)"
            )
    return lines


def _data_warnings(files: StudyFiles) -> list[str]:
    meta = (readable(read_dataset_json, files.dataset) if files.dataset is not None else None) or {}
    if "phantom" in meta:
        return [
            "The data are synthetic phantoms (`amoseg phantom`): the figures say nothing about real scans"
        ]
    return []


def _tolerance_warnings(files: StudyFiles, summary: dict, scores: Scores) -> list[str]:
    """An NSD tolerance smaller than the references' largest voxel side scores a boundary one voxel
    off as a miss."""
    tolerances = [
        value for value in (summary.get("tolerance_mm") or {}).values() if isinstance(value, int | float)
    ]
    voxel = _largest_voxel_side(files, {row.case_id for row in scores.rows})
    if not tolerances or voxel is None or min(tolerances) >= voxel:
        return []
    return [
        f"NSD tolerance {min(tolerances):g} mm is below the voxel size (up to {voxel:.2g} mm): a boundary one "
        "voxel off counts as a miss"
    ]


def _largest_voxel_side(files: StudyFiles, case_ids: set[str]) -> float | None:
    from amoseg.data.layout import discover
    from amoseg.errors import AmosegError
    from amoseg.io.sitk_io import read_header

    if files.dataset is None or not case_ids:
        return None
    try:
        cases = [case for case in discover(files.dataset).cases if case.case_id in case_ids and case.label]
        sides = [max(read_header(case.label).geometry.spacing) for case in cases if case.label.exists()]
    except AmosegError:
        return None
    return max(sides) if sides else None


def _fixed(value) -> str:
    return "–" if value is None else f"{value:.3f}"
