"""One case into plan space and back: exact geometry, Dice >= 0.95 per organ, any orientation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from amoseg.data.phantom import generate_case
from amoseg.io import Image, LabelMap, make_geometry
from amoseg.planning import make_plan
from amoseg.preprocessing import CaseProperties, preprocess_case, restore_label
from amoseg.preprocessing.case import MAX_LOCATIONS_PER_CLASS, to_original_grid
from amoseg.preprocessing.resample import resample_labels
from directions import DIRECTIONS
from fingerprints import CT_INTENSITY, fingerprint_from

from .conftest import dice_per_organ


@pytest.mark.parametrize("case_id", ["ct_a", "ct_b", "mr_a"])
def test_fullres_round_trip_restores_geometry_and_labels(phantom_cases, fullres_plan, case_id):
    image, label, modality = phantom_cases[case_id]
    result = preprocess_case(image, label, modality, fullres_plan, case_id=case_id)
    properties = result.properties
    assert properties.geometry.spacing == pytest.approx(fullres_plan.target_spacing_mm, rel=0.02)
    assert result.image.dtype == np.float32 and result.label.dtype == np.uint8
    assert result.image.shape == result.label.shape == properties.geometry.shape
    restored = restore_label(result.label, properties)
    assert restored.geometry == label.geometry
    scores = dice_per_organ(label.array, restored.array)
    assert set(scores) == set(range(1, 16))
    assert min(scores.values()) >= 0.95, scores


@pytest.mark.parametrize("name", ["RAS", "LAS", "RAI", "oblique", "oblique RAS", "sagittal"])
def test_any_orientation_goes_to_plan_space_and_back(phantom_cases, fullres_plan, name):
    direction = DIRECTIONS[name]
    reference, _, _ = phantom_cases["ct_a"]
    # The file axes are permuted with the direction, so the voxel sizes follow the world axes.
    order = np.argmax(np.abs(direction), axis=0)
    shape = tuple(reference.geometry.shape[axis] for axis in order)
    spacing = tuple(reference.geometry.spacing[axis] for axis in order)
    image, label = generate_case(1, "CT", seed=0, shape=shape, spacing=spacing, direction=direction)
    result = preprocess_case(image, label, "CT", fullres_plan, case_id=name)
    properties = result.properties
    assert np.all(np.diag(properties.geometry.direction_matrix) > 0.9)  # canonical: LPS
    restored = restore_label(result.label, properties)
    assert restored.geometry == label.geometry
    scores = dice_per_organ(label.array, restored.array)
    assert min(scores.values()) >= 0.95, scores
    # The same anatomy in the same world: the canonical array matches the axial case's closely.
    axial = preprocess_case(reference, phantom_cases["ct_a"][1], "CT", fullres_plan, case_id="axial")
    if not name.startswith("oblique"):
        assert result.label.shape == axial.label.shape
        overlap = dice_per_organ(axial.label, result.label)
        assert np.mean(list(overlap.values())) > 0.95


def test_ct_and_mr_get_their_own_normalization(phantom_cases, fullres_plan):
    image, label, _ = phantom_cases["ct_a"]
    ct = preprocess_case(image, label, "CT", fullres_plan).properties.intensity
    scheme = fullres_plan.normalization["CT"]
    assert (ct.clip_low, ct.clip_high, ct.mean, ct.std) == (
        scheme.clip_low,
        scheme.clip_high,
        scheme.mean,
        scheme.std,
    )
    image, label, _ = phantom_cases["mr_a"]
    mr = preprocess_case(image, label, "MR", fullres_plan)
    transform = mr.properties.intensity
    assert transform.clip_high < 2000 and transform.mean != scheme.mean
    # Organ intensities land on a common scale, about zero mean inside the body.
    assert -3 < float(np.median(mr.image[mr.label > 0])) < 3


def test_thin_organ_survives_preprocessing():
    geometry = make_geometry((40, 40, 30), (1.0, 1.0, 1.0))
    array = np.full(geometry.shape, -1000, dtype=np.int16)
    array[4:36, 4:36, 2:28] = 40
    labels = np.zeros(geometry.shape, dtype=np.uint8)
    labels[10:30, 10:30, 5:25] = 6
    labels[12:28, 12:28, 15] = 11  # one voxel thick
    intensity = dataclasses.replace(CT_INTENSITY, p0_5=-100.0, p99_5=200.0, mean=40.0, std=50.0)
    fingerprint = fingerprint_from([((1.5, 1.5, 1.5), (40, 40, 30))], dataset="thin", ct_intensity=intensity)
    plan = make_plan(fingerprint, "fullres")
    result = preprocess_case(Image(array, geometry), LabelMap(labels, geometry), "CT", plan)
    assert np.count_nonzero(result.label == 11) > 0
    assert restore_label(result.label, result.properties).array[labels == 11].tolist().count(11) > 0


def test_properties_and_locations(phantom_cases, fullres_plan):
    image, label, _ = phantom_cases["ct_b"]
    result = preprocess_case(
        image,
        label,
        "CT",
        fullres_plan,
        case_id="ct_b",
        annotated_labels=(1, 6),
        absent_labels=(4,),
        max_locations=500,
    )
    properties = result.properties
    again = CaseProperties.from_dict(json.loads(json.dumps(properties.to_dict())))
    assert again == properties
    assert properties.plan_id == fullres_plan.plan_id
    assert properties.annotated_labels == (1, 6) and properties.absent_labels == (4,)
    assert properties.image_kernels == ("cubic", "cubic", "cubic")  # 2.2 x 2.2 x 4 mm: not anisotropic
    counts = dict(properties.class_voxels)
    for organ, points in result.class_locations.items():
        assert points.dtype == np.int32 and points.shape[1] == 3
        assert len(points) == min(counts[organ], 500) <= MAX_LOCATIONS_PER_CLASS
        assert np.all(result.label[tuple(points.T)] == organ)


def test_label_on_another_grid_is_refused(phantom_cases, fullres_plan):
    image, label, _ = phantom_cases["ct_a"]
    moved = LabelMap(
        label.array, make_geometry(label.geometry.shape, label.geometry.spacing, (5.0, 0.0, 0.0))
    )
    with pytest.raises(Exception, match="grids differ"):
        preprocess_case(image, moved, "CT", fullres_plan, case_id="bad")
    with pytest.raises(ValueError, match="plan-space shape"):
        restore_label(
            np.zeros((3, 3, 3), dtype=np.uint8), preprocess_case(image, label, "CT", fullres_plan).properties
        )


@pytest.mark.parametrize("name", ["LPS", "RAS", "RAI", "sagittal", "coronal", "oblique RAS"])
def test_to_original_grid_puts_each_voxel_at_its_world_position(fullres_plan, name):
    """Checked against world coordinates: original voxel i holds the crop-grid voxel at the same
    position in the world (``Geometry`` affines only, no reorientation code), ``fill`` elsewhere."""
    geometry = make_geometry((14, 11, 9), (1.0, 1.5, 2.0), (3.0, -4.0, 7.0), DIRECTIONS[name])
    array = np.full(geometry.shape, -1000, dtype=np.int16)
    array[2:12, 3:9, 1:7] = 40  # the body box, in the file's own axes
    properties = preprocess_case(Image(array, geometry), None, "CT", fullres_plan).properties
    cropped = np.random.default_rng(0).integers(1, 100, size=properties.crop_box.shape).astype(np.int16)
    restored = to_original_grid(cropped, properties, fill=-7)
    assert restored.shape == geometry.shape and restored.dtype == np.int16
    assert restored.flags.f_contiguous  # the I/O convention: written without a copy

    index = np.stack(np.meshgrid(*[np.arange(size) for size in geometry.shape], indexing="ij"), -1)
    world = index.reshape(-1, 3) @ geometry.affine_lps()[:3, :3].T + geometry.affine_lps()[:3, 3]
    crop_affine = np.linalg.inv(properties.cropped_geometry.affine_lps())
    crop_index = np.rint(world @ crop_affine[:3, :3].T + crop_affine[:3, 3]).astype(int)
    inside = np.all((crop_index >= 0) & (crop_index < properties.crop_box.shape), axis=1)
    expected = np.full(len(world), -7, dtype=np.int16)
    expected[inside] = cropped[tuple(crop_index[inside].T)]
    np.testing.assert_array_equal(restored.reshape(-1), expected)
    assert inside.sum() == cropped.size  # the body box is exactly where the crop lands
    with pytest.raises(ValueError, match="crop box"):
        to_original_grid(cropped[:-1], properties)


def test_restore_label_goes_through_to_original_grid(phantom_cases, fullres_plan):
    image, label, _ = phantom_cases["ct_a"]
    result = preprocess_case(image, label, "CT", fullres_plan)
    properties = result.properties
    restored = restore_label(result.label, properties)
    cropped = resample_labels(result.label, properties.crop_box.shape, kernel=properties.label_kernel)
    np.testing.assert_array_equal(restored.array, to_original_grid(cropped, properties))
    assert restored.array.flags.f_contiguous


def test_plan_space_arrays_are_c_ordered_numpy(phantom_cases, fullres_plan):
    image, label, _ = phantom_cases["mr_a"]
    assert isinstance(image.array, np.ndarray)
    result = preprocess_case(image, label, "MR", fullres_plan)
    for array in (result.image, result.label):
        assert type(array) is np.ndarray and array.flags.c_contiguous
