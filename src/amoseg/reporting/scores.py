"""Per-case scores (``per_case.csv``, read by ``amoseg.evaluation.records``): case means, the best and
worst case, values per organ.

Pure functions over the rows, with the evaluation's conventions (docs/metrics.md): an empty cell is a
score that is not a number (organ absent from reference and prediction) and is left out of every mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from amoseg.evaluation.records import ScoreRow


@dataclass(frozen=True)
class CaseMean:
    """One case's scores averaged over its scored organs (NaN scores left out)."""

    case_id: str
    modality: str
    mean_dsc: float
    mean_nsd: float
    organs_scored: int


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
