"""Every card statistic against a direct numpy computation over the same voxels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from amoseg.cli import main
from amoseg.data.card import card_markdown, read_card
from amoseg.data.describe import describe_dataset
from amoseg.data.layout import discover
from amoseg.data.statistics import HISTOGRAM_LOW, OrganIntensity, _Distribution, _histogram_percentile
from amoseg.errors import InputError
from amoseg.io import LabelMap, make_geometry, read_image, read_label, write_image
from amoseg.labels import ORGAN_BY_ID
from helpers import real_dataset, write_box_dataset


def _direct(root):
    """Per modality and organ, every voxel value; per organ, per-case ratios and volumes."""
    values: dict[tuple[str, int], list[np.ndarray]] = {}
    ratios: dict[int, list[float]] = {}
    volumes: dict[int, list[float]] = {}
    dataset = discover(root)
    for case in dataset.cases:
        loaded = read_image(case.image)
        image, spacing = loaded.array.astype(np.float64), loaded.geometry.spacing
        label = read_label(case.label).array
        for organ_id in np.unique(label[label > 0]):
            if organ_id not in case.annotated_labels:
                continue
            mask = label == organ_id
            values.setdefault((case.modality, int(organ_id)), []).append(image[mask])
            ratios.setdefault(int(organ_id), []).append(mask.sum() / mask.size)
            volumes.setdefault(int(organ_id), []).append(mask.sum() * np.prod(spacing) / 1000)
    return dataset, values, ratios, volumes


def _assert_card_matches(card, root):
    dataset, values, ratios, volumes = _direct(root)
    for (modality, organ_id), chunks in values.items():
        voxels = np.concatenate(chunks)
        entry = card["intensity"][modality][ORGAN_BY_ID[organ_id].name]
        expected = {
            "min": voxels.min(),
            "p0.5": np.percentile(voxels, 0.5),
            "median": np.percentile(voxels, 50),
            "mean": voxels.mean(),
            "std": voxels.std(),
            "p99.5": np.percentile(voxels, 99.5),
            "max": voxels.max(),
        }
        for key, value in expected.items():
            assert entry[key] == pytest.approx(value, rel=1e-6, abs=1e-6), (modality, organ_id, key)
        assert entry["voxels"] == voxels.size
        assert entry["exact"] is True
    assert sum(len(organs) for organs in card["intensity"].values()) == len(values)
    for organ_id, organ_ratios in ratios.items():
        entry = card["labels"][ORGAN_BY_ID[organ_id].name]
        assert entry["instances"] == len(organ_ratios)
        for key, function in {"min": np.min, "median": np.median, "mean": np.mean, "max": np.max}.items():
            assert entry["voxel_ratio"][key] == pytest.approx(function(organ_ratios), rel=1e-9)
            assert entry["volume_cm3"][key] == pytest.approx(function(volumes[organ_id]), rel=1e-6)
    spacings = np.array([read_image(case.image).geometry.spacing for case in dataset.cases])
    shapes = np.array([read_image(case.image).array.shape for case in dataset.cases])
    np.testing.assert_allclose(card["resolution"]["spacing_mm"]["median"], np.median(spacings, axis=0))
    np.testing.assert_allclose(card["resolution"]["size"]["max"], shapes.max(axis=0))
    np.testing.assert_allclose(card["resolution"]["size"]["min"], shapes.min(axis=0))


def _vary(root, seed):
    """Give each case different organ sizes and intensities so that statistics are not trivial."""
    rng = np.random.default_rng(seed)
    for case in discover(root).cases:
        label = read_label(case.label)
        array = label.array.copy()
        array[rng.integers(0, 5) :, :, : rng.integers(1, 4)] = 0
        write_image(LabelMap(array, label.geometry), case.label)


def test_ct_and_mr_set_matches_numpy(tmp_path):
    root = write_box_dataset(tmp_path / "d", case_numbers=(1, 2, 3, 501, 502))
    _vary(root, seed=1)
    card = describe_dataset(root, tmp_path / "out", progress=False, plots=False, workers=1)
    assert card["meta"]["modalities"] == {"CT": 3, "MR": 2}
    _assert_card_matches(card, root)


def test_partially_labelled_set_reports_unannotated_organs(tmp_path):
    root = write_box_dataset(tmp_path / "d", case_numbers=(1, 2))
    meta = json.loads((root / "dataset.json").read_text())
    meta["annotated_labels"] = [6]
    (root / "dataset.json").write_text(json.dumps(meta))
    card = describe_dataset(root, tmp_path / "out", progress=False, plots=False, workers=1)
    assert card["labels"]["spleen"] == {"annotated": False}
    assert card["labels"]["liver"]["instances"] == 2
    assert "spleen" not in card["intensity"]["CT"]
    _assert_card_matches(card, root)
    table = (tmp_path / "out" / "stats.md").read_text()
    assert "| Spleen | not annotated |" in table


def test_float_values_past_the_budget_are_subsampled_and_marked(tmp_path):
    rng = np.random.default_rng(0)
    distribution = _Distribution(max_float_values=1000, seed=0)
    values = rng.normal(100, 10, 5000).astype(np.float32)
    for chunk in np.split(values, 5):
        distribution.add(OrganIntensity(chunk, None))
    summary = distribution.summary()
    assert summary["exact"] is False
    assert summary["sampled_fraction"] == 0.125
    assert summary["voxels"] == 5000
    assert summary["mean"] == pytest.approx(values.astype(np.float64).mean(), rel=1e-9)
    assert summary["min"] == values.min()
    assert summary["median"] == pytest.approx(np.median(values), abs=1.5)


@pytest.mark.parametrize("size", [1, 2, 3, 10, 201, 1000])
def test_histogram_percentiles_equal_numpy_linear(size):
    rng = np.random.default_rng(size)
    values = rng.integers(-200, 300, size)
    histogram = np.bincount(values - HISTOGRAM_LOW, minlength=-HISTOGRAM_LOW + 300)
    for q in (0, 0.5, 25, 50, 73.3, 99.5, 100):
        assert _histogram_percentile(histogram, q) == pytest.approx(np.percentile(values, q), abs=1e-9)


def test_unusable_cases_are_skipped_or_stop_with_strict(tmp_path, capsys):
    root = write_box_dataset(tmp_path / "d", case_numbers=(1, 2, 3))
    label = read_label(root / "labelsTr" / "amos_0002.nii.gz")
    moved = make_geometry(label.geometry.shape, (2.0, 2.0, 2.0))
    write_image(LabelMap(label.array, moved), root / "labelsTr" / "amos_0002.nii.gz")
    assert main(["stats", str(root), "-o", str(tmp_path / "strict"), "--strict", "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert "amos_0002: label and image grids differ" in err
    assert not (tmp_path / "strict" / "stats.json").exists()
    assert main(["stats", str(root), "-o", str(tmp_path / "lenient"), "--no-plots"]) == 0
    card = json.loads((tmp_path / "lenient" / "stats.json").read_text())
    assert card["meta"]["cases"] == 2
    assert card["meta"]["skipped_cases"][0].startswith("amos_0002: label and image grids differ")


def test_outputs_and_fingerprint(tmp_path):
    root = write_box_dataset(tmp_path / "d", case_numbers=(1, 501))
    describe_dataset(root, tmp_path / "out", progress=False, workers=1)
    names = {path.name for path in (tmp_path / "out").iterdir()}
    assert {
        "stats.json",
        "stats.md",
        "fingerprint.json",
        "meta.csv",
        "resolution.csv",
        "intensity_ct.csv",
        "intensity_mr.csv",
        "labels.csv",
        "volumes.png",
        "intensity_ct.png",
        "intensity_mr.png",
        "spacing.png",
    } <= names
    fingerprint = json.loads((tmp_path / "out" / "fingerprint.json").read_text())
    assert set(fingerprint["foreground_intensity"]) == {"CT", "MR"}
    ct = read_image(root / "imagesTr" / "amos_0001.nii.gz").array
    ct_label = read_label(root / "labelsTr" / "amos_0001.nii.gz").array
    assert fingerprint["foreground_intensity"]["CT"]["mean"] == pytest.approx(ct[ct_label > 0].mean())
    # Box CT has -1000 air everywhere outside a one-voxel rim: nothing is zero, no crop.
    assert fingerprint["cases"][0]["shape_after_crop"] == list(ct.shape)


def test_real_mr_set_matches_numpy(tmp_path):
    root = real_dataset("chaos-mr")
    card = describe_dataset(root, tmp_path / "out", progress=False, plots=False)
    assert card["meta"]["cases"] == 16
    _assert_card_matches(card, root)


def test_phantom_ct_and_mr_set_matches_numpy(phantom_dataset, tmp_path):
    assert main(["stats", str(phantom_dataset), "-o", str(tmp_path / "out")]) == 0
    card = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert card["meta"]["modalities"] == {"CT": 4, "MR": 2}
    assert card["meta"]["splits"] == {"train": 4, "test": 2}
    assert all(card["labels"][organ.name]["instances"] == 6 for organ in ORGAN_BY_ID.values())
    _assert_card_matches(card, phantom_dataset)
    markdown = (tmp_path / "out" / "stats.md").read_text()
    for heading in (
        "Dataset Meta Information",
        "Resolution Details",
        "CT Intensity Information Statistics",
        "MR Intensity Information Statistics",
        "Label Information Statistics",
    ):
        assert f"## {heading}" in markdown
    assert read_card(tmp_path / "out" / "stats.json") == card
    assert card_markdown(read_card(tmp_path / "out" / "stats.json")) == markdown  # the report renders it
    del card["meta"]
    (tmp_path / "damaged.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="not an amoseg dataset card"):
        read_card(tmp_path / "damaged.json")


def test_organ_measures_cover_the_annotated_organs_present_and_match_their_voxels():
    from amoseg.data.statistics import case_statistics
    from helpers import box_case

    image, label = box_case(spacing=(1.5, 1.5, 4.0), origin=(10.0, -20.0, 5.0))
    both = case_statistics("amos_0001", "CT", "train", image, label, (1, 6))
    liver = both.organ_measures[6]
    # The box liver: 8 x 9 x 6 voxels of 9 mm3, slices 2..7 at z = 5 + 4 k: median height 23 mm.
    assert liver.volume_ml == pytest.approx(8 * 9 * 6 * 1.5 * 1.5 * 4.0 / 1000)
    assert liver.intensity_mean == pytest.approx(float(image.array[label.array == 6].mean()))
    assert liver.centre_superior_mm == pytest.approx(23.0) and not liver.touches_edge
    # An organ the case does not annotate is no sample of that organ; an unlabelled case has none.
    assert set(case_statistics("amos_0001", "CT", "train", image, label, (6,)).organ_measures) == {6}
    assert case_statistics("amos_0001", "CT", "test", image, None, (1, 6)).organ_measures == {}
