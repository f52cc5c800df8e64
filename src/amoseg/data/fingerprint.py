"""The planning fingerprint: what ``amoseg plan`` needs to know about a dataset.

Like nnU-Net's ``dataset_fingerprint.json`` (spacings, shapes after cropping to the non-zero region,
foreground intensity statistics), but per modality instead of per channel, so a CT+MR dataset gets
separate CT and MR statistics. Foreground intensities are computed exactly over every labelled voxel
rather than from nnU-Net's 10,000 samples per case.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from amoseg.data.statistics import StatisticsAccumulator
from amoseg.errors import AmosegError
from amoseg.labels import MODALITIES

FINGERPRINT_VERSION = 1


def build_fingerprint(accumulator: StatisticsAccumulator, name: str) -> dict:
    """Per case geometry and per modality foreground intensity statistics; vectors in (x, y, z)."""
    cases = accumulator.cases
    return {
        "fingerprint_version": FINGERPRINT_VERSION,
        "dataset": name,
        "cases": [
            {
                "case_id": case.case_id,
                "modality": case.modality,
                "split": case.split,
                "spacing_mm": list(case.spacing_mm),
                "shape": list(case.shape),
                "shape_after_crop": list(case.cropped_shape),
                "labelled": case.organ_voxels is not None,
            }
            for case in cases
        ],
        "foreground_intensity": {
            modality: accumulator.foreground_intensity(modality)
            for modality in MODALITIES
            if accumulator.foreground_intensity(modality)
        },
    }


def merge_fingerprints(fingerprints: Sequence[dict], name: str | None = None) -> dict:
    """One fingerprint for several datasets planned together, e.g. a CT set and an MR set.

    The cases are concatenated in the order given (extra keys such as ``axis_permutation`` kept); each
    modality's foreground intensity comes from the one fingerprint that has it. Percentiles cannot be
    combined from two summaries, so a modality present in several fingerprints is refused: compute
    one fingerprint over a dataset folder that holds all of those cases instead.

    Args:
        fingerprints: contents of ``fingerprint.json`` files (not modified).
        name: the merged dataset's name; default the names joined with "+".

    Example:
        >>> merged = merge_fingerprints([ct_fingerprint, mr_fingerprint])
        >>> merged["dataset"]
        'btcv-ct+chaos-mr'

    Raises:
        AmosegError: no fingerprint, different fingerprint versions, a case id in two of them, or a
            modality's intensity statistics in two of them.
    """
    if not fingerprints:
        raise AmosegError("no fingerprint to merge")
    versions = sorted({int(item.get("fingerprint_version", FINGERPRINT_VERSION)) for item in fingerprints})
    if len(versions) > 1:
        raise AmosegError(f"fingerprints of versions {versions} cannot be merged; rerun `amoseg stats`")
    names = [str(item.get("dataset", "")) for item in fingerprints]
    cases: list[dict] = []
    owner: dict[str, str] = {}
    intensity: dict[str, dict] = {}
    source: dict[str, str] = {}
    for dataset, fingerprint in zip(names, fingerprints, strict=True):
        for case in fingerprint.get("cases", []):
            case_id = str(case["case_id"])
            if case_id in owner:
                raise AmosegError(
                    f"case {case_id} is in both {owner[case_id]} and {dataset}; case ids must be unique"
                )
            owner[case_id] = dataset
            cases.append(copy.deepcopy(case))
        for modality, statistics in (fingerprint.get("foreground_intensity") or {}).items():
            if modality in intensity:
                raise AmosegError(
                    f"{modality} foreground intensities come from both {source[modality]} and {dataset}; "
                    "their percentiles cannot be merged: compute one fingerprint over all of those cases"
                )
            intensity[modality], source[modality] = copy.deepcopy(statistics), dataset
    return {
        "fingerprint_version": versions[0],
        "dataset": name if name is not None else "+".join(names),
        "cases": cases,
        "foreground_intensity": intensity,
    }
