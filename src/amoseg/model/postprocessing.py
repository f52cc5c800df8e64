"""A fold's postprocessing decision, ``postprocessing.json``: which organs keep only their largest
connected component when predicting. Final validation decides it (``inference.postprocess``); loading
a model applies the majority of its folds' decisions. This module is the only code that reads or
writes the file."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amoseg.atomic import read_json, write_json
from amoseg.errors import InputError
from amoseg.labels import MAX_LABEL, organ_name

POSTPROCESSING_FILE = "postprocessing.json"
#: Smallest gain in an organ's mean validation Dice that makes keeping its largest component worth it.
#: nnU-Net takes any gain; a fold's few validation cases make a gain of a few voxels noise, and the
#: removal is irreversible for a future case where the organ really is in two pieces, so we ask for
#: a tenth of a Dice point.
MIN_IMPROVEMENT = 1e-3


@dataclass(frozen=True)
class Postprocessing:
    """Which organs keep only their largest component, and the validation Dice that decided it.

    Attributes:
        largest_component: organ ids to clean, ascending.
        dice_before: organ name -> mean Dice over the validation cases annotating it (NaN: in no case).
        dice_after: the same with the organ's largest component kept.
        cases: validation cases the decision was made on.
        min_improvement: the gain in mean Dice an organ needed.
    """

    largest_component: tuple[int, ...]
    dice_before: dict[str, float]
    dice_after: dict[str, float]
    cases: int
    min_improvement: float = MIN_IMPROVEMENT

    def to_dict(self) -> dict[str, Any]:
        return {
            "largest_component": list(self.largest_component),
            "largest_component_names": [organ_name(organ) for organ in self.largest_component],
            "dice_before": dict(self.dice_before),
            "dice_after": dict(self.dice_after),
            "cases": self.cases,
            "min_improvement": self.min_improvement,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Postprocessing:
        """Rebuild from ``to_dict``'s output (null Dice read as NaN; the names are informative only).

        Raises:
            ValueError: a missing key or an organ id outside 1..15.
        """
        missing = sorted({"largest_component", "dice_before", "dice_after", "cases"} - set(data))
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        organs = tuple(sorted(int(organ) for organ in data["largest_component"]))
        if any(not 1 <= organ <= MAX_LABEL for organ in organs):
            raise ValueError(f"organ ids must lie in 1..{MAX_LABEL}, got {list(organs)}")
        return cls(
            largest_component=organs,
            dice_before=floats_from_json(data["dice_before"]),
            dice_after=floats_from_json(data["dice_after"]),
            cases=int(data["cases"]),
            min_improvement=float(data.get("min_improvement", MIN_IMPROVEMENT)),
        )

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Postprocessing:
        """Read a ``postprocessing.json``.

        Raises:
            InputError: unreadable, or not a postprocessing record.
        """
        path = Path(path)
        data = read_json(path, "postprocessing record")
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError, AttributeError) as error:
            raise InputError(path, f"not a postprocessing record ({error}); delete it or retrain") from None


def floats_from_json(values: Mapping[str, Any]) -> dict[str, float]:
    """A JSON object of numbers with null for NaN (as ``write_json`` stores NaN) back to floats."""
    return {str(key): math.nan if value is None else float(value) for key, value in values.items()}


def majority_organs(decisions: Sequence[Postprocessing | None]) -> tuple[int, ...]:
    """The organs that more than half of an ensemble's folds chose.

    A fold without a decision (no ``postprocessing.json``) counts as choosing nothing, and a tie is
    not a majority: removing voxels cannot be undone, leaving the network's output can.
    """
    votes: dict[int, int] = {}
    for decision in decisions:
        for organ in decision.largest_component if decision is not None else ():
            votes[organ] = votes.get(organ, 0) + 1
    return tuple(sorted(organ for organ, count in votes.items() if 2 * count > len(decisions)))


def load_postprocessing(fold_dir: str | Path) -> Postprocessing | None:
    """A fold folder's ``postprocessing.json``, or None when it has none."""
    path = Path(fold_dir) / POSTPROCESSING_FILE
    return Postprocessing.load(path) if path.is_file() else None


__all__ = [
    "MIN_IMPROVEMENT",
    "POSTPROCESSING_FILE",
    "Postprocessing",
    "floats_from_json",
    "load_postprocessing",
    "majority_organs",
]
