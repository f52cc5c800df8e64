"""Images other libraries hold in memory: SimpleITK and nibabel images to and from amoseg's types.

A pipeline that already holds its images passes them as they are; what it gets back is of the kind it
gave, on exactly the same grid:

- ``amoseg.io.Image``: returned unchanged; the label map comes back as a ``LabelMap``.
- ``SimpleITK.Image``: 3-D, one component, real voxels. The label map comes back as a
  ``SimpleITK.Image`` with the input's spacing, origin and direction copied bit for bit.
- nibabel spatial images (``Nifti1Image``, ``Nifti2Image``, other formats with a 4x4 affine): 3-D,
  or 3-D with trailing axes of size 1, real voxels, an affine without shear. The label map comes back
  as the input's class with the input's affine (the same numbers) and a copy of its header: voxel type
  uint8 (wider only if a label exceeds 255), no intensity scaling, NIfTI intent "label", and the
  qform and sform with the input's codes.

nibabel's affine maps voxel (i, j, k) to RAS millimetres; amoseg's world is ITK's LPS
(``amoseg.io.image``), so the first two rows change sign: ``affine_lps = diag(-1, -1, 1, 1) @ affine``.
Its columns then give the spacing (their lengths) and the direction (the unit columns); nibabel's voxel
axes (i, j, k) are amoseg's array axes (x, y, z), so the voxel array is used as it is. The image's
``affine`` is nibabel's choice (the sform when its code is set, else the qform); ITK, reading the same
file with ``read_image``, may choose the other when the two disagree.

nibabel is imported only when an image of its own is passed, which it can only be if nibabel is
installed and imported (the ``amoseg[nibabel]`` extra).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import SimpleITK as sitk

from amoseg.errors import AmosegError
from amoseg.io.image import Geometry, Image, LabelMap, make_geometry

if TYPE_CHECKING:
    import nibabel.spatialimages

#: The images ``from_foreign`` takes, for the API's annotations.
InMemoryImage: TypeAlias = "Image | sitk.Image | nibabel.spatialimages.SpatialImage"

#: Largest departure from orthogonality of an affine's unit columns (|cosine| between two of them)
#: still taken as orthogonal. NIfTI stores affines in float32, which leaves errors near 1e-7; a
#: genuinely sheared affine is off by far more, and amoseg's geometry (spacing times a rotation) cannot
#: hold it.
SHEAR_TOLERANCE = 1e-4

#: What ``from_foreign`` accepts, for messages.
ACCEPTED = "an amoseg.io.Image, a SimpleITK.Image or a nibabel image (e.g. nibabel.Nifti1Image)"

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])

_REAL_SCALAR_TYPES = frozenset(
    (
        *(sitk.sitkInt8, sitk.sitkUInt8, sitk.sitkInt16, sitk.sitkUInt16),
        *(sitk.sitkInt32, sitk.sitkUInt32, sitk.sitkInt64, sitk.sitkUInt64),
        *(sitk.sitkFloat32, sitk.sitkFloat64),
    )
)


def from_foreign(image: Any) -> Image:
    """The amoseg ``Image`` of an in-memory image: voxels indexed [x, y, z], LPS geometry.

    Args:
        image: an ``amoseg.io.Image`` (returned as it is), a ``SimpleITK.Image`` or a nibabel spatial
            image.

    Returns:
        the voxels and their geometry. A SimpleITK image's voxels are copied (Fortran order, as the
        readers return them); a nibabel image's array is used as nibabel gives it (scaled by its
        header's slope and intercept), copied only to make its byte order native.

    Raises:
        AmosegError: anything else (a numpy array, a path: read files with ``read_image``); not 3-D;
            several components per voxel; voxels that are not real numbers; NaN or infinite voxels;
            a nibabel affine that is missing, sheared or degenerate.
    """
    if isinstance(image, Image):
        return image
    if isinstance(image, sitk.Image):
        return _from_sitk(image)
    if _is_nibabel(image):
        return _from_nibabel(image)
    raise AmosegError(f"cannot segment a {_type_name(image)}: pass {ACCEPTED}")


def to_foreign(label: LabelMap, like: Any) -> Any:
    """A label map on ``like``'s grid, as the kind of image ``like`` is.

    Args:
        label: the label map, on exactly ``from_foreign(like).geometry``.
        like: the image the label map was predicted for, as it was passed to ``from_foreign``.

    Returns:
        ``label`` itself for an ``amoseg.io.Image``; a ``SimpleITK.Image`` with ``like``'s spacing,
        origin and direction; or an image of ``like``'s nibabel class with its affine and header (see
        the module docstring). Voxels are uint8 when every label fits, else ``label``'s integer type.

    Raises:
        ValueError: ``label`` is not on ``like``'s grid (a programming error, not a user's).
        AmosegError: ``like`` is not an image ``from_foreign`` accepts.
    """
    if isinstance(like, Image):
        _check_same_grid(label, like.geometry)
        return label
    if isinstance(like, sitk.Image):
        _check_same_grid(label, _sitk_geometry(like))
        result = sitk.GetImageFromArray(np.ascontiguousarray(_narrowest(label.array).T), isVector=False)
        result.CopyInformation(like)
        return result
    if _is_nibabel(like):
        _check_same_grid(label, _nibabel_geometry(like))
        return _to_nibabel(label, like)
    raise AmosegError(f"cannot return a label map as a {_type_name(like)}: pass {ACCEPTED}")


def _from_sitk(image: sitk.Image) -> Image:
    geometry = _sitk_geometry(image)
    array = sitk.GetArrayFromImage(image).T  # ITK's C-ordered [z, y, x] is Fortran-ordered [x, y, z]
    _check_voxels(array, "SimpleITK image")
    return Image(array, geometry)


def _sitk_geometry(image: sitk.Image) -> Geometry:
    """The grid of a SimpleITK image amoseg can take, checked before its voxel buffer is touched."""
    size = tuple(int(value) for value in image.GetSize())
    if image.GetDimension() != 3:
        raise AmosegError(
            f"SimpleITK image is {image.GetDimension()}-D ({_fmt(size)}); expected a 3-D volume"
        )
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise AmosegError(
            f"SimpleITK image has {image.GetNumberOfComponentsPerPixel()} components per voxel "
            f"({image.GetPixelIDTypeAsString()}); expected one (a scalar image)"
        )
    # A list of what is allowed, not of what is not: asking a run-length label map for its voxel array
    # aborts the whole process inside ITK instead of raising.
    if image.GetPixelID() not in _REAL_SCALAR_TYPES:
        raise AmosegError(
            f"SimpleITK image has voxels of type {image.GetPixelIDTypeAsString()}; expected real numbers "
            "(an integer or floating-point scalar image)"
        )
    try:
        return make_geometry(size, image.GetSpacing(), image.GetOrigin(), image.GetDirection())
    except ValueError as error:
        raise AmosegError(f"SimpleITK image has an invalid geometry: {error}") from None


def _is_nibabel(image: Any) -> bool:
    # A nibabel image exists only if nibabel was imported: asking sys.modules keeps nibabel optional.
    nibabel = sys.modules.get("nibabel")
    return nibabel is not None and isinstance(image, nibabel.spatialimages.SpatialImage)


def _from_nibabel(image: Any) -> Image:
    geometry = _nibabel_geometry(image)
    array = np.asanyarray(image.dataobj)
    if isinstance(array, np.memmap):
        # a plain array over the same mapped file: the memmap type would pass on to every result
        array = np.asarray(array)
    if array.dtype.fields is not None or array.dtype.kind not in "iuf":
        raise AmosegError(f"nibabel image has {array.dtype} voxels; expected real numbers (one per voxel)")
    if not array.dtype.isnative:  # torch refuses non-native byte order (Analyze files from big-endian hosts)
        array = array.astype(array.dtype.newbyteorder("="))
    array = array.reshape(geometry.shape, order="A")  # drops trailing axes of size 1, as a view
    _check_voxels(array, "nibabel image")
    return Image(array, geometry)


def _nibabel_geometry(image: Any) -> Geometry:
    name = type(image).__name__
    shape = tuple(int(size) for size in image.shape)
    if len(shape) < 3 or any(size != 1 for size in shape[3:]):
        raise AmosegError(f"{name} has shape {_fmt(shape)}; expected a 3-D volume")
    if image.affine is None:
        raise AmosegError(f"{name} has no affine, so its voxels have no place in the world")
    affine = np.asarray(image.affine, dtype=float)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise AmosegError(f"{name} has an affine that is not a finite 4x4 matrix: {affine.tolist()}")
    lps = _RAS_TO_LPS @ affine
    columns = lps[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    if np.any(spacing == 0):
        raise AmosegError(f"{name} has an affine with a zero column, so a voxel axis has no length")
    direction = columns / spacing
    shear = float(np.max(np.abs(direction.T @ direction - np.eye(3))))
    if shear > SHEAR_TOLERANCE:
        raise AmosegError(
            f"{name} has a sheared affine (voxel axes {np.degrees(np.arcsin(min(shear, 1.0))):.3g} degrees off "
            "perpendicular), which amoseg cannot represent; resample it onto an unsheared grid first"
        )
    return make_geometry(shape[:3], tuple(spacing), tuple(lps[:3, 3]), direction)


def _to_nibabel(label: LabelMap, like: Any) -> Any:
    import nibabel

    array = _narrowest(label.array).reshape(like.shape, order="A")
    header = like.header.copy()
    header.set_data_dtype(array.dtype)
    if isinstance(header, nibabel.Nifti1Header):  # NIfTI-2's header is a subclass
        header.set_intent("label")  # NIfTI's code for "voxel values are indices into a set of labels"
        header["cal_min"] = header["cal_max"] = 0  # the input's display window means nothing for ids
    # The copy carries the input's qform and sform with their codes; nibabel keeps them because they
    # agree with the affine given (it resets the codes only when they do not), and drops the input's
    # intensity scaling itself, as it does for any new voxel array.
    return type(like)(array, like.affine, header)


def _check_same_grid(label: LabelMap, geometry: Geometry) -> None:
    if not isinstance(label, LabelMap):
        raise ValueError(f"expected a LabelMap, got {_type_name(label)}")
    problems = geometry.differences(label.geometry, 0.0, 0.0, 0.0)
    if problems:
        raise ValueError("the label map is not on the image's grid: " + "; ".join(problems))


def _check_voxels(array: np.ndarray, what: str) -> None:
    if array.dtype.kind == "f":
        nonfinite = int(array.size - np.count_nonzero(np.isfinite(array)))
        if nonfinite:
            raise AmosegError(f"{what}: {nonfinite} voxels are NaN or infinite")


def _narrowest(array: np.ndarray) -> np.ndarray:
    """uint8 when every label fits (AMOS ids do), as ``write_image`` stores label maps; else as it is."""
    if array.size and array.min() >= 0 and array.max() <= 255:
        return array.astype(np.uint8, copy=False)
    return array


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _fmt(shape: tuple[int, ...]) -> str:
    return " x ".join(str(size) for size in shape)
