"""A whole (tiny) training run in-process: outputs, checkpoints, load_network, time budget, bad input."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from amoseg import api, cli
from amoseg.model.checkpoint import checkpoint_for_prediction, load_network, read_checkpoint, weights_digest
from amoseg.planning.plan import MeasuredStep
from amoseg.training.config import TrainConfig
from amoseg.training.log import read_log
from amoseg.training.splits import make_splits
from helpers import renamed_copy


def train_tiny(tiny_cache, output, **changes):
    _, plans_json, root = tiny_cache
    settings = dict(epochs=2, iterations_per_epoch=3, device="cpu", quiet=True, threads=1)
    settings.update(changes)
    return api.train(preprocessed=root, plan=plans_json, output=output, **settings)


@pytest.fixture(scope="module")
def trained(tiny_cache, tmp_path_factory):
    output = tmp_path_factory.mktemp("run")
    return output, train_tiny(tiny_cache, output)


def test_a_run_writes_a_self_contained_fold(trained, tiny_cache):
    output, result = trained
    fold = output / "fold_0"
    for name in ("config.json", "plans.json", "dataset.json", "log.jsonl", "curves.png", "organ_curves.png"):
        assert (fold / name).is_file(), name
    for name in ("latest", "best", "final"):
        assert (fold / f"checkpoint_{name}.pt").is_file(), name
    assert (output / "splits.json").is_file()
    assert (fold / "curves.png").read_bytes()[:4] == b"\x89PNG"
    log = read_log(fold)
    assert [record["epoch"] for record in log] == [1, 2] and log[-1]["iteration"] == 6
    assert set(log[-1]["pseudo_dice"]) >= {"liver", "left_adrenal_gland"}
    assert result.epochs == 2 and result.iterations == 6 and result.stopped_by == "epochs"
    config = TrainConfig.load(fold / "config.json")
    assert config.epochs == 2 and config.momentum == 0.99 and config.grad_clip_norm == 12
    labels = json.loads((fold / "dataset.json").read_text())
    assert labels["labels"]["liver"] == 6 and labels["modalities"] == ["CT", "MR"]


def test_checkpoints_are_data_and_load_for_the_predictor(trained, tiny_cache):
    output, _ = trained
    plan = tiny_cache[0]
    fold = output / "fold_0"
    stored = read_checkpoint(fold / "checkpoint_final.pt")  # torch.load(weights_only=True)
    assert stored.name == "final" and stored.epoch == 2 and stored.iteration == 6
    assert stored.config["epochs"] == 2 and stored.plan.plan_id == plan.plan_id
    assert set(stored.rng) >= {"torch", "numpy", "python"} and isinstance(stored.rng["torch"], torch.Tensor)
    raw = torch.load(fold / "checkpoint_final.pt", weights_only=True)
    assert (
        raw["format"] == "amoseg-checkpoint" and raw["epoch"] == 2 and raw["plan"]["plan_id"] == plan.plan_id
    )
    assert checkpoint_for_prediction(fold) == fold / "checkpoint_final.pt"
    for where in (fold, output, fold / "checkpoint_best.pt"):
        network, checkpoint = load_network(where, "cpu")
        assert checkpoint.plan.plan_id == plan.plan_id and not network.training
        assert checkpoint.labels["6"] == "liver" and checkpoint.labels["0"] == "background"
        assert not checkpoint.optimizer and not checkpoint.rng  # prediction carries no training state
    with torch.no_grad():
        logits = network(torch.zeros((1, 1, *plan.patch_size)))
    assert logits.shape == (1, 16, *plan.patch_size)
    final, _ = load_network(fold, "cpu", checkpoint="final")
    assert weights_digest(final) == read_log(fold)[-1]["weights_sha256_by_rank"][0]


def test_a_time_budget_stops_training_and_still_writes_the_final_checkpoint(tiny_cache, tmp_path):
    result = train_tiny(
        tiny_cache,
        tmp_path,
        epochs=10,
        iterations_per_epoch=1000,
        time_budget="0.5s",
        fold="all",
        residual=True,
    )
    assert result.stopped_by == "time budget" and result.epochs == 1 and 0 < result.iterations < 1000
    fold = tmp_path / "fold_all"
    assert (fold / "checkpoint_final.pt").is_file()
    _, checkpoint = load_network(fold)
    assert checkpoint.topology.res_block is True and checkpoint.fold == "all"
    assert checkpoint.topology.single_conv_blocks is True
    again = train_tiny(tiny_cache, tmp_path, fold="all", resume=True)
    assert again.stopped_by == "already finished"


def test_training_gives_the_callers_torch_settings_back(tiny_cache, tmp_path):
    before = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(3)
    try:
        train_tiny(tiny_cache, tmp_path, epochs=1, iterations_per_epoch=1)  # 1 thread, deterministic
        assert torch.get_num_threads() == 3
        assert torch.are_deterministic_algorithms_enabled() == deterministic
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--fold", "7"], "fold '7'"),
        (["--time-budget", "soon"], "not a duration"),
        (["--device", "tpu"], "device 'tpu'"),
        (["--mirror-axes", "0,3"], "mirror axes [0, 3] must be distinct axes"),
        (["--mirror-axes", "left"], "mirror axes 'left' are not axes"),
        (["--missing-cache"], "preprocessed folder not found"),
        (["--other-plan"], "no cache for plan"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tiny_cache, make_tiny_plan, tmp_path, capsys, arguments, message):
    _, plans_json, root = tiny_cache
    if arguments == ["--missing-cache"]:
        root, arguments = tmp_path / "nowhere", []
    if arguments == ["--other-plan"]:
        plans_json, arguments = tmp_path / "other.json", []
        make_tiny_plan(patch=(16, 16, 16)).save(plans_json)
    code = cli.main(["train", str(root), "--plan", str(plans_json), "-o", str(tmp_path / "runs"), *arguments])
    error = capsys.readouterr().err.strip()
    assert code == 1 and len(error.splitlines()) == 1 and message in error, error
    assert error.startswith("amoseg train: error:")


def test_an_existing_run_is_not_overwritten_without_resume(trained, tiny_cache, capsys):
    output, _ = trained
    _, plans_json, root = tiny_cache
    code = cli.main(["train", str(root), "--plan", str(plans_json), "-o", str(output), "--epochs", "1"])
    error = capsys.readouterr().err
    assert code == 1 and "--resume" in error


def test_steps_slower_than_the_plan_says_are_warned_of_once(tiny_cache, tmp_path, capsys):
    plan, _, root = tiny_cache
    # The same plan (measuring does not change its id, so the cache serves) sized on a machine that
    # ran its step in a millisecond: every real step here is far slower.
    measured = MeasuredStep(0.001, "float32", "a fast CPU", "AVX512", 2, 900.0)
    slow_plan = tmp_path / "plans.json"
    dataclasses.replace(plan, measured_step=measured).save(slow_plan)
    api.train(preprocessed=root, plan=slow_plan, output=tmp_path / "run", epochs=2, iterations_per_epoch=2,
              device="cpu", threads=1)  # fmt: skip
    out = capsys.readouterr().out
    assert out.count("warning: training steps take") == 1, out
    assert "against the plan's 0.00 s (0.00 s per step measured on a fast CPU (AVX512, 2 threads" in out
    assert "plan again here (`amoseg plan DATASET --preset cpu -o plans.json`)" in out


def test_one_model_trains_on_two_datasets_preprocessed_into_one_cache(phantom_dataset, tmp_path):
    first = phantom_dataset
    second = renamed_copy(first, tmp_path / "second", "second phantoms", id_offset=100)
    plans = tmp_path / "plans.json"
    api.plan(dataset=[first, second], preset="cpu", output=plans, measure=False, workers=1, quiet=True)
    for dataset in (first, second):
        api.preprocess(dataset=dataset, plan=plans, output=tmp_path / "pre", workers=1, quiet=True)
    api.train(
        preprocessed=tmp_path / "pre",
        plan=plans,
        output=tmp_path / "runs",
        fold="all",
        epochs=1,
        iterations_per_epoch=1,
        batch_size=1,
        device="cpu",
        threads=1,
        quiet=True,
    )
    # Folds balance each dataset's CT and MR: the strata are (dataset, modality), named here by hand
    # (each phantom set has 3 CT and 1 MR training cases; its test cases are never preprocessed).
    strata = {
        **dict.fromkeys(["amos_0001", "amos_0003", "amos_0004"], "AMOS phantoms/CT"),
        "amos_0501": "AMOS phantoms/MR",
        **dict.fromkeys(["amos_0101", "amos_0103", "amos_0104"], "second phantoms/CT"),
        "amos_0601": "second phantoms/MR",
    }
    assert json.loads((tmp_path / "runs" / "splits.json").read_text()) == make_splits(strata, seed=0)
