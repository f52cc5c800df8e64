"""Per-case scores read back from ``per_case.csv``: case means, the best and worst case, values per organ.

Pure functions over the rows, with the evaluation's conventions (docs/metrics.md): an empty cell is a
score that is not a number (organ absent from reference and prediction) and is left out of every mean.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from amoseg.errors import InputError

_REQUIRED_COLUMNS = ("case", "modality", "organ", "label", "dsc", "nsd")


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


@dataclass(frozen=True)
class CaseMean:
    """One case's scores averaged over its scored organs (NaN scores left out)."""

    case_id: str
    modality: str
    mean_dsc: float
    mean_nsd: float
    organs_scored: int


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


def case_means(rows: Sequence[ScoreRow]) -> list[CaseMean]:
    """Mean DSC and NSD per case over the organs with a number, sorted by case id.

    A case with no scored organ at all (every organ absent from both maps) is left out: it cannot be
    ranked.
    """
    by_case: dict[str, list[ScoreRow]] = {}
    for row in rows:
        by_case.setdefault(row.case_id, []).append(row)
    means = []
    for case_id in sorted(by_case):
        case_rows = by_case[case_id]
        dsc = [row.dsc for row in case_rows if not math.isnan(row.dsc)]
        nsd = [row.nsd for row in case_rows if not math.isnan(row.nsd)]
        if dsc:
            means.append(
                CaseMean(
                    case_id=case_id,
                    modality=case_rows[0].modality,
                    mean_dsc=sum(dsc) / len(dsc),
                    mean_nsd=sum(nsd) / len(nsd) if nsd else math.nan,
                    organs_scored=len(dsc),
                )
            )
    return means


def best_and_worst(means: Sequence[CaseMean]) -> tuple[CaseMean, CaseMean] | None:
    """The cases with the highest and the lowest mean DSC; ties go to the first case id.

    Returns None when no case was scored; with one case, it is both best and worst.
    """
    if not means:
        return None
    ordered = sorted(means, key=lambda mean: mean.case_id)
    best = max(ordered, key=lambda mean: mean.mean_dsc)
    worst = min(ordered, key=lambda mean: mean.mean_dsc)
    return best, worst


def values_by_organ(rows: Sequence[ScoreRow], metric: str) -> dict[int, dict[str, list[float]]]:
    """label -> modality -> the organ's ``metric`` ("dsc" or "nsd") over the cases, NaN left out.

    Labels come in ascending order; a modality appears only where it has at least one value.
    """
    values: dict[int, dict[str, list[float]]] = {}
    for row in sorted(rows, key=lambda row: row.label):
        value = getattr(row, metric)
        per_modality = values.setdefault(row.label, {})
        if not math.isnan(value):
            per_modality.setdefault(row.modality, []).append(value)
    return values


def not_predicted(rows: Sequence[ScoreRow], group: str = "all") -> dict[int, tuple[int, int]]:
    """label -> (cases whose prediction has none of the organ, cases whose reference has it), for the
    organs with at least one such empty prediction, in ``group`` ("CT", "MR" or "all")."""
    counts: dict[int, tuple[int, int]] = {}
    for row in rows:
        if (group == "all" or row.modality == group) and row.ref_ml > 0:
            empty, present = counts.get(row.label, (0, 0))
            counts[row.label] = (empty + row.not_predicted, present + 1)
    return {label: pair for label, pair in sorted(counts.items()) if pair[0]}


def worst_per_organ(rows: Sequence[ScoreRow]) -> dict[int, list[ScoreRow]]:
    """label -> that organ's scored rows from the lowest DSC up (ties by case id): the worst case
    first, the next for scale."""
    by_label: dict[int, list[ScoreRow]] = {}
    for row in rows:
        if not math.isnan(row.dsc):
            by_label.setdefault(row.label, []).append(row)
    return {
        label: sorted(found, key=lambda row: (row.dsc, row.case_id))
        for label, found in sorted(by_label.items())
    }
