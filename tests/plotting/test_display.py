"""The display frame: one anatomy stored LPS, RAS or oblique reads the radiological way in all three."""

from __future__ import annotations

import numpy as np
import pytest

from amoseg.data.phantom import generate_case
from amoseg.io.image import make_geometry
from amoseg.plotting.display import (
    CORRECT,
    EDGES,
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    WRONG_ORGAN,
    DisplayFrame,
    error_map,
    labelled_centre,
    pixel_of,
    plane_pixels,
    plane_view,
)

SPLEEN, RIGHT_KIDNEY, LEFT_KIDNEY, LIVER, BLADDER = 1, 2, 3, 6, 14
RAS = np.diag([-1.0, -1.0, 1.0])


def _about_z(degrees: float) -> np.ndarray:
    angle = np.radians(degrees)
    return np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )


# LPI (slices stored from the head down) makes the superior-up checks bite as well.
DIRECTIONS = {"LPS": np.eye(3), "RAS": RAS, "oblique": _about_z(15.0) @ RAS, "LPI": np.diag([1.0, 1.0, -1.0])}


@pytest.fixture(scope="module", params=sorted(DIRECTIONS))
def display_labels(request) -> np.ndarray:
    """The phantom's label array in the display frame, for each stored orientation."""
    _, label = generate_case(1, "CT", seed=0, shape=(64, 64, 32), direction=DIRECTIONS[request.param])
    return DisplayFrame.of(label.geometry).to_display(label.array)


def _centroid_in_plane(labels: np.ndarray, organ: int, plane: str) -> np.ndarray:
    """(row, column) of an organ's footprint: the plane drawn from its projection along the normal."""
    normal = {"axial": 2, "coronal": 1, "sagittal": 0}[plane]
    footprint = np.any(labels == organ, axis=normal, keepdims=True)
    pixels = plane_pixels(footprint, plane, (0, 0, 0))
    assert pixels.any(), f"organ {organ} missing from the phantom"
    return np.argwhere(pixels).mean(axis=0)


def test_the_liver_is_on_the_left_half_of_its_axial_slice(display_labels):
    centre = labelled_centre(display_labels, LIVER)
    pixels = plane_pixels(display_labels, "axial", centre)
    columns = np.nonzero(pixels == LIVER)[1]
    assert columns.size > 0, "the slice through the liver's centre shows the liver"
    assert columns.mean() < pixels.shape[1] / 2, "the patient's right is on the image's left"


def test_the_spleen_is_right_of_the_liver_in_the_axial_plane(display_labels):
    assert (
        _centroid_in_plane(display_labels, SPLEEN, "axial")[1]
        > _centroid_in_plane(display_labels, LIVER, "axial")[1] + 10
    )


def test_posterior_is_at_the_bottom_of_the_axial_plane(display_labels):
    # The kidneys lie behind the liver's centre by about 8 voxels here: a flip of y turns this round.
    liver_row = _centroid_in_plane(display_labels, LIVER, "axial")[0]
    for kidney in (RIGHT_KIDNEY, LEFT_KIDNEY):
        assert _centroid_in_plane(display_labels, kidney, "axial")[0] > liver_row + 4


def test_superior_is_at_the_top_of_the_coronal_plane(display_labels):
    assert (
        _centroid_in_plane(display_labels, LIVER, "coronal")[0]
        < _centroid_in_plane(display_labels, BLADDER, "coronal")[0] - 10
    )


def test_anterior_is_on_the_left_and_superior_up_in_the_sagittal_plane(display_labels):
    bladder = _centroid_in_plane(display_labels, BLADDER, "sagittal")
    kidney = _centroid_in_plane(display_labels, RIGHT_KIDNEY, "sagittal")
    assert bladder[1] < kidney[1], "the anterior bladder left of the posterior kidney"
    assert bladder[0] > kidney[0], "the bladder below the kidney"


def test_lps_and_ras_storage_give_the_same_display_array():
    arrays = [
        DisplayFrame.of(label.geometry).to_display(label.array)
        for _, label in (
            generate_case(1, "CT", seed=0, shape=(48, 48, 24), direction=direction)
            for direction in (np.eye(3), RAS)
        )
    ]
    np.testing.assert_array_equal(arrays[0], arrays[1])


def test_planes_of_a_hand_made_lps_volume():
    volume = np.arange(2 * 3 * 4).reshape(2, 3, 4)  # [x, y, z]
    # Axial: rows are y (anterior first), columns x (patient's right first).
    np.testing.assert_array_equal(plane_pixels(volume, "axial", (0, 0, 1)), volume[:, :, 1].T)
    # Coronal: rows are z from superior down, columns x.
    np.testing.assert_array_equal(plane_pixels(volume, "coronal", (0, 2, 0)), volume[:, 2, ::-1].T)
    # Sagittal: rows are z from superior down, columns y (anterior first).
    np.testing.assert_array_equal(plane_pixels(volume, "sagittal", (1, 0, 0)), volume[1, :, ::-1].T)
    # The top-left pixel of the coronal plane is the most superior voxel on the patient's right.
    assert plane_pixels(volume, "coronal", (0, 0, 0))[0, 0] == volume[0, 0, 3]
    assert pixel_of((0, 0, 3), "coronal", volume.shape) == (0.0, 0.0)
    assert pixel_of((1, 2, 0), "axial", volume.shape) == (2.0, 1.0)


def test_a_ras_volume_is_flipped_in_x_and_y():
    geometry = make_geometry((2, 3, 4), direction=RAS)
    frame = DisplayFrame.of(geometry)
    stored = np.arange(24).reshape(2, 3, 4)
    shown = frame.to_display(stored)
    np.testing.assert_array_equal(shown, stored[::-1, ::-1, :])
    for index in np.ndindex(stored.shape):
        assert shown[frame.to_display_index(index)] == stored[index]
    # Display voxel (0, 0, 0) is the patient's most right, anterior, inferior corner: the largest x, y.
    np.testing.assert_allclose(frame.world_mm((0, 0, 0)), geometry.origin + RAS @ np.array([1.0, 2.0, 0.0]))


def test_plane_view_gives_aspect_position_and_letters():
    geometry = make_geometry((10, 20, 30), spacing=(1.0, 2.0, 3.0), origin=(5.0, 6.0, -100.0))
    frame = DisplayFrame.of(geometry)
    axial = plane_view(frame, "axial", (4, 5, 7))
    assert axial.aspect == pytest.approx(2.0)
    assert axial.position_mm == pytest.approx(-100.0 + 3.0 * 7)
    assert axial.caption == "slice 8/30, z = -79.0 mm"
    assert (axial.edges.left, axial.edges.right, axial.edges.top, axial.edges.bottom) == ("R", "L", "A", "P")
    coronal = plane_view(frame, "coronal", (4, 5, 7))
    assert coronal.aspect == pytest.approx(3.0)
    assert coronal.caption == "slice 6/20, y = 16.0 mm"
    sagittal = plane_view(frame, "sagittal", (4, 5, 7))
    assert sagittal.aspect == pytest.approx(1.5)
    assert sagittal.position_mm == pytest.approx(9.0)
    assert EDGES["coronal"].top == "S" and EDGES["sagittal"].left == "A"
    with pytest.raises(ValueError, match="plane must be one of"):
        plane_view(frame, "oblique", (0, 0, 0))


def test_to_display_refuses_an_array_of_another_grid():
    frame = DisplayFrame.of(make_geometry((2, 3, 4)))
    with pytest.raises(ValueError, match=r"\(4, 3, 2\)"):
        frame.to_display(np.zeros((4, 3, 2)))


def test_labelled_centre():
    labels = np.zeros((5, 5, 5), dtype=np.uint8)
    assert labelled_centre(labels) is None
    labels[1, 2, 3] = 6
    labels[3, 2, 3] = 6
    labels[4, 4, 4] = 1
    assert labelled_centre(labels, 6) == (2, 2, 3)
    assert labelled_centre(labels, 14) is None
    assert labelled_centre(labels) == (3, 2, 3)


def test_error_map_per_organ_and_for_all_organs():
    reference = np.array([0, 6, 6, 1, 1, 0]).reshape(6, 1, 1)
    prediction = np.array([6, 6, 0, 6, 1, 0]).reshape(6, 1, 1)
    assert error_map(prediction, reference, organ=6).ravel().tolist() == [
        FALSE_POSITIVE,
        CORRECT,
        FALSE_NEGATIVE,
        FALSE_POSITIVE,
        CORRECT,
        CORRECT,
    ]
    assert error_map(prediction, reference).ravel().tolist() == [
        FALSE_POSITIVE,
        CORRECT,
        FALSE_NEGATIVE,
        WRONG_ORGAN,
        CORRECT,
        CORRECT,
    ]
    with pytest.raises(ValueError, match="differ in shape"):
        error_map(prediction, reference[:3])
