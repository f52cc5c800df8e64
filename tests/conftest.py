"""Shared fixtures for the whole suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amoseg.planning.plan import Plan
from helpers import write_box_dataset
from tiny import tiny_plan


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


@pytest.fixture(scope="session")
def make_tiny_plan():
    """``tiny_plan`` itself, for tests that need a variant (another patch, residual blocks)."""
    return tiny_plan


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> tuple[Plan, Path, Path]:
    """(plan, plans.json, cache root) for 4 CT and 2 MR phantoms, all labelled (no test split), with
    ``tiny_plan``.

    Case amos_0502 is made partially labelled: it annotates only liver, spleen and both kidneys (as
    the CHAOS MR set does), its other organs are stored as background.
    """
    import numpy as np

    from amoseg.data.phantom import write_phantom_dataset
    from amoseg.preprocessing import preprocess_dataset

    root = tmp_path_factory.mktemp("training")
    dataset = write_phantom_dataset(
        root / "phantoms", n_ct=4, n_mr=2, seed=0, test_fraction=0.0, workers=1, progress=False
    )
    plan = tiny_plan()
    plans_json = root / "plans.json"
    plan.save(plans_json)
    preprocess_dataset(dataset, plan, root / "preprocessed", workers=2, progress=False)
    partial = root / "preprocessed" / plan.plan_id / "amos_0502"
    annotated = [1, 2, 3, 6]
    label = np.load(partial / "label.npy")
    np.save(partial / "label.npy", np.where(np.isin(label, annotated), label, 0).astype(np.uint8))
    properties = json.loads((partial / "properties.json").read_text())
    properties["annotated_labels"] = annotated
    properties["class_voxels"] = {
        key: value for key, value in properties["class_voxels"].items() if int(key) in [0, *annotated]
    }
    (partial / "properties.json").write_text(json.dumps(properties))
    return plan, plans_json, root / "preprocessed"
