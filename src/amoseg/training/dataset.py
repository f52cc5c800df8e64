"""The training cases: the preprocessing cache of one plan, indexed once, read through memory maps.

``find_cache`` resolves ``PREPROCESSED`` (the cache root or the plan's own folder) and checks it was made
by the same plan; ``index_cases`` reads every case's ``properties.json`` (no voxels) into ``CacheCase``
records; ``case_arrays`` opens a case's arrays memory-mapped, so a patch reads only its own voxels.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amoseg.errors import InputError
from amoseg.labels import MAX_LABEL
from amoseg.planning.plan import PLANS_FILE, Plan

PROPERTIES_FILE = "properties.json"


@dataclass(frozen=True)
class CacheCase:
    """One labelled case of the cache, as the patch sampler needs it.

    Attributes:
        case_id: the dataset's case id (the case folder's name).
        folder: the case folder.
        modality: "CT" or "MR".
        shape: image shape (x, y, z), voxels, plan space.
        annotated: foreground label ids the label map annotates; others are unknown, not background.
        present: annotated ids with at least one voxel in this case (foreground oversampling draws
            among these).
        pad_value: the normalized intensity of the clip floor (air), used where a patch leaves the image.
    """

    case_id: str
    folder: Path
    modality: str
    shape: tuple[int, int, int]
    annotated: tuple[int, ...]
    present: tuple[int, ...]
    pad_value: float

    def annotated_mask(self, num_classes: int = MAX_LABEL + 1) -> np.ndarray:
        """Bool (num_classes,): background and the annotated organs."""
        mask = np.zeros(num_classes, dtype=bool)
        mask[0] = True
        mask[[label for label in self.annotated if label < num_classes]] = True
        return mask


@dataclass(frozen=True, eq=False)
class CaseArrays:
    """A case's arrays, memory-mapped read-only: image float32 [x, y, z], label uint8 [x, y, z]."""

    image: np.ndarray
    label: np.ndarray


def find_cache(preprocessed: str | Path, plan: Plan) -> Path:
    """The plan's cache folder: ``preprocessed/<plan id>``, or ``preprocessed`` itself when it is that folder.

    Raises:
        InputError: no cache for this plan there (the message lists the plan ids that are there).
    """
    root = Path(preprocessed)
    if not root.is_dir():
        raise InputError(root, "preprocessed folder not found; run `amoseg preprocess` first")
    for candidate in (root / plan.plan_id, root):
        if candidate.name == plan.plan_id and candidate.is_dir():
            return candidate
    others = sorted(path.name for path in root.iterdir() if (path / PLANS_FILE).is_file())
    hint = f"it holds caches for {', '.join(others)}" if others else "it holds no plan's cache"
    raise InputError(
        root,
        f"no cache for plan {plan.plan_id} ({hint}); run `amoseg preprocess DATASET --plan <this plans.json> "
        f"-o {root}` or pass the plans.json the cache was made with",
    )


def index_cases(cache: Path, plan: Plan) -> list[CacheCase]:
    """Every labelled case of a plan's cache folder, sorted by id.

    Raises:
        InputError: a case was made by another plan, has an unreadable record, or the cache holds no
            labelled case.
    """
    cases = []
    for folder in sorted(path for path in cache.iterdir() if (path / PROPERTIES_FILE).is_file()):
        try:
            properties = json.loads((folder / PROPERTIES_FILE).read_text(encoding="utf-8"))
            plan_id = properties["plan_id"]
            shape = tuple(int(v) for v in properties["geometry"]["shape"])
            intensity = properties["intensity"]
            labelled = bool(properties["labelled"])
            annotated = tuple(sorted(int(v) for v in properties.get("annotated_labels", ())))
            voxels = {int(k): int(v) for k, v in properties.get("class_voxels", {}).items()}
            modality = str(properties["modality"])
        except (
            OSError,
            UnicodeDecodeError,
            json.JSONDecodeError,
            RecursionError,
            KeyError,
            TypeError,
            ValueError,
        ) as error:
            raise InputError(
                folder / PROPERTIES_FILE, f"unreadable case record ({error}); rerun preprocessing"
            ) from None
        if plan_id != plan.plan_id:
            raise InputError(
                folder, f"was preprocessed with plan {plan_id}, not {plan.plan_id}; rerun `amoseg preprocess`"
            )
        if not labelled or not (folder / "label.npy").is_file():
            continue
        _check_arrays(folder, shape, plan.num_classes)
        if not annotated:
            annotated = tuple(label for label in range(1, plan.num_classes))
        floor = (float(intensity["clip_low"]) - float(intensity["mean"])) / float(intensity["std"])
        cases.append(
            CacheCase(
                case_id=folder.name,
                folder=folder,
                modality=modality,
                shape=shape,
                annotated=annotated,
                present=tuple(label for label in annotated if voxels.get(label, 0) > 0),
                pad_value=floor,
            )
        )
    if not cases:
        raise InputError(
            cache, "holds no labelled preprocessed case; run `amoseg preprocess` on a labelled dataset"
        )
    return cases


@functools.lru_cache(maxsize=64)
def case_arrays(folder: Path) -> CaseArrays:
    """Open a case's image and label memory-mapped (cached: a case is opened once per process).

    Raises:
        InputError: an array file is missing, truncated or not a numpy array (naming it), or the
            two shapes differ.
    """
    arrays = CaseArrays(image=_open_array(folder / "image.npy"), label=_open_array(folder / "label.npy"))
    if arrays.image.shape != arrays.label.shape:
        raise InputError(folder, f"image {arrays.image.shape} and label {arrays.label.shape} differ in shape")
    return arrays


def _open_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as error:
        raise InputError(
            path, f"damaged cache file ({error}); rerun `amoseg preprocess --overwrite`"
        ) from None


def _check_arrays(folder: Path, shape: tuple[int, ...], num_classes: int) -> None:
    """Before training starts: the arrays open whole, have the recorded shape, and every label value
    is a class of the plan (a cut or hand-edited cache would otherwise fail hours in, or silently)."""
    arrays = case_arrays(folder)
    if arrays.image.shape != shape:
        raise InputError(
            folder / "image.npy",
            f"shape {arrays.image.shape} differs from its record {shape}; rerun preprocessing",
        )
    if arrays.label.dtype != np.uint8:
        raise InputError(folder / "label.npy", f"holds {arrays.label.dtype}, not uint8; rerun preprocessing")
    highest = int(arrays.label.max()) if arrays.label.size else 0
    if highest >= num_classes:
        raise InputError(
            folder / "label.npy",
            f"holds label value {highest}, but the plan has classes 0..{num_classes - 1}; rerun preprocessing",
        )


@functools.lru_cache(maxsize=64)
def class_locations(folder: Path) -> dict[int, np.ndarray]:
    """label id -> (n, 3) int32 voxel indices (x, y, z) stored by preprocessing (cached per process)."""
    with np.load(folder / "class_locations.npz") as stored:
        return {int(key): stored[key] for key in stored.files}
