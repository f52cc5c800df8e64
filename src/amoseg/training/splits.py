"""Five-fold cross-validation splits, stratified by dataset and modality, saved as ``RUNS/splits.json``.

Each stratum's cases (one dataset's CT, say) are shuffled with the seed and dealt round-robin over the
folds; the dealing of the next stratum starts where the previous one stopped, so fold sizes differ by
at most one and each fold's validation set holds every dataset and modality in the cache's
proportions as closely as the counts allow. The
file is written once and reused, so every fold of a run (and a rerun) sees the same partition. Format,
as nnU-Net's ``splits_final.json``: a list of five ``{"train": [...], "val": [...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from amoseg.errors import AmosegError, InputError

NUM_FOLDS = 5
SPLITS_FILE = "splits.json"


def make_splits(stratum_by_case: Mapping[str, str], seed: int = 0, folds: int = NUM_FOLDS) -> list[dict]:
    """Stratified folds.

    Args:
        stratum_by_case: case id -> its stratum, e.g. "CT" or "MR", or a dataset and a modality.
        seed: the same seed and cases give the same folds, whatever the order of the mapping.
        folds: number of folds.

    Returns:
        ``folds`` dicts with sorted "train" and "val" case-id lists; every case is in exactly one "val".
    """
    rng = np.random.default_rng(seed)
    assignment: dict[str, int] = {}
    position = 0
    for stratum in sorted(set(stratum_by_case.values())):
        cases = sorted(case for case, value in stratum_by_case.items() if value == stratum)
        for case in (cases[index] for index in rng.permutation(len(cases))):
            assignment[case] = position % folds
            position += 1
    return [
        {
            "train": sorted(case for case, fold in assignment.items() if fold != index),
            "val": sorted(case for case, fold in assignment.items() if fold == index),
        }
        for index in range(folds)
    ]


def load_or_make_splits(
    runs: Path, stratum_by_case: Mapping[str, str], seed: int, write: bool = True
) -> list[dict]:
    """The run folder's splits: read ``runs/splits.json`` when present, else make and write them.

    Raises:
        InputError: the file is unreadable or names a case that is not in the cache.
    """
    path = runs / SPLITS_FILE
    if path.is_file():
        splits = read_splits(runs)
        named = {case for item in splits for key in ("train", "val") for case in item[key]}
        unknown = sorted(named - set(stratum_by_case))
        if unknown:
            raise InputError(
                path,
                f"names {len(unknown)} cases that are not in the preprocessed cache (first: {unknown[0]}); "
                "use another -o or delete the file",
            )
        return splits
    splits = make_splits(stratum_by_case, seed)
    if write:
        from amoseg.atomic import write_json

        write_json(path, splits)
    return splits


def read_splits(runs: Path) -> list[dict]:
    """A run folder's ``splits.json``, as training wrote it.

    Raises:
        InputError: missing, unreadable, or not a list of ``{"train": [...], "val": [...]}`` folds.
    """
    path = runs / SPLITS_FILE
    try:
        splits = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise InputError(path, f"unreadable splits ({error}); delete it to make new ones") from None
    valid = isinstance(splits, list) and all(
        isinstance(item, dict) and isinstance(item.get("train"), list) and isinstance(item.get("val"), list)
        for item in splits
    )
    if not valid:
        raise InputError(
            path, 'not a list of {"train": [...], "val": [...]} folds; delete it to make new ones'
        )
    return splits


def fold_cases(splits: list[dict], fold: str, val_cases_for_all: int = 4) -> tuple[list[str], list[str]]:
    """(training cases, validation cases) of a fold.

    Fold "all" trains on every case and validates on up to ``val_cases_for_all`` of fold 0's
    validation cases (which it also trains on): a progress signal, not an unbiased estimate.

    Raises:
        AmosegError: the fold does not exist or has no training or no validation case.
    """
    if fold == "all":
        every = sorted({case for item in splits for key in ("train", "val") for case in item[key]})
        first_val = splits[0]["val"] if splits else []
        return every, sorted(first_val[:val_cases_for_all] or every[:val_cases_for_all])
    if not fold.isdigit() or int(fold) >= len(splits):
        raise AmosegError(
            f"fold {fold!r} does not exist: the splits have folds 0..{len(splits) - 1} and 'all'"
        )
    chosen = splits[int(fold)]
    if not chosen["train"] or not chosen["val"]:
        total = len(chosen["train"]) + len(chosen["val"])
        raise AmosegError(
            f"fold {fold} has {len(chosen['train'])} training and {len(chosen['val'])} validation cases "
            f"({total} labelled in all; five folds need at least 5): train with `fold` all instead"
        )
    return list(chosen["train"]), list(chosen["val"])
