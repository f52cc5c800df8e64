"""The run's record for people: ``log.jsonl`` (one JSON object per epoch), ``curves.png``, and the
progress bar with one printed line per epoch.

The two files are rewritten whole from the history each epoch, atomically; the history travels in every
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

LOG_FILE = "log.jsonl"
CURVES_FILE = "curves.png"


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
    """``curves.png``: training and validation loss (left); mean pseudo-Dice, its EMA and each organ's
    (right), against the epoch."""
    from amoseg.reporting.figures import organ_colour, pyplot, save_png

    epochs = [record["epoch"] for record in history if record.get("epoch") is not None]
    if not epochs:
        return
    plt = pyplot()
    figure, (loss_axes, dice_axes) = plt.subplots(1, 2, figsize=(11, 4))

    def series(key: str) -> list[float]:
        return [math.nan if record.get(key) is None else record[key] for record in history]

    loss_axes.plot(epochs, series("train_loss"), label="training loss", color="tab:blue")
    loss_axes.plot(epochs, series("val_loss"), label="validation loss", color="tab:red")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("Dice + cross-entropy")
    loss_axes.legend(loc="upper right")
    loss_axes.grid(alpha=0.3)
    names = {organ.name: organ for organ in ORGAN_BY_ID.values()}
    for name in history[-1].get("pseudo_dice", {}):
        values = [
            math.nan if record["pseudo_dice"].get(name) is None else record["pseudo_dice"][name]
            for record in history
        ]
        colour = organ_colour(names[name].id) if name in names else "grey"
        dice_axes.plot(epochs, values, color=colour, alpha=0.35, linewidth=0.8)
    dice_axes.plot(epochs, series("mean_pseudo_dice"), label="mean pseudo-Dice", color="black")
    dice_axes.plot(epochs, series("ema_pseudo_dice"), label="EMA", color="tab:green", linestyle="--")
    dice_axes.set_ylim(0, 1)
    dice_axes.set_xlabel("epoch")
    dice_axes.set_ylabel("pseudo-Dice (validation patches; thin: organs)")
    dice_axes.legend(loc="lower right")
    dice_axes.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    save_png(figure, folder / CURVES_FILE)


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


def print_result(result, fold: str) -> None:
    """The one line a finished training prints (rank 0 only under torchrun)."""
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"Fold {fold}: mean validation pseudo-Dice {result.mean_pseudo_dice:.3f} after "
            f"{result.epochs} epochs ({result.iterations} iterations, {result.elapsed_seconds:.0f} s, "
            f"stopped by {result.stopped_by}); model in {result.fold_dir}"
        )
