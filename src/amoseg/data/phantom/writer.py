"""Writing a phantom dataset in the AMOS layout, in parallel, all or nothing.

Cases are written into a hidden temporary folder beside the output, which is renamed to the output
only once every case and dataset.json are complete; an error or Ctrl-C removes it. No half-written
dataset can therefore ever carry the output's name.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amoseg.atomic import write_json
from amoseg.data.phantom.case import CaseInfo, generate_case_with_info
from amoseg.errors import AmosegError
from amoseg.labels import LAST_CT_CASE_ID, MAX_LABEL, ORGAN_BY_ID, ORGANS, Modality, modality_from_case_id

FILE_ENDING = ".nii.gz"
FIRST_MR_CASE_ID = LAST_CT_CASE_ID + 1
LAST_CASE_ID = 9999  # four digits in amos_NNNN


@dataclass(frozen=True)
class PlannedCase:
    """One case to write: its AMOS number, modality (from the number) and split."""

    number: int
    split: str  # "train" or "test"

    @property
    def case_id(self) -> str:
        return case_id(self.number)

    @property
    def modality(self) -> Modality:
        return modality_from_case_id(self.number)

    @property
    def image_path(self) -> str:
        return f"./{'imagesTr' if self.split == 'train' else 'imagesTs'}/{self.case_id}{FILE_ENDING}"

    @property
    def label_path(self) -> str:
        return f"./{'labelsTr' if self.split == 'train' else 'labelsTs'}/{self.case_id}{FILE_ENDING}"


def case_id(number: int) -> str:
    """``7`` -> ``amos_0007``."""
    return f"amos_{number:04d}"


def case_numbers(n_ct: int, n_mr: int) -> tuple[list[int], list[int]]:
    """AMOS numbers for a dataset: CT from 1 (up to 500), MR from 501."""
    return list(range(1, n_ct + 1)), list(range(FIRST_MR_CASE_ID, FIRST_MR_CASE_ID + n_mr))


def test_count(n_cases: int, test_fraction: float) -> int:
    """Test cases of one modality: ``round(test_fraction * n)``, at least one when there are two or more
    cases and ``test_fraction > 0``, and always at least one training case."""
    if n_cases < 2 or test_fraction <= 0:
        return 0
    return min(max(round(test_fraction * n_cases), 1), n_cases - 1)


def plan_cases(n_ct: int, n_mr: int, seed: int, test_fraction: float) -> list[PlannedCase]:
    """Number the cases and pick each modality's test cases at random (reproducibly from ``seed``)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    planned = []
    for numbers in case_numbers(n_ct, n_mr):
        test = set(rng.permutation(numbers)[: test_count(len(numbers), test_fraction)].tolist())
        planned += [PlannedCase(number, "test" if number in test else "train") for number in numbers]
    return planned


def write_phantom_dataset(
    output: Path,
    *,
    n_ct: int,
    n_mr: int,
    seed: int,
    test_fraction: float = 0.25,
    workers: int | None = None,
    progress: bool = True,
    annotated_labels: Sequence[int] | None = None,
) -> Path:
    """Write a synthetic AMOS-layout dataset of ``n_ct`` CT and ``n_mr`` MR abdomens.

    Layout: ``dataset.json``, ``imagesTr/labelsTr`` and ``imagesTs/labelsTs`` holding
    ``amos_NNNN.nii.gz``, CT numbered from 1, MR from 501, so the AMOS id rule gives each case's
    modality (dataset.json names no channel). Each modality puts ``round(test_fraction * n)`` cases
    (at least one when it has two or more) in the test split.

    Args:
        output: the dataset folder to create; it must not exist or be empty.
        n_ct: CT cases, 0..500.
        n_mr: MR cases, 0..9499.
        seed: the same seed gives the same dataset, voxel for voxel.
        test_fraction: share of each modality's cases in the test split, in [0, 1).
        workers: parallel processes; default ``os.cpu_count()``; 1 runs in this process.
        progress: show a progress bar.
        annotated_labels: make a partially labelled set, as BTCV or CHAOS are: the label maps keep
            only these organs (the others stored as background) and dataset.json declares them. The
            images are the same as without.

    Returns:
        the dataset folder (``output``).

    Raises:
        AmosegError: bad counts or fraction, or ``output`` exists and is not an empty folder. On any
            error nothing is left behind: neither ``output`` nor the temporary folder.
    """
    output = Path(output)
    _check_request(output, n_ct, n_mr, test_fraction, workers)
    annotated = None if annotated_labels is None else tuple(sorted(set(int(v) for v in annotated_labels)))
    if annotated is not None and not set(annotated) <= set(ORGAN_BY_ID):
        raise AmosegError(f"annotated labels must be AMOS organ ids 1..{MAX_LABEL}, got {list(annotated)}")
    planned = plan_cases(n_ct, n_mr, seed, test_fraction)
    staging = output.parent / f".{output.name}.tmp{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        infos = _write_cases(staging, planned, seed, workers or os.cpu_count() or 1, progress, annotated)
        meta = _dataset_json(planned, infos, seed, n_ct, n_mr, test_fraction)
        if annotated is not None:
            meta["annotated_labels"] = list(annotated)
        write_json(staging / "dataset.json", meta)
        try:
            if output.exists():
                output.rmdir()  # checked empty above; a rename cannot replace a folder everywhere
            os.replace(staging, output)
        except OSError as error:
            raise AmosegError(f"{output}: cannot move the finished dataset into place ({error})") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return output


def _check_request(output: Path, n_ct: int, n_mr: int, test_fraction: float, workers: int | None) -> None:
    if not 0 <= n_ct <= LAST_CT_CASE_ID:
        raise AmosegError(
            f"`n_ct` must be between 0 and {LAST_CT_CASE_ID} (AMOS ids 1..500 are CT), got {n_ct}"
        )
    if not 0 <= n_mr <= LAST_CASE_ID - LAST_CT_CASE_ID:
        raise AmosegError(f"`n_mr` must be between 0 and {LAST_CASE_ID - LAST_CT_CASE_ID}, got {n_mr}")
    if n_ct + n_mr == 0:
        raise AmosegError("nothing to generate: ask for at least one CT or MR case")
    if not 0 <= test_fraction < 1:
        raise AmosegError(f"`test_fraction` must be in [0, 1), got {test_fraction}")
    if workers is not None and workers < 1:
        raise AmosegError(f"`workers` must be at least 1, got {workers}")
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise AmosegError(
            f"{output}: already exists and is not an empty folder; choose a new folder or remove it"
        )


def _write_cases(
    staging: Path,
    planned: list[PlannedCase],
    seed: int,
    workers: int,
    progress: bool,
    annotated: tuple[int, ...] | None,
) -> dict[int, CaseInfo]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    infos: dict[int, CaseInfo] = {}
    columns = (TextColumn("phantoms"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("phantoms", total=len(planned))
        if workers == 1 or len(planned) == 1:
            for case in planned:
                infos[case.number] = write_case(staging, case, seed, annotated)
                bar.advance(task)
            return infos
        pool = ProcessPoolExecutor(max_workers=min(workers, len(planned)))
        try:
            futures: dict[Future, PlannedCase] = {
                pool.submit(write_case, staging, case, seed, annotated): case for case in planned
            }
            for future in as_completed(futures):
                infos[futures[future].number] = future.result()
                bar.advance(task)
        finally:
            # On an error or Ctrl-C, drop the cases not yet started instead of generating them all;
            # waiting for the running ones keeps them from writing into a folder being removed.
            pool.shutdown(wait=True, cancel_futures=True)
    return infos


def write_case(
    folder: Path, case: PlannedCase, seed: int, annotated: tuple[int, ...] | None = None
) -> CaseInfo:
    """Generate one case and write its image and label map under ``folder`` (runs in a worker);
    with ``annotated``, the label map keeps only those organs."""
    image, label, info = generate_case_with_info(case.number, case.modality, seed)
    from amoseg.io.image import LabelMap
    from amoseg.io.sitk_io import write_image

    if annotated is not None:
        kept = np.where(np.isin(label.array, annotated), label.array, 0).astype(label.array.dtype)
        label = LabelMap(kept, label.geometry)
    write_image(image, folder / case.image_path)
    write_image(label, folder / case.label_path)
    return info


def _dataset_json(
    planned: list[PlannedCase],
    infos: dict[int, CaseInfo],
    seed: int,
    n_ct: int,
    n_mr: int,
    test_fraction: float,
) -> dict:
    training = [case for case in planned if case.split == "train"]
    test = [case for case in planned if case.split == "test"]
    return {
        "name": "AMOS phantoms",
        "description": (
            f"Synthetic abdomens from amoseg phantom (seed {seed}): {n_ct} CT and {n_mr} MR cases with "
            "the 15 AMOS organs. CT ids 1..500, MR ids from 501: modality follows the AMOS id rule."
        ),
        "reference": "amoseg.data.phantom; organ intensities from the AMOS 2022 dataset card",
        "tensorImageSize": "3D",
        "labels": {"background": 0, **{organ.name: organ.id for organ in ORGANS}},
        "numTraining": len(training),
        "numTest": len(test),
        "file_ending": FILE_ENDING,
        "training": [{"image": case.image_path, "label": case.label_path} for case in training],
        "test": [{"image": case.image_path, "label": case.label_path} for case in test],
        "phantom": {
            "seed": seed,
            "test_fraction": test_fraction,
            "cases": {
                case.case_id: {
                    "modality": case.modality,
                    "sex": infos[case.number].sex,
                    "orientation": infos[case.number].orientation,
                }
                for case in planned
            },
        },
    }
