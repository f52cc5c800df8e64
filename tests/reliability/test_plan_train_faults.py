"""Faults met by `plan`, `preprocess` with an edited plan, `train` on a damaged cache, and checkpoints:
budgets that are not numbers, absurd spacings, cut files, full disks, foreign and future checkpoints."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
import torch

from amoseg.cli import main
from amoseg.model.checkpoint import CHECKPOINT_VERSION
from helpers import one_error_line, run_amoseg, write_box_dataset


@pytest.mark.parametrize(
    "budget", [["--preset", "cpu", "--cpu-step-seconds", "inf"], ["--preset", "cpu", "--cpu-step-seconds", "nan"],
               ["--preset", "fast", "--gpu-memory", "nan"]],
)  # fmt: skip
def test_a_budget_that_is_not_a_finite_number_is_one_line(tmp_path, capsys, budget):
    root = write_box_dataset(tmp_path / "D")
    assert main(["plan", str(root), "-o", str(tmp_path / "w" / "plans.json"), *budget]) == 1
    one_error_line(capsys.readouterr().err, "a budget must be a positive, finite number")
    assert not (tmp_path / "w").exists()


def _edited_plan(tmp_path, capsys, spacing):
    root = write_box_dataset(tmp_path / "D")
    plans = tmp_path / "plans.json"
    assert main(["plan", str(root), "-o", str(plans), "--preset", "cpu", "--no-measure"]) == 0
    capsys.readouterr()
    plan = json.loads(plans.read_text())
    plan["target_spacing_mm"] = spacing
    plans.write_text(json.dumps(plan))
    return root, plans


@pytest.mark.parametrize("spacing", [[0, 3, 3], [3, 3, -1], [3, 3]])
def test_a_plan_edited_to_an_impossible_spacing_is_refused_on_reading(tmp_path, capsys, spacing):
    root, plans = _edited_plan(tmp_path, capsys, spacing)
    assert main(["preprocess", str(root), "--plan", str(plans), "-o", str(tmp_path / "pre")]) == 1
    one_error_line(
        capsys.readouterr().err, str(plans), "target_spacing_mm must be three positive, finite sizes"
    )


def test_a_plan_edited_to_a_hundredth_of_a_millimetre_fails_before_allocating(tmp_path, capsys):
    # 0.01 mm used to ask for a 293 GB array; each case now fails at once, in one line.
    root, plans = _edited_plan(tmp_path, capsys, [0.01, 0.01, 0.01])
    start = time.perf_counter()
    assert (
        main(["preprocess", str(root), "--plan", str(plans), "-o", str(tmp_path / "pre"), "--workers", "1"])
        == 1
    )
    assert time.perf_counter() - start < 60
    out = capsys.readouterr().out
    assert out.count("would make") == 4 and "check the plan's target spacing" in out


def test_a_plan_file_that_holds_no_object_is_one_line(tmp_path, capsys):
    root, plans = _edited_plan(tmp_path, capsys, [3, 3, 3])
    plans.write_text("[1, 2, 3]")
    assert main(["preprocess", str(root), "--plan", str(plans), "-o", str(tmp_path / "pre")]) == 1
    one_error_line(capsys.readouterr().err, str(plans), "not an amoseg plan")


@pytest.fixture
def own_cache(tiny_cache, tmp_path):
    """A private copy of the tiny cache, to damage."""
    plan, plans_json, root = tiny_cache
    shutil.copytree(root, tmp_path / "pre")
    return plan, plans_json, tmp_path / "pre" / plan.plan_id


def _train(plans_json, cache, output, *extra):
    return main(
        ["train", str(cache.parent), "--plan", str(plans_json), "-o", str(output), "--fold", "all",
         "--epochs", "1", "--iterations-per-epoch", "2", "--device", "cpu", "--threads", "1", *extra]
    )  # fmt: skip


def test_a_truncated_cache_array_is_named_before_training(own_cache, tmp_path, capsys):
    _, plans_json, cache = own_cache
    image = cache / "amos_0003" / "image.npy"
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    assert _train(plans_json, cache, tmp_path / "runs") == 1
    one_error_line(capsys.readouterr().err, str(image), "damaged cache file", "amoseg preprocess --overwrite")
    assert not list((tmp_path / "runs").rglob("checkpoint_*.pt"))


def test_a_cache_label_outside_the_plans_classes_is_named(own_cache, tmp_path, capsys):
    _, plans_json, cache = own_cache
    label_path = cache / "amos_0004" / "label.npy"
    label = np.load(label_path)
    label[label == 6] = 16
    np.save(label_path, label)
    assert _train(plans_json, cache, tmp_path / "runs") == 1
    one_error_line(capsys.readouterr().err, str(label_path), "label value 16", "classes 0..15")


def test_a_full_disk_at_the_checkpoint_keeps_the_previous_one(own_cache, tmp_path, dead_pid):
    _, plans_json, cache = own_cache
    runs = tmp_path / "runs"
    assert _train(plans_json, cache, runs) == 0
    fold = runs / "fold_all"
    (fold / "checkpoint_final.pt").unlink()  # as if stopped after epoch 1 of 2
    latest = fold / "checkpoint_latest.pt"
    before = latest.read_bytes()
    stale = fold / f".checkpoint_latest.tmp{dead_pid}.pt"
    stale.write_bytes(before[:1000])  # what a run killed while saving leaves
    # Room for the run's small files (config, log, curves), none for a checkpoint (about 0.9 MB).
    result = run_amoseg(
        "train", cache.parent, "--plan", plans_json, "-o", runs, "--fold", "all", "--resume",
        "--epochs", "2", "--device", "cpu", "--threads", "1", file_size_limit=200_000,
    )  # fmt: skip
    assert result.returncode == 1
    one_error_line(result.stderr, str(latest), "not written: file too large", "nothing replaced")
    assert latest.read_bytes() == before
    assert torch.load(latest, weights_only=True)["epoch"] == 1
    assert not stale.exists()
    assert not [path.name for path in fold.iterdir() if path.name.startswith(".")]


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_a_checkpoint_with_code_in_it_is_refused_for_safety(tiny_model, phantom_dataset, tmp_path, capsys):
    fold = tmp_path / "fold_0"
    shutil.copytree(tiny_model, fold)
    for path in fold.glob("checkpoint_*.pt"):
        path.unlink()
    torch.save({"format": "amoseg-checkpoint", "payload": _Payload()}, fold / "checkpoint_final.pt")
    image = phantom_dataset / "imagesTs" / "amos_0002.nii.gz"
    argv = ["predict", "-i", str(image), "-o", str(tmp_path / "out"), "-m", str(fold)]
    assert main(argv) == 1
    error = one_error_line(capsys.readouterr().err, "not a plain amoseg checkpoint", "refused for safety")
    assert "weights_only" not in error
    assert not (tmp_path / "pwned").exists() and not list(tmp_path.rglob("pwned"))


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [("newer", "written by a newer amoseg"), ("cut", "not a loadable checkpoint")],
)
def test_a_model_from_a_newer_amoseg_or_cut_short_is_one_line(
    tiny_model, phantom_dataset, tmp_path, capsys, damage, fragment
):
    fold = tmp_path / "fold_0"
    shutil.copytree(tiny_model, fold)
    checkpoint = fold / "checkpoint_final.pt"
    if damage == "newer":
        stored = torch.load(checkpoint, weights_only=True)
        stored["checkpoint_version"] = CHECKPOINT_VERSION + 1
        torch.save(stored, checkpoint)
    else:
        checkpoint.write_bytes(checkpoint.read_bytes()[:5000])
    image = phantom_dataset / "imagesTs" / "amos_0002.nii.gz"
    assert main(["predict", "-i", str(image), "-o", str(tmp_path / "out"), "-m", str(fold)]) == 1
    one_error_line(capsys.readouterr().err, str(checkpoint), fragment)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_failed_cache_write_names_the_file_and_the_cause(phantom_dataset, tmp_path, capsys):
    plans = tmp_path / "plans.json"
    assert main(["plan", str(phantom_dataset), "-o", str(plans), "--preset", "cpu", "--no-measure"]) == 0
    capsys.readouterr()
    cache = tmp_path / "pre"
    # Room for the plan and the records, not for an image array (hundreds of kB).
    result = run_amoseg(
        "preprocess", phantom_dataset, "--plan", plans, "-o", cache, "--workers", "1", file_size_limit=60_000
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "requested and" not in result.stdout
    failures = [line for line in result.stdout.splitlines() if line.startswith("failed ")]
    assert failures and all("image.npy: not written: file too large" in line for line in failures)
    one_error_line(result.stderr, "cases failed")
    assert not [path for path in cache.rglob("*") if path.name.startswith(".")]  # no half-written case
