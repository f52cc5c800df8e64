"""What a fold's training did, read from its folder: for the report's summary box and training section.

A fold folder holds ``log.jsonl`` (one record per epoch), ``config.json`` (the settings) and
``plans.json``; from them: how far training got and why it stopped, whether its validation ran on its
own training cases (fold "all"), and the planned step time against the measured one.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

#: A measured step this many times the planned one is worth a warning (as ``amoseg train`` gives).
SLOW_STEP_RATIO = 1.5


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
        measured_step_s: median seconds per iteration over the epochs, validation included.
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
        """The steps took more than ``SLOW_STEP_RATIO`` times the plan's estimate."""
        return bool(
            self.planned_step_s
            and self.measured_step_s
            and self.measured_step_s > SLOW_STEP_RATIO * self.planned_step_s
        )

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
    if not history:
        return None
    config = json_object(fold / "config.json")
    plan = json_object(fold / "plans.json")
    last = history[-1]
    return FoldFacts(
        name=fold.name,
        fold=str(config.get("fold", fold.name.removeprefix("fold_"))),
        epochs=int(last.get("epoch") or 0),
        planned_epochs=config.get("epochs"),
        budget_s=config.get("time_budget_s"),
        elapsed_s=float(last.get("elapsed_seconds") or 0.0),
        iterations=int(last.get("iteration") or 0),
        planned_step_s=plan.get("estimated_step_s"),
        measured_step_s=_seconds_per_iteration(history),
    )


def _seconds_per_iteration(history: list[dict]) -> float | None:
    values = []
    previous = 0
    for record in history:
        iteration, seconds = record.get("iteration"), record.get("epoch_seconds")
        if iteration is not None and seconds is not None and iteration > previous:
            values.append(seconds / (iteration - previous))
        previous = iteration or previous
    return statistics.median(values) if values else None


def json_object(path: Path) -> dict:
    """The JSON object in ``path``; empty when the file is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}
