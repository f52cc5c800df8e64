"""The checkpoint record: a typed round trip through ``torch.save``/``torch.load(weights_only=True)``,
the fields a predictor reads, and incomplete or foreign content refused in one line."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from amoseg.errors import InputError
from amoseg.model.checkpoint import (
    CHECKPOINT_VERSION,
    Checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from amoseg.model.network import build_network
from tiny import tiny_plan


def _checkpoint(**changes) -> Checkpoint:
    plan = tiny_plan()
    torch.manual_seed(0)
    checkpoint = Checkpoint(
        name="latest",
        fold="1",
        plan=plan,
        topology=dataclasses.replace(plan.network, res_block=True),
        network=build_network(dataclasses.replace(plan.network, res_block=True)).state_dict(),
        config={"epochs": 3, "mirror_axes": [1, 2], "config_version": 2},
        labels={"0": "background", "6": "liver"},
        dataset={"learned_labels": {"CT": [6]}},
        epoch=2,
        iteration=40,
        elapsed_seconds=12.5,
        ema_dice=0.25,
        best_ema_dice=0.5,
        history=({"epoch": 1, "mean_pseudo_dice": None}, {"epoch": 2, "mean_pseudo_dice": 0.5}),
        optimizer={"state": {}, "param_groups": [{"lr": 0.01, "params": [0]}]},
        rng={"torch": torch.get_rng_state()},
    )
    return dataclasses.replace(checkpoint, **changes)


def test_a_checkpoint_reads_back_as_written(tmp_path):
    written = _checkpoint()
    save_checkpoint(tmp_path / "checkpoint_latest.pt", written)
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no temporary left
    read = read_checkpoint(tmp_path / "checkpoint_latest.pt")
    for name in ("name", "fold", "plan", "topology", "labels", "epoch", "iteration", "elapsed_seconds"):
        assert getattr(read, name) == getattr(written, name), name
    assert (read.ema_dice, read.best_ema_dice, read.history) == (0.25, 0.5, written.history)
    assert read.topology.res_block and not read.plan.network.res_block  # trained residual, planned plain
    assert read.config == written.config and read.dataset == written.dataset
    assert read.optimizer == written.optimizer and torch.equal(read.rng["torch"], written.rng["torch"])
    assert read.network.keys() == written.network.keys()
    assert all(torch.equal(read.network[key], value) for key, value in written.network.items())
    assert read.mirror_axes == (1, 2) and read.last_record == {"epoch": 2, "mean_pseudo_dice": 0.5}
    raw = torch.load(tmp_path / "checkpoint_latest.pt", weights_only=True)  # data only: no classes
    assert raw["format"] == "amoseg-checkpoint" and raw["checkpoint_version"] == CHECKPOINT_VERSION


def test_a_config_of_format_1_mirrored_every_axis():
    assert _checkpoint(config={"epochs": 3}).mirror_axes == (0, 1, 2)


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda stored: stored.pop("plan"), "incomplete checkpoint (KeyError"),
        (lambda stored: stored.update(epoch="two"), "incomplete checkpoint (ValueError"),
        (lambda stored: stored["config"].update(mirror_axes=[3]), "mirror axes [3] are not among 0, 1, 2"),
        (
            lambda stored: stored.update(checkpoint_version=CHECKPOINT_VERSION + 1),
            "written by a newer amoseg",
        ),
        (lambda stored: stored.update(format="other"), "not an amoseg training checkpoint"),
    ],
)
def test_incomplete_or_foreign_content_is_refused_naming_the_file(tmp_path, change, fragment):
    path = tmp_path / "checkpoint_final.pt"
    stored = _checkpoint().to_dict()
    change(stored)
    torch.save(stored, path)
    with pytest.raises(InputError) as raised:
        read_checkpoint(path)
    assert str(path) in str(raised.value) and fragment in str(raised.value)
    assert "\n" not in str(raised.value)
