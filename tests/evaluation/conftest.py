"""Fixtures for the evaluation tests: DeepMind's reference code, label-map files, the real data."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from amoseg.io import LabelMap, make_geometry, write_image

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def surface_distance():
    """DeepMind's ``surface-distance`` 0.1, the reference implementation (a test-only dependency).

    Its release uses ``np.Inf`` and ``np.NaN``, which NumPy 2 removed; they are restored here, in the
    tests, never in the product.
    """
    if not hasattr(np, "Inf"):
        np.Inf = np.inf
    if not hasattr(np, "NaN"):
        np.NaN = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import surface_distance
    return surface_distance


@pytest.fixture(scope="session")
def reference_scores(surface_distance) -> Callable[..., tuple[float, float]]:
    """(DSC, NSD) of two masks computed by DeepMind's code."""

    def scores(pred: np.ndarray, ref: np.ndarray, spacing, tolerance_mm: float) -> tuple[float, float]:
        pred, ref = np.asarray(pred, bool), np.asarray(ref, bool)
        with warnings.catch_warnings():
            # its scipy.ndimage.filters / .morphology names are deprecated; 0/0 warns for two empty masks
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            distances = surface_distance.compute_surface_distances(ref, pred, tuple(spacing))
            nsd = surface_distance.compute_surface_dice_at_tolerance(distances, tolerance_mm)
            dsc = surface_distance.compute_dice_coefficient(ref, pred)
        return float(dsc), float(nsd)

    return scores


@pytest.fixture
def write_labels(tmp_path: Path) -> Callable[..., Path]:
    """Write a label array (indexed [x, y, z]) as a NIfTI file under tmp_path; returns its path."""

    def write(relative: str, array: np.ndarray, spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0)) -> Path:
        path = tmp_path / relative
        geometry = make_geometry(array.shape, spacing, origin)
        write_image(LabelMap(np.asarray(array, dtype=np.uint8), geometry), path)
        return path

    return write


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets in ../shared/data beside the clone, or skip."""
    if not (SHARED_DATA / "btcv-ct" / "dataset.json").is_file():
        pytest.skip(
            f"{SHARED_DATA.resolve()} not found: real-data tests need ../shared/data beside the clone"
        )
    return SHARED_DATA.resolve()


def _box_labels(shift: int = 0, shape=(20, 18, 10)) -> np.ndarray:
    """Spleen (1) and liver (6) as boxes, indexed [x, y, z]; ``shift`` moves them along x."""
    labels = np.zeros(shape, dtype=np.uint8)
    labels[2 + shift : 9 + shift, 3:12, 2:8] = 6
    labels[12 + shift : 17 + shift, 5:10, 3:7] = 1
    return labels


@pytest.fixture
def box_labels() -> Callable[..., np.ndarray]:
    """``box_labels(shift=0, shape=(20, 18, 10))``: spleen and liver boxes, shifted along x."""
    return _box_labels


@pytest.fixture
def study(tmp_path: Path, write_labels) -> tuple[Path, Path]:
    """PRED and REF folders for three cases (two CT, one MR); REF's dataset.json sits in its parent.

    The dataset annotates spleen, gallbladder and liver; gallbladder is in no map (not a number) and
    the predictions are the references shifted by one voxel, named with the ``_0000`` suffix.
    """
    import json

    root = tmp_path / "dataset"
    for case_id in ("amos_0001", "amos_0002", "amos_0507"):
        write_labels(f"dataset/labelsTr/{case_id}.nii.gz", _box_labels())
        write_labels(f"pred/{case_id}_0000.nii.gz", _box_labels(shift=1))
    meta = {
        "name": "boxes",
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, "spleen": 1, "gallbladder": 4, "liver": 6},
        "annotated_labels": [1, 4, 6],
    }
    (root / "dataset.json").write_text(json.dumps(meta))
    return tmp_path / "pred", root / "labelsTr"
