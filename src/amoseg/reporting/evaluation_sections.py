"""The report's evaluation section (DSC and NSD per organ, CT and MR apart) and its best and worst case.

The tables come from ``evaluation/summary.json``, the evaluation's own aggregation, so the report
shows exactly the numbers ``amoseg evaluate`` printed; the box plots and the case ranking come from
``evaluation/per_case.csv``. The best and worst case are drawn from the dataset's image, the prediction
in ``predictions/`` and the reference label map.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from amoseg.errors import AmosegError
from amoseg.evaluation.records import ScoreRow, read_per_case, read_summary
from amoseg.labels import ORGAN_BY_ID, ORGAN_BY_NAME
from amoseg.reporting import html
from amoseg.reporting.scores import best_and_worst, case_means, not_predicted, worst_per_organ
from amoseg.reporting.study import StudyFiles

if TYPE_CHECKING:  # discovery reads images: imported where a case is drawn
    from amoseg.data.layout import Case

GROUP_ORDER = ("CT", "MR", "all")
_EVALUATE = "`amoseg evaluate`"


@dataclass(frozen=True)
class Scores:
    """The rows of per_case.csv, or why there are none (``problem``, plain text; empty when read)."""

    rows: tuple[ScoreRow, ...]
    problem: str = ""


def load_scores(files: StudyFiles) -> Scores:
    path = files.layout.evaluation / "per_case.csv"
    if not path.is_file():
        return Scores((), f"`{path}` not found: per-case scores are written by {_EVALUATE}.")
    try:
        rows = read_per_case(path)
    except AmosegError as error:
        return Scores((), str(error))
    if not rows:
        return Scores((), f"`{path}` holds no scores.")
    return Scores(tuple(rows))


def evaluation_section(files: StudyFiles, scores: Scores) -> str:
    from amoseg.plotting.figures import figure_png
    from amoseg.reporting.score_plots import modality_boxplot_figure

    parts = [_summary_tables(files.layout.evaluation / "summary.json", scores)]
    if scores.problem:
        parts.append(html.missing(scores.problem))
    else:
        parts.append(html.heading(3, "Per organ, CT and MR side by side"))
        figure = modality_boxplot_figure(scores.rows, title=f"{len(case_means(scores.rows))} test cases")
        parts.append(html.image(figure_png(figure), "DSC and NSD per organ, CT and MR box plots"))
        parts.append(_case_organ_table(files, scores))
    return "\n".join(parts)


def _case_organ_table(files: StudyFiles, scores: Scores) -> str:
    """Cases by organs, each DSC shaded from red (0) to green (1), with links to the study's files."""
    labels = sorted({row.label for row in scores.rows})
    by_case: dict[str, dict[int, ScoreRow]] = {}
    for row in scores.rows:
        by_case.setdefault(row.case_id, {})[row.label] = row
    header = ["Case", "Modality", *(ORGAN_BY_ID[label].title for label in labels)]
    predictions = _predictions(files, list(by_case))
    rows = []
    for case_id, organs in sorted(by_case.items()):
        first = next(iter(organs.values()))
        link = _case_link(files, case_id, predictions.get(case_id))
        rows.append([link, first.modality, *(_dsc_cell(organs.get(label)) for label in labels)])
    evaluation = files.layout.evaluation
    links = ", ".join(
        html.link(files.relative(path), path.name)
        for path in (evaluation / "per_case.csv", evaluation / "summary.json", evaluation / "summary.md")
        if path.is_file()
    )
    return "\n".join(
        [
            html.heading(3, "DSC of every case and organ"),
            f"<p>Shaded from red (0) to green (1); <em>empty</em>: the organ is in the reference and the "
            f"prediction has none of it; –: absent from both. Each case links to its prediction. Files: {links}.</p>",
            html.table(header, rows, table_id="evaluation-cases"),
        ]
    )


def _predictions(files: StudyFiles, case_ids: list[str]) -> dict[str, list[Path]]:
    """Case id -> its prediction files, from one listing of ``predictions/``."""
    from amoseg.data.naming import case_ids_in_folder

    return case_ids_in_folder(files.layout.predictions, known_case_ids=case_ids)


def _case_link(files: StudyFiles, case_id: str, predictions: list[Path] | None) -> html.Cell:
    if not predictions:
        return html.Cell(html.text(case_id))
    return html.Cell(html.link(files.relative(predictions[0]), case_id))


def _dsc_cell(row: ScoreRow | None) -> object:
    if row is None or math.isnan(row.dsc):
        return "–"
    if row.not_predicted:
        return html.Cell("empty", css_class="number", background=_shade(0.0))
    return html.Cell(f"{row.dsc:.3f}", css_class="number", background=_shade(row.dsc))


def _shade(value: float) -> str:
    """A light background from red (0) through yellow to green (1), dark text stays readable."""
    hue = 120 * min(max(value, 0.0), 1.0)
    return f"hsl({hue:.0f}, 70%, 82%)"


def _summary_tables(path: Path, scores: Scores) -> str:
    if not path.is_file():
        return html.missing(f"`{path}` not found: the per-organ summary is written by {_EVALUATE}.")
    try:
        summary = read_summary(path)
        groups = summary["groups"]
        shown = [name for name in GROUP_ORDER if name in groups and (groups[name]["cases"] or name == "all")]
        counts = ", ".join(f"{groups[name]['cases']} {name}" for name in shown if name != "all")
        parts = [
            html.paragraph(
                f"{summary['cases']} cases ({counts}); NSD tolerance {_tolerance(summary)}. "
                f"Mean ± population std over the cases; source `{path}`."
            )
        ]
        empty = {group: not_predicted(scores.rows, group) for group in shown}
        for metric, title in (("dsc", "DSC"), ("nsd", "NSD")):
            parts.append(html.heading(3, title))
            parts.append(_metric_table(summary, groups, shown, metric, empty))
        if any(empty.values()):
            parts.append(
                html.paragraph(
                    "not predicted, e/n: the prediction held none of the organ in any of the n test "
                    "cases whose reference has it; (empty in e/n): in e of them. Those cases count as "
                    "DSC 0 in the mean."
                )
            )
        missing_predictions = summary.get("missing_predictions") or []
        if missing_predictions:
            parts.append(
                html.paragraph(
                    f"Predictions missing, scored as empty: {', '.join(map(str, missing_predictions))}."
                )
            )
        return "\n".join(parts)
    except AmosegError as error:
        return html.missing(str(error))
    except (
        KeyError,
        TypeError,
        AttributeError,
        ValueError,
    ) as error:  # entries read_summary leaves unchecked
        return html.missing(f"`{path}` is not an amoseg evaluation summary ({error!r}).")


def _metric_table(
    summary: dict, groups: dict, shown: list[str], metric: str, empty: dict[str, dict[int, tuple[int, int]]]
) -> str:
    header = ["Organ"] + [f"{name} ({_cases(groups[name]['cases'])})" for name in shown]
    rows = []
    for name, label in summary["labels"].items():
        organ = ORGAN_BY_NAME[name].title if name in ORGAN_BY_NAME else name
        cells = []
        for group in shown:
            entry = groups[group]["organs"][name]
            cell = _mean_std(entry[f"{metric}_mean"], entry[f"{metric}_std"])
            missed, present = empty[group].get(int(label), (0, 0))
            if missed and missed == present:
                cell = html.Cell(
                    f"not predicted, {missed}/{present}", css_class="number", background=_shade(0.0)
                )
            elif missed:
                cell = html.Cell(f"{html.text(cell)} (empty in {missed}/{present})", css_class="number")
            cells.append(cell)
        rows.append([organ, *cells])
    overall = "mDSC" if metric == "dsc" else "mNSD"
    rows.append([f"Mean over organs ({overall})", *(_fixed(groups[group][overall]) for group in shown)])
    return html.table(header, rows, table_id=f"evaluation-{metric}")


def _tolerance(summary: dict) -> str:
    values = set((summary.get("tolerance_mm") or {}).values())
    profile = summary.get("tolerance_profile")
    if len(values) == 1 and not profile:
        return f"{values.pop():g} mm for every organ"
    return f"profile {profile}" if profile else "per organ (see summary.json)"


def cases_section(files: StudyFiles, scores: Scores) -> str:
    if scores.problem:
        return html.missing(scores.problem)
    means = case_means(scores.rows)
    chosen = best_and_worst(means)
    if chosen is None:
        return html.missing(
            "No case has a scored organ: every organ is absent from reference and prediction."
        )
    best, worst = chosen
    ranked = sorted(means, key=lambda mean: (-mean.mean_dsc, mean.case_id))
    rows = [
        (
            position,
            mean.case_id,
            mean.modality,
            f"{mean.mean_dsc:.4f}",
            _fixed(mean.mean_nsd),
            mean.organs_scored,
        )
        for position, mean in enumerate(ranked, start=1)
    ]
    parts = [
        html.paragraph(
            f"All {len(means)} test cases ranked by the mean DSC over their scored organs (`per_case.csv`), "
            "so the margin between neighbours is in plain sight. Figures: image, reference, prediction and "
            "their differences on one slice, in radiological convention (the patient's right on the "
            "image's left)."
        ),
        html.table(
            ("Rank", "Case", "Modality", "Mean DSC", "Mean NSD", "Organs scored"),
            rows,
            table_id="cases-ranking",
        ),
    ]
    found = _case_files(files, [mean.case_id for mean in means])
    shown = [("Best", best)] if best.case_id == worst.case_id else [("Best", best), ("Worst", worst)]
    for rank, mean in shown:
        parts.append(
            html.heading(3, f"{rank} case: {mean.case_id} ({mean.modality}), mean DSC {mean.mean_dsc:.4f}")
        )
        parts.append(_case_views(found, mean.case_id, mean.modality))
    parts.append(_worst_per_organ(found, scores))
    _read_case.cache_clear()  # the volumes are not needed past this section
    return "\n".join(parts)


def _worst_per_organ(found: _CaseFiles, scores: Scores) -> str:
    """Each organ's lowest-DSC case, the next one for scale, and the worst case drawn through that organ."""
    worst = worst_per_organ(scores.rows)
    rows = []
    for label, ordered in worst.items():
        first = ordered[0]
        following = ordered[1] if len(ordered) > 1 else None
        rows.append(
            (
                ORGAN_BY_ID[label].title,
                first.case_id,
                "empty" if first.not_predicted else f"{first.dsc:.4f}",
                _next_lowest(following),
            )
        )
    parts = [
        html.heading(3, "Worst case of each organ"),
        html.table(("Organ", "Worst case", "DSC", "Next lowest"), rows, table_id="cases-worst-per-organ"),
    ]
    for label, ordered in worst.items():
        first = ordered[0]
        score = "not predicted" if first.not_predicted else f"DSC {first.dsc:.4f}"
        parts.append(
            html.heading(4, f"{ORGAN_BY_ID[label].title}: {first.case_id} ({first.modality}), {score}")
        )
        parts.append(_case_views(found, first.case_id, first.modality, organ=label))
    return "\n".join(parts)


def _next_lowest(row: ScoreRow | None) -> str:
    if row is None:
        return "–"
    return f"{row.case_id}: {'empty' if row.not_predicted else f'{row.dsc:.4f}'}"


@dataclass(frozen=True)
class _CaseFiles:
    """The dataset's cases and the predictions by case id, looked up once for every figure drawn;
    ``problem`` says why no case can be drawn (no dataset, an unreadable dataset.json)."""

    dataset: Path | None
    cases: dict[str, Case]
    predictions: dict[str, list[Path]]
    predictions_folder: Path
    problem: str = ""


def _case_files(files: StudyFiles, case_ids: list[str]) -> _CaseFiles:
    from amoseg.data.layout import discover

    predictions = _predictions(files, case_ids)
    cases: dict[str, Case] = {}
    problem = ""
    if files.dataset is None:
        problem = (
            f"No dataset to draw the case from: `{files.root / 'phantoms' / 'dataset.json'}` not found; "
            "give the dataset folder with `--dataset DATASET_DIR`."
        )
    else:
        try:
            cases = {case.case_id: case for case in discover(files.dataset).cases}
        except AmosegError as error:
            problem = str(error)
    return _CaseFiles(files.dataset, cases, predictions, files.layout.predictions, problem)


def _case_views(found: _CaseFiles, case_id: str, modality: str, organ: int | None = None) -> str:
    """The case's image, reference, prediction and their differences, through ``organ`` if given."""
    if found.problem:
        return html.missing(found.problem)
    case = found.cases.get(case_id)
    if case is None or not case.image.exists():
        return html.missing(f"No image of {case_id} found in the dataset `{found.dataset}`.")
    predictions = found.predictions.get(case_id)
    if not predictions:
        return html.missing(
            f"No prediction of {case_id} found in `{found.predictions_folder}` (written by `amoseg predict`)."
        )
    reference = case.label if case.label is not None and case.label.exists() else None
    try:
        return _render(case.image, predictions[0], reference, case_id, modality, organ)
    except AmosegError as error:
        return html.missing(str(error))


def _render(
    image_path: Path,
    prediction_path: Path,
    reference_path: Path | None,
    case_id: str,
    modality: str,
    organ: int | None,
) -> str:
    from amoseg.evaluation.case import require_same_grid
    from amoseg.plotting.figures import figure_png
    from amoseg.plotting.preview import case_figure

    image, prediction, reference = _read_case(image_path, prediction_path, reference_path)
    for label, path in ((prediction, prediction_path), (reference, reference_path)):
        if label is not None:
            try:
                require_same_grid(image.geometry, label.geometry, path, image_path)
            except AmosegError as error:
                return html.missing(f"{error}: not drawn.")
    about = f"through the {ORGAN_BY_ID[organ].title.lower()}" if organ else "through the organs' centre"
    figure = case_figure(
        image, prediction, modality, reference=reference, organ=organ, title=f"{case_id} ({modality})"
    )
    parts = [
        html.image(
            figure_png(figure, dpi=70),
            f"{case_id}: image, reference, prediction and errors",
            caption=f"{case_id}, one slice {about}: `{prediction_path.name}` against the reference.",
        )
    ]
    if reference is None:
        parts.append(html.missing(f"No reference label map of {case_id} in the dataset: prediction only."))
    return "\n".join(parts)


@functools.lru_cache(maxsize=4)
def _read_case(image_path: Path, prediction_path: Path, reference_path: Path | None):
    """The three maps of a case, read once for all the figures drawn of it."""
    from amoseg.io.sitk_io import read_image, read_label

    reference = read_label(reference_path) if reference_path is not None else None
    return read_image(image_path), read_label(prediction_path), reference


def _cases(count: int) -> str:
    return f"{count} case" if count == 1 else f"{count} cases"


def _fixed(value) -> str:
    return "–" if value is None or value != value else f"{value:.4f}"


def _mean_std(mean, std) -> str:
    return "–" if mean is None or mean != mean else f"{mean:.4f} ± {std:.4f}"
