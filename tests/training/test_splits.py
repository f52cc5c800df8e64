"""Five-fold splits stratified by modality, and the TrainConfig record."""

from __future__ import annotations

import json

import pytest

from amoseg.errors import AmosegError
from amoseg.training.config import DEFAULT_MIRROR_AXES, TrainConfig, parse_duration, parse_mirror_axes
from amoseg.training.splits import fold_cases, load_or_make_splits, make_splits


def cases(ct: int, mr: int) -> dict[str, str]:
    return {
        **{f"amos_{i:04d}": "CT" for i in range(1, ct + 1)},
        **{f"amos_{500 + i:04d}": "MR" for i in range(1, mr + 1)},
    }


def test_folds_partition_the_cases_and_stratify_by_modality():
    modality = cases(23, 11)
    splits = make_splits(modality, seed=0)
    assert len(splits) == 5
    vals = [set(fold["val"]) for fold in splits]
    assert set().union(*vals) == set(modality) and sum(map(len, vals)) == len(modality)
    for fold in splits:
        assert set(fold["train"]) == set(modality) - set(fold["val"])
        assert 6 <= len(fold["val"]) <= 7
        assert 2 <= sum(modality[case] == "MR" for case in fold["val"]) <= 3
    assert make_splits(dict(reversed(list(modality.items()))), seed=0) == splits
    assert make_splits(modality, seed=1) != splits


def test_folds_stratify_by_dataset_and_modality():
    # Two CT datasets of 10 and 5 cases and an MR one of 5: every fold's validation holds 2 + 1 + 1.
    strata = {
        **{f"a_{i}": "a/CT" for i in range(10)},
        **{f"b_{i}": "b/CT" for i in range(5)},
        **{f"c_{i}": "c/MR" for i in range(5)},
    }
    for fold in make_splits(strata, seed=3):
        counts = {
            stratum: sum(strata[case] == stratum for case in fold["val"])
            for stratum in ("a/CT", "b/CT", "c/MR")
        }
        assert counts == {"a/CT": 2, "b/CT": 1, "c/MR": 1}


def test_splits_are_written_once_and_reused(tmp_path):
    first = load_or_make_splits(tmp_path, cases(6, 3), seed=0)
    on_disk = json.loads((tmp_path / "splits.json").read_text())
    assert on_disk == first
    assert load_or_make_splits(tmp_path, cases(6, 3), seed=99) == first
    with pytest.raises(AmosegError, match="not in the preprocessed cache"):
        load_or_make_splits(tmp_path, cases(2, 1), seed=0)


def test_fold_all_trains_on_everything_and_bad_folds_are_refused():
    splits = make_splits(cases(6, 3), seed=0)
    train, val = fold_cases(splits, "all", 2)
    assert len(train) == 9 and len(val) == 2 and set(val) <= set(train)
    assert fold_cases(splits, "2")[1] == splits[2]["val"]
    with pytest.raises(AmosegError, match="does not exist"):
        fold_cases(splits[:3], "4")
    tiny = make_splits(cases(3, 1), seed=0)
    with pytest.raises(AmosegError, match="`fold` all"):
        fold_cases(tiny, "4")


def test_config_round_trip_and_validation(tmp_path):
    config = TrainConfig(fold="all", epochs=3, time_budget_s=parse_duration("1h30m"))
    assert config.time_budget_s == 5400
    config.save(tmp_path / "config.json")
    assert TrainConfig.load(tmp_path / "config.json") == config
    assert parse_duration("90s") == 90 and parse_duration("10m") == 600 and parse_duration("300") == 300
    for bad in ("soon", "10x", ""):
        with pytest.raises(AmosegError, match="not a duration"):
            parse_duration(bad)
    with pytest.raises(AmosegError, match="fold '7'"):
        TrainConfig(fold="7")
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.from_dict({"learning_rate": 1})


def test_no_mirroring_by_default_and_older_runs_keep_all_three_axes():
    assert TrainConfig().mirror_axes == DEFAULT_MIRROR_AXES == ()
    # A config.json of format 1 (before the setting existed) was trained mirroring every axis.
    written_before = {key: value for key, value in TrainConfig().to_dict().items() if key != "mirror_axes"}
    assert TrainConfig.from_dict({**written_before, "config_version": 1}).mirror_axes == (0, 1, 2)
    assert TrainConfig.from_dict(TrainConfig(mirror_axes=[2, 0]).to_dict()).mirror_axes == (0, 2)
    assert parse_mirror_axes("0,1,2") == (0, 1, 2) and parse_mirror_axes("none") == ()
    assert parse_mirror_axes(None) is None
    with pytest.raises(AmosegError, match="not axes"):
        parse_mirror_axes("x,y")
    for bad in ((3,), (1, 1)):
        with pytest.raises(AmosegError, match="mirror axes"):
            TrainConfig(mirror_axes=bad)
