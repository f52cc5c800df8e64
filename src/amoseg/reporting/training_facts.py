"""What a fold's training did, read from its folder: for the report's summary box and training section.

A fold folder holds ``log.jsonl`` (one record per epoch), ``config.json`` (the settings) and
``plans.json``, read here through their owners' typed readers; from them: how far training got and
why it stopped, whether its validation ran on its own training cases (fold "all"), and the planned
step time against the measured one. A report shows what a damaged or missing file leaves it, so an
unreadable config or plan counts as absent.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from amoseg.training.log import slower_than_planned

_Record = TypeVar("_Record")


@dataclass(frozen=True)
class FoldFacts:
    """One fold's training, as far as its files tell.

    Attributes:
        name: the fold folder's name, e.g. ``fold_all``.
        fold: the config's fold ("0".."4" or "all").
        epochs: epochs done.
        planned_epochs: epochs the config asked for (None if unknown).
        budget_s: the time budget in seconds, or None.
        elapsed_s: seconds of training done.
        iterations: steps done.
        planned_step_s: the plan's estimated seconds per step (cpu preset), or None.
        measured_step_s: median seconds per training step over the epochs: the training half of each
            epoch (batches waited for included, validation not), or the whole epoch for a log that
            predates that record.
        device: the device the config asked for ("auto", "cpu", ...), or None if unknown.
    """

    name: str
    fold: str
    epochs: int
    planned_epochs: int | None
    budget_s: float | None
    elapsed_s: float
    iterations: int
    planned_step_s: float | None
    measured_step_s: float | None
    device: str | None = None

    @property
    def stopped_by_budget(self) -> bool:
        return (
            self.budget_s is not None
            and self.planned_epochs is not None
            and self.epochs < self.planned_epochs
        )

    @property
    def validates_on_training_cases(self) -> bool:
        return self.fold == "all"

    @property
    def slow(self) -> bool:
        """The steps took more than ``SLOW_STEP_RATIO`` times the plan's (as ``amoseg train`` warns)."""
        return slower_than_planned(self.measured_step_s, self.planned_step_s)

    def progress_text(self) -> str:
        """``4 epochs (stopped by the 9.0 min time budget; up to 1000 planned)`` and alike."""
        if self.stopped_by_budget:
            return (
                f"{self.epochs} epochs, {self.iterations} iterations (stopped by the time budget of "
                f"{self.budget_s / 60:.1f} min; up to {self.planned_epochs} planned)"
            )
        planned = f" of {self.planned_epochs}" if self.planned_epochs else ""
        return f"{self.epochs}{planned} epochs, {self.iterations} iterations"


def fold_facts(fold: Path, history: list[dict]) -> FoldFacts | None:
    """The facts of a fold folder from its log records; None for an empty log."""
    from amoseg.planning.plan import PLANS_FILE, Plan
    from amoseg.training.config import TrainConfig
    from amoseg.training.run import CONFIG_FILE

    if not history:
        return None
    config = readable(TrainConfig.load, fold / CONFIG_FILE)
    plan = readable(Plan.load, fold / PLANS_FILE)
    last = history[-1]
    return FoldFacts(
        name=fold.name,
        fold=config.fold if config else fold.name.removeprefix("fold_"),
        epochs=int(last.get("epoch") or 0),
        planned_epochs=config.epochs if config else None,
        budget_s=config.time_budget_s if config else None,
        elapsed_s=float(last.get("elapsed_seconds") or 0.0),
        iterations=int(last.get("iteration") or 0),
        planned_step_s=plan.planned_step_s if plan else None,
        measured_step_s=_seconds_per_iteration(history),
        device=config.device if config else None,
    )


def readable(reader: Callable[[Path], _Record], path: Path) -> _Record | None:
    """``reader(path)``, or None when what it reads is missing or its reader refuses it."""
    from amoseg.errors import AmosegError

    try:
        return reader(path)
    except AmosegError:
        return None


def _seconds_per_iteration(history: list[dict]) -> float | None:
    values = []
    previous = 0
    for record in history:
        # The training half alone where the log has it, as the plan's step is; else the whole epoch.
        seconds = record.get("train_seconds") or record.get("epoch_seconds")
        iteration = record.get("iteration")
        if iteration is not None and seconds is not None and iteration > previous:
            values.append(seconds / (iteration - previous))
        previous = iteration or previous
    return statistics.median(values) if values else None
