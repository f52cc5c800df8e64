"""Shared fixtures for the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import write_box_dataset


@pytest.fixture
def box_dataset(tmp_path: Path) -> Path:
    return write_box_dataset(tmp_path / "boxes")


@pytest.fixture(scope="session")
def phantom_dataset(tmp_path_factory) -> Path:
    """`amoseg phantom D --ct 4 --mr 2`, generated once per test session. Copy it before changing it."""
    from amoseg.data.phantom import write_phantom_dataset

    return write_phantom_dataset(
        tmp_path_factory.mktemp("phantoms") / "D", n_ct=4, n_mr=2, seed=0, workers=1, progress=False
    )
