"""The report's sections on the study, the dataset card, the plan, training and the step log.

Each ``*_section`` function takes the located files and returns the section's HTML body. A missing or
unreadable artifact never stops the report: its section says which file was not found, or what is wrong
with it, and the stage that writes it.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime
from pathlib import Path

from amoseg.errors import AmosegError, InputError
from amoseg.labels import ORGAN_BY_ID, ORGAN_BY_NAME
from amoseg.reporting import html
from amoseg.reporting.study import FOLD_PATTERNS, StudyFiles
from amoseg.reporting.training_facts import fold_facts, readable

#: Distributions whose versions the header shows (read from their metadata: nothing heavy is imported).
VERSIONED = ("torch", "monai", "SimpleITK", "numpy", "scipy", "matplotlib")
#: Dataset card plots in reading order; other PNGs in stats/ follow, sorted by name.
STATS_PLOTS = ("volumes.png", "intensity_ct.png", "intensity_mr.png", "spacing.png")


def versions() -> list[tuple[str, str]]:
    """(name, version) of amoseg, Python and the main libraries; "not installed" where absent."""
    from importlib.metadata import PackageNotFoundError, version

    from amoseg import __version__

    found = [("amoseg", __version__), ("Python", platform.python_version())]
    for name in VERSIONED:
        try:
            found.append((name, version(name)))
        except PackageNotFoundError:
            found.append((name, "not installed"))
    return found


def study_section(files: StudyFiles, created: datetime) -> str:
    rows = [
        ("Study folder", str(files.root.resolve())),
        ("Report created", created.isoformat(timespec="seconds")),
        ("Dataset", str(files.dataset) if files.dataset is not None else "not found"),
    ]
    return (
        html.table(("Item", "Value"), rows, table_id="study-table")
        + "\n"
        + html.heading(3, "Software")
        + html.table(("Package", "Version"), versions(), table_id="versions-table")
    )


def dataset_section(files: StudyFiles) -> str:
    parts = [_check_summary(files.layout.check)]
    card = files.layout.stats / "stats.json"
    if card.is_file():
        parts.append(_card(card))
    else:
        parts.append(html.missing(f"`{card}` not found: the dataset card is written by `amoseg stats`."))
    plots = [files.layout.stats / name for name in STATS_PLOTS if (files.layout.stats / name).is_file()]
    if files.layout.stats.is_dir():
        plots += sorted(path for path in files.layout.stats.glob("*.png") if path not in plots)
    parts += [_embedded(path, path.stem.replace("_", " ")) for path in plots]
    return "\n".join(parts)


def _check_summary(path: Path) -> str:
    from amoseg.data.check import read_report

    if not path.is_file():
        return html.missing(f"`{path}` not found: the dataset check is written by `amoseg check`.")
    try:
        report = read_report(path)
    except AmosegError as error:
        return html.missing(str(error))
    return html.paragraph(
        f"Dataset check (`{path}`): {'passed' if report.ok else 'FAILED'}; {report.cases_checked} cases "
        f"checked, {len(report.errors)} errors, {len(report.warnings)} warnings."
    )


def _card(path: Path) -> str:
    from amoseg.data.card import card_markdown, read_card

    try:
        return html.markdown_to_html(card_markdown(read_card(path)))
    except AmosegError as error:
        return html.missing(str(error))


def plan_section(files: StudyFiles) -> str:
    from amoseg.planning.plan import Plan

    if files.plan is None:
        return html.missing(
            f"`{files.root / 'plans.json'}` not found, nor a plans.json in a fold folder: "
            "the plan is written by `amoseg plan`."
        )
    try:
        plan = Plan.load(files.plan)
    except InputError as error:
        return html.missing(str(error))
    network = plan.network
    if plan.device == "cpu":
        budget = f"about {plan.estimated_step_s} s per step (budget {plan.step_budget_s} s)"
    else:
        budget = f"about {plan.estimated_memory_gb} GB (budget {plan.memory_budget_gb} GB)"
    rows = [
        ("Plan id", plan.plan_id),
        ("Preset", plan.preset),
        ("Dataset", plan.dataset),
        ("Target spacing (mm, x y z)", _vector(plan.target_spacing_mm, "{:.3g}")),
        ("Median shape (voxels)", _vector(plan.median_shape)),
        ("Patch size (voxels)", _vector(plan.patch_size)),
        ("Batch size", plan.batch_size),
        ("Device", plan.device),
        ("Training step estimate", budget),
        ("Network stages", network.num_stages),
        ("Filters per stage", ", ".join(str(value) for value in network.filters)),
        ("Strides", ", ".join(_vector(value) for value in network.strides)),
        ("Kernel sizes", ", ".join(_vector(value) for value in network.kernel_size)),
        ("Residual blocks", "yes" if network.res_block else "no"),
        (
            "Convolutions per block",
            "1 at full resolution and in the decoder, else 2" if network.single_conv_blocks else "2",
        ),
        ("Orientation", plan.orientation),
        ("Source", str(files.plan)),
    ]
    normalization = [
        (modality, scheme.method, _normalization_parameters(scheme))
        for modality, scheme in sorted(plan.normalization.items())
    ]
    return (
        html.table(("Field", "Value"), rows, table_id="plan-table")
        + "\n"
        + html.heading(3, "Normalization per modality")
        + html.table(("Modality", "Method", "Parameters"), normalization, table_id="normalization-table")
    )


def _normalization_parameters(scheme) -> str:
    if scheme.method == "dataset_foreground":
        return (
            f"clip to [{scheme.clip_low:.1f}, {scheme.clip_high:.1f}] HU, "
            f"then (x - {scheme.mean:.1f}) / {scheme.std:.1f}"
        )
    return (
        f"clip to the body's {scheme.percentile_low:g}th..{scheme.percentile_high:g}th percentiles, "
        "then zero mean and unit std per image"
    )


def training_section(files: StudyFiles) -> str:
    if not files.folds:
        first, *others = FOLD_PATTERNS
        return html.missing(
            f"`{files.root / first}` not found (nor {', '.join(f'`{pattern}`' for pattern in others)} in the "
            "study): training logs are written by `amoseg train`."
        )
    return "\n".join(_fold(files.root, fold) for fold in files.folds)


def _fold(root: Path, fold: Path) -> str:
    from amoseg.plotting.figures import figure_png
    from amoseg.training.log import CURVES_FILE, LOG_FILE, organ_curves_figure, read_log

    name = str(fold.relative_to(root)) if fold.is_relative_to(root) else str(fold)
    parts = [html.heading(3, name)]
    try:
        history = read_log(fold)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return "\n".join([*parts, html.missing(f"`{fold / LOG_FILE}` is not valid JSON lines ({error}).")])
    if not history:
        return "\n".join([*parts, html.missing(f"`{fold / LOG_FILE}` holds no epoch yet.")])
    last = history[-1]
    facts = fold_facts(fold, history)
    budget = facts.budget_s
    rows = [
        ("Epochs", facts.progress_text()),
        ("Iterations", last.get("iteration", "–")),
        ("Elapsed", _duration(last.get("elapsed_seconds"))),
        ("Time budget", _duration(budget) if budget else "none"),
        ("Seconds per step, planned", _fixed(facts.planned_step_s, 3)),
        (
            "Seconds per training step, measured (batches waited for included)",
            _fixed(facts.measured_step_s, 3),
        ),
        ("Mean pseudo-Dice (last epoch)", _fixed(last.get("mean_pseudo_dice"))),
        ("EMA pseudo-Dice (last epoch)", _fixed(last.get("ema_pseudo_dice"))),
        ("Best EMA pseudo-Dice", _fixed(_best(history, "ema_pseudo_dice"))),
        ("Training loss (last epoch)", _fixed(last.get("train_loss"))),
        ("Validation loss (last epoch)", _fixed(last.get("val_loss"))),
        ("Device", facts.device or "–"),
    ]
    parts.append(html.table(("Figure", "Value"), rows, table_id=f"training-{fold.name}"))
    if facts.validates_on_training_cases:
        parts.append(
            html.missing(
                "Fold `all` trains on every case, its validation cases included: its pseudo-Dice is "
                "measured on training cases and flatters the model; the test-case scores above do not."
            )
        )
    if facts.slow:
        parts.append(
            html.missing(
                f"Iterations took {facts.measured_step_s:.2f} s against the plan's {facts.planned_step_s:.2f} s: "
                "this machine is slower than the plan assumed, so the time budget held fewer steps; "
                "plan again on this machine (`amoseg plan ... --preset cpu`)."
            )
        )
    parts.append(_learned(fold))
    organs = [
        (ORGAN_BY_NAME[organ].title if organ in ORGAN_BY_NAME else organ, _fixed(value))
        for organ, value in last.get("pseudo_dice", {}).items()
    ]
    if organs:
        parts.append(html.paragraph("Final pseudo-Dice per organ (validation patches, last epoch):"))
        parts.append(html.table(("Organ", "Pseudo-Dice"), organs, table_id=f"training-{fold.name}-organs"))
    parts.append(_embedded(fold / CURVES_FILE, f"training curves of {name}", "`amoseg train`"))
    # Drawn from the log, so a run still going, killed, or older than organ_curves.png has it too.
    organ_curves = organ_curves_figure(history, title=name)
    if organ_curves is not None:
        parts.append(
            html.image(figure_png(organ_curves), f"each organ's pseudo-Dice during training of {name}")
        )
    return "\n".join(parts)


def _learned(fold: Path) -> str:
    """The organs the fold learned per modality: the only ones its predictions can hold."""
    from amoseg.model.learned import RULE, learned_from_record
    from amoseg.training.run import LABELS_FILE, read_label_map

    learned = learned_from_record(readable(read_label_map, fold) or {})
    if learned is None:
        return html.missing(f"`{fold / LABELS_FILE}` does not say which organs the fold learned.")
    rows = [
        (modality, ", ".join(ORGAN_BY_ID[organ].title for organ in organs) or "none")
        for modality, organs in learned.items()
    ]
    never = [
        organ.title for organ in ORGAN_BY_ID.values() if not any(organ.id in o for o in learned.values())
    ]
    rows.append(("never learned (written as background)", ", ".join(never) or "none"))
    return "\n".join(
        [
            html.paragraph(
                f"Organs learned (an organ is learned for a modality when {RULE}); predictions hold only "
                "these, by default only those learned from the input's own modality:"
            ),
            html.table(("Modality", "Organs"), rows, table_id=f"learned-{fold.name}"),
        ]
    )


def steps_section(files: StudyFiles) -> str:
    from amoseg.reporting.steps import read_steps

    try:
        steps = read_steps(files.root)
    except InputError as error:
        return html.missing(str(error))
    if not steps:
        return html.missing(
            f"`{files.layout.steps}` not found: `amoseg demo` writes it; a study made step by step has none."
        )
    rows = [
        (
            step.name,
            html.code_cell(step.command),
            f"{step.seconds:.2f}",
            ", ".join(step.outputs),
            step.started,
        )
        for step in steps
    ]
    rows.append(("total", "", f"{sum(step.seconds for step in steps):.2f}", "", ""))
    return html.table(("Step", "Command", "Seconds", "Outputs", "Started"), rows, table_id="steps-table")


def _embedded(path: Path, alt: str, writer: str = "`amoseg stats`") -> str:
    if not path.is_file():
        return html.missing(f"`{path}` not found: it is written by {writer}.")
    try:
        return html.image(path.read_bytes(), alt)
    except ValueError as error:
        return html.missing(f"`{path}`: {error}.")


def _best(history: list[dict], key: str) -> float | None:
    values = [record[key] for record in history if record.get(key) is not None]
    return max(values) if values else None


def _vector(values, template: str = "{}") -> str:
    return " x ".join(template.format(value) for value in values)


def _fixed(value, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _duration(seconds) -> str:
    if seconds is None:
        return "–"
    minutes, rest = divmod(float(seconds), 60.0)
    return f"{seconds:.0f} s ({int(minutes)} min {rest:.0f} s)" if minutes else f"{seconds:.1f} s"
