"""The planning fingerprint: what ``amoseg plan`` needs to know about a dataset.

Like nnU-Net's ``dataset_fingerprint.json`` (spacings, shapes after cropping to the non-zero region,
foreground intensity statistics), but per modality instead of per channel, so a CT+MR dataset gets
separate CT and MR statistics. Foreground intensities are computed exactly over every labelled voxel
rather than from nnU-Net's 10,000 samples per case.
"""

from __future__ import annotations

from amoseg.data.statistics import StatisticsAccumulator
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
