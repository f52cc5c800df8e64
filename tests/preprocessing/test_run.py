"""`amoseg plan` and `amoseg preprocess` on datasets: cache layout, skipping, resuming, failures."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from amoseg.cli import main
from amoseg.data.phantom import write_phantom_dataset
from amoseg.planning import Plan
from amoseg.planning.plan import PLANS_FILE
from amoseg.preprocessing import load_case, restore_label
from helpers import real_dataset, renamed_copy


def files_of(folder: Path) -> dict[str, float]:
    return {str(path.relative_to(folder)): path.stat().st_mtime for path in folder.rglob("*")}


def preprocess(dataset: Path, work: Path, *extra: str, output: Path | None = None) -> int:
    """`amoseg preprocess DATASET --plan WORK/plans.json -o WORK/pre EXTRA...`; returns the exit code."""
    output = output or work / "pre"
    return main(["preprocess", str(dataset), "--plan", str(work / "plans.json"), "-o", str(output), *extra])


def plan_and_preprocess(dataset: Path, work: Path, *extra: str) -> tuple[Plan, Path]:
    assert main(["plan", str(dataset), "-o", str(work / "plans.json"), "--workers", "1"]) == 0
    plan = Plan.load(work / "plans.json")
    assert preprocess(dataset, work, *extra) == 0
    return plan, work / "pre" / plan.plan_id


def test_plan_into_an_existing_folder_writes_plans_json_there(box_dataset, tmp_path):
    assert main(["plan", str(box_dataset), "-o", str(tmp_path), "--preset", "cpu", "--workers", "1"]) == 0
    assert Plan.load(tmp_path / "plans.json").preset == "cpu"
    assert (tmp_path / "stats" / "fingerprint.json").is_file()


def test_box_dataset_ct_and_mr(box_dataset, tmp_path):
    before = files_of(box_dataset)
    plan, folder = plan_and_preprocess(box_dataset, tmp_path, "--workers", "1")
    assert (tmp_path / "stats" / "fingerprint.json").is_file()  # computed beside plans.json
    assert files_of(box_dataset) == before  # inputs are never modified
    assert Plan.load(folder / PLANS_FILE) == plan
    cases = sorted(path.name for path in folder.iterdir() if path.is_dir())
    assert cases == ["amos_0001", "amos_0002", "amos_0003", "amos_0501"]
    loaded = {name: load_case(folder / name) for name in cases}
    assert isinstance(loaded["amos_0001"].image, np.memmap) and loaded["amos_0001"].image.dtype == np.float32
    ct, mr = loaded["amos_0001"].properties, loaded["amos_0501"].properties
    assert (ct.modality, mr.modality) == ("CT", "MR") and ct.split == "train"
    assert ct.intensity.mean == plan.normalization["CT"].mean
    assert mr.intensity.mean != plan.normalization["CT"].mean
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["datasets"]["boxes"]["cases"]["amos_0501"]["status"] == "done"
    assert {ct.dataset, mr.dataset} == {"boxes"}


def test_two_datasets_share_one_cache_and_a_shared_case_id_is_refused(box_dataset, tmp_path, capsys):
    _, folder = plan_and_preprocess(box_dataset, tmp_path, "--workers", "1")
    other = renamed_copy(box_dataset, tmp_path / "other", "other boxes", id_offset=100)
    assert preprocess(other, tmp_path, "--workers", "1") == 0
    assert load_case(folder / "amos_0101").properties.dataset == "other boxes"
    summary = json.loads((folder / "summary.json").read_text())["datasets"]
    assert sorted(summary) == ["boxes", "other boxes"]  # the second dataset kept the first's entry
    assert sorted(summary["other boxes"]["cases"]) == ["amos_0101", "amos_0102", "amos_0103", "amos_0601"]

    clash = renamed_copy(box_dataset, tmp_path / "clash", "clashing boxes")
    before = files_of(folder)
    capsys.readouterr()
    for extra in ((), ("--overwrite",)):
        assert preprocess(clash, tmp_path, "--workers", "1", *extra) == 1
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and "Traceback" not in error
        assert "case amos_0001 of clashing boxes is already in this cache from dataset boxes" in error
    assert files_of(folder) == before  # nothing was written, not even the plan


def test_second_run_skips_overwrite_redoes_and_stale_temporaries_go(box_dataset, tmp_path, capsys):
    _, folder = plan_and_preprocess(box_dataset, tmp_path, "--workers", "1")
    first = files_of(folder / "amos_0002")
    stale = folder / ".amos_0003.tmp999999999"
    stale.mkdir()
    (stale / "image.npy").write_bytes(b"half")
    shutil.rmtree(folder / "amos_0003")  # as if the run had been interrupted on this case
    capsys.readouterr()
    assert preprocess(box_dataset, tmp_path) == 0
    assert "Preprocessed 1 cases (3 already there)" in capsys.readouterr().out
    assert files_of(folder / "amos_0002") == first and (folder / "amos_0003").is_dir() and not stale.exists()
    assert preprocess(box_dataset, tmp_path, "--overwrite", "--workers", "2") == 0
    assert files_of(folder / "amos_0002") != first


def test_a_broken_case_fails_in_one_line_after_the_others(box_dataset, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(box_dataset, broken)
    (broken / "imagesTr" / "amos_0002.nii.gz").write_bytes(b"not an image")
    assert main(["plan", str(box_dataset), "-o", str(tmp_path / "plans.json")]) == 0
    capsys.readouterr()
    code = preprocess(broken, tmp_path, "--workers", "1")
    captured = capsys.readouterr()
    assert code == 1
    assert "failed amos_0002:" in captured.out and len(captured.err.strip().splitlines()) == 1
    assert "1 of 4 cases failed" in captured.err
    folder = tmp_path / "pre" / Plan.load(tmp_path / "plans.json").plan_id
    assert {p.name for p in folder.iterdir() if p.is_dir()} == {"amos_0001", "amos_0003", "amos_0501"}


@pytest.mark.parametrize(
    "arguments",
    [
        ["plan", "{dataset}", "--preset", "cpu", "--gpu-memory", "8", "-o", "{tmp}/p.json"],
        ["plan", "{dataset}", "-o", "{dataset}/plans.json"],
        ["preprocess", "{dataset}", "--plan", "{tmp}/missing.json", "-o", "{tmp}/pre"],
        ["plan", "{tmp}/nowhere", "-o", "{tmp}/p.json"],
    ],
)
def test_bad_input_is_one_line_and_exit_1(box_dataset, tmp_path, capsys, arguments):
    argv = [item.format(dataset=box_dataset, tmp=tmp_path) for item in arguments]
    assert main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("amoseg ") and len(error.splitlines()) == 1


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        (
            ["--preset", "cpu", "--cpu-step-seconds", "-1"],
            "a budget must be a positive, finite number, got -1.0",
        ),
        (["--cpu-step-seconds", "0.6"], "a CPU step budget applies to the cpu preset only"),
    ],
)
def test_a_bad_budget_is_refused_before_the_fingerprint_is_computed(
    box_dataset, tmp_path, capsys, budget, message
):
    work = tmp_path / "work"
    assert main(["plan", str(box_dataset), "-o", str(work / "plans.json"), *budget]) == 1
    assert message in capsys.readouterr().err
    assert not work.exists()  # no stats folder, no plan


def test_a_fingerprint_of_another_dataset_is_refused(box_dataset, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "imagesTr").mkdir()
    shutil.copy(box_dataset / "imagesTr" / "amos_0001.nii.gz", other / "imagesTr" / "case_0001.nii.gz")
    assert main(["plan", str(box_dataset), "-o", str(tmp_path / "plans.json")]) == 0
    again = ["plan", str(other), "-o", str(tmp_path / "again.json"), "--stats", str(tmp_path / "stats")]
    assert main(again) == 1
    assert "describes none of the cases" in capsys.readouterr().err


def test_preprocess_output_inside_the_dataset_is_refused(box_dataset, tmp_path, capsys):
    assert main(["plan", str(box_dataset), "-o", str(tmp_path / "plans.json")]) == 0
    assert preprocess(box_dataset, tmp_path, output=box_dataset / "pre") == 1
    assert "inside the dataset" in capsys.readouterr().err
    assert not (box_dataset / "pre").exists()


@pytest.mark.slow
def test_phantom_dataset_end_to_end(tmp_path):
    dataset = write_phantom_dataset(
        tmp_path / "phantoms", n_ct=3, n_mr=2, seed=3, test_fraction=0.25, workers=1, progress=False
    )
    _, folder = plan_and_preprocess(dataset, tmp_path / "work", "--workers", "2")
    meta = json.loads((dataset / "dataset.json").read_text())
    # Test cases (labelled here) stay out of the training cache.
    assert len([p for p in folder.iterdir() if p.is_dir()]) == len(meta["training"]) == 3
    from amoseg.io import read_label

    for entry in meta["training"]:
        case_id = Path(entry["label"]).name.removesuffix(".nii.gz")
        case = load_case(folder / case_id)
        original = read_label(dataset / entry["label"])
        restored = restore_label(np.asarray(case.label), case.properties)
        assert restored.geometry == original.geometry
        assert (restored.array == original.array).mean() > 0.99


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("name", ["chaos-mr", "btcv-ct"])
def test_real_datasets(name, tmp_path):
    dataset = real_dataset(name)
    work = tmp_path / name
    assert main(["plan", str(dataset), "--preset", "fast", "-o", str(work / "plans.json")]) == 0
    plan = Plan.load(work / "plans.json")
    assert preprocess(dataset, work) == 0
    folder = work / "pre" / plan.plan_id
    cases = [p for p in folder.iterdir() if p.is_dir()]
    assert len(cases) == len(json.loads((dataset / "dataset.json").read_text())["training"])
    case = load_case(cases[0])
    assert set(np.unique(np.asarray(case.label))) <= {0, *case.properties.annotated_labels}
    assert os.path.getsize(cases[0] / "image.npy") > 0
