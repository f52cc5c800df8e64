"""`amoseg predict` applies a fold's postprocessing.json: a spurious organ blob goes, unless switched off.

The fold folders hold real checkpoint files of the identity-like model: ``checkpoint.load_network``
reads each with the real ``read_checkpoint`` and returns the identity network in place of the weights,
so the real ``model.loading.load_model`` finds the folds, reads their ``postprocessing.json`` and
votes, and the CLI runs end to end.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from amoseg import api
from amoseg.cli import main
from amoseg.io import Image, make_geometry, read_label, write_image
from amoseg.labels import ORGAN_BY_ID
from amoseg.model.checkpoint import Checkpoint, read_checkpoint, save_checkpoint
from amoseg.model.loading import Model, load_model
from amoseg.model.postprocessing import POSTPROCESSING_FILE, Postprocessing
from amoseg.training.config import TrainConfig
from identity_model import IdentityLabels, identity_plan

SPACING = (1.5, 1.5, 4.0)


def _labels() -> np.ndarray:
    """Liver with a far-away blob; spleen in two parts (never cleaned: not chosen)."""
    labels = np.zeros((30, 26, 9), np.uint8)
    labels[4:16, 3:15, 1:8] = 6
    labels[25:28, 20:24, 2:4] = 6
    labels[18:22, 3:7, 1:4] = 1
    labels[18:22, 12:16, 5:7] = 1
    return labels


def _image(labels: np.ndarray) -> Image:
    geometry = make_geometry(labels.shape, SPACING)
    return Image(np.where(labels > 0, labels.astype(np.int16), -1000).astype(np.int16), geometry)


def _without_blob(labels: np.ndarray) -> np.ndarray:
    cleaned = labels.copy()
    cleaned[25:28, 20:24, 2:4] = 0
    return cleaned


def _save_fold(folder, plan, mirror_axes) -> None:
    labels = {str(organ_id): organ.name for organ_id, organ in ORGAN_BY_ID.items()}
    folder.mkdir(parents=True, exist_ok=True)
    stored = Checkpoint(
        name="final",
        fold=folder.name.removeprefix("fold_"),
        plan=plan,
        topology=plan.network,
        network={},  # the identity network stands in for the weights
        config=TrainConfig(mirror_axes=mirror_axes).to_dict(),
        labels={"0": "background", **labels},
        dataset={},
    )
    save_checkpoint(folder / "checkpoint_final.pt", stored)


@pytest.fixture
def run_dir(cpu_plan, tmp_path, monkeypatch):
    """A run folder with fold_0 (chose liver) and fold_1 (no postprocessing.json) of the identity model."""
    import amoseg.model.checkpoint as checkpoint

    plan = identity_plan(cpu_plan, SPACING, (16, 16, 8))

    def identity_fold(folder, device="cpu", checkpoint=None):
        return IdentityLabels(), read_checkpoint(folder / "checkpoint_final.pt")

    monkeypatch.setattr(checkpoint, "load_network", identity_fold)
    run = tmp_path / "run"
    _save_fold(run / "fold_0", plan, mirror_axes=(1, 2))
    _save_fold(run / "fold_1", plan, mirror_axes=(0, 2))
    Postprocessing((6,), {"liver": 0.9}, {"liver": 0.95}, 2).save(run / "fold_0" / POSTPROCESSING_FILE)
    return run


def test_the_folds_vote_on_the_organs(run_dir):
    assert load_model(run_dir / "fold_0").largest_component == (6,)
    assert load_model(run_dir, folds="0").largest_component == (6,)
    assert load_model(run_dir).largest_component == ()  # one fold of two is no majority
    Postprocessing((6, 1), {}, {}, 2).save(run_dir / "fold_1" / POSTPROCESSING_FILE)
    assert load_model(run_dir).largest_component == (6,)


def test_test_time_mirroring_keeps_to_the_axes_every_fold_was_trained_on(run_dir):
    assert load_model(run_dir / "fold_0").mirror_axes == (1, 2)
    assert load_model(run_dir).mirror_axes == (2,)


def test_a_fold_whose_training_config_is_malformed_is_one_line_and_exit_1(run_dir, tmp_path, capsys):
    import torch

    path = run_dir / "fold_0" / "checkpoint_final.pt"
    stored = torch.load(path, weights_only=True)
    stored["config"]["mirror_axes"] = [7]
    torch.save(stored, path)
    write_image(_image(_labels()), tmp_path / "in" / "amos_0001_0000.nii.gz")
    code = main(
        ["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(run_dir / "fold_0")]
    )
    error = capsys.readouterr().err.strip()
    assert code == 1 and len(error.splitlines()) == 1, error
    assert str(path) in error and "mirror axes [7] are not among 0, 1, 2" in error


def test_cli_predict_removes_the_blob_and_keeps_it_without_postprocessing(run_dir, tmp_path):
    labels = _labels()
    write_image(_image(labels), tmp_path / "in" / "amos_0001_0000.nii.gz")
    model = ["-m", str(run_dir / "fold_0"), "--no-tta"]
    assert main(["predict", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *model]) == 0
    np.testing.assert_array_equal(
        read_label(tmp_path / "out" / "amos_0001.nii.gz").array, _without_blob(labels)
    )
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["largest_component"] == [6]
    raw = ["-o", str(tmp_path / "raw"), "--no-postprocessing"]
    assert main(["predict", "-i", str(tmp_path / "in"), *raw, *model]) == 0
    np.testing.assert_array_equal(read_label(tmp_path / "raw" / "amos_0001.nii.gz").array, labels)
    assert json.loads((tmp_path / "raw" / "dataset.json").read_text())["largest_component"] == []


def test_api_applies_a_models_choice_to_an_in_memory_image(cpu_plan):
    plan = identity_plan(cpu_plan, SPACING, (16, 16, 8))
    names = {organ_id: organ.name for organ_id, organ in ORGAN_BY_ID.items()}
    model = Model(networks=(IdentityLabels(),), plan=plan, labels=names, largest_component=(6, 1))
    labels = _labels()
    cleaned = api.predict_image(image=_image(labels), model=model, modality="CT", tta=False).label.array
    expected = _without_blob(labels)
    expected[18:22, 12:16, 5:7] = 0  # the smaller spleen part
    np.testing.assert_array_equal(cleaned, expected)
    raw = api.predict_image(image=_image(labels), model=model, modality="CT", tta=False, postprocess=False)
    np.testing.assert_array_equal(raw.label.array, labels)
