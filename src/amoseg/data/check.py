"""``amoseg check``: validate every case of a dataset and report each problem in one line.

Errors make a dataset unusable (unreadable file, wrong dimension, image and label on different grids,
undeclared label values, NaN); warnings flag what is suspicious but usable (a "CT" with no air, an
organ declared absent that is present). The core, ``check_case``, is a pure function of one case.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from amoseg.atomic import read_json, write_json
from amoseg.data.layout import Case, Dataset, Problem, discover
from amoseg.errors import InputError
from amoseg.io.sitk_io import read_header, read_image, read_label
from amoseg.labels import ORGAN_BY_ID

#: Spacing outside this range (mm) is implausible for abdominal CT or MR and usually a broken header.
PLAUSIBLE_SPACING_MM = (0.1, 15.0)
#: A CT of the abdomen contains air (about -1000 HU); a minimum above this suggests another modality
#: or intensities already normalised.
CT_AIR_BELOW_HU = -500.0
CT_MAX_HU = 4000.0
#: Label maps are scanned in chunks of this many voxels (a few MB of temporaries each).
_CHUNK_VOXELS = 1 << 22
#: Chunks whose values lie in [0, this) are counted with a histogram, others sorted.
_HISTOGRAM_LIMIT = 1 << 12


@dataclass(frozen=True)
class CheckReport:
    """Result of checking a dataset: every problem found, and how many cases were looked at."""

    dataset: str
    cases_checked: int
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(problem for problem in self.problems if problem.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(problem for problem in self.problems if problem.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "ok": self.ok,
            "cases_checked": self.cases_checked,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": [asdict(problem) for problem in self.problems],
        }

    @classmethod
    def from_dict(cls, data: dict) -> CheckReport:
        """Rebuild from ``to_dict``'s output (the counts and verdict follow from the problems).

        Raises:
            KeyError, TypeError, ValueError: a missing or malformed entry.
        """
        problems = tuple(Problem(**problem) for problem in data["problems"])
        if any(problem.severity not in ("error", "warning") for problem in problems):
            raise ValueError("a problem's severity is neither error nor warning")
        return cls(dataset=str(data["dataset"]), cases_checked=int(data["cases_checked"]), problems=problems)


def check_dataset(root: str | Path, workers: int | None = None, progress: bool = True) -> CheckReport:
    """Discover a dataset and check all its cases in parallel."""
    root = Path(root)
    try:
        dataset = discover(root)
    except InputError as error:
        return CheckReport(str(root), 0, (Problem("error", "", str(error.path), error.problem),))
    problems = list(dataset.problems)
    if not dataset.has_dataset_json:
        problems.append(
            Problem("warning", "", "dataset.json", "no dataset.json; cases found by scanning folders")
        )
    if not dataset.cases:
        problems.append(Problem("error", "", "", "no cases found (expected imagesTr/ and labelsTr/)"))
    missing = {problem.case for problem in dataset.problems if "missing" in problem.message}
    to_check = [case for case in dataset.cases if case.case_id not in missing]
    case_problems = [
        problem for found in _check_all(to_check, dataset, workers, progress) for problem in found
    ]
    # Workers finish in any order; report in case order so that runs compare line by line.
    problems.extend(sorted(case_problems, key=lambda problem: (problem.case, problem.path)))
    return CheckReport(str(root), len(dataset.cases), tuple(problems))


def check_case(case: Case, dataset: Dataset) -> list[Problem]:
    """All problems of one case: image, label, and how the two fit together."""
    problems: list[Problem] = []

    def add(severity: str, path: Path | None, message: str) -> None:
        problems.append(Problem(severity, case.case_id, _relative(dataset.root, path), message))

    image_header = _header(case.image, add)
    label_header = _header(case.label, add) if case.label is not None else None
    if image_header is not None:
        _check_spacing(case.image, image_header.geometry.spacing, add)
        _check_image_voxels(case, add)
    if image_header is not None and label_header is not None:
        differences = image_header.geometry.differences(label_header.geometry)
        if differences:
            add("error", case.label, "label and image grids differ: " + "; ".join(differences))
    if label_header is not None:
        _check_label_voxels(case, dataset, add)
    return problems


def _header(path: Path, add):
    try:
        return read_header(path)
    except InputError as error:
        add("error", path, error.problem)
        return None


def _check_spacing(path: Path, spacing: tuple[float, ...], add) -> None:
    low, high = PLAUSIBLE_SPACING_MM
    if not all(low <= value <= high for value in spacing):
        formatted = ", ".join(f"{value:.4g}" for value in spacing)
        add("warning", path, f"implausible spacing ({formatted}) mm; expected {low}..{high} mm per axis")


def _check_image_voxels(case: Case, add) -> None:
    try:
        array = read_image(case.image).array
    except InputError as error:
        add("error", case.image, error.problem)
        return
    # NaN and infinite voxels were refused by the reader, as every stage's reads refuse them.
    if array.size == 0:
        return
    low, high = float(array.min()), float(array.max())
    if case.modality == "CT":
        if low > CT_AIR_BELOW_HU:
            add(
                "warning",
                case.image,
                f"CT has no values below {CT_AIR_BELOW_HU:g} HU (range {low:g}..{high:g}): "
                "not CT, or not in HU?",
            )
        if high > CT_MAX_HU:
            add("warning", case.image, f"CT maximum {high:g} HU is implausibly high")
    elif low < 0 and high - low > 0 and -low > 0.05 * (high - low):
        add("warning", case.image, f"MR has negative values (range {low:g}..{high:g}): already normalised?")


def _check_label_voxels(case: Case, dataset: Dataset, add) -> None:
    try:
        label = read_label(case.label).array
    except InputError as error:
        add("error", case.label, error.problem)
        return
    present = label_values(label) - {0}
    problem = undeclared_labels(present, dataset.labels)
    if problem:
        add("error", case.label, problem)
    unannotated = sorted(v for v in present if v in dataset.labels and v not in case.annotated_labels)
    if unannotated:
        add("warning", case.label, f"holds organs {_names(unannotated)} that the dataset does not annotate")
    declared_absent_but_present = sorted(set(case.absent_labels) & present)
    if declared_absent_but_present:
        add(
            "warning",
            case.label,
            f"organs {_names(declared_absent_but_present)} are declared absent but present",
        )
    missing = sorted(set(case.annotated_labels) - present - set(case.absent_labels))
    if missing:
        add("warning", case.label, f"annotated organs {_names(missing)} have no voxels")


def label_values(array: np.ndarray) -> set[int]:
    """The distinct values of an integer label map.

    Read in chunks of its memory, so that neither a histogram as long as the largest value (a uint32
    file holding 4e9 would need 32 GB) nor a full-size integer copy is ever made.
    """
    flat = np.ravel(array, order="K")  # a view for the contiguous arrays readers give
    found: set[int] = set()
    for start in range(0, flat.size, _CHUNK_VOXELS):
        chunk = flat[start : start + _CHUNK_VOXELS]
        low, high = int(chunk.min()), int(chunk.max())
        if low >= 0 and high < _HISTOGRAM_LIMIT:
            found.update(np.flatnonzero(np.bincount(chunk, minlength=high + 1)).tolist())
        else:
            found.update(int(value) for value in np.unique(chunk))
    return found


def undeclared_labels(values: set[int], declared: dict[int, str] | set[int]) -> str | None:
    """The one rule for label values, applied by every stage that reads labels: background (0) and
    the organ ids dataset.json declares; None when ``values`` keep to it, else the problem in words."""
    undeclared = sorted(value for value in values if value != 0 and value not in declared)
    if not undeclared:
        return None
    shown = ", ".join(str(value) for value in undeclared[:8]) + (", ..." if len(undeclared) > 8 else "")
    return (
        f"label values [{shown}] are not declared in dataset.json labels (declared: 0, {_id_list(declared)})"
    )


def _id_list(declared) -> str:
    return ", ".join(str(value) for value in sorted(declared))


def _names(ids: list[int]) -> str:
    return ", ".join(f"{ORGAN_BY_ID[i].name} ({i})" if i in ORGAN_BY_ID else str(i) for i in ids)


def _relative(root: Path, path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _guarded(case: Case, dataset: Dataset) -> list[Problem]:
    # A worker must report, never raise: one broken case must not hide the others' problems.
    try:
        return check_case(case, dataset)
    except MemoryError:
        return [
            Problem("error", case.case_id, _relative(dataset.root, case.image), "out of memory while reading")
        ]
    except Exception as error:
        return [
            Problem(
                "error", case.case_id, _relative(dataset.root, case.image), f"{type(error).__name__}: {error}"
            )
        ]


def _check_all(cases: list[Case], dataset: Dataset, workers: int | None, progress: bool):
    from amoseg.parallel import bounded_map, default_workers
    from amoseg.progress import track

    results = bounded_map(partial(_guarded, dataset=dataset), cases, default_workers(workers, len(cases)))
    yield from track(results, total=len(cases), description="checking", enabled=progress)


def write_report(report: CheckReport, path: Path) -> None:
    write_json(path, report.to_dict())


def read_report(path: Path) -> CheckReport:
    """A report ``write_report`` wrote.

    Raises:
        InputError: unreadable, or not an amoseg check report.
    """
    data = read_json(path, "check report")
    try:
        return CheckReport.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputError(path, f"not an amoseg check report ({type(error).__name__}: {error})") from None


def print_report(report: CheckReport) -> None:
    """A table of problems per case, then every problem as one line, then the verdict."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False, soft_wrap=True)
    per_case = Counter((problem.case or "(dataset)", problem.severity) for problem in report.problems)
    if per_case:
        table = Table(title=f"Problems in {report.dataset}")
        table.add_column("case")
        table.add_column("errors", justify="right")
        table.add_column("warnings", justify="right")
        for case in sorted({case for case, _ in per_case}):
            table.add_row(case, str(per_case[(case, "error")]), str(per_case[(case, "warning")]))
        console.print(table)
        for problem in report.problems:
            console.print(problem.line(), markup=False, highlight=False)
    verdict = "OK" if report.ok else "FAILED"
    console.print(
        f"{verdict}: {report.cases_checked} cases, {len(report.errors)} errors, {len(report.warnings)} warnings",
        markup=False,
        highlight=False,
    )
