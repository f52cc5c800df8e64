"""The Fingerprint: typed round trip, version refusal, orientation from the stats stage, and merging."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from amoseg.cli import main
from amoseg.data.describe import describe_dataset
from amoseg.data.fingerprint import (
    FINGERPRINT_VERSION,
    Fingerprint,
    FingerprintCase,
    IntensityStatistics,
    fingerprint_path,
    merge_fingerprints,
)
from amoseg.data.phantom import generate_case
from amoseg.errors import AmosegError, InputError
from amoseg.io import write_image
from amoseg.io.orientation import canonical_reorientation
from amoseg.planning import make_plan, plan_dataset

CT_INTENSITY = IntensityStatistics(
    min=-125.0, p0_5=-100.0, median=90.0, mean=85.0, std=50.0, p99_5=260.0, max=400.0, voxels=5000
)
MR_INTENSITY = IntensityStatistics(
    min=0.0, p0_5=40.0, median=300.0, mean=320.0, std=120.0, p99_5=900.0, max=1200.0, voxels=3000,
    exact=False, sampled_fraction=0.5,
)  # fmt: skip


def _fingerprint(name: str, modality: str, case_ids: list[str], spacing, shape, intensity) -> Fingerprint:
    cases = tuple(
        FingerprintCase(case_id, modality, "train", spacing, shape, shape, True, (0, 1, 2))
        for case_id in case_ids
    )
    return Fingerprint(dataset=name, cases=cases, foreground_intensity={modality: intensity})


@pytest.fixture
def ct():
    return _fingerprint(
        "btcv-ct", "CT", ["btcv_0001", "btcv_0002"], (1.3, 1.3, 3.0), (257, 257, 140), CT_INTENSITY
    )


@pytest.fixture
def mr():
    return _fingerprint("chaos-mr", "MR", ["chaos_0005"], (1.25, 1.25, 7.7), (256, 256, 36), MR_INTENSITY)


def test_json_round_trip_is_exact(ct, tmp_path):
    ct.save(tmp_path)
    stored = json.loads(fingerprint_path(tmp_path).read_text())
    assert stored["fingerprint_version"] == FINGERPRINT_VERSION
    assert stored["foreground_intensity"]["CT"]["p0.5"] == -100.0
    assert stored["cases"][0]["axis_permutation"] == [0, 1, 2]
    assert Fingerprint.load(tmp_path) == ct
    assert Fingerprint.from_dict(json.loads(json.dumps(ct.to_dict()))) == ct


def test_fingerprint_is_frozen_all_the_way_down(ct):
    with pytest.raises(dataclasses.FrozenInstanceError):
        ct.cases[0].case_id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ct.foreground_intensity["MR"] = MR_INTENSITY  # type: ignore[index]


def test_unknown_keys_and_newer_formats_are_refused(ct):
    data = ct.to_dict()
    with pytest.raises(ValueError, match="unknown keys"):
        Fingerprint.from_dict({**data, "extra": 1})
    with pytest.raises(ValueError, match="unknown case keys"):
        Fingerprint.from_dict({**data, "cases": [{**data["cases"][0], "typo": 1}]})
    with pytest.raises(ValueError, match="newer"):
        Fingerprint.from_dict({**data, "fingerprint_version": FINGERPRINT_VERSION + 1})


def test_an_older_fingerprint_is_refused_in_one_line_that_says_to_rerun_stats(ct, tmp_path):
    data = ct.to_dict()
    data["fingerprint_version"] = 1
    for case in data["cases"]:
        del case["axis_permutation"]  # version 1 did not record the orientation
    fingerprint_path(tmp_path).write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"older than this amoseg's .* rerun `amoseg stats`") as caught:
        Fingerprint.load(tmp_path)
    assert "\n" not in str(caught.value)


def test_stats_records_each_cases_orientation_and_rerunning_stats_replaces_an_older_file(tmp_path):
    # A sagittal acquisition: file axis 0 runs along world z, so canonical x is file axis 1.
    direction = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    image, label = generate_case(1, "CT", seed=0, shape=(24, 28, 20), direction=direction)
    dataset = tmp_path / "dataset"
    (dataset / "imagesTr").mkdir(parents=True)
    (dataset / "labelsTr").mkdir()
    write_image(image, dataset / "imagesTr" / "amos_0001.nii.gz")
    write_image(label, dataset / "labelsTr" / "amos_0001.nii.gz")
    stats = tmp_path / "stats"
    fingerprint_path(stats).parent.mkdir()
    fingerprint_path(stats).write_text(json.dumps({"fingerprint_version": 1, "cases": []}))
    with pytest.raises(InputError, match="rerun `amoseg stats`"):
        Fingerprint.load(stats)
    assert main(["stats", str(dataset), "-o", str(stats), "--no-plots", "--workers", "1"]) == 0
    (case,) = Fingerprint.load(stats).cases
    expected = canonical_reorientation(image.geometry.direction).permutation
    assert case.axis_permutation == expected == (1, 2, 0)
    spacing = [image.geometry.spacing[axis] for axis in expected]
    assert case.canonical_spacing_mm == pytest.approx(spacing, rel=1e-6)  # the header stores float32


def test_plan_never_uses_an_older_fingerprint(box_dataset, tmp_path, capsys):
    describe_dataset(box_dataset, tmp_path / "stats", plots=False, progress=False, workers=1)
    data = json.loads(fingerprint_path(tmp_path / "stats").read_text())
    data["fingerprint_version"] = 1
    fingerprint_path(tmp_path / "stats").write_text(json.dumps(data))
    # Planning alone refuses it, naming the file and what to do ...
    with pytest.raises(InputError, match="rerun `amoseg stats`"):
        plan_dataset(box_dataset, preset="fast", output=tmp_path / "p.json", stats=tmp_path / "stats")
    # ... and `amoseg plan`, which computes a fingerprint it lacks, computes this one again.
    assert main(["plan", str(box_dataset), "-o", str(tmp_path / "plans.json")]) == 0
    assert "No usable fingerprint in" in capsys.readouterr().out
    assert (
        json.loads(fingerprint_path(tmp_path / "stats").read_text())["fingerprint_version"]
        == FINGERPRINT_VERSION
    )
    assert (tmp_path / "plans.json").is_file()


def test_merge_keeps_every_case_and_each_modalitys_intensity(ct, mr):
    merged = merge_fingerprints([ct, mr])
    assert merged.dataset == "btcv-ct+chaos-mr"
    assert [case.case_id for case in merged.cases] == ["btcv_0001", "btcv_0002", "chaos_0005"]
    assert merged.cases[2] == mr.cases[0]
    assert dict(merged.foreground_intensity) == {"CT": CT_INTENSITY, "MR": MR_INTENSITY}
    assert merge_fingerprints([ct, mr], name="joint").dataset == "joint"


def test_merged_fingerprint_plans_ct_from_the_ct_set_and_mr_per_image(ct, mr):
    plan = make_plan(merge_fingerprints([ct, mr]), "cpu")
    assert plan.dataset == "btcv-ct+chaos-mr"
    assert plan.normalization["CT"].clip_low == CT_INTENSITY.p0_5
    assert plan.normalization["CT"].mean == CT_INTENSITY.mean
    assert plan.normalization["MR"].method == "per_image_body"


def test_merge_refuses_a_case_in_two_fingerprints(ct):
    other = _fingerprint("copy", "MR", ["btcv_0002"], (1.0, 1.0, 1.0), (10, 10, 10), MR_INTENSITY)
    with pytest.raises(AmosegError, match="btcv_0002 is in both btcv-ct and copy"):
        merge_fingerprints([ct, other])


def test_merge_refuses_one_modalitys_statistics_from_two_sets(ct):
    other = _fingerprint("more-ct", "CT", ["ct_0001"], (1.0, 1.0, 1.0), (10, 10, 10), CT_INTENSITY)
    with pytest.raises(AmosegError, match="CT foreground intensities come from both btcv-ct and more-ct"):
        merge_fingerprints([ct, other])


def test_merge_refuses_nothing():
    with pytest.raises(AmosegError, match="no fingerprint"):
        merge_fingerprints([])
