"""What the report reads off a fold folder: progress, why it stopped, planned against measured steps."""

from __future__ import annotations

import dataclasses

import pytest

from amoseg.reporting.training_facts import fold_facts
from amoseg.training.config import TrainConfig
from tiny import tiny_plan


def _fold(tmp_path, config: dict, plan: dict):
    """A fold folder with the config and plan that training writes, changed by ``config``/``plan``."""
    fold = tmp_path / "fold_all"
    fold.mkdir()
    TrainConfig(**config).save(fold / "config.json")
    dataclasses.replace(tiny_plan(), **plan).save(fold / "plans.json")
    return fold


def test_a_run_cut_by_its_budget_on_a_slow_machine(tmp_path):
    fold = _fold(
        tmp_path, {"fold": "all", "epochs": 1000, "time_budget_s": 540.0}, {"estimated_step_s": 0.37}
    )
    # 100 steps in 105 s, then 100 in 95 s, then 50 in 51 s: 1.05, 0.95 and 1.02 s per iteration.
    history = [
        {"epoch": 1, "iteration": 100, "epoch_seconds": 105.0, "elapsed_seconds": 105.0},
        {"epoch": 2, "iteration": 200, "epoch_seconds": 95.0, "elapsed_seconds": 200.0},
        {"epoch": 3, "iteration": 250, "epoch_seconds": 51.0, "elapsed_seconds": 251.0},
    ]
    facts = fold_facts(fold, history)
    assert facts.stopped_by_budget and facts.validates_on_training_cases and facts.slow
    assert facts.measured_step_s == pytest.approx(1.02)
    assert facts.progress_text() == (
        "3 epochs, 250 iterations (stopped by the time budget of 9.0 min; up to 1000 planned)"
    )


def test_a_finished_cross_validation_fold_warns_of_nothing(tmp_path):
    fold = _fold(tmp_path, {"fold": "0", "epochs": 2, "time_budget_s": None}, {"estimated_step_s": 0.5})
    history = [
        {"epoch": 1, "iteration": 10, "epoch_seconds": 6.0, "elapsed_seconds": 6.0},
        {"epoch": 2, "iteration": 20, "epoch_seconds": 7.0, "elapsed_seconds": 13.0},
    ]
    facts = fold_facts(fold, history)
    assert not (facts.stopped_by_budget or facts.validates_on_training_cases or facts.slow)
    assert facts.measured_step_s == pytest.approx(0.65)
    assert facts.progress_text() == "2 of 2 epochs, 20 iterations"
    assert fold_facts(fold, []) is None


def test_an_unreadable_config_or_plan_counts_as_absent(tmp_path):
    fold = _fold(tmp_path, {"fold": "all", "epochs": 3}, {"estimated_step_s": 0.5})
    (fold / "config.json").write_text('{"fold": "all", "epochs": 3, "unknown_setting": 1}')
    (fold / "plans.json").write_text("[1, 2")
    facts = fold_facts(fold, [{"epoch": 1, "iteration": 10, "epoch_seconds": 6.0, "elapsed_seconds": 6.0}])
    assert (facts.fold, facts.planned_epochs, facts.budget_s, facts.planned_step_s) == (
        "all",
        None,
        None,
        None,
    )
    assert facts.progress_text() == "1 epochs, 10 iterations" and not facts.slow
