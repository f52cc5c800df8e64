"""The preprocessing cache: ``PREPROCESSED/<plan id>/<case id>/`` with memory-mappable arrays.

This module is the only code that knows the cache's file names and layout. Per case: ``image.npy``
(float32 [x, y, z], C order), ``label.npy`` (uint8, labelled cases only), ``class_locations.npz``
(one (n, 3) int32 array per label id, keys ``"1"``..``"15"``) and ``properties.json``
(``CaseProperties``). The plan's folder also holds the ``plans.json`` it was made with.

A case is written into a hidden temporary folder beside its final one and renamed when complete, so a
case folder that exists is always whole: an interrupted run leaves at most a hidden
``.<case>.tmp<pid>`` folder, removed by the next run.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amoseg.atomic import remove_stale_temporaries, write_failure_cause, write_text
from amoseg.errors import InputError, OutputError
from amoseg.planning.plan import PLANS_FILE, Plan, readable_json
from amoseg.preprocessing.case import PreprocessedCase
from amoseg.preprocessing.properties import CaseProperties

PROPERTIES_FILE = "properties.json"
_IMAGE_FILE = "image.npy"
_LABEL_FILE = "label.npy"
_LOCATIONS_FILE = "class_locations.npz"


@dataclass(frozen=True, eq=False)
class CaseArrays:
    """A case's arrays, memory-mapped read-only: image float32 [x, y, z], label uint8 [x, y, z]."""

    image: np.ndarray
    label: np.ndarray


@dataclass(frozen=True)
class PlanCache:
    """One plan's cache folder, ``<root>/<plan id>``.

    Attributes:
        folder: the plan's cache folder.
        plan_id: the plan that made (or makes) it.
    """

    folder: Path
    plan_id: str

    @classmethod
    def open(cls, preprocessed: str | Path, plan: Plan) -> PlanCache:
        """An existing cache of ``plan``: ``preprocessed/<plan id>``, or ``preprocessed`` itself when it is
        that folder.

        Raises:
            InputError: no cache for this plan there (the message lists the plan ids that are there).
        """
        root = Path(preprocessed)
        if not root.is_dir():
            raise InputError(root, "preprocessed folder not found; run `amoseg preprocess` first")
        for candidate in (root / plan.plan_id, root):
            if candidate.name == plan.plan_id and candidate.is_dir():
                return cls(candidate, plan.plan_id)
        others = sorted(path.name for path in root.iterdir() if (path / PLANS_FILE).is_file())
        hint = f"it holds caches for {', '.join(others)}" if others else "it holds no plan's cache"
        raise InputError(
            root,
            f"no cache for plan {plan.plan_id} ({hint}); run `amoseg preprocess DATASET --plan <this "
            f"plans.json> -o {root}` or pass the plans.json the cache was made with",
        )

    @classmethod
    def at(cls, root: str | Path, plan: Plan) -> PlanCache:
        """Where the cache of ``plan`` under ``root`` is, whether or not it exists; nothing is written."""
        return cls(Path(root) / plan.plan_id, plan.plan_id)

    @classmethod
    def create(cls, root: str | Path, plan: Plan) -> PlanCache:
        """The cache of ``plan`` under ``root``, made ready for writing: the folder exists, a killed run's
        temporaries are gone, and the plan is saved beside the cases."""
        cache = cls.at(root, plan)
        cache.folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(cache.folder)
        plan.save(cache.folder / PLANS_FILE)
        return cache

    def case_folder(self, case_id: str) -> Path:
        return self.folder / case_id

    def case_ids(self) -> list[str]:
        """The complete cases, sorted by id."""
        return sorted(path.name for path in self.folder.iterdir() if is_complete(path))

    def is_complete(self, case_id: str) -> bool:
        return is_complete(self.case_folder(case_id))

    def write(self, case: PreprocessedCase) -> None:
        """Write a case atomically, replacing an existing one of the same id."""
        write_case(self.case_folder(case.properties.case_id), case)

    def properties(self, case_id: str) -> CaseProperties:
        """A case's record (no voxels read); see ``read_properties``."""
        return read_properties(self.case_folder(case_id))

    def has_label(self, case_id: str) -> bool:
        """Whether the case was stored with its label map."""
        return (self.case_folder(case_id) / _LABEL_FILE).is_file()

    def check_arrays(self, case_id: str, shape: tuple[int, int, int], num_classes: int) -> CaseArrays:
        """A labelled case's arrays, checked: they open whole, the image has ``shape`` (its record's), the
        label is uint8 and holds only classes ``0..num_classes - 1``.

        Raises:
            InputError: naming the file and the problem.
        """
        folder = self.case_folder(case_id)
        arrays = open_arrays(folder)
        if arrays.image.shape != tuple(shape):
            raise InputError(
                folder / _IMAGE_FILE,
                f"shape {arrays.image.shape} differs from its record {tuple(shape)}; rerun preprocessing",
            )
        if arrays.label.dtype != np.uint8:
            raise InputError(
                folder / _LABEL_FILE, f"holds {arrays.label.dtype}, not uint8; rerun preprocessing"
            )
        highest = int(arrays.label.max()) if arrays.label.size else 0
        if highest >= num_classes:
            raise InputError(
                folder / _LABEL_FILE,
                f"holds label value {highest}, but the plan has classes 0..{num_classes - 1}; rerun preprocessing",
            )
        return arrays

    def summary_path(self) -> Path:
        """Where ``amoseg preprocess`` writes its run summary (JSON)."""
        return self.folder / "summary.json"


def is_complete(folder: Path) -> bool:
    """Whether a case folder exists with its record (only renamed into place once whole)."""
    return (folder / PROPERTIES_FILE).is_file()


def write_case(folder: str | Path, case: PreprocessedCase) -> None:
    """Write a case folder atomically, replacing an existing one."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir()
    try:
        _save(folder, _IMAGE_FILE, temporary, lambda path: np.save(path, case.image))
        if case.label is not None:
            _save(folder, _LABEL_FILE, temporary, lambda path: np.save(path, case.label))
        locations = {str(k): v for k, v in case.class_locations.items()}
        _save(folder, _LOCATIONS_FILE, temporary, lambda path: np.savez(path, **locations))
        write_text(temporary / PROPERTIES_FILE, readable_json(case.properties.to_dict()))
        if folder.exists():
            retired = folder.with_name(f".{folder.name}.old{os.getpid()}")
            os.replace(folder, retired)
            os.replace(temporary, folder)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(temporary, folder)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def _save(folder: Path, name: str, temporary: Path, save) -> None:
    """Run a numpy writer; a failed write names the case's file and the cause (numpy's own message
    counts bytes and names neither)."""
    try:
        save(temporary / name)
    except OSError as error:
        cause = write_failure_cause(temporary / name, error)
        raise OutputError(folder / name, f"not written: {cause}; the case is left unfinished") from None


def read_properties(folder: str | Path) -> CaseProperties:
    """A case folder's record.

    Raises:
        InputError: missing, unreadable or malformed (naming ``properties.json``).
    """
    path = Path(folder) / PROPERTIES_FILE
    try:
        return CaseProperties.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (
        OSError,
        UnicodeDecodeError,
        json.JSONDecodeError,
        RecursionError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
    ) as error:
        raise InputError(path, f"unreadable case record ({error}); rerun preprocessing") from None


def open_arrays(folder: str | Path) -> CaseArrays:
    """Open a labelled case's image and label memory-mapped, read-only.

    Raises:
        InputError: an array file is missing, truncated or not a numpy array (naming it), or the two
            shapes differ.
    """
    folder = Path(folder)
    arrays = CaseArrays(image=_open_array(folder / _IMAGE_FILE), label=_open_array(folder / _LABEL_FILE))
    if arrays.image.shape != arrays.label.shape:
        raise InputError(folder, f"image {arrays.image.shape} and label {arrays.label.shape} differ in shape")
    return arrays


def read_class_locations(folder: str | Path) -> dict[int, np.ndarray]:
    """label id -> (n, 3) int32 voxel indices (x, y, z) stored by preprocessing."""
    with np.load(Path(folder) / _LOCATIONS_FILE) as stored:
        return {int(key): stored[key] for key in stored.files}


def load_case(folder: str | Path, mmap: bool = True) -> PreprocessedCase:
    """Read a case folder whole; arrays are memory-mapped read-only when ``mmap``.

    Raises:
        InputError: the record or an array is unreadable.
    """
    folder = Path(folder)
    label_path = folder / _LABEL_FILE
    return PreprocessedCase(
        image=_open_array(folder / _IMAGE_FILE, mmap),
        label=_open_array(label_path, mmap) if label_path.is_file() else None,
        class_locations=read_class_locations(folder),
        properties=read_properties(folder),
    )


def _open_array(path: Path, mmap: bool = True) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, EOFError) as error:
        raise InputError(
            path, f"damaged cache file ({error}); rerun `amoseg preprocess --overwrite`"
        ) from None
