"""The Fingerprint: typed round trip, version refusal, orientation from the stats stage, and the quality
reference it carries."""

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
)
from amoseg.data.phantom import generate_case
from amoseg.errors import InputError
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


# The quality reference: measured by `amoseg stats`, optional in the file.


def _hand_measures(image, label) -> dict[int, tuple[float, float, float, bool]]:
    """Per organ (volume mL, mean intensity, median world z, touches a face), from the voxels directly."""
    measures = {}
    affine = label.geometry.affine_lps()
    shape = np.array(label.array.shape)
    for organ in range(1, 16):
        where = np.argwhere(label.array == organ)
        if where.size == 0:
            continue
        heights = (np.c_[where, np.ones(len(where))] @ affine.T)[:, 2]
        touches = bool((where.min(axis=0) == 0).any() or (where.max(axis=0) == shape - 1).any())
        volume = len(where) * float(np.prod(label.geometry.spacing)) / 1000.0
        mean = float(image.array[label.array == organ].astype(np.float64).mean())
        measures[organ] = (volume, mean, float(np.median(heights)), touches)
    return measures


def test_stats_measures_each_organ_of_the_training_cases_for_the_quality_reference(phantom_dataset, tmp_path):
    from amoseg.io import read_image, read_label

    describe_dataset(phantom_dataset, tmp_path / "stats", plots=False, progress=False, workers=1)
    reference = Fingerprint.load(tmp_path / "stats").quality_reference
    # The labelled training cases, read back from the files; the labelled test cases stay out.
    measured = {"CT": [], "MR": []}
    for label_file in sorted((phantom_dataset / "labelsTr").glob("*.nii.gz")):
        image = read_image(phantom_dataset / "imagesTr" / label_file.name)
        modality = "CT" if int(label_file.name[5:9]) <= 500 else "MR"
        measured[modality].append(_hand_measures(image, read_label(label_file)))
    assert {modality: item.cases for modality, item in reference.modalities.items()} == {"CT": 3, "MR": 1}
    for modality, cases in measured.items():
        organs = reference.for_modality(modality).organs
        for organ in range(1, 16):
            whole = [case[organ] for case in cases if organ in case and not case[organ][3]]
            volumes = [item[0] for item in whole]
            expected = (min(volumes), max(volumes), len(volumes)) if volumes else None
            got = organs[organ].volume_ml
            assert (None if got is None else (got.min, got.max, got.cases)) == pytest.approx(expected), organ
            means = [case[organ][1] for case in cases if organ in case]
            assert (organs[organ].intensity_mean.min, organs[organ].intensity_mean.max) == pytest.approx(
                (min(means), max(means))
            )
            beside = {
                other
                for case in cases
                for other in case
                if other != organ and organ in case and not case[organ][3] and not case[other][3]
            }
            assert set(organs[organ].centre_above_mm) == beside
            for other, observed in organs[organ].centre_above_mm.items():
                heights = [
                    case[organ][2] - case[other][2]
                    for case in cases
                    if organ in case and other in case and not case[organ][3] and not case[other][3]
                ]
                assert (observed.min, observed.max, observed.cases) == pytest.approx(
                    (min(heights), max(heights), len(heights))
                )
    liver = reference.for_modality("CT").organs[6]
    assert liver.volume_ml.cases == 3 and len(liver.centre_above_mm) >= 10  # real work was checked above


def test_a_fingerprint_with_its_quality_reference_reads_back_as_written(ct, tmp_path):
    with_reference = dataclasses.replace(ct, quality_reference=_reference("CT", 2, 1500.0))
    with_reference.save(tmp_path)
    stored = json.loads(fingerprint_path(tmp_path).read_text())
    assert stored["quality_reference"]["CT"]["organs"]["liver"]["volume_ml"] == {
        "min": 1500.0,
        "max": 1500.0,
        "cases": 2,
    }
    assert Fingerprint.load(tmp_path) == with_reference
    ct.save(tmp_path)
    assert "quality_reference" not in json.loads(fingerprint_path(tmp_path).read_text())
    assert Fingerprint.load(tmp_path).quality_reference is None


def test_a_format_2_fingerprint_without_the_reference_still_loads_and_plans(ct, tmp_path):
    data = ct.to_dict()
    data["fingerprint_version"] = 2
    fingerprint_path(tmp_path).write_text(json.dumps(data))
    loaded = Fingerprint.load(tmp_path)
    assert loaded == ct and loaded.quality_reference is None
    assert make_plan(loaded, "cpu").quality_reference is None
    data["quality_reference"] = _reference("CT", 2, 1500.0).to_dict()
    fingerprint_path(tmp_path).write_text(json.dumps(data))
    with pytest.raises(InputError, match="format-2 fingerprint cannot hold a quality_reference"):
        Fingerprint.load(tmp_path)


def test_a_quality_reference_with_unknown_content_is_refused_in_one_line(ct, tmp_path):
    data = dataclasses.replace(ct, quality_reference=_reference("CT", 2, 1500.0)).to_dict()
    data["quality_reference"]["CT"]["organs"]["liver"]["volume_ml"]["p50"] = 1.0
    fingerprint_path(tmp_path).write_text(json.dumps(data))
    with pytest.raises(InputError, match="unknown range keys") as caught:
        Fingerprint.load(tmp_path)
    assert "\n" not in str(caught.value)


def _reference(modality: str, cases: int, liver_ml: float):
    from amoseg.data.reference import ModalityReference, ObservedRange, OrganReference, QualityReference

    liver = OrganReference(volume_ml=ObservedRange(liver_ml, liver_ml, cases))
    return QualityReference({modality: ModalityReference("training", cases, {6: liver})})
