"""Fingerprints built in tests: the stats stage's record of a dataset, from chosen geometries."""

from __future__ import annotations

from amoseg.data.fingerprint import Fingerprint, FingerprintCase, IntensityStatistics

#: CT foreground statistics of a typical abdomen (HU).
CT_INTENSITY = IntensityStatistics(
    min=-1000.0, p0_5=-120.0, median=60.0, mean=55.5, std=70.25, p99_5=280.0, max=1500.0, voxels=10_000
)


def fingerprint_from(
    geometries,
    modality: str = "CT",
    ct_stats: bool = True,
    *,
    dataset: str = "synthetic",
    ct_intensity: IntensityStatistics = CT_INTENSITY,
    shapes_after_crop=None,
    axis_permutation=(0, 1, 2),
) -> Fingerprint:
    """A Fingerprint of labelled cases ``case_000``, ``case_001``... from (spacing, shape) pairs.

    Args:
        geometries: (spacing_mm, shape) per case, file axis order.
        shapes_after_crop: one per case; default the whole shape.
    """
    crops = shapes_after_crop or [shape for _, shape in geometries]
    cases = tuple(
        FingerprintCase(
            case_id=f"case_{index:03d}",
            modality=modality,
            split="train",
            spacing_mm=tuple(float(v) for v in spacing),
            shape=tuple(int(v) for v in shape),
            shape_after_crop=tuple(int(v) for v in crop),
            labelled=True,
            axis_permutation=tuple(axis_permutation),
        )
        for index, ((spacing, shape), crop) in enumerate(zip(geometries, crops, strict=True))
    )
    return Fingerprint(
        dataset=dataset, cases=cases, foreground_intensity={"CT": ct_intensity} if ct_stats else {}
    )
