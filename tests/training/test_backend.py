"""Training's torch settings apply inside the block and are given back after it, even on an error."""

from __future__ import annotations

import pytest
import torch

from amoseg.training.backend import training_backend


def _settings():
    return (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.utils.deterministic.fill_uninitialized_memory,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.get_num_threads(),
    )


def test_the_settings_hold_inside_and_are_restored_after_an_error():
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        before = _settings()
        with pytest.raises(RuntimeError), training_backend(deterministic=False, threads=threads + 1):
            assert _settings()[:3] == (False, False, False)
            assert torch.get_num_threads() == threads + 1
            raise RuntimeError("stop")
        assert _settings() == before
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(threads)


def test_deterministic_mode_fills_new_tensors_only_when_asked():
    with training_backend(deterministic=True, fill=True):
        assert torch.empty(64).isnan().all()
    with training_backend(deterministic=True):
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.utils.deterministic.fill_uninitialized_memory
