"""Quality flags on phantoms: a swollen or shrunk liver, a missing organ inside and outside the scan,
a liver cut in two, shifted intensities, organs the training data lacks checked against the AMOS card;
every value checked against voxels counted here or numbers copied from the card."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from amoseg.data.amos_card import amos_card_reference
from amoseg.data.fingerprint import build_fingerprint
from amoseg.data.phantom import generate_case
from amoseg.data.reference import (
    MIN_REFERENCE_CASES,
    ModalityReference,
    ObservedRange,
    OrganReference,
    QualityReference,
    with_fallback,
)
from amoseg.data.statistics import StatisticsAccumulator, case_statistics
from amoseg.inference.quality import LARGE_PIECE_FRACTION, legend_flags, organ_report
from amoseg.io.image import Image, LabelMap, make_geometry
from amoseg.labels import ORGAN_IDS, ORGANS

SHAPE = (64, 64, 40)  # spacing chosen by the phantom so the grid covers the body: about 6 x 6 x 7 mm
TRAINING = range(1, MIN_REFERENCE_CASES + 1)
SPLEEN, GALLBLADDER, LIVER, PANCREAS, BLADDER, PROSTATE = 1, 4, 6, 10, 14, 15
#: BTCV's organs: it never annotates the duodenum, the bladder and the prostate/uterus.
BTCV_ORGANS = tuple(range(1, 13))
LABELS = {organ.id: organ.name for organ in ORGANS}


def _touches_edge(mask: np.ndarray) -> bool:
    where = np.argwhere(mask)
    return bool((where.min(axis=0) == 0).any() or (where.max(axis=0) == np.array(mask.shape) - 1).any())


def _voxel_ml(label: LabelMap) -> float:
    return float(np.prod(label.geometry.spacing)) / 1000.0


def _median_height_mm(label: LabelMap, organ: int) -> float:
    where = np.argwhere(label.array == organ)
    return float(np.median((np.c_[where, np.ones(len(where))] @ label.geometry.affine_lps().T)[:, 2]))


@pytest.fixture(scope="module")
def training():
    """(reference of 20 CT phantoms as ``amoseg stats`` measures them, the whole livers' volumes in mL
    counted here)."""
    accumulator = StatisticsAccumulator()
    livers_ml = []
    for number in TRAINING:
        image, label = generate_case(number, "CT", seed=0, shape=SHAPE)
        accumulator.add(case_statistics(f"amos_{number:04d}", "CT", "train", image, label, ORGAN_IDS))
        liver = label.array == LIVER
        if not _touches_edge(liver):
            livers_ml.append(int(liver.sum()) * _voxel_ml(label))
    return build_fingerprint(accumulator, "phantoms").quality_reference, livers_ml


@pytest.fixture(scope="module")
def btcv_like_training():
    """The reference of the same 20 CT phantoms labelled like BTCV: organs 1 to 12 only."""
    accumulator = StatisticsAccumulator()
    for number in TRAINING:
        image, label = generate_case(number, "CT", seed=0, shape=SHAPE)
        array = np.where(np.isin(label.array, BTCV_ORGANS), label.array, 0)
        accumulator.add(
            case_statistics(
                f"btcv_{number:04d}", "CT", "train", image, _with_labels(label, array), BTCV_ORGANS
            )
        )
    return build_fingerprint(accumulator, "btcv-like").quality_reference


@pytest.fixture(scope="module")
def case():
    """A CT phantom the reference never saw (axial)."""
    return generate_case(TRAINING[-1] + 1, "CT", seed=0, shape=SHAPE)


def _with_labels(label: LabelMap, array: np.ndarray) -> LabelMap:
    return LabelMap(np.asfortranarray(array), label.geometry)


def _codes(report: dict, name: str) -> list[str]:
    return [flag["code"] for flag in report[name]["flags"]]


def _only_flag(report: dict, name: str, code: str) -> dict:
    (flag,) = [flag for flag in report[name]["flags"] if flag["code"] == code]
    return flag


def _shrunk(label: LabelMap, organ: int, below_ml: float) -> tuple[np.ndarray, float]:
    """The label map with only the organ's voxels nearest its centre kept, fewer than ``below_ml``;
    and the kept volume in mL."""
    array = label.array.copy()
    where = np.argwhere(array == organ)
    order = np.argsort(((where - where.mean(axis=0)) ** 2).sum(axis=1))
    kept = int(below_ml / _voxel_ml(label)) - 1
    array[tuple(where[order[kept:]].T)] = 0
    return array, kept * _voxel_ml(label)


def _cropped_above(image: Image, label: LabelMap, first_slice: int) -> tuple[Image, LabelMap]:
    """The scan from axial slice ``first_slice`` up: the patient's lower part left out of the field of view."""
    geometry = label.geometry
    origin = np.array(geometry.origin) + np.array(geometry.direction) @ (
        np.array(geometry.spacing) * np.array([0, 0, first_slice])
    )
    shape = (*geometry.shape[:2], geometry.shape[2] - first_slice)
    cropped = make_geometry(shape, geometry.spacing, origin, geometry.direction)
    return (
        Image(np.asfortranarray(image.array[:, :, first_slice:]), cropped),
        LabelMap(np.asfortranarray(label.array[:, :, first_slice:]), cropped),
    )


def test_the_statistics_are_those_of_the_voxels_and_an_absent_organ_has_none(training, case):
    image, label = case
    array = label.array.copy()
    array[array == PANCREAS] = 0
    labels = {LIVER: "liver", PANCREAS: "pancreas", SPLEEN: "spleen"}
    report = organ_report(image, _with_labels(label, array), "CT", labels, training[0])
    assert list(report) == ["liver", "pancreas", "spleen"]
    inside = image.array[array == LIVER].astype(np.float64)
    liver = report["liver"]
    assert liver["volume_ml"] == pytest.approx(inside.size * _voxel_ml(label))
    assert (liver["intensity_mean"], liver["intensity_std"], liver["intensity_median"]) == pytest.approx(
        (inside.mean(), inside.std(), np.median(inside))
    )
    assert {key: report["pancreas"][key] for key in ("volume_ml", "intensity_mean", "intensity_median")} == {
        "volume_ml": 0.0,
        "intensity_mean": None,
        "intensity_median": None,
    }
    assert liver["reference"]["source"] == "training"
    assert (
        liver["reference"]["description"] == f"the model's training data ({len(TRAINING)} labelled CT cases)"
    )


def test_a_swollen_liver_is_flagged_above_the_training_range(training, case):
    reference, livers_ml = training
    image, label = case
    assert min(livers_ml) <= int((label.array == LIVER).sum()) * _voxel_ml(label) <= max(livers_ml)
    assert "volume_high" not in _codes(organ_report(image, label, "CT", LABELS, reference), "liver")
    array = label.array.copy()
    array[ndimage.binary_dilation(array == LIVER, iterations=2) & (array == 0)] = LIVER
    swollen_ml = int((array == LIVER).sum()) * _voxel_ml(label)
    assert swollen_ml > max(livers_ml) and not _touches_edge(array == LIVER)
    report = organ_report(image, _with_labels(label, array), "CT", LABELS, reference)
    flag = _only_flag(report, "liver", "volume_high")
    assert flag["value"] == pytest.approx(swollen_ml)
    assert flag["range"] == pytest.approx([min(livers_ml), max(livers_ml)])
    assert (flag["unit"], flag["cases"]) == ("mL", len(livers_ml))
    assert flag["message"].startswith(f"Liver volume {swollen_ml:.0f} mL is above the range of the model's")
    # Grown into the fat around it, the liver is also darker: both flags, in the legend's words.
    assert f"volume high ({swollen_ml:.0f} mL)" in legend_flags(report, LABELS)[LIVER]


def test_a_shrunk_liver_is_flagged_below_the_training_range(training, case):
    reference, livers_ml = training
    image, label = case
    array = label.array.copy()
    liver = array == LIVER
    array[liver & ~ndimage.binary_erosion(liver, iterations=3)] = 0
    shrunk_ml = int((array == LIVER).sum()) * _voxel_ml(label)
    assert 0 < shrunk_ml < min(livers_ml)
    flag = _only_flag(
        organ_report(image, _with_labels(label, array), "CT", LABELS, reference), "liver", "volume_low"
    )
    assert flag["value"] == pytest.approx(shrunk_ml) and flag["range"][0] == pytest.approx(min(livers_ml))


def test_an_organ_missing_where_the_scan_covers_it_is_flagged_with_where_it_should_be(training, case):
    image, label = case
    true_centre_mm = _median_height_mm(label, GALLBLADDER)
    array = label.array.copy()
    array[array == GALLBLADDER] = 0
    report = organ_report(image, _with_labels(label, array), "CT", LABELS, training[0])
    flag = _only_flag(report, "gallbladder", "missing")
    low, high = flag["expected_centre_mm"]
    assert low <= true_centre_mm <= high  # the removed gallbladder lay where the rule expected it
    bottom = label.geometry.origin[2]
    assert flag["scan_coverage_mm"] == pytest.approx(
        [bottom, bottom + (SHAPE[2] - 1) * label.geometry.spacing[2]]
    )
    assert "liver" in flag["placed_from"] and flag["message"].startswith("No gallbladder found, though")
    assert report["gallbladder"]["volume_ml"] == 0.0
    assert [name for name in LABELS.values() if "missing" in _codes(report, name)] == ["gallbladder"]
    assert legend_flags(report, LABELS)[GALLBLADDER] == ["missing"]


def test_an_organ_left_out_of_the_field_of_view_is_not_flagged_missing(training, case):
    image, label = case
    pelvis = np.isin(label.array, [BLADDER, PROSTATE]).any(axis=(0, 1))
    first_slice = int(np.flatnonzero(pelvis).max()) + 1
    cropped_image, cropped_label = _cropped_above(image, label, first_slice)
    assert not np.isin(cropped_label.array, [BLADDER, PROSTATE]).any()  # cut off, not removed
    report = organ_report(cropped_image, cropped_label, "CT", LABELS, training[0])
    for name in ("bladder", "prostate_uterus"):
        assert report[name]["flags"] == [] and report[name]["volume_ml"] == 0.0
        assert "missing" in report[name]["not_checked"]
    # The bladder's expected place lies below the scan. (The prostate/uterus touched the edge of 2 of
    # the 20 training scans: seen whole beside other organs in 18 cases, too few to place it from.)
    assert "not wholly inside the scan" in report["bladder"]["not_checked"]["missing"]
    # The same cropped scan still flags an organ missing from the part it covers.
    array = cropped_label.array.copy()
    array[array == GALLBLADDER] = 0
    report = organ_report(cropped_image, _with_labels(cropped_label, array), "CT", LABELS, training[0])
    assert "missing" in _codes(report, "gallbladder")
    assert report["bladder"]["flags"] == []


def test_a_liver_cut_in_two_large_pieces_is_flagged_split(training, case):
    image, label = case
    array = label.array.copy()
    liver_slices = np.flatnonzero((array == LIVER).any(axis=(0, 1)))
    cut = int(np.median(liver_slices))
    array[:, :, cut][array[:, :, cut] == LIVER] = 0  # one empty slice: no voxel touches across it
    below_ml = int((array[:, :, :cut] == LIVER).sum()) * _voxel_ml(label)
    above_ml = int((array[:, :, cut + 1 :] == LIVER).sum()) * _voxel_ml(label)
    assert min(below_ml, above_ml) > LARGE_PIECE_FRACTION * (below_ml + above_ml)
    report = organ_report(image, _with_labels(label, array), "CT", LABELS, training[0])
    flag = _only_flag(report, "liver", "split")
    assert flag["pieces_ml"] == pytest.approx(sorted([below_ml, above_ml], reverse=True))
    assert flag["large_piece_min_ml"] == pytest.approx(LARGE_PIECE_FRACTION * (below_ml + above_ml))
    assert legend_flags(report, LABELS)[LIVER] == ["in 2 pieces"]


def test_a_stray_voxel_far_from_the_organ_is_no_large_piece(training, case):
    image, label = case
    array = label.array.copy()
    background = np.argwhere(array == 0)
    far = background[np.argmax(np.abs(background - np.argwhere(array == LIVER).mean(axis=0)).sum(axis=1))]
    array[tuple(far)] = LIVER  # a second component of one voxel (0.3 mL): below 1 mL
    assert ndimage.label(array == LIVER, structure=np.ones((3, 3, 3)))[1] == 2
    report = organ_report(image, _with_labels(label, array), "CT", LABELS, training[0])
    assert "split" not in _codes(report, "liver")


@pytest.mark.parametrize("shift_hu, code", [(150, "intensity_high"), (-300, "intensity_low")])
def test_a_shifted_intensity_is_flagged_against_training_and_the_card(training, case, shift_hu, code):
    image, label = case
    shifted = image.array.copy()
    liver = label.array == LIVER
    shifted[liver] += shift_hu
    expected_mean = float(shifted[liver].astype(np.float64).mean())
    shifted_image = Image(shifted, image.geometry)
    flag = _only_flag(organ_report(shifted_image, label, "CT", LABELS, training[0]), "liver", code)
    assert flag["value"] == pytest.approx(expected_mean) and flag["unit"] == "HU"
    assert "per-case means in the model's training data" in flag["message"]
    card = _only_flag(organ_report(shifted_image, label, "CT", LABELS, amos_card_reference()), "liver", code)
    assert card["range"] == [-21.97, 86.0]  # the card's 0.5th and 99.5th percentiles of liver voxels
    assert "0.5th to 99.5th percentile" in card["message"]
    unshifted = organ_report(image, label, "CT", LABELS, training[0])
    assert not {"intensity_high", "intensity_low"} & set(_codes(unshifted, "liver"))


def test_an_organ_cut_by_the_edge_of_the_scan_has_its_volume_left_uncompared(training, case):
    image, label = case
    liver_slices = np.flatnonzero((label.array == LIVER).any(axis=(0, 1)))
    cropped_image, cropped_label = _cropped_above(image, label, int(np.median(liver_slices)))
    cut_ml = int((cropped_label.array == LIVER).sum()) * _voxel_ml(label)
    assert cut_ml < min(training[1])  # half a liver: would be "too small" if compared
    report = organ_report(cropped_image, cropped_label, "CT", LABELS, training[0])
    assert not {"volume_low", "volume_high"} & set(_codes(report, "liver"))
    assert "touches the edge of the scan" in report["liver"]["not_checked"]["volume"]


def test_ranges_measured_on_too_few_cases_are_not_used(training, case):
    image, label = case
    array = label.array.copy()
    array[ndimage.binary_dilation(array == LIVER, iterations=2) & (array == 0)] = LIVER
    array[array == GALLBLADDER] = 0
    report = organ_report(
        image, _with_labels(label, array), "CT", LABELS, training[0], min_cases=len(TRAINING) + 1
    )
    assert report["liver"]["flags"] == [] and report["gallbladder"]["flags"] == []
    assert report["liver"]["not_checked"]["volume"].endswith(
        f"in {len(TRAINING)} cases, fewer than {len(TRAINING) + 1}"
    )
    assert "no organ was found whole" in report["gallbladder"]["not_checked"]["missing"]


def test_against_the_card_a_missing_organ_and_the_spleens_volume_go_unchecked(case):
    image, label = case
    array = label.array.copy()
    array[array == GALLBLADDER] = 0
    report = organ_report(image, _with_labels(label, array), "CT", LABELS, amos_card_reference())
    assert report["gallbladder"]["flags"] == []
    assert report["gallbladder"]["not_checked"] == {
        "missing": "the AMOS 2022 dataset card holds no position for the gallbladder"
    }
    assert (
        report["spleen"]["not_checked"]["volume"]
        == "the AMOS 2022 dataset card holds no CT volume of a whole spleen"
    )
    assert report["liver"]["reference"] == {
        "source": "amos_card",
        "description": "the AMOS 2022 dataset card",
        "volume_ml": {"min": 653.0, "max": 5840.0, "cases": 200, "source": "amos_card"},
        "intensity_mean": {"min": -21.97, "max": 86.0, "source": "amos_card"},
    }


def test_an_mr_intensity_flag_says_how_far_to_trust_it_and_the_cards_unlabelled_organs_go_unchecked():
    image, label = generate_case(501, "MR", seed=0, shape=SHAPE)
    bright = image.array.copy()
    bright[label.array == LIVER] = 2000  # far above the card's 277 for the MR liver
    report = organ_report(Image(bright, image.geometry), label, "MR", LABELS, amos_card_reference())
    flag = _only_flag(report, "liver", "intensity_high")
    assert flag["value"] == pytest.approx(2000.0) and flag["unit"] == "MR units"
    assert "MR intensities depend on the scanner, sequence and scaling" in flag["message"]
    assert "intensity" in report["bladder"]["not_checked"]  # the card prints nan for MR bladders
    # The card's volumes are those of its CT cases: an MR liver's volume is not compared with them.
    assert not _touches_edge(label.array == LIVER)
    assert (
        report["liver"]["not_checked"]["volume"]
        == "the AMOS 2022 dataset card holds no MR volume of a whole liver"
    )
    assert report["liver"]["reference"]["volume_ml"] is None


def test_an_mr_organ_neither_the_training_data_nor_the_card_holds_says_both_were_consulted():
    image, label = generate_case(501, "MR", seed=0, shape=SHAPE)
    # An MR training set that measured the liver only: the bladder has no MR range in it, and the
    # card none either (no MR volumes, nan MR intensities).
    liver = OrganReference(intensity_mean=ObservedRange(100.0, 300.0, MIN_REFERENCE_CASES))
    trained = QualityReference({"MR": ModalityReference("training", MIN_REFERENCE_CASES, {LIVER: liver})})
    reference = with_fallback(trained, amos_card_reference(), MIN_REFERENCE_CASES)
    assert not _touches_edge(label.array == BLADDER)
    bladder = organ_report(image, label, "MR", LABELS, reference)["bladder"]
    neither = "neither the model's training data nor the AMOS 2022 dataset card holds any MR"
    assert bladder["not_checked"] == {
        "volume": f"{neither} volume of a whole bladder",
        "intensity": f"{neither} mean intensity of the bladder",
    }
    assert bladder["reference"] == {
        "source": None,
        "description": f"{neither.removesuffix(' MR')} range for it",
        "volume_ml": None,
        "intensity_mean": None,
    }


def test_an_organ_the_training_data_never_annotates_is_checked_against_the_card(
    btcv_like_training, training, case
):
    image, label = case
    assert set(btcv_like_training.for_modality("CT").organs) == set(BTCV_ORGANS)
    reference = with_fallback(btcv_like_training, amos_card_reference(), MIN_REFERENCE_CASES)
    array, kept_ml = _shrunk(label, BLADDER, below_ml=14.0)  # the card's smallest bladder: 14 cm3
    assert not _touches_edge(array == BLADDER)
    report = organ_report(image, _with_labels(label, array), "CT", LABELS, reference)
    flag = _only_flag(report, "bladder", "volume_low")
    # Label Information Statistics, Bladder: 14 .. 1255 cm3 over 195 instances.
    assert flag["value"] == pytest.approx(kept_ml) and flag["range"] == [14.0, 1255.0]
    assert flag["cases"] == 195 and "the range of the AMOS 2022 dataset card" in flag["message"]
    assert report["bladder"]["reference"] == {
        "source": "amos_card",
        "description": "the AMOS 2022 dataset card",
        "volume_ml": {"min": 14.0, "max": 1255.0, "cases": 195, "source": "amos_card"},
        # CT Intensity Information Statistics, Bladder: 0.5 % = -33.02, 99.5 % = 44.99 HU.
        "intensity_mean": {"min": -33.02, "max": 44.99, "source": "amos_card"},
    }
    # The organs BTCV annotates keep the training ranges: the livers seen whole, counted here.
    assert report["liver"]["reference"]["source"] == "training"
    assert report["liver"]["reference"]["volume_ml"]["cases"] == len(training[1]) >= MIN_REFERENCE_CASES
    # Without the card the bladder goes unchecked; its position is never taken from the card.
    alone = organ_report(image, _with_labels(label, array), "CT", LABELS, btcv_like_training)
    assert alone["bladder"]["flags"] == []
    assert (
        alone["bladder"]["not_checked"]["volume"]
        == "the model's training data holds no CT volume of a whole bladder"
    )
    absent = organ_report(
        image, _with_labels(label, np.where(array == BLADDER, 0, array)), "CT", LABELS, reference
    )
    assert absent["bladder"]["not_checked"] == {
        "missing": "the model's training data holds no position for the bladder"
    }


def test_a_range_measured_in_too_few_training_cases_comes_from_the_card(training, case):
    image, label = case
    # The prostate/uterus touches the edge of 2 of the 20 training scans: its volume is measured whole
    # in 18 cases, too few, while its mean intensity counts all 20.
    whole = sum(
        not _touches_edge(generate_case(number, "CT", seed=0, shape=SHAPE)[1].array == PROSTATE)
        for number in TRAINING
    )
    assert whole < MIN_REFERENCE_CASES <= len(TRAINING)
    reference = with_fallback(training[0], amos_card_reference(), MIN_REFERENCE_CASES)
    array, kept_ml = _shrunk(label, PROSTATE, below_ml=7.0)  # the card's smallest: 7 cm3
    report = organ_report(image, _with_labels(label, array), "CT", LABELS, reference)
    flag = _only_flag(report, "prostate_uterus", "volume_low")
    # Label Information Statistics, Prostate/uterus: 7 .. 268 cm3 over 192 instances.
    assert flag["value"] == pytest.approx(kept_ml) and (flag["range"], flag["cases"]) == ([7.0, 268.0], 192)
    entry = report["prostate_uterus"]["reference"]
    assert entry["source"] == "mixed"
    assert entry["description"] == (
        f"volume: the AMOS 2022 dataset card; mean intensity: the model's training data "
        f"({len(TRAINING)} labelled CT cases)"
    )
    assert entry["volume_ml"]["source"] == "amos_card"
    assert (entry["intensity_mean"]["source"], entry["intensity_mean"]["cases"]) == (
        "training",
        len(TRAINING),
    )
    # Against the training data alone the same volume is not compared, and the report says why.
    alone = organ_report(image, _with_labels(label, array), "CT", LABELS, training[0])
    assert alone["prostate_uterus"]["not_checked"]["volume"] == (
        f"the model's training data measured the CT volume of a whole prostate/uterus in {whole} cases, "
        f"fewer than {MIN_REFERENCE_CASES}"
    )


def test_a_modality_the_reference_lacks_is_reported_unchecked(training, case):
    image, label = case
    ct_only: QualityReference = training[0]
    report = organ_report(image, label, "MR", {LIVER: "liver"}, ct_only)
    assert report["liver"]["reference"] is None
    assert report["liver"]["not_checked"] == {
        "volume": "the reference holds no MR data",
        "intensity": "the reference holds no MR data",
    }


def test_an_image_and_label_map_of_different_shapes_are_refused(training, case):
    image, label = case
    smaller = LabelMap(label.array[:-1], make_geometry(label.array[:-1].shape))
    with pytest.raises(ValueError, match=r"\(64, 64, 40\).*\(63, 64, 40\)"):
        organ_report(image, smaller, "CT", LABELS, training[0])
