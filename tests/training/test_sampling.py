"""Patch sampling from the memory-mapped cache and the prefetching loader."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from amoseg.preprocessing.cache import PlanCache
from amoseg.training.dataset import case_arrays, index_cases
from amoseg.training.loader import BatchStream, PatchSource
from amoseg.training.sampling import (
    centred_start,
    draw_request,
    draw_requests,
    extract,
    random_start,
    start_range,
)


def test_extract_pads_with_the_fill_value_where_the_patch_leaves_the_array():
    array = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    patch = extract(array, (-1, 1, 0), (3, 3, 2), fill=-9.0)
    assert patch.shape == (3, 3, 2)
    assert (patch[0] == -9).all() and (patch[:, 2:] == -9).all()
    np.testing.assert_array_equal(patch[1:, :2], array[:2, 1:3])


def test_start_ranges_keep_the_patch_inside_or_the_image_inside_the_patch():
    assert start_range(10, 4) == (0, 6)
    assert start_range(4, 10) == (-6, 0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        start = random_start((10, 4, 7), (4, 10, 7), rng)
        assert 0 <= start[0] <= 6 and -6 <= start[1] <= 0 and start[2] == 0
    assert centred_start((10, 10, 10), (4, 4, 4), (0, 5, 9)) == (0, 3, 6)


def test_foreground_patches_centre_small_organs_as_often_as_large_ones(tiny_cache):
    plan, _, root = tiny_cache
    cases = index_cases(PlanCache.open(root, plan), plan)
    ct = next(index for index, case in enumerate(cases) if case.case_id == "amos_0001")
    rng = np.random.default_rng(0)
    label = np.asarray(case_arrays(cases[ct].folder).label)
    centres = Counter()
    patch = (8, 8, 8)
    for _ in range(1500):
        request = draw_request(cases, ct, patch, rng, foreground=True)
        centre = tuple(begin + edge // 2 for begin, edge in zip(request.start, patch, strict=True))
        centres[int(label[centre])] += 1
    # 15 organs, 100 draws each on average; a centre moved off its organ by the range clip is rare.
    organs = [centres[organ] for organ in range(1, 16)]
    assert min(organs) > 50 and max(organs) < 160, centres
    assert centres[11] > 50 and centres[6] < 160  # right adrenal gland (tens of voxels) vs liver


def test_training_patches_centre_each_organ_of_each_modality_at_the_same_rate(tiny_cache):
    plan, _, root = tiny_cache
    cases = index_cases(PlanCache.open(root, plan), plan)
    labels = [np.asarray(case_arrays(case.folder).label) for case in cases]
    rng = np.random.default_rng(1)
    patch = (8, 8, 8)
    centres = Counter()
    for _ in range(200):
        for request in draw_requests(cases, 15, patch, rng, foreground_fraction=1.0):
            centre = tuple(begin + edge // 2 for begin, edge in zip(request.start, patch, strict=True))
            centres[(int(labels[request.case][centre]), cases[request.case].modality)] += 1
    # 4 CT and 2 MR cases (one MR annotating 4 organs): 15 CT and 15 MR pairs, 100 draws each on
    # average. Drawing the case first would centre 2/3 of the patches on CT.
    pairs = {(organ, case.modality) for case in cases for organ in case.present}
    assert len(pairs) == 30
    assert all(50 < centres[pair] < 160 for pair in pairs), centres
    mr = sum(count for (_, modality), count in centres.items() if modality == "MR")
    assert 0.45 < mr / 3000 < 0.55


def test_partially_labelled_case_reports_its_annotated_organs(tiny_cache):
    plan, _, root = tiny_cache
    cases = {case.case_id: case for case in index_cases(PlanCache.open(root, plan), plan)}
    assert cases["amos_0502"].annotated == (1, 2, 3, 6)
    assert cases["amos_0502"].annotated_mask().nonzero()[0].tolist() == [0, 1, 2, 3, 6]
    assert len(cases["amos_0001"].annotated) == 15


def source(tiny_cache, **changes) -> PatchSource:
    plan, _, root = tiny_cache
    settings = dict(
        cases=index_cases(PlanCache.open(root, plan), plan),
        patch_size=plan.patch_size,
        batch_size=2,
        num_classes=16,
        foreground_fraction=1 / 3,
        seed=0,
    )
    settings.update(changes)
    return PatchSource(**settings)


def test_batches_are_a_function_of_seed_rank_and_iteration(tiny_cache):
    from amoseg.training.augment import nnunet_augmentation

    plan = tiny_cache[0]
    augmented = source(tiny_cache, transform=nnunet_augmentation(plan.patch_size, plan.target_spacing_mm))
    first, _ = augmented.batch(5)
    again, _ = augmented.batch(5)
    other_rank, _ = source(tiny_cache, rank=1).batch(5)
    assert torch.equal(first.image, again.image) and torch.equal(first.label, again.label)
    assert not torch.equal(source(tiny_cache).batch(5)[0].image, other_rank.image)
    assert first.image.shape == (2, 1, *plan.patch_size) and first.annotated.shape == (2, 16)
    with BatchStream(augmented, start=3, threaded=True) as threaded:
        for iteration in range(3, 7):
            batch, _ = next(threaded)
            expected, _ = augmented.batch(iteration)
            assert torch.equal(batch.image, expected.image) and torch.equal(batch.label, expected.label)


def test_an_error_in_the_loader_thread_reaches_the_training_loop(tiny_cache):
    broken = source(tiny_cache, transform=lambda batch, generator: 1 / 0)
    with BatchStream(broken) as stream, pytest.raises(ZeroDivisionError):
        next(stream)
