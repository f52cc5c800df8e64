"""MetaImage and NRRD geometry fields that ITK would misread are refused first, one line naming the field."""

from __future__ import annotations

import numpy as np
import pytest

from amoseg.errors import InputError
from amoseg.io import Image, make_geometry, read_header, read_image, write_image


def _patched(tmp_path, suffix, old, new):
    path = tmp_path / f"image{suffix}"
    geometry = make_geometry((6, 5, 4), (0.7, 0.8, 2.0), (1.0, 2.0, 3.0))
    write_image(Image(np.ones((6, 5, 4), np.int16), geometry), path)
    data = path.read_bytes()
    assert old in data, data[:400]
    path.write_bytes(data.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (b"Offset = 1 2 3", b"Offset = 1 nan 3", "Offset contains NaN"),
        (b"Offset = 1 2 3", b"Offset = 1 inf 3", "Offset contains an infinite value"),
        (b"TransformMatrix = 1 0 0", b"TransformMatrix = nan 0 0", "TransformMatrix contains NaN"),
        (
            b"TransformMatrix = 1 0 0",
            b"TransformMatrix = 1 0",
            "TransformMatrix in the header is not 9 numbers",
        ),
        (
            b"ElementSpacing = 0.69999999999999996",
            b"ElementSpacing = 0",
            "spacing along x is 0 in the header (ElementSpacing)",
        ),
        (
            b"ElementSpacing = 0.69999999999999996",
            b"ElementSpacing = nan",
            "spacing along x is NaN in the header (ElementSpacing)",
        ),
        (
            b"ElementSpacing = 0.69999999999999996",
            b"ElementSpacing = abc",
            "ElementSpacing in the header is not 3 numbers",
        ),
    ],
)
def test_metaimage_geometry_faults_are_named(tmp_path, old, new, problem):
    path = _patched(tmp_path, ".mha", old, new)
    with pytest.raises(InputError) as caught:
        read_header(path)
    assert caught.value.problem.startswith(problem)
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (b"space origin: (1,2,3)", b"space origin: (1,nan,3)", "space origin contains NaN"),
        (b"(0,0.80000000000000004,0)", b"(0,nan,0)", "space directions (axis y) contains NaN"),
        (b"(0,0.80000000000000004,0)", b"(0,0,0)", "spacing along y is 0 in the header (space directions)"),
    ],
)
def test_nrrd_geometry_faults_are_named(tmp_path, old, new, problem):
    path = _patched(tmp_path, ".nrrd", old, new)
    with pytest.raises(InputError) as caught:
        read_image(path)
    assert caught.value.problem == problem


def test_nrrd_spacings_field_is_checked(tmp_path):
    """The older NRRD form: per-axis ``spacings`` and no world space."""
    path = _patched(tmp_path, ".nrrd", b"\n", b"\n")
    header, _, data = path.read_bytes().partition(b"\n\n")
    kept = [line for line in header.split(b"\n") if not line.startswith(b"space")]
    path.write_bytes(b"\n".join([*kept, b"spacings: 0.7 0.8 -2"]) + b"\n\n" + data)
    with pytest.raises(InputError, match=r"spacing along z is -2 in the header \(spacings\)"):
        read_header(path)


def test_sound_text_headers_pass(tmp_path):
    for suffix in (".mha", ".nrrd"):
        path = _patched(tmp_path, suffix, b"\n", b"\n")
        assert read_header(path).geometry.spacing == pytest.approx((0.7, 0.8, 2.0))
