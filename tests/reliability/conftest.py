"""Fixtures for the fault catalogue (docs/reliability.md): a small trained model, a dead process id."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tiny_cache, tmp_path_factory) -> Path:
    """A fold folder trained for two steps on the tiny phantom cache (CT and MR), fold "all"."""
    from amoseg import api

    _, plans_json, root = tiny_cache
    runs = tmp_path_factory.mktemp("model")
    api.train(
        preprocessed=root,
        plan=plans_json,
        output=runs,
        fold="all",
        epochs=1,
        iterations_per_epoch=2,
        device="cpu",
        threads=1,
        quiet=True,
    )
    return runs / "fold_all"


@pytest.fixture(scope="session")
def dead_pid() -> int:
    """The id of a process that has exited (as a killed run's would be)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid
