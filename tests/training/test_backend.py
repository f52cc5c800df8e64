"""Training's torch settings apply inside the block and are given back after it, even on an error."""

from __future__ import annotations

import pytest
import torch

from amoseg.training.backend import training_backend


def test_the_settings_hold_inside_and_are_restored_after_an_error():
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.utils.deterministic.fill_uninitialized_memory,
        torch.get_num_threads(),
    )
    with pytest.raises(RuntimeError), training_backend(deterministic=not before[0], threads=1):
        assert torch.are_deterministic_algorithms_enabled() == (not before[0])
        assert torch.utils.deterministic.fill_uninitialized_memory is False
        assert torch.get_num_threads() == 1
        raise RuntimeError("stop")
    after = (
        torch.are_deterministic_algorithms_enabled(),
        torch.utils.deterministic.fill_uninitialized_memory,
        torch.get_num_threads(),
    )
    assert after == before


def test_deterministic_mode_fills_new_tensors_only_when_asked():
    with training_backend(deterministic=True, fill=True):
        assert torch.empty(64).isnan().all()
    with training_backend(deterministic=True):
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.utils.deterministic.fill_uninitialized_memory
