"""A run killed with SIGKILL and resumed ends with exactly the weights of an uninterrupted run (CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from amoseg.training.log import read_log

TIMING_KEYS = {"epoch_seconds", "train_seconds", "elapsed_seconds", "lr"}


def command(tiny_cache, output, *extra: str) -> list[str]:
    _, plans_json, root = tiny_cache
    return [
        sys.executable, "-m", "amoseg", "train", str(root), "--plan", str(plans_json), "-o", str(output),
        "--epochs", "4", "--iterations-per-epoch", "3", "--device", "cpu", "--threads", "1",
        "--augment", *extra,  # the cpu preset trains without; the resumed draws must match too
    ]  # fmt: skip


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_weights_of_an_uninterrupted_run(tiny_cache, tmp_path):
    reference = subprocess.Popen(command(tiny_cache, tmp_path / "reference"), stdout=subprocess.DEVNULL)
    victim = subprocess.Popen(command(tiny_cache, tmp_path / "victim"), stdout=subprocess.DEVNULL)
    fold = tmp_path / "victim" / "fold_0"
    deadline = time.monotonic() + 120
    while not (fold / "checkpoint_latest.pt").exists():
        assert victim.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (fold / "checkpoint_final.pt").exists(), "killed too late to test anything"
    resumed = subprocess.run(
        command(tiny_cache, tmp_path / "victim", "--resume"),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=180,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming after epoch" in resumed.stdout
    assert reference.wait(timeout=180) == 0

    expected = torch.load(tmp_path / "reference" / "fold_0" / "checkpoint_final.pt", weights_only=True)
    actual = torch.load(fold / "checkpoint_final.pt", weights_only=True)
    assert expected["network"].keys() == actual["network"].keys()
    for key, value in expected["network"].items():
        assert torch.equal(value, actual["network"][key]), key
    for index, state in expected["optimizer"]["state"].items():
        assert state.keys() == actual["optimizer"]["state"][index].keys()
        for name, value in state.items():  # SGD's momentum, AdamW's moments and step count
            assert torch.equal(
                torch.as_tensor(value), torch.as_tensor(actual["optimizer"]["state"][index][name])
            )
    assert actual["iteration"] == expected["iteration"] == 12
    assert actual["config"]["augment"] is True  # --augment over the cpu preset's default
    expected_log, actual_log = read_log(tmp_path / "reference" / "fold_0"), read_log(fold)
    assert len(actual_log) == len(expected_log) == 4
    for first, second in zip(expected_log, actual_log, strict=True):
        assert {k: v for k, v in first.items() if k not in TIMING_KEYS} == {
            k: v for k, v in second.items() if k not in TIMING_KEYS
        }
