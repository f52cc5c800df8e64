"""The report's evaluation section (DSC and NSD per organ, CT and MR apart) and its best and worst case.

The tables come from ``evaluation/summary.json``, the evaluation's own aggregation, so the report
shows exactly the numbers ``amoseg evaluate`` printed; the box plots and the case ranking come from
``evaluation/per_case.csv``. The best and worst case are drawn from the dataset's image, the prediction
in ``predictions/`` and the reference label map.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from amoseg.errors import AmosegError
from amoseg.labels import ORGAN_BY_NAME
from amoseg.reporting import html
from amoseg.reporting.scores import CaseMean, ScoreRow, best_and_worst, case_means, read_per_case
from amoseg.reporting.study import StudyFiles

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
    from amoseg.reporting.figures import figure_png
    from amoseg.reporting.score_plots import modality_boxplot_figure

    parts = [_summary_tables(files.layout.evaluation / "summary.json")]
    if scores.problem:
        parts.append(html.missing(scores.problem))
    else:
        parts.append(html.heading(3, "Per organ, CT and MR side by side"))
        figure = modality_boxplot_figure(scores.rows, title=f"{len(case_means(scores.rows))} test cases")
        parts.append(html.image(figure_png(figure), "DSC and NSD per organ, CT and MR box plots"))
    return "\n".join(parts)


def _summary_tables(path: Path) -> str:
    if not path.is_file():
        return html.missing(f"`{path}` not found: the per-organ summary is written by {_EVALUATE}.")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        groups = summary["groups"]
        shown = [name for name in GROUP_ORDER if name in groups and (groups[name]["cases"] or name == "all")]
        counts = ", ".join(f"{groups[name]['cases']} {name}" for name in shown if name != "all")
        parts = [
            html.paragraph(
                f"{summary['cases']} cases ({counts}); NSD tolerance {_tolerance(summary)}. "
                f"Mean ± population std over the cases; source `{path}`."
            )
        ]
        for metric, title in (("dsc", "DSC"), ("nsd", "NSD")):
            parts.append(html.heading(3, title))
            parts.append(_metric_table(summary, groups, shown, metric, title))
        missing_predictions = summary.get("missing_predictions") or []
        if missing_predictions:
            parts.append(
                html.paragraph(
                    f"Predictions missing, scored as empty: {', '.join(map(str, missing_predictions))}."
                )
            )
        return "\n".join(parts)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as error:
        return html.missing(f"`{path}` is not an amoseg evaluation summary ({error!r}).")


def _metric_table(summary: dict, groups: dict, shown: list[str], metric: str, title: str) -> str:
    header = ["Organ"] + [f"{name} ({_cases(groups[name]['cases'])})" for name in shown]
    rows = []
    for name in summary["labels"]:
        organ = ORGAN_BY_NAME[name].title if name in ORGAN_BY_NAME else name
        cells = []
        for group in shown:
            entry = groups[group]["organs"][name]
            cells.append(_mean_std(entry[f"{metric}_mean"], entry[f"{metric}_std"]))
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
    rows = [
        (rank, mean.case_id, mean.modality, f"{mean.mean_dsc:.4f}", _fixed(mean.mean_nsd), mean.organs_scored)
        for rank, mean in (("best", best), ("worst", worst))
    ]
    parts = [
        html.paragraph(
            f"Ranked by the mean DSC over the scored organs of each case, among {len(means)} cases "
            "(`per_case.csv`). Organ overlays: prediction above, reference below, on the same slices."
        ),
        html.table(
            ("Rank", "Case", "Modality", "Mean DSC", "Mean NSD", "Organs scored"),
            rows,
            table_id="cases-ranking",
        ),
    ]
    shown = [("Best", best)] if best.case_id == worst.case_id else [("Best", best), ("Worst", worst)]
    for rank, mean in shown:
        parts.append(
            html.heading(3, f"{rank} case: {mean.case_id} ({mean.modality}), mean DSC {mean.mean_dsc:.4f}")
        )
        parts.append(_case_views(files, mean))
    return "\n".join(parts)


def _case_views(files: StudyFiles, mean: CaseMean) -> str:
    """The image with the prediction overlaid, and with the reference when the dataset has it."""
    from amoseg.data.layout import discover
    from amoseg.data.naming import case_ids_in_folder

    if files.dataset is None:
        return html.missing(
            f"No dataset to draw the case from: `{files.root / 'phantoms' / 'dataset.json'}` not found; "
            "give the dataset folder with `--dataset DATASET_DIR`."
        )
    try:
        case = next((item for item in discover(files.dataset).cases if item.case_id == mean.case_id), None)
    except AmosegError as error:
        return html.missing(str(error))
    if case is None or not case.image.exists():
        return html.missing(f"No image of {mean.case_id} found in the dataset `{files.dataset}`.")
    predictions = case_ids_in_folder(files.layout.predictions, known_case_ids=[mean.case_id]).get(
        mean.case_id
    )
    if not predictions:
        return html.missing(
            f"No prediction of {mean.case_id} found in `{files.layout.predictions}` (written by `amoseg predict`)."
        )
    reference = case.label if case.label is not None and case.label.exists() else None
    try:
        return _render(case.image, predictions[0], reference, mean)
    except AmosegError as error:
        return html.missing(str(error))


def _render(image_path: Path, prediction_path: Path, reference_path: Path | None, mean: CaseMean) -> str:
    from amoseg.evaluation.case import require_same_grid
    from amoseg.io.sitk_io import read_image, read_label
    from amoseg.reporting.figures import figure_png
    from amoseg.reporting.preview import organ_centre, preview_figure

    image = read_image(image_path)
    prediction = read_label(prediction_path)
    reference = read_label(reference_path) if reference_path is not None else None
    for label, path in ((prediction, prediction_path), (reference, reference_path)):
        if label is not None:
            try:
                require_same_grid(image.geometry, label.geometry, path, image_path)
            except AmosegError as error:
                return html.missing(f"{error}: not drawn.")
    # The reference's centre for both views, so prediction and reference are compared on the same slices.
    centre = organ_centre((reference if reference is not None else prediction).array)
    parts = []
    views = [("prediction", prediction, prediction_path)]
    if reference is not None:
        views.append(("reference", reference, reference_path))
    for name, label, path in views:
        figure = preview_figure(image, label, mean.modality, f"{mean.case_id}: {name} ({path.name})", centre)
        parts.append(html.image(figure_png(figure, dpi=70), f"{mean.case_id} {name} overlay"))
    if reference is None:
        parts.append(
            html.missing(f"No reference label map of {mean.case_id} in the dataset: prediction only.")
        )
    return "\n".join(parts)


def _cases(count: int) -> str:
    return f"{count} case" if count == 1 else f"{count} cases"


def _fixed(value) -> str:
    return "–" if value is None or value != value else f"{value:.4f}"


def _mean_std(mean, std) -> str:
    return "–" if mean is None or mean != mean else f"{mean:.4f} ± {std:.4f}"
