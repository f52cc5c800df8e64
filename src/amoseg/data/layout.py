"""Dataset discovery for the nnU-Net v2 raw layout and AMOS's own layout.

A dataset folder holds ``dataset.json`` and ``imagesTr/labelsTr`` (training), ``imagesVa/labelsVa``
(validation), ``imagesTs`` and optionally ``labelsTs`` (test). Cases come from the ``training``,
``validation`` and ``test`` lists of ``dataset.json`` when it has them (AMOS style), else from scanning
the folders (nnU-Net v2 style).

Discovery never raises for a problem with one case: it records a ``Problem`` so that ``amoseg check``
can list them all. Stages that need a clean dataset call ``Dataset.require_clean()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from amoseg.atomic import read_json
from amoseg.data.modality import modality_from_name
from amoseg.data.naming import (
    case_ids_in_folder,
    describe_same_name,
    image_files,
    same_name_files,
    split_channels,
)
from amoseg.errors import AmosegError, InputError
from amoseg.io.sitk_io import strip_image_suffix
from amoseg.labels import (
    MAX_LABEL,
    ORGANS,
    Modality,
    organ_from_name,
    parse_modality,
)

#: The file that describes a dataset folder: labels, modality, and optionally its case lists.
DATASET_JSON = "dataset.json"

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
_FOLDERS: dict[Split, tuple[str, str]] = {
    "train": ("imagesTr", "labelsTr"),
    "validation": ("imagesVa", "labelsVa"),
    "test": ("imagesTs", "labelsTs"),
}
_LIST_KEYS: dict[Split, str] = {"train": "training", "validation": "validation", "test": "test"}
_UNDECLARED_MODALITY = (
    "CT or MR is not declared: the name is not an AMOS id (amos_NNNN) and dataset.json has no "
    'channel_names (e.g. {"0": "CT"}) or case_modalities entry for it'
)


@dataclass(frozen=True)
class Problem:
    """One finding about a dataset: ``severity`` is "error" or "warning"; ``case`` may be empty."""

    severity: Literal["error", "warning"]
    case: str
    path: str
    message: str

    def line(self) -> str:
        where = self.path or self.case or "dataset"
        return f"{self.severity}: {where}: {self.message}"


@dataclass(frozen=True)
class Case:
    """One case of a dataset.

    Attributes:
        case_id: name without suffixes, e.g. ``amos_0001``.
        split: train, validation or test.
        image: the image file (or DICOM folder); one channel, as AMOS has one modality per input.
        label: the label map, or None where the split has no labels.
        modality: CT or MR, resolved as described in ``resolve_modality``.
        annotated_labels: organ ids that this case's label map annotates (partial labels).
        absent_labels: annotated organ ids that this case does not contain.
    """

    case_id: str
    split: Split
    image: Path
    label: Path | None
    modality: Modality
    annotated_labels: tuple[int, ...]
    absent_labels: tuple[int, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """A discovered dataset: its cases, declared labels and everything found wrong on the way."""

    root: Path
    name: str
    labels: dict[int, str]
    annotated_labels: tuple[int, ...]
    cases: tuple[Case, ...]
    problems: tuple[Problem, ...] = field(default=())
    has_dataset_json: bool = True
    #: The modality its channel name declares (or the caller forced), for cases it does not list.
    modality: Modality | None = None

    def split(self, split: Split) -> tuple[Case, ...]:
        return tuple(case for case in self.cases if case.split == split)

    @property
    def labelled_cases(self) -> tuple[Case, ...]:
        return tuple(case for case in self.cases if case.label is not None)

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The problems that make a case (or the dataset) unusable; each stage reports them."""
        return tuple(problem for problem in self.problems if problem.severity == "error")

    def require_clean(self) -> None:
        """Raise the first error found during discovery, for stages that cannot work around it."""
        if self.errors:
            raise AmosegError(self.errors[0].line())


def discover(root: str | Path, modality: Modality | None = None) -> Dataset:
    """Find the cases of a dataset folder.

    Args:
        root: the dataset folder.
        modality: force one modality for every case that has no per-case override.

    Raises:
        InputError: the folder does not exist, or its dataset.json is unreadable or malformed.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "dataset folder not found")
    meta = read_dataset_json(root)
    problems: list[Problem] = []
    labels = _declared_labels(root, meta)
    annotated = _annotated_labels(root, meta, labels)
    absent = {str(case): tuple(int(v) for v in ids) for case, ids in meta.get("absent_in_case", {}).items()}
    case_modalities = _case_modalities(root, meta)
    dataset_modality = modality or _dataset_modality(root, meta)

    doubled = _check_folders(root, problems)
    if _has_lists(meta):
        doubled = {}  # dataset.json names the file to use; the other is reported as not listed
    entries = _listed_entries(root, meta, problems) if _has_lists(meta) else _scanned_entries(root)
    if _has_lists(meta):
        _compare_listing_with_folders(root, entries, problems)

    cases = []
    seen: dict[str, Split] = {}
    for split, case_id, image, label, entry_modality in entries:
        if case_id in seen:
            problems.append(
                Problem("error", case_id, "", f"duplicate case id (in {seen[case_id]} and {split})")
            )
            continue
        seen[case_id] = split
        twice = [doubled[path] for path in (image, label) if path in doubled]
        if twice:
            problems.append(Problem("error", case_id, "", twice[0]))
            continue
        case_modality = (
            entry_modality
            or case_modalities.get(case_id)
            or resolve_modality(case_id, dataset_modality, modality is not None)
        )
        if case_modality is None:
            problems.append(Problem("error", case_id, _rel(root, image), _UNDECLARED_MODALITY))
            continue
        cases.append(
            Case(
                case_id=case_id,
                split=split,
                image=image,
                label=label,
                modality=case_modality,
                annotated_labels=annotated,
                absent_labels=absent.get(case_id, ()),
            )
        )
    return Dataset(
        root=root,
        name=str(meta.get("name", root.name)),
        labels=labels,
        annotated_labels=annotated,
        cases=tuple(cases),
        problems=tuple(problems),
        has_dataset_json=(root / DATASET_JSON).is_file(),
        modality=dataset_modality,
    )


def discover_together(datasets: str | Path | Sequence[str | Path]) -> list[Dataset]:
    """Find the cases of one dataset folder, or of several that one model is planned and trained on.

    Their cases meet in one preprocessing cache and one set of cross-validation splits, where a case
    is known by its id and its dataset by its name: both must be unique.

    Raises:
        AmosegError: no folder given.
        InputError: a folder given twice, two datasets of one name, a case id in two datasets, or a
            folder ``discover`` refuses.
    """
    roots = [Path(datasets)] if isinstance(datasets, str | Path) else [Path(root) for root in datasets]
    if not roots:
        raise AmosegError("no dataset folder given")
    found: list[Dataset] = []
    for root in roots:
        for other in found:
            if root.resolve() == other.root.resolve():
                raise InputError(root, "dataset folder given twice")
        dataset = discover(root)
        for other in found:
            if dataset.name == other.name:
                raise InputError(
                    root,
                    f'is named {dataset.name!r}, as {other.root} is (dataset.json\'s "name", else the '
                    "folder's); datasets planned together need distinct names",
                )
            shared = sorted({case.case_id for case in dataset.cases} & {case.case_id for case in other.cases})
            if shared:
                raise InputError(
                    root,
                    f"case {shared[0]} is also in {other.root} ({len(shared)} shared case ids); case ids "
                    "must be unique across datasets planned together: rename one dataset's cases",
                )
        found.append(dataset)
    return found


def resolve_modality(
    case_id: str, dataset_modality: Modality | None, forced: bool = False
) -> Modality | None:
    """CT or MR for a case without a per-case override; None when nothing declares it.

    Order: a modality forced by the caller; then ``amoseg.data.modality.modality_from_name``: AMOS's
    own ids (``amos_NNNN``) by the id rule, then the dataset's channel name.
    """
    if forced and dataset_modality is not None:
        return dataset_modality
    return modality_from_name(case_id, dataset_modality)


def find_dataset_json(folder: str | Path) -> Path | None:
    """The ``dataset.json`` in ``folder`` or, failing that, in its parent; None when neither has one.

    Images and labels lie one level below the dataset folder (``imagesTs``, ``labelsTr``), so a folder
    of them finds its dataset's description, and so does the dataset folder itself.
    """
    folder = Path(folder)
    for root in (folder, folder.parent):
        if (root / DATASET_JSON).is_file():
            return root / DATASET_JSON
    return None


def require_outside(dataset_root: str | Path, path: str | Path, what: str) -> None:
    """Refuse an output that lies in the dataset folder (links resolved): inputs are never modified.

    Raises:
        InputError: naming ``path``; ``what`` says which output it is ("the check report").
    """
    if Path(path).resolve().is_relative_to(Path(dataset_root).resolve()):
        raise InputError(path, f"{what} would be inside the dataset folder; inputs are never modified")


def read_dataset_json(root: Path) -> dict[str, Any]:
    """A dataset folder's ``dataset.json`` as read (no case discovered); {} when it has none.

    Raises:
        InputError: unreadable, or not a JSON object.
    """
    path = Path(root) / DATASET_JSON
    if not path.is_file():
        return {}
    meta = read_json(path, DATASET_JSON)
    if not isinstance(meta, dict):
        raise InputError(path, "must hold a JSON object")
    return meta


def _declared_labels(root: Path, meta: dict[str, Any]) -> dict[int, str]:
    """Declared label ids -> canonical organ names; accepts both {"name": id} and {"id": "name"}."""
    raw = meta.get("labels")
    if raw is None:
        return {organ.id: organ.name for organ in ORGANS}
    if not isinstance(raw, dict):
        raise InputError(root / DATASET_JSON, '"labels" must be an object')
    labels: dict[int, str] = {}
    for key, value in raw.items():
        label_id, name = (int(value), key) if _is_int(value) else (_to_int(root, key), str(value))
        if label_id == 0:
            continue
        try:
            organ = organ_from_name(name)
        except KeyError:
            raise InputError(
                root / DATASET_JSON, f"label {name!r} ({label_id}) is not an AMOS organ"
            ) from None
        if organ.id != label_id:
            raise InputError(
                root / DATASET_JSON,
                f"label {name!r} has id {label_id}, but AMOS uses {organ.id} for {organ.name}",
            )
        labels[label_id] = organ.name
    return dict(sorted(labels.items()))


def _annotated_labels(root: Path, meta: dict[str, Any], labels: dict[int, str]) -> tuple[int, ...]:
    raw = meta.get("annotated_labels")
    if raw is None:
        return tuple(labels)
    if not isinstance(raw, list) or not all(_is_int(value) for value in raw):
        raise InputError(root / DATASET_JSON, '"annotated_labels" must be a list of label ids')
    ids = tuple(sorted(int(value) for value in raw))
    unknown = [label_id for label_id in ids if label_id not in labels or not 1 <= label_id <= MAX_LABEL]
    if unknown:
        raise InputError(root / DATASET_JSON, f'"annotated_labels" has undeclared ids {unknown}')
    return ids


def _dataset_modality(root: Path, meta: dict[str, Any]) -> Modality | None:
    channels = meta.get("channel_names") or meta.get("modality")
    if not channels:
        return None
    if not isinstance(channels, dict):
        raise InputError(root / DATASET_JSON, '"channel_names" must be an object like {"0": "CT"}')
    if len(channels) != 1:
        raise InputError(
            root / DATASET_JSON,
            f"declares {len(channels)} channels; AMOS tasks take one modality per input",
        )
    try:
        return parse_modality(str(next(iter(channels.values()))))
    except ValueError as error:
        raise InputError(root / DATASET_JSON, str(error)) from None


def _case_modalities(root: Path, meta: dict[str, Any]) -> dict[str, Modality]:
    raw = meta.get("case_modalities", {})
    try:
        return {str(case): parse_modality(str(value)) for case, value in raw.items()}
    except (AttributeError, ValueError) as error:
        raise InputError(root / DATASET_JSON, f'"case_modalities": {error}') from None


def _has_lists(meta: dict[str, Any]) -> bool:
    return any(isinstance(meta.get(key), list) for key in _LIST_KEYS.values())


Entry = tuple[Split, str, Path, "Path | None", "Modality | None"]


def _listed_entries(root: Path, meta: dict[str, Any], problems: list[Problem]) -> list[Entry]:
    entries: list[Entry] = []
    for split, key in _LIST_KEYS.items():
        items = meta.get(key) or []
        if not isinstance(items, list):
            raise InputError(root / DATASET_JSON, f'"{key}" must be a list')
        for index, item in enumerate(items):
            where = f'"{key}"[{index}]'
            image_text, label_text, modality_text = _entry_fields(item)
            if image_text is None:
                problems.append(Problem("error", "", DATASET_JSON, f"{where} has no image path"))
                continue
            image = _inside(root, image_text, where, problems)
            label = _inside(root, label_text, where, problems) if label_text else None
            if image is None or (label_text and label is None):
                continue
            stem = strip_image_suffix(image.name)
            label_id = strip_image_suffix(label.name) if label else None
            case_id = split_channels([stem], [label_id] if label_id else [])[stem][0]
            if label_id and label_id != case_id:
                problems.append(
                    Problem("warning", case_id, DATASET_JSON, f"{where}: label is named {label_id}")
                )
            modality = None
            if modality_text:
                try:
                    modality = parse_modality(modality_text)
                except ValueError as error:
                    problems.append(Problem("error", case_id, DATASET_JSON, f"{where}: {error}"))
            for path in (image, label):
                if path is not None and not path.exists():
                    problems.append(
                        Problem("error", case_id, _rel(root, path), "listed in dataset.json but missing")
                    )
            entries.append((split, case_id, image, label, modality))
    return entries


def _entry_fields(item: Any) -> tuple[str | None, str | None, str | None]:
    if isinstance(item, str):
        return item, None, None
    if not isinstance(item, dict):
        return None, None, None
    image = item.get("image")
    if isinstance(image, list):  # nnU-Net style channel lists; AMOS has one channel
        image = image[0] if image else None
    label = item.get("label")
    modality = item.get("modality")
    return (
        str(image) if image else None,
        str(label) if label else None,
        str(modality) if modality else None,
    )


def _inside(root: Path, text: str, where: str, problems: list[Problem]) -> Path | None:
    """Resolve a dataset.json path, refusing absolute paths and paths that leave the dataset folder."""
    relative = Path(text)
    if relative.is_absolute():
        problems.append(Problem("error", "", DATASET_JSON, f"{where}: absolute path {text!r} refused"))
        return None
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        problems.append(
            Problem("error", "", DATASET_JSON, f"{where}: path {text!r} points outside the dataset folder")
        )
        return None
    return root / relative


def _scanned_entries(root: Path) -> list[Entry]:
    entries: list[Entry] = []
    for split, (image_folder, label_folder) in _FOLDERS.items():
        labels = _label_files(root / label_folder)
        for case_id, images in case_ids_in_folder(root / image_folder, labels).items():
            entries.append((split, case_id, images[0], labels.get(case_id), None))
    return entries


def _check_folders(root: Path, problems: list[Problem]) -> dict[Path, str]:
    """Layout faults that would otherwise lose cases without a word: a split folder that is a file,
    and one name stored twice (``amos_0001.nii`` beside ``amos_0001.nii.gz``).

    Returns:
        every file whose name is stored twice -> the problem, for the case that would use it.
    """
    doubled: dict[Path, str] = {}
    for names in _FOLDERS.values():
        for name in names:
            folder = root / name
            if folder.exists() and not folder.is_dir():
                problems.append(
                    Problem("error", "", name, "is a file, not a folder; its cases cannot be read")
                )
            for stem, paths in same_name_files(folder).items():
                for path in paths:
                    doubled[path] = f"{name}: {describe_same_name(stem, paths)}"
    return doubled


def _label_files(folder: Path) -> dict[str, Path]:
    return {strip_image_suffix(path.name): path for path in image_files(folder)}


def _compare_listing_with_folders(root: Path, entries: list[Entry], problems: list[Problem]) -> None:
    listed = {path.resolve() for _, _, image, label, _ in entries for path in (image, label) if path}
    for image_folder, label_folder in _FOLDERS.values():
        for folder in (root / image_folder, root / label_folder):
            if not folder.is_dir():
                continue
            for path in image_files(folder):
                if path.resolve() not in listed:
                    problems.append(
                        Problem("warning", "", _rel(root, path), "present but not listed in dataset.json")
                    )


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _to_int(root: Path, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(root / DATASET_JSON, f'"labels" key {text!r} is neither a name nor an id') from None
