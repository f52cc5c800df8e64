"""The run's record for people: ``log.jsonl`` (one JSON object per epoch), ``curves.png``,
``organ_curves.png`` (each organ's learning on its own panel, drawn when training ends), and the
progress bar with one printed line per epoch.

``log.jsonl`` and ``curves.png`` are rewritten whole from the history each epoch, atomically; the history travels in every
checkpoint too, so a resumed run's log holds exactly the epochs its weights went through, even when
the interrupted run got further than its last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Sequence
from pathlib import Path

from amoseg.atomic import write_text
from amoseg.labels import ORGAN_BY_ID
from amoseg.planning.plan import Plan

LOG_FILE = "log.jsonl"
CURVES_FILE = "curves.png"
ORGAN_CURVES_FILE = "organ_curves.png"
#: An organ whose mean test DSC is below this counts as not learned well enough: the demo names it in
#: its closing lines, and each organ's panel draws the line.
WEAK_ORGAN_DSC = 0.5


def epoch_record(
    *,
    epoch: int,
    iteration: int,
    lr: float,
    train_loss: float,
    val_loss: float,
    dice: Sequence[float],
    ema_dice: float,
    epoch_seconds: float,
    elapsed_seconds: float,
    train_seconds: float | None = None,
) -> dict:
    """One line of ``log.jsonl``; Dice per organ keyed by organ name, null where not scored."""
    organs = {
        ORGAN_BY_ID[label].name if label in ORGAN_BY_ID else str(label): _number(value)
        for label, value in enumerate(dice)
        if label > 0
    }
    scored = [value for value in organs.values() if value is not None]
    return {
        "epoch": epoch,
        "iteration": iteration,
        "lr": lr,
        "train_loss": _number(train_loss),
        "val_loss": _number(val_loss),
        "mean_pseudo_dice": _number(sum(scored) / len(scored)) if scored else None,
        "ema_pseudo_dice": _number(ema_dice),
        "pseudo_dice": organs,
        "epoch_seconds": round(epoch_seconds, 3),
        "train_seconds": None if train_seconds is None else round(train_seconds, 3),
        "elapsed_seconds": round(elapsed_seconds, 3),
    }


def _number(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def write_log(folder: Path, history: Sequence[dict]) -> None:
    write_text(folder / LOG_FILE, "".join(json.dumps(record, allow_nan=False) + "\n" for record in history))


def read_log(folder: Path) -> list[dict]:
    path = folder / LOG_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_curves(folder: Path, history: Sequence[dict], title: str = "") -> None:
    """Write ``curves.png`` (see ``curves_figure``); nothing when no record has an epoch."""
    from amoseg.plotting.figures import save_png

    figure = curves_figure(history, title)
    if figure is not None:
        save_png(figure, folder / CURVES_FILE)


def curves_figure(history: Sequence[dict], title: str = ""):
    """nnU-Net's progress plot: three panels over the epoch, as a matplotlib figure (None if no epoch).

    (a) training and validation loss (left axis), the mean pseudo-Dice, its EMA and, thin, each organ's
    pseudo-Dice (right axis, 0-1); (b) the learning rate; (c) the epoch's wall time in seconds (left;
    validation included) and that time over the epoch's training steps (right). Epoch ticks are
    integers. A missing value (null in the log) leaves a gap.
    """
    from amoseg.plotting.figures import pyplot, styled

    records = [record for record in history if record.get("epoch") is not None]
    if not records:
        return None
    return styled(_curves_figure)(pyplot(), records, title)


def _curves_figure(plt, records: list[dict], title: str):
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    from amoseg.plotting.figures import organ_colour

    epochs = [record["epoch"] for record in records]
    # Few epochs: mark each one, or a single epoch would draw nothing.
    style = {"marker": "o", "markersize": 3} if len(epochs) <= 30 else {}
    figure, (loss_axes, lr_axes, time_axes) = plt.subplots(
        3, 1, figsize=(10, 9), sharex=True, height_ratios=(2.2, 1, 1), layout="constrained"
    )

    def series(key: str) -> list[float]:
        return [_value(record.get(key)) for record in records]

    loss_axes.plot(epochs, series("train_loss"), label="training loss", color="tab:blue", **style)
    loss_axes.plot(epochs, series("val_loss"), label="validation loss", color="tab:red", **style)
    loss_axes.set_ylabel("loss (soft Dice + cross-entropy)")
    loss_axes.grid(alpha=0.3)
    dice_axes = loss_axes.twinx()
    names = {organ.name: organ for organ in ORGAN_BY_ID.values()}
    for name in records[-1].get("pseudo_dice") or {}:
        values = [_value((record.get("pseudo_dice") or {}).get(name)) for record in records]
        colour = organ_colour(names[name].id) if name in names else "grey"
        dice_axes.plot(epochs, values, color=colour, alpha=0.35, linewidth=0.8)
    dice_axes.plot(epochs, series("mean_pseudo_dice"), label="mean pseudo-Dice", color="black", **style)
    dice_axes.plot(
        epochs, series("ema_pseudo_dice"), label="its EMA", color="tab:green", linestyle="--", **style
    )
    dice_axes.set_ylim(0, 1)
    dice_axes.set_ylabel("pseudo-Dice (validation patches)")
    handles = [*loss_axes.get_lines(), *dice_axes.get_lines()[-2:]]
    if records[-1].get("pseudo_dice"):
        handles.append(Line2D([], [], color="grey", alpha=0.5, linewidth=0.8, label="pseudo-Dice per organ"))
    loss_axes.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0, 1.01),
        ncol=len(handles),
        frameon=False,
        borderaxespad=0,
    )

    lr_axes.plot(epochs, series("lr"), color="tab:purple", **style)
    lr_axes.set_ylabel("learning rate")
    lr_axes.set_ylim(bottom=0)
    lr_axes.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    lr_axes.grid(alpha=0.3)

    time_axes.set_xlabel(_time_panel(time_axes, records, style))
    # Shared by all three panels; no fractional epochs.
    time_axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if len(set(epochs)) == 1:
        time_axes.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
    if title:
        figure.suptitle(title)
    return figure


def plot_organ_curves(folder: Path, history: Sequence[dict], title: str = "") -> None:
    """Write ``organ_curves.png`` (see ``organ_curves_figure``); nothing when no epoch has organs."""
    from amoseg.plotting.figures import save_png

    figure = organ_curves_figure(history, title)
    if figure is not None:
        save_png(figure, folder / ORGAN_CURVES_FILE)


def organ_curves_figure(history: Sequence[dict], title: str = ""):
    """Each organ's validation pseudo-Dice over the training iterations, one panel per organ in label
    order, titled with its last value, with the ``WEAK_ORGAN_DSC`` line: the small organs, which the mean
    hides, show when (and whether) they were learned. None when no epoch records organs."""
    from amoseg.plotting.figures import pyplot, styled

    records = [record for record in history if record.get("epoch") is not None and record.get("pseudo_dice")]
    if not records:
        return None
    return styled(_organ_curves_figure)(pyplot(), records, title)


def _organ_curves_figure(plt, records: list[dict], title: str):
    from amoseg.plotting.figures import organ_colour

    names = list(records[-1]["pseudo_dice"])
    organs = {organ.name: organ for organ in ORGAN_BY_ID.values()}
    columns = min(5, len(names))
    rows = math.ceil(len(names) / columns)
    figure, grid = plt.subplots(
        rows, columns, figsize=(2.6 * columns, 2.1 * rows + 0.6), sharex=True, sharey=True,
        squeeze=False, layout="constrained",
    )  # fmt: skip
    iterations = [_value(record.get("iteration")) for record in records]
    style = {"marker": "o", "markersize": 2.5} if len(records) <= 30 else {}
    for axes, name in zip(grid.flat, names, strict=False):
        values = [_value(record["pseudo_dice"].get(name)) for record in records]
        organ = organs.get(name)
        axes.plot(iterations, values, color=organ_colour(organ.id) if organ else "black", **style)
        axes.axhline(WEAK_ORGAN_DSC, color="grey", linestyle="--", linewidth=0.8)
        last = values[-1]
        label = organ.title if organ else name
        axes.set_title(f"{label}: {'–' if math.isnan(last) else f'{last:.2f}'}", fontsize=9)
        axes.set_ylim(0, 1)
        axes.grid(alpha=0.3)
    for axes in list(grid.flat)[len(names) :]:
        axes.set_visible(False)
    figure.supxlabel("training iterations")
    figure.supylabel(f"pseudo-Dice (validation patches); dashed: {WEAK_ORGAN_DSC}")
    if title:
        figure.suptitle(title)
    return figure


def _time_panel(axes, records: list[dict], style: dict) -> str:
    """Epoch wall time (left) and that time per training step (right); returns the epoch axis label."""
    epochs = [record["epoch"] for record in records]
    seconds = [_value(record.get("epoch_seconds")) for record in records]
    axes.plot(epochs, seconds, color="tab:brown", **style)
    axes.set_ylabel("epoch time (s)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    steps = _steps_per_epoch(records)
    known = {count for count in steps if count is not None}
    if len(known) == 1:
        # Every epoch ran the same steps: a second scale on the same line reads the time per step.
        (per_epoch,) = known
        step_axes = axes.secondary_yaxis(
            "right", functions=(lambda total: total / per_epoch, lambda per_step: per_step * per_epoch)
        )
        step_axes.set_ylabel("s per step")
        return f"epoch ({per_epoch} training steps each)"
    if known:
        per_step = [
            math.nan if count is None else total / count for total, count in zip(seconds, steps, strict=True)
        ]
        step_axes = axes.twinx()
        step_axes.plot(epochs, per_step, color="tab:gray", linestyle=":", **style)
        step_axes.set_ylabel("s per step (dotted)", color="tab:gray")
        step_axes.set_ylim(bottom=0)
    return "epoch"


def _value(value) -> float:
    return math.nan if value is None else float(value)


def _steps_per_epoch(records: Sequence[dict]) -> list[int | None]:
    """Training steps of each epoch: the growth of ``iteration`` since the record before (since 0 for
    the first); None where that is unknown or not positive."""
    result, previous = [], 0
    for record in records:
        iteration = record.get("iteration")
        steps = None if iteration is None or previous is None else iteration - previous
        result.append(steps if steps is not None and steps > 0 else None)
        previous = iteration
    return result


@contextlib.contextmanager
def progress_bar(enabled: bool):
    """A rich progress display for the epochs (None when disabled)."""
    if not enabled:
        yield None
        return
    from amoseg.progress import progress_display

    with progress_display() as progress:
        yield progress


def print_epoch(bar, record: dict, epochs: int) -> None:
    """One line per epoch above the progress bar."""

    def number(value: float | None, digits: int = 3) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    line = (
        f"epoch {record['epoch']}/{epochs}: train loss {number(record['train_loss'])}, "
        f"val loss {number(record['val_loss'])}, mean pseudo-Dice {number(record['mean_pseudo_dice'])} "
        f"(EMA {number(record['ema_pseudo_dice'])}), lr {record['lr']:.2e}, {record['epoch_seconds']:.1f} s"
    )
    bar.console.print(line, markup=False, highlight=False, soft_wrap=True)


#: A training step this many times the plan's is worth a warning: a time budget then holds that many
#: times fewer steps than the plan was sized for.
SLOW_STEP_RATIO = 1.5


def slower_than_planned(seconds_per_step: float | None, planned_step_s: float | None) -> bool:
    """Whether measured steps took more than ``SLOW_STEP_RATIO`` times the planned one (False when
    either is unknown)."""
    return bool(planned_step_s and seconds_per_step and seconds_per_step > SLOW_STEP_RATIO * planned_step_s)


def slow_step_warning(plan: Plan, seconds_per_step: float) -> str | None:
    """The line ``amoseg train`` prints when its steps are more than ``SLOW_STEP_RATIO`` times the
    plan's; None when they are not, or the plan states no step time (GPU presets)."""
    planned = plan.planned_step_s
    if not slower_than_planned(seconds_per_step, planned):
        return None
    where = plan.measured_step.describe() if plan.measured_step else "estimated for the reference 2 CPU cores"
    return (
        f"warning: training steps take {seconds_per_step:.2f} s against the plan's {planned:.2f} s ({where}): "
        f"a time budget holds {seconds_per_step / planned:.1f}x fewer steps than planned. If this machine "
        "is not the one that planned (or was busy then), plan again here (`amoseg plan DATASET --preset "
        "cpu -o plans.json`), then preprocess and train with the new plan"
    )


def print_result(result, fold: str) -> None:
    """The one line a finished training prints (rank 0 only under torchrun)."""
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"Fold {fold}: mean validation pseudo-Dice {result.mean_pseudo_dice:.3f} after "
            f"{result.epochs} epochs ({result.iterations} iterations, {result.elapsed_seconds:.0f} s, "
            f"stopped by {result.stopped_by}); model in {result.fold_dir}"
        )
