"""Synthetic phantoms: determinism, organs, anatomy in world coordinates, intensities, written datasets.

Expected values come from the AMOS dataset card and from anatomy, not from the generator's own tables,
and positions are computed here from the label arrays and their geometry.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from amoseg.data import phantom
from amoseg.data.layout import discover
from amoseg.data.phantom import generate_case, write_phantom_dataset
from amoseg.errors import AmosegError
from amoseg.io import read_image, read_label
from amoseg.io.image import LabelMap
from amoseg.labels import ORGAN_BY_NAME, ORGANS

ORGAN_IDS = range(1, 16)
# Dataset card, "CT/MR Intensity Information Statistics": liver mean and std.
CARD_CT_LIVER_MEAN_HU, CARD_CT_LIVER_STD_HU = 47.95, 18.58
CARD_MR_LIVER_MEAN = 170.95

LIVER, SPLEEN = ORGAN_BY_NAME["liver"].id, ORGAN_BY_NAME["spleen"].id
RIGHT_KIDNEY, LEFT_KIDNEY = ORGAN_BY_NAME["right_kidney"].id, ORGAN_BY_NAME["left_kidney"].id
RIGHT_ADRENAL, LEFT_ADRENAL = ORGAN_BY_NAME["right_adrenal_gland"].id, ORGAN_BY_NAME["left_adrenal_gland"].id
AORTA, IVC = ORGAN_BY_NAME["aorta"].id, ORGAN_BY_NAME["inferior_vena_cava"].id
GALLBLADDER, STOMACH = ORGAN_BY_NAME["gallbladder"].id, ORGAN_BY_NAME["stomach"].id
ESOPHAGUS, PANCREAS = ORGAN_BY_NAME["esophagus"].id, ORGAN_BY_NAME["pancreas"].id
BLADDER, PROSTATE_UTERUS = ORGAN_BY_NAME["bladder"].id, ORGAN_BY_NAME["prostate_uterus"].id


def _rotation(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = math.radians(degrees)
    return np.eye(3) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


# Columns: world (LPS) direction of array axes x, y, z.
DIRECTIONS = {
    "axial LPS": np.eye(3),
    "RAS": np.diag([-1.0, -1.0, 1.0]),
    "LAS": np.diag([1.0, -1.0, 1.0]),
    "oblique": _rotation((1, -2, 0.5), 7.0),
    "oblique RAS": _rotation((0.3, 1, 1), 5.0) @ np.diag([-1.0, -1.0, 1.0]),
    "coronal, feet first": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
}


def world_points(label: LabelMap, organ: int) -> np.ndarray:
    """World (LPS, mm) positions of an organ's voxels, shape (n, 3)."""
    index = np.argwhere(label.array == organ).astype(float)
    geometry = label.geometry
    return np.asarray(geometry.origin) + (index * np.asarray(geometry.spacing)) @ geometry.direction_matrix.T


def centroid(label: LabelMap, organ: int) -> np.ndarray:
    return world_points(label, organ).mean(axis=0)


@pytest.fixture(scope="module")
def default_cases():
    """Cases at their drawn default geometry: CT and MR, both sexes, axial and non-axial grids."""
    return {
        number: generate_case(number, "CT" if number <= 500 else "MR", seed=0)
        for number in (1, 2, 3, 4, 8, 501, 504)
    }


@pytest.fixture(scope="module")
def oriented_cases():
    """One case sampled on grids of every orientation in DIRECTIONS."""
    return {name: generate_case(3, "CT", seed=0, direction=matrix) for name, matrix in DIRECTIONS.items()}


def test_same_seed_gives_byte_identical_cases():
    for modality, number in (("CT", 7), ("MR", 507)):
        first_image, first_label = generate_case(number, modality, seed=11, shape=(48, 48, 24))
        second_image, second_label = generate_case(number, modality, seed=11, shape=(48, 48, 24))
        assert first_image.array.tobytes() == second_image.array.tobytes()
        assert first_label.array.tobytes() == second_label.array.tobytes()
        assert first_image.geometry == second_image.geometry


def test_cases_and_seeds_differ():
    _, case_one = generate_case(1, "CT", seed=0, shape=(48, 48, 24))
    _, case_two = generate_case(2, "CT", seed=0, shape=(48, 48, 24))
    _, case_one_other_seed = generate_case(1, "CT", seed=1, shape=(48, 48, 24))
    assert not np.array_equal(case_one.array, case_two.array)
    assert not np.array_equal(case_one.array, case_one_other_seed.array)


def test_every_case_holds_all_15_organs_and_nothing_else(default_cases):
    for number, (image, label) in default_cases.items():
        assert label.array.dtype == np.uint8
        assert image.array.dtype == np.int16
        counts = np.bincount(label.array.ravel(), minlength=16)
        assert counts.size == 16, f"case {number}: label above 15"
        missing = [organ.name for organ in ORGANS if counts[organ.id] == 0]
        assert not missing, f"case {number} lacks {missing}"
        assert image.geometry == label.geometry


@pytest.mark.parametrize("shape", [(24, 24, 10), (40, 40, 16)])
def test_coarse_grids_keep_every_organ(shape):
    for number in (1, 2, 501):
        _, label = generate_case(number, "CT" if number <= 500 else "MR", seed=3, shape=shape)
        counts = np.bincount(label.array.ravel(), minlength=16)
        assert counts.size == 16
        assert all(counts[organ] > 0 for organ in ORGAN_IDS), f"shape {shape}, case {number}: {counts}"


def test_both_sexes_occur_and_can_be_asked_for():
    for sex in ("male", "female"):
        _, label = generate_case(5, "CT", seed=0, shape=(48, 48, 24), sex=sex)
        assert np.any(label.array == PROSTATE_UTERUS)
    _, male = generate_case(5, "CT", seed=0, shape=(64, 64, 32), sex="male")
    _, female = generate_case(5, "CT", seed=0, shape=(64, 64, 32), sex="female")
    # A prostate lies below the bladder, an anteverted uterus above and behind it.
    assert centroid(male, PROSTATE_UTERUS)[2] < centroid(male, BLADDER)[2]
    assert centroid(female, PROSTATE_UTERUS)[2] > centroid(female, BLADDER)[2]


def _check_anatomy(label: LabelMap, where: str) -> None:
    """LPS: +x is the patient's left, +y posterior, +z superior."""
    c = {organ: centroid(label, organ) for organ in ORGAN_IDS}
    x, y, z = 0, 1, 2
    assert c[LIVER][x] < c[SPLEEN][x] - 50, f"{where}: liver is not to the right of the spleen"
    assert c[RIGHT_KIDNEY][x] < c[LEFT_KIDNEY][x] - 80, f"{where}: kidneys swapped"
    assert c[IVC][x] < c[AORTA][x] - 15, f"{where}: aorta is not left of the IVC"
    assert c[BLADDER][z] < c[LIVER][z] - 100, f"{where}: bladder is not below the liver"
    assert c[SPLEEN][y] > c[LIVER][y], f"{where}: spleen is not posterior to the liver"
    assert c[STOMACH][x] > c[LIVER][x] + 50, f"{where}: stomach is not on the left"
    assert c[GALLBLADDER][z] < c[LIVER][z], f"{where}: gallbladder is not under the liver"
    assert c[GALLBLADDER][x] < c[AORTA][x], f"{where}: gallbladder is not on the right"
    assert c[ESOPHAGUS][z] > c[STOMACH][z], f"{where}: esophagus is not above the stomach"
    assert c[RIGHT_ADRENAL][z] > c[RIGHT_KIDNEY][z] and c[LEFT_ADRENAL][z] > c[LEFT_KIDNEY][z]
    assert c[RIGHT_ADRENAL][x] < c[LEFT_ADRENAL][x], f"{where}: adrenals swapped"
    assert c[PROSTATE_UTERUS][z] < c[LIVER][z] - 100, f"{where}: prostate/uterus is not in the pelvis"
    # The pancreas crosses the midline, in front of the aorta.
    pancreas_x = world_points(label, PANCREAS)[:, x]
    assert pancreas_x.min() < c[AORTA][x] < pancreas_x.max(), f"{where}: pancreas does not cross the aorta"
    assert c[PANCREAS][y] < c[AORTA][y], f"{where}: pancreas is not anterior to the aorta"


def test_anatomy_in_world_coordinates_on_default_grids(default_cases):
    for number, (_, label) in default_cases.items():
        _check_anatomy(label, f"case {number}")


@pytest.mark.parametrize("name", list(DIRECTIONS))
def test_anatomy_in_world_coordinates_on_any_grid(oriented_cases, name):
    _, label = oriented_cases[name]
    assert np.allclose(label.geometry.direction_matrix, DIRECTIONS[name])
    _check_anatomy(label, name)


def test_a_case_stays_in_place_in_the_world_whatever_its_grid(oriented_cases):
    _, reference = oriented_cases["axial LPS"]
    for name, (_, label) in oriented_cases.items():
        tolerance_mm = max(label.geometry.spacing)
        for organ in ORGAN_IDS:
            shift = np.linalg.norm(centroid(label, organ) - centroid(reference, organ))
            assert shift < tolerance_mm, f"{name}: organ {organ} moved {shift:.1f} mm"


def test_default_geometry_is_small_varied_and_covers_the_body(default_cases):
    directions = []
    for number, (image, _) in default_cases.items():
        geometry = image.geometry
        in_plane = sorted(geometry.shape)[1:]
        assert all(96 <= size <= 160 for size in in_plane), geometry.shape
        assert 32 <= min(geometry.shape) <= 64, geometry.shape
        assert min(geometry.spacing) >= 2.5 and max(geometry.spacing) <= 6.5, geometry.spacing
        assert np.linalg.norm(geometry.origin) > 50, "origins should look like a scanner's, not zero"
        # The body fits in plane: the first and last columns and rows of every slice are air.
        array = image.array
        outside = array.min() + (200 if number <= 500 else 30)
        borders = np.concatenate([array[[0, -1], :, :].ravel(), array[:, [0, -1], :].ravel()])
        assert np.mean(borders < outside) > 0.99, f"case {number}: body touches the in-plane border"
        directions.append(geometry.direction_matrix)
    assert sum(not np.allclose(matrix, np.eye(3)) for matrix in directions) >= 2


def test_explicit_shape_and_spacing_are_honoured():
    image, _ = generate_case(1, "CT", seed=0, shape=(40, 50, 20))
    assert image.geometry.shape == (40, 50, 20)
    image, _ = generate_case(1, "CT", seed=0, spacing=(4.0, 4.0, 8.0))
    assert image.geometry.spacing == (4.0, 4.0, 8.0)
    image, _ = generate_case(1, "CT", seed=0, shape=(30, 30, 12), spacing=(12.0, 12.0, 24.0))
    assert (image.geometry.shape, image.geometry.spacing) == ((30, 30, 12), (12.0, 12.0, 24.0))


def test_ct_intensities_follow_the_dataset_card(default_cases):
    for number in (1, 2):
        image, label = default_cases[number]
        # Erode away the rim where partial volume mixes the liver with its neighbours.
        liver = ndimage.binary_erosion(label.array == LIVER, iterations=2)
        assert liver.sum() > 1000
        values = image.array[liver].astype(float)
        assert abs(values.mean() - CARD_CT_LIVER_MEAN_HU) < 3.0
        assert abs(values.std() - CARD_CT_LIVER_STD_HU) < 3.0
        assert image.array[:4, :4, :].mean() < -980  # air outside the body


def test_mr_intensities_follow_the_dataset_card(default_cases):
    for number in (501, 504):
        image, label = default_cases[number]
        liver = ndimage.binary_erosion(label.array == LIVER, iterations=2)
        mean = image.array[liver].astype(float).mean()
        # The bias field moves an organ by a few percent.
        assert abs(mean - CARD_MR_LIVER_MEAN) < 0.08 * CARD_MR_LIVER_MEAN
        assert image.array.min() >= 0
        assert image.array[:4, :4, :].mean() < 20  # background


def _expected_test_count(n_cases: int, fraction: float) -> int:
    return 0 if n_cases < 2 else max(1, round(fraction * n_cases))


def test_written_dataset_is_discovered_with_its_splits_and_modalities(tmp_path: Path):
    root = write_phantom_dataset(
        tmp_path / "phantoms", n_ct=3, n_mr=2, seed=1, test_fraction=0.4, workers=1, progress=False
    )
    assert root == tmp_path / "phantoms"
    dataset = discover(root)
    assert not dataset.problems
    assert dataset.labels == {organ.id: organ.name for organ in ORGANS}
    ids = {case.case_id: case for case in dataset.cases}
    assert sorted(ids) == ["amos_0001", "amos_0002", "amos_0003", "amos_0501", "amos_0502"]
    for case in dataset.cases:
        assert case.modality == ("CT" if int(case.case_id[-4:]) <= 500 else "MR")
        assert case.label is not None and case.label.is_file() and case.image.is_file()
        folder = "imagesTr" if case.split == "train" else "imagesTs"
        assert case.image.parent.name == folder
    for modality, count in (("CT", 3), ("MR", 2)):
        tests = [case for case in dataset.cases if case.modality == modality and case.split == "test"]
        assert len(tests) == _expected_test_count(count, 0.4)
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["numTraining"] == len(dataset.split("train"))
    assert meta["file_ending"] == ".nii.gz"
    assert meta["labels"]["background"] == 0 and meta["labels"]["prostate_uterus"] == 15
    assert "channel_names" not in meta and "modality" not in meta
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]

    case = ids["amos_0501"]
    image, label = read_image(case.image), read_label(case.label)
    assert image.geometry.differences(label.geometry) == []
    assert set(np.unique(label.array).tolist()) == set(range(16))
    assert image.array.min() >= 0


def test_parallel_writing_gives_the_same_files_as_serial(tmp_path: Path):
    serial = write_phantom_dataset(tmp_path / "serial", n_ct=2, n_mr=1, seed=4, workers=1, progress=False)
    parallel = write_phantom_dataset(tmp_path / "parallel", n_ct=2, n_mr=1, seed=4, workers=2, progress=False)
    files = sorted(path.relative_to(serial) for path in serial.rglob("*.nii.gz"))
    assert files == sorted(path.relative_to(parallel) for path in parallel.rglob("*.nii.gz"))
    assert len(files) == 6
    for relative in files:
        assert np.array_equal(read_image(serial / relative).array, read_image(parallel / relative).array)
    assert json.loads((serial / "dataset.json").read_text()) == json.loads(
        (parallel / "dataset.json").read_text()
    )


def test_refuses_a_folder_that_is_not_empty(tmp_path: Path):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(AmosegError, match="not an empty folder"):
        write_phantom_dataset(occupied, n_ct=1, n_mr=0, seed=0, workers=1, progress=False)
    assert (occupied / "notes.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    write_phantom_dataset(empty, n_ct=1, n_mr=0, seed=0, workers=1, progress=False)
    assert (empty / "dataset.json").is_file()


@pytest.mark.parametrize(
    "request_args",
    [
        {"n_ct": 501, "n_mr": 0},
        {"n_ct": 0, "n_mr": 0},
        {"n_ct": -1, "n_mr": 2},
        {"n_ct": 2, "n_mr": 2, "test_fraction": 1.0},
        {"n_ct": 2, "n_mr": 2, "workers": 0},
    ],
)
def test_refuses_impossible_requests(tmp_path: Path, request_args):
    arguments = {"seed": 0, "test_fraction": 0.25, "workers": 1, "progress": False, **request_args}
    with pytest.raises(AmosegError):
        write_phantom_dataset(tmp_path / "out", **arguments)
    assert not list(tmp_path.iterdir())


def test_a_failure_part_way_leaves_nothing_behind(tmp_path: Path, monkeypatch):
    from amoseg.data.phantom import writer

    written = []

    def failing_write_case(folder, case, seed, annotated=None):
        if written:
            raise RuntimeError("disk full")
        written.append(case.case_id)
        return original(folder, case, seed, annotated)

    original = writer.write_case
    monkeypatch.setattr(writer, "write_case", failing_write_case)
    with pytest.raises(RuntimeError, match="disk full"):
        write_phantom_dataset(tmp_path / "out", n_ct=3, n_mr=0, seed=0, workers=1, progress=False)
    assert written and not list(tmp_path.iterdir())


def test_public_names():
    assert phantom.generate_case is generate_case
    assert phantom.write_phantom_dataset is write_phantom_dataset


def test_a_partially_labelled_set_keeps_the_images_and_only_the_annotated_organs(tmp_path, capsys):
    from amoseg.cli import main
    from amoseg.io import read_image, read_label

    full = tmp_path / "full"
    partial = tmp_path / "partial"
    for folder, extra in ((full, []), (partial, ["--annotated", "spleen,2,3,liver"])):
        assert main(["phantom", str(folder), "--ct", "1", "--mr", "1", "--test-fraction", "0", *extra]) == 0
    assert json.loads((partial / "dataset.json").read_text())["annotated_labels"] == [1, 2, 3, 6]
    assert "annotated_labels" not in json.loads((full / "dataset.json").read_text())
    for case in ("amos_0001", "amos_0501"):
        full_label = read_label(full / "labelsTr" / f"{case}.nii.gz").array
        partial_label = read_label(partial / "labelsTr" / f"{case}.nii.gz").array
        np.testing.assert_array_equal(
            partial_label, np.where(np.isin(full_label, [1, 2, 3, 6]), full_label, 0)
        )
        assert set(np.unique(full_label)) > {0, 1, 2, 3, 6}  # there was more to leave out
        image = read_image(partial / "imagesTr" / f"{case}.nii.gz").array
        np.testing.assert_array_equal(image, read_image(full / "imagesTr" / f"{case}.nii.gz").array)
    capsys.readouterr()
    assert main(["phantom", str(tmp_path / "bad"), "--ct", "1", "--mr", "0", "--annotated", "1,99"]) == 1
    assert "label id 99 is not an AMOS organ" in capsys.readouterr().err
