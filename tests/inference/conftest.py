from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cpu_plan():
    """A cpu-preset plan for a small CT fingerprint; tests replace what they need."""
    from amoseg.planning import make_plan

    fingerprint = {
        "dataset": "tiny",
        "cases": [
            {
                "case_id": f"amos_{i:04d}",
                "modality": "CT",
                "split": "train",
                "spacing_mm": [1.0, 1.0, 3.0],
                "shape": [64, 64, 24],
                "shape_after_crop": [60, 60, 24],
                "labelled": True,
            }
            for i in range(1, 5)
        ],
        "foreground_intensity": {
            "CT": {
                "min": -100.0,
                "p0.5": -50.0,
                "median": 50.0,
                "mean": 50.0,
                "std": 30.0,
                "p99.5": 200.0,
                "max": 300.0,
                "voxels": 1000,
                "exact": True,
            }
        },
    }
    return make_plan(fingerprint, "cpu")
