"""Final validation after training: whole-case Dice in validation.json, the decision in postprocessing.json."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import ndimage

from amoseg import api
from amoseg.inference.windows import WindowSettings, predict_probabilities
from amoseg.labels import ORGAN_BY_ID
from amoseg.model.checkpoint import load_network
from amoseg.model.loading import load_model as load_for_prediction
from amoseg.model.postprocessing import POSTPROCESSING_FILE, Postprocessing
from amoseg.preprocessing.cache import PlanCache
from amoseg.training.config import TrainConfig
from amoseg.training.dataset import index_cases
from amoseg.training.final_validation import VALIDATION_FILE, ValidationScores, final_validation


@pytest.fixture(scope="module")
def trained_fold(tiny_cache, tmp_path_factory):
    _, plans_json, root = tiny_cache
    output = tmp_path_factory.mktemp("run")
    api.train(
        preprocessed=root,
        plan=plans_json,
        output=output,
        epochs=1,
        iterations_per_epoch=3,
        device="cpu",
        quiet=True,
        threads=1,
    )
    return output / "fold_0"


def _val_cases(tiny_cache, fold_dir):
    plan, _, root = tiny_cache
    splits = json.loads((fold_dir.parent / "splits.json").read_text())
    by_id = {case.case_id: case for case in index_cases(PlanCache.open(root, plan), plan)}
    return [by_id[case] for case in splits[0]["val"]]


def _dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    total = prediction.sum() + reference.sum()
    return math.nan if total == 0 else 2 * float((prediction & reference).sum()) / float(total)


def _largest(mask: np.ndarray) -> np.ndarray:
    components, count = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if count <= 1:
        return mask
    return components == np.argmax(np.bincount(components.ravel())[1:]) + 1


def test_training_writes_whole_case_dice_and_the_decision(trained_fold, tiny_cache):
    plan = tiny_cache[0]
    scores = ValidationScores.load(trained_fold / VALIDATION_FILE)
    decision = Postprocessing.load(trained_fold / POSTPROCESSING_FILE)
    val_cases = _val_cases(tiny_cache, trained_fold)
    assert sorted(scores.dice) == sorted(case.case_id for case in val_cases) and decision.cases == len(
        val_cases
    )

    network, _ = load_network(trained_fold, "cpu", checkpoint="final")
    learned = json.loads((trained_fold / "dataset.json").read_text())["learned_labels"]
    settings = WindowSettings(mirror=False)
    before: dict[str, list[float]] = {}
    after: dict[str, list[float]] = {}
    for case in val_cases:
        image = np.load(case.folder / "image.npy")
        reference = np.load(case.folder / "label.npy")
        probabilities = predict_probabilities(
            [network], image, plan.num_classes, plan.patch_size, settings
        ).numpy()
        # As the predictor: the organs not learned from this modality count as background.
        unlearned = [c for c in range(1, plan.num_classes) if c not in learned[case.modality]]
        probabilities[0] += probabilities[unlearned].sum(0)
        probabilities[unlearned] = 0
        prediction = probabilities.argmax(0)
        assert set(scores.dice[case.case_id]) == {ORGAN_BY_ID[organ].name for organ in case.annotated}
        for organ in case.annotated:
            name = ORGAN_BY_ID[organ].name
            expected = _dice(prediction == organ, reference == organ)
            stored = scores.dice[case.case_id][name]
            assert stored == pytest.approx(expected, abs=1e-12, nan_ok=True), (case.case_id, name)
            if not math.isnan(expected):
                before.setdefault(name, []).append(expected)
                after.setdefault(name, []).append(_dice(_largest(prediction == organ), reference == organ))
    for name, values in before.items():
        assert scores.mean_dice[name] == pytest.approx(np.mean(values), abs=1e-12)
        assert decision.dice_before[name] == pytest.approx(np.mean(values), abs=1e-12)
        assert decision.dice_after[name] == pytest.approx(np.mean(after[name]), abs=1e-12)
    chosen = {
        organ
        for organ in range(1, 16)
        if ORGAN_BY_ID[organ].name in before
        and np.mean(after[ORGAN_BY_ID[organ].name])
        >= np.mean(before[ORGAN_BY_ID[organ].name]) + decision.min_improvement
    }
    assert set(decision.largest_component) == chosen
    assert scores.mean == pytest.approx(np.mean([np.mean(values) for values in before.values()]))
    assert load_for_prediction(trained_fold).largest_component == decision.largest_component


def test_no_validation_case_writes_nothing(trained_fold, tiny_cache, tmp_path):
    network, checkpoint = load_network(trained_fold, "cpu")
    assert final_validation(tmp_path, network, checkpoint.plan, [], "cpu") is None
    assert list(tmp_path.iterdir()) == []


def test_fold_all_gets_no_final_validation(trained_fold, tiny_cache, tmp_path):
    """Fold "all" trains on its validation cases, so no Dice and no decision are made on them."""
    from amoseg.training.run import _validate_fold

    config = TrainConfig.load(trained_fold / "config.json")
    cases = _val_cases(tiny_cache, trained_fold)
    _validate_fold(tmp_path, replace(config, fold="all"), cases, torch.device("cpu"), progress=False)
    assert list(tmp_path.iterdir()) == []
