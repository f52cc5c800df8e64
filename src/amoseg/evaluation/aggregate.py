"""From per-case scores to the summary: per organ mean and std over cases, then mDSC and mNSD.

Rules: a NaN score (organ absent from both reference and prediction) is left out of every mean and
counted instead; an organ's mean is over the cases where it was scored; mDSC and mNSD are the means
of the per-organ means over the organs scored at least once. Summaries are given for CT, MR and all
cases. Standard deviations are population standard deviations (``ddof=0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from amoseg.evaluation.case import CaseResult
from amoseg.labels import MODALITIES, ORGAN_BY_ID

GROUPS: tuple[str, ...] = (*MODALITIES, "all")


@dataclass(frozen=True)
class OrganSummary:
    """One organ over the cases of a group.

    Attributes:
        label: AMOS label id.
        dsc_mean, dsc_std, nsd_mean, nsd_std: over the scored cases; NaN when none was scored.
        scored: cases with a number (the organ was in the reference or the prediction).
        not_a_number: cases where the organ was absent from both, left out of the means.
    """

    label: int
    dsc_mean: float
    dsc_std: float
    nsd_mean: float
    nsd_std: float
    scored: int
    not_a_number: int

    @property
    def name(self) -> str:
        return ORGAN_BY_ID[self.label].name


@dataclass(frozen=True)
class GroupSummary:
    """All organs over the cases of one group (CT, MR or all).

    Attributes:
        group: "CT", "MR" or "all".
        cases: number of cases in the group.
        organs: one summary per evaluated label.
        mean_dsc, mean_nsd: mDSC and mNSD, the means of the organ means; NaN when nothing was scored.
    """

    group: str
    cases: int
    organs: tuple[OrganSummary, ...]
    mean_dsc: float
    mean_nsd: float

    @property
    def not_a_number(self) -> int:
        """Organ-case pairs left out of the means because the organ was absent from both maps."""
        return sum(organ.not_a_number for organ in self.organs)


@dataclass(frozen=True)
class Evaluation:
    """The result of evaluating a set of cases.

    Attributes:
        cases: per-case results, sorted by case id.
        labels: the evaluated label ids.
        tolerances_mm: NSD tolerance in mm per label id.
        tolerance_profile: name of the tolerance table used, or None for one tolerance for all.
        unmatched_predictions: prediction case ids with no reference (not scored).
    """

    cases: tuple[CaseResult, ...]
    labels: tuple[int, ...]
    tolerances_mm: dict[int, float]
    tolerance_profile: str | None = None
    unmatched_predictions: tuple[str, ...] = field(default=())

    @cached_property
    def groups(self) -> dict[str, GroupSummary]:
        """Summaries for CT, MR and all cases (a group may hold zero cases)."""
        return {group: summarise(self.cases, self.labels, group) for group in GROUPS}

    @property
    def missing_predictions(self) -> tuple[str, ...]:
        return tuple(case.case_id for case in self.cases if case.prediction_missing)

    def unscored_ml(self) -> dict[int, tuple[float, int]]:
        """Organ id -> (mL predicted over all cases, cases with any) for organs no score looks at:
        a model that predicts an organ no reference annotates shows it here, not in the scores."""
        totals: dict[int, tuple[float, int]] = {}
        for case in self.cases:
            for label, millilitres in case.unscored_ml().items():
                total, count = totals.get(label, (0.0, 0))
                totals[label] = (total + millilitres, count + 1)
        return dict(sorted(totals.items()))


def summarise(cases: tuple[CaseResult, ...], labels: tuple[int, ...], group: str = "all") -> GroupSummary:
    """Summarise the cases of ``group`` ("CT", "MR" or "all")."""
    members = [case for case in cases if group == "all" or case.modality == group]
    organs = []
    by_label = [{score.label: score for score in case.organs} for case in members]
    for label in labels:
        scores = [case_scores[label] for case_scores in by_label if label in case_scores]
        dsc = np.array([score.dsc for score in scores if not math.isnan(score.dsc)])
        nsd = np.array([score.nsd for score in scores if not math.isnan(score.nsd)])
        organs.append(
            OrganSummary(
                label=label,
                dsc_mean=_mean(dsc),
                dsc_std=_std(dsc),
                nsd_mean=_mean(nsd),
                nsd_std=_std(nsd),
                scored=len(dsc),
                not_a_number=len(scores) - len(dsc),
            )
        )
    return GroupSummary(
        group=group,
        cases=len(members),
        organs=tuple(organs),
        mean_dsc=_mean(np.array([o.dsc_mean for o in organs if not math.isnan(o.dsc_mean)])),
        mean_nsd=_mean(np.array([o.nsd_mean for o in organs if not math.isnan(o.nsd_mean)])),
    )


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else math.nan


def _std(values: np.ndarray) -> float:
    return float(values.std()) if len(values) else math.nan
