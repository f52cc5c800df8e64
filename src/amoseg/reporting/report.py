"""``amoseg report``: one self-contained HTML page from the artifacts of a study folder.

The page is built only from what the stages wrote (stats/, plans.json, runs/fold_*/, predictions/,
evaluation/, steps.json), so it works on a demo and on a study made by hand. Every image is embedded
as a base64 PNG; the page needs no other file and no JavaScript. Contents: docs/report.md.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

from amoseg.atomic import write_text
from amoseg.errors import InputError
from amoseg.reporting import html
from amoseg.reporting.evaluation_sections import cases_section, evaluation_section, load_scores
from amoseg.reporting.sections import (
    dataset_section,
    plan_section,
    steps_section,
    study_section,
    training_section,
)
from amoseg.reporting.study import StudyFiles, locate
from amoseg.reporting.summary import summary_box

REPORT_FILE = "report.html"

#: Section ids in page order: the result first, how it was made after, the set-up last. Tests and
#: links find the sections by them; the summary box above them has the id "summary".
SECTION_IDS = ("evaluation", "cases", "training", "plan", "dataset", "steps", "study")


def build_report(files: StudyFiles, created: datetime | None = None) -> str:
    """The HTML page of a located study; ``created`` (default: now) is the date shown in its header."""
    created = created or datetime.now().astimezone()
    scores = load_scores(files)
    sections = [
        ("evaluation", "Evaluation", evaluation_section(files, scores)),
        ("cases", "Best and worst test cases", cases_section(files, scores)),
        ("training", "Training", training_section(files)),
        ("plan", "Plan", plan_section(files)),
        ("dataset", "Dataset card", dataset_section(files)),
        ("steps", "Timings and commands", steps_section(files)),
        ("study", "Study and software", study_section(files, created)),
    ]
    return html.page(
        f"amoseg report: {files.root.resolve().name}", sections, summary=summary_box(files, scores)
    )


def write_report(
    study: str | Path, output: str | Path | None = None, dataset: str | Path | None = None
) -> Path:
    """Build the report of ``study`` and write it atomically to ``output`` (default ``study/report.html``).

    Raises:
        InputError: the study or the dataset folder does not exist.
        AmosegError: the study folder holds none of the stages' artifacts.
    """
    files = locate(study, dataset)
    target = Path(output) if output is not None else files.root / REPORT_FILE
    if target.is_dir():
        raise InputError(target, "is a folder; give the report's file name, e.g. report.html")
    files = dataclasses.replace(files, report_folder=target.resolve().parent)
    write_text(target, build_report(files))
    return target
