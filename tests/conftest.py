"""Shared fixtures for the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import write_box_dataset


@pytest.fixture
def box_dataset(tmp_path: Path) -> Path:
    return write_box_dataset(tmp_path / "boxes")
