"""The training cases: the preprocessing cache of one plan, indexed once, read through memory maps.

``index_cases`` reads every case's record from a ``PlanCache`` (``amoseg.preprocessing.cache``, which
alone knows the cache's files) into ``CacheCase`` records and checks its arrays before training
starts; ``case_arrays`` and ``class_locations`` open a case once per process, memory-mapped, so a
patch reads only its own voxels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amoseg.errors import InputError
from amoseg.labels import MAX_LABEL
from amoseg.planning.plan import Plan
from amoseg.preprocessing.cache import CaseArrays, PlanCache, open_arrays, read_class_locations


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
        dataset: the dataset the case came from ("" in caches that did not record it).
    """

    case_id: str
    folder: Path
    modality: str
    shape: tuple[int, int, int]
    annotated: tuple[int, ...]
    present: tuple[int, ...]
    pad_value: float
    dataset: str = ""

    @property
    def stratum(self) -> str:
        """What the cross-validation splits balance over the folds: the dataset and the modality."""
        return f"{self.dataset}/{self.modality}"

    def annotated_mask(self, num_classes: int = MAX_LABEL + 1) -> np.ndarray:
        """Bool (num_classes,): background and the annotated organs."""
        mask = np.zeros(num_classes, dtype=bool)
        mask[0] = True
        mask[[label for label in self.annotated if label < num_classes]] = True
        return mask


def index_cases(cache: PlanCache, plan: Plan) -> list[CacheCase]:
    """Every labelled case of a plan's cache, sorted by id, its arrays checked.

    Raises:
        InputError: a case was made by another plan, has an unreadable record or damaged arrays, or the
            cache holds no labelled case.
    """
    cases = []
    for case_id in cache.case_ids():
        properties = cache.properties(case_id)
        folder = cache.case_folder(case_id)
        if properties.plan_id != plan.plan_id:
            raise InputError(
                folder,
                f"was preprocessed with plan {properties.plan_id}, not {plan.plan_id}; rerun `amoseg preprocess`",
            )
        if not properties.labelled or not cache.has_label(case_id):
            continue
        # Before training starts: a cut or hand-edited cache would otherwise fail hours in, or silently.
        cache.check_arrays(case_id, properties.geometry.shape, plan.num_classes)
        annotated = tuple(sorted(properties.annotated_labels)) or tuple(range(1, plan.num_classes))
        voxels = dict(properties.class_voxels)
        cases.append(
            CacheCase(
                case_id=case_id,
                folder=folder,
                modality=properties.modality,
                shape=properties.geometry.shape,
                annotated=annotated,
                present=tuple(label for label in annotated if voxels.get(label, 0) > 0),
                pad_value=properties.pad_value,
                dataset=properties.dataset,
            )
        )
    if not cases:
        raise InputError(
            cache.folder, "holds no labelled preprocessed case; run `amoseg preprocess` on a labelled dataset"
        )
    return cases


@functools.lru_cache(maxsize=64)
def case_arrays(folder: Path) -> CaseArrays:
    """A case's image and label, memory-mapped (``amoseg.preprocessing.cache.open_arrays``); cached, so
    a case is opened once per process."""
    return open_arrays(folder)


@functools.lru_cache(maxsize=64)
def class_locations(folder: Path) -> dict[int, np.ndarray]:
    """label id -> (n, 3) int32 voxel indices (x, y, z) stored by preprocessing (cached per process)."""
    return read_class_locations(folder)
