"""``training.run``'s decisions, as pure functions: what to do with a fold folder, which settings a
resumed run may change."""

from __future__ import annotations

import pytest

from amoseg.errors import AmosegError
from amoseg.training.config import TrainConfig
from amoseg.training.run import RESUMABLE_CHANGES, resume_decision, resumed_config


@pytest.mark.parametrize(
    "resume, checkpoints, validated, action",
    [
        (False, [], False, "start"),
        (False, ["latest"], False, "refuse"),
        (False, ["final", "best", "latest"], True, "refuse"),
        (True, [], False, "start"),
        (True, ["best"], False, "start"),  # a best checkpoint alone cannot be continued exactly
        (True, ["latest"], False, "continue"),
        (True, ["best", "latest"], True, "continue"),
        (True, ["final", "latest"], False, "validate"),  # killed during the final validation
        (True, ["final", "latest"], True, "finished"),
    ],
)
def test_the_resume_decision_from_what_the_fold_folder_holds(resume, checkpoints, validated, action):
    assert resume_decision(resume, checkpoints, validated) == action


def test_a_resumed_run_changes_only_the_resumable_settings():
    stored = TrainConfig(epochs=5, seed=3, mirror_axes=(1, 2))
    resumed = resumed_config(stored, {"epochs": 8, "device": "cpu"})
    assert resumed.epochs == 8 and resumed.device == "cpu"
    assert resumed.seed == 3 and resumed.mirror_axes == (1, 2)
    assert resumed_config(stored, {}) == stored
    with pytest.raises(AmosegError, match="seed given"):
        resumed_config(stored, {"seed": 4})
    assert set(RESUMABLE_CHANGES) == {"epochs", "time_budget_s", "device", "compile", "threads"}
