"""Fixtures for the planning tests: fingerprints shaped like AMOS and like a tiny isotropic set."""

from __future__ import annotations

import numpy as np
import pytest

from fingerprints import fingerprint_from


@pytest.fixture
def amos_like_fingerprint() -> dict:
    """120 CT cases: 0.6-0.95 mm in-plane, most slices 5 mm, some 1-2.5 mm, 512 x 512 in-plane."""
    rng = np.random.default_rng(0)
    geometries = []
    for _ in range(120):
        slice_mm = float(rng.choice([5.0, 2.5, 2.0, 1.25, 1.0], p=[0.7, 0.1, 0.1, 0.05, 0.05]))
        in_plane = float(rng.uniform(0.6, 0.95))
        slices = round(450 / slice_mm * float(rng.uniform(0.8, 1.2)))
        geometries.append(((in_plane, in_plane, slice_mm), (512, 512, slices)))
    return fingerprint_from(geometries)


@pytest.fixture
def isotropic_fingerprint() -> dict:
    return fingerprint_from([((1.5, 1.5, 1.5), (160, 150, 140)), ((1.6, 1.6, 1.4), (150, 150, 150))])
