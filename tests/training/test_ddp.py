"""DistributedDataParallel on CPU: two processes (torchrun, gloo) end with bitwise identical weights."""

from __future__ import annotations

import subprocess
import sys

import pytest

from amoseg.model.checkpoint import load_network, weights_digest
from amoseg.training.log import read_log


@pytest.mark.slow
def test_two_ranks_hold_identical_weights_and_only_rank_0_writes(tiny_cache, tmp_path):
    _, plans_json, root = tiny_cache
    output = tmp_path / "runs"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "amoseg", "train", str(root), "--plan", str(plans_json), "-o", str(output),
        "--epochs", "2", "--iterations-per-epoch", "3", "--device", "cpu", "--augment",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Training fold 0") == 1  # rank 0 alone reports
    fold = output / "fold_0"
    digests = read_log(fold)[-1]["weights_sha256_by_rank"]
    assert len(digests) == 2 and digests[0] == digests[1]
    network, _ = load_network(fold)
    assert weights_digest(network) == digests[0]
    assert sorted(path.name for path in fold.glob("checkpoint_*.pt")) == [
        "checkpoint_best.pt",
        "checkpoint_final.pt",
        "checkpoint_latest.pt",
    ]
