from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cpu_plan():
    """A cpu-preset plan for a small CT fingerprint; tests replace what they need."""
    from amoseg.data.fingerprint import IntensityStatistics
    from amoseg.planning import make_plan
    from fingerprints import fingerprint_from

    intensity = IntensityStatistics(
        min=-100.0, p0_5=-50.0, median=50.0, mean=50.0, std=30.0, p99_5=200.0, max=300.0, voxels=1000
    )
    fingerprint = fingerprint_from(
        [((1.0, 1.0, 3.0), (64, 64, 24))] * 4,
        dataset="tiny",
        ct_intensity=intensity,
        shapes_after_crop=[(60, 60, 24)] * 4,
    )
    return make_plan(fingerprint, "cpu")
