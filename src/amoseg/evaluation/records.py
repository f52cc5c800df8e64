"""Reading back what ``amoseg evaluate`` wrote (``evaluation.outputs``): the rows of ``per_case.csv``
and ``summary.json``. The report and any other reader go through here."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amoseg.atomic import read_json
from amoseg.errors import InputError
from amoseg.evaluation.outputs import CSV_COLUMNS

#: The columns a reader needs; the volumes are optional (files written before they existed).
_REQUIRED_COLUMNS = CSV_COLUMNS[:6]


@dataclass(frozen=True)
class ScoreRow:
    """One case and organ of ``per_case.csv``; ``dsc`` and ``nsd`` are NaN where the cell is empty,
    the volumes (mL) NaN where the file has no such column."""

    case_id: str
    modality: str
    organ: str
    label: int
    dsc: float
    nsd: float
    ref_ml: float = math.nan
    pred_ml: float = math.nan

    @property
    def not_predicted(self) -> bool:
        """The reference has the organ and the prediction none of it."""
        return self.ref_ml > 0 and self.pred_ml == 0


def read_per_case(path: Path) -> list[ScoreRow]:
    """The rows of an ``amoseg evaluate`` per_case.csv.

    Raises:
        InputError: unreadable, a required column is missing or a cell is not a number.
    """
    try:
        return _read_rows(path)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(path, f"unreadable per_case.csv ({error})") from None


def _read_rows(path: Path) -> list[ScoreRow]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        absent = [name for name in _REQUIRED_COLUMNS if name not in (reader.fieldnames or ())]
        if absent:
            raise InputError(path, f"not an amoseg per_case.csv: no column {', '.join(absent)}")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append(
                    ScoreRow(
                        case_id=row["case"],
                        modality=row["modality"],
                        organ=row["organ"],
                        label=int(row["label"]),
                        dsc=_score(row["dsc"]),
                        nsd=_score(row["nsd"]),
                        ref_ml=_score(row.get("ref_volume_ml")),
                        pred_ml=_score(row.get("pred_volume_ml")),
                    )
                )
            except (TypeError, ValueError) as error:
                raise InputError(path, f"line {line}: {error}") from None
    return rows


def _score(cell: str | None) -> float:
    return math.nan if cell is None or not cell.strip() else float(cell)


def read_summary(path: Path) -> dict[str, Any]:
    """The content of a ``summary.json`` (``outputs.summary_dict``), checked for what readers use.

    Raises:
        InputError: unreadable, or without its case count, labels and groups.
    """
    summary = read_json(path, "evaluation summary")
    try:
        int(summary["cases"])
        groups = {name: int(group["cases"]) for name, group in summary["groups"].items()}
        labels = {str(name): int(label) for name, label in summary["labels"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputError(
            path, f"not an amoseg evaluation summary ({type(error).__name__}: {error})"
        ) from None
    if not groups or not labels:
        raise InputError(path, "not an amoseg evaluation summary (no groups or no labels)")
    return summary


__all__ = ["ScoreRow", "read_per_case", "read_summary"]
