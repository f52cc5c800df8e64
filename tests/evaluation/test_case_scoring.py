from __future__ import annotations

import math

import numpy as np
import pytest

from amoseg.errors import InputError
from amoseg.evaluation import evaluate_case
from amoseg.evaluation.metrics import nsd
from amoseg.io import LabelMap, make_geometry


def test_files_and_in_memory_maps_give_the_same_scores(write_labels, box_labels):
    ref_path = write_labels("ref/amos_0003.nii.gz", box_labels(), spacing=(0.8, 0.8, 3.0))
    pred_path = write_labels("pred/amos_0003.nii.gz", box_labels(shift=1), spacing=(0.8, 0.8, 3.0))
    from_files = evaluate_case(pred_path, ref_path, labels=(1, 6))
    geometry = make_geometry((20, 18, 10), (0.8, 0.8, 3.0))
    in_memory = evaluate_case(
        LabelMap(box_labels(shift=1), geometry), LabelMap(box_labels(), geometry), labels=(1, 6), case_id="x"
    )
    assert from_files.case_id == "amos_0003" and from_files.modality == "CT"
    assert [s.nsd for s in from_files.organs] == [s.nsd for s in in_memory.organs]
    assert from_files.organs[1].nsd == nsd(box_labels(shift=1) == 6, box_labels() == 6, (0.8, 0.8, 3.0), 1.0)
    assert from_files.voxel_volume_mm3 == pytest.approx(0.8 * 0.8 * 3.0)


def test_missing_prediction_scores_zero_and_absent_organs_nan(write_labels, box_labels):
    ref_path = write_labels("ref/amos_0600.nii.gz", box_labels())
    result = evaluate_case(None, ref_path, labels=(1, 4, 6))
    assert result.prediction_missing and result.modality == "MR"
    spleen, gallbladder, liver = result.organs
    assert spleen.dsc == spleen.nsd == liver.dsc == liver.nsd == 0.0
    assert math.isnan(gallbladder.dsc) and math.isnan(gallbladder.nsd)


def test_prediction_on_a_shifted_grid_is_refused_with_the_size_of_the_shift(write_labels, box_labels):
    ref_path = write_labels("ref/amos_0001.nii.gz", box_labels())
    pred_path = write_labels("pred/amos_0001.nii.gz", box_labels(), origin=(3.0, 4.0, 0.0))
    with pytest.raises(
        InputError, match=r"not on the grid of reference .*origin differs by 5\.000 mm"
    ) as error:
        evaluate_case(pred_path, ref_path)
    assert str(error.value).startswith(str(pred_path))


def test_shape_and_spacing_differences_are_named(write_labels, box_labels):
    ref_path = write_labels("ref/amos_0001.nii.gz", box_labels())
    pred_path = write_labels("pred/amos_0001.nii.gz", box_labels(shape=(20, 18, 11)), spacing=(1.0, 1.0, 2.5))
    with pytest.raises(InputError, match=r"shape 20x18x10 vs 20x18x11.*spacing .* \(differs by 0\.5 mm\)"):
        evaluate_case(pred_path, ref_path)


def test_label_value_outside_the_amos_range_names_the_file(write_labels, box_labels):
    ref_path = write_labels("ref/amos_0001.nii.gz", box_labels())
    bad = box_labels()
    bad[0, 0, 0] = 17
    pred_path = write_labels("pred/amos_0001.nii.gz", bad)
    with pytest.raises(InputError, match=r"label value 17, outside 0\.\.15") as error:
        evaluate_case(pred_path, ref_path)
    assert error.value.path == pred_path


def test_ignore_mask_file(write_labels, box_labels):
    ref_path = write_labels("ref/amos_0001.nii.gz", box_labels())
    pred_path = write_labels("pred/amos_0001.nii.gz", box_labels(shift=1))
    ignore = np.zeros((20, 18, 10), dtype=np.uint8)
    ignore[:, :, :5] = 1
    ignore_path = write_labels("ignore.nii.gz", ignore)
    result = evaluate_case(pred_path, ref_path, labels=(6,), ignore_mask=ignore_path)
    (liver,) = result.organs
    assert liver.ref_voxels == 7 * 9 * 3  # z 5..7 of the box 2..7 remain
    assert (
        liver.true_negative == 20 * 18 * 5 - liver.true_positive - liver.false_positive - liver.false_negative
    )


def test_what_the_prediction_gives_to_organs_no_score_looks_at_is_counted(box_labels):
    geometry = make_geometry((20, 18, 10), (0.8, 0.8, 3.0))
    reference = box_labels()
    prediction = box_labels().copy()
    prediction[0:2, 0:3, 0:4] = 13  # 24 voxels of duodenum, which no reference annotates here
    prediction[18:20, 0:1, 0:1] = 14  # 2 voxels of bladder
    prediction[0:1, 0:3, 0:4] = 6  # 12 of the duodenum's voxels become liver again: 12 left
    ignore = np.zeros(geometry.shape, np.uint8)
    ignore[18:20, 0:1, 0:1] = 1  # the bladder's voxels are ignored
    pred, ref = LabelMap(prediction, geometry), LabelMap(reference, geometry)
    result = evaluate_case(pred, ref, labels=(1, 6), case_id="x")
    assert result.unscored_voxels == {13: 12, 14: 2}
    assert result.unscored_ml() == pytest.approx({13: 12 * 1.92 / 1000, 14: 2 * 1.92 / 1000})
    masked = evaluate_case(pred, ref, labels=(1, 6), case_id="x", ignore_mask=LabelMap(ignore, geometry))
    assert masked.unscored_voxels == {13: 12}
    # Scored organs are not counted, whatever their voxels: spleen and liver are scored here.
    assert evaluate_case(pred, ref, labels=(1, 6, 13, 14), case_id="x").unscored_voxels == {}
