"""Where each artifact of a study folder is: the layout ``amoseg demo`` writes, or a study made by hand.

Nothing is read here beyond listing folders; each report section opens its own files and says which one
was not found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from amoseg.errors import AmosegError, InputError
from amoseg.reporting.steps import STEPS_FILE

#: Where training runs are looked for, in order: the demo's ``runs/``, any run folder, the study itself.
FOLD_PATTERNS = ("runs/fold_*/log.jsonl", "*/fold_*/log.jsonl", "fold_*/log.jsonl")
#: The dataset ``amoseg demo`` generates inside the study.
DEMO_DATASET = "phantoms"


@dataclass(frozen=True)
class StudyPaths:
    """Where each step of a study writes, under one folder (the layout ``amoseg report`` reads)."""

    root: Path

    @property
    def dataset(self) -> Path:
        return self.root / DEMO_DATASET

    @property
    def check(self) -> Path:
        return self.root / "check.json"

    @property
    def stats(self) -> Path:
        return self.root / "stats"

    @property
    def plan(self) -> Path:
        return self.root / "plans.json"

    @property
    def preprocessed(self) -> Path:
        return self.root / "preprocessed"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    @property
    def evaluation(self) -> Path:
        return self.root / "evaluation"

    @property
    def steps(self) -> Path:
        return self.root / STEPS_FILE


@dataclass(frozen=True)
class StudyFiles:
    """The paths of a study's artifacts; a path may not exist (its section then says so).

    Attributes:
        root: the study folder.
        dataset: the dataset folder asked for, else ``root/phantoms``, or None when neither exists.
        plan: ``root/plans.json``, else the first fold's plans.json, else None.
        folds: fold folders holding a log.jsonl, sorted by path.
        report_folder: where the report is written, for relative links (default: ``root``).
    """

    root: Path
    dataset: Path | None
    plan: Path | None
    folds: tuple[Path, ...]
    report_folder: Path | None = None

    def relative(self, path: Path) -> str:
        """``path`` as a link from the report's folder (default: the study folder), with slashes."""
        return Path(os.path.relpath(path, self.report_folder or self.root)).as_posix()

    @property
    def layout(self) -> StudyPaths:
        """Where the stages write inside the study (the fixed part of the layout)."""
        return StudyPaths(self.root)

    def found(self) -> list[Path]:
        """The artifacts that exist; an empty list means the folder is not a study."""
        layout = self.layout
        candidates = [
            layout.check,
            layout.stats / "stats.json",
            layout.stats / "stats.md",
            layout.evaluation / "per_case.csv",
            layout.evaluation / "summary.json",
            layout.steps,
        ]
        found = [path for path in candidates if path.is_file()]
        if self.plan is not None:
            found.append(self.plan)
        found += [fold / "log.jsonl" for fold in self.folds]
        if layout.predictions.is_dir():
            found.append(layout.predictions)
        return found


def locate(study: str | Path, dataset: str | Path | None = None) -> StudyFiles:
    """Find the artifacts of ``study``.

    Raises:
        InputError: the study folder or the given dataset folder does not exist.
        AmosegError: the folder holds none of the artifacts.
    """
    root = Path(study)
    if not root.is_dir():
        raise InputError(root, "study folder not found; give the folder the amoseg stages wrote into")
    if dataset is not None and not Path(dataset).is_dir():
        raise InputError(dataset, "dataset folder not found")
    folds = _fold_folders(root)
    files = StudyFiles(
        root=root,
        dataset=Path(dataset) if dataset is not None else _demo_dataset(root),
        plan=_plan_file(root, folds),
        folds=folds,
    )
    if not files.found():
        raise AmosegError(
            f"{root}: no study artifacts found (stats/, plans.json, runs/fold_*/log.jsonl, predictions/, "
            f"evaluation/, {STEPS_FILE}); run the amoseg stages into this folder first"
        )
    return files


def _fold_folders(root: Path) -> tuple[Path, ...]:
    folds: list[Path] = []
    for pattern in FOLD_PATTERNS:
        for log in sorted(root.glob(pattern)):
            if log.parent not in folds:
                folds.append(log.parent)
    return tuple(folds)


def _plan_file(root: Path, folds: tuple[Path, ...]) -> Path | None:
    for candidate in (root / "plans.json", *(fold / "plans.json" for fold in folds)):
        if candidate.is_file():
            return candidate
    return None


def _demo_dataset(root: Path) -> Path | None:
    from amoseg.data.layout import DATASET_JSON

    candidate = root / DEMO_DATASET
    return candidate if (candidate / DATASET_JSON).is_file() else None
