"""Evaluation: the challenge metrics (DSC and NSD), per case and aggregated over a dataset.

Pure metrics on arrays (``dice``, ``nsd``, ``score_organs``), one case from files or label maps
(``evaluate_case``), many cases in parallel (``evaluate_folder``) and the output files
(``write_outputs``). Definitions and conventions are in docs/metrics.md.
"""

from amoseg.evaluation.aggregate import Evaluation, GroupSummary, OrganSummary
from amoseg.evaluation.case import CaseResult, evaluate_case
from amoseg.evaluation.folder import evaluate_folder
from amoseg.evaluation.metrics import OrganScore, dice, nsd, score_organs
from amoseg.evaluation.outputs import write_outputs
from amoseg.evaluation.tolerance import DEFAULT_TOLERANCE_MM, TOLERANCE_PROFILES, tolerances_for

__all__ = [
    "DEFAULT_TOLERANCE_MM",
    "TOLERANCE_PROFILES",
    "CaseResult",
    "Evaluation",
    "GroupSummary",
    "OrganScore",
    "OrganSummary",
    "dice",
    "evaluate_case",
    "evaluate_folder",
    "nsd",
    "score_organs",
    "tolerances_for",
    "write_outputs",
]
