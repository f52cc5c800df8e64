"""The preprocessing cache's one owner: PlanCache writes, lists and reads cases, and refuses bad ones."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from amoseg.errors import InputError
from amoseg.preprocessing import preprocess_case
from amoseg.preprocessing.cache import PlanCache, load_case


@pytest.fixture(scope="module")
def ct_case(phantom_cases, fullres_plan):
    image, label, _ = phantom_cases["ct_a"]
    return preprocess_case(image, label, "CT", fullres_plan, case_id="ct_a", split="train")


def test_a_written_case_reads_back_typed_and_memory_mapped(ct_case, fullres_plan, tmp_path):
    cache = PlanCache.create(tmp_path, fullres_plan)
    assert cache.folder == tmp_path / fullres_plan.plan_id
    cache.write(ct_case)
    assert cache.case_ids() == ["ct_a"] and cache.has_label("ct_a")
    assert cache.properties("ct_a") == ct_case.properties
    assert PlanCache.open(tmp_path, fullres_plan) == cache
    assert PlanCache.open(cache.folder, fullres_plan) == cache  # the plan's own folder works too
    arrays = cache.check_arrays("ct_a", ct_case.properties.geometry.shape, fullres_plan.num_classes)
    assert isinstance(arrays.image, np.memmap) and not arrays.image.flags.writeable
    assert arrays.image.flags.c_contiguous  # plan space is C order (amoseg.io.image)
    np.testing.assert_array_equal(arrays.label, ct_case.label)
    loaded = load_case(cache.case_folder("ct_a"))
    assert loaded.class_locations.keys() == ct_case.class_locations.keys()


def test_the_pad_value_is_the_normalized_clip_floor(ct_case):
    transform = ct_case.properties.intensity
    assert ct_case.properties.pad_value == (transform.clip_low - transform.mean) / transform.std
    assert ct_case.properties.pad_value == pytest.approx(float(ct_case.image.min()), abs=1e-5)


def test_open_names_the_plans_that_are_there(ct_case, fullres_plan, tmp_path):
    with pytest.raises(InputError, match="preprocessed folder not found"):
        PlanCache.open(tmp_path / "missing", fullres_plan)
    PlanCache.create(tmp_path, fullres_plan)
    other = dataclasses.replace(fullres_plan, batch_size=fullres_plan.batch_size + 1)
    with pytest.raises(InputError, match=f"no cache for plan {other.plan_id} .*{fullres_plan.plan_id}"):
        PlanCache.open(tmp_path, other)


def test_damaged_records_and_arrays_are_named(ct_case, fullres_plan, tmp_path):
    cache = PlanCache.create(tmp_path, fullres_plan)
    cache.write(ct_case)
    folder = cache.case_folder("ct_a")
    shape, classes = ct_case.properties.geometry.shape, fullres_plan.num_classes
    with pytest.raises(InputError, match="differs from its record"):
        cache.check_arrays("ct_a", (1, 2, 3), classes)
    with pytest.raises(InputError, match="label value"):
        cache.check_arrays("ct_a", shape, int(ct_case.label.max()))
    image = folder / "image.npy"
    image.write_bytes(image.read_bytes()[:100])
    with pytest.raises(InputError, match="damaged cache file") as caught:
        cache.check_arrays("ct_a", shape, classes)
    assert caught.value.path == image
    (folder / "properties.json").write_text("{}")
    with pytest.raises(InputError, match="unreadable case record"):
        cache.properties("ct_a")
